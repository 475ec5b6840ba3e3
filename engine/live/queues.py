"""What flows between the live stages: the drop-oldest queue and the items it carries."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from vacelive.engine.preview import PreviewFrame

from vacelive.engine.state import Snapshot


T = TypeVar("T")


class DropOldestQueue(Generic[T]):
    """A bounded FIFO whose ``put`` never blocks: when full, the oldest item is dropped."""

    def __init__(self, maxsize: int) -> None:
        self._items: deque[T] = deque()
        self._maxsize = maxsize
        self._cond = threading.Condition()

    def put(self, item: T) -> int:
        """Append ``item``; return how many old items were dropped to make room (0 or 1)."""
        with self._cond:
            dropped = 0
            while len(self._items) >= self._maxsize:
                self._items.popleft()
                dropped += 1
            self._items.append(item)
            self._cond.notify()
            return dropped

    def get(self, timeout: float) -> T | None:
        """Pop the oldest item, waiting up to ``timeout`` seconds; ``None`` if none came."""
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            return self._items.popleft() if self._items else None

    def clear(self) -> None:
        """Drop everything."""
        with self._cond:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class InputFrame:
    """A resized source frame and when it was read."""

    image: np.ndarray  # (H, W, 3|4) uint8
    captured_at: float
    epoch: int


@dataclass
class AnnotatedFrame:
    """One frame after the annotator, tagged with its chunk."""

    epoch: int
    chunk_seq: int
    position: int  # 0..11 within the chunk
    image: np.ndarray  # (H, W, 3) uint8
    control: np.ndarray | None  # (H, W, 3) uint8
    mask: np.ndarray | None  # (H, W) float32
    snapshot: Snapshot
    captured_at: float


@dataclass
class OutputChunk:
    """Generated frames on their way to the publisher, with what the model was given for each
    (input, control, mask: the chunk's own arrays, aligned to the output frames; for previews)."""

    epoch: int
    frames: np.ndarray  # (N, H, W, 3) uint8
    captured_at: list[float]  # capture time of the input frame behind each output frame
    inputs: np.ndarray  # (N, H, W, 3) uint8
    control: np.ndarray | None  # (N, H, W, 3) uint8
    masks: np.ndarray | None  # (N, H, W) float32

    def preview_frame(self, i: int) -> PreviewFrame:
        """Output frame ``i`` with what the model was given for it."""
        return PreviewFrame(self.frames[i], self.inputs[i], None if self.control is None else self.control[i],
                            None if self.masks is None else self.masks[i])
