"""The OSCQuery WebSocket (LISTEN / IGNORE, OSC both ways), with a real client over loopback."""

import json
import socket

import pytest
from pythonosc.osc_message import OscMessage
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from vacelive.engine.osc import OscControl, OscServer
from vacelive.engine.oscquery import OscQueryServer
from vacelive.engine.oscquery_ws import QUEUE_LIMIT, WebSocketClient, accept_key
from vacelive.engine.state import ParamStore
from tests.osc_peer import Peer, message
from tests.waiting import wait_for

ALLOWED_ORIGIN = "http://localhost:8080"


class Status:
    """Status figures that change when the test says so."""

    def __init__(self):
        self.figures = {"fps": 24.0, "stalls": 0}

    def __call__(self):
        return dict(self.figures)


@pytest.fixture()
def served():
    store = ParamStore()
    control = OscControl(store)
    osc = OscServer(control, "127.0.0.1", 0)
    status = Status()
    server = OscQueryServer(store, status, "127.0.0.1", 0, osc.address, control=control,
                            allow_origins=[ALLOWED_ORIGIN], status_period_s=0.02)
    osc.start()
    server.start()
    yield store, server, osc, status
    server.stop()
    osc.stop()


def url(server):
    return "ws://%s:%d/" % server.address


def receive(ws):
    """The next binary frame, as (address, arguments)."""
    frame = ws.recv(timeout=5)
    assert isinstance(frame, bytes), frame
    msg = OscMessage(frame)
    return msg.address, list(msg.params)


def listen(ws, server, *paths, command="LISTEN"):
    for path in paths:
        ws.send(json.dumps({"COMMAND": command, "DATA": path}))
    # commands are handled in order on the connection's thread: wait until the server shows them
    client_listens = lambda: any(set(paths) <= c.listening if command == "LISTEN" else not set(paths) & c.listening
                                 for c in server.clients)
    assert wait_for(client_listens)


def test_listened_values_follow_changes_made_elsewhere(served):
    store, server, osc, _ = served
    with connect(url(server)) as ws:
        listen(ws, server, "/vacelive/context_scale", "/vacelive/pause")
        peer = Peer(osc.address)  # another controller, over UDP
        try:
            peer.send("/vacelive/context_scale", 0.5)
            assert receive(ws) == ("/vacelive/context_scale", [0.5])
            store.update({"pause": True, "seed": 5})  # as a preset load does
            assert receive(ws) == ("/vacelive/pause", [True])  # seed is not listened to
        finally:
            peer.close()


def test_ignore_stops_the_stream(served):
    store, server, _, _ = served
    with connect(url(server)) as ws:
        listen(ws, server, "/vacelive/seed", "/vacelive/steps")
        listen(ws, server, "/vacelive/seed", command="IGNORE")
        store.set("seed", 7)
        store.set("steps", 2)
        assert receive(ws) == ("/vacelive/steps", [2])  # the ignored seed change never came


def test_osc_sent_over_the_websocket_is_applied_and_answered(served):
    store, server, _, _ = served
    fired = []
    store.subscribe(lambda param, value: fired.append(param.name) if param.name == "cut" else None)
    with connect(url(server)) as ws:
        ws.send(message("/vacelive/seed", 77))
        assert wait_for(lambda: store.get("seed") == 77)
        ws.send(message("/vacelive/seed"))
        assert receive(ws) == ("/vacelive/seed", [77])
        ws.send(message("/vacelive/volume", 1.0))
        assert receive(ws) == ("/vacelive/error", ["/vacelive/volume", "unknown address"])
        ws.send(b"/vacelive/cut\x00\x00\x00,I\x00\x00")  # an impulse, as ossia score sends
        assert wait_for(lambda: fired == ["cut"])
        ws.send([message("/vacelive/steps", 3)[:8], message("/vacelive/steps", 3)[8:]])  # one message, two frames
        assert wait_for(lambda: store.get("steps") == 3)


def test_listened_status_figures_are_sent_when_they_change(served):
    _, server, _, status = served
    with connect(url(server)) as ws:
        listen(ws, server, "/vacelive/status/fps")
        assert receive(ws) == ("/vacelive/status/fps", [24.0])
        status.figures["stalls"] = 3  # not listened to
        status.figures["fps"] = 12.5
        assert receive(ws) == ("/vacelive/status/fps", [12.5])


def test_garbage_does_not_end_the_connection(served):
    store, server, _, _ = served
    with connect(url(server)) as ws:
        for junk in ("not json", json.dumps({"COMMAND": "LISTEN", "DATA": "/vacelive/nothing"}),
                     json.dumps({"COMMAND": "LISTEN", "DATA": "/vacelive"}), json.dumps([1, 2])):
            ws.send(junk)
        ws.send(b"\x00\x01garbage")
        ws.send(message("/vacelive/seed"))
        assert receive(ws) == ("/vacelive/seed", [42])
        assert all(not c.listening for c in server.clients)


def test_websocket_origin_rules(served):
    _, server, _, _ = served
    with pytest.raises(InvalidStatus) as refused:
        connect(url(server), origin="http://some-site.example")
    assert refused.value.response.status_code == 403
    for origin in (ALLOWED_ORIGIN, "http://127.0.0.1:%d" % server.address[1]):  # named, and the server's own
        with connect(url(server), origin=origin) as ws:
            ws.send(message("/vacelive/seed"))
            assert receive(ws) == ("/vacelive/seed", [42])


def raw_handshake(server, headers, host="127.0.0.1"):
    sock = socket.create_connection(server.address, timeout=5)
    try:
        lines = ["GET / HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
        sock.sendall("\r\n".join(lines).encode())
        return sock.recv(4096).decode("latin-1")
    finally:
        sock.close()


HANDSHAKE_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
HANDSHAKE = {"Upgrade": "websocket", "Connection": "keep-alive, Upgrade", "Sec-WebSocket-Version": "13",
             "Sec-WebSocket-Key": HANDSHAKE_KEY}


def test_dns_rebinding_is_refused(served):
    """A page on attacker.example re-resolved to 127.0.0.1 sends its own name as Host (and no Origin
    on a same-origin GET): refused, for the tree and the WebSocket alike."""
    _, server, _, _ = served
    port = server.address[1]
    assert raw_handshake(server, {}, host=f"attacker.example:{port}").startswith("HTTP/1.1 403")
    assert raw_handshake(server, HANDSHAKE, host=f"attacker.example:{port}").startswith("HTTP/1.1 403")
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", f"{socket.gethostname()}.local"):
        assert raw_handshake(server, {}, host=host).startswith("HTTP/1.1 200"), host


def test_malformed_handshakes_are_refused(served):
    _, server, _, _ = served
    answer = raw_handshake(server, HANDSHAKE)
    assert answer.startswith("HTTP/1.1 101") and f"Sec-WebSocket-Accept: {accept_key(HANDSHAKE_KEY)}" in answer
    assert accept_key(HANDSHAKE_KEY) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455's own example
    assert raw_handshake(server, HANDSHAKE | {"Sec-WebSocket-Version": "8"}).startswith("HTTP/1.1 426")
    assert raw_handshake(server, HANDSHAKE | {"Sec-WebSocket-Key": "short"}).startswith("HTTP/1.1 400")


def test_a_client_close_is_answered_with_a_close(served):
    _, server, _, _ = served
    with connect(url(server)) as ws:
        assert wait_for(lambda: len(server.clients) == 1)
    assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 1000  # a clean handshake
    assert wait_for(lambda: server.clients == [])


def test_stopping_the_server_closes_its_clients():
    store = ParamStore()
    server = OscQueryServer(store, dict, "127.0.0.1", 0, ("127.0.0.1", 9000))
    server.start()
    with connect(url(server)) as ws:
        assert wait_for(lambda: len(server.clients) == 1)
        server.stop()
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001  # a proper close: going away
    assert server.clients == []


def test_a_client_that_does_not_read_is_dropped_not_waited_for():
    ours, theirs = socket.socketpair()
    try:
        client = WebSocketClient(ours.makefile("rb"), ours, ("127.0.0.1", 1), lambda c, t: None, lambda c, b: None)
        # the writer is not started: nothing drains the queue, as with a client that stopped reading
        for _ in range(QUEUE_LIMIT + 1):
            client.send_binary(b"x" * 16)  # returns at once, every time
        theirs.settimeout(5)
        assert theirs.recv(16) == b""  # dropped: the connection was shut, nothing was ever written
    finally:
        ours.close()
        theirs.close()
