"""The tiny model's trainer: its pieces, and a few-step run whose folder the engine loads strictly."""

from __future__ import annotations

import json
import math

import numpy as np
import torch
import torch.nn.functional as F

from vacelive.engine.app import build_store
from vacelive.engine.pipeline import build_generator
from vacelive.engine.tiny.shapes import PALETTE, ClipSpec, box_mask
from vacelive.engine.tiny.train import (
    TrainSettings,
    ae_batch,
    chroma,
    colour_path_init,
    edge_weights,
    encode_clip,
    motion_loss,
    shape_cover,
    shape_weights,
    train,
    weighted_mse,
)
from vacelive.engine.vace.context import VaceContextEncoder
from vacelive.engine.vae.taew import TAEW, TAEW_CONFIGS, _apply
from vacelive.engine.weights import WeightsManifest


def test_clips_are_reproducible_and_their_masks_match_the_frames():
    a, b = (ClipSpec.draw(np.random.default_rng(5)) for _ in range(2))
    assert a == b and np.array_equal(a.frames(3, 4), b.frames(3, 4))
    frames, inside = a.frames(0, 2), a.masks(0, 2)
    colour = np.array(PALETTE[a.colour])
    assert np.abs(frames[inside].astype(int) - colour).max(axis=1).mean() < 30  # shape pixels have its colour
    assert a.prompt == f"{a.colour} shapes"
    mask = box_mask(np.random.default_rng(0), 3, 64, 32)
    assert mask.shape == (3, 32, 64) and 0 < mask.mean() < 1 and (mask[0] == mask[2]).all()


def test_a_reference_is_a_close_up_of_the_first_shape_in_the_clip_colour():
    spec = ClipSpec.draw(np.random.default_rng(3))
    still = spec.reference()
    coloured = np.abs(still.astype(int) - PALETTE[spec.colour]).max(axis=2) < 30
    assert 0.2 < coloured.mean() < 0.6  # the shape fills much of it, whatever its size in the clip
    assert ((still == 128).all(axis=2) | coloured).mean() > 0.97  # on mid grey (antialiased edges aside)


def test_edge_weights_single_out_lines_and_edges():
    x = torch.zeros(1, 1, 3, 8, 8)
    x[..., 4] = 1.0  # a vertical white line
    w = edge_weights(x, 10.0)
    assert w.shape == (1, 1, 1, 8, 8)
    assert w[..., 0].max() == 1 and w[..., 3].min() == 11 and w[..., 4].min() == 11  # either side of the line
    assert torch.equal(edge_weights(x, 0.0), torch.ones_like(w))


def test_shape_cover_is_where_the_shapes_are_per_latent_cell():
    spec = ClipSpec.draw(np.random.default_rng(5))
    cover = shape_cover(spec, 8)
    assert cover.shape == (1, 2, spec.height // 8, spec.width // 8)
    masks = spec.masks(0, 8)
    assert torch.isclose(cover.mean(), torch.tensor(masks.mean(), dtype=torch.float32), atol=1e-6)
    y, x = (int(v) // 8 for v in np.argwhere(masks[:4].all(0))[0])  # a pixel inside a shape all 4 frames
    assert cover[0, 0, y, x] > 0
    assert ((cover == 0) == ~masks.reshape(2, 4, cover.shape[2], 8, cover.shape[3], 8).any((1, 3, 5))).all()


def test_shape_weights_count_shapes_and_their_rim_and_keep_the_mse_scale():
    cover = torch.zeros(1, 1, 1, 6, 6)
    cover[..., 2, 2] = 0.5
    w = shape_weights(cover, 4.0)
    assert w[..., 2, 2] == 3 and w[..., 1, 3] == 3 and w[..., 4, 4] == 1  # the shape, its rim, away
    target = torch.randn(1, 16, 1, 6, 6)
    assert torch.isclose(weighted_mse(target + 0.3, target, w), torch.tensor(0.09))  # an even error: plain MSE
    off_shape = target.clone()
    off_shape[..., 5, 5] += 1
    on_shape = target.clone()
    on_shape[..., 2, 2] += 1
    assert weighted_mse(on_shape, target, w) == 3 * weighted_mse(off_shape, target, w)


def test_motion_loss_sees_frames_that_stand_still_while_the_input_moves():
    x = torch.rand(2, 8, 3, 6, 6).cumsum(1) / 8  # every pixel changes from frame to frame
    assert motion_loss(x + 0.25, x) < 1e-12  # the same motion at another level (float rounding)
    held = x[:, ::4].repeat_interleave(4, dim=1)  # each latent frame's first frame, 4 times
    assert motion_loss(held, x) > 1e-3


def test_a_reused_encoder_encodes_a_clip_exactly_as_a_fresh_one():
    torch.manual_seed(0)
    vae = TAEW(TAEW_CONFIGS["tiny"]).eval()
    rng = np.random.default_rng(4)
    first, second = ClipSpec.draw(rng, 64, 48), ClipSpec.draw(rng, 64, 48)
    reused = VaceContextEncoder(vae)
    with torch.no_grad():
        encode_clip(reused, first, "edge", None)  # its zero-stream memo is filled by another clip
        masked = box_mask(rng, 24, 64, 48)
        for mask in (None, masked):
            fresh = encode_clip(VaceContextEncoder(vae), second, "edge", mask)
            again = encode_clip(reused, second, "edge", mask)
            assert reused.zero_memo.fixed and all(torch.equal(a, b) for a, b in zip(fresh, again))


def test_colour_path_init_is_a_colour_true_autoencoder_before_any_training():
    torch.manual_seed(0)
    model = TAEW(TAEW_CONFIGS["tiny"])
    colour_path_init(model)
    x = ae_batch(np.random.default_rng(1), TrainSettings(ae_crop=96, ae_frames=12))
    with torch.no_grad():
        y = _apply(model.decoder, _apply(model.encoder, x, {}), {}).clamp(0, 1)
    assert -10 * math.log10(F.mse_loss(y, x).item()) > 20
    assert (chroma(y) - chroma(x)).abs().mean() < 0.3 * chroma(x).abs().mean()


def test_a_few_step_run_writes_a_folder_the_engine_loads(tmp_path):
    settings = TrainSettings(ae_steps=2, pool_clips=3, dit_steps=3, chain_steps=2, checkpoint_every=2)
    figures = train(settings, tmp_path / "w")
    saved = json.loads((tmp_path / "w" / "training.json").read_text())
    assert saved["settings"]["dit_steps"] == 3 and saved["settings"]["chain_steps"] == 2
    assert saved["figures"] == figures and figures["chain_seconds"] >= 0
    store = build_store(overrides={"device": "cpu", "weights_dir": str(tmp_path / "w")})
    pipeline = build_generator(store, WeightsManifest.open(tmp_path / "w"), "cpu")
    assert not pipeline.vace.injector.branch.is_zero()
