"""The live loop: the stages on their own threads, joined by bounded queues.

    source reader -> annotator -> chunk assembler -> generator (-> finish) -> publisher -> sink writers

- The source reader reads as fast as frames come, resizes them crop-to-fill, keeps at most the
  engine's fps, and drops the oldest when the annotator falls behind.
- The annotator takes one parameter snapshot at each chunk boundary (every 12 frames) and uses it
  for all 12 frames, so a chunk never sees half-applied changes; it annotates frames as they
  arrive, so generation does not wait for a whole chunk's annotation.
- The chunk assembler groups 12 annotated frames into a :class:`Chunk`; if the generator is busy
  the oldest waiting chunk is dropped (the freshest control wins).
- The generator stage calls the :class:`Generator`; errors are reported and the next chunk
  retries; repeated failures reset the model state. A generator that overlaps its chunks (the
  ``stages`` layout: chunk k decodes on one device while chunk k+1 denoises on another) hands
  each chunk to the finish stage, which waits for its frames and passes them on, in order.
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
import queue
import threading
import time
from collections.abc import Callable, Sequence

from vacelive.annotators.base import Annotator, MaskSource
from vacelive.bridges.base import Sink, Source
from vacelive.bridges.syphon import pump_main_run_loop
from vacelive.engine.chunk import Chunk
from vacelive.engine.frames import CHUNK_FRAMES
from vacelive.engine.generator import Generator
from vacelive.engine.live.annotate import AnnotatorStage
from vacelive.engine.live.assemble import ChunkAssembler
from vacelive.engine.live.finish import FinishStage
from vacelive.engine.live.generate import GeneratorStage
from vacelive.engine.live.publish import PreviewWriter, Publisher, SinkWriter
from vacelive.engine.live.queues import AnnotatedFrame, DropOldestQueue, InputFrame, OutputChunk
from vacelive.engine.live.source import SourceReader
from vacelive.engine.live.stage import Stage
from vacelive.engine.metrics import Metrics
from vacelive.engine.ratelimit import RepeatFilter
from vacelive.engine.state import ParamStore
from vacelive.engine.tempo import Quantizer

log = logging.getLogger(__name__)


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
        self.quantizer = Quantizer(None)
        """Holds beat-quantised changes (``quantize``) until the chunk shown on their boundary."""
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
        self.finish_stage = FinishStage(self)
        self.generator_stage = GeneratorStage(self, generator, self.finish_stage)
        self.publisher = Publisher(self, self.sink_writers, self.preview_writers)
        self.stages: list[Stage] = [
            self.source_reader,
            self.annotator_stage,
            ChunkAssembler(self),
            self.generator_stage,
            self.finish_stage,
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
            for sink in self.sinks:
                sink.open(self.width, self.height, fps)
                opened.append(sink)
            for writer in self.preview_writers:
                writer.sink.open(*writer.size, fps)
                opened.append(writer.sink)
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
        generator taken out (for the caller to free), once its decodes in flight are done.

        ``source`` comes opened; ``size`` is the new ``(width, height)``. New annotator factories
        (another weights folder) rebuild the annotator at the next chunk.
        """
        with self.swap_lock:
            self.hard_cut()
            if size is not None:
                self.width, self.height = size
            old = None
            if generator is not None:
                self.generator_stage.settle()
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
            pump_main_run_loop(0.05)  # Syphon's directory hears of new servers on the main thread only
