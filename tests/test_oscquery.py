"""The OSCQuery-style HTTP namespace, over a real HTTP connection on loopback."""

import json
import urllib.error
import urllib.request

import pytest

from vacelive.engine.oscquery import OscQueryServer
from vacelive.engine.state import ParamStore


@pytest.fixture()
def served():
    store = ParamStore()
    server = OscQueryServer(store, lambda: {"fps": 23.9, "stalls": 2}, "127.0.0.1", 0, ("127.0.0.1", 9000))
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
    assert params["width"]["ACCESS"] == 1  # restart parameters are read-only live
    assert params["status"]["CONTENTS"]["stalls"]["VALUE"] == [2]


def test_values_reflect_live_state(served):
    store, base = served
    store.set("context_scale", 0.75)
    assert get(base + "/vacelive/context_scale")[1]["VALUE"] == [0.75]
    assert get(base + "/vacelive/context_scale?VALUE") == (200, {"VALUE": [0.75]})


def test_host_info_and_unknown_paths(served):
    _, base = served
    status, info = get(base + "/?HOST_INFO")
    assert info["OSC_PORT"] == 9000 and info["OSC_TRANSPORT"] == "UDP" and info["EXTENSIONS"]["VALUE"]
    with pytest.raises(urllib.error.HTTPError) as err:
        get(base + "/vacelive/volume")
    assert err.value.code == 404
