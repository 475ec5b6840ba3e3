"""Zeroconf/mDNS discovery, advertised and browsed on loopback only (127.0.0.1, never another network)."""

import json
import threading
import urllib.request
import uuid

import pytest
from zeroconf import InterfaceChoice, IPVersion, ServiceBrowser, ServiceListener, Zeroconf

from vacelive.engine.cli import build_parser
from vacelive.engine.discovery import OSC_SERVICE, OSCQUERY_SERVICE, Advertiser, advertised_addresses, mdns_interfaces
from vacelive.engine.oscquery import OscQueryServer
from vacelive.engine.params import REGISTRY
from vacelive.engine.state import ParamStore
from tests.waiting import wait_for


class Seen(ServiceListener):
    """What a browser has seen come and go."""

    def __init__(self):
        self.added, self.removed = set(), set()
        self.changed = threading.Event()

    def add_service(self, zc, type_, name):
        self.added.add(name)
        self.changed.set()

    def remove_service(self, zc, type_, name):
        self.removed.add(name)
        self.changed.set()

    def update_service(self, zc, type_, name):
        pass


@pytest.fixture()
def browser():
    zc = Zeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
    seen = Seen()
    browsing = ServiceBrowser(zc, [OSCQUERY_SERVICE, OSC_SERVICE], seen)
    yield zc, seen
    browsing.cancel()
    zc.close()


def test_the_engine_is_found_by_a_zeroconf_browser(browser):
    zc, seen = browser
    server = OscQueryServer(ParamStore(), dict, "127.0.0.1", 0, ("127.0.0.1", 9123))
    server.start()
    name = f"vacelive-test-{uuid.uuid4().hex[:8]}"  # other engines may advertise on this machine too
    advertiser = Advertiser(name, "127.0.0.1", 9123, server.address[1])
    advertiser.start()
    try:
        assert advertiser.ready.wait(15) and len(advertiser.registered) == 2
        names = {info.type: info.name for info in advertiser.registered}
        assert wait_for(lambda: set(names.values()) <= seen.added, 15.0), seen.added
        oscjson = zc.get_service_info(OSCQUERY_SERVICE, names[OSCQUERY_SERVICE], timeout=5000)
        osc = zc.get_service_info(OSC_SERVICE, names[OSC_SERVICE], timeout=5000)
        assert oscjson.parsed_addresses() == ["127.0.0.1"] and oscjson.port == server.address[1]
        assert osc.parsed_addresses() == ["127.0.0.1"] and osc.port == 9123
        # a client goes from the advertisement to the namespace, and from there to the OSC port
        address, port = oscjson.parsed_addresses()[0], oscjson.port
        with urllib.request.urlopen(f"http://{address}:{port}/?HOST_INFO", timeout=5) as response:
            info = json.loads(response.read())
        assert (info["OSC_IP"], info["OSC_PORT"]) == ("127.0.0.1", osc.port)
    finally:
        advertiser.stop()
        server.stop()
    assert wait_for(lambda: set(names.values()) <= seen.removed, 15.0), seen.removed  # goodbye packets went out


def test_advertising_follows_the_osc_host():
    assert mdns_interfaces("127.0.0.1") == ["127.0.0.1"]  # loopback only: nothing leaves the machine
    assert mdns_interfaces("localhost") == ["127.0.0.1"]
    assert mdns_interfaces("0.0.0.0") is InterfaceChoice.All
    assert advertised_addresses("127.0.0.1") == ["127.0.0.1"]
    services = Advertiser("vacelive", "127.0.0.1", 9000, 0).services()
    assert [s.type for s in services] == [OSC_SERVICE]  # HTTP off: OSC alone


def test_mdns_is_on_by_default_and_the_command_line_turns_it_off():
    assert REGISTRY["mdns"].default is True and REGISTRY["mdns"].group == "server"
    parser = build_parser()
    assert parser.parse_args(["run", "--no-mdns"]).mdns is False
    assert parser.parse_args(["run", "--mdns"]).mdns is True
    assert not hasattr(parser.parse_args(["run"]), "mdns")  # unset: the registry's default applies
