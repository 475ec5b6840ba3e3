"""A frame clock for sources that generate or play frames at a fixed rate."""

from __future__ import annotations

import time


class FrameClock:
    """Says when the next frame is due at ``fps``; never bursts to catch up after a stall."""

    def __init__(self, fps: float, max_lag_frames: float = 2.0) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.period = 1.0 / fps
        self.max_lag = max_lag_frames * self.period
        self._next: float | None = None

    def wait(self, timeout: float) -> bool:
        """Sleep until the next frame is due; ``False`` if that is more than ``timeout`` away.

        On ``False`` the caller returns ``None`` from ``read()``; the slot is kept for the next call.
        """
        now = time.perf_counter()
        if self._next is None:
            self._next = now
        delay = self._next - now
        if delay > timeout:
            time.sleep(max(0.0, timeout))
            return False
        if delay > 0:
            time.sleep(delay)
        elif -delay > self.max_lag:  # fell behind (stall, slow consumer): restart the clock
            self._next = now
        self._next += self.period
        return True

    def reset(self) -> None:
        """Make the next frame due immediately."""
        self._next = None
