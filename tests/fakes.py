"""Small in-process stand-ins for the loop tests: a counting source, a recording sink, generators."""

from __future__ import annotations

import threading
import time

import numpy as np

from vacelive.bridges.base import BridgeState, Sink, Source
from vacelive.engine.chunk import Chunk


class CountingSource(Source):
    """Produces frames whose pixels hold their index (mod 256) at ``fps``."""

    def __init__(self, width: int = 32, height: int = 16, fps: float = 100.0) -> None:
        self.name = "counting"
        self.width, self.height, self._fps = width, height, fps
        self.count = 0
        self._next = 0.0

    def open(self) -> None:
        self.state = BridgeState.LIVE
        self._next = time.monotonic()

    def read(self, timeout: float = 0.1) -> np.ndarray | None:
        delay = self._next - time.monotonic()
        if delay > timeout:
            time.sleep(timeout)
            return None
        time.sleep(max(0.0, delay))
        self._next += 1.0 / self._fps
        frame = np.full((self.height, self.width, 3), self.count % 256, dtype=np.uint8)
        self.count += 1
        return frame

    def close(self) -> None:
        self.state = BridgeState.CLOSED


class RecordingSink(Sink):
    """Keeps every frame written and when."""

    def __init__(self) -> None:
        self.name = "recording"
        self.frames: list[np.ndarray] = []
        self.times: list[float] = []
        self.closed = False
        self.opened_with: tuple[int, int, float] | None = None

    def open(self, width: int, height: int, fps: float) -> None:
        self.opened_with = (width, height, fps)

    def write(self, frame: np.ndarray) -> None:
        self.frames.append(frame)
        self.times.append(time.monotonic())

    def close(self) -> None:
        self.closed = True


class ScriptedGenerator:
    """Returns 12 frames filled with the chunk index + 1 (never 0, so never black), after ``delay_s``.

    ``fail_on`` lists chunk indices that raise; every call and reset is recorded.
    """

    name = "scripted"
    mode = "control"
    warnings: list[str] = []
    timings = {"denoise": 1.0}

    def __init__(self, width: int, height: int, delay_s: float = 0.0, fail_on: set[int] | None = None) -> None:
        self.width, self.height, self.delay_s = width, height, delay_s
        self.fail_on = fail_on or set()
        self.chunks: list[Chunk] = []
        self.resets = 0
        self.lock = threading.Lock()

    def generate(self, chunk: Chunk) -> np.ndarray:
        with self.lock:
            self.chunks.append(chunk)
        time.sleep(self.delay_s)
        if chunk.index in self.fail_on:
            raise RuntimeError(f"scripted failure on chunk {chunk.index}")
        value = 1 + chunk.index % 250
        return np.full((12, self.height, self.width, 3), value, dtype=np.uint8)

    def reset(self) -> None:
        with self.lock:
            self.resets += 1


def assert_clock_kept(times: list[float], fps: float, *, max_gap_periods: float = 5.0, share: float = 0.8) -> None:
    """The publisher kept its clock over the whole run: from the first to the last frame written,
    at least ``share`` of the frames the clock owed were written, and no two were further apart
    than ``max_gap_periods`` frame periods (a skipped repeat shows as one long gap, which a median
    or a percentile does not see). The default of 5 periods leaves room for a loaded CI machine's
    scheduling; the tests using it make a skipped repeat a gap of 18 periods or more."""
    period = 1.0 / fps
    assert len(times) >= 2, f"only {len(times)} frames written"
    span = times[-1] - times[0]
    owed = span / period + 1
    assert len(times) >= share * owed, f"{len(times)} frames written in {span:.2f} s at {fps} fps (owed {owed:.0f})"
    gaps = np.diff(times)
    worst = int(np.argmax(gaps))
    assert gaps[worst] < max_gap_periods * period, (
        f"a gap of {gaps[worst] * 1000:.0f} ms after frame {worst} (period {period * 1000:.0f} ms)")
