"""crop_to_fill and to_rgb directly: same size, centre crop, never padded, channels kept, bad shapes."""

import re

import numpy as np
import pytest

from vacelive.engine.frames import crop_to_fill, to_rgb


def test_a_frame_at_the_target_size_is_returned_as_it_is():
    frame = np.random.default_rng(0).integers(0, 256, (16, 32, 3), dtype=np.uint8)
    assert crop_to_fill(frame, 32, 16) is frame
    strided = np.random.default_rng(1).integers(0, 256, (16, 64, 3), dtype=np.uint8)[:, ::2]
    out = crop_to_fill(strided, 32, 16)
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, strided)


@pytest.mark.parametrize("src, target", [((100, 300), (64, 64)), ((300, 100), (64, 64)), ((10, 20), (96, 32)),
                                         ((480, 640), (832, 480)), ((7, 7), (64, 48))])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_the_target_is_covered_never_padded_and_channels_kept(src, target, channels):
    frame = np.full((*src, channels), 200, dtype=np.uint8)  # one colour: any padding would show
    out = crop_to_fill(frame, *target)
    assert out.shape == (target[1], target[0], channels) and out.dtype == np.uint8 and out.flags.c_contiguous
    assert (out == 200).all()


def test_the_crop_is_centred():
    # a wide frame with a left third of 0, a middle of 128 and a right third of 255: scaling to a
    # square keeps the middle (and equal slivers of nothing else)
    frame = np.zeros((60, 180, 3), dtype=np.uint8)
    frame[:, 60:120] = 128
    frame[:, 120:] = 255
    out = crop_to_fill(frame, 60, 60)
    assert (out == 128).all()
    tall = frame.transpose(1, 0, 2)  # the same, standing: the crop takes the middle rows
    assert (crop_to_fill(np.ascontiguousarray(tall), 60, 60) == 128).all()


def test_a_marker_lands_where_scaling_puts_it():
    frame = np.zeros((40, 80, 3), dtype=np.uint8)
    frame[18:22, 38:42] = 255  # centred marker
    out = crop_to_fill(frame, 40, 40)  # scale 1: crop 20 columns from each side
    assert out.shape == (40, 40, 3)
    np.testing.assert_array_equal(np.argwhere(out[..., 0] == 255)[[0, -1]], [[18, 18], [21, 21]])


@pytest.mark.parametrize("shape", [(16, 32), (16, 32, 2), (16, 32, 5), (2, 16, 32, 3)])
def test_bad_shapes_are_refused_with_the_shape_named(shape):
    with pytest.raises(ValueError, match=r"expected an \(H, W, C\) frame.*" + re.escape(str(shape))):
        crop_to_fill(np.zeros(shape, np.uint8), 8, 8)


def test_to_rgb_drops_only_alpha():
    rgba = np.random.default_rng(2).integers(0, 256, (4, 4, 4), dtype=np.uint8)
    np.testing.assert_array_equal(to_rgb(rgba), rgba[..., :3])
    rgb = rgba[..., :3].copy()
    assert to_rgb(rgb) is rgb
