"""The CLI: flags derived from the registry, the README reference, and an end-to-end run."""

import json
import subprocess
import sys
from pathlib import Path

import av
import pytest

from vacelive.engine.cli import build_parser, params_json, readme_with_params
from vacelive.engine.params import REGISTRY

ROOT = Path(__file__).resolve().parent.parent


def test_every_settable_param_has_a_flag():
    parser = build_parser()
    args = parser.parse_args(["run", "--context-scale", "0.5", "--annotator", "flow", "--sink", "null",
                              "--sink", "file:x.mp4", "--no-pause", "--steps", "2"])
    assert (args.context_scale, args.annotator, args.sink, args.pause, args.steps) == (
        0.5, "flow", ["null", "file:x.mp4"], False, 2)
    assert not hasattr(args, "seed")  # flags not given leave the preset/default alone
    with pytest.raises(SystemExit):
        parser.parse_args(["run", "--annotator", "sketchy"])


def test_params_json_covers_the_registry():
    data = json.loads(json.dumps(params_json()))  # survives JSON as it is
    assert [d["name"] for d in data] == [p.name for p in REGISTRY]
    for entry, param in zip(data, REGISTRY):
        assert entry["address"] == param.address and entry["flag"] == param.cli_flag, param.name
        assert entry["type"] == param.kind.value and entry["applies"] == param.applies.value, param.name
        assert (entry["min"], entry["max"]) == (param.minimum, param.maximum), param.name
        assert entry["choices"] == list(param.choices) and entry["unit"] == param.unit, param.name
        assert entry["description"] == param.description, param.name
        if param.kind.value != "trigger":
            assert entry["default"] == (list(param.default) if isinstance(param.default, tuple) else param.default)
    scale = data[[d["name"] for d in data].index("context_scale")]
    assert (scale["type"], scale["default"], scale["min"], scale["max"]) == ("float", 1.0, 0.0, 2.0)


def test_readme_reference_is_up_to_date():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme_with_params(text) == text, "run: vacelive params --write-readme README.md"


def test_end_to_end_run_writes_48_frames(tmp_path):
    out = tmp_path / "out.mp4"
    cmd = [sys.executable, "-m", "vacelive.engine.cli", "run", "--frames", "48", "--sink", f"file:{out}", "--no-tui",
           "--osc-port", "0", "--http-port", "0", "--width", "128", "--height", "64", "--fps", "48"]
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "tiny model trained on synthetic shapes" in result.stderr
    with av.open(str(out)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == 48


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_signal_shuts_down_cleanly(tmp_path, signame):
    import signal
    import time

    out = tmp_path / "live.mp4"
    cmd = [sys.executable, "-m", "vacelive.engine.cli", "run", "--sink", f"file:{out}", "--no-tui", "--osc-port", "0",
           "--http-port", "0", "--width", "128", "--height", "64"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out.exists() and out.stat().st_size > 0):
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(getattr(signal, signame))
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr[-3000:]
    assert f"signal {signame}: shutting down" in stderr
    assert "threads still running" not in stderr
    with av.open(str(out)) as container:  # the file was finished properly
        assert sum(1 for _ in container.decode(video=0)) > 0


def _free_udp_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _free_tcp_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_live_run_is_controlled_over_osc_and_oscquery(tmp_path):
    import signal
    import time
    import urllib.request

    from tests.osc_peer import Peer

    osc_port, http_port = _free_udp_port(), _free_tcp_port()
    presets = tmp_path / "presets"
    presets.mkdir()
    peer = Peer(("127.0.0.1", osc_port))
    cmd = [sys.executable, "-m", "vacelive.engine.cli", "run", "--no-tui", "--width", "128", "--height", "64",
           "--osc-port", str(osc_port), "--http-port", str(http_port), "--preset-dir", str(presets),
           "--osc-reply", f"127.0.0.1:{peer.address[1]}"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        status = {}
        deadline = time.monotonic() + 120
        # one status burst sends chunks before source: read until a burst with both has arrived
        while (status.get("/vacelive/status/chunks", [0])[0] < 2 or "/vacelive/status/source" not in status) \
                and time.monotonic() < deadline:
            try:
                address, args = peer.receive(timeout=1.0)
            except OSError:
                continue
            status[address] = args
        assert status["/vacelive/status/chunks"][0] >= 2  # status arrives once a second, chunks flow
        assert status["/vacelive/status/source"] == ["live"]
        peer.send("/vacelive/context_scale", 1.5)
        peer.send("/vacelive/prompt", "a forest at dawn")
        peer.send("/vacelive/preset_save", "from_osc")
        peer.send("/vacelive/cut", 1.0)
        peer.send("/vacelive/context_scale")
        answer = None
        while answer is None and time.monotonic() < deadline:
            address, args = peer.receive()
            if address == "/vacelive/context_scale":
                answer = args
        assert answer == [pytest.approx(1.5)]
        url = f"http://127.0.0.1:{http_port}/vacelive/prompt?VALUE"
        with urllib.request.urlopen(url, timeout=5) as response:
            assert json.loads(response.read()) == {"VALUE": ["a forest at dawn"]}
        assert (presets / "from_osc.toml").is_file()
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
        peer.close()
    assert proc.returncode == 0, stderr[-3000:]
    assert "hard cut" in stderr
