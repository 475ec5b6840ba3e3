"""``vacelive doctor`` on this machine (Linux: the NDI loopback must pass, Spout and Syphon are
not for this platform), each check's failure with its fix, and the Windows path (Spout loopback,
a stale sender) against the fake SpoutGL of ``test_spout``.

NDI runs only in the doctor's child process, confined to loopback by ``NDI_CONFIG_DIR``; this
process never creates an NDI object.
"""

from __future__ import annotations

import argparse
import importlib.machinery
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from vacelive.engine import doctor
from vacelive.engine.app import build_store
from tests.weight_files import task_bundle

ROOT = Path(__file__).resolve().parent.parent
PRESETS = ROOT / "presets"


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    doctor.add_doctor_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="what this Linux machine must report")
def test_doctor_on_this_machine_passes_with_the_ndi_loopback(capsys, monkeypatch):
    pytest.importorskip("cyndilib")
    pytest.importorskip("torch")
    calls = []
    real_run = subprocess.run

    def spy(command, **kwargs):
        config_dir = Path(kwargs["env"]["NDI_CONFIG_DIR"])
        calls.append((command, json.loads((config_dir / "ndi-config.v1.json").read_text()), config_dir))
        return real_run(command, **kwargs)

    monkeypatch.setattr(doctor.subprocess, "run", spy)
    args = parse("--preset", str(PRESETS / "default.toml"), "--model", "tiny",
                 "--osc-port", str(free_port(socket.SOCK_DGRAM)), "--http-port", str(free_port(socket.SOCK_STREAM)))
    assert doctor.doctor_main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    by_name = {line.split()[1]: line for line in lines[:-1]}
    assert lines[-1] == "ready for a show"
    assert by_name["ndi"].startswith("ok ") and "5 frames sent and received over NDI" in by_name["ndi"]
    assert by_name["spout"].startswith("skip") and "Windows only" in by_name["spout"]
    assert by_name["syphon"].startswith("skip") and "macOS only" in by_name["syphon"]
    assert by_name["weights"].startswith("ok ") and "needs no weights" in by_name["weights"]
    assert not any(line.startswith("FAIL") for line in lines)
    # the NDI check ran in a child whose NDI is confined to loopback
    (command, config, config_dir), = calls
    assert command[-2:] == ["--ndi-child", "5"]
    assert config == {"ndi": {"networks": {"ips": "127.0.0.1", "discovery": ""}}}
    assert not config_dir.exists()  # the doctor leaves no config folder behind


def test_ports_in_use_fail_with_the_flag_that_moves_them():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        check = doctor.check_port("osc port", "127.0.0.1", port, True, "--osc-port")
        assert check.status == doctor.FAIL and check.fix.endswith("--osc-port N")
        assert f"{port}/udp on 127.0.0.1" in check.line() and "-> fix:" in check.line()
    assert doctor.check_port("osc port", "127.0.0.1", port, True, "--osc-port").status == doctor.OK
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        check = doctor.check_port("http port", "127.0.0.1", port, False, "--http-port")
        assert check.status == doctor.FAIL and "--http-port" in check.fix
    assert doctor.check_port("http port", "127.0.0.1", 0, False, "--http-port").status == doctor.OK


def test_missing_weights_name_the_role_and_the_fetch_command(tmp_path):
    store = build_store(str(PRESETS / "pose_dancer.toml"), {"model": "tiny"})
    (check,) = doctor.check_weights(store)
    assert check.status == doctor.FAIL and "pose" in check.detail
    assert check.fix == "vacelive weights fetch weights --only pose and run with --weights-dir weights"

    missing_dir = tmp_path / "absent"
    (check,) = doctor.check_weights(build_store(str(PRESETS / "pose_dancer.toml"),
                                                {"model": "tiny", "weights_dir": str(missing_dir)}))
    assert check.status == doctor.FAIL and "does not exist" in check.detail
    assert check.fix.startswith(f"vacelive weights fetch {missing_dir}")


def test_weights_present_for_the_preset_pass(tmp_path):
    task_bundle(tmp_path / "pose_landmarker_full.task")
    (tmp_path / "vacelive-weights.toml").write_text('[files]\npose = "pose_landmarker_full.task"\n')
    store = build_store(str(PRESETS / "pose_dancer.toml"), {"model": "tiny", "weights_dir": str(tmp_path)})
    (check,) = doctor.check_weights(store)
    assert check.status == doctor.OK and "has every role it needs (pose)" in check.detail


def test_gpu_check_without_cuda():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    (tiny,) = doctor.check_gpu("tiny", "auto")
    assert tiny.status == doctor.OK and "runs on the CPU" in tiny.detail
    (big,) = doctor.check_gpu("1.3B", "auto")
    assert big.status == doctor.FAIL and "needs one" in big.detail and "nvidia-smi" in big.fix


def test_a_bad_preset_is_one_failed_line_and_the_rest_skipped():
    args = parse("--preset", str(PRESETS / "no_such_preset.toml"), "--frames", "1")
    checks = doctor.run_checks(args, lambda check: None)
    assert next(c.name for c in checks if c.status == doctor.FAIL) == "preset"
    assert "gpu" not in [c.name for c in checks]  # nothing that needs the settings runs


def test_windows_path_runs_the_spout_loopback_and_warns_of_a_stale_sender(monkeypatch):
    from tests.test_spout import FakeClock, FakeSpoutGL

    fake = FakeSpoutGL(FakeClock())
    fake.__spec__ = importlib.machinery.ModuleSpec("SpoutGL", None)
    fake.add_sender("vacelive_out", frame_sync=False)  # left by an engine that crashed
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setitem(sys.modules, "SpoutGL", fake)
    loop, stale = doctor.check_spout(3, ["vacelive_out"])
    assert loop.status == doctor.OK and "3 frames sent and received over Spout" in loop.detail
    assert stale.status == doctor.WARN and "vacelive_out_1" in stale.detail and stale.fix
    assert fake.fallbacks == 0 and fake.wrong_thread_closes == 0
    assert f"vacelive_doctor_{os.getpid()}" not in fake.senders  # the loopback sender was released
