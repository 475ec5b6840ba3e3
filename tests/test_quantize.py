"""Beat-quantised changes through OSC and the live loop, on a controllable timeline."""

from __future__ import annotations

import time


from tests.fakes import RecordingSink, ScriptedGenerator
from tests.osc_peer import Peer
from tests.waiting import wait_for
from vacelive import bridges
from vacelive.engine.loop import Engine
from vacelive.engine.osc import OscControl, OscServer
from vacelive.engine.state import ParamStore
from vacelive.engine.tempo import ManualTimeline, Quantizer

W, H, FPS = 64, 48, 25.0


def _engine(store: ParamStore, generator) -> Engine:
    return Engine(store, generator, bridges.open_source("testpattern", width=W, height=H, fps=FPS),
                  [RecordingSink()], make_annotator=lambda n: None, make_mask_source=lambda n: None)


def test_a_quantised_cut_lands_on_the_first_chunk_shown_on_the_bar():
    store = ParamStore()
    for name, value in {"width": W, "height": H, "fps": FPS}.items():
        store.set(name, value, live=False)
    store.set("quantize", "bar")
    generator = ScriptedGenerator(W, H)
    engine = _engine(store, generator)
    timeline = ManualTimeline(240.0)  # a bar every second
    engine.quantizer = Quantizer(timeline, latency=lambda: 0.0)
    server = OscServer(OscControl(store, quantizer=engine.quantizer), "127.0.0.1", 0)
    server.start()
    peer = Peer(server.address)
    engine.start()
    try:
        assert wait_for(lambda: len(generator.chunks) >= 1, 30)
        peer.send("/vacelive/cut")
        assert wait_for(lambda: len(engine.quantizer.held) == 1, 5)
        boundary = engine.quantizer.held[0].boundary
        assert engine.epoch == 0  # held, not applied
        assert wait_for(lambda: engine.epoch == 1 and any(c.epoch == 1 for c in generator.chunks), 30)
    finally:
        assert engine.stop() == []
        server.stop()
        peer.close()
    first_new = next(c for c in generator.chunks if c.epoch == 1)
    last_old = [c for c in generator.chunks if c.epoch == 0][-1]
    assert first_new.captured_at[0] >= boundary  # shown on or after the bar (latency 0 here)
    assert last_old.captured_at[0] < boundary  # and not a chunk late: the chunk before started before it
    assert first_new.captured_at[0] - boundary < 12 / FPS + 0.2


def test_a_quantised_prompt_without_a_timeline_is_refused_and_nothing_changes():
    store = ParamStore()
    store.set("quantize", "beat")
    server = OscServer(OscControl(store, quantizer=Quantizer(None)), "127.0.0.1", 0)
    server.start()
    peer = Peer(server.address)
    try:
        before = store.get("prompt")
        peer.send("/vacelive/prompt", "a storm at sea")
        address, args = peer.receive()
        assert address == "/vacelive/error" and args[0] == "/vacelive/prompt"
        assert "no beat timeline: start with --link" in args[1]
        assert store.get("prompt") == before
        peer.send("/vacelive/context_scale", 0.5)  # not quantised: applies at once
        assert wait_for(lambda: store.get("context_scale") == 0.5, 5)
    finally:
        server.stop()
        peer.close()


def test_tempo_and_phase_are_status_figures():
    timeline = ManualTimeline(90.0, start=time.monotonic() - 1.0)
    figures = Quantizer(timeline).figures()
    assert figures["tempo"] == 90.0 and 1.4 < figures["beat_phase"] < 1.6 and figures["link_peers"] == 0
