"""The unit of work that flows from the annotator to the generator."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vacelive.engine.state import Snapshot


@dataclass
class Chunk:
    """12 consecutive input frames with their control signal and one parameter snapshot.

    Shapes: ``frames`` (T, H, W, 3) uint8 RGB; ``control`` (T, H, W, 3) uint8 or ``None``
    (annotator ``none``); ``masks`` (T, H, W) float32 in [0, 1], 1 = generate, or ``None``.
    """

    index: int
    """Sequence number since start (keeps counting across hard cuts)."""
    epoch: int
    """Hard-cut generation: a chunk of a newer epoch means the model state must be reset."""
    frames: np.ndarray
    control: np.ndarray | None
    masks: np.ndarray | None
    snapshot: Snapshot
    captured_at: list[float]
    """``time.monotonic()`` when each input frame was read (for glass-to-glass latency)."""
