"""The generator stage: runs the generator on each chunk and survives its errors.

Each chunk is finished (checked, recorded, queued for the publisher, or its failure reported) by
the :class:`~engine.live.finish.Finisher`: here, right after ``generate``, or, for a generator
that overlaps its chunks (the ``stages`` layout), on the finish stage's thread, so that this
thread submits the next chunk while the last one decodes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from typing import TYPE_CHECKING, cast

from vacelive.engine.chunk import Chunk
from vacelive.engine.generator import Generator, PendingFrames, PipelinedGenerator, overlaps
from vacelive.engine.live.finish import Failed, FinishStage, Ready, Started
from vacelive.engine.live.stage import Stage

if TYPE_CHECKING:
    from vacelive.engine.loop import Engine

log = logging.getLogger(__name__)


GENERATOR_NICENESS = 10
"""How much lower the generator thread is scheduled (Linux): when the model saturates the CPU,
the clock and the bridges still run on time. Worker threads the model starts from the generator
thread inherit it."""


class GeneratorStage(Stage):
    """Runs the generator on each chunk; survives its errors."""

    def __init__(self, engine: Engine, generator: Generator, finish_stage: FinishStage) -> None:
        super().__init__("generator", engine)
        self.generator = generator
        self.finish_stage = finish_stage
        self.finisher = finish_stage.finisher
        self.niceness = GENERATOR_NICENESS
        self._epoch = 0
        self._in_flight: PendingFrames | None = None  # the last chunk submitted to an overlapping generator

    def run(self) -> None:
        _lower_thread_priority(self.niceness)
        super().run()

    def step(self) -> None:
        engine = self.engine
        chunk = engine.chunk_q.get(timeout=0.1)
        if chunk is None:
            return
        if engine.store.get("pause") or chunk.epoch != engine.epoch:  # paused, or made before a cut
            engine.metrics.dropped_chunks += 1
            return
        with engine.swap_lock:  # a reload swaps the generator between chunks, never during one
            overlapped = overlaps(self.generator)
            item = self._start(chunk, overlapped)
        if overlapped:
            self.finish_stage.hand(item)
        else:
            self.finish_stage.wait_idle()
            self.finisher.finish(item)

    def settle(self) -> None:
        """Wait until the last chunk submitted has its frames (or failed): the generator then has
        no decode in flight and may be swapped out. Called under ``swap_lock``."""
        pending, self._in_flight = self._in_flight, None
        if pending is not None:
            with contextlib.suppress(Exception):  # its failure is the finisher's to report
                pending.result()

    def _start(self, chunk: Chunk, overlapped: bool) -> Started:
        """Generate ``chunk`` (submit it, when ``overlapped``); a failure becomes the item's."""
        started = time.monotonic()
        try:
            if chunk.epoch != self._epoch or self.finisher.reset_due.is_set():
                self._epoch = chunk.epoch
                self.finisher.reset_due.clear()
                self._reset_generator()
            generator = self.generator
            if overlapped:
                frames = self._in_flight = cast(PipelinedGenerator, generator).submit(chunk)
            else:
                frames = Ready(generator.generate(chunk), generator.timings)
            return Started(chunk, started, frames, generator.mode, list(generator.warnings))
        except Exception as exc:
            return Started(chunk, started, Failed(exc))

    def _reset_generator(self) -> None:
        try:
            self.generator.reset()
        except Exception as exc:
            self.engine.report_error(f"generator reset failed: {exc!r}")


def _lower_thread_priority(niceness: int) -> None:
    """Raise the calling thread's nice value on Linux (per-thread there); elsewhere do nothing."""
    if sys.platform.startswith("linux") and niceness:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
        except OSError as exc:
            log.debug("could not lower the generator's priority: %s", exc)
