"""Pixel-format functions of the bridges, including the Spout/Syphon/NDI ones that run everywhere."""

from __future__ import annotations

import numpy as np
import pytest

from vacelive.bridges.convert import (
    bgra_to_rgb,
    flip_vertical,
    rgb_to_bgra,
    rgb_to_rgba,
    rgb_to_uyvy,
    rgba_to_rgb,
    to_rgb,
    unpad_rows,
    uyvy_to_rgb,
)
from vacelive.bridges.testpattern import TestPattern

RNG = np.random.default_rng(0)


def _image(h: int = 6, w: int = 8) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_rgba_bgra_round_trips():
    rgb = _image()
    assert np.array_equal(rgba_to_rgb(rgb_to_rgba(rgb)), rgb)
    bgra = rgb_to_bgra(rgb)
    assert np.array_equal(bgra[:, :, 0], rgb[:, :, 2]) and np.all(bgra[:, :, 3] == 255)
    assert np.array_equal(bgra_to_rgb(bgra), rgb)
    out = np.zeros((6, 8, 4), np.uint8)
    assert rgb_to_rgba(rgb, out=out, alpha=7) is out and np.all(out[:, :, 3] == 7)


def test_unpad_rows_skips_row_padding_without_copying():
    h, w, stride = 5, 7, 7 * 4 + 12
    padded = np.full(h * stride, 99, np.uint8)
    rows = padded.reshape(h, stride)
    image = RNG.integers(0, 256, (h, w, 4), dtype=np.uint8)
    rows[:, : w * 4] = image.reshape(h, -1)
    view = unpad_rows(padded, w, h, 4, stride)
    assert np.array_equal(view, image)
    assert np.shares_memory(view, padded)
    with pytest.raises(ValueError):
        unpad_rows(padded[:-50], w, h, 4, stride)


@pytest.mark.parametrize("layout", ["RGBA", "RGBX", "BGRA", "BGRX", "RGB", "BGR"])
@pytest.mark.parametrize("padding", [0, 16])
@pytest.mark.parametrize("flip", [False, True])
def test_to_rgb_layouts_strides_and_flip(layout, padding, flip):
    rgb = _image(5, 6)
    channels = len(layout)
    order = [("RGB".index(c) if c in "RGB" else None) for c in layout]
    pixels = np.empty((5, 6, channels), np.uint8)
    for i, source in enumerate(order):
        pixels[:, :, i] = 255 if source is None else rgb[:, :, source]
    stored = pixels[::-1] if flip else pixels  # a bottom-up (OpenGL) buffer when flipped
    stride = 6 * channels + padding
    buffer = np.zeros((5, stride), np.uint8)
    buffer[:, : 6 * channels] = stored.reshape(5, -1)
    out = to_rgb(buffer.reshape(-1), 6, 5, layout, stride=stride, flip=flip)
    assert out.flags.c_contiguous and out.shape == (5, 6, 3)
    assert np.array_equal(out, rgb)


def test_to_rgb_rejects_unknown_layouts():
    with pytest.raises(ValueError, match="unsupported"):
        to_rgb(np.zeros(16, np.uint8), 2, 2, "ARGB")


def test_flip_vertical_is_a_view():
    rgb = _image()
    flipped = flip_vertical(rgb)
    assert np.shares_memory(flipped, rgb) and np.array_equal(flipped[0], rgb[-1])


@pytest.mark.parametrize("matrix", ["bt709", "bt601"])
def test_uyvy_round_trip_on_smooth_content(matrix):
    frame = TestPattern(64, 48).render(3)
    packed = rgb_to_uyvy(frame, matrix)
    assert packed.shape == (48, 64, 2)
    back = uyvy_to_rgb(packed.reshape(-1), 64, 48, matrix=matrix)
    # 4:2:2 halves chroma: shape edges blur, flat areas come back within rounding.
    assert np.abs(back.astype(int) - frame).mean() < 3.0


def test_uyvy_known_values_and_stride():
    # Limited-range BT.709: Y=235, Cb=Cr=128 is white; Y=16 is black; padded rows are skipped.
    w, h, stride = 4, 2, 4 * 2 + 8
    buffer = np.zeros((h, stride), np.uint8)
    buffer[0, :8] = [128, 235] * 4
    buffer[1, :8] = [128, 16] * 4
    rgb = uyvy_to_rgb(buffer.reshape(-1), w, h, stride=stride)
    assert np.all(rgb[0] == 255) and np.all(rgb[1] == 0)
    with pytest.raises(ValueError, match="matrix"):
        uyvy_to_rgb(buffer.reshape(-1), w, h, stride=stride, matrix="bt2020")


def test_spout_receive_layout_follows_the_dxgi_format():
    from vacelive.bridges.spout import GL_BGRA_EXT, GL_RGBA, receive_layout

    assert receive_layout(87) == (GL_BGRA_EXT, "BGRA")  # DXGI_FORMAT_B8G8R8A8_UNORM (TouchDesigner)
    assert receive_layout(28) == (GL_RGBA, "RGBA")  # DXGI_FORMAT_R8G8B8A8_UNORM


def test_syphon_texture_layout():
    from vacelive.bridges import BridgeError
    from vacelive.bridges.syphon import texture_layout

    assert texture_layout(80) == "BGRA" and texture_layout(70) == "RGBA"
    with pytest.raises(BridgeError):
        texture_layout(115)  # RGBA16Float


def test_ndi_fourcc_and_name_matching():
    from vacelive.bridges.ndi import layout_of, matches

    assert layout_of(int.from_bytes(b"UYVY", "little")) == "UYVY"
    assert layout_of(int.from_bytes(b"BGRA", "little")) == "BGRA"
    assert layout_of(int.from_bytes(b"NV12", "little")) is None
    assert matches("STUDIO-PC (TD-out)", "TD-out")
    assert matches("STUDIO-PC (TD-out)", "STUDIO-PC (TD-out)")
    assert not matches("STUDIO-PC (TD-out-2)", "TD-out")
