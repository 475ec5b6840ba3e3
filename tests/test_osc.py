"""OSC control over a real UDP socket on loopback."""

import socket

import pytest

from vacelive.engine.osc import OscControl, OscServer, StatusSender, impulses_as_nil, osc_value, parse_host_port
from vacelive.engine.params import REGISTRY
from vacelive.engine.state import ParamStore
from tests.osc_peer import Peer, bundle
from tests.waiting import wait_for


@pytest.fixture()
def served():
    store = ParamStore()
    server = OscServer(OscControl(store), "127.0.0.1", 0)
    server.start()
    peer = Peer(server.address)
    yield store, server, peer
    peer.close()
    server.stop()


def test_binds_to_loopback_by_default():
    store = ParamStore()
    server = OscServer(OscControl(store), store.get("osc_host"), 0)  # as the app builds it
    server.start()
    peer = Peer(("127.0.0.1", server.address[1]))
    try:
        assert server.address[0] == "127.0.0.1"  # the bound socket's address, not a setting
        assert peer.ask("/vacelive/seed") == [42]
    finally:
        peer.close()
        server.stop()


def test_set_and_query(served):
    store, _, peer = served
    peer.send("/vacelive/context_scale", 0.5)
    assert peer.ask("/vacelive/context_scale") == [pytest.approx(0.5)]
    assert store.get("context_scale") == pytest.approx(0.5)
    peer.send("/vacelive/prompt", "a forest at dawn")
    assert peer.ask("/vacelive/prompt") == ["a forest at dawn"]


def test_touchdesigner_floats_for_ints_bools_and_choices(served):
    store, _, peer = served
    peer.send("/vacelive/steps", 2.0)
    peer.send("/vacelive/pause", 1.0)
    peer.send("/vacelive/annotator", 6.0)
    peer.send("/vacelive/seed", 17)
    assert peer.ask("/vacelive/steps") == [2]
    assert peer.ask("/vacelive/pause") == [True]  # answered as OSC true (T), not the int 1
    assert (store.get("steps"), store.get("pause"), store.get("annotator"), store.get("seed")) == (2, True, "flow", 17)


def test_out_of_range_is_clamped(served):
    store, _, peer = served
    peer.send("/vacelive/context_scale", 9.0)
    assert peer.ask("/vacelive/context_scale") == [pytest.approx(2.0)]


def test_wrong_type_is_answered_with_an_error_and_changes_nothing(served):
    store, _, peer = served
    peer.send("/vacelive/context_scale", "strong")
    address, args = peer.receive()
    assert address == "/vacelive/error"
    assert args[0] == "/vacelive/context_scale" and "number" in args[1]
    assert store.get("context_scale") == 1.0


def test_unknown_address_and_restart_param_are_refused_and_reload_params_wait(served):
    store, _, peer = served
    peer.send("/vacelive/volume", 1.0)
    assert peer.receive() == ("/vacelive/error", ["/vacelive/volume", "unknown address"])
    peer.send("/vacelive/osc_port", 9100.0)
    address, args = peer.receive()
    assert address == "/vacelive/error" and "restart" in args[1]
    assert store.get("osc_port") == 9000
    peer.send("/vacelive/width", 640.0)  # reload-time: kept as pending, the running value unchanged
    assert wait_for(lambda: store.pending == {"width": 640})
    assert store.get("width") == 0  # still "the model's native width"


def test_bundles_apply_every_message(served):
    store, _, peer = served
    peer.send_raw(bundle(("/vacelive/seed", 5), ("/vacelive/context_scale", 0.25)))
    assert wait_for(lambda: store.get("seed") == 5 and store.get("context_scale") == 0.25)


def test_string_list_is_answered_as_several_arguments(served):
    store, _, peer = served
    store.set("sink", ["null", "file:out.mp4"], live=False)
    assert peer.ask("/vacelive/sink") == ["null", "file:out.mp4"]


def test_malformed_packets_do_not_stop_the_server(served):
    store, _, peer = served
    for junk in (b"", b"\x00\x01garbage", b"/vacelive/seed\x00\x00,i\x00\x00", b"#bundle\x00" + b"\xff" * 20):
        peer.send_raw(junk)
    peer.send("/vacelive/seed", 77)
    assert peer.ask("/vacelive/seed") == [77]


def test_allow_list_refuses_other_senders():
    store = ParamStore()
    control = OscControl(store, allow=["10.9.9.9"])
    server = OscServer(control, "127.0.0.1", 0)
    server.start()
    peer = Peer(server.address)
    try:
        peer.send("/vacelive/seed", 3)
        peer.send("/vacelive/seed")  # a query: an allowed sender would get [3] or [42] back
        assert wait_for(lambda: control.refused >= 2)  # both handled, and refused
        assert store.get("seed") == 42
        with pytest.raises(socket.timeout):
            peer.receive(timeout=0.3)  # no answer either
        control.allow = frozenset({"10.9.9.9", "127.0.0.1"})  # the same server, the sender now allowed:
        assert peer.ask("/vacelive/seed") == [42]  # it answers, so the silence above was the refusal
    finally:
        peer.close()
        server.stop()


def test_status_is_sent_to_the_reply_target():
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(2.0)
    store = ParamStore()
    store.set("osc_reply", f"127.0.0.1:{listener.getsockname()[1]}")
    sender = StatusSender(store, lambda: {"fps": 24.0, "stalls": 3, "mode": "control"}, period_s=0.05)
    sender.start()
    try:
        seen = {}
        from pythonosc.osc_message import OscMessage

        while len(seen) < 3:
            data, _ = listener.recvfrom(4096)
            msg = OscMessage(data)
            seen[msg.address] = msg.params
        assert seen["/vacelive/status/fps"] == [24.0]
        assert seen["/vacelive/status/stalls"] == [3]
        assert seen["/vacelive/status/mode"] == ["control"]
    finally:
        sender.stop()
        listener.close()


def test_parse_host_port():
    assert parse_host_port("127.0.0.1:9002") == ("127.0.0.1", 9002)
    assert parse_host_port(":7000") == ("127.0.0.1", 7000)
    for bad in ("nope", "host:0", "host:99999", "host:abc"):
        with pytest.raises(ValueError):
            parse_host_port(bad)


def test_a_bool_is_answered_as_true_or_false(served):
    store, _, peer = served
    for sent, expected in ((1.0, True), (0, False), (True, True), (False, False)):
        peer.send("/vacelive/mask_invert", sent)
        (answer,) = peer.ask("/vacelive/mask_invert")
        assert answer is expected  # OSC T / F, which python-osc reads as bools
    assert osc_value(REGISTRY["pause"], True) == [True]


def impulse(address):
    """A message with one OSC impulse (``I``) argument, which python-osc cannot build."""
    padded = address.encode() + b"\x00" * (4 - len(address) % 4)
    return padded + b",I\x00\x00"


@pytest.mark.parametrize("args, fires", [
    ((), True), (("I",), True), ((None,), True), ((True,), True), ((1.0,), True), ((1,), True), ((-2.5,), True),
    ((False,), False), ((0.0,), False), ((0,), False),
])
def test_a_trigger_fires_on_no_argument_impulse_true_or_a_number(served, args, fires):
    store, _, peer = served
    fired = []
    store.subscribe(lambda param, value: fired.append(param.name) if param.name == "cut" else None)
    if args == ("I",):
        peer.send_raw(impulse("/vacelive/cut"))
    else:
        peer.send("/vacelive/cut", *args)
    assert peer.ask("/vacelive/seed") == [42]  # the next message answered: the trigger sent no reply
    assert fired == (["cut"] if fires else [])


def test_a_trigger_with_two_arguments_is_refused(served):
    _, _, peer = served
    peer.send("/vacelive/cut", 1, 1)
    address, args = peer.receive()
    assert address == "/vacelive/error" and "at most one argument" in args[1]


def test_impulse_type_tags_become_nil_in_messages_and_bundles():
    message = impulse("/vacelive/cut")
    assert impulses_as_nil(message) == message.replace(b",I", b",N")
    inner = impulse("/a")
    packet = b"#bundle\x00" + b"\x00" * 8 + len(inner).to_bytes(4, "big") + inner
    assert impulses_as_nil(packet).endswith(b",N\x00\x00")
    for untouched in (b"/vacelive/seed\x00\x00,i\x00\x00\x00\x00\x00\x07", b"junk", b"#bundle\x00" + b"\xff" * 20):
        assert impulses_as_nil(untouched) == untouched


def test_packets_from_a_stream_obey_the_allow_list_and_return_replies():
    store = ParamStore()
    control = OscControl(store, allow=["127.0.0.1"])
    from tests.osc_peer import message

    assert control.handle_packet(message("/vacelive/seed", 9), ("127.0.0.1", 1)) == []
    assert store.get("seed") == 9
    (reply,) = control.handle_packet(message("/vacelive/seed"), ("127.0.0.1", 1))
    assert reply == message("/vacelive/seed", 9)
    assert control.handle_packet(message("/vacelive/seed", 3), ("10.1.1.1", 1)) == []
    assert store.get("seed") == 9 and control.refused == 1


def _listener():
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(2.0)
    return listener


def _messages(listener, address, n=1):
    """The next ``n`` messages at ``address`` (others skipped)."""
    from pythonosc.osc_message import OscMessage

    got = []
    while len(got) < n:
        data, _ = listener.recvfrom(65536)
        msg = OscMessage(data)
        if msg.address == address:
            got.append(msg.params)
    return got


def test_engine_errors_reach_the_reply_target_truncated():
    from vacelive.engine.loop import Engine
    from vacelive.engine.osc import MAX_ERROR_TEXT
    from tests.fakes import CountingSource, RecordingSink, ScriptedGenerator

    listener = _listener()
    store = ParamStore()
    store.set("width", 64, live=False)
    store.set("height", 64, live=False)
    store.set("fps", 100.0)
    store.set("osc_reply", f"127.0.0.1:{listener.getsockname()[1]}")
    sender = StatusSender(store, dict, period_s=60.0)  # status figures off the way: errors only
    engine = Engine(store, ScriptedGenerator(64, 64, fail_on={0}), CountingSource(32, 16, 400.0), [RecordingSink()],
                    make_annotator=lambda n: None, make_mask_source=lambda n: None, on_error=sender.send_error)
    try:
        engine.start()
        [(kind, text)] = _messages(listener, "/vacelive/error")
        assert kind == "engine" and "scripted failure on chunk 0" in text and text.startswith("generator:")
        sender.send_error("e" * (MAX_ERROR_TEXT * 3))
        [(kind, text)] = _messages(listener, "/vacelive/error")
        assert (kind, text) == ("engine", "e" * MAX_ERROR_TEXT)
    finally:
        assert engine.stop() == []
        listener.close()


def test_an_internal_error_is_answered_and_the_server_goes_on(served):
    store, _, peer = served

    def broken(_value):
        raise ZeroDivisionError("division by zero in a preset action")

    store.register_action("cut", broken)
    peer.send("/vacelive/cut")
    address, args = peer.receive()
    assert address == "/vacelive/error"
    assert args == ["/vacelive/cut", "internal error: ZeroDivisionError('division by zero in a preset action')"]
    peer.send("/vacelive/seed", 5)
    assert peer.ask("/vacelive/seed") == [5]


def test_refusals_of_huge_addresses_and_reasons_are_truncated(served):
    from vacelive.engine.osc import MAX_ERROR_TEXT

    _, _, peer = served
    long_address = "/vacelive/" + "x" * 3000
    peer.send(long_address, 1)
    address, (where, reason) = peer.receive()
    assert address == "/vacelive/error"
    assert where == long_address[:MAX_ERROR_TEXT] and len(reason) <= MAX_ERROR_TEXT
    peer.send("/vacelive/prompt", "p" * 5000)  # refused: too long; the reason quotes no 5000 characters
    address, (where, reason) = peer.receive()
    assert (address, where) == ("/vacelive/error", "/vacelive/prompt")
    assert "limit is 2000" in reason and len(reason) <= MAX_ERROR_TEXT
