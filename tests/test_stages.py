"""Stages and sinks under faults: a stage outliving its own exception, bad generator output,
a sink that cannot open (roll-back), the flush at shutdown, a slow sink beside a fast one."""

import time

import numpy as np
import pytest

from vacelive.bridges.base import BridgeError
from vacelive.engine.loop import Engine
from vacelive.engine.state import ParamStore
from tests.fakes import CountingSource, RecordingSink, ScriptedGenerator, assert_clock_kept
from tests.waiting import wait_for

SIZE = 64


def make_store(fps=50.0):
    store = ParamStore()
    store.set("width", SIZE, live=False)
    store.set("height", SIZE, live=False)
    store.set("fps", fps)
    return store


def make_engine(*, source=None, generator=None, sinks=None, fps=50.0):
    errors: list[str] = []
    engine = Engine(make_store(fps), generator or ScriptedGenerator(SIZE, SIZE),
                    source or CountingSource(32, 16, 200.0), sinks if sinks is not None else [RecordingSink()],
                    make_annotator=lambda n: None, make_mask_source=lambda n: None, on_error=errors.append)
    return engine, errors


def test_a_stage_outlives_its_own_exception():
    class OneBadFrame(CountingSource):
        """Frames 5..19 are not images (some are skipped by the fps limit): resizing one raises
        inside the source reader's step, outside any handler of its own."""

        def read(self, timeout=0.1):
            frame = super().read(timeout)
            return np.zeros((16, 32), np.uint8) if 5 <= self.count < 20 else frame

    generator = ScriptedGenerator(SIZE, SIZE)
    engine, errors = make_engine(source=OneBadFrame(32, 16, 200.0), generator=generator)
    engine.start()
    try:
        assert wait_for(lambda: any("vacelive-source" in e for e in errors))
        assert wait_for(lambda: len(generator.chunks) >= 3)  # frames kept coming after the error
        assert engine.source_reader.is_alive()
    finally:
        assert engine.stop() == []
    assert any("vacelive-source" in e and "expected an (H, W, C) frame" in e for e in errors)


@pytest.mark.parametrize("bad", ["shape", "dtype", "count"])
def test_bad_generator_output_is_rejected_and_never_published(bad):
    class Bad(ScriptedGenerator):
        def generate(self, chunk):
            frames = super().generate(chunk)
            if chunk.index % 2:  # every other chunk is malformed
                return {"shape": frames[:, :32], "dtype": frames.astype(np.float32),
                        "count": np.concatenate([frames, frames])}[bad]
            return frames

    sink = RecordingSink()
    generator = Bad(SIZE, SIZE)
    engine, errors = make_engine(generator=generator, sinks=[sink], fps=100.0)
    engine.start()
    try:
        assert wait_for(lambda: len(generator.chunks) >= 5)
    finally:
        assert engine.stop() == []
    assert engine.metrics.generator_errors >= 2
    assert any("generator returned" in e for e in errors)
    published = {int(f[0, 0, 0]) for f in sink.frames}  # chunk index + 1
    assert published and all(value % 2 == 1 for value in published)  # only the even chunks' frames
    assert all(f.shape == (SIZE, SIZE, 3) and f.dtype == np.uint8 for f in sink.frames)


def test_a_sink_that_cannot_open_rolls_back_the_ones_opened_before_it():
    class Refusing(RecordingSink):
        def open(self, width, height, fps):
            raise BridgeError("file:/nowhere/out.mp4: no such folder")

    class Tracking(CountingSource):
        closed = False

        def close(self):
            super().close()
            self.closed = True

    first, last = RecordingSink(), RecordingSink()
    source = Tracking(32, 16, 200.0)
    engine, _ = make_engine(source=source, sinks=[first, Refusing(), last])
    with pytest.raises(BridgeError, match="no such folder"):
        engine.start()
    assert first.opened_with == (SIZE, SIZE, 50.0) and first.closed  # opened, then closed again
    assert last.opened_with is None and not last.closed  # never reached
    assert source.closed
    assert all(stage.ident is None for stage in engine.stages)  # no thread was started


def test_shutdown_flushes_what_the_clock_published():
    class Slow(RecordingSink):
        def write(self, frame):
            time.sleep(0.03)  # slower than the 20 ms clock: its queue is always full
            super().write(frame)

    sink = Slow()
    engine, _ = make_engine(sinks=[sink], fps=50.0)
    engine.start()
    assert wait_for(lambda: len(sink.frames) >= 10)
    assert engine.stop() == []
    writer = engine.sink_writers[0]
    assert writer.dropped > 0  # it did fall behind
    # every frame the clock published was either dropped (counted) or written, none left behind
    assert len(sink.frames) + writer.dropped == engine.metrics.frames_out
    assert sink.closed


def test_a_slow_sink_delays_neither_the_clock_nor_the_other_sinks():
    class Slow(RecordingSink):
        def write(self, frame):
            time.sleep(0.3)  # 15 frame periods per frame
            super().write(frame)

    slow, fast = Slow(), RecordingSink()
    engine, _ = make_engine(sinks=[slow, fast], fps=50.0)
    engine.start()
    time.sleep(1.5)
    assert engine.stop() == []
    assert_clock_kept(fast.times, 50.0)
    assert len(fast.frames) >= 50
    assert len(slow.frames) < len(fast.frames) / 3 and engine.sink_writers[0].dropped > 0
