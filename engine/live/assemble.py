"""The chunk assembler: 12 annotated frames of one chunk become a :class:`Chunk`."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from vacelive.engine.chunk import Chunk
from vacelive.engine.frames import CHUNK_FRAMES
from vacelive.engine.live.queues import AnnotatedFrame
from vacelive.engine.live.stage import Stage
from vacelive.engine.preview import REFERENCE_PARAMS

if TYPE_CHECKING:
    from vacelive.engine.loop import Engine


class ChunkAssembler(Stage):
    """Groups 12 annotated frames of the same chunk into a :class:`Chunk`."""

    def __init__(self, engine: "Engine") -> None:
        super().__init__("assembler", engine)
        self._pending: list[AnnotatedFrame] = []
        self._chunks_made = 0

    def step(self) -> None:
        engine = self.engine
        item = engine.annotated_q.get(timeout=0.1)
        if item is None:
            return
        if self._pending and (item.epoch, item.chunk_seq) != (self._pending[0].epoch, self._pending[0].chunk_seq):
            engine.metrics.dropped_frames += len(self._pending)  # an incomplete chunk (cut or drop)
            self._pending = []
        if item.position != len(self._pending):
            engine.metrics.dropped_frames += 1  # a frame of this chunk was lost upstream: skip it
            return
        self._pending.append(item)
        if len(self._pending) < CHUNK_FRAMES:
            return
        started = time.perf_counter()
        frames = self._pending
        self._pending = []
        chunk = Chunk(
            index=self._chunks_made,
            epoch=frames[0].epoch,
            frames=np.stack([f.image for f in frames]),
            control=None if frames[0].control is None else np.stack([_control(f) for f in frames]),
            masks=None if frames[0].mask is None else np.stack([_mask(f) for f in frames]),
            snapshot=frames[0].snapshot,
            captured_at=[f.captured_at for f in frames],
        )
        self._chunks_made += 1
        snapshot = chunk.snapshot
        engine.metrics.annotator = snapshot["annotator"]
        engine.metrics.mask_coverage = 0.0 if chunk.masks is None else round(100.0 * float(chunk.masks.mean()), 1)
        engine.metrics.references = [name for name in REFERENCE_PARAMS if snapshot[name]]
        engine.metrics.dropped_chunks += engine.chunk_q.put(chunk)
        engine.metrics.record("assemble", (time.perf_counter() - started) * 1000.0)


def _control(frame: AnnotatedFrame) -> np.ndarray:
    return frame.control if frame.control is not None else np.zeros_like(frame.image)


def _mask(frame: AnnotatedFrame) -> np.ndarray:
    return frame.mask if frame.mask is not None else np.ones(frame.image.shape[:2], dtype=np.float32)
