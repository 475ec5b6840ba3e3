"""Hostile OSC input: malformed packets, wrong types, NaN/inf, huge strings, unknown addresses, floods."""

import math
import re
import socket
import time

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vacelive.engine.loop import Engine
from vacelive.engine.osc import OscControl, OscServer, impulses_as_nil
from vacelive.engine.params import MAX_STRING_LENGTH, REGISTRY, TEXT_FORMATS, Kind
from vacelive.engine.state import ParamStore
from tests.fakes import CountingSource, RecordingSink, ScriptedGenerator
from tests.osc_peer import Peer, message

ADDRESSES = [p.address for p in REGISTRY] + ["/vacelive/", "/vacelive/status/fps", "/nope", "/vacelive/*",
                                             "/vacelive/context_scale/extra", "/" + "x" * 3000]
CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")  # what OSC strings can carry
ARGS = st.one_of(
    st.integers(min_value=-(2**31), max_value=2**31 - 1),
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.text(CHARS, max_size=50),
    st.text(CHARS, min_size=2001, max_size=2100),
    st.binary(min_size=1, max_size=64),
    st.booleans(),
)


def assert_all_in_range(store: ParamStore) -> None:
    """Every value against what its parameter declares (type, minimum, maximum, choices, string
    limit, text format), not against ``Param.coerce``, the code under test."""
    snapshot = store.snapshot()
    for param in REGISTRY:
        value = snapshot[param.name]
        where = (param.name, value)
        if param.kind is Kind.TRIGGER:
            assert value is False, where
        elif param.kind is Kind.BOOL:
            assert isinstance(value, bool), where
        elif param.kind in (Kind.FLOAT, Kind.INT):
            wanted = float if param.kind is Kind.FLOAT else int
            assert type(value) is wanted and math.isfinite(value), where
            assert param.minimum is None or value >= param.minimum, where
            assert param.maximum is None or value <= param.maximum, where
        elif param.kind is Kind.CHOICE:
            assert value in param.choices, where
        else:  # STRING, PATH, STRING_LIST
            items = value if param.kind is Kind.STRING_LIST else [value]
            assert isinstance(items, list), where
            for item in items:
                assert isinstance(item, str) and len(item) <= MAX_STRING_LENGTH and "\x00" not in item, where
            if param.text_format and value:
                assert re.fullmatch(TEXT_FORMATS[param.text_format][0], value), where


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(address=st.sampled_from(ADDRESSES), args=st.lists(ARGS, max_size=3))
def test_any_message_leaves_every_parameter_valid(address, args):
    store = ParamStore()
    control = OscControl(store)
    control.dispatcher.call_handlers_for_packet(message(address, *args), ("127.0.0.1", 5555))
    assert_all_in_range(store)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=256))
def test_random_bytes_never_raise(data):
    store = ParamStore()
    control = OscControl(store)
    control.dispatcher.call_handlers_for_packet(data, ("127.0.0.1", 5555))
    control.dispatcher.call_handlers_for_packet(b"/vacelive/seed\x00\x00" + data, ("127.0.0.1", 5555))
    assert_all_in_range(store)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=256), impulse_at=st.integers(min_value=0, max_value=255))
def test_the_impulse_rewrite_never_moves_a_byte(data, impulse_at):
    data = data[:impulse_at] + b"I" + data[impulse_at:]
    rewritten = impulses_as_nil(data)
    assert len(rewritten) == len(data)
    assert all(a == b or (a, b) == (ord("I"), ord("N")) for a, b in zip(data, rewritten))


def test_a_flood_of_hostile_messages_does_not_stop_the_clock():
    store = ParamStore()
    store.set("width", 64, live=False)
    store.set("height", 64, live=False)
    store.set("fps", 50.0)
    sink = RecordingSink()
    engine = Engine(store, ScriptedGenerator(64, 64), CountingSource(32, 16, 200.0), [sink],
                    make_annotator=lambda n: None, make_mask_source=lambda n: None)
    server = OscServer(OscControl(store), "127.0.0.1", 0)
    server.start()
    engine.start()
    rng = np.random.default_rng(0)
    hostile = [
        message("/vacelive/context_scale", float("nan")),
        message("/vacelive/context_scale", float("inf")),
        message("/vacelive/steps", "many"),
        message("/vacelive/prompt", "z" * 5000),
        message("/vacelive/unknown", 1),
        message("/vacelive/steps", 1e9),  # clamped; fps stays out of the flood so 50 fps is the rate in force
        message("/vacelive/width", 10.0),
        b"garbage\x00\x00",
        message("/vacelive/context_scale", 0.7),
    ]
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        time.sleep(0.3)
        start = time.monotonic()
        sent = 0
        while sent < 10_000:  # 10,000 messages in about a second
            sender.sendto(hostile[int(rng.integers(len(hostile)))], server.address)
            sent += 1
            if sent % 100 == 0:
                time.sleep(max(0.0, start + sent / 10_000 - time.monotonic()))
        flood_end = time.monotonic()
        time.sleep(0.5)
        peer = Peer(server.address)
        assert peer.ask("/vacelive/seed") == [42]  # the server still answers
        peer.close()
    finally:
        stuck = engine.stop()
        server.stop()
        sender.close()
    assert stuck == []
    assert store.get("fps") == 50.0  # the rate the checks below hold the clock to
    assert store.get("steps") == REGISTRY["steps"].maximum  # 1e9 was clamped, not taken
    period = 1.0 / store.get("fps")
    times = np.array(sink.times)
    during = times[(times >= start) & (times <= flood_end)]
    assert len(during) >= 0.8 * (flood_end - start) / period  # it kept its fps under the flood
    assert np.diff(during).max() < 5 * period  # and never held a frame for long
    assert_all_in_range(store)
