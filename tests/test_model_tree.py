"""The module tree: official Wan2.1 parameter names and shapes, built on the meta device."""

import dataclasses

import pytest
import torch

from vacelive.engine.model import CONFIGS, WanModel
from vacelive.engine.model.loading import expected_shapes


def _official_1_3b() -> dict[str, tuple[int, ...]]:
    """Names and shapes written out by hand from DESIGN.md (dim 1536, ffn 8960, 30 layers)."""
    d, f, t = 1536, 8960, 4096
    top = {
        "patch_embedding.weight": (d, 16, 1, 2, 2),
        "patch_embedding.bias": (d,),
        "text_embedding.0.weight": (d, t),
        "text_embedding.0.bias": (d,),
        "text_embedding.2.weight": (d, d),
        "text_embedding.2.bias": (d,),
        "time_embedding.0.weight": (d, 256),
        "time_embedding.0.bias": (d,),
        "time_embedding.2.weight": (d, d),
        "time_embedding.2.bias": (d,),
        "time_projection.1.weight": (9216, d),
        "time_projection.1.bias": (9216,),
        "head.head.weight": (64, d),
        "head.head.bias": (64,),
        "head.modulation": (1, 2, d),
    }
    block = {"modulation": (1, 6, d), "norm3.weight": (d,), "norm3.bias": (d,)}
    for attn in ("self_attn", "cross_attn"):
        for proj in "qkvo":
            block[f"{attn}.{proj}.weight"] = (d, d)
            block[f"{attn}.{proj}.bias"] = (d,)
        block[f"{attn}.norm_q.weight"] = (d,)
        block[f"{attn}.norm_k.weight"] = (d,)
    block.update({"ffn.0.weight": (f, d), "ffn.0.bias": (f,), "ffn.2.weight": (d, f), "ffn.2.bias": (d,)})
    for i in range(30):
        top.update({f"blocks.{i}.{k}": s for k, s in block.items()})
    return top


def test_1_3b_meta_tree_matches_official_names_and_shapes():
    got = expected_shapes(CONFIGS["1.3B"])
    want = _official_1_3b()
    assert sorted(set(want) - set(got)) == []
    assert sorted(set(got) - set(want)) == []
    assert {k: got[k] for k in want} == want
    assert len(got) == 825


def test_1_3b_parameter_count_is_about_1_3_billion():
    with torch.device("meta"):
        model = WanModel(CONFIGS["1.3B"])
    n = sum(p.numel() for p in model.parameters())
    assert 1.2e9 < n < 1.5e9


def test_14b_has_40_blocks_of_dim_5120():
    got = expected_shapes(CONFIGS["14B"])
    blocks = {int(k.split(".")[1]) for k in got if k.startswith("blocks.")}
    assert blocks == set(range(40))
    assert got["patch_embedding.weight"] == (5120, 16, 1, 2, 2)
    assert got["blocks.39.self_attn.q.weight"] == (5120, 5120)
    assert got["blocks.39.ffn.0.weight"] == (13824, 5120)
    assert got["time_projection.1.weight"] == (6 * 5120, 5120)
    assert got["blocks.0.modulation"] == (1, 6, 5120)


def test_tiny_config_is_the_agreed_one():
    c = CONFIGS["tiny"]
    assert (c.dim, c.ffn_dim, c.num_heads, c.num_layers) == (128, 256, 2, 2)
    # wider than a patch token (16 channels x 2 x 2 = 64): predicting the flow means carrying the
    # input's noise through the blocks, which a 64-wide residual stream cannot do beside anything else
    assert c.dim > c.in_dim * c.patch_size[1] * c.patch_size[2]
    assert (c.freq_dim, c.text_dim, c.text_len) == (32, 32, 16)
    assert (c.patch_size, c.in_dim, c.out_dim, c.eps) == ((1, 2, 2), 16, 16, 1e-6)
    assert (c.frames_per_chunk, c.sink_frames) == (3, 3)


def test_config_is_frozen_and_validated():
    c = CONFIGS["1.3B"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.dim = 3  # type: ignore[misc]
    assert c.dim == 1536
    with pytest.raises(ValueError, match="dim 100 is not divisible by num_heads 3"):
        type(c)(dim=100, ffn_dim=10, num_heads=3, num_layers=1)
    with pytest.raises(ValueError, match="head_dim 5 must be even"):
        type(c)(dim=10, ffn_dim=10, num_heads=2, num_layers=1)
    with pytest.raises(ValueError, match="local_attn_frames 4 must hold the sinks"):
        dataclasses.replace(CONFIGS["tiny"], local_attn_frames=4)
