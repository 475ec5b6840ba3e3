"""Log flood protection."""

import logging

from vacelive.engine import ratelimit
from vacelive.engine.ratelimit import LogLimiter, RepeatFilter


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_log_limiter_passes_a_few_a_second_and_counts_the_rest(monkeypatch, caplog):
    clock = Clock()
    monkeypatch.setattr(ratelimit.time, "monotonic", clock)
    limiter = LogLimiter(logging.getLogger("flood"), per_second=3)
    with caplog.at_level(logging.WARNING, logger="flood"):
        for i in range(1000):
            limiter.log(logging.WARNING, "bad message %d", i)
        clock.now += 1.0
        limiter.log(logging.WARNING, "bad message %d", 1000)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["bad message 0", "bad message 1", "bad message 2", "997 similar messages suppressed",
                     "bad message 1000"]


def test_repeat_filter_drops_the_same_message_within_its_window(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(ratelimit.time, "monotonic", clock)
    seen = RepeatFilter(window_s=10.0)
    assert seen.fresh("source ndi:TD: not found")
    clock.now += 2
    assert not seen.fresh("source ndi:TD: not found")
    assert seen.fresh("another error")
    assert seen.fresh("source ndi:TD: not found")  # not the previous message any more
    clock.now += 11
    assert seen.fresh("source ndi:TD: not found") and seen.repeated == 0  # nothing was held back meanwhile
    for _ in range(4):
        clock.now += 2
        assert not seen.fresh("source ndi:TD: not found")
    clock.now += 3
    assert seen.fresh("source ndi:TD: not found") and seen.repeated == 4
