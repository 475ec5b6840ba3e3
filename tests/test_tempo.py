"""Beat timelines and the quantiser: changes held until the chunk shown on the boundary."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from tests.waiting import wait_for
from vacelive.engine.tempo import (
    LinkTimeline,
    ManualTimeline,
    MidiClockTimeline,
    Quantizer,
    QuantizeError,
    next_boundary,
)


def test_boundaries_of_beats_and_bars():
    timeline = ManualTimeline(120.0, start=100.0)  # a beat every 0.5 s from t = 100
    assert next_boundary(timeline, 1.0, 100.2) == pytest.approx(100.5)
    assert next_boundary(timeline, 4.0, 100.2) == pytest.approx(102.0)
    assert next_boundary(timeline, 4.0, 102.0) == pytest.approx(102.0)  # on the boundary: that one
    assert next_boundary(timeline, 16.0, 103.0) == pytest.approx(108.0)


def test_a_held_change_is_due_for_the_chunk_shown_on_the_boundary():
    timeline = ManualTimeline(120.0, start=0.0)
    latency = {"s": 0.5}
    quantizer = Quantizer(timeline, lambda: latency["s"])
    held = quantizer.hold("cut", True, "bar", now=0.3)
    assert held.boundary == pytest.approx(2.0)
    assert quantizer.due(captured_at=1.4) == []  # shows at 1.9: before the bar
    ready = quantizer.due(captured_at=1.5)  # shows at 2.0: on it
    assert [(c.name, c.value) for c in ready] == [("cut", True)] and quantizer.held == []
    quantizer.hold("prompt", "neon city", "beat", now=2.1)
    latency["s"] = 0.0
    assert quantizer.due(captured_at=2.4) == [] and quantizer.due(captured_at=2.5)[0].value == "neon city"


def test_without_a_timeline_a_quantised_change_is_refused_and_nothing_is_held():
    quantizer = Quantizer(None)
    with pytest.raises(QuantizeError, match="no beat timeline: start with --link"):
        quantizer.hold("prompt", "x", "beat")
    assert quantizer.held == [] and quantizer.figures()["tempo"] == 0.0


def test_two_link_peers_on_this_host_share_tempo_and_phase():
    link = pytest.importorskip("link")
    ours = LinkTimeline(120.0)
    theirs = link.Link(120.0)
    theirs.enabled = True
    try:
        assert wait_for(lambda: ours.peers() >= 1, 15)
        state = theirs.captureAppSessionState()
        state.setTempo(95.0, theirs.clock().micros())
        theirs.commitAppSessionState(state)
        assert wait_for(lambda: abs(ours.tempo() - 95.0) < 0.01, 15)
        ours.set_tempo(128.0)  # the engine can lead
        assert wait_for(lambda: abs(theirs.captureAppSessionState().tempo() - 128.0) < 0.01, 15)
        now = time.monotonic()
        phase = theirs.captureAppSessionState().phaseAtTime(theirs.clock().micros(), 4.0)
        assert abs((ours.beat_at(now) - phase) % 4.0) < 0.05 or abs((ours.beat_at(now) - phase) % 4.0 - 4.0) < 0.05
    finally:
        theirs.enabled = False
        ours.close()


def _clock(timeline, pulses: int, start: float, bpm: float) -> float:
    """Feed ``pulses`` MIDI clock pulses at ``bpm`` from ``start``; returns the last pulse's time."""
    step = 60.0 / bpm / MidiClockTimeline.PPQN
    for i in range(pulses):
        timeline.receive(SimpleNamespace(type="clock"), now=start + i * step)
    return start + (pulses - 1) * step


def test_a_midi_clock_gives_tempo_beat_and_boundaries():
    timeline = MidiClockTimeline(open_port=False, default_bpm=90.0)
    assert timeline.tempo() == 90.0  # before any clock
    timeline.receive(SimpleNamespace(type="start"), now=10.0)
    last = _clock(timeline, 49, start=10.0, bpm=128.0)  # two beats of pulses, the first on beat 0
    assert timeline.tempo() == pytest.approx(128.0)
    assert timeline.beat_at(last) == pytest.approx(2.0)
    assert timeline.beat_at(last + 60.0 / 128.0) == pytest.approx(3.0)  # extrapolated between pulses
    assert next_boundary(timeline, 4.0, last) == pytest.approx(10.0 + 4 * 60.0 / 128.0)
    timeline.receive(SimpleNamespace(type="songpos", pos=16), now=last + 0.001)  # jump to bar 2 (16 sixteenths)
    after = _clock(timeline, 1, start=last + 0.002, bpm=128.0)
    assert timeline.beat_at(after) == pytest.approx(4.0)
    timeline.set_tempo(60.0)  # MIDI clock has one leader: the source
    assert timeline.tempo() == pytest.approx(128.0, rel=0.05)


def test_without_the_midi_extra_the_start_says_what_to_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_mido(name, *args, **kwargs):
        if name == "mido":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_mido)
    with pytest.raises(RuntimeError, match=r'pip install "vacelive\[midi\]"'):
        MidiClockTimeline("IAC Driver Bus 1")
