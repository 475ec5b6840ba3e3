"""Answers reach the user: the sender and the osc_reply target (one-shot senders have closed their
port by then), clamped values are answered, osc_reply is validated, status errors clear."""

from __future__ import annotations

import logging
import socket
import time

import pytest

from tests.osc_peer import Peer, message
from vacelive.engine.loop import Engine
from vacelive.engine.metrics import Metrics
from vacelive.engine.osc import OscControl, OscServer, StatusSender
from vacelive.engine.state import ParamStore
from tests.fakes import CountingSource, RecordingSink, ScriptedGenerator


@pytest.fixture()
def engine_osc():
    """A store, its OSC server, and a listener standing in for TouchDesigner's OSC In (osc_reply)."""
    store = ParamStore()
    listener = Peer(("127.0.0.1", 9))  # only receives
    store.set("osc_reply", f"127.0.0.1:{listener.address[1]}")
    status = StatusSender(store, Metrics().summary)
    server = OscServer(OscControl(store, on_replies=status.copy_replies), "127.0.0.1", 0)
    server.start()
    yield store, server, listener
    server.stop()
    status.stop()
    listener.close()


def _one_shot(target: tuple[str, int], address: str, *args) -> None:
    """Send like oscsend: from a fresh socket, closed at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(message(address, *args), target)


def test_a_one_shot_query_is_answered_at_the_reply_target(engine_osc):
    store, server, listener = engine_osc
    store.set("context_scale", 0.75)
    _one_shot(server.address, "/vacelive/context_scale")
    assert listener.receive() == ("/vacelive/context_scale", [pytest.approx(0.75)])


def test_a_refusal_reaches_the_sender_and_the_reply_target(engine_osc):
    _, server, listener = engine_osc
    sender = Peer(server.address)
    try:
        sender.send("/vacelive/steps", "four")
        for peer in (sender, listener):
            address, args = peer.receive()
            assert address == "/vacelive/error" and args[0] == "/vacelive/steps" and "expected a number" in args[1]
    finally:
        sender.close()


def test_a_clamped_value_is_answered_with_the_value_in_force(engine_osc):
    store, server, listener = engine_osc
    high = store.registry["context_scale"].maximum
    _one_shot(server.address, "/vacelive/context_scale", 99.0)
    assert listener.receive() == ("/vacelive/context_scale", [pytest.approx(high)])
    assert store.get("context_scale") == high


def test_a_malformed_reply_target_is_refused_and_the_old_one_kept(engine_osc):
    store, server, listener = engine_osc
    before = store.get("osc_reply")
    _one_shot(server.address, "/vacelive/osc_reply", "nonsense")
    address, args = listener.receive()
    assert (address, args[0]) == ("/vacelive/error", "/vacelive/osc_reply")
    assert "'nonsense' is not host:port" in args[1]
    assert store.get("osc_reply") == before
    for bad in ("127.0.0.1:0", "127.0.0.1:70000", "host:port", ":"):
        _one_shot(server.address, "/vacelive/osc_reply", bad)
        assert listener.receive()[0] == "/vacelive/error"
    assert store.get("osc_reply") == before


def test_status_errors_carry_their_age_and_clear_when_the_condition_clears():
    store = ParamStore()
    store.set("width", 64, live=False)
    store.set("height", 64, live=False)
    engine = Engine(store, ScriptedGenerator(64, 64), CountingSource(), [RecordingSink()],
                    make_annotator=lambda n: None, make_mask_source=lambda n: None)
    engine.report_error("source counting: lost", condition="source")
    time.sleep(0.2)
    summary = engine.metrics.summary()
    assert summary["error"] == "source counting: lost" and summary["error_age_s"] >= 0.2
    engine.clear_error("generator")  # another condition: the error stays
    assert engine.metrics.summary()["error"] == "source counting: lost"
    engine.start()
    try:
        deadline = time.monotonic() + 10
        while engine.metrics.summary()["error"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert engine.metrics.summary()["error"] == "" and engine.metrics.summary()["error_age_s"] == 0.0
    finally:
        assert engine.stop() == []
    engine.report_error("out of memory: steps lowered to 3")  # a one-off stays, with its age
    engine.clear_error("source")
    assert engine.metrics.summary()["error"] == "out of memory: steps lowered to 3"


def test_python_osc_per_packet_warnings_are_rate_limited(caplog):
    store = ParamStore()
    server = OscServer(OscControl(store), "127.0.0.1", 0)
    server.start()
    # a bundle whose element is neither a message nor a bundle: python-osc warns once per packet
    bad_bundle = b"#bundle\x00" + bytes(8) + (8).to_bytes(4, "big") + b"garbage!"
    try:
        with caplog.at_level(logging.WARNING), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for _ in range(300):
                sock.sendto(bad_bundle, server.address)
            time.sleep(1.0)
            sock.sendto(bad_bundle, server.address)  # a new second: let through, with the count
            time.sleep(0.5)
    finally:
        server.stop()
    lines = [r.getMessage() for r in caplog.records if "Could not identify content type" in r.getMessage()]
    assert 1 <= len(lines) <= 15  # at most 5 a second over the ~1.5 s of the flood
    assert any("similar messages suppressed" in line for line in lines)


def test_a_status_figure_is_answered_when_asked():
    metrics = Metrics()
    metrics.sources = ["ndi:TD-out", "ndi:TD-preview"]
    store = ParamStore()
    server = OscServer(OscControl(store, status=metrics.summary), "127.0.0.1", 0)
    server.start()
    peer = Peer(server.address)
    try:
        assert peer.ask("/vacelive/status/sources") == ["ndi:TD-out", "ndi:TD-preview"]
        assert peer.ask("/vacelive/status/stalls") == [0]
        peer.send("/vacelive/status/nothing")
        assert peer.receive() == ("/vacelive/error", ["/vacelive/status/nothing", "unknown address"])
    finally:
        server.stop()
        peer.close()
