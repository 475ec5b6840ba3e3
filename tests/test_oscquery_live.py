"""A live run (scripted generator) serves OSCQuery, its WebSocket and mDNS, all on loopback."""

import json
import socket
import threading
import urllib.request

from pythonosc.osc_message import OscMessage
from websockets.sync.client import connect
from zeroconf import IPVersion, ServiceBrowser, ServiceListener, Zeroconf

from vacelive.engine.app import LiveRun, build_store
from vacelive.engine.discovery import OSCQUERY_SERVICE
from vacelive.engine.loop import Engine
from tests.fakes import CountingSource, RecordingSink, ScriptedGenerator
from tests.osc_peer import Peer, message
from tests.waiting import wait_for


def free_tcp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Names(ServiceListener):
    def __init__(self):
        self.added = set()

    def add_service(self, zc, type_, name):
        self.added.add(name)

    def remove_service(self, zc, type_, name):
        pass

    def update_service(self, zc, type_, name):
        pass


def test_a_live_run_streams_values_takes_osc_over_the_websocket_and_is_discoverable(tmp_path):
    http_port = free_tcp_port()
    store = build_store(overrides={"osc_port": 0, "http_port": http_port, "width": 64, "height": 64,
                                   "preset_dir": str(tmp_path)})
    assert store.get("osc_host") == "127.0.0.1" and store.get("mdns") is True
    engine = Engine(store, ScriptedGenerator(64, 64), CountingSource(32, 16, 50.0), [RecordingSink()],
                    make_annotator=lambda name: None, make_mask_source=lambda name: None)
    run = LiveRun(store, engine)
    runner = threading.Thread(target=run.run, daemon=True)
    zc = Zeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
    names = Names()
    browsing = ServiceBrowser(zc, OSCQUERY_SERVICE, names)
    runner.start()
    peer = Peer(run.osc.address)
    try:
        with connect(f"ws://127.0.0.1:{http_port}/") as ws:
            ws.send(json.dumps({"COMMAND": "LISTEN", "DATA": "/vacelive/context_scale"}))
            assert wait_for(lambda: any(c.listening for c in run.oscquery.clients), 15.0)
            peer.send("/vacelive/context_scale", 1.5)  # another controller
            frame = OscMessage(ws.recv(timeout=5))
            assert (frame.address, frame.params) == ("/vacelive/context_scale", [1.5])
            ws.send(message("/vacelive/prompt", "a forest at dawn"))  # OSC over the WebSocket
            assert wait_for(lambda: store.get("prompt") == "a forest at dawn", 15.0)
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/?HOST_INFO", timeout=5) as response:
            info = json.loads(response.read())
        assert (info["OSC_IP"], info["OSC_PORT"]) == run.osc.address

        def advertised():  # other engines on this machine may advertise too: ours is the one on our port
            infos = [zc.get_service_info(OSCQUERY_SERVICE, name, timeout=2000) for name in list(names.added)]
            return any(i is not None and i.port == http_port and i.parsed_addresses() == ["127.0.0.1"] for i in infos)

        assert wait_for(advertised, 15.0)
    finally:
        peer.close()
        engine.stopping.set()
        runner.join(30)
        browsing.cancel()
        zc.close()
    assert not runner.is_alive() and run.stuck == []
