"""The end of each chunk's trip through the generator, and the stage that does it on its own thread.

:class:`Finisher` finishes a chunk the generator has taken on, in chunk order: a failure (the
generator raised, or its frames are malformed) is reported and counted, and enough failures in a
row ask the generator stage to reset the model before its next chunk; good frames are recorded in
the metrics and go to the publisher as an :class:`OutputChunk` (waiting for it: back-pressure),
unless a hard cut made the chunk stale meanwhile (then it is dropped and counted).

Most generators finish each chunk on the generator thread. A pipelined one
(:class:`~engine.generator.PipelinedGenerator`, the ``stages`` layout) has the generator stage
submit a chunk and hand it to the :class:`FinishStage`, which waits for its frames (decoded on
another device) and finishes it while the generator thread denoises the next chunk. The hand-off
returns once the finish stage took the chunk, that is once the chunk before it went to the
publisher: one chunk more in flight than without overlap (the one decoding), never more.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from vacelive.engine.chunk import Chunk
from vacelive.engine.frames import CHUNK_FRAMES
from vacelive.engine.generator import PendingFrames
from vacelive.engine.live.queues import OutputChunk
from vacelive.engine.live.stage import Stage

if TYPE_CHECKING:
    from vacelive.engine.loop import Engine

log = logging.getLogger(__name__)

MAX_CONSECUTIVE_GENERATOR_FAILURES = 3
"""After this many failed chunks in a row the model state is reset."""


@dataclass
class Ready:
    """Frames a generator has already made (one that does not overlap its chunks)."""

    frames: np.ndarray
    timings: dict[str, float]
    ready_at: float = field(default_factory=time.monotonic)

    def result(self) -> np.ndarray:
        return self.frames


@dataclass
class Failed:
    """A chunk whose generator step raised ``error``."""

    error: Exception
    timings: dict[str, float] = field(default_factory=dict)
    ready_at: float = 0.0

    def result(self) -> np.ndarray:
        raise self.error


@dataclass
class Started:
    """A chunk the generator has taken on: its frames to come, and what the generator said of it
    when it took it (its mode and warnings then: a pipelined generator is on the next chunk by
    the time the frames come)."""

    chunk: Chunk
    started: float  # time.monotonic() when the generator took the chunk
    frames: PendingFrames
    mode: str = ""
    warnings: list[str] = field(default_factory=list)


class Finisher:
    """Finishes chunks in order (see the module docstring); one thread at a time calls it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.reset_due = threading.Event()
        """Set after too many failures in a row: the generator stage resets the model before its
        next chunk (on its own thread, between chunks) and clears it."""
        self._epoch = 0
        self._failures = 0
        self._warned: set[str] = set()

    def finish(self, item: Started) -> None:
        """Wait for the chunk's frames, then report its failure or deliver them."""
        engine, chunk = self.engine, item.chunk
        if chunk.epoch != self._epoch:  # the generator was reset before this chunk: count afresh
            self._epoch, self._failures = chunk.epoch, 0
        try:
            frames = item.frames.result()
            _check_output(frames, engine.width, engine.height)
        except Exception as exc:
            self._failed(chunk, exc)
            return
        self._failures = 0
        engine.clear_error("generator")
        engine.metrics.mode = item.mode
        for name, ms in item.frames.timings.items():
            engine.metrics.record(name, ms)
        warnings = set(item.warnings)
        for warning in sorted(warnings - self._warned):
            engine.report_error(warning)
        self._warned = warnings
        done = item.frames.ready_at  # not when this thread got to them: it may have waited for the publisher
        engine.metrics.record_chunk((done - item.started) * 1000.0, (done - chunk.captured_at[0]) * 1000.0)
        if chunk.epoch != engine.epoch:  # a hard cut came while it was made: the publisher would drop it
            engine.metrics.dropped_chunks += 1
            return
        # Output frame i shows input frame i (the first chunk may give fewer: align to the end).
        n = len(frames)
        out = OutputChunk(chunk.epoch, frames, chunk.captured_at[-n:], chunk.frames[-n:, :, :, :3],
                          None if chunk.control is None else chunk.control[-n:],
                          None if chunk.masks is None else chunk.masks[-n:])
        while not engine.stopping.is_set():  # back-pressure: wait for the publisher, not the clock
            try:
                engine.output_q.put(out, timeout=0.1)
                break
            except queue.Full:
                continue

    def _failed(self, chunk: Chunk, exc: Exception) -> None:
        engine = self.engine
        self._failures += 1
        engine.metrics.generator_errors += 1
        engine.report_error(f"generator: {exc!r} (chunk {chunk.index}, failure {self._failures} in a row)",
                            condition="generator")
        log.debug("generator failure", exc_info=exc)
        if _is_out_of_memory(exc):
            self._out_of_memory()
        if self._failures >= MAX_CONSECUTIVE_GENERATOR_FAILURES:
            self._failures = 0
            self.reset_due.set()

    def _out_of_memory(self) -> None:
        """Free the allocator's cache; lower the steps only when the user enabled that."""
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()
        store = self.engine.store
        steps = store.get("steps")
        if store.get("oom_fallback") and steps > 1:
            store.set("steps", steps - 1)
            self.engine.report_error(f"out of memory: steps lowered to {steps - 1} (oom_fallback)")


class FinishStage(Stage):
    """Finishes the chunks a pipelined generator submitted, on its own thread, in order."""

    def __init__(self, engine: Engine) -> None:
        super().__init__("finish", engine)
        self.finisher = Finisher(engine)
        self._slot: Started | None = None
        self._busy = False  # finishing the item taken last
        self._cond = threading.Condition()

    def hand(self, item: Started) -> None:
        """Give ``item`` to this stage; returns once the stage took it (it has finished the
        chunk before), or the engine stops."""
        with self._cond:
            self._slot = item
            self._cond.notify_all()
            while self._slot is item and not self.engine.stopping.is_set():
                self._cond.wait(0.1)

    def wait_idle(self) -> None:
        """Wait until every chunk handed here is finished (or the engine stops): the generator
        thread calls it before finishing a chunk itself (after a reload put in a generator that
        does not overlap), so that the finisher is never called from two threads at once."""
        with self._cond:
            while (self._slot is not None or self._busy) and not self.engine.stopping.is_set():
                self._cond.wait(0.1)

    def step(self) -> None:
        with self._cond:
            if self._slot is None:
                self._cond.wait(0.1)
            item, self._slot = self._slot, None
            self._busy = item is not None
            self._cond.notify_all()
        if item is None:
            return
        try:
            self.finisher.finish(item)
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()


def _is_out_of_memory(exc: BaseException) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(exc, torch.cuda.OutOfMemoryError)


def _check_output(frames: np.ndarray, width: int, height: int) -> None:
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim != 4:
        raise TypeError(f"generator returned {type(frames).__name__}, expected uint8 (N, H, W, 3) frames")
    if frames.shape[1:] != (height, width, 3) or not 1 <= frames.shape[0] <= CHUNK_FRAMES:
        raise ValueError(f"generator returned frames of shape {frames.shape}, expected (<=12, {height}, {width}, 3)")
