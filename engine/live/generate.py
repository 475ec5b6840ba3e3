"""The generator stage: runs the generator on each chunk and survives its errors."""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time
from typing import TYPE_CHECKING

import numpy as np

from vacelive.engine.frames import CHUNK_FRAMES
from vacelive.engine.generator import Generator
from vacelive.engine.live.queues import OutputChunk
from vacelive.engine.live.stage import Stage

if TYPE_CHECKING:
    from vacelive.engine.loop import Engine

log = logging.getLogger(__name__)


GENERATOR_NICENESS = 10
"""How much lower the generator thread is scheduled (Linux): when the model saturates the CPU,
the clock and the bridges still run on time. Worker threads the model starts from the generator
thread inherit it."""

MAX_CONSECUTIVE_GENERATOR_FAILURES = 3
"""After this many failed chunks in a row the model state is reset."""


class GeneratorStage(Stage):
    """Runs the generator on each chunk; survives its errors."""

    def __init__(self, engine: "Engine", generator: Generator) -> None:
        super().__init__("generator", engine)
        self.generator = generator
        self.niceness = GENERATOR_NICENESS
        self._epoch = 0
        self._failures = 0
        self._warned: set[str] = set()

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
        started = time.monotonic()
        try:
            with engine.swap_lock:  # a reload swaps the generator between chunks, never during one
                if chunk.epoch != self._epoch:
                    self._epoch = chunk.epoch
                    self._reset_generator()
                frames = self.generator.generate(chunk)
                _check_output(frames, engine.width, engine.height)
        except Exception as exc:
            self._failures += 1
            engine.metrics.generator_errors += 1
            engine.report_error(f"generator: {exc!r} (chunk {chunk.index}, failure {self._failures} in a row)",
                                condition="generator")
            log.debug("generator failure", exc_info=True)
            if _is_out_of_memory(exc):
                self._out_of_memory()
            if self._failures >= MAX_CONSECUTIVE_GENERATOR_FAILURES:
                self._reset_generator()
            return
        self._failures = 0
        engine.clear_error("generator")
        engine.metrics.mode = self.generator.mode
        for name, ms in self.generator.timings.items():
            engine.metrics.record(name, ms)
        warnings = set(self.generator.warnings)
        for warning in sorted(warnings - self._warned):
            engine.report_error(warning)
        self._warned = warnings
        done = time.monotonic()
        engine.metrics.record_chunk((done - started) * 1000.0, (done - chunk.captured_at[0]) * 1000.0)
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

    def _reset_generator(self) -> None:
        self._failures = 0
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


def _is_out_of_memory(exc: BaseException) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(exc, torch.cuda.OutOfMemoryError)


def _check_output(frames: np.ndarray, width: int, height: int) -> None:
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim != 4:
        raise TypeError(f"generator returned {type(frames).__name__}, expected uint8 (N, H, W, 3) frames")
    if frames.shape[1:] != (height, width, 3) or not 1 <= frames.shape[0] <= CHUNK_FRAMES:
        raise ValueError(f"generator returned frames of shape {frames.shape}, expected (<=12, {height}, {width}, 3)")
