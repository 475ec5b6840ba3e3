"""The source reader: frames in, resized crop-to-fill, at most the engine's fps; it says what it
waits for while a network sender is not there."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

import numpy as np

from vacelive.bridges.base import BridgeError, BridgeState, Source
from vacelive.engine.frames import crop_to_fill
from vacelive.engine.live.queues import InputFrame
from vacelive.engine.live.stage import Stage

if TYPE_CHECKING:
    from vacelive.engine.loop import Engine

log = logging.getLogger(__name__)


class SourceReader(Stage):
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


def waiting_note(source: Source) -> str:
    """``waiting for ndi source 'X' (visible now: A, B)``: what a source waits for and what it sees."""
    scheme, _, wanted = source.name.partition(":")
    visible = source.visible()
    seen = "" if visible is None else f" (visible now: {', '.join(visible) if visible else 'none'})"
    return f"waiting for {scheme} source '{wanted.split('?')[0]}'{seen}"
