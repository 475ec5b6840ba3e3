"""Keeping logs readable under floods: hostile OSC traffic, a source that keeps failing."""

from __future__ import annotations

import logging
import threading
import time


class LogLimiter:
    """Lets at most ``per_second`` messages a second through to a logger; counts the rest.

    When a new second starts after messages were held back, one line says how many.
    """

    def __init__(self, logger: logging.Logger, per_second: int = 5) -> None:
        self.logger = logger
        self.per_second = per_second
        self._second = 0
        self._count = 0
        self._suppressed = 0
        self._lock = threading.Lock()

    def log(self, level: int, message: str, *args: object) -> None:
        """Log ``message % args`` at ``level`` unless this second's allowance is used up."""
        now = int(time.monotonic())
        with self._lock:
            if now != self._second:
                suppressed, self._suppressed = self._suppressed, 0
                self._second, self._count = now, 0
                if suppressed:
                    self.logger.log(level, "%d similar messages suppressed", suppressed)
            self._count += 1
            if self._count > self.per_second:
                self._suppressed += 1
                return
        self.logger.log(level, message, *args)


class RateLimitFilter(logging.Filter):
    """A logging filter that lets at most ``per_second`` records a second through for records
    logged from files whose path contains ``path_part`` (other records pass untouched); the first
    record let through after a suppression says how many were held back.

    For libraries that log per packet on the root logger (python-osc's "Could not identify
    content type of dgram ..."), so a flood of bad packets cannot flood the terminal.
    """

    def __init__(self, path_part: str, per_second: int = 5) -> None:
        super().__init__()
        self.path_part = path_part
        self.per_second = per_second
        self.suppressed_total = 0
        self._second = 0
        self._count = 0
        self._suppressed = 0
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.path_part not in record.pathname.replace("\\", "/"):
            return True
        now = int(time.monotonic())
        with self._lock:
            if now != self._second:
                self._second, self._count = now, 0
            self._count += 1
            if self._count > self.per_second:
                self._suppressed += 1
                self.suppressed_total += 1
                return False
            suppressed, self._suppressed = self._suppressed, 0
        if suppressed:
            record.msg = f"{record.getMessage()} ({suppressed} similar messages suppressed)"
            record.args = ()
        return True


class RepeatFilter:
    """True for a message unless it equals the previous one and came within ``window_s``.

    :attr:`repeated` says, when a message is let through again, how often it was held back
    since it was last reported (a source that keeps failing: once, then "again 4 times").
    """

    def __init__(self, window_s: float = 10.0) -> None:
        self.window_s = window_s
        self.repeated = 0
        self._held = 0
        self._last = ""
        self._last_at = -float("inf")

    def fresh(self, message: str) -> bool:
        """Whether ``message`` should be reported now."""
        now = time.monotonic()
        if message == self._last and now - self._last_at < self.window_s:
            self._held += 1
            return False
        self.repeated = self._held if message == self._last else 0
        self._held = 0
        self._last, self._last_at = message, now
        return True
