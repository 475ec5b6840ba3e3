"""Faults a show must survive: lost sources, stalled or failing generators, OOM, missing weights."""

import subprocess
import sys
import time

import pytest
import torch

from vacelive.bridges.base import BridgeError, BridgeState
from vacelive.engine.loop import Engine
from vacelive.engine.state import ParamStore
from tests.fakes import CountingSource, RecordingSink, ScriptedGenerator, assert_clock_kept


def make_store(fps=50.0):
    store = ParamStore()
    store.set("width", 64, live=False)
    store.set("height", 64, live=False)
    store.set("fps", fps)
    return store


class FlakySource(CountingSource):
    """A source whose peer vanishes between ``lost_from`` and ``lost_until`` seconds after open."""

    def __init__(self, lost_from, lost_until):
        super().__init__(32, 16, 200.0)
        self.lost_from, self.lost_until = lost_from, lost_until
        self.opened_at = 0.0

    def open(self):
        super().open()
        self.opened_at = time.monotonic()

    def read(self, timeout=0.1):
        age = time.monotonic() - self.opened_at
        if self.lost_from <= age < self.lost_until:
            self.state = BridgeState.LOST
            time.sleep(timeout)
            return None
        self.state = BridgeState.LIVE
        return super().read(timeout)


def test_lost_source_keeps_the_clock_and_recovers():
    store = make_store()
    generator = ScriptedGenerator(64, 64)
    sink = RecordingSink()
    engine = Engine(store, generator, FlakySource(0.5, 1.5), [sink],
                    make_annotator=lambda n: None, make_mask_source=lambda n: None)
    engine.start()
    states = []
    for _ in range(25):
        time.sleep(0.1)
        states.append(engine.metrics.source_state)
    chunks_after = len(generator.chunks)
    assert engine.stop() == []
    assert "lost" in states and states[-1] == "live"
    # frames kept flowing at 50 fps over the whole run, the second without a source included:
    # the total owed and no gap (a pause while the source was gone would be one long gap)
    assert_clock_kept(sink.times, 50.0)
    assert sink.times[-1] - sink.times[0] > 1.5  # the run spanned the outage (0.5 s to 1.5 s)
    assert chunks_after >= 3  # and generation resumed when it came back


def test_source_that_cannot_reopen_is_retried_without_stopping_the_engine(monkeypatch):
    import vacelive.engine.loop as loop

    monkeypatch.setattr(loop.SourceReader, "RETRY_S", 0.05)

    class Flaky(CountingSource):
        """Opens at start, breaks after 10 frames, refuses two reopens, then works again."""

        opens = 0

        def open(self):
            Flaky.opens += 1
            if Flaky.opens in (2, 3):
                raise BridgeError("no such NDI source 'TD-out'")
            super().open()

        def read(self, timeout=0.1):
            if Flaky.opens == 1 and self.count == 10:
                raise OSError("device unplugged")
            return super().read(timeout)

    store = make_store()
    generator = ScriptedGenerator(64, 64)
    errors = []
    engine = Engine(store, generator, Flaky(32, 16, 200.0), [RecordingSink()],
                    make_annotator=lambda n: None, make_mask_source=lambda n: None, on_error=errors.append)
    engine.start()
    time.sleep(1.0)
    assert engine.stop() == []
    assert Flaky.opens >= 4 and len(generator.chunks) >= 1
    assert any("device unplugged" in e for e in errors) and any("TD-out" in e for e in errors)


def test_a_source_that_cannot_open_at_start_stops_the_start_and_closes_the_sinks():
    class Refusing(CountingSource):
        def open(self):
            raise BridgeError("counting: no such file: clip.mp4")

    sink = RecordingSink()
    engine = Engine(make_store(), ScriptedGenerator(64, 64), Refusing(), [sink],
                    make_annotator=lambda n: None, make_mask_source=lambda n: None)
    with pytest.raises(BridgeError, match="no such file: clip.mp4"):
        engine.start()
    assert sink.state is not BridgeState.LIVE  # never opened, nothing left open
    assert all(stage.ident is None for stage in engine.stages)  # no thread was started


def test_stalled_generator_does_not_stall_the_publisher():
    class Stalling(ScriptedGenerator):
        def generate(self, chunk):
            if chunk.index == 1:
                time.sleep(1.2)
            return super().generate(chunk)

    store = make_store(fps=50.0)
    sink = RecordingSink()
    engine = Engine(store, Stalling(64, 64), CountingSource(32, 16, 200.0), [sink],
                    make_annotator=lambda n: None, make_mask_source=lambda n: None)
    engine.start()
    time.sleep(2.0)
    assert engine.stop() == []
    assert_clock_kept(sink.times, 50.0)  # no gap while chunk 1 took 1.2 s
    assert engine.metrics.stalls >= 30  # ~1 s of repeated frames while it was stuck


@pytest.mark.parametrize("fallback, expected_steps", [(False, 4), (True, 3)])
def test_out_of_memory_is_reported_and_lowers_steps_only_when_enabled(fallback, expected_steps):
    class OutOfMemory(ScriptedGenerator):
        def generate(self, chunk):
            if chunk.index == 0:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return super().generate(chunk)

    store = make_store(fps=100.0)
    store.set("oom_fallback", fallback)
    errors = []
    engine = Engine(store, OutOfMemory(64, 64), CountingSource(32, 16, 400.0), [RecordingSink()],
                    make_annotator=lambda n: None, make_mask_source=lambda n: None, on_error=errors.append)
    engine.start()
    time.sleep(0.8)
    assert engine.stop() == []
    assert any("out of memory" in e.lower() for e in errors)
    assert store.get("steps") == expected_steps
    assert engine.metrics.chunks_done >= 1  # it went on generating


def test_missing_weights_fail_before_anything_opens(tmp_path):
    out = tmp_path / "never.mp4"
    result = subprocess.run(
        [sys.executable, "-m", "vacelive.engine.cli", "run", "--model", "1.3B", "--sink", f"file:{out}", "--no-tui",
         "--osc-port", "0", "--http-port", "0"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "needs weights" in result.stderr and "weights-dir" in result.stderr
    assert not out.exists()
    (tmp_path / "w").mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "vacelive.engine.cli", "run", "--weights-dir", str(tmp_path / "w"), "--no-tui",
         "--osc-port", "0", "--http-port", "0"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "vacelive-weights.toml" in result.stderr


def _run_cli(tmp_path, *args):
    return subprocess.run([sys.executable, "-m", "vacelive.engine.cli", "run", "--no-tui", "--frames", "24", *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)


def test_a_sink_that_cannot_open_is_a_clear_error(tmp_path):
    (tmp_path / "plain_file").write_text("x")
    result = _run_cli(tmp_path, "--sink", f"file:{tmp_path / 'plain_file' / 'out.mp4'}", "--osc-port", "0",
                      "--http-port", "0")
    assert result.returncode == 2
    assert "cannot start: file:" in result.stderr and "Traceback" not in result.stderr


def test_an_osc_port_in_use_is_a_clear_error(tmp_path):
    import socket

    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    try:
        result = _run_cli(tmp_path, "--osc-port", str(taken.getsockname()[1]), "--http-port", "0")
    finally:
        taken.close()
    assert result.returncode == 2
    assert "cannot start" in result.stderr and "Address already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_starting_annotator_without_its_model_file_is_a_clear_error(tmp_path):
    result = _run_cli(tmp_path, "--annotator", "depth", "--osc-port", "0", "--http-port", "0")
    assert result.returncode == 2
    assert "depth_anything_v2_vits.pth" in result.stderr and "Traceback" not in result.stderr
