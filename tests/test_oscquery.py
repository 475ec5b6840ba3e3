"""The OSCQuery HTTP namespace, over a real HTTP connection on loopback.

The whole-tree conformance walk is tests/test_oscquery_conformance.py; the WebSocket is
tests/test_oscquery_ws.py.
"""

import http.client
import json
import urllib.error
import urllib.request

import pytest

from vacelive.engine.app import build_store
from vacelive.engine.origin import OriginPolicy, normalise_origin
from vacelive.engine.oscquery import OscQueryServer
from vacelive.engine.params import ParamError
from vacelive.engine.state import ParamStore


@pytest.fixture()
def served():
    store = ParamStore()
    server = OscQueryServer(store, lambda: {"fps": 23.9, "stalls": 2}, "127.0.0.1", 0, ("127.0.0.1", 9000),
                            allow_origins=["http://localhost:8080"])
    server.start()
    base = "http://%s:%d" % server.address
    yield store, base
    server.stop()


def get(url):
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, json.loads(response.read() or b"null")


def test_root_tree_lists_every_parameter_with_attributes(served):
    store, base = served
    status, tree = get(base + "/")
    assert status == 200
    params = tree["CONTENTS"]["vacelive"]["CONTENTS"]
    for p in store.registry:
        node = params[p.name]
        assert node["FULL_PATH"] == p.address
        assert {"TYPE", "DESCRIPTION", "ACCESS"} <= set(node)
    scale = params["context_scale"]
    assert scale["TYPE"] == "f" and scale["RANGE"] == [{"MIN": 0.0, "MAX": 2.0}] and scale["ACCESS"] == 3
    assert params["annotator"]["RANGE"] == [{"VALS": list(store.registry["annotator"].choices)}]
    assert params["osc_port"]["ACCESS"] == 1  # restart parameters are read-only live
    assert params["width"]["ACCESS"] == 3 and "pending until /vacelive/reload" in params["width"]["DESCRIPTION"]
    assert params["status"]["CONTENTS"]["stalls"]["VALUE"] == [2]
    assert params["pause"]["TYPE"] == "T" and params["pause"]["VALUE"] == [False]  # JSON false, not 0
    assert params["cut"]["TYPE"] == "N" and params["cut"]["ACCESS"] == 2 and "VALUE" not in params["cut"]


def test_values_reflect_live_state(served):
    store, base = served
    store.set("context_scale", 0.75)
    assert get(base + "/vacelive/context_scale")[1]["VALUE"] == [0.75]
    assert get(base + "/vacelive/context_scale?VALUE") == (200, {"VALUE": [0.75]})


def test_host_info_and_unknown_paths(served):
    _, base = served
    status, info = get(base + "/?HOST_INFO")
    assert info["OSC_PORT"] == 9000 and info["OSC_TRANSPORT"] == "UDP" and info["EXTENSIONS"]["VALUE"]
    assert info["EXTENSIONS"]["UNIT"] and info["EXTENSIONS"]["LISTEN"]
    assert get(base + "/vacelive/fps?UNIT") == (200, {"UNIT": ["time.hz"]})  # advertised, so answered
    with pytest.raises(urllib.error.HTTPError) as err:
        get(base + "/vacelive/volume")
    assert err.value.code == 404


def test_a_cors_preflight_is_answered_for_named_origins_only(served):
    _, base = served
    conn = http.client.HTTPConnection(base.removeprefix("http://"), timeout=5)
    try:
        conn.request("OPTIONS", "/", headers={"Origin": "http://localhost:8080",
                                              "Access-Control-Request-Method": "GET"})
        response = conn.getresponse()
        response.read()
        assert response.status == 204
        assert response.getheader("Access-Control-Allow-Origin") == "http://localhost:8080"
        assert "GET" in response.getheader("Access-Control-Allow-Methods")
        conn.request("OPTIONS", "/", headers={"Origin": "https://some-site.example"})
        response = conn.getresponse()
        response.read()
        assert response.status == 403 and response.getheader("Access-Control-Allow-Origin") is None
    finally:
        conn.close()


def test_origins_are_normalised_as_browsers_send_them():
    assert normalise_origin("HTTP://LocalHost:8080/") == "http://localhost:8080"
    assert normalise_origin("https://show.example:443") == "https://show.example"
    assert normalise_origin("http://[::1]:3000") == "http://[::1]:3000"
    for bad in ("localhost:8080", "ftp://x", "http://x/page", "http://x:99999", "*", ""):
        with pytest.raises(ValueError, match="scheme://host"):
            normalise_origin(bad)
    policy = OriginPolicy(["http://localhost:8080"])
    assert policy.refusal({"Host": "127.0.0.1:9001"}) is None
    assert policy.refusal({"Host": "127.0.0.1:9001", "Origin": "http://localhost:8080"}) is None
    assert policy.refusal({"Host": "127.0.0.1:9001", "Origin": "null"}) is not None  # a file:// page
    assert policy.refusal({"Host": "rebound.example:9001"}) is not None


def test_a_malformed_origin_is_refused_at_start_up():
    with pytest.raises(ParamError, match="http_allow_origin"):
        build_store(overrides={"http_allow_origin": ["localhost:8080"]})
    assert build_store(overrides={"http_allow_origin": ["http://localhost:8080"]}).get("http_allow_origin") == [
        "http://localhost:8080"]
