"""Block-causal streaming: KV ring vs explicit masks, flat memory, caches, composition hooks."""

from dataclasses import replace

import pytest
import torch

from vacelive.engine.model import (
    CONFIGS,
    BlockContext,
    CausalGenerator,
    RingKVCache,
    WanModel,
    block_causal_mask,
)

ATOL = 2e-5


def _model(local: int = 12, sink: int = 3, seed: int = 0) -> WanModel:
    torch.manual_seed(seed)
    return WanModel(replace(CONFIGS["tiny"], local_attn_frames=local, sink_frames=sink)).eval()


def _prompt(seed: int = 1) -> torch.Tensor:
    return torch.randn(1, 7, 32, generator=torch.Generator().manual_seed(seed))


def test_block_causal_mask_by_hand():
    # 6 frames, chunks of 3, one token per frame: frames 0-2 see 0-2, frames 3-5 see 0-5.
    m = block_causal_mask(6, 1, 3)
    want = torch.tensor([[1, 1, 1, 0, 0, 0]] * 3 + [[1] * 6] * 3, dtype=torch.bool)
    assert torch.equal(m, want)
    # 9 frames, window 5 frames with 1 sink: chunk 2 (frames 6-8) sees sink 0 + frames 5..8.
    m = block_causal_mask(9, 1, 3, local_attn_frames=5, sink_frames=1)
    assert m[6].tolist() == [True, False, False, False, False, True, True, True, True]
    assert m[3].tolist() == [True, False, True, True, True, True, False, False, False]
    # tokens of a frame share the frame's row/column
    m2 = block_causal_mask(6, 2, 3)
    assert m2.shape == (12, 12) and torch.equal(m2[::2, ::2], block_causal_mask(6, 1, 3))


@torch.no_grad()
def test_incremental_chunks_equal_full_sequence_with_block_causal_mask():
    model = _model(local=100, sink=3)
    prompt = _prompt()
    chunks, frames, hw = 4, 3, 4  # latent 4x4 -> 2x2 tokens per frame
    x = torch.randn(1, 16, chunks * frames, hw, hw)
    mask = block_causal_mask(chunks * frames, 4, frames)
    full = model(x, 400.0, prompt, attn_mask=mask)

    cache = model.new_kv_cache(1, 4)
    for c in range(chunks):
        xc = x[:, :, c * frames:(c + 1) * frames]
        # a denoising-style pass that must not disturb the cache
        model(torch.randn_like(xc), 900.0, prompt, kv_cache=cache, start_frame=c * frames)
        out = model(xc, 400.0, prompt, kv_cache=cache, start_frame=c * frames, write_cache=True)
        torch.testing.assert_close(out, full[:, :, c * frames:(c + 1) * frames], atol=ATOL, rtol=0)


@torch.no_grad()
def test_cache_written_at_t0_equals_teacher_forced_sequence():
    """The generator's pattern: clean chunks cached at t=0, the new chunk noisy at t."""
    model = _model(local=100)
    prompt = _prompt()
    clean = torch.randn(1, 16, 9, 4, 4)
    noisy = torch.randn(1, 16, 3, 4, 4)
    cache = model.new_kv_cache(1, 4)
    for c in range(3):
        model(clean[:, :, 3 * c:3 * c + 3], 0.0, prompt, kv_cache=cache, start_frame=3 * c, write_cache=True)
    out = model(noisy, 625.0, prompt, kv_cache=cache, start_frame=9)

    seq = torch.cat([clean, noisy], dim=2)
    t = torch.tensor([[0.0] * 9 + [625.0] * 3])
    full = model(seq, t, prompt, attn_mask=block_causal_mask(12, 4, 3))
    torch.testing.assert_close(out, full[:, :, 9:], atol=ATOL, rtol=0)


@pytest.mark.parametrize("local,sink", [(9, 3), (8, 2), (6, 0), (12, 3)])
@torch.no_grad()
def test_ring_cache_equals_full_attention_over_window_plus_sinks(local, sink):
    model = _model(local=local, sink=sink)
    prompt = _prompt()
    chunks = 7
    x = torch.randn(1, 16, 3 * chunks, 4, 4)
    mask = block_causal_mask(3 * chunks, 4, 3, local_attn_frames=local, sink_frames=sink)
    full = model(x, 300.0, prompt, attn_mask=mask)
    cache = model.new_kv_cache(1, 4)
    for c in range(chunks):
        xc = x[:, :, 3 * c:3 * c + 3]
        model(torch.randn_like(xc), 800.0, prompt, kv_cache=cache, start_frame=3 * c)
        out = model(xc, 300.0, prompt, kv_cache=cache, start_frame=3 * c, write_cache=True)
        torch.testing.assert_close(out, full[:, :, 3 * c:3 * c + 3], atol=ATOL, rtol=0)
    # the window matters: full causal attention gives something else by the last chunk
    unwindowed = model(x, 300.0, prompt, attn_mask=block_causal_mask(3 * chunks, 4, 3))
    assert (unwindowed[:, :, -3:] - full[:, :, -3:]).abs().max() > 1e-3


class _SpyCache(RingKVCache):
    """Records how many key tokens each forward's attention sees."""

    lengths: list[int]

    def plan(self, num_tokens, prefix_tokens=0):
        plan = super().plan(num_tokens, prefix_tokens)
        self.lengths.append(plan.valid * self.frame_tokens)
        return plan


@torch.no_grad()
def test_memory_and_attention_span_stay_flat_over_200_chunks():
    model = _model()  # LongLive settings: 12 frames attended, 3 sinks
    gen = CausalGenerator(model, height=64, width=64)  # 8x8 latent, 16 tokens per frame
    head_dim = CONFIGS["tiny"].head_dim
    spy = _SpyCache(2, 1, 2, head_dim, 16, 12, 3)
    spy.lengths = []
    gen.kv_cache = spy
    prompt = _prompt()
    bytes0 = spy.nbytes
    ptrs = [t.data_ptr() for t in spy.k + spy.v]
    for i in range(200):
        out = gen.generate_chunk(prompt, seed=5, steps=1)
        if i == 9:
            early_max = max(spy.lengths)
    assert out.shape == (1, 16, 3, 8, 8) and torch.isfinite(out).all()
    assert spy.nbytes == bytes0 == 2 * 2 * (12 * 16 * 2 * head_dim * 4)  # layers * (k,v) * elements * fp32
    assert [t.data_ptr() for t in spy.k + spy.v] == ptrs
    assert gen.frame_index == 600 and gen.chunk_index == 200
    assert spy.frames_written == 600
    # the attention span saturates at the window (12 frames x 16 tokens) and stays there
    assert early_max == max(spy.lengths) == 12 * 16
    assert spy.lengths[-100:] == [12 * 16] * 100


@torch.no_grad()
def test_reset_is_a_hard_cut_and_replays_with_same_chunk_index():
    gen = CausalGenerator(_model(), height=32, width=32)
    prompt = _prompt()
    first = gen.generate_chunk(prompt, seed=3, steps=2)
    second = gen.generate_chunk(prompt, seed=3, steps=2)
    assert not torch.allclose(first, second)
    gen.reset()
    assert gen.frame_index == 0 and gen.chunk_index == 2 and gen.kv_cache.frames_written == 0
    gen.chunk_index = 0
    torch.testing.assert_close(gen.generate_chunk(prompt, seed=3, steps=2), first, atol=0, rtol=0)


@torch.no_grad()
def test_text_kv_computed_once_per_prompt_and_recomputed_on_change(monkeypatch):
    model = _model()
    calls = []
    for block in model.blocks:
        orig = block.cross_attn.project_context
        monkeypatch.setattr(block.cross_attn, "project_context", lambda c, orig=orig: calls.append(1) or orig(c))
    gen = CausalGenerator(model, height=32, width=32)
    prompt = _prompt()
    gen.generate_chunk(prompt, seed=0, steps=4)
    gen.generate_chunk(prompt, seed=0, steps=4)
    assert len(calls) == 2  # once per block for 10 forwards
    gen.generate_chunk(_prompt(2), seed=0, steps=1)  # new tensor
    assert len(calls) == 4
    new = _prompt(3)
    gen.generate_chunk(new, seed=0, steps=1)
    new.mul_(2.0)  # in-place edit of the same tensor
    gen.generate_chunk(new, seed=0, steps=1)
    assert len(calls) == 8


@torch.no_grad()
def test_cached_text_gives_same_output_as_uncached():
    model = _model()
    prompt = _prompt()
    a = CausalGenerator(model, 32, 32)
    b = CausalGenerator(model, 32, 32)
    b.text_cache = None  # type: ignore[assignment]  # forces recomputation each forward
    for _ in range(2):
        torch.testing.assert_close(a.generate_chunk(prompt, 1, 2), b.generate_chunk(prompt, 1, 2), atol=1e-6, rtol=0)


@torch.no_grad()
def test_blocks_are_reusable_with_another_cache_instance():
    model = _model()
    prompt = _prompt()
    x = torch.randn(1, 16, 3, 4, 4)
    cache_a, cache_b = model.new_kv_cache(1, 4), model.new_kv_cache(1, 4)
    out_a = model(x, 500.0, prompt, kv_cache=cache_a, write_cache=True)
    model(torch.randn_like(x), 0.0, prompt, kv_cache=cache_a, start_frame=3, write_cache=True)
    out_b = model(x, 500.0, prompt, kv_cache=cache_b, write_cache=True)
    torch.testing.assert_close(out_a, out_b, atol=0, rtol=0)
    assert cache_a.frames_written == 6 and cache_b.frames_written == 3


class _HintedBlock(torch.nn.Module):
    """What a VACE wrapper does: run the original block, add a hint from ctx.extras."""

    def __init__(self, block):
        super().__init__()
        self.block = block

    @property
    def cross_attn(self):  # the model reads each block's text projections before the stack runs
        return self.block.cross_attn

    def forward(self, x, ctx: BlockContext):
        return self.block(x, ctx) + ctx.extras["hint"]


@torch.no_grad()
def test_extras_reach_blocks_and_extras_fn_sees_embedded_tokens():
    model = _model()
    prompt = _prompt()
    gen = CausalGenerator(model, 32, 32)
    base = gen.generate_chunk(prompt, seed=9, steps=2)
    model.blocks[1] = _HintedBlock(model.blocks[1])
    seen = []

    def extras_fn(ctx: BlockContext) -> None:
        seen.append((ctx.x_embedded.shape, ctx.write_cache, ctx.layer))
        ctx.extras["hint"] = torch.zeros_like(ctx.x_embedded)

    gen2 = CausalGenerator(model, 32, 32)
    torch.testing.assert_close(gen2.generate_chunk(prompt, seed=9, steps=2, extras_fn=extras_fn), base, atol=0, rtol=0)
    dim = CONFIGS["tiny"].dim
    assert seen == [((1, 12, dim), False, 0), ((1, 12, dim), False, 0), ((1, 12, dim), True, 0)]
    gen3 = CausalGenerator(model, 32, 32)
    hinted = gen3.generate_chunk(prompt, seed=9, steps=2, extras={"hint": torch.randn(1, 12, dim)})
    assert (hinted - base).abs().max() > 1e-3


@torch.no_grad()
def test_generator_drives_the_warped_schedule_and_writes_cache_at_t0():
    model = _model()
    record = []
    model.register_forward_pre_hook(lambda m, args, kw: record.append((args[1], kw["write_cache"])), with_kwargs=True)
    gen = CausalGenerator(model, 32, 32)
    gen.generate_chunk(_prompt(), seed=0, steps=3)
    assert record == [(1000.0, False), (833.3333333333334, False), (625.0, False), (0.0, True)]


def test_bfloat16_forward_runs_and_is_close_to_fp32():
    model = _model()
    prompt = _prompt()
    x = torch.randn(1, 16, 3, 4, 4)
    with torch.no_grad():
        ref = model(x, 500.0, prompt)
        out = model.to(torch.bfloat16)(x, 500.0, prompt)
    assert out.dtype == torch.float32
    assert (out - ref).abs().max() < 0.1 * ref.abs().max()
