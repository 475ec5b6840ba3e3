"""The live loop: clock, stalls, snapshots, hard cut, failures, shutdown."""

import threading
import time

import numpy as np
import pytest

from vacelive.engine.loop import DropOldestQueue, Engine
from vacelive.engine.state import ParamStore
from tests.fakes import CountingSource, RecordingSink, ScriptedGenerator

W, H = 32, 16


def make_engine(generator, *, fps=50.0, source_fps=200.0, max_frames=None, annotator=None):
    store = ParamStore()
    store.set("width", 64, live=False)
    store.set("height", 64, live=False)
    store.set("fps", fps)
    sink = RecordingSink()
    engine = Engine(
        store, generator, CountingSource(W, H, source_fps), [sink],
        make_annotator=lambda name: annotator, make_mask_source=lambda name: None, max_frames=max_frames,
    )
    return store, engine, sink


def run_for(engine, seconds):
    engine.start()
    time.sleep(seconds)
    stuck = engine.stop()
    assert stuck == []


def test_drop_oldest_queue():
    q = DropOldestQueue(2)
    assert [q.put(i) for i in range(4)] == [0, 0, 1, 1]
    assert [q.get(0.01), q.get(0.01), q.get(0.01)] == [2, 3, None]


def test_clock_holds_under_a_slow_generator():
    # 12 frames at 50 fps need a chunk every 0.24 s; this generator takes 0.4 s.
    generator = ScriptedGenerator(64, 64, delay_s=0.4)
    _, engine, sink = make_engine(generator, fps=50.0)
    run_for(engine, 2.5)
    times = np.array(sink.times)
    assert len(times) > 40
    intervals = np.diff(times)
    assert np.median(intervals) == pytest.approx(0.02, abs=0.004)
    assert engine.metrics.stalls > 0  # it repeated frames while waiting
    values = [int(f[0, 0, 0]) for f in sink.frames]
    assert 0 not in values  # never a black frame
    assert len(set(values)) >= 2  # and it did show new chunks
    assert sink.closed


def test_frames_are_published_in_order_and_counted():
    generator = ScriptedGenerator(64, 64)
    _, engine, sink = make_engine(generator, fps=100.0, max_frames=30)
    engine.start()
    engine.wait()
    assert engine.stop() == []
    assert len(sink.frames) == 30 == engine.metrics.frames_out
    values = [int(f[0, 0, 0]) for f in sink.frames]
    assert values == sorted(values)


def test_chunk_snapshot_is_consistent_and_changes_apply_next_chunk():
    generator = ScriptedGenerator(64, 64)
    store, engine, _ = make_engine(generator, fps=100.0, source_fps=400.0)
    engine.start()
    deadline = time.monotonic() + 3
    while len(generator.chunks) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    store.set("context_scale", 0.25)
    changed_at = len(generator.chunks)
    while len(generator.chunks) < changed_at + 3 and time.monotonic() < deadline + 3:
        time.sleep(0.01)
    assert engine.stop() == []
    scales = [c.snapshot["context_scale"] for c in generator.chunks]
    assert scales[0] == 1.0 and scales[-1] == 0.25
    first_new = scales.index(0.25)
    assert all(s == 0.25 for s in scales[first_new:])
    for chunk in generator.chunks:
        assert chunk.frames.shape == (12, 64, 64, 3)
        assert len(chunk.captured_at) == 12


def test_annotator_output_becomes_the_control_frames():
    class Invert:
        name = "invert"

        def __call__(self, frames, settings):
            assert settings["annotator"] == "edge"
            return 255 - frames

        def reset(self):
            pass

    generator = ScriptedGenerator(64, 64)
    _, engine, _ = make_engine(generator, fps=100.0, source_fps=400.0, annotator=Invert())
    run_for(engine, 0.8)
    chunk = generator.chunks[0]
    np.testing.assert_array_equal(chunk.control, 255 - chunk.frames)


def test_generator_failures_are_survived_and_repeated_ones_reset_the_model():
    generator = ScriptedGenerator(64, 64, fail_on={1, 2, 3})
    _, engine, sink = make_engine(generator, fps=100.0, source_fps=400.0)
    errors = []
    engine.on_error = errors.append
    run_for(engine, 1.5)
    assert engine.metrics.generator_errors >= 3
    assert generator.resets >= 1  # three failures in a row reset the model state
    assert len(generator.chunks) > 4  # and generation went on after them
    assert any("scripted failure" in e for e in errors)
    assert 0 not in {int(f[0, 0, 0]) for f in sink.frames}


def test_hard_cut_resets_the_generator_and_flushes_old_frames():
    generator = ScriptedGenerator(64, 64, delay_s=0.05)
    store, engine, _ = make_engine(generator, fps=100.0, source_fps=400.0)
    engine.start()
    time.sleep(0.6)
    before = generator.resets
    store.set("cut", 1.0)
    time.sleep(0.6)
    assert engine.stop() == []
    assert generator.resets == before + 1
    assert engine.epoch == 1
    assert generator.chunks[-1].epoch == 1


def test_pause_freezes_output_and_stops_generation():
    generator = ScriptedGenerator(64, 64)
    store, engine, sink = make_engine(generator, fps=100.0, source_fps=400.0)
    engine.start()
    time.sleep(0.5)
    store.set("pause", True)
    time.sleep(0.15)
    chunks_at_pause, frames_at_pause = len(generator.chunks), len(sink.frames)
    time.sleep(0.5)
    paused_frames = sink.frames[frames_at_pause:]
    assert len(paused_frames) > 20  # the clock kept going
    assert len({int(f[0, 0, 0]) for f in paused_frames}) == 1  # on one frozen frame
    assert len(generator.chunks) <= chunks_at_pause + 1
    store.set("pause", False)
    time.sleep(0.5)
    assert engine.stop() == []
    assert len(generator.chunks) > chunks_at_pause + 1


def test_a_failing_sink_does_not_stop_the_others():
    class BrokenSink(RecordingSink):
        def write(self, frame):
            raise OSError("pipe closed")

    generator = ScriptedGenerator(64, 64)
    store = ParamStore()
    store.set("width", 64, live=False)
    store.set("height", 64, live=False)
    store.set("fps", 100.0)
    good = RecordingSink()
    engine = Engine(store, generator, CountingSource(W, H, 400), [BrokenSink(), good],
                    make_annotator=lambda n: None, make_mask_source=lambda n: None)
    run_for(engine, 0.8)
    assert len(good.frames) > 10 and engine.metrics.sink_errors >= len(good.frames)


def test_shutdown_joins_every_thread():
    generator = ScriptedGenerator(64, 64, delay_s=0.2)
    _, engine, _ = make_engine(generator)
    before = {t.name for t in threading.enumerate()}
    engine.start()
    time.sleep(0.3)
    assert engine.stop(timeout=5.0) == []
    after = {t.name for t in threading.enumerate() if t.name.startswith("vacelive-")}
    assert after <= before


def test_mode_and_new_warnings_reach_the_status():
    class Warning(ScriptedGenerator):
        mode = "r2v+control"

        @property
        def warnings(self):
            return ["reference_1: cannot read style.png"] if len(self.chunks) >= 2 else []

    generator = Warning(64, 64)
    _, engine, _ = make_engine(generator, fps=100.0, source_fps=400.0)
    errors = []
    engine.on_error = errors.append
    run_for(engine, 1.0)
    assert engine.metrics.summary()["mode"] == "r2v+control"
    assert errors.count("reference_1: cannot read style.png") == 1  # reported once, not every chunk
