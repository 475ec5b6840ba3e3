"""Fail fast at the start, with one line and exit 2: inputs that cannot open, values out of range."""

from __future__ import annotations

import subprocess
import sys

import pytest

from vacelive.engine.app import build_store
from vacelive.engine.params import ParamError
from vacelive.engine.presets import PresetError, load_preset


def _run(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vacelive.engine.cli", "run", "--no-tui", "--frames", "12",
                           "--osc-port", "0", "--http-port", "0", "--no-mdns", *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)


def _one_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1, result.stderr
    return errors[0]


@pytest.mark.parametrize("content", [None, b"\x00\x01 not a video at all" * 100])
def test_a_file_source_that_is_missing_or_undecodable_stops_the_start(tmp_path, content):
    clip = tmp_path / "clip.mp4"
    if content is not None:
        clip.write_bytes(content)
    out = tmp_path / "out.mp4"
    error = _one_error(_run(tmp_path, "--source", f"file:{clip}", "--sink", f"file:{out}"))
    assert f"file:{clip}" in error and error.count(f"file:{clip}:") == 1  # the spec is named once
    assert not out.exists()  # nothing was opened for output


def test_an_unknown_camera_and_a_malformed_spec_stop_the_start(tmp_path):
    assert "camera 97 could not be opened" in _one_error(_run(tmp_path, "--source", "camera:97"))
    assert "unknown source scheme" in _one_error(_run(tmp_path, "--source", "webcam:0"))


@pytest.mark.parametrize("flag, value, expected", [
    ("--fps", "0", "--fps 0.0: out of range 1 .. 120"),
    ("--width", "4096", "--width 4096: out of range 0 .. 2048"),
    ("--steps", "9", "--steps 9: out of range 1 .. 4"),
])
def test_a_flag_out_of_range_is_refused_naming_flag_value_and_range(tmp_path, flag, value, expected):
    assert _one_error(_run(tmp_path, flag, value)).endswith(f"cannot start: {expected}")


def test_out_of_range_values_at_start_are_refused_not_clamped():
    with pytest.raises(ParamError, match=r"--context-scale 9: out of range"):
        build_store(None, {"context_scale": 9})
    store = build_store(None, {"context_scale": 1.5})
    assert store.get("context_scale") == 1.5
    store.set("context_scale", 9)  # live (OSC) values are still clamped: a show must not stop
    assert store.get("context_scale") == store.registry["context_scale"].maximum


def test_a_preset_reports_every_mistake_at_once_with_the_key_it_meant(tmp_path):
    preset = tmp_path / "bad.toml"
    preset.write_text('[params]\ncontxt_scale = 1.0\nsteps = 9\nfps = 24\nanotator = "depth"\n')
    with pytest.raises(PresetError) as err:
        load_preset(preset)
    message = str(err.value)
    assert "unknown key 'contxt_scale' (did you mean 'context_scale'?)" in message
    assert "steps = 9: out of range 1 .. 4" in message
    assert "unknown key 'anotator' (did you mean 'annotator'?)" in message
    assert "clamped" not in message and "fps" not in message


def test_source_timeout_stops_a_start_whose_network_source_never_appears(tmp_path):
    pytest.importorskip("cyndilib")
    from vacelive.bridges.ndi import write_ndi_config

    write_ndi_config(str(tmp_path), "127.0.0.1")
    result = subprocess.run(
        [sys.executable, "-m", "vacelive.engine.cli", "run", "--no-tui", "--osc-port", "0", "--http-port", "0",
         "--no-mdns", "--source", "ndi:vacelive-test-nobody", "--source-timeout", "4"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**__import__("os").environ, "NDI_CONFIG_DIR": str(tmp_path)})
    error = _one_error(result)
    assert "no frame within --source-timeout 4 s: waiting for ndi source 'vacelive-test-nobody' (visible now:" in error
    assert "waiting for ndi source 'vacelive-test-nobody'" in result.stderr.split(error)[0]  # said while waiting
