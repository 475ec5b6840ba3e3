"""Tests of the Depth Anything V2 network (tiny random config) and the depth annotator."""

from __future__ import annotations

import dataclasses
import numpy as np
import pytest
import torch
from torch import nn

from vacelive.annotators import make_annotator
from vacelive.annotators.depth import DepthAnnotator, DepthRange, network_size
from vacelive.annotators.depth_model import TINY, VITS, DepthAnythingV2, load_depth_anything


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> tuple[DepthAnythingV2, object]:
    torch.manual_seed(0)
    model = DepthAnythingV2(TINY).eval()
    path = tmp_path_factory.mktemp("weights") / "tiny.pth"
    torch.save(model.state_dict(), path)
    return model, path


def test_vits_has_the_official_layout() -> None:
    model = DepthAnythingV2(VITS)
    keys = model.state_dict().keys()
    n_params = sum(p.numel() for p in model.parameters())
    assert 24.5e6 < n_params < 25.1e6
    for key in (
        "pretrained.cls_token", "pretrained.pos_embed", "pretrained.mask_token",
        "pretrained.patch_embed.proj.weight", "pretrained.blocks.11.attn.qkv.weight",
        "pretrained.blocks.0.ls1.gamma", "pretrained.blocks.0.ls2.gamma",
        "pretrained.blocks.3.mlp.fc2.bias", "pretrained.norm.weight",
        "depth_head.projects.3.weight", "depth_head.resize_layers.0.weight",
        "depth_head.resize_layers.3.weight", "depth_head.scratch.layer4_rn.weight",
        "depth_head.scratch.refinenet4.resConfUnit1.conv1.weight",
        "depth_head.scratch.refinenet1.out_conv.bias", "depth_head.scratch.output_conv1.weight",
        "depth_head.scratch.output_conv2.2.weight",
    ):
        assert key in keys, key
    assert model.state_dict()["pretrained.pos_embed"].shape == (1, 37 * 37 + 1, 384)


def test_strict_load_round_trip(tiny_checkpoint) -> None:
    model, path = tiny_checkpoint
    loaded = load_depth_anything(path, TINY)
    x = torch.randn(1, 3, 56, 84)
    with torch.no_grad():
        expected, got = model(x), loaded(x)
    assert got.shape == (1, 56, 84)
    torch.testing.assert_close(got, expected)
    assert (got >= 0).all()


def test_renamed_key_is_reported_by_name(tiny_checkpoint, tmp_path) -> None:
    _, path = tiny_checkpoint
    state = torch.load(path, weights_only=True)
    old, new = "pretrained.blocks.1.attn.qkv.weight", "pretrained.blocks.1.attn.qkv_renamed.weight"
    state[new] = state.pop(old)
    bad = tmp_path / "bad.pth"
    torch.save(state, bad)
    with pytest.raises(ValueError) as err:
        load_depth_anything(bad, TINY)
    assert "missing keys: pretrained.blocks.1.attn.qkv.weight" in str(err.value)
    assert "unexpected keys: pretrained.blocks.1.attn.qkv_renamed.weight" in str(err.value)


def test_wrong_size_checkpoint_is_reported(tiny_checkpoint) -> None:
    _, path = tiny_checkpoint
    wider = dataclasses.replace(TINY, embed_dim=64)
    with pytest.raises(ValueError) as err:
        load_depth_anything(path, wider)
    message = str(err.value)
    first = "depth_head.projects.0.weight (8, 32, 1, 1) != (8, 64, 1, 1)"
    assert f"shape mismatches: {first}" in message
    assert "more)" in message and len(message) < 1200


def test_missing_file_is_named(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing.pth"):
        load_depth_anything(tmp_path / "nothing.pth", TINY)


def test_make_annotator_loads_real_layout_strictly(tiny_checkpoint, tmp_path) -> None:
    _, path = tiny_checkpoint  # a tiny file under the real name does not fit ViT-S
    real_name = tmp_path / "depth_anything_v2_vits.pth"
    real_name.write_bytes(path.read_bytes())
    with pytest.raises(ValueError, match="shape mismatches"):
        make_annotator("depth", weights=tmp_path)


def test_network_size_matches_reference() -> None:
    assert network_size(480, 832, 518) == (518, 896)
    assert network_size(518, 518, 518) == (518, 518)
    h, w = network_size(60, 100, 70)
    assert h % 14 == 0 and w % 14 == 0 and min(h, w) >= 70


def test_depth_annotator_output(tiny_checkpoint) -> None:
    model, _ = tiny_checkpoint
    annotator = DepthAnnotator(model, input_size=70)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (3, 60, 100, 3), dtype=np.uint8)
    out = annotator(frames, {})
    assert out.shape == frames.shape and out.dtype == np.uint8
    assert out.flags.c_contiguous and out.flags.writeable
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    assert out[0].max() > 200 and out[0].min() < 50  # the first frame sets the range
    with pytest.raises(ValueError, match="multiple of 14"):
        DepthAnnotator(model, input_size=100)


class BrightnessDepth(nn.Module):
    """A stand-in network: brighter = nearer, so the test controls the depth exactly."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=1) + 10.0


def flickering_frames(n: int = 8) -> np.ndarray:
    ramp = np.linspace(60, 160, 112, dtype=np.float32)
    frames = np.repeat(np.tile(ramp, (56, 1))[None, :, :, None], 3, axis=3).repeat(n, axis=0)
    frames[1::2, :8, :8] = 255  # something near pops in and out every other frame
    return frames.astype(np.uint8)


def mean_jump(out: np.ndarray) -> float:
    region = out[:, 20:, 20:, 0].astype(np.float32)  # away from the popping object
    return float(np.abs(np.diff(region, axis=0)).mean())


def test_near_is_bright() -> None:
    out = DepthAnnotator(BrightnessDepth(), input_size=56)(flickering_frames(1), {})
    assert out[0, 28, -5, 0] > out[0, 28, 5, 0]


def test_range_smoothing_reduces_flicker() -> None:
    frames = flickering_frames()
    raw = DepthAnnotator(BrightnessDepth(), input_size=56)(frames, {"depth_smoothing": 0.0})
    smooth = DepthAnnotator(BrightnessDepth(), input_size=56)(frames, {"depth_smoothing": 0.9})
    assert mean_jump(smooth) < 0.3 * mean_jump(raw)
    # the state is carried across calls: frame by frame equals the whole chunk
    annotator = DepthAnnotator(BrightnessDepth(), input_size=56)
    parts = [annotator(f[None], {"depth_smoothing": 0.9}) for f in frames]
    np.testing.assert_array_equal(np.concatenate(parts), smooth)
    annotator.reset()
    assert annotator.range.lo is None


def test_depth_range() -> None:
    r = DepthRange()
    assert r.update(0.0, 10.0, 0.8) == (0.0, 10.0)
    lo, hi = r.update(5.0, 20.0, 0.8)
    assert lo == pytest.approx(1.0) and hi == pytest.approx(12.0)
