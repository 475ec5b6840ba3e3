"""``null``: a sink that discards frames and counts them (benchmarks, headless runs)."""

from __future__ import annotations

import numpy as np

from vacelive.bridges.base import BridgeError, BridgeState, Sink
from vacelive.bridges.spec import Spec


class NullSink(Sink):
    """Discards every frame; ``frames`` counts what it was given."""

    def __init__(self, name: str = "null") -> None:
        self.name = name
        self.frames = 0
        self.size: tuple[int, int] | None = None

    @classmethod
    def from_spec(cls, spec: Spec) -> "NullSink":
        """Build from ``null``."""
        return cls(spec.text)

    def open(self, width: int, height: int, fps: float) -> None:
        """Remember the size; nothing to acquire."""
        self.size = (width, height)
        self.frames = 0
        self.state = BridgeState.LIVE

    def write(self, frame: np.ndarray) -> None:
        """Count the frame."""
        if self.state is not BridgeState.LIVE:
            raise BridgeError(f"{self.name}: write() before open()")
        self.frames += 1

    def close(self) -> None:
        """Stop counting; safe to call twice."""
        self.state = BridgeState.CLOSED
