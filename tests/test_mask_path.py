"""The mask path through the live loop: mask source -> ``chunk.masks``, its faults, and the
annotator's (control frames) faults, with a scripted generator that records what it is given."""

import numpy as np

from vacelive import annotators
from vacelive.engine.loop import Engine
from vacelive.engine.state import ParamStore
from tests.fakes import CountingSource, RecordingSink, ScriptedGenerator
from tests.waiting import wait_for

SIZE = 64


class AlphaSource(CountingSource):
    """RGBA frames at the engine size (no resize): RGB holds the index, alpha a ramp 0, 4, ... 252
    across the width (so the expected mask is exactly ``alpha / 255``)."""

    RAMP = (np.arange(SIZE, dtype=np.uint8) * 4)[None, :].repeat(SIZE, axis=0)

    def read(self, timeout=0.1):
        frame = super().read(timeout)
        if frame is None:
            return None
        return np.dstack([frame, self.RAMP])


def make_engine(source, *, mask_source="none", annotator="none", make_annotator=None, make_mask_source=None,
                **params):
    store = ParamStore()
    store.set("width", SIZE, live=False)
    store.set("height", SIZE, live=False)
    store.set("fps", 100.0)
    store.set("mask_feather", 0)
    store.set("mask_source", mask_source)
    store.set("annotator", annotator)
    for key, value in params.items():
        store.set(key, value)
    generator = ScriptedGenerator(SIZE, SIZE)
    errors: list[str] = []
    engine = Engine(store, generator, source, [RecordingSink()],
                    make_annotator=make_annotator or (lambda name: annotators.make_annotator(name)),
                    make_mask_source=make_mask_source or (lambda name: annotators.make_mask_source(name)),
                    on_error=errors.append)
    return store, engine, generator, errors


def run_until_chunks(engine, generator, n, timeout=10.0):
    engine.start()
    try:
        assert wait_for(lambda: len(generator.chunks) >= n, timeout=timeout), f"{len(generator.chunks)} chunks"
    finally:
        assert engine.stop() == []


def test_alpha_mask_reaches_the_generator_as_chunk_masks():
    _, engine, generator, errors = make_engine(AlphaSource(SIZE, SIZE, 400.0), mask_source="alpha")
    run_until_chunks(engine, generator, 2)
    want = (AlphaSource.RAMP.astype(np.float32) / 255.0)[None].repeat(12, axis=0)
    for chunk in generator.chunks:
        assert chunk.frames.shape == (12, SIZE, SIZE, 3)  # alpha split off the frames
        assert chunk.masks is not None and chunk.masks.dtype == np.float32
        np.testing.assert_allclose(chunk.masks, want, atol=1e-6)
    assert not errors


def test_luma_mask_follows_each_frame_and_its_invert():
    # grey frames of value n: luma n, so the mask is (n > 127.5), inverted: (n <= 127.5)
    source = CountingSource(SIZE, SIZE, 400.0)
    source.count = 110  # the values cross the threshold within the first chunks
    _, engine, generator, _ = make_engine(source, mask_source="luma", mask_threshold=0.5, mask_invert=True)
    run_until_chunks(engine, generator, 3)
    seen = set()
    for chunk in generator.chunks:
        values = chunk.frames[:, 0, 0, 0].astype(np.float32)
        want = (values <= 127.5).astype(np.float32)[:, None, None] * np.ones((1, SIZE, SIZE), np.float32)
        np.testing.assert_array_equal(chunk.masks, want)
        seen |= set(np.unique(chunk.masks).tolist())
    assert seen == {0.0, 1.0}


def test_no_mask_source_gives_no_masks():
    _, engine, generator, _ = make_engine(CountingSource(SIZE, SIZE, 400.0))
    run_until_chunks(engine, generator, 1)
    assert all(chunk.masks is None for chunk in generator.chunks)


def test_an_alpha_mask_without_alpha_generates_everywhere_and_says_why():
    store, engine, generator, errors = make_engine(CountingSource(SIZE, SIZE, 400.0), mask_source="alpha")
    run_until_chunks(engine, generator, 2)
    for chunk in generator.chunks:
        np.testing.assert_array_equal(chunk.masks, np.ones((12, SIZE, SIZE), np.float32))
    assert any("alpha channel" in e for e in errors)
    assert engine.metrics.error_condition == "mask"
    assert store.get("mask_source") == "alpha"  # it stays selected: an RGBA input would make it work


def test_switching_to_an_unavailable_mask_source_keeps_the_old_one():
    def make_mask_source(name):
        if name == "person":
            raise FileNotFoundError("selfie_segmenter.tflite not found")
        return annotators.make_mask_source(name)

    store, engine, generator, errors = make_engine(AlphaSource(SIZE, SIZE, 400.0), mask_source="alpha",
                                                   make_mask_source=make_mask_source)
    engine.start()
    try:
        assert wait_for(lambda: len(generator.chunks) >= 1)
        store.set("mask_source", "person")
        assert wait_for(lambda: store.get("mask_source") == "alpha")  # put back
        switched_at = len(generator.chunks)
        assert wait_for(lambda: len(generator.chunks) >= switched_at + 2)
    finally:
        assert engine.stop() == []
    assert any("'person' unavailable" in e and "selfie_segmenter" in e and "keeping 'alpha'" in e for e in errors)
    want = AlphaSource.RAMP.astype(np.float32) / 255.0
    for chunk in generator.chunks:
        np.testing.assert_allclose(chunk.masks, want[None].repeat(12, axis=0), atol=1e-6)


def test_switching_to_an_unavailable_annotator_keeps_the_old_one():
    class Invert:
        name = "invert"

        def __call__(self, frames, settings):
            return 255 - frames

        def reset(self):
            pass

    def make_annotator(name):
        if name == "pose":
            raise FileNotFoundError("pose_landmarker_full.task not found")
        return Invert() if name == "edge" else None

    store, engine, generator, errors = make_engine(CountingSource(SIZE, SIZE, 400.0), annotator="edge",
                                                   make_annotator=make_annotator)
    engine.start()
    try:
        assert wait_for(lambda: len(generator.chunks) >= 1)
        store.set("annotator", "pose")
        assert wait_for(lambda: store.get("annotator") == "edge")
        switched_at = len(generator.chunks)
        assert wait_for(lambda: len(generator.chunks) >= switched_at + 2)
    finally:
        assert engine.stop() == []
    assert any("'pose' unavailable" in e and "keeping 'edge'" in e for e in errors)
    for chunk in generator.chunks:  # every chunk, after the failed switch too, has the old control
        np.testing.assert_array_equal(chunk.control, 255 - chunk.frames)


def test_an_annotator_that_fails_holds_the_last_good_control():
    class FailsAfter:
        """Inverts the first 5 frames, then raises on every frame."""

        name = "fails"

        def __init__(self):
            self.good: set[int] = set()  # the frame values it annotated
            self.last_good = None

        def __call__(self, frames, settings):
            if len(self.good) >= 5:
                raise RuntimeError("annotator model crashed")
            self.good.add(int(frames[0, 0, 0, 0]))
            self.last_good = 255 - frames[0]
            return 255 - frames

        def reset(self):
            pass

    annotator = FailsAfter()
    _, engine, generator, errors = make_engine(CountingSource(SIZE, SIZE, 400.0), annotator="edge",
                                               make_annotator=lambda name: annotator)
    run_until_chunks(engine, generator, 2)
    held = 0
    for chunk in generator.chunks:
        for frame, control in zip(chunk.frames, chunk.control):
            if int(frame[0, 0, 0]) in annotator.good:
                np.testing.assert_array_equal(control, 255 - frame)
            else:
                np.testing.assert_array_equal(control, annotator.last_good)  # not black, not the input
                held += 1
    assert held >= 12
    assert any("annotator model crashed" in e for e in errors)
    assert engine.metrics.error_condition == "annotator"
