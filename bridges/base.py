"""The Source / Sink interface every bridge implements.

Sources deliver RGB (or RGBA) ``uint8`` frames of any size; the engine resizes them with
:func:`engine.frames.crop_to_fill`. Sinks receive frames already at the engine's output size.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod

import numpy as np


class BridgeState(str, enum.Enum):
    """Life-cycle state of a source or sink, reported on OSC status."""

    CLOSED = "closed"
    CONNECTING = "connecting"  # opened, waiting for a peer or the first frame
    LIVE = "live"
    LOST = "lost"  # was live, peer gone; the bridge retries by itself
    FAILED = "failed"  # cannot work (missing package, wrong platform, bad path)


class BridgeError(RuntimeError):
    """A bridge cannot open or run; the message says why and what to do."""


class Source(ABC):
    """A stream of frames coming into the engine."""

    name: str
    """The spec string it was opened from, e.g. ``ndi:TD-out``."""

    state: BridgeState = BridgeState.CLOSED

    @abstractmethod
    def open(self) -> None:
        """Acquire the device, file or connection; raise :class:`BridgeError` if impossible."""

    @abstractmethod
    def read(self, timeout: float = 0.1) -> np.ndarray | None:
        """Return the next frame (H, W, 3|4 uint8) or ``None`` when none came within ``timeout``.

        Never raises for a lost peer: it sets ``state`` to LOST, returns ``None`` and reconnects.
        """

    @property
    def fps(self) -> float | None:
        """The source's own frame rate when it has one (files, cameras), else ``None``."""
        return None

    def visible(self) -> list[str] | None:
        """For a network source: the senders it can see now (so a user waiting for one can tell a
        typo from a sender that is not up yet); ``None`` for sources without discovery."""
        return None

    @abstractmethod
    def close(self) -> None:
        """Release everything; safe to call twice."""

    def __enter__(self) -> "Source":
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Sink(ABC):
    """A destination for the engine's output frames."""

    name: str
    state: BridgeState = BridgeState.CLOSED

    @abstractmethod
    def open(self, width: int, height: int, fps: float) -> None:
        """Prepare to receive ``width`` x ``height`` RGB frames at ``fps``."""

    @abstractmethod
    def write(self, frame: np.ndarray) -> None:
        """Publish one (H, W, 3) uint8 RGB frame; raise :class:`BridgeError` on failure."""

    @abstractmethod
    def close(self) -> None:
        """Flush and release; safe to call twice."""

    def __enter__(self) -> "Sink":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
