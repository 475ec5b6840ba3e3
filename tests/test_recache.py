"""Prompt re-cache (LongLive's switch behaviour): the window's frames re-encoded under the new prompt."""

from __future__ import annotations

import pytest
import torch

from vacelive.engine.model import CONFIGS, CausalGenerator, WanModel

SIZE = 64  # pixels: latents 8x8, 16 tokens a frame


@pytest.fixture(scope="module")
def model() -> WanModel:
    torch.manual_seed(0)
    return WanModel(CONFIGS["tiny"]).eval()


def _prompt(seed: int) -> torch.Tensor:
    cfg = CONFIGS["tiny"]
    return torch.randn(1, cfg.text_len, cfg.text_dim, generator=torch.Generator().manual_seed(seed))


def _latents(n: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(7)
    return [torch.randn(1, 16, 3, SIZE // 8, SIZE // 8, generator=gen) for _ in range(n)]


def _stream(model, latents, prompts) -> CausalGenerator:
    stream = CausalGenerator(model, SIZE, SIZE)
    for x0, prompt in zip(latents, prompts):
        stream.write_cache(x0, prompt)
    return stream


def _slots(stream: CausalGenerator, first: int, last: int) -> list[torch.Tensor]:
    cache = stream.kv_cache
    return [t[:, :, first:last] for t in cache.k + cache.v]


def test_after_a_switch_the_ring_holds_what_the_new_prompt_would_have_written(model):
    old, new = _prompt(1), _prompt(2)
    latents = _latents(3)  # the sink chunk and two ring chunks: nothing evicted yet
    switched = _stream(model, latents, [old, old, old])
    assert switched.recache(new) == 6
    reference = _stream(model, latents, [old, new, new])  # the new prompt from the first ring frame on
    stale = _stream(model, latents, [old, old, old])
    sinks = switched.kv_cache.sink_frames
    for got, want in zip(_slots(switched, 0, 9), _slots(reference, 0, 9)):
        assert torch.allclose(got, want, atol=1e-5)  # sinks kept (global sink), ring re-encoded
    last_k = switched.kv_cache.num_layers - 1  # block 0's K/V come before any cross-attention: same for any prompt
    assert not torch.allclose(_slots(stale, sinks, 9)[last_k], _slots(reference, sinks, 9)[last_k], atol=1e-3)
    assert switched.kv_cache.frames_written == reference.kv_cache.frames_written
    assert switched.kv_cache.shift == 0


def test_recache_with_the_same_prompt_changes_nothing(model):
    prompt = _prompt(3)
    stream = _stream(model, _latents(3), [prompt] * 3)
    before = [t.clone() for t in _slots(stream, 0, 9)]
    stream.recache(prompt)
    for got, want in zip(_slots(stream, 0, 9), before):
        assert torch.allclose(got, want, atol=1e-6)


def test_a_full_ring_is_rewritten_in_order_and_the_next_frame_replaces_the_oldest(model):
    old, new = _prompt(4), _prompt(5)
    latents = _latents(7)
    stream = _stream(model, latents[:6], [old] * 6)  # 18 frames: the ring (9 slots) has wrapped
    cache = stream.kv_cache
    assert [start for start, _ in stream.window] == [9, 12, 15]
    assert stream.recache(new) == 9
    # frames 9..17 now sit in order from the first ring slot; frame 18 replaces frame 9
    assert [cache.slot(f) for f in (9, 12, 15, 17)] == [3, 6, 9, 11]
    assert cache.slot(18) == cache.slot(9) and cache.slot(20) == cache.slot(11)
    kept = [t[:, :, 6:12].clone() for t in cache.k]  # frames 12..17
    stream.write_cache(latents[6], new)
    assert all(torch.equal(t[:, :, 6:12], k) for t, k in zip(cache.k, kept))
    assert [start for start, _ in stream.window] == [12, 15, 18]


def chunk_for(store, index: int):
    """A chunk of gray frames with the store's current values."""
    import numpy as np

    from vacelive.engine.chunk import Chunk

    frames = np.full((12, store.get("height"), store.get("width"), 3), 128, np.uint8)
    return Chunk(index=index, epoch=0, frames=frames, control=None, masks=None, snapshot=store.snapshot(),
                 captured_at=[0.0] * 12)


def test_the_pipeline_recaches_on_a_switch_only_when_asked(model):
    from vacelive.engine.app import build_store
    from vacelive.engine.pipeline import build_generator

    for setting, expected in (("on", True), ("off", False), ("auto", False)):  # auto: on for LongLive only
        store = build_store(None, {"steps": 1, "prompt_recache": setting, "annotator": "none"})
        pipeline = build_generator(store, None, "cpu")
        pipeline.generate(chunk_for(store, index=0))
        store.set("prompt", "a completely different scene")
        pipeline.generate(chunk_for(store, index=1))
        assert ("recache" in pipeline.timings) is expected, setting
        pipeline.generate(chunk_for(store, index=2))  # no switch: no re-cache
        assert "recache" not in pipeline.timings
