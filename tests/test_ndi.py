"""NDI loopback on one host: a real cyndilib sender and receiver exchange frames.

NDI reads ``NDI_CONFIG_DIR`` when the first NDI object of the process is created, so this module
points it at a loopback-only config at import time (pytest imports every test module before
running any test); nothing else in the suite creates NDI objects.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time

import numpy as np
import pytest

from vacelive.bridges import BridgeState, open_sink, open_source
from vacelive.bridges.ndi import write_ndi_config
from vacelive.bridges.testpattern import TestPattern, read_stamp
from tests.waiting import wait_for

pytest.importorskip("cyndilib")

_CONFIG_DIR = tempfile.TemporaryDirectory(prefix="vacelive-ndi-test-")  # removed when the process ends
write_ndi_config(_CONFIG_DIR.name, "127.0.0.1")
os.environ["NDI_CONFIG_DIR"] = _CONFIG_DIR.name

W, H, FPS = 320, 192, 30.0


class Sender(threading.Thread):
    """Publishes the test pattern through an NDI sink until stopped; keeps what it sent."""

    def __init__(self, ndi_name: str) -> None:
        super().__init__(daemon=True)
        self.sink = open_sink(f"ndi:{ndi_name}?clock=1")
        self.sink.open(W, H, FPS)
        self.pattern = TestPattern(W, H)
        self.sent: dict[int, np.ndarray] = {}
        self.stop_event = threading.Event()
        self.start()

    def run(self) -> None:
        index = 0
        while not self.stop_event.is_set():
            frame = self.pattern.render(index)
            self.sent[index] = frame
            self.sink.write(frame)  # clocked: blocks until the slot at FPS
            index += 1

    def stop(self) -> None:
        self.stop_event.set()
        self.join(timeout=5)
        self.sink.close()


def _read_until(source, predicate, seconds: float):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        frame = source.read(0.05)
        if predicate(frame):
            return frame
    return None


@pytest.fixture
def ndi_name(request) -> str:
    return f"vl-test-{os.getpid()}-{request.node.name[:20]}"


def test_source_waits_for_a_sender_that_is_not_there(ndi_name):
    source = open_source(f"ndi:{ndi_name}-absent", width=W, height=H, fps=FPS)
    source.open()
    try:
        assert source.state is BridgeState.CONNECTING
        start = time.monotonic()
        assert source.read(0.2) is None
        assert time.monotonic() - start < 1.0
        assert source.state is BridgeState.CONNECTING
    finally:
        source.close()
        source.close()
    assert source.state is BridgeState.CLOSED


def test_loopback_pixels_then_lost_then_reconnect(ndi_name):
    source = open_source(f"ndi:{ndi_name}", width=W, height=H, fps=FPS)
    source.open()
    sender = Sender(ndi_name)
    try:
        # Frames flow, carry their stamps, and match what was sent within NDI's lossy codec.
        matched = []
        deadline = time.monotonic() + 15
        while len(matched) < 5 and time.monotonic() < deadline:
            frame = source.read(0.1)
            if frame is None:
                continue
            assert frame.shape == (H, W, 3) and frame.dtype == np.uint8
            stamp = read_stamp(frame)
            if stamp is not None and stamp in sender.sent:
                error = np.abs(frame.astype(np.int16) - sender.sent[stamp]).mean(axis=(0, 1))
                matched.append(error)
        assert len(matched) >= 5, "fewer than 5 NDI frames arrived in 15 s"
        assert source.state is BridgeState.LIVE
        assert source.layout in ("UYVY", "RGBA", "RGBX", "BGRA", "BGRX")
        assert source.fps == pytest.approx(FPS)
        assert np.max(np.median(matched, axis=0)) < 4.0, f"mean abs error per channel {matched}"

        # The sender goes away: the source reports LOST and reads None, without raising.
        sender.stop()
        assert _read_until(source, lambda _: source.state is BridgeState.LOST, 10) is None
        assert source.state is BridgeState.LOST
        assert source.read(0.1) is None

        # It comes back under the same name: frames flow again by themselves.
        sender = Sender(ndi_name)
        frame = _read_until(source, lambda f: f is not None, 20)
        assert frame is not None, "no frame within 20 s after the sender came back"
        assert source.state is BridgeState.LIVE
        assert read_stamp(frame) is not None
    finally:
        sender.stop()
        source.close()


def test_sink_rejects_a_frame_of_the_wrong_size(ndi_name):
    from vacelive.bridges import BridgeError

    sink = open_sink(f"ndi:{ndi_name}")
    sink.open(W, H, FPS)
    try:
        with pytest.raises(BridgeError, match="sender is"):
            sink.write(np.zeros((H + 2, W, 3), np.uint8))
    finally:
        sink.close()
        sink.close()


def test_direct_address_option_configures_unicast_discovery(tmp_path):
    """``ndi:NAME?ip=HOST`` writes its own NDI config when it is the process's first NDI object,
    in a folder removed when the process ends.

    Run in a fresh process without NDI_CONFIG_DIR: discovery then only works through that config.
    """
    code = f"""
import os, time
os.environ.pop("NDI_CONFIG_DIR", None)
from vacelive.bridges import open_sink, open_source
from vacelive.bridges.testpattern import TestPattern, read_stamp
source = open_source("ndi:vl-ip-{os.getpid()}?ip=127.0.0.1", width=64, height=48, fps=30)
source.open()
print(os.environ["NDI_CONFIG_DIR"])
config = os.path.join(os.environ["NDI_CONFIG_DIR"], "ndi-config.v1.json")
sink = open_sink("ndi:vl-ip-{os.getpid()}?clock=0")
sink.open(64, 48, 30)
deadline, got = time.monotonic() + 15, None
while got is None and time.monotonic() < deadline:
    sink.write(TestPattern(64, 48).render(7))
    got = source.read(0.05)
print(open(config).read(), got is not None and source.state.value)
sink.close(); source.close()
"""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "NDI_CONFIG_DIR"}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=root, env=dict(env, PYTHONPATH=root))
    assert out.returncode == 0, out.stderr
    assert '"ips": "127.0.0.1"' in out.stdout and out.stdout.strip().endswith("live"), out.stdout
    assert not os.path.exists(out.stdout.splitlines()[0]), out.stdout


def test_sink_clocked_by_ndi_paces_writes(ndi_name):
    sink = open_sink(f"ndi:{ndi_name}?clock=1")
    sink.open(W, H, 50.0)
    frame = TestPattern(W, H).render(0)
    try:
        sink.write(frame)
        start = time.perf_counter()
        for _ in range(10):
            sink.write(frame)
        elapsed = time.perf_counter() - start
    finally:
        sink.close()
    assert sink.frames == 11
    assert 0.15 < elapsed < 0.6  # 10 slots of 20 ms: writes are paced, not as fast as possible


def test_engine_between_ndi_in_and_out_survives_the_sender_going_away(ndi_name):
    """TouchDesigner -> NDI -> engine -> NDI -> TouchDesigner, with the input sender stopped and restarted."""
    from vacelive.engine.loop import Engine
    from vacelive.engine.state import ParamStore
    from tests.fakes import ScriptedGenerator

    store = ParamStore()
    store.set("width", 64, live=False)
    store.set("height", 64, live=False)
    store.set("fps", FPS)
    out_name = f"{ndi_name}-out"
    generator = ScriptedGenerator(64, 64)
    engine = Engine(store, generator, open_source(f"ndi:{ndi_name}", width=64, height=64, fps=FPS),
                    [open_sink(f"ndi:{out_name}")], make_annotator=lambda n: None, make_mask_source=lambda n: None)
    sender = Sender(ndi_name)
    viewer = open_source(f"ndi:{out_name}", width=64, height=64, fps=FPS)
    engine.start()
    viewer.open()
    try:
        assert _read_until(viewer, lambda f: f is not None, 30) is not None, "no generated frame came back over NDI"
        assert engine.metrics.source_state == "live"

        sender.stop()  # the input goes away
        assert wait_for(lambda: engine.metrics.source_state == "lost", 15)
        received = sum(1 for _ in range(40) if viewer.read(0.1) is not None)
        assert received >= 15  # the engine kept publishing (its last frame) at its fps

        chunks = engine.metrics.chunks_done
        sender = Sender(ndi_name)  # and comes back under the same name
        assert wait_for(lambda: engine.metrics.source_state == "live" and engine.metrics.chunks_done > chunks, 30)
    finally:
        sender.stop()
        viewer.close()
        assert engine.stop() == []
    assert engine.metrics.generator_errors == 0


def test_engine_says_what_it_waits_for_until_a_late_sender_appears(ndi_name, caplog):
    """A source not up yet is named, with the senders that are visible, then picked up when it appears."""
    import logging

    from tests.fakes import ScriptedGenerator
    from vacelive.engine.loop import Engine
    from vacelive.engine.state import ParamStore

    store = ParamStore()
    store.set("width", 64, live=False)
    store.set("height", 64, live=False)
    engine = Engine(store, ScriptedGenerator(64, 64), open_source(f"ndi:{ndi_name}", width=64, height=64, fps=FPS),
                    [open_sink("null")], make_annotator=lambda n: None, make_mask_source=lambda n: None)
    other = Sender(f"{ndi_name}-other")  # a sender with another name: visible, not ours
    engine.start()
    sender = None
    try:
        with caplog.at_level(logging.WARNING, logger="vacelive.engine.loop"):
            assert wait_for(lambda: f"{ndi_name}-other" in engine.metrics.source_note, 20), engine.metrics.source_note
        note = engine.metrics.source_note
        assert note.startswith(f"waiting for ndi source '{ndi_name}' (visible now: ")
        assert any(r.getMessage() == note for r in caplog.records)
        assert not engine.source_reader.first_frame.is_set()
        sender = Sender(ndi_name)
        assert wait_for(engine.source_reader.first_frame.is_set, 30)
        assert wait_for(lambda: engine.metrics.source_note == "", 5)
    finally:
        for running in (other, sender):
            if running is not None:
                running.stop()
        assert engine.stop() == []


def test_sources_lists_a_loopback_ndi_sender_with_its_spec(ndi_name, tmp_path):
    """``vacelive sources --json`` in a fresh process (NDI confined to loopback by this module's config)."""
    import json
    import subprocess
    import sys

    sender = Sender(ndi_name)
    try:
        result = subprocess.run([sys.executable, "-m", "vacelive.engine.cli", "sources", "--json", "--seconds", "4"],
                                capture_output=True, text=True, timeout=120, cwd=tmp_path)
    finally:
        sender.stop()
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    ours = [s for s in listed["sources"] if s["kind"] == "ndi" and s["name"].endswith(f"({ndi_name})")]
    assert len(ours) == 1 and ours[0]["spec"] == f"ndi:{ndi_name}", listed
    assert "spout: not on this platform (Windows only)" in listed["notes"]
