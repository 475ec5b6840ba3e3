"""Tests of the model-free annotators (edge, scribble, flow, passthrough) and the factories."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vacelive import annotators
from vacelive.annotators import ANNOTATORS, MASK_SOURCES, make_annotator, make_mask_source
from vacelive.annotators.base import Annotator, MaskSource
from vacelive.annotators.flow import FlowAnnotator, compute_flow, flow_to_rgb, make_colorwheel

H, W = 96, 160


def rectangle_frames(t: int = 2, value: int = 255) -> np.ndarray:
    frames = np.zeros((t, H, W, 3), dtype=np.uint8)
    frames[:, 30:70, 40:120] = value
    return frames


def textured(seed: int = 0, h: int = H, w: int = W) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (h, w), dtype=np.uint8)
    gray = cv2.GaussianBlur(noise, (0, 0), 2.0)
    gray = cv2.normalize(gray, None, 0, 255, cv2.NORM_MINMAX)
    return np.repeat(gray[:, :, None], 3, axis=2)


def test_names_and_factories() -> None:
    assert ANNOTATORS == ("none", "passthrough", "edge", "scribble", "pose", "depth", "flow")
    assert MASK_SOURCES == ("none", "person", "luma", "chroma", "alpha", "image")
    assert make_annotator("none") is None
    assert make_mask_source("none") is None
    for name in ("passthrough", "edge", "scribble", "flow"):
        annotator = make_annotator(name)
        assert isinstance(annotator, Annotator) and annotator.name == name
    for name in ("luma", "chroma", "alpha", "image"):
        source = make_mask_source(name)
        assert isinstance(source, MaskSource) and source.name == name
    with pytest.raises(ValueError, match="unknown annotator"):
        make_annotator("sketchy")
    with pytest.raises(ValueError, match="unknown mask source"):
        make_mask_source("greenish")


def test_model_annotators_name_missing_files(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="depth_anything_v2_vits.pth"):
        make_annotator("depth")
    with pytest.raises(FileNotFoundError, match="depth_anything_v2_vits.pth"):
        make_annotator("depth", weights=tmp_path)
    with pytest.raises(FileNotFoundError, match="pose_landmarker_full.task"):
        make_annotator("pose", weights=tmp_path)
    with pytest.raises(FileNotFoundError, match="selfie_segmenter.tflite"):
        make_mask_source("person", weights=tmp_path)


def test_manifest_roles_are_used(tmp_path) -> None:
    class Manifest:
        def __init__(self) -> None:
            self.roles: list[str] = []

        def path(self, role: str):
            self.roles.append(role)
            return tmp_path / f"missing-{role}.bin"

    manifest = Manifest()
    with pytest.raises(FileNotFoundError, match="missing-depth.bin"):
        make_annotator("depth", weights=manifest)
    with pytest.raises(FileNotFoundError, match="missing-segmenter.bin"):
        make_mask_source("person", weights=manifest)
    assert manifest.roles == ["depth", "segmenter"]


@pytest.mark.parametrize("name", ["passthrough", "edge", "scribble", "flow"])
@pytest.mark.parametrize("t", [1, 12])
def test_shapes_and_dtypes(name: str, t: int) -> None:
    frames = np.stack([textured(i) for i in range(t)])
    out = make_annotator(name)(frames, {})
    assert out.shape == frames.shape and out.dtype == np.uint8
    assert out.flags.c_contiguous


def test_rejects_bad_frames() -> None:
    with pytest.raises(ValueError, match="uint8"):
        make_annotator("edge")(np.zeros((1, H, W, 3), dtype=np.float32), {})
    with pytest.raises(ValueError, match="T, H, W, 3"):
        make_annotator("edge")(np.zeros((H, W, 3), dtype=np.uint8), {})


def test_passthrough_is_identity() -> None:
    frames = np.stack([textured(1), textured(2)])
    np.testing.assert_array_equal(make_annotator("passthrough")(frames, {}), frames)


def test_edges_on_rectangle_border_only() -> None:
    out = make_annotator("edge")(rectangle_frames(), {"canny_low": 100, "canny_high": 200})
    assert set(np.unique(out)) == {0, 255}
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 0] == out[..., 2]).all()
    edges = out[0, :, :, 0] > 0
    assert edges[28:33, 40:120].any(axis=0).mean() > 0.9  # top border
    assert edges[30:70, 38:43].any(axis=1).mean() > 0.9  # left border
    assert not edges[40:60, 55:105].any()  # inside the flat rectangle
    assert not edges[:20].any() and not edges[80:].any()  # flat background


def test_edge_thresholds_apply() -> None:
    faint = rectangle_frames(value=40)
    assert make_annotator("edge")(faint, {"canny_low": 100, "canny_high": 200}).any()
    assert not make_annotator("edge")(faint, {"canny_low": 240, "canny_high": 255}).any()


def test_scribble_is_thicker_and_soft() -> None:
    frames = rectangle_frames()
    edge = make_annotator("edge")(frames, {})[0, :, :, 0]
    scribble = make_annotator("scribble")
    thin = scribble(frames, {"scribble_width": 1})[0, :, :, 0]
    thick = scribble(frames, {"scribble_width": 8})[0, :, :, 0]
    assert (thick > 0).sum() > (thin > 0).sum() >= (edge > 0).sum() * 0.5
    assert thick.max() >= 250 and ((thick > 0) & (thick < 200)).any()  # soft fringe
    assert not thick[45:55, 70:90].any() and not thick[:10].any()


def test_colorwheel_matches_middlebury() -> None:
    wheel = make_colorwheel()
    assert wheel.shape == (55, 3)
    np.testing.assert_array_equal(wheel[0], [255, 0, 0])
    np.testing.assert_array_equal(wheel[15], [255, 255, 0])
    np.testing.assert_array_equal(wheel[21], [0, 255, 0])
    np.testing.assert_array_equal(wheel[25], [0, 255, 255])
    np.testing.assert_array_equal(wheel[36], [0, 0, 255])
    np.testing.assert_array_equal(wheel[49], [255, 0, 255])
    np.testing.assert_array_equal(wheel[54], [255, 0, 43])


def test_flow_to_rgb_directions() -> None:
    flow = np.array([[[0, 0], [1, 0], [-1, 0], [0.5, 0]]], dtype=np.float32)
    rgb = flow_to_rgb(flow, 1.0)[0]
    np.testing.assert_array_equal(rgb[0], [255, 255, 255])  # no motion is white
    np.testing.assert_array_equal(rgb[1], [255, 0, 0])  # right: red
    assert rgb[2][2] == 255 and rgb[2][0] == 0  # left: cyan-blue
    assert rgb[3][0] == 255 and 0 < rgb[3][2] < 255  # half speed: paler red


def shifted_pair(dx: int) -> np.ndarray:
    base = textured(7, H + 20, W + 20)
    a = base[10 : 10 + H, 10 : 10 + W]
    b = base[10 : 10 + H, 10 - dx : 10 - dx + W]  # content moves by +dx
    return np.stack([a, b])


@pytest.mark.parametrize("method", ["dis", "farneback"])
@pytest.mark.parametrize("dx", [4, -4])
def test_compute_flow_points_the_right_way(method: str, dx: int) -> None:
    a, b = shifted_pair(dx)
    flow = compute_flow(a[:, :, 0], b[:, :, 0], method)
    assert flow.shape == (H, W, 2) and flow.dtype == np.float32
    inner = flow[16:-16, 16:-16]
    assert np.median(inner[..., 0]) == pytest.approx(dx, abs=1.0)
    assert abs(np.median(inner[..., 1])) < 0.5


@pytest.mark.parametrize("method", ["dis", "farneback"])
def test_flow_annotator_colours(method: str) -> None:
    settings = {"flow_method": method}
    right = FlowAnnotator()(shifted_pair(4), settings)
    np.testing.assert_array_equal(right[0], 255)  # first frame ever: zero flow, white
    centre = right[1, 24:-24, 24:-24].reshape(-1, 3).astype(int)
    r, g, b = np.median(centre, axis=0)
    assert r > 200 and b < 150 and r > g  # rightward: red
    left = FlowAnnotator()(shifted_pair(-4), settings)
    r, g, b = np.median(left[1, 24:-24, 24:-24].reshape(-1, 3).astype(int), axis=0)
    assert b > 200 and r < 100  # leftward: cyan-blue


def test_flow_state_across_calls_and_reset() -> None:
    pair = shifted_pair(4)
    whole = FlowAnnotator()(pair, {})
    annotator = FlowAnnotator()
    first = annotator(pair[:1], {})
    second = annotator(pair[1:], {})
    np.testing.assert_array_equal(np.concatenate([first, second]), whole)
    annotator.reset()
    np.testing.assert_array_equal(annotator(pair[1:], {}), 255)


def test_flow_rejects_unknown_method() -> None:
    with pytest.raises(ValueError, match="flow_method"):
        FlowAnnotator()(shifted_pair(1), {"flow_method": "raft"})


def test_import_is_cheap() -> None:
    import subprocess
    import sys

    code = (
        "import vacelive.annotators as annotators, sys; "
        "heavy = lambda: sorted(m for m in ('torch', 'mediapipe') if m in sys.modules); "
        "print(heavy()); "
        "[annotators.make_annotator(n) for n in ('passthrough', 'edge', 'scribble', 'flow')]; "
        "[annotators.make_mask_source(n) for n in ('luma', 'chroma', 'alpha', 'image')]; "
        "print(heavy())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # nothing heavy on import, nor when building the annotators and masks that need no model
    assert out.stdout.split() == ["[]", "[]"]
    assert {name: hasattr(annotators, name) for name in annotators.__all__} == dict.fromkeys(annotators.__all__, True)
    assert {"make_annotator", "make_mask_source", "ANNOTATORS", "MASK_SOURCES"} <= set(annotators.__all__)


@pytest.mark.parametrize("name", ["passthrough", "edge", "scribble", "flow"])
def test_rgb_view_of_rgba_input(name: str) -> None:
    rgba = np.concatenate([textured(3)[None], np.full((1, H, W, 1), 255, np.uint8)], axis=3)
    view = rgba[..., :3]  # what the engine passes for an RGBA source
    np.testing.assert_array_equal(
        make_annotator(name)(view, {}), make_annotator(name)(np.ascontiguousarray(view), {})
    )
