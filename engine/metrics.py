"""Live engine metrics: rates, chunk latency percentiles, counters and queue depths."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

import numpy as np


class RateMeter:
    """Events per second over a sliding window."""

    def __init__(self, window_s: float = 2.0) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def tick(self, now: float | None = None) -> None:
        """Record one event."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._times.append(now)
            self._trim(now)

    def rate(self, now: float | None = None) -> float:
        """Events per second over the window."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._trim(now)
            if len(self._times) < 2:
                return 0.0
            span = max(now - self._times[0], 1e-9)
            return len(self._times) / max(span, min(self.window_s, span))

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()


class Metrics:
    """Everything the status display and OSC status report."""

    def __init__(self) -> None:
        self.fps_in = RateMeter()
        self.fps_out = RateMeter()
        self.fps_generated = RateMeter()
        self.chunk_ms: deque[float] = deque(maxlen=200)
        self.ready_ms: deque[float] = deque(maxlen=200)
        self.glass_to_glass_ms: deque[float] = deque(maxlen=1000)
        self.stalls = 0
        self.dropped_frames = 0
        self.skipped_frames = 0  # generated but skipped by the publisher's latency trim (catch_up)
        self.dropped_chunks = 0
        self.generator_errors = 0
        self.sink_errors = 0
        self.frames_out = 0
        self.chunks_done = 0
        self.queue_depths: dict[str, Callable[[], int]] = {}
        self.figure_sources: list[Callable[[], dict[str, float | int | str]]] = []
        """More figures for the summary (tempo and beat phase from the quantiser)."""
        self.timings: dict[str, deque[float]] = {}
        self.source_state = "closed"
        self.source_note = ""
        """What the source is waiting for (a network sender not seen yet), empty once it delivers."""
        self.mode = "t2v"
        self.annotator = "none"
        """The control of the last chunk (the annotator that made it)."""
        self.mask_coverage = 0.0
        """Percentage of the last chunk's pixels the model generates (0 without a mask)."""
        self.references: list[str] = []
        """Reference slots set for the last chunk."""
        self.sources: list[str] = []
        """Spec strings of the network sources seen at the last scan (engine.sources)."""
        self.placement: list[str] = []
        """What each device runs, one line per device (:meth:`engine.placement.Placement.lines`)."""
        self.reload_state = ""
        """The last live reload: ``loading: ...``, ``done: ...`` or why it failed."""
        self.last_error = ""
        self.error_condition = ""
        """What the last error was about (status clears it when that recovers); '' for a one-off."""
        self.error_at = 0.0

    def set_error(self, message: str, condition: str) -> None:
        """Make ``message`` the status error ('' clears it); a repeat keeps its first time (age)."""
        if message != self.last_error:
            self.error_at = time.monotonic()
        self.last_error, self.error_condition = message, condition

    def record_chunk(self, generate_ms: float, ready_ms: float) -> None:
        """Record one chunk's generate time and the time from its first frame's capture to ready."""
        self.chunk_ms.append(generate_ms)
        self.ready_ms.append(ready_ms)
        self.chunks_done += 1

    def record(self, name: str, ms: float) -> None:
        """Record one duration of a named step (resize, annotate, denoise, publish, ...)."""
        series = self.timings.get(name)
        if series is None:
            series = self.timings.setdefault(name, deque(maxlen=500))
        series.append(ms)

    def latency_s(self) -> float:
        """Median glass-to-glass latency in seconds (0 before the first frame)."""
        latency = np.asarray(self.glass_to_glass_ms, dtype=np.float64)
        return float(np.median(latency)) / 1000.0 if latency.size else 0.0

    def median_ms(self, name: str) -> float:
        """Median of the recorded durations of ``name`` (0 when none)."""
        series = self.timings.get(name)
        return float(np.median(np.asarray(series))) if series else 0.0

    def summary(self) -> dict[str, float | int | str | list[str]]:
        """A flat dict of current figures (the names are the OSC status addresses)."""
        chunk = np.asarray(self.chunk_ms, dtype=np.float64)
        latency = np.asarray(self.glass_to_glass_ms, dtype=np.float64)
        out: dict[str, float | int | str | list[str]] = {
            "fps": round(self.fps_out.rate(), 2),
            "fps_in": round(self.fps_in.rate(), 2),
            "fps_generated": round(self.fps_generated.rate(), 2),
            "chunk_ms": round(float(np.median(chunk)), 1) if chunk.size else 0.0,
            "chunk_ms_p95": round(float(np.percentile(chunk, 95)), 1) if chunk.size else 0.0,
            "latency_ms": round(float(np.median(latency)), 1) if latency.size else 0.0,
            "latency_ms_p95": round(float(np.percentile(latency, 95)), 1) if latency.size else 0.0,
            "stalls": self.stalls,
            "dropped_frames": self.dropped_frames,
            "skipped_frames": self.skipped_frames,
            "dropped_chunks": self.dropped_chunks,
            "generator_errors": self.generator_errors,
            "sink_errors": self.sink_errors,
            "frames_out": self.frames_out,
            "chunks": self.chunks_done,
            "source": self.source_state,
            "source_note": self.source_note,
            "mode": self.mode,
            "annotator": self.annotator,
            "mask_coverage": self.mask_coverage,
            "references": list(self.references),
            "reload": self.reload_state,
            "placement": list(self.placement),
            "sources": list(self.sources),
            "error": self.last_error,
            "error_age_s": round(time.monotonic() - self.error_at, 1) if self.last_error else 0.0,
        }
        for figures in self.figure_sources:
            out.update(figures())
        for name, depth in self.queue_depths.items():
            out[f"queue_{name}"] = depth()
        for name in list(self.timings):
            out[f"{name}_ms"] = round(self.median_ms(name), 2)
        return out
