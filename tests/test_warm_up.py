"""The generator is warmed up before the clock starts, and the stream then starts fresh."""

from __future__ import annotations

import numpy as np

from vacelive.engine.app import build_store
from vacelive.engine.chunk import Chunk
from vacelive.engine.pipeline import build_generator


def _chunk(store, index: int) -> Chunk:
    frames = np.random.default_rng(index).integers(0, 255, (12, store.get("height"), store.get("width"), 3),
                                                   dtype=np.uint8)
    return Chunk(index=index, epoch=0, frames=frames, control=None, masks=None, snapshot=store.snapshot(),
                 captured_at=[0.0] * 12)


def test_a_warmed_up_pipeline_starts_the_same_stream_as_a_cold_one():
    store = build_store(None, {"steps": 2, "annotator": "edge", "width": 64, "height": 64})
    cold, warm = build_generator(store, None, "cpu"), build_generator(store, None, "cpu")
    assert warm.warm_up(store.snapshot()) > 0
    assert warm.causal.frame_index == 0 and warm.causal.chunk_index == 0
    for index in range(2):  # the first chunk of a stream (9 frames) and a later one (12)
        a, b = cold.generate(_chunk(store, index)), warm.generate(_chunk(store, index))
        assert a.shape == b.shape and np.array_equal(a, b)
