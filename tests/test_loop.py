"""The live loop: clock, stalls, snapshots, hard cut, failures, shutdown."""

import threading
import time

import numpy as np

from vacelive.engine.loop import DropOldestQueue, Engine
from vacelive.engine.state import ParamStore
from tests.fakes import CountingSource, RecordingSink, ScriptedGenerator, assert_clock_kept
from tests.waiting import wait_for

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
    # 12 frames at 50 fps need a chunk every 0.24 s; this generator takes 0.6 s.
    generator = ScriptedGenerator(64, 64, delay_s=0.6)
    _, engine, sink = make_engine(generator, fps=50.0)
    run_for(engine, 2.5)
    # every tick published: the 0.36 s a chunk is late is filled with repeats, not a gap
    assert_clock_kept(sink.times, 50.0)
    assert engine.metrics.stalls > 0  # it repeated frames while waiting
    values = [int(f[0, 0, 0]) for f in sink.frames]
    assert 0 not in values  # never a black frame
    assert len(set(values)) >= 2  # and it did show new chunks
    assert sink.closed


class Stamped(ScriptedGenerator):
    """Each output frame says which epoch, chunk and position made it: pixel (0, 0) holds
    (epoch + 1, chunk index, position)."""

    def generate(self, chunk):
        frames = super().generate(chunk)
        frames[:, 0, 0] = [[chunk.epoch + 1, chunk.index % 256, i] for i in range(12)]
        return frames


def test_frames_are_published_in_order_and_counted():
    generator = Stamped(64, 64)
    _, engine, sink = make_engine(generator, fps=100.0, max_frames=30)
    engine.start()
    engine.wait()
    assert engine.stop() == []
    assert len(sink.frames) == 30 == engine.metrics.frames_out
    # each frame once, in the order made: chunk by chunk, positions 0..11 within each; a frame
    # shown twice can only be a counted stall (the generator late), never a step back
    stamps = [tuple(int(v) for v in f[0, 0]) for f in sink.frames]
    shown = [st for i, st in enumerate(stamps) if i == 0 or st != stamps[i - 1]]
    assert len(stamps) - len(shown) == engine.metrics.stalls
    for previous, current in zip(shown, shown[1:]):
        same_chunk = current[1] == previous[1]
        assert (same_chunk and current[2] == previous[2] + 1) or (
            current[1] > previous[1] and previous[2] == 11 and current[2] == 0), (previous, current)


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


class CountingResets:
    name = "counting"

    def __init__(self):
        self.resets = 0

    def __call__(self, frames, settings):
        return frames

    def reset(self):
        self.resets += 1


def test_hard_cut_resets_the_generator_and_annotator_and_flushes_old_frames():
    # 25 fps with a fast generator: the publisher always holds about a chunk (0.48 s) of frames
    # made before the cut; the cut must drop them, not play them out.
    generator = Stamped(64, 64)
    annotator = CountingResets()
    store, engine, sink = make_engine(generator, fps=25.0, source_fps=400.0, annotator=annotator)
    engine.start()
    assert wait_for(lambda: len(sink.frames) >= 15, timeout=10)
    resets_before, annotator_resets_before = generator.resets, annotator.resets
    cut_at = time.monotonic()
    store.set("cut", 1.0)
    assert wait_for(lambda: any(f[0, 0, 0] == 2 for f in sink.frames), timeout=10)
    assert engine.stop() == []
    assert engine.epoch == 1 and generator.chunks[-1].epoch == 1
    assert generator.resets == resets_before + 1
    assert annotator.resets == annotator_resets_before + 1  # the annotator's state went with the cut
    # after the cut (and the writer's few frames in flight) only the held last frame of the old
    # epoch may show, repeated, until the new epoch delivers
    stamps = [tuple(int(v) for v in f[0, 0]) for f in sink.frames]
    old_after_cut = {st for st, t in zip(stamps, sink.times) if t > cut_at + 0.2 and st[0] == 1}
    assert len(old_after_cut) <= 1, sorted(old_after_cut)
    first_new = next(i for i, st in enumerate(stamps) if st[0] == 2)
    assert all(st[0] == 2 for st in stamps[first_new:])  # and never an old frame after a new one


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
    _, engine, sink = make_engine(generator)
    engine.start()
    assert wait_for(lambda: len(generator.chunks) >= 1)  # a 0.2 s chunk in flight at the stop
    assert engine.stop(timeout=5.0) == []
    # this engine's own threads (not names, which an earlier test's leftovers could share)
    assert all(stage.ident is not None and not stage.is_alive() for stage in engine.stages)
    assert len(engine.stages) >= 6
    assert not [t for t in threading.enumerate() if t in engine.stages]
    assert sink.closed and engine.source_reader.source.state.value == "closed"


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


class SlowStart(ScriptedGenerator):
    """The first chunk takes ``first_s`` (a slow start); later ones ``delay_s``."""

    def __init__(self, width, height, first_s, delay_s):
        super().__init__(width, height, delay_s)
        self.first_s = first_s

    def generate(self, chunk):
        if chunk.index == 0:
            time.sleep(self.first_s)
        return super().generate(chunk)


def _steady_latency_ms(catch_up: int) -> tuple[float, int]:
    """Median glass-to-glass of the last second after a slow start, and the frames skipped."""
    store, engine, _ = make_engine(SlowStart(64, 64, first_s=0.6, delay_s=0.02), fps=50.0, source_fps=50.0)
    store.set("catch_up", catch_up)
    engine.start()
    time.sleep(2.5)
    latency = list(engine.metrics.glass_to_glass_ms)[-50:]
    assert engine.stop() == []
    return float(np.median(latency)), engine.metrics.skipped_frames


def test_catch_up_skips_the_backlog_of_a_slow_start_instead_of_keeping_its_delay():
    # at 50 fps a chunk is 240 ms of capture; the 0.6 s first chunk leaves a backlog that the
    # paced source never drains: without the trim it stays as latency for good
    kept, skipped_none = _steady_latency_ms(0)
    trimmed, skipped = _steady_latency_ms(3)
    assert skipped_none == 0 and skipped > 0
    assert trimmed < kept - 150.0, (trimmed, kept)
    assert trimmed < 240.0 + 20.0 + 4 * 20.0 + 100.0  # capture + generation + slack, with CI margin
