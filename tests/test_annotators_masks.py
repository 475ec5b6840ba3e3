"""Tests of the mask sources: luma, chroma, alpha, image, invert and feather; person on the real
selfie segmenter (from the mediapipe 0.10.21 wheel; see ``tests/mediapipe_models.py``)."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from vacelive.annotators import make_mask_source
from vacelive.annotators.masks import feather
from vacelive.annotators.settings import parse_hex_color

from tests.mediapipe_models import (
    LANDMARKS_NO_METADATA,
    SEGMENTER,
    models_or_skip,
    person_photo,
)

H, W = 48, 80
HARD = {"mask_feather": 0}


@pytest.fixture(scope="module")
def mediapipe_models():
    """The pose and selfie models built from the mediapipe 0.10.21 wheel (skips without them)."""
    return models_or_skip()


def halves(left: tuple[int, int, int], right: tuple[int, int, int], t: int = 2) -> np.ndarray:
    frames = np.zeros((t, H, W, 3), dtype=np.uint8)
    frames[:, :, : W // 2] = left
    frames[:, :, W // 2 :] = right
    return frames


def test_luma_key() -> None:
    masks = make_mask_source("luma")(halves((50, 50, 50), (200, 200, 200)), HARD)
    assert masks.shape == (2, H, W) and masks.dtype == np.float32
    assert (masks[:, :, : W // 2] == 0).all() and (masks[:, :, W // 2 :] == 1).all()
    frames = halves((50, 50, 50), (200, 200, 200))
    dark = make_mask_source("luma")(frames, {**HARD, "mask_threshold": 0.9})
    assert not dark.any()


def test_invert() -> None:
    frames = halves((50, 50, 50), (200, 200, 200))
    plain = make_mask_source("luma")(frames, HARD)
    inverted = make_mask_source("luma")(frames, {**HARD, "mask_invert": True})
    np.testing.assert_array_equal(inverted, 1 - plain)


def test_chroma_key() -> None:
    frames = halves((30, 200, 40), (200, 60, 60))  # green screen | red shirt
    masks = make_mask_source("chroma")(frames, {**HARD, "mask_key_color": "#00ff00"})
    assert (masks[:, :, : W // 2] == 1).all() and (masks[:, :, W // 2 :] == 0).all()
    shadow = halves((10, 90, 15), (200, 60, 60))  # darker green still keys
    assert make_mask_source("chroma")(shadow, {**HARD, "mask_key_color": "#0f0"})[:, :, :10].all()
    tight = make_mask_source("chroma")(frames, {**HARD, "mask_threshold": 0.01})
    assert not tight.any()
    grey = halves((128, 128, 128), (0, 0, 0))  # grey and black are not green
    assert not make_mask_source("chroma")(grey, HARD).any()
    with pytest.raises(ValueError, match="hex colour"):
        make_mask_source("chroma")(frames, {"mask_key_color": "green"})


def test_parse_hex_color() -> None:
    assert parse_hex_color("#00ff00") == (0, 255, 0)
    assert parse_hex_color("FF8000") == (255, 128, 0)
    assert parse_hex_color("#fff") == (255, 255, 255)


def test_alpha() -> None:
    frames = np.zeros((2, H, W, 3), dtype=np.uint8)
    alpha = np.zeros((2, H, W), dtype=np.uint8)
    alpha[:, 10:20] = 255
    alpha[:, 30:] = 51
    masks = make_mask_source("alpha")(frames, HARD, alpha=alpha)
    assert masks[0, 15, 0] == 1.0 and masks[0, 0, 0] == 0.0
    assert masks[1, 40, 5] == pytest.approx(0.2)
    with pytest.raises(ValueError, match="alpha channel"):
        make_mask_source("alpha")(frames, HARD)


def test_image_mask_crop_to_fill_and_reload(tmp_path) -> None:
    square = np.zeros((100, 100), dtype=np.uint8)
    square[:, 50:] = 255  # right half white = generate
    cv2.imwrite(str(tmp_path / "right.png"), square)
    cv2.imwrite(str(tmp_path / "white.png"), np.full((10, 30), 255, dtype=np.uint8))
    asked: list[str] = []

    def resolve(value: str):
        asked.append(value)
        return tmp_path / value

    source = make_mask_source("image", resolve_path=resolve)
    frames = np.zeros((3, H, W, 3), dtype=np.uint8)
    masks = source(frames, {**HARD, "mask_image": "right.png"})
    assert masks.shape == (3, H, W) and masks.dtype == np.float32
    assert (masks[:, :, : W // 2 - 2] == 0).all() and (masks[:, :, W // 2 + 2 :] == 1).all()
    source(frames, {**HARD, "mask_image": "right.png"})
    assert asked == ["right.png"]  # cached while the setting stays
    assert (source(frames, {**HARD, "mask_image": "white.png"}) == 1).all()
    assert asked == ["right.png", "white.png"]
    with pytest.raises(FileNotFoundError, match="nope.png"):
        source(frames, {"mask_image": "nope.png"})
    with pytest.raises(ValueError, match="mask_image"):
        make_mask_source("image")(frames, {"mask_image": ""})


def test_feather_softens_edges_only() -> None:
    frames = halves((0, 0, 0), (255, 255, 255))
    masks = make_mask_source("luma")(frames, {"mask_feather": 8})
    row = masks[0, H // 2]
    assert row[0] == 0 and row[-1] == pytest.approx(1)
    assert ((row > 0.05) & (row < 0.95)).sum() >= 6  # a soft ramp across the edge
    assert np.all(np.diff(row) >= -1e-6)
    assert masks.min() >= 0 and masks.max() <= 1


def test_feather_function_keeps_range() -> None:
    mask = np.zeros((20, 20), dtype=np.float32)
    mask[5:15, 5:15] = 1
    np.testing.assert_array_equal(feather(mask, 0), mask)
    soft = feather(mask, 4)
    assert soft.min() >= 0 and soft.max() <= 1 and 0 < soft[5, 5] < 1


@hsettings(max_examples=25, deadline=None)
@given(
    name=st.sampled_from(["luma", "chroma"]),
    threshold=st.floats(0, 1),
    feather_px=st.integers(0, 64),
    invert=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_masks_stay_in_range(
    name: str, threshold: float, feather_px: int, invert: bool, seed: int
) -> None:
    frames = np.random.default_rng(seed).integers(0, 256, (1, 24, 40, 3), dtype=np.uint8)
    masks = make_mask_source(name)(
        frames, {"mask_threshold": threshold, "mask_feather": feather_px, "mask_invert": invert}
    )
    assert masks.shape == (1, 24, 40) and masks.dtype == np.float32
    assert masks.min() >= 0 and masks.max() <= 1


def test_person_source_reports_a_bad_model_file(tmp_path) -> None:
    pytest.importorskip("mediapipe.tasks.python.vision")
    (tmp_path / "selfie_segmenter.tflite").write_bytes(b"not a model")
    with pytest.raises(RuntimeError, match="selfie_segmenter.tflite"):
        make_mask_source("person", weights=tmp_path)


def test_person_source_names_a_model_mediapipe_refuses_with_file_not_found(monkeypatch, tmp_path) -> None:
    vision = pytest.importorskip("mediapipe.tasks.python.vision")

    def refuse(options):
        raise FileNotFoundError("Input tensor has type float32: it requires specifying "
                                "NormalizationOptions metadata to preprocess input images.")

    monkeypatch.setattr(vision.ImageSegmenter, "create_from_options", refuse)
    (tmp_path / SEGMENTER).write_bytes(b"stand-in")
    with pytest.raises(RuntimeError, match=r"could not load the segmenter model .*selfie_segmenter\.tflite"
                                           r".*NormalizationOptions.*annotators/README\.md"):
        make_mask_source("person", weights=tmp_path)


def test_person_source_names_a_model_without_normalization_metadata(mediapipe_models, tmp_path) -> None:
    """mediapipe raises FileNotFoundError for a float model without NormalizationOptions metadata
    (here the wheel's pose landmark model under the segmenter's name): the file is named."""
    shutil.copy(mediapipe_models / LANDMARKS_NO_METADATA, tmp_path / SEGMENTER)
    with pytest.raises(RuntimeError, match=f"could not load the segmenter model .*{SEGMENTER}"
                                           ".*NormalizationOptions"):
        make_mask_source("person", weights=tmp_path)


def test_person_mask_on_the_real_segmenter_covers_the_person(mediapipe_models) -> None:
    """Grace Hopper's portrait (512 x 600): face and uniform in the mask, flag and sky out of it."""
    source = make_mask_source("person", weights=mediapipe_models / SEGMENTER)
    try:
        image = person_photo()
        masks = source(np.stack([image, image]), HARD)  # threshold 0.5
        assert masks.shape == (2, 600, 512) and set(np.unique(masks)) <= {0.0, 1.0}
        for mask in masks:
            assert 0.45 < mask.mean() < 0.70  # the person fills about 58 % of the picture
            assert mask[150:300, 200:330].mean() > 0.95  # face
            assert mask[450:, 60:450].mean() > 0.95  # uniform
            assert mask[:150, 420:].mean() < 0.02  # sky, top right
            assert mask[:150, :100].mean() < 0.02  # flag, top left
        inverted = source(image[None], {**HARD, "mask_invert": True})
        np.testing.assert_array_equal(inverted[0], 1 - masks[0])
    finally:
        source.reset()  # closes the segmenter


@pytest.mark.parametrize("name", ["luma", "chroma", "alpha"])
def test_rgb_view_of_rgba_input(name: str) -> None:
    rgba = np.random.default_rng(1).integers(0, 256, (1, H, W, 4), dtype=np.uint8)
    view, alpha = rgba[..., :3], rgba[..., 3]
    np.testing.assert_array_equal(
        make_mask_source(name)(view, {}, alpha),
        make_mask_source(name)(np.ascontiguousarray(view), {}, np.ascontiguousarray(alpha)),
    )
