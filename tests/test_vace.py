"""VACE by composition: hooks, branch, vace_context, mask folding, grafting, media, pipeline."""

from __future__ import annotations

import logging
from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from vacelive.engine.chunk import Chunk
from vacelive.engine.model import CONFIGS, CausalGenerator, WanModel
from vacelive.engine.pipeline import build_generator
from vacelive.engine.state import ParamStore
from vacelive.engine.vace import (
    EXTRAS_KEY,
    LAST_KEYFRAME_INDEX,
    MaskStream,
    MediaSlot,
    VaceBranch,
    VaceConditioning,
    VaceContextEncoder,
    VaceController,
    VaceGraftError,
    attach_vace,
    compose_frames,
    default_vace_layers,
    fold_mask,
    graft_vace,
    infer_mode,
)
from vacelive.engine.vae import make_autoencoder

H, W = 32, 64  # latent 4 x 8, tokens 2 x 4 per latent frame


def _model(seed: int = 0) -> WanModel:
    torch.manual_seed(seed)
    return WanModel(CONFIGS["tiny"]).eval().requires_grad_(False)


def _branch(model: WanModel, nonzero: bool = True, seed: int = 1) -> VaceBranch:
    branch = VaceBranch(model.blocks, default_vace_layers(len(model.blocks)), model.config.dim).eval()
    if nonzero:
        _randomize(branch, seed)
    return branch


@torch.no_grad()
def _randomize(branch: VaceBranch, seed: int = 1) -> None:
    gen = torch.Generator().manual_seed(seed)
    for block in branch.vace_blocks:
        for proj in (getattr(block, "before_proj", None), block.after_proj):
            if proj is not None:
                proj.weight.copy_(torch.randn(proj.weight.shape, generator=gen) * 0.2)
                proj.bias.copy_(torch.randn(proj.bias.shape, generator=gen) * 0.2)


def _prompt() -> torch.Tensor:
    return torch.randn(1, 7, 32, generator=torch.Generator().manual_seed(3))


def _cond(scale: float = 1.0, refs: int = 0, seed: int = 5) -> VaceConditioning:
    gen = torch.Generator().manual_seed(seed)
    context = torch.randn(1, 96, 3, H // 8, W // 8, generator=gen)
    references = torch.randn(1, 96, refs, H // 8, W // 8, generator=gen) if refs else None
    return VaceConditioning(context, scale, references)


def _chunks(gen: CausalGenerator, extras_list) -> list[torch.Tensor]:
    return [gen.generate_chunk(_prompt(), seed=7, steps=2, extras=e) for e in extras_list]


def test_default_vace_layers():
    assert default_vace_layers(30) == tuple(range(0, 30, 2)) and len(default_vace_layers(30)) == 15
    assert default_vace_layers(40) == (0, 5, 10, 15, 20, 25, 30, 35)
    assert default_vace_layers(2) == (0,)


def test_no_inputs_or_zero_scale_or_zero_weights_give_the_base_exactly():
    model = _model()
    prompt = _prompt()
    base_gen = CausalGenerator(model, H, W)
    base = [base_gen.generate_chunk(prompt, seed=7, steps=2) for _ in range(2)]
    injector = attach_vace(model, _branch(model))
    for extras in (None, {}, {EXTRAS_KEY: _cond(0.0, refs=1)}):
        gen = CausalGenerator(model, H, W)
        for want in base:
            torch.testing.assert_close(gen.generate_chunk(prompt, seed=7, steps=2, extras=extras), want, atol=0, rtol=0)
    injector.detach()
    zero = attach_vace(model, _branch(model, nonzero=False))  # hooks run, hints are exactly 0
    gen = CausalGenerator(model, H, W)
    for want in base:
        out = gen.generate_chunk(prompt, seed=7, steps=2, extras={EXTRAS_KEY: _cond(1.5, refs=2)})
        torch.testing.assert_close(out, want, atol=0, rtol=0)
    assert zero.kv_cache is not None and zero.kv_cache.frames_written == 6


def test_hints_change_the_output_and_the_residual_is_linear_in_scale():
    model = _model()
    attach_vace(model, _branch(model))
    outputs = {}

    def capture(module, args, output):  # registered after the VACE hook: sees the injected output
        outputs[len(outputs)] = output

    model.blocks[0].register_forward_hook(capture)
    x = torch.randn(1, 16, 3, H // 8, W // 8, generator=torch.Generator().manual_seed(0))
    for scale in (0.0, 0.5, 1.0, 2.0):
        model(x, 500.0, _prompt(), extras={EXTRAS_KEY: _cond(scale)})
    r = [outputs[i] - outputs[0] for i in (1, 2, 3)]
    assert r[0].abs().max() > 1e-3
    torch.testing.assert_close(r[1], 2 * r[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(r[2], 4 * r[0], atol=1e-5, rtol=1e-4)


def test_injection_errors_name_the_problem_and_leave_the_model_usable():
    model = _model()
    x = torch.randn(1, 16, 3, H // 8, W // 8, generator=torch.Generator().manual_seed(0))
    base = model(x, 500.0, _prompt())
    injector = attach_vace(model, _branch(model))
    short = VaceConditioning(torch.zeros(1, 96, 2, H // 8, W // 8), 1.0, None)  # 2 latent frames for 3
    dim = CONFIGS["tiny"].dim
    with pytest.raises(ValueError, match=rf"vace_context tokens \(1, 16, {dim}\) do not match the chunk's \(1, 24, {dim}\)"):
        model(x, 500.0, _prompt(), extras={EXTRAS_KEY: short})
    with pytest.raises(ValueError, match=r"reference images need the streaming \(KV-cached\) forward"):
        model(x, 500.0, _prompt(), extras={EXTRAS_KEY: _cond(refs=1)})  # a plain forward has no cache
    assert injector.attached
    torch.testing.assert_close(model(x, 500.0, _prompt()), base, atol=0, rtol=0)  # no hint left behind
    for layers in ((1, 0), (0, 0), (0, 2), (-1,)):
        with pytest.raises(ValueError, match=rf"vace_layers \({layers[0]}.*strictly increasing indices below 2"):
            VaceBranch(model.blocks, layers, model.config.dim)


def test_wrapping_keeps_state_dict_keys_and_detach_is_byte_identical():
    model = _model()
    keys = list(model.state_dict())
    base = _chunks(CausalGenerator(model, H, W), [None, None])
    injector = attach_vace(model, _branch(model))
    assert list(model.state_dict()) == keys
    hinted = _chunks(CausalGenerator(model, H, W), [{EXTRAS_KEY: _cond()}] * 2)
    assert (hinted[1] - base[1]).abs().max() > 1e-3
    injector.detach()
    assert not injector.attached and list(model.state_dict()) == keys
    for a, b in zip(_chunks(CausalGenerator(model, H, W), [{EXTRAS_KEY: _cond()}] * 2), base):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


@pytest.mark.parametrize("local,sink", [(9, 3), (6, 0)])
@torch.no_grad()
def test_branch_streams_with_the_base_cache_rules(local, sink):
    """Chunk by chunk (base ring + the branch's own ring) equals one full-sequence pass with the
    block-causal windowed mask applied to base and branch alike."""
    from vacelive.engine.model import block_causal_mask

    torch.manual_seed(0)
    model = WanModel(replace(CONFIGS["tiny"], local_attn_frames=local, sink_frames=sink)).eval()
    injector = attach_vace(model, _branch(model))
    chunks, prompt = 5, _prompt()
    x = torch.randn(1, 16, 3 * chunks, 4, 4)
    context = torch.randn(1, 96, 3 * chunks, 4, 4)
    mask = block_causal_mask(3 * chunks, 4, 3, local_attn_frames=local, sink_frames=sink)
    full = model(x, 300.0, prompt, attn_mask=mask, extras={EXTRAS_KEY: VaceConditioning(context, 1.0)})
    cache = model.new_kv_cache(1, 4)
    for c in range(chunks):
        part = slice(3 * c, 3 * c + 3)
        extras = {EXTRAS_KEY: VaceConditioning(context[:, :, part], 1.0)}
        model(torch.randn_like(x[:, :, part]), 800.0, prompt, kv_cache=cache, start_frame=3 * c, extras=extras)
        out = model(x[:, :, part], 300.0, prompt, kv_cache=cache, start_frame=3 * c, write_cache=True, extras=extras)
        torch.testing.assert_close(out, full[:, :, part], atol=2e-5, rtol=0)
    assert injector.kv_cache.frames_written == 3 * chunks
    plain = model(x, 300.0, prompt, attn_mask=mask)
    assert (plain - full).abs().max() > 1e-3


def test_branch_names_and_zero_init():
    model = _model()
    branch = _branch(model, nonzero=False)
    keys = set(branch.state_dict())
    assert "vace_patch_embedding.weight" in keys and branch.vace_patch_embedding.weight.shape == (CONFIGS["tiny"].dim, 96, 1, 2, 2)
    assert {"vace_blocks.0.before_proj.weight", "vace_blocks.0.after_proj.bias"} <= keys
    assert {k.removeprefix("vace_blocks.0.") for k in keys if k.startswith("vace_blocks.0.")
            if "_proj." not in k} == {k.removeprefix("blocks.0.") for k in model.state_dict() if k.startswith("blocks.0.")}
    assert branch.is_zero()
    _randomize(branch)
    assert not branch.is_zero()


def test_references_stay_out_of_the_chunk_and_its_cache():
    model = _model()
    injector = attach_vace(model, _branch(model))
    gen = CausalGenerator(model, H, W)
    plain = gen.generate_chunk(_prompt(), seed=7, steps=2, extras={EXTRAS_KEY: _cond()})
    gen.reset()
    injector.reset()
    with_refs = gen.generate_chunk(_prompt(), seed=7, steps=2, extras={EXTRAS_KEY: _cond(refs=3)})
    assert with_refs.shape == plain.shape == (1, 16, 3, H // 8, W // 8)
    assert (with_refs - plain).abs().max() > 1e-4  # the references condition the chunk
    assert injector.kv_cache.frames_written == 3  # only the chunk's frames are cached


def test_fold_mask_by_hand():
    mask = torch.zeros(1, 1, 16, 24)
    mask[0, 0, 9, 3] = 1.0  # pixel (y=9, x=3): patch (1, 0), in-patch (1, 3) -> channel 8*1 + 3
    mask[0, 0, 7, 23] = 0.5  # pixel (y=7, x=23): patch (0, 2), in-patch (7, 7) -> channel 63
    folded = fold_mask(mask)
    assert folded.shape == (1, 64, 1, 2, 3)
    want = torch.zeros(1, 64, 1, 2, 3)
    want[0, 11, 0, 1, 0] = 1.0
    want[0, 63, 0, 0, 2] = 0.5
    torch.testing.assert_close(folded, want, atol=0, rtol=0)


def test_mask_stream_resamples_time_like_the_vae():
    stream = MaskStream()
    values = torch.tensor([0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0], dtype=torch.float32)
    chunk = values[None, :, None, None].expand(1, 12, 8, 8)
    first = stream(chunk)  # latents: frame 0 | frames 1-4 | frames 5-8; 9-11 wait
    assert first.shape == (1, 64, 3, 1, 1)
    assert first[0, :, :, 0, 0].unique(dim=0).tolist() == [[0.0, 1.0, 0.0]]
    second = stream(torch.zeros(1, 12, 8, 8))  # frames 9-11 + new 0 | 1-4 | 5-8
    assert second[0, 0, :, 0, 0].tolist() == [1.0, 0.0, 0.0]
    stream.reset()
    assert stream(torch.zeros(1, 12, 8, 8)).shape[2] == 3


def _composed(*args):
    """compose_frames as arrays: frames (T, H, W, 3), mask (T, H, W)."""
    frames, mask = compose_frames(*args)
    return frames[0].permute(1, 2, 3, 0).numpy(), mask[0].numpy()


def test_compose_frames():
    rng = np.random.default_rng(0)
    source, control = (rng.integers(0, 256, (12, 8, 8, 3), dtype=np.uint8) for _ in range(2))
    unit = lambda a: a.astype(np.float32) / 127.5 - 1  # noqa: E731
    frames, mask = _composed(source, control, None)
    assert (mask == 1).all() and np.allclose(frames, unit(control))
    frames, mask = _composed(source, None, None)  # references only: gray video, mask 1
    assert (mask == 1).all() and (frames == 0).all()
    masks = np.zeros((12, 8, 8), np.float32)
    masks[:, :4] = 0.9
    frames, mask = _composed(source, control, masks)
    assert np.allclose(frames[:, :4], unit(control)[:, :4]) and np.allclose(frames[:, 4:], unit(source)[:, 4:])
    first, last = source[0], source[1]
    frames, mask = _composed(source, None, None, first, last)
    assert np.allclose(frames[0], unit(first)) and np.allclose(frames[LAST_KEYFRAME_INDEX], unit(last))
    assert mask[0].max() == 0 and mask[LAST_KEYFRAME_INDEX].max() == 0 and mask[1:LAST_KEYFRAME_INDEX].min() == 1
    assert (frames[1:LAST_KEYFRAME_INDEX] == 0).all()


@pytest.mark.parametrize("kinds", [("a", "b"), ("b", "b")])
def test_context_streams_are_separate(kinds):
    vae = make_autoencoder("tae", None, "tiny")
    rng = torch.Generator().manual_seed(0)
    mask = torch.zeros(1, 12, H, W)
    mask[:, :, :, : W // 2] = 1.0
    control = torch.rand(1, 3, 12, H, W, generator=rng) * 2 - 1
    outside = {k: torch.rand(1, 3, 12, H, W, generator=rng) * 2 - 1 for k in "ab"}
    results = []
    for kind in kinds:  # same reactive input, different (or same) inactive input
        enc = VaceContextEncoder(vae)
        assert len({id(enc.inactive_cache), id(enc.reactive_cache)}) == 2
        frames = torch.where(mask[:, None] > 0.5, control, outside[kind])
        results.append([enc.encode(frames, mask) for _ in range(2)])
    for a, b in zip(*results):
        assert a.shape == (1, 96, 3, H // 8, W // 8)
        torch.testing.assert_close(a[:, 16:], b[:, 16:], atol=0, rtol=0)  # reactive + mask untouched
    assert (results[0][1][:, :16] != results[1][1][:, :16]).any() == (kinds[0] != kinds[1])


def test_infer_mode():
    assert infer_mode() == "t2v"
    assert infer_mode(control=True) == "control"
    assert infer_mode(references=2, control=True) == "r2v+control"
    assert infer_mode(mask=True) == "inpaint"
    assert infer_mode(keyframe_first=True) == "extension:firstframe"
    assert infer_mode(keyframe_last=True) == "extension:lastframe"
    assert infer_mode(references=1, keyframe_first=True, keyframe_last=True) == "r2v+extension:firstlastframe"


def _image(path, shape=(40, 90, 3), seed=0):
    cv2.imwrite(str(path), np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8))


def test_media_slot_reloads_on_change_and_keeps_last_good(tmp_path, caplog):
    _image(tmp_path / "a.png")
    _image(tmp_path / "b.png", seed=1)
    slot = MediaSlot("reference_1", lambda v: tmp_path / v, W, H)
    a = slot.update("a.png")
    assert a.shape == (H, W, 3) and a.dtype == np.uint8 and slot.update("a.png") is a
    with caplog.at_level(logging.WARNING):
        assert slot.update("missing.png") is a
    assert "missing.png" in caplog.text and slot.error
    b = slot.update("b.png")
    assert not np.array_equal(a, b) and slot.error is None
    assert slot.update("") is None


def _spy_encode(vace: VaceController) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Record (frames [1, 3, T, H, W], mask [1, T, H, W]) as the context encoder gets them."""
    encoded = []
    encode = vace.encoder.encode
    vace.encoder.encode = lambda frames, mask: (encoded.append((frames.clone(), mask.clone())),
                                                encode(frames, mask))[1]
    return encoded


def _chunk(snapshot, index=0, control=True, masks=True, size=(H, W)) -> Chunk:
    rng = np.random.default_rng(index)
    frames = rng.integers(0, 256, (12, *size, 3), dtype=np.uint8)
    return Chunk(index=index, epoch=0, frames=frames,
                 control=rng.integers(0, 256, (12, *size, 3), dtype=np.uint8) if control else None,
                 masks=(rng.random((12, *size)) > 0.5).astype(np.float32) if masks else None,
                 snapshot=snapshot, captured_at=[0.0] * 12)


@pytest.mark.parametrize("control,masks,refs,first,last,mode", [
    (True, False, 0, False, False, "control"),
    (False, True, 0, False, False, "inpaint"),
    (True, True, 2, False, False, "r2v+control+inpaint"),
    (False, False, 1, False, False, "r2v"),
    (False, False, 0, True, False, "extension:firstframe"),
    (True, False, 0, True, True, "control+extension:firstlastframe"),
    (False, False, 3, False, True, "r2v+extension:lastframe"),
])
def test_controller_context_for_each_mode(tmp_path, control, masks, refs, first, last, mode):
    for name in ("r1.png", "r2.png", "r3.png", "k.png"):
        _image(tmp_path / name, seed=len(name))
    model = _model()
    injector = attach_vace(model, _branch(model))
    vace = VaceController(injector, make_autoencoder("tae", None, "tiny"), lambda v: tmp_path / v, W, H)
    encoded = _spy_encode(vace)
    snapshot = {"context_scale": 1.0, "reference_1": "r1.png" if refs > 0 else "",
                "reference_2": "r2.png" if refs > 1 else "", "reference_3": "r3.png" if refs > 2 else "",
                "keyframe_first": "k.png" if first else "", "keyframe_last": "k.png" if last else ""}
    chunk = _chunk(snapshot, control=control, masks=masks)
    extras = vace.prepare(chunk, first=True)
    assert vace.mode == mode
    cond = extras[EXTRAS_KEY]
    assert cond.context.shape == (1, 96, 3, H // 8, W // 8)
    # what was composed and encoded: kept pixels from the input, the rest from the control (grey,
    # i.e. 0, without one); keyframes as whole frames at 0 and 8 with mask 0
    want_mask = chunk.masks.copy() if masks else np.ones((12, H, W), np.float32)
    fill = chunk.control / 127.5 - 1.0 if control else np.zeros((12, H, W, 3))
    want_frames = np.where(want_mask[..., None] <= 0.5, chunk.frames / 127.5 - 1.0, fill)
    for index, used in ((0, first), (8, last)):
        if used:
            want_frames[index] = vace.slots["keyframe_first" if index == 0 else "keyframe_last"].image / 127.5 - 1.0
            want_mask[index] = 0.0
    frames, mask = encoded[-1]
    np.testing.assert_array_equal(mask[0].numpy(), want_mask)
    np.testing.assert_allclose(frames[0].permute(1, 2, 3, 0).numpy(), want_frames, atol=1e-6)
    # the folded mask: latent 0 = frame 0, then the max over frames 1-4 and 5-8 (9-11 wait);
    # channel 8 * py + px holds pixel (8 h + py, 8 w + px)
    latents = np.stack([want_mask[0], want_mask[1:5].max(0), want_mask[5:9].max(0)])  # (3, H, W)
    folded = latents.reshape(3, H // 8, 8, W // 8, 8).transpose(2, 4, 0, 1, 3).reshape(64, 3, H // 8, W // 8)
    np.testing.assert_array_equal(cond.context[0, 32:].numpy(), folded)
    assert (cond.references is None) == (refs == 0)
    if refs:
        assert cond.references.shape == (1, 96, refs, H // 8, W // 8)
        assert (cond.references[:, 16:] == 0).all()
    if first:  # not the first chunk any more: keyframe_first no longer applies
        extras = vace.prepare(_chunk(snapshot, 1, control=control, masks=masks), first=False)
        assert "firstframe" not in vace.mode and ("lastframe" in vace.mode) == last


def test_controller_skips_without_inputs_scale_or_weights():
    model = _model()
    injector = attach_vace(model, _branch(model))
    vace = VaceController(injector, make_autoencoder("tae", None, "tiny"), lambda v: v, W, H)
    assert vace.prepare(_chunk({"context_scale": 1.0}, control=False, masks=False), first=True) is None
    assert vace.mode == "t2v"
    assert vace.prepare(_chunk({"context_scale": 0.0}), first=True) is None and vace.mode == "control+inpaint"
    assert vace.prepare(_chunk({"context_scale": 0.7}), first=True)[EXTRAS_KEY].scale == 0.7
    injector.branch.zero_projections()
    assert vace.prepare(_chunk({"context_scale": 0.7}), first=True) is None


def test_controller_resets_its_streams_when_it_becomes_active_again():
    model = _model()
    injector = attach_vace(model, _branch(model))
    vace = VaceController(injector, make_autoencoder("tae", None, "tiny"), lambda v: v, W, H)
    on, off = {"context_scale": 0.7}, {"context_scale": 0.0}
    first = vace.prepare(_chunk(on, 0), first=True)[EXTRAS_KEY].context
    second = vace.prepare(_chunk(on, 1), first=False)[EXTRAS_KEY].context
    assert not torch.equal(first, second) and vace.encoder.mask_stream.position == 21  # streaming on
    assert vace.prepare(_chunk(off, 2), first=False) is None and not vace.active
    again = vace.prepare(_chunk(on, 0), first=False)[EXTRAS_KEY].context
    # inactive -> active starts fresh streams: the same chunk gives the very same context
    torch.testing.assert_close(again, first, atol=0, rtol=0)
    assert vace.encoder.mask_stream.position == 9 and vace.active


def test_reference_latents_are_encoded_once_per_image(tmp_path):
    for name, seed in (("r1.png", 1), ("r2.png", 2)):
        _image(tmp_path / name, seed=seed)
    model = _model()
    injector = attach_vace(model, _branch(model))
    vae = make_autoencoder("tae", None, "tiny")
    vace = VaceController(injector, vae, lambda v: tmp_path / v, W, H)
    calls = []
    encode_image = vae.encode_image
    vae.encode_image = lambda image: (calls.append(image.clone()), encode_image(image))[1]
    snapshot = {"context_scale": 1.0, "reference_1": "r1.png"}
    refs = [vace.prepare(_chunk(snapshot, i), first=i == 0)[EXTRAS_KEY].references for i in range(3)]
    assert len(calls) == 1  # three chunks, one encode
    for r in refs[1:]:
        torch.testing.assert_close(r, refs[0], atol=0, rtol=0)
    want = encode_image(calls[0])  # the cached latent is what encode_image gives for that image
    torch.testing.assert_close(refs[0][:, :16], want, atol=0, rtol=0)
    expected = torch.from_numpy(vace.slots["reference_1"].image).permute(2, 0, 1)[:, None] / 127.5 - 1.0
    torch.testing.assert_close(calls[0][0].float(), expected, atol=1e-6, rtol=0)  # of the slot's image
    changed = vace.prepare(_chunk({**snapshot, "reference_1": "r2.png"}, 3), first=False)[EXTRAS_KEY].references
    assert len(calls) == 2 and not torch.equal(changed, refs[0])  # a new image is encoded anew
    vace.prepare(_chunk({**snapshot, "reference_1": "r2.png"}, 4), first=False)
    assert len(calls) == 2


def test_graft_is_strict_and_names_keys(tmp_path):
    model = _model()
    source = _branch(model, seed=4)
    sd = {k: v.clone() for k, v in source.state_dict().items()}
    sd["blocks.0.self_attn.q.weight"] = torch.zeros(1)  # base keys in the VACE file are ignored
    target = _branch(model, nonzero=False)
    save_file(sd, str(tmp_path / "vace.safetensors"))
    graft_vace(target, tmp_path / "vace.safetensors")
    for k, v in source.state_dict().items():
        torch.testing.assert_close(target.state_dict()[k], v, atol=0, rtol=0)
    missing = {k: v for k, v in sd.items() if k != "vace_blocks.0.after_proj.bias"}
    with pytest.raises(VaceGraftError, match=r"missing key: vace_blocks\.0\.after_proj\.bias"):
        graft_vace(target, missing)
    with pytest.raises(VaceGraftError, match=r"unexpected key: vace_blocks\.1\.after_proj\.weight"):
        graft_vace(target, {**sd, "vace_blocks.1.after_proj.weight": torch.zeros(8, 8)})
    with pytest.raises(VaceGraftError, match=r"shape mismatch: vace_patch_embedding\.weight"):
        graft_vace(target, {**sd, "vace_patch_embedding.weight": torch.zeros(64, 16, 1, 2, 2)})


def _store(tmp_path) -> ParamStore:
    store = ParamStore()
    (tmp_path / "media").mkdir()
    for key, value in {"width": 64, "height": 64, "device": "cpu", "vae": "tae",
                       "prompt_cache": str(tmp_path / "pc"), "media_dir": str(tmp_path / "media")}.items():
        store.set(key, value, live=False)
    return store


def test_pipeline_end_to_end_with_control_mask_refs(tmp_path):
    store = _store(tmp_path)
    _image(tmp_path / "media" / "ref.png")
    pipe = build_generator(store, None, "cpu")
    injector = pipe.vace.injector
    assert injector.branch.is_zero()  # no VACE weights: zero projections
    _randomize(injector.branch)
    store.set("reference_1", "ref.png")
    store.set("reference_2", "ref.png")
    outs = [pipe.generate(_chunk(store.snapshot(), i, size=(64, 64))) for i in range(2)]
    assert [o.shape for o in outs] == [(9, 64, 64, 3), (12, 64, 64, 3)] and outs[0].dtype == np.uint8
    assert pipe.mode == "r2v+control+inpaint" and pipe.vace.active and not pipe.vace.errors
    store.set("reference_2", "")  # live change: one reference less, same frame count
    (tmp_path / "media" / "ref.png").unlink()
    pipe.vace.slots["reference_1"].value = "stale"  # force a reload attempt of the removed file
    assert pipe.generate(_chunk(store.snapshot(), 9, size=(64, 64))).shape == (12, 64, 64, 3)
    assert pipe.mode == "r2v+control+inpaint" and "reference_1" in pipe.vace.errors[0]
    assert injector.kv_cache.frames_written == 9
    pipe.reset()
    assert injector.kv_cache.frames_written == 0 and pipe.vace.encoder.inactive_cache.position == 0
    assert pipe.generate(_chunk(store.snapshot(), 2, size=(64, 64))).shape == (9, 64, 64, 3)


def test_pipeline_with_vace_disabled_equals_the_unwrapped_one(tmp_path):
    store = _store(tmp_path)
    pipe = build_generator(store, None, "cpu")  # zero VACE weights
    snapshot = store.snapshot()
    chunks = [_chunk(snapshot, i, size=(64, 64)) for i in range(2)]
    wrapped = [pipe.generate(c) for c in chunks]
    assert pipe.mode == "control+inpaint (inactive)" and not pipe.vace.active
    pipe.reset()
    pipe.causal.chunk_index = 0  # replay the same noise
    pipe.vace.injector.detach()
    pipe.vace = None
    for c, want in zip(chunks, wrapped):
        np.testing.assert_array_equal(pipe.generate(c), want)
    assert pipe.mode == "t2v"
    store.set("context_scale", 0.0)
    pipe2 = build_generator(store, None, "cpu")
    _randomize(pipe2.vace.injector.branch)
    for c, want in zip(chunks, wrapped):
        np.testing.assert_array_equal(pipe2.generate(replace(c, snapshot=store.snapshot())), want)
