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
    structure_loss,
    train,
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


def test_structure_loss_adds_the_error_of_neighbour_differences_only():
    target = torch.randn(2, 16, 3, 6, 10)
    offset = target + 0.5  # the same structure, another level: only the plain MSE sees it
    assert torch.isclose(structure_loss(offset, target, 2.0), F.mse_loss(offset, target))
    noisy = target + 0.5 * torch.randn_like(target)
    assert structure_loss(noisy, target, 2.0) > structure_loss(noisy, target, 0.0) == F.mse_loss(noisy, target)


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
