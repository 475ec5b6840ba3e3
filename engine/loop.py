"""The live loop: five stages on their own threads, joined by bounded queues.

    source reader -> annotator -> chunk assembler -> generator -> publisher -> sink writers

- The source reader reads as fast as frames come, resizes them crop-to-fill, keeps at most the
  engine's fps, and drops the oldest when the annotator falls behind.
- The annotator takes one parameter snapshot at each chunk boundary (every 12 frames) and uses it
  for all 12 frames, so a chunk never sees half-applied changes; it annotates frames as they
  arrive, so generation does not wait for a whole chunk's annotation.
- The chunk assembler groups 12 annotated frames into a :class:`Chunk`; if the generator is busy
  the oldest waiting chunk is dropped (the freshest control wins).
- The generator stage calls the :class:`Generator`; errors are reported and the next chunk
  retries; repeated failures reset the model state.
- The publisher owns the clock: it publishes at the target fps whatever the generator does,
  repeating the last good frame (never a black one) and counting a stall when none is ready.
  Each sink is written on its own thread, so a slow sink delays neither the clock nor the others.

A hard cut bumps the engine's *epoch*: every stage sees it through the items it handles, so the
annotators, the model state and the publisher's buffer are reset without locks between stages.

:meth:`Engine.swap` puts in a new generator, source, sinks or size while the clock runs (a live
reload, :mod:`engine.reload`): between two chunks, followed by a hard cut, the publisher holding
its last frame (resized if the size changed) until the new parts deliver.
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from vacelive.annotators.base import Annotator, MaskSource
from vacelive.bridges.base import BridgeError, BridgeState, Sink, Source
from vacelive.engine.chunk import Chunk
from vacelive.engine.frames import CHUNK_FRAMES, crop_to_fill, to_rgb
from vacelive.engine.generator import Generator
from vacelive.engine.metrics import Metrics
from vacelive.engine.outpaint import Placement
from vacelive.engine.preview import REFERENCE_PARAMS, PreviewFrame, ReferenceImages, compose
from vacelive.engine.ratelimit import RepeatFilter
from vacelive.engine.state import ParamStore, Snapshot

log = logging.getLogger(__name__)

T = TypeVar("T")

GENERATOR_NICENESS = 10
"""How much lower the generator thread is scheduled (Linux): when the model saturates the CPU,
the clock and the bridges still run on time. Worker threads the model starts from the generator
thread inherit it."""

MAX_CONSECUTIVE_GENERATOR_FAILURES = 3
"""After this many failed chunks in a row the model state is reset."""


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


class _Stage(threading.Thread):
    """A daemon thread that runs ``step`` until the engine stops, and never dies of an error."""

    def __init__(self, name: str, engine: "Engine") -> None:
        super().__init__(name=f"vacelive-{name}", daemon=True)
        self.engine = engine
        self.retired = threading.Event()
        """Set to end this stage alone (a sink writer replaced by a reload)."""

    def run(self) -> None:
        while not (self.engine.stopping.is_set() or self.retired.is_set()):
            try:
                self.step()
            except Exception as exc:  # a stage must outlive any single failure
                self.engine.report_error(f"{self.name}: {exc!r}")
                log.exception("%s failed; continuing", self.name)
                self.engine.stopping.wait(0.05)
        self.finish()

    def step(self) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """Release what the stage holds; called once on its own thread at shutdown."""


class SourceReader(_Stage):
    """Reads the source, resizes crop-to-fill, limits to the engine fps, feeds the annotator.

    The engine opens the source before the clock starts; a source lost later is reopened every
    :data:`RETRY_S`. While a network source has delivered nothing (its sender is not up yet, or
    gone), it says so after :data:`WAIT_NOTICE_S` and every :data:`WAIT_REPEAT_S`, naming the
    senders it can see (log, status ``source_note``, TUI). :attr:`first_frame` is set by the
    first frame.
    """

    RETRY_S = 2.0
    WAIT_NOTICE_S = 2.0
    WAIT_REPEAT_S = 10.0

    def __init__(self, engine: "Engine", source: Source) -> None:
        super().__init__("source", engine)
        self.source = source
        self.first_frame = threading.Event()
        self.latest: np.ndarray | None = None
        """The newest input frame at the engine's size (what a grab takes)."""
        self._open = False
        self._next_emit = 0.0
        self._waiting_since: float | None = None
        self._next_notice = 0.0
        self._replacement: Source | None = None

    def replace(self, source: Source) -> None:
        """Switch to ``source`` (already open) at the next step; the old one is closed there."""
        self._replacement = source

    def open_now(self) -> None:
        """Open the source (before the clock starts); :class:`BridgeError` says why it cannot."""
        self.source.open()
        self._open = True
        self.engine.metrics.source_state = self.source.state.value

    def step(self) -> None:
        engine = self.engine
        if self._replacement is not None:
            self._close_source()
            self.source, self._replacement = self._replacement, None
            self._open, self._waiting_since = True, None
            self.first_frame.clear()
        if not self._open:
            try:
                self.open_now()
            except BridgeError as exc:
                engine.metrics.source_state = BridgeState.FAILED.value
                engine.report_error(f"source: {exc}", condition="source")
                engine.stopping.wait(self.RETRY_S)
                return
        try:
            frame = self.source.read(timeout=0.1)
        except Exception as exc:  # a broken source is reopened, the clock goes on
            engine.report_error(f"source {self.source.name}: {exc!r}; reopening", condition="source")
            self._close_source()
            engine.stopping.wait(self.RETRY_S)
            return
        engine.metrics.source_state = self.source.state.value
        if frame is None:
            self._note_waiting()
            return
        if self._waiting_since is not None:
            if engine.metrics.source_note:
                log.info("source %s: receiving", self.source.name)
            self._waiting_since = None
            engine.metrics.source_note = ""
        self.first_frame.set()
        engine.clear_error("source")
        now = time.monotonic()
        engine.metrics.fps_in.tick(now)
        period = 1.0 / engine.store.get("fps")
        if now < self._next_emit:
            return  # faster than the engine fps: keep the rate, skip this frame
        self._next_emit = max(self._next_emit + period, now - period)
        started = time.perf_counter()
        image = crop_to_fill(frame, engine.width, engine.height)
        self.latest = image
        engine.metrics.dropped_frames += engine.frames_q.put(InputFrame(image, now, engine.epoch))
        engine.metrics.record("resize", (time.perf_counter() - started) * 1000.0)

    def _note_waiting(self) -> None:
        """Say what a network source is waiting for, soon after it starts waiting and then now and again."""
        if self.source.state not in (BridgeState.CONNECTING, BridgeState.LOST):
            return
        now = time.monotonic()
        if self._waiting_since is None:
            self._waiting_since = now
            self._next_notice = now + self.WAIT_NOTICE_S
        if now < self._next_notice:
            return
        self._next_notice = now + self.WAIT_REPEAT_S
        note = waiting_note(self.source)
        log.warning("%s", note)
        self.engine.metrics.source_note = note

    def _close_source(self) -> None:
        try:
            self.source.close()
        except Exception:
            log.exception("closing source %s", self.source.name)
        self._open = False

    def finish(self) -> None:
        self._close_source()


class AnnotatorStage(_Stage):
    """Annotates frames as they arrive, with one parameter snapshot per chunk."""

    def __init__(self, engine: "Engine") -> None:
        super().__init__("annotator", engine)
        self._epoch = -1
        self._chunk_seq = 0
        self._position = 0
        self._snapshot: Snapshot | None = None
        self._annotator: Annotator | None = None
        self._annotator_name = "none"
        self._mask_source: MaskSource | None = None
        self._mask_name = "none"
        self._last_control: np.ndarray | None = None
        self._rebuild = False

    def step(self) -> None:
        engine = self.engine
        item = engine.frames_q.get(timeout=0.1)
        if item is None:
            return
        started = time.perf_counter()
        if item.epoch != self._epoch:  # hard cut: fresh chunk, fresh annotator state
            self._epoch = item.epoch
            if self._position:
                self._chunk_seq += 1
            self._position = 0
            for stateful in (self._annotator, self._mask_source):
                if stateful is not None:
                    stateful.reset()
        if self._position == 0:
            self._snapshot = engine.store.snapshot()
            self._select(self._snapshot)
        snapshot = self._snapshot
        assert snapshot is not None
        rgb = to_rgb(item.image)
        alpha = item.image[None, :, :, 3] if item.image.shape[2] == 4 else None
        placement = _outpaint_placement(snapshot, rgb.shape)
        if placement is not None:  # outpainting: the model is given the input shrunk and placed
            rgb = placement.shrink(rgb)
            alpha = None if alpha is None else placement.shrink(alpha[0])[None]
        annotate_start = time.perf_counter()
        control = self._annotate(rgb, snapshot)
        mask = self._mask(rgb, alpha, snapshot)
        annotate_end = time.perf_counter()
        if placement is not None:
            frame_shape = (engine.height, engine.width, 3)
            control = None if control is None else placement.place(control, frame_shape)
            mask = placement.mask(engine.height, engine.width, mask)
            rgb = placement.place(rgb, frame_shape)
        engine.metrics.dropped_frames += engine.annotated_q.put(AnnotatedFrame(
            self._epoch, self._chunk_seq, self._position, rgb, control, mask, snapshot, item.captured_at,
        ))
        engine.metrics.record("annotate", (annotate_end - annotate_start) * 1000.0)
        engine.metrics.record("annotator_stage",
                              (time.perf_counter() - started - (annotate_end - annotate_start)) * 1000.0)
        self._position += 1
        if self._position == CHUNK_FRAMES:
            self._position = 0
            self._chunk_seq += 1

    def rebuild(self) -> None:
        """Build the annotator and mask source anew at the next chunk (their factories changed)."""
        self._rebuild = True

    def _select(self, snapshot: Snapshot) -> None:
        """Build the annotator and mask source the snapshot asks for; keep the old on failure."""
        rebuild, self._rebuild = self._rebuild, False
        name = snapshot["annotator"]
        if name != self._annotator_name or rebuild:
            try:
                self._annotator = self.engine.make_annotator(name)
                self._annotator_name = name
                self._last_control = None
            except Exception as exc:
                self.engine.report_error(f"annotator {name!r} unavailable: {exc}; keeping {self._annotator_name!r}")
                self.engine.store.set("annotator", self._annotator_name)
        mask_name = snapshot["mask_source"]
        if mask_name != self._mask_name or rebuild:
            try:
                self._mask_source = self.engine.make_mask_source(mask_name)
                self._mask_name = mask_name
            except Exception as exc:
                self.engine.report_error(f"mask source {mask_name!r} unavailable: {exc}; keeping {self._mask_name!r}")
                self.engine.store.set("mask_source", self._mask_name)

    def _annotate(self, rgb: np.ndarray, snapshot: Snapshot) -> np.ndarray | None:
        if self._annotator is None:
            return None
        try:
            control = self._annotator(rgb[None], snapshot)[0]
        except Exception as exc:  # hold the last good control frame
            self.engine.report_error(f"annotator {self._annotator_name}: {exc!r}", condition="annotator")
            last = self._last_control
            return last if last is not None and last.shape == rgb.shape else np.zeros_like(rgb)
        self._last_control = control
        self.engine.clear_error("annotator")
        return control

    def _mask(self, rgb: np.ndarray, alpha: np.ndarray | None, snapshot: Snapshot) -> np.ndarray | None:
        if self._mask_source is None:
            return None
        try:
            mask = self._mask_source(rgb[None], snapshot, alpha)[0]
        except Exception as exc:  # no mask this frame: generate everywhere
            self.engine.report_error(f"mask {self._mask_name}: {exc!r}", condition="mask")
            return np.ones(rgb.shape[:2], dtype=np.float32)
        self.engine.clear_error("mask")
        return mask


class ChunkAssembler(_Stage):
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


def _outpaint_placement(snapshot: Snapshot, frame_shape: tuple[int, ...]) -> Placement | None:
    """Where the input goes when the snapshot asks for outpainting (``outpaint_scale`` < 1)."""
    scale = float(snapshot["outpaint_scale"])
    if scale >= 1.0:
        return None
    return Placement.of(frame_shape[1], frame_shape[0], scale, snapshot["outpaint_x"], snapshot["outpaint_y"])


def waiting_note(source: Source) -> str:
    """``waiting for ndi source 'X' (visible now: A, B)``: what a source waits for and what it sees."""
    scheme, _, wanted = source.name.partition(":")
    visible = source.visible()
    seen = "" if visible is None else f" (visible now: {', '.join(visible) if visible else 'none'})"
    return f"waiting for {scheme} source '{wanted.split('?')[0]}'{seen}"


def _control(frame: AnnotatedFrame) -> np.ndarray:
    return frame.control if frame.control is not None else np.zeros_like(frame.image)


def _mask(frame: AnnotatedFrame) -> np.ndarray:
    return frame.mask if frame.mask is not None else np.ones(frame.image.shape[:2], dtype=np.float32)


class GeneratorStage(_Stage):
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


class SinkWriter(_Stage):
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

    def step(self) -> None:
        item = self.pending.get(timeout=0.1)
        if item is not None:
            self._write(compose(self.engine.store.get("preview"), item, self.references.images()))


class Publisher(_Stage):
    """Owns the clock: one frame to every sink each 1/fps seconds, whatever the generator does."""

    def __init__(self, engine: "Engine", writers: Sequence[SinkWriter],
                 previews: Sequence[PreviewWriter] = ()) -> None:
        super().__init__("publisher", engine)
        self.writers = list(writers)
        self.previews = list(previews)
        self._buffer: deque[tuple[np.ndarray, float, PreviewFrame]] = deque()
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
                for i, (frame, captured_at) in enumerate(zip(out.frames, out.captured_at)):
                    given = PreviewFrame(frame, out.inputs[i], None if out.control is None else out.control[i],
                                         None if out.masks is None else out.masks[i])
                    self._buffer.append((frame, captured_at, given))

    def _next_frame(self, paused: bool, now: float) -> np.ndarray | None:
        size = (self.engine.height, self.engine.width)
        if self._last is not None and self._last.shape[:2] != size:  # a reload changed the size
            self._last = crop_to_fill(self._last, size[1], size[0])
        if paused:
            return self._last
        if self._buffer:
            frame, captured_at, given = self._buffer.popleft()
            if frame.shape[:2] != size:  # made just before a reload changed the size
                frame = crop_to_fill(frame, size[1], size[0])
            elif self.previews:
                self._last_preview = given
            self.engine.metrics.fps_generated.tick(now)
            self.engine.metrics.glass_to_glass_ms.append((now - captured_at) * 1000.0)
            self._last = frame
            return frame
        if self._last is not None:
            self.engine.metrics.stalls += 1
        return self._last


class Engine:
    """Wires the stages together and runs them until stopped."""

    def __init__(
        self,
        store: ParamStore,
        generator: Generator,
        source: Source,
        sinks: Sequence[Sink],
        make_annotator: Callable[[str], Annotator | None],
        make_mask_source: Callable[[str], MaskSource | None],
        *,
        metrics: Metrics | None = None,
        max_frames: int | None = None,
        on_error: Callable[[str], None] | None = None,
        preview_sinks: Sequence[Sink] = (),
    ) -> None:
        self.store = store
        self.width = int(store.get("width"))
        self.height = int(store.get("height"))
        self.make_annotator = make_annotator
        self.make_mask_source = make_mask_source
        self.metrics = metrics or Metrics()
        self.max_frames = max_frames
        self.on_error = on_error
        self._errors = RepeatFilter()
        self._error_lock = threading.Lock()
        self.epoch = 0
        self.stopping = threading.Event()
        self.swap_lock = threading.Lock()
        """Held by the generator stage around each chunk; :meth:`swap` takes it between chunks."""
        self.frames_q: DropOldestQueue[InputFrame] = DropOldestQueue(CHUNK_FRAMES)
        self.annotated_q: DropOldestQueue[AnnotatedFrame] = DropOldestQueue(2 * CHUNK_FRAMES)
        self.chunk_q: DropOldestQueue[Chunk] = DropOldestQueue(1)
        self.output_q: queue.Queue[OutputChunk] = queue.Queue(maxsize=1)
        self.metrics.queue_depths.update({
            "frames": self.frames_q.__len__,
            "annotated": self.annotated_q.__len__,
            "chunks": self.chunk_q.__len__,
            "output": self.output_q.qsize,
        })
        self.sinks = list(sinks)
        self.sink_writers = [SinkWriter(self, sink) for sink in sinks]
        self.preview_sinks = list(preview_sinks)
        self.preview_writers = [PreviewWriter(self, sink) for sink in preview_sinks]
        self.source_reader = SourceReader(self, source)
        self.annotator_stage = AnnotatorStage(self)
        self.generator_stage = GeneratorStage(self, generator)
        self.publisher = Publisher(self, self.sink_writers, self.preview_writers)
        self.stages: list[_Stage] = [
            self.source_reader,
            self.annotator_stage,
            ChunkAssembler(self),
            self.generator_stage,
            self.publisher,
            *self.sink_writers,
            *self.preview_writers,
        ]
        store.register_action("cut", lambda _value: self.hard_cut())

    def start(self) -> None:
        """Open every sink and the source, then start every stage; if one cannot open, everything
        opened is closed again and nothing starts (the error says which and why)."""
        fps = float(self.store.get("fps"))
        self.source_reader.open_now()  # first: a missing input must not leave output files behind
        opened: list[Sink] = []
        try:
            for sink in self.sinks + self.preview_sinks:
                sink.open(self.width, self.height, fps)
                opened.append(sink)
        except Exception:
            for sink in opened:
                sink.close()
            self.source_reader.finish()
            raise
        for stage in self.stages:
            stage.start()

    def swap(self, *, generator: Generator | None = None, source: Source | None = None,
             size: tuple[int, int] | None = None,
             make_annotator: Callable[[str], Annotator | None] | None = None,
             make_mask_source: Callable[[str], MaskSource | None] | None = None) -> Generator | None:
        """Put new parts in while the clock runs, between two chunks, then hard-cut; returns the
        generator taken out (for the caller to free).

        ``source`` comes opened; ``size`` is the new ``(width, height)``. New annotator factories
        (another weights folder) rebuild the annotator at the next chunk.
        """
        with self.swap_lock:
            self.hard_cut()
            if size is not None:
                self.width, self.height = size
            old = None
            if generator is not None:
                old, self.generator_stage.generator = self.generator_stage.generator, generator
            if source is not None:
                self.source_reader.replace(source)
            if make_annotator is not None or make_mask_source is not None:
                self.make_annotator = make_annotator or self.make_annotator
                self.make_mask_source = make_mask_source or self.make_mask_source
                self.annotator_stage.rebuild()
        return old

    def set_sinks(self, keep: Sequence[SinkWriter], add: Sequence[Sink]) -> None:
        """Publish to the writers ``keep`` plus new writers for the opened sinks ``add``; every
        other writer is retired and joined (it flushes and closes its sink) before the new start."""
        writers = [SinkWriter(self, sink) for sink in add]
        retired = [w for w in self.publisher.writers if w not in keep]
        self.publisher.writers = list(keep)
        for writer in retired:
            writer.retired.set()
            writer.join(5.0)
        for writer in writers:
            writer.start()
        self.publisher.writers = [*keep, *writers]
        self.sink_writers = self.publisher.writers
        self.sinks = [w.sink for w in self.sink_writers]
        self.stages += writers

    def hard_cut(self) -> None:
        """Reset the model state, the annotators and the publisher's buffer."""
        self.epoch += 1
        self.chunk_q.clear()
        log.info("hard cut (epoch %d)", self.epoch)

    def report_error(self, message: str, condition: str = "") -> None:
        """Log an error, keep it for status, and pass it to the error callback (OSC).

        ``condition`` names what failed (``source``, ``generator``, ``sink NAME``, ...): the status
        error clears when that recovers (:meth:`clear_error`); an error without one stays, with
        its age, until the next. The same message again within 10 s (a source that keeps
        failing to open) is neither logged nor sent again; the next report counts the repeats.
        """
        self.metrics.set_error(message, condition)
        with self._error_lock:
            if not self._errors.fresh(message):
                return
            repeated = self._errors.repeated
        if repeated:
            message = f"{message} (again {repeated} times since it was last reported)"
        log.error(message)
        if self.on_error is not None:
            try:
                self.on_error(message)
            except Exception:
                log.exception("error callback failed")

    def clear_error(self, condition: str) -> None:
        """``condition`` works again: clear the status error if it was about that."""
        if self.metrics.error_condition == condition:
            self.metrics.set_error("", "")

    def stop(self, timeout: float = 10.0) -> list[str]:
        """Stop every stage and join it; return the names of threads that did not end in time."""
        self.stopping.set()
        deadline = time.monotonic() + timeout
        started = [stage for stage in self.stages if stage.ident is not None]
        for stage in started:
            stage.join(max(0.0, deadline - time.monotonic()))
        return [stage.name for stage in started if stage.is_alive()]

    def wait(self, poll_s: float = 0.2) -> None:
        """Block until the engine stops (``max_frames`` reached or :meth:`stop`)."""
        while not self.stopping.wait(poll_s):
            pass
