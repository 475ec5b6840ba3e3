"""OSCQuery conformance: walk the whole served tree and check every node against the proposal's rules.

The rules (Vidvox's OSCQuery proposal, as TouchDesigner, Chataigne, Vezér and ossia score read it):
every node has FULL_PATH (its own path) and DESCRIPTION; a container has CONTENTS and no value; a
method's VALUE is an array matching TYPE tag for tag (bools as JSON true/false), present exactly when
ACCESS has the read bit; triggers are N or I, write-only; RANGE, CLIPMODE and UNIT carry one entry per
tag, UNIT from the proposal's unit list; every attribute HOST_INFO advertises is queryable, and appears
somewhere; a container answers attribute queries it lacks with {}, a method with 204; HEAD, keep-alive
and CORS for a named origin. The OSC side is then checked against what the tree claims.
"""

import http.client
import json
import math

import pytest

from vacelive.engine.params import Applies, Kind
from vacelive.engine.osc import OscControl, OscServer
from vacelive.engine.oscquery import OscQueryServer
from vacelive.engine.state import ParamStore
from tests.osc_peer import Peer

PROPOSAL_UNITS = {
    *(f"distance.{u}" for u in ("m", "km", "dm", "cm", "mm", "um", "nm", "pm", "inches", "feet", "miles", "pixels")),
    "angle.degree", "angle.radian", "gain.linear", "gain.midigain", "gain.db", "gain.db-raw",
    *(f"time.{u}" for u in ("second", "bark", "bpm", "cents", "hz", "mel", "midinote", "ms", "speed")),
    *(f"speed.{u}" for u in ("m/s", "mph", "km/h", "kn", "ft/s", "ft/h")),
}
"""The proposal's recommended UNIT values (its units.md)."""
PROPOSAL_ATTRIBUTES = {"FULL_PATH", "CONTENTS", "TYPE", "VALUE", "RANGE", "ACCESS", "DESCRIPTION", "TAGS",
                       "EXTENDED_TYPE", "UNIT", "CRITICAL", "CLIPMODE", "OVERLOADS", "HTML"}
CORE_ATTRIBUTES = ("FULL_PATH", "CONTENTS", "TYPE", "DESCRIPTION")
NO_VALUE_TAGS = {"N", "I"}
ALLOWED_ORIGIN = "http://localhost:8080"
STATUS = {"fps": 23.9, "chunk_ms": 41.5, "stalls": 2, "mode": "control", "source": "live"}


def matches_tag(tag, value):
    if tag in "TF":
        return isinstance(value, bool)
    if tag in "ih":
        return isinstance(value, int) and not isinstance(value, bool)
    if tag in "fd":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if tag == "s":
        return isinstance(value, str)
    if tag in NO_VALUE_TAGS:
        return value is None
    raise AssertionError(f"unexpected type tag {tag!r}")


class Client:
    """One kept-alive HTTP/1.1 connection to the server."""

    def __init__(self, address):
        self.conn = http.client.HTTPConnection(*address, timeout=5)
        self.sockets = set()

    def request(self, method, path, headers=None):
        self.conn.request(method, path, headers=headers or {})
        response = self.conn.getresponse()
        raw = response.read()
        self.sockets.add(id(self.conn.sock))
        body = json.loads(raw) if raw else None
        return response.status, dict(response.getheaders()), body

    def get(self, path, headers=None):
        return self.request("GET", path, headers)

    def close(self):
        self.conn.close()


@pytest.fixture()
def served():
    store = ParamStore()
    store.set("sink", ["null", "file:out.mp4"], live=False)  # a two-item list beside the empty osc_allow
    store.set("context_scale", 0.25)
    store.set("pause", True)
    control = OscControl(store)
    osc = OscServer(control, "127.0.0.1", 0)
    server = OscQueryServer(store, lambda: dict(STATUS), "127.0.0.1", 0, osc.address, control=control,
                            allow_origins=[ALLOWED_ORIGIN])
    osc.start()
    server.start()
    client = Client(server.address)
    peer = Peer(osc.address)
    yield store, osc, server, client, peer
    peer.close()
    client.close()
    server.stop()
    osc.stop()


def walk(node, path="/"):
    yield path, node
    for name, child in node.get("CONTENTS", {}).items():
        yield from walk(child, path.rstrip("/") + "/" + name)


def check_method(path, node):
    type_tags = node["TYPE"]
    assert isinstance(type_tags, str) and "[" not in type_tags, path
    assert node["ACCESS"] in (0, 1, 2, 3), path
    if set(type_tags) & NO_VALUE_TAGS:
        assert type_tags in NO_VALUE_TAGS and not node["ACCESS"] & 1 and "VALUE" not in node, path
    if node["ACCESS"] & 1:
        value = node["VALUE"]
        assert isinstance(value, list) and len(value) == len(type_tags), (path, type_tags, value)
        for tag, item in zip(type_tags, value):
            assert matches_tag(tag, item), (path, tag, item)
    else:
        assert "VALUE" not in node, path
    for attribute in ("RANGE", "CLIPMODE", "UNIT"):
        if attribute in node:
            assert isinstance(node[attribute], list) and len(node[attribute]) == len(type_tags), (path, attribute)
    for i, limits in enumerate(node.get("RANGE", [])):
        assert isinstance(limits, dict) and set(limits) <= {"MIN", "MAX", "VALS"}, path
        item = node["VALUE"][i] if "VALUE" in node else None
        if "VALS" in limits:
            assert item is None or item in limits["VALS"], (path, item)
        if "MIN" in limits and "MAX" in limits:
            assert limits["MIN"] <= limits["MAX"], path
            assert item is None or limits["MIN"] <= item <= limits["MAX"], (path, item)
            assert node["CLIPMODE"][i] == "both", path  # every ranged number here is clamped
    for mode in node.get("CLIPMODE", []):
        assert mode in ("none", "low", "high", "both"), path
    for unit in node.get("UNIT", []):
        assert unit in PROPOSAL_UNITS, (path, unit)


def test_every_node_follows_the_rules(served):
    _, osc, _, client, _ = served
    status, headers, info = client.get("/?HOST_INFO")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert isinstance(info["NAME"], str) and info["OSC_TRANSPORT"] == "UDP"
    assert (info["OSC_IP"], info["OSC_PORT"]) == osc.address and info["OSC_IP"] != "0.0.0.0"
    assert all(isinstance(flag, bool) for flag in info["EXTENSIONS"].values())
    assert info["EXTENSIONS"]["LISTEN"] is True
    advertised = [name for name, on in info["EXTENSIONS"].items() if on and name in PROPOSAL_ATTRIBUTES]
    assert {"ACCESS", "VALUE", "RANGE", "DESCRIPTION", "UNIT", "CLIPMODE"} <= set(advertised)

    status, _, tree = client.get("/")
    assert status == 200
    carried, methods, containers = set(), 0, 0
    for path, node in walk(tree):
        assert node["FULL_PATH"] == path
        assert isinstance(node["DESCRIPTION"], str)
        assert set(node) <= PROPOSAL_ATTRIBUTES, (path, set(node) - PROPOSAL_ATTRIBUTES)
        assert client.get(path)[2] == node  # the node alone is the same as within the tree
        if "CONTENTS" in node:
            containers += 1
            assert "TYPE" not in node and "VALUE" not in node and node.get("ACCESS", 0) == 0, path
        else:
            methods += 1
            check_method(path, node)
        for attribute in (*CORE_ATTRIBUTES, *advertised):
            code, _, body = client.get(f"{path}?{attribute}")
            if attribute in node:
                assert (code, body) == (200, {attribute: node[attribute]}), (path, attribute)
            elif "CONTENTS" in node:
                assert (code, body) == (200, {}), (path, attribute)  # a container answers {}
            else:
                assert (code, body) == (204, None), (path, attribute)
        assert client.get(f"{path}?NOT_AN_ATTRIBUTE")[0] == 400
        get_headers, head = client.get(path)[1], client.request("HEAD", path)
        assert head[0] == 200 and head[2] is None and head[1]["Content-Length"] == get_headers["Content-Length"]
        carried |= set(node)
    assert containers == 3 and methods > 50
    assert set(advertised) <= carried, set(advertised) - carried  # an advertised attribute is used somewhere
    assert client.get("/vacelive/volume")[0] == 404
    assert len(client.sockets) == 1  # every request above went over one kept-alive connection


def test_the_specific_rules_of_the_issue(served):
    _, _, _, client, _ = served
    params = client.get("/")[2]["CONTENTS"]["vacelive"]["CONTENTS"]
    assert params["pause"]["TYPE"] == "T" and params["pause"]["VALUE"] == [True]
    assert params["mask_invert"]["VALUE"] == [False]
    cut = params["cut"]
    assert cut["TYPE"] in ("N", "I") and cut["ACCESS"] == 2 and "VALUE" not in cut
    assert (params["sink"]["TYPE"], params["sink"]["VALUE"]) == ("ss", ["null", "file:out.mp4"])
    assert (params["osc_allow"]["TYPE"], params["osc_allow"]["VALUE"]) == ("", [])
    assert params["width"]["UNIT"] == ["distance.pixels"] and params["fps"]["UNIT"] == ["time.hz"]
    assert "UNIT" not in params["prompt_transition"]  # "chunks" has no unit in the proposal's list
    assert params["context_scale"]["CLIPMODE"] == ["both"]
    assert params["status"]["CONTENTS"]["chunk_ms"]["UNIT"] == ["time.ms"]
    assert client.get("/vacelive/fps?UNIT")[:3:2] == (200, {"UNIT": ["time.hz"]})


def test_cors_for_named_origins_only(served):
    _, _, _, client, _ = served
    status, headers, _ = client.get("/", {"Origin": ALLOWED_ORIGIN})
    assert status == 200 and headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    status, headers, _ = client.get("/")
    assert status == 200 and "Access-Control-Allow-Origin" not in headers  # a native client
    status, headers, body = client.get("/", {"Origin": "http://some-site.example"})
    assert status == 403 and "Access-Control-Allow-Origin" not in headers and "http-allow-origin" in body["ERROR"]


def test_host_info_names_an_address_a_client_can_send_to():
    store = ParamStore()
    # OSC said to be bound to every interface; HTTP itself only listens on loopback
    server = OscQueryServer(store, dict, "127.0.0.1", 0, ("0.0.0.0", 9000))
    server.start()
    client = Client(server.address)
    try:
        info = client.get("/?HOST_INFO")[2]
        assert (info["OSC_IP"], info["OSC_PORT"]) == ("127.0.0.1", 9000)  # the address the request came in on
    finally:
        client.close()
        server.stop()


def test_osc_agrees_with_the_tree(served):
    store, _, _, client, peer = served
    params = client.get("/")[2]["CONTENTS"]["vacelive"]["CONTENTS"]
    fired = []
    store.subscribe(lambda param, value: fired.append(param.name) if param.kind is Kind.TRIGGER else None)
    for name, node in params.items():
        if "CONTENTS" in node:
            continue
        path, tags = node["FULL_PATH"], node["TYPE"]
        if node["ACCESS"] & 1:
            answer = peer.ask(path)  # an OSC query answers with the tree's value, tag for tag
            assert len(answer) == len(tags), (path, answer)
            for tag, got, want in zip(tags, answer, node["VALUE"]):
                assert matches_tag(tag, got), (path, tag, got)
                assert got == pytest.approx(want) if tag == "f" else got == want, (path, got, want)
        if node["ACCESS"] == 3 and node["VALUE"]:
            peer.send(path, *node["VALUE"])  # what the tree shows is accepted back unchanged
            assert peer.ask(path) == pytest.approx(node["VALUE"]) if tags == "f" else peer.ask(path) == node["VALUE"]
        elif node["ACCESS"] == 1 and node["VALUE"]:
            peer.send(path, *node["VALUE"])  # read-only: refused
            address, args = peer.receive()
            assert address == "/vacelive/error" and args[0] == path
        if tags in NO_VALUE_TAGS:
            before = fired.count(name)
            peer.send(path)
            peer.send_raw(path.encode() + b"\x00" * (4 - len(path) % 4) + b",I\x00\x00")
            peer.send(path, True)
            peer.send(path, 1.0)
            assert peer.ask("/vacelive/seed") == [store.get("seed")]  # no reply came before this answer
            assert fired.count(name) - before == 4, name
        for limits, mode in zip(node.get("RANGE", []), node.get("CLIPMODE", [])):
            if mode == "both" and node["ACCESS"] & 2:  # beyond both ends, the value lands on the bound
                span = limits["MAX"] - limits["MIN"] + 1
                in_force_now = store.registry[path.rsplit("/", 1)[1]].applies is not Applies.RELOAD
                for sent, bound in ((limits["MAX"] + span, limits["MAX"]), (limits["MIN"] - span, limits["MIN"])):
                    peer.send(path, float(sent))
                    assert peer.receive() == (path, [pytest.approx(bound)]), path  # the clamp is answered
                    if in_force_now:  # a reload-time value waits, pending, for /vacelive/reload
                        assert peer.ask(path) == [pytest.approx(bound)], path
