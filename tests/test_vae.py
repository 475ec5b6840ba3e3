"""Streaming VAE tests on the tiny configs (Wan2.1 VAE and TAEW2.1)."""

from pathlib import Path

import pytest
import torch

from vacelive.engine.model.loading import check_shapes, read_shapes
from vacelive.engine.vae import (
    TAEW,
    TAEW_CONFIGS,
    VideoAutoencoder,
    WanVAE,
    denormalize_latents,
    fit_taew_checkpoint,
    make_autoencoder,
)

H = W = 16
KINDS = ["wan", "tae"]


def _model(kind: str, seed: int = 0):
    model = make_autoencoder(kind, None, "tiny", seed=seed)
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        for p in model.parameters():  # wake up zero-initialised layers (attention proj)
            p.add_(torch.randn_like(p) * 0.05)
    return model


@pytest.fixture(scope="module", params=KINDS)
def model(request):
    return _model(request.param)


def _frames(t: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, t, H, W, generator=g) * 2 - 1


def _latents(t: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, 16, t, H // 8, W // 8, generator=g)


def test_interface(model):
    assert isinstance(model, VideoAutoencoder)
    latents = model.encode(_frames(12, 3), model.new_cache())
    assert latents.shape == (1, model.z_dim, 3, H // 8, W // 8) and model.z_dim == 16  # the DiT's in_dim


def test_encode_chunks_give_three_latents_and_match_whole_clip(model):
    x = _frames(24, 0)
    cache = model.new_cache()
    chunks = [model.encode(x[:, :, i:i + 12], cache) for i in range(0, 24, 12)]
    assert [c.shape for c in chunks] == [(1, 16, 3, H // 8, W // 8)] * 2
    streamed = torch.cat(chunks, 2)
    if isinstance(model, WanVAE):  # 3-frame lag: 6 latents cover frames 0..20 = 1 + 4*5
        whole = model.encode(x[:, :, :21], model.new_cache())
    else:  # TAEW: groups of 4 from the stream start, no lag
        whole = model.encode(x, model.new_cache())
    assert whole.shape[2] == 6
    torch.testing.assert_close(streamed, whole, rtol=1e-4, atol=1e-5)


def test_wan_encode_matches_official_schedule():
    """Frame 0 alone then groups of 4 (as wan/modules/vae.py does) == one call."""
    model = _model("wan")
    x = _frames(13, 1)
    cache = model.new_cache()
    parts = [model.encode(x[:, :, :1], cache)] + [model.encode(x[:, :, 1 + 4 * i:5 + 4 * i], cache) for i in range(3)]
    torch.testing.assert_close(torch.cat(parts, 2), model.encode(x, model.new_cache()), rtol=1e-4, atol=1e-5)


def test_decode_chunks_shapes_and_match_whole(model):
    z = _latents(6, 2)
    cache = model.new_cache()
    chunks = [model.decode(z[:, :, i:i + 3], cache) for i in range(0, 6, 3)]
    assert [c.shape[2] for c in chunks] == [9, 12]
    assert chunks[0].shape == (1, 3, 9, H, W)
    streamed = torch.cat(chunks, 2)
    torch.testing.assert_close(streamed, model.decode(z, model.new_cache()), rtol=1e-4, atol=1e-5)
    per_latent_cache = model.new_cache()
    per_latent = torch.cat([model.decode(z[:, :, i:i + 1], per_latent_cache) for i in range(6)], 2)
    torch.testing.assert_close(streamed, per_latent, rtol=1e-4, atol=1e-5)
    assert streamed.abs().max() <= 1.0


def test_interleaved_streams_do_not_contaminate(model):
    xa, xb = _frames(24, 3), _frames(24, 4)
    alone_a = [model.encode(xa[:, :, i:i + 12], c) for c in [model.new_cache()] for i in (0, 12)]
    alone_b = [model.encode(xb[:, :, i:i + 12], c) for c in [model.new_cache()] for i in (0, 12)]
    ca, cb = model.new_cache(), model.new_cache()
    mixed_a, mixed_b = [], []
    for i in (0, 12):
        mixed_a.append(model.encode(xa[:, :, i:i + 12], ca))
        mixed_b.append(model.encode(xb[:, :, i:i + 12], cb))
    for got, want in zip(mixed_a + mixed_b, alone_a + alone_b):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    za, zb = _latents(6, 5), _latents(6, 6)
    da = model.decode(za, model.new_cache())
    ca, cb = model.new_cache(), model.new_cache()
    got = []
    for i in (0, 3):
        got.append(model.decode(za[:, :, i:i + 3], ca))
        model.decode(zb[:, :, i:i + 3], cb)
    torch.testing.assert_close(torch.cat(got, 2), da, rtol=1e-4, atol=1e-5)


def test_reset_starts_a_new_stream(model):
    z = _latents(3, 7)
    cache = model.new_cache()
    first = model.decode(z, cache)
    assert model.decode(z, cache).shape[2] == 12
    cache.reset()
    assert cache.position == 0
    torch.testing.assert_close(model.decode(z, cache), first, rtol=0, atol=0)


def test_cache_serves_one_direction(model):
    cache = model.new_cache()
    model.decode(_latents(3, 8), cache)
    with pytest.raises(ValueError, match="decode stream"):
        model.encode(_frames(12, 8), cache)


def test_encode_image_is_the_first_latent_of_a_still_stream_of_that_image(model):
    image = _frames(1, 9)
    z = model.encode_image(image)
    assert z.shape == (1, 16, 1, H // 8, W // 8)
    still = model.encode(image.expand(-1, -1, 12, -1, -1), model.new_cache())  # a still clip of it
    assert torch.allclose(z, still[:, :, :1], atol=1e-5)  # Wan: frame 0 alone; TAEW: 4 copies of it
    assert not torch.allclose(z, model.encode_image(_frames(1, 10)), atol=1e-3)  # and it depends on the image


@pytest.mark.parametrize("kind", KINDS)
def test_strict_load_of_saved_tiny_checkpoint(kind, tmp_path):
    model = _model(kind, seed=3)
    path = tmp_path / f"{kind}.pth"
    torch.save(model.state_dict(), path)
    loaded = make_autoencoder(kind, path, "tiny")
    z = _latents(3, 10)
    torch.testing.assert_close(loaded.decode(z, loaded.new_cache()), model.decode(z, model.new_cache()))
    state = model.state_dict()
    old = next(iter(state))
    state["renamed." + old] = state.pop(old)
    torch.save(state, path)
    with pytest.raises(KeyError) as err:
        make_autoencoder(kind, path, "tiny")
    assert old in str(err.value) and "renamed." + old in str(err.value)


def test_real_config_needs_weights(tmp_path):
    with pytest.raises(FileNotFoundError, match="Wan2.1_VAE.pth"):
        make_autoencoder("wan", None, "real")
    with pytest.raises(FileNotFoundError, match="taew2_1.pth"):
        make_autoencoder("tae", tmp_path, "real")


def test_real_wan_vae_official_key_names():
    with torch.device("meta"):
        keys = {k: tuple(v.shape) for k, v in WanVAE().state_dict().items()}
    assert keys["encoder.conv1.weight"] == (96, 3, 3, 3, 3)
    assert keys["conv1.weight"] == (32, 32, 1, 1, 1)
    assert keys["conv2.weight"] == (16, 16, 1, 1, 1)
    assert keys["decoder.head.2.weight"] == (3, 96, 3, 3, 3)
    assert keys["decoder.conv1.weight"] == (384, 16, 3, 3, 3)
    assert keys["encoder.head.2.weight"] == (32, 384, 3, 3, 3)
    assert keys["encoder.middle.1.to_qkv.weight"] == (1152, 384, 1, 1)
    assert keys["encoder.downsamples.0.residual.0.gamma"] == (96, 1, 1, 1)
    assert keys["encoder.downsamples.5.time_conv.weight"] == (192, 192, 3, 1, 1)
    assert keys["decoder.upsamples.3.time_conv.weight"] == (768, 384, 3, 1, 1)
    assert keys["decoder.upsamples.4.shortcut.weight"] == (384, 192, 1, 1, 1)
    assert len(keys) == 194


def test_real_taew_key_names():
    with torch.device("meta"):
        keys = {k: tuple(v.shape) for k, v in TAEW().state_dict().items()}
    assert keys["encoder.0.weight"] == (64, 3, 3, 3)
    assert keys["encoder.2.conv.weight"] == (64, 128, 1, 1)  # TPool stride 2
    assert keys["encoder.4.conv.0.weight"] == (64, 128, 3, 3)  # MemBlock
    assert keys["encoder.17.weight"] == (16, 64, 3, 3)
    assert keys["decoder.1.weight"] == (256, 16, 3, 3)
    assert keys["decoder.7.conv.weight"] == (256, 256, 1, 1)  # TGrow stride 1
    assert keys["decoder.13.conv.weight"] == (256, 128, 1, 1)  # TGrow stride 2
    assert keys["decoder.22.weight"] == (3, 64, 3, 3)


def test_wan_encode_any_chunking_matches_whole_clip():
    model = _model("wan")
    x = _frames(25, 11)
    cache = model.new_cache()
    sizes, out, start = [1, 5, 7, 12], [], 0
    for n in sizes:
        out.append(model.encode(x[:, :, start:start + n], cache))
        start += n
    assert [o.shape[2] for o in out] == [1, 1, 2, 3]
    torch.testing.assert_close(torch.cat(out, 2), model.encode(x, model.new_cache()), rtol=1e-4, atol=1e-5)


def test_taew_load_trims_wider_tgrow_like_taehv(tmp_path):
    model = _model("tae", seed=5)
    state = model.state_dict()
    w = state["decoder.7.conv.weight"]  # stride-1 TGrow: [16, 16, 1, 1] in the tiny config
    state["decoder.7.conv.weight"] = torch.cat([torch.zeros_like(w), w], 0)
    torch.save(state, tmp_path / "taew2_1.pth")
    loaded = make_autoencoder("tae", tmp_path, "tiny")
    torch.testing.assert_close(loaded.decoder[7].conv.weight, w)


def test_random_tiny_tae_decodes_to_visible_frames_not_black():
    """The weightless demo decoder is calibrated so its pictures have contrast (not clamped black)."""
    vae = make_autoencoder("tae", None, config="tiny")
    frames = vae.decode(torch.randn(1, 16, 3, 8, 12), vae.new_cache())
    assert frames.std() > 0.2
    assert (frames.abs() == 1).float().mean() < 0.05  # almost nothing clamped


# --- TAEW against taehv's own code --------------------------------------------------------------
# tests/fixtures/taew_reference/ was made by madebyollin/taehv's taehv.py (see its README.md there):
# tiny weights in the taew2_1.pth key layout (first TGrow saved twice as wide, as taehv trims it),
# latents [N, T, C, h, w] and the frames its decode_video gave, uint8 video and its encode_video.
TAEW_REFERENCE = Path(__file__).parent / "fixtures" / "taew_reference"


@pytest.fixture(scope="module")
def taew_reference():
    model = make_autoencoder("tae", TAEW_REFERENCE / "taew2_1_tiny.pth", "tiny")
    io = torch.load(TAEW_REFERENCE / "taehv_reference_io.pth", weights_only=True)
    return model, io


def test_taew_streamed_decode_matches_taehv_decode_video(taew_reference):
    """The DiT's latents go in as they are (no Wan mean/std); 3-latent chunks give 9 then 12
    frames, which together are decode_video's output (4 frames per latent, first 3 trimmed)."""
    model, io = taew_reference
    latents = io["latents"].transpose(1, 2)  # NTCHW -> [1, 16, 6, h, w]
    want = io["frames"].transpose(1, 2) * 2 - 1  # [0, 1] NTCHW -> [1, 3, 21, H, W] in [-1, 1]
    cache = model.new_cache()
    chunks = [model.decode(latents[:, :, i:i + 3], cache) for i in (0, 3)]
    assert [c.shape[2] for c in chunks] == [9, 12] and want.shape[2] == 21
    torch.testing.assert_close(torch.cat(chunks, 2), want, rtol=0, atol=2e-5)
    # the fixture tells the two semantics apart: Wan-denormalised latents decode elsewhere
    wrong = model.decode(denormalize_latents(latents), model.new_cache())
    assert (wrong - want).abs().max() > 0.1


def test_taew_streamed_encode_matches_taehv_encode_video(taew_reference):
    model, io = taew_reference
    frames = io["video_u8"].transpose(1, 2).float() / 255 * 2 - 1  # [1, 3, 24, H, W] in [-1, 1]
    cache = model.new_cache()
    chunks = [model.encode(frames[:, :, i:i + 12], cache) for i in (0, 12)]
    want = io["encoded"].transpose(1, 2)  # [1, 16, 6, h, w]
    torch.testing.assert_close(torch.cat(chunks, 2), want, rtol=1e-4, atol=1e-4)


def _meta_shapes(cfg) -> dict:
    with torch.device("meta"):
        return {k: tuple(v.shape) for k, v in TAEW(cfg).state_dict().items()}


def test_fit_taew_checkpoint_makes_weights_check_shapes_agree_with_the_loader():
    """A wider first TGrow is what the loader trims, so the shapes it leaves must match the model."""
    shapes = read_shapes(TAEW_REFERENCE / "taew2_1_tiny.pth")[0]
    assert shapes["decoder.7.conv.weight"] == (32, 16, 1, 1)
    expected = _meta_shapes(TAEW_CONFIGS["tiny"])
    assert check_shapes(expected, shapes) == [
        "shape mismatch: decoder.7.conv.weight is [32, 16, 1, 1], model wants [16, 16, 1, 1]"]
    assert check_shapes(expected, fit_taew_checkpoint(shapes, "tiny")) == []
    real = _meta_shapes(TAEW_CONFIGS["real"])
    wide = dict(real, **{"decoder.7.conv.weight": (512, 256, 1, 1)})
    assert fit_taew_checkpoint(wide) == real
    narrow = dict(real, **{"decoder.13.conv.weight": (128, 128, 1, 1)})  # too few rows: reported
    assert check_shapes(real, fit_taew_checkpoint(narrow)) == [
        "shape mismatch: decoder.13.conv.weight is [128, 128, 1, 1], model wants [256, 128, 1, 1]"]
