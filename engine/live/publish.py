"""The publisher (owns the clock) and the sink and preview writers (one thread per sink)."""

from __future__ import annotations

import logging
import queue
import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from vacelive.bridges.base import Sink
from vacelive.engine.frames import CHUNK_FRAMES, crop_to_fill
from vacelive.engine.live.queues import DropOldestQueue, OutputChunk
from vacelive.engine.live.stage import Stage
from vacelive.engine.preview import REFERENCE_PARAMS, PreviewFrame, ReferenceImages, compose, fit, preview_size

if TYPE_CHECKING:
    from vacelive.engine.loop import Engine

log = logging.getLogger(__name__)


class SinkWriter(Stage):
    """Writes frames to one sink on its own thread, so a slow sink never delays the clock or
    another sink; when it falls behind, the oldest waiting frame is dropped."""

    def __init__(self, engine: "Engine", sink: Sink) -> None:
        super().__init__(f"sink-{sink.name}", engine)
        self.sink = sink
        self.pending: DropOldestQueue[np.ndarray] = DropOldestQueue(2)
        self.dropped = 0

    def step(self) -> None:
        frame = self.pending.get(timeout=0.1)
        if frame is not None:
            self._write(frame)

    def _write(self, frame: np.ndarray) -> None:
        started = time.perf_counter()
        try:
            self.sink.write(frame)
            self.engine.metrics.record(f"write_{self.sink.name.partition(':')[0]}",
                                       (time.perf_counter() - started) * 1000.0)
            self.engine.clear_error(f"sink {self.sink.name}")
        except Exception as exc:
            self.engine.metrics.sink_errors += 1
            self.engine.report_error(f"sink {self.sink.name}: {exc!r}", condition=f"sink {self.sink.name}")

    def finish(self) -> None:
        while (frame := self.pending.get(timeout=0)) is not None:  # flush what the clock published
            self._write(frame)
        try:
            self.sink.close()
        except Exception:
            log.exception("closing sink %s", self.sink.name)


class PreviewWriter(SinkWriter):
    """Writes the control preview (:mod:`engine.preview`) to one sink: composed here, on the
    writer's own thread, from frames the publisher hands over as they are."""

    def __init__(self, engine: "Engine", sink: Sink) -> None:
        super().__init__(engine, sink)
        self.name = f"vacelive-preview-{sink.name}"
        self.references = ReferenceImages(
            lambda: [v for n in REFERENCE_PARAMS if (v := engine.store.get(n))], engine.store.resolve_media)
        self.size = preview_size(engine.store.get("preview"), engine.width, engine.height)
        """(width, height) the sink is opened at: the starting view's; a later view is fitted into it."""

    def step(self) -> None:
        item = self.pending.get(timeout=0.1)
        if item is not None:
            picture = compose(self.engine.store.get("preview"), item, self.references.images())
            if (picture.shape[1], picture.shape[0]) != self.size:
                picture = fit(picture, *self.size)
            self._write(picture)


class Publisher(Stage):
    """Owns the clock: one frame to every sink each 1/fps seconds, whatever the generator does."""

    def __init__(self, engine: "Engine", writers: Sequence[SinkWriter],
                 previews: Sequence[PreviewWriter] = ()) -> None:
        super().__init__("publisher", engine)
        self.writers = list(writers)
        self.previews = list(previews)
        self._buffer: deque[tuple[OutputChunk, int]] = deque()  # (chunk, frame index), in order
        self._buffer_epoch = 0
        self._last: np.ndarray | None = None
        self._last_preview: PreviewFrame | None = None
        self._next_tick = time.monotonic()
        self.intervals: deque[float] = deque(maxlen=1000)
        self._last_publish = 0.0

    def step(self) -> None:
        engine = self.engine
        period = 1.0 / engine.store.get("fps")
        delay = self._next_tick - time.monotonic()
        if delay > 0:
            engine.stopping.wait(delay)
            if engine.stopping.is_set():
                return
        now = time.monotonic()
        started = time.perf_counter()
        self._next_tick += period
        if now - self._next_tick > period:  # fell behind by more than a frame: resync, no burst
            self._next_tick = now + period
        self._refill()
        frame = self._next_frame(engine.store.get("pause"), now)
        if frame is None:
            return  # nothing generated yet
        for writer in self.writers:
            writer.dropped += writer.pending.put(frame)
        if self._last_preview is not None:
            for preview in self.previews:
                preview.dropped += preview.pending.put(self._last_preview)
        engine.metrics.record("publish", (time.perf_counter() - started) * 1000.0)
        if self._last_publish:
            self.intervals.append(now - self._last_publish)
        self._last_publish = now
        engine.metrics.frames_out += 1
        engine.metrics.fps_out.tick(now)
        if engine.max_frames and engine.metrics.frames_out >= engine.max_frames:
            engine.stopping.set()

    def _refill(self) -> None:
        engine = self.engine
        if self._buffer_epoch != engine.epoch:  # hard cut: drop what the old state generated
            self._buffer.clear()
            self._buffer_epoch = engine.epoch
        while len(self._buffer) < CHUNK_FRAMES:
            try:
                out = engine.output_q.get_nowait()
            except queue.Empty:
                return
            if out.epoch == engine.epoch:
                self._catch_up(int(engine.store.get("catch_up")))
                self._buffer.extend((out, i) for i in range(len(out.frames)))

    def _catch_up(self, slack: int) -> None:
        """A chunk has arrived: keep at most ``slack`` waiting frames of the last one (0: all).

        The source is paced at the output fps, so a backlog never drains by itself: every stall
        (a late chunk) would add a frame of latency for good. Skipping it here keeps
        glass-to-glass near one chunk of capture plus one chunk of generation."""
        late = len(self._buffer) - slack
        if slack and late > 0:
            for _ in range(late):
                self._buffer.popleft()
            self.engine.metrics.skipped_frames += late

    def _next_frame(self, paused: bool, now: float) -> np.ndarray | None:
        size = (self.engine.height, self.engine.width)
        if self._last is not None and self._last.shape[:2] != size:  # a reload changed the size
            self._last = crop_to_fill(self._last, size[1], size[0])
        if paused:
            return self._last
        if self._buffer:
            out, i = self._buffer.popleft()
            frame, captured_at = out.frames[i], out.captured_at[i]
            if frame.shape[:2] != size:  # made just before a reload changed the size
                frame = crop_to_fill(frame, size[1], size[0])
            elif self.previews:
                self._last_preview = out.preview_frame(i)
            self.engine.metrics.fps_generated.tick(now)
            self.engine.metrics.glass_to_glass_ms.append((now - captured_at) * 1000.0)
            self._last = frame
            return frame
        if self._last is not None:
            self.engine.metrics.stalls += 1
        return self._last
