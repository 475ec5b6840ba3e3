"""Tests of the OpenPose-style drawing and the BlazePose mapping (no model needed), and of the
pose annotator on the real BlazePose model (built from the mediapipe 0.10.21 wheel; see
``tests/mediapipe_models.py``)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vacelive.annotators.pose import (
    BLAZEPOSE_TO_OPENPOSE,
    blazepose_face,
    blazepose_hands,
    blazepose_to_openpose,
    render_people,
)
from vacelive.annotators.pose_drawing import BODY_COLORS, HAND_JOINT_COLOR, LIMB_DIM, LIMBS, draw_openpose

from tests.mediapipe_models import (
    LANDMARKS_NO_METADATA,
    POSE_TASK,
    POSE_TASK_NO_METADATA,
    models_or_skip,
    person_photo,
)

H, W = 400, 300

# An upright person in normalised coordinates, OpenPose order.
BODY = np.array([
    [0.50, 0.15],  # 0 nose
    [0.50, 0.30],  # 1 neck
    [0.35, 0.30],  # 2 right shoulder
    [0.30, 0.45],  # 3 right elbow
    [0.28, 0.60],  # 4 right wrist
    [0.65, 0.30],  # 5 left shoulder
    [0.70, 0.45],  # 6 left elbow
    [0.72, 0.60],  # 7 left wrist
    [0.42, 0.60],  # 8 right hip
    [0.42, 0.75],  # 9 right knee
    [0.42, 0.92],  # 10 right ankle
    [0.58, 0.60],  # 11 left hip
    [0.58, 0.75],  # 12 left knee
    [0.58, 0.92],  # 13 left ankle
    [0.46, 0.12],  # 14 right eye
    [0.54, 0.12],  # 15 left eye
    [0.42, 0.14],  # 16 right ear
    [0.58, 0.14],  # 17 left ear
])


@pytest.fixture(scope="module")
def mediapipe_models():
    """The pose and selfie models built from the mediapipe 0.10.21 wheel (skips without them)."""
    return models_or_skip()


def px(point: np.ndarray) -> tuple[int, int]:
    return int(point[1] * H), int(point[0] * W)  # (row, col)


def test_openpose_colour_table() -> None:
    assert len(BODY_COLORS) == 18 and len(LIMBS) == 17
    assert BODY_COLORS[0] == (255, 0, 0) and BODY_COLORS[12] == (0, 0, 255)
    assert BODY_COLORS[17] == (255, 0, 85)
    assert LIMBS[0] == (1, 2) and LIMBS[12] == (1, 0) and LIMBS[16] == (15, 17)


def test_drawing_is_deterministic_rgb_on_black() -> None:
    a = draw_openpose(BODY[None], H, W)
    b = draw_openpose(BODY[None].copy(), H, W)
    assert a.shape == (H, W, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert (a[0, 0] == 0).all() and (a[-1, -1] == 0).all()
    assert (a.sum(axis=2) > 0).mean() < 0.2  # a skeleton, not a fill


def test_joints_have_their_colours() -> None:
    image = draw_openpose(BODY[None], H, W)
    for i, point in enumerate(BODY):
        r, c = px(point)
        assert tuple(image[r, c]) == BODY_COLORS[i], f"joint {i}"


@pytest.mark.parametrize("limb", [0, 2, 6, 9, 12])
def test_limbs_have_their_dimmed_colours(limb: int) -> None:
    image = draw_openpose(BODY[None], H, W)
    a, b = LIMBS[limb]
    mid = (BODY[a] + BODY[b]) / 2
    # between the joints' circles, the limb colour at 60 %
    r, c = px(BODY[a] * 0.3 + BODY[b] * 0.7) if limb == 12 else px(mid)
    expected = tuple(int(v * LIMB_DIM) for v in BODY_COLORS[limb])
    assert tuple(image[r, c]) == expected


def test_missing_keypoints_are_skipped() -> None:
    body = BODY.copy()
    body[4] = np.nan  # right wrist
    image = draw_openpose(body[None], H, W)
    r, c = px(BODY[4])
    assert not image[r - 3 : r + 4, c - 3 : c + 4].any()
    r, c = px(BODY[3])
    assert tuple(image[r, c]) == BODY_COLORS[3]  # the elbow is still there


def test_several_people_hands_and_face() -> None:
    other = BODY.copy()
    other[:, 0] -= 0.2
    image = draw_openpose(np.stack([BODY, other]), H, W)
    r, c = px(other[0])
    assert tuple(image[r, c]) == BODY_COLORS[0]
    hand = np.full((21, 2), np.nan)
    hand[0] = [0.2, 0.9]
    hand[5] = [0.25, 0.95]
    face = np.array([[0.9, 0.9]])
    image = draw_openpose(np.empty((0, 18, 2)), H, W, hands=hand[None], faces=face[None])
    assert tuple(image[px(hand[0])]) == HAND_JOINT_COLOR
    assert tuple(image[px(face[0])]) == (255, 255, 255)
    mid = px((hand[0] + hand[5]) / 2)
    assert image[mid].any()  # the bone between wrist and index knuckle


def blazepose_of(body: np.ndarray) -> np.ndarray:
    """33 BlazePose landmarks (x, y, visibility) placed where ``body`` has OpenPose points."""
    lm = np.zeros((33, 3))
    lm[:, 2] = 0.9
    for op, bp in enumerate(BLAZEPOSE_TO_OPENPOSE):
        if bp is not None:
            lm[bp, :2] = body[op]
    return lm


def test_blazepose_mapping() -> None:
    lm = blazepose_of(BODY)
    lm[12, :2] = [0.30, 0.32]  # move the right shoulder: the neck follows
    body = blazepose_to_openpose(lm)
    np.testing.assert_allclose(body[1], (lm[11, :2] + lm[12, :2]) / 2)
    np.testing.assert_allclose(body[[0, 3, 5, 13, 17]], BODY[[0, 3, 5, 13, 17]])
    lm[15, 2] = 0.1  # left wrist barely visible
    assert np.isnan(blazepose_to_openpose(lm)[7]).all()
    lm[11, 2] = 0.1  # a shoulder missing: no neck
    assert np.isnan(blazepose_to_openpose(lm)[1]).all()
    assert blazepose_hands(blazepose_of(BODY)).shape == (2, 21, 2)
    assert blazepose_face(blazepose_of(BODY)).shape == (11, 2)


def test_render_people() -> None:
    image = render_people([blazepose_of(BODY)], H, W, hands=True, face=True)
    np.testing.assert_array_equal(image[px(BODY[2])], BODY_COLORS[2])
    assert render_people([], H, W, hands=True, face=True).sum() == 0


def test_pose_annotator_reports_a_bad_model_file(tmp_path) -> None:
    pytest.importorskip("mediapipe.tasks.python.vision")
    from vacelive.annotators import make_annotator

    (tmp_path / "pose_landmarker_full.task").write_bytes(b"not a model")
    with pytest.raises(RuntimeError, match="pose_landmarker_full.task"):
        make_annotator("pose", weights=tmp_path)


def test_pose_annotator_draws_what_it_detects() -> None:
    from vacelive.annotators.pose import PoseAnnotator

    class StubPose(PoseAnnotator):
        def __init__(self) -> None:  # no mediapipe, no model file
            self.seen = 0

        def detect(self, frame: np.ndarray) -> list[np.ndarray]:
            self.seen += 1
            return [blazepose_of(BODY)]

    annotator = StubPose()
    frames = np.full((3, H, W, 3), 90, dtype=np.uint8)
    out = annotator(frames, {"pose_hands": False, "pose_face": False})
    assert out.shape == frames.shape and out.dtype == np.uint8 and annotator.seen == 3
    np.testing.assert_array_equal(out[1], draw_openpose(BODY[None], H, W))
    with_extras = annotator(frames[:1], {"pose_hands": True, "pose_face": True})
    assert (with_extras[0] != out[0]).any()


def test_pose_annotator_names_a_model_mediapipe_refuses_with_file_not_found(monkeypatch, tmp_path) -> None:
    """mediapipe raises FileNotFoundError for a model it cannot use (a float model without
    NormalizationOptions metadata, a bundle missing a model): the user gets the named file."""
    vision = pytest.importorskip("mediapipe.tasks.python.vision")
    from vacelive.annotators import make_annotator

    def refuse(options):
        raise FileNotFoundError("Input tensor has type float32: it requires specifying "
                                "NormalizationOptions metadata to preprocess input images.")

    monkeypatch.setattr(vision.PoseLandmarker, "create_from_options", refuse)
    (tmp_path / "pose_landmarker_full.task").write_bytes(b"stand-in")
    with pytest.raises(RuntimeError, match=r"could not load the pose model .*pose_landmarker_full\.task"
                                           r".*NormalizationOptions.*annotators/README\.md"):
        make_annotator("pose", weights=tmp_path)


def test_pose_model_without_normalization_metadata_is_named(mediapipe_models, tmp_path) -> None:
    """The real case: the 0.10.21 wheel's landmark model bundled as it is."""
    from vacelive.annotators import make_annotator

    with pytest.raises(RuntimeError, match=f"could not load the pose model .*{POSE_TASK_NO_METADATA}"
                                           ".*NormalizationOptions"):
        make_annotator("pose", weights=mediapipe_models / POSE_TASK_NO_METADATA)
    with pytest.raises(RuntimeError, match=f"could not load the pose model .*{LANDMARKS_NO_METADATA}"):
        make_annotator("pose", weights=mediapipe_models / LANDMARKS_NO_METADATA)  # not a bundle


@pytest.fixture()
def real_pose(mediapipe_models):
    from vacelive.annotators import make_annotator

    annotator = make_annotator("pose", weights=mediapipe_models / POSE_TASK)
    yield annotator
    annotator.reset()  # closes the landmarker


def test_real_pose_model_finds_face_and_shoulders_where_they_are(real_pose) -> None:
    """Grace Hopper's portrait (512 x 600): face around x 190-350, y 130-330; shoulders at the
    lower corners. Image left is the person's right."""
    image = person_photo()
    people = real_pose.detect(image)
    assert len(people) == 1
    body = blazepose_to_openpose(people[0]) * [image.shape[1], image.shape[0]]  # (x, y) pixels
    nose, right_eye, left_eye = body[0], body[14], body[15]
    right_shoulder, left_shoulder, neck = body[2], body[5], body[1]
    assert 220 < nose[0] < 320 and 190 < nose[1] < 270
    assert 160 < right_eye[1] < nose[1] and 160 < left_eye[1] < nose[1]
    assert 180 < right_eye[0] < nose[0] < left_eye[0] < 360
    assert 30 < right_shoulder[0] < 180 and 380 < left_shoulder[0] < 510
    assert 360 < right_shoulder[1] < 500 and 360 < left_shoulder[1] < 500
    assert right_shoulder[0] < neck[0] < left_shoulder[0] and neck[1] > nose[1] + 100


def test_real_pose_annotator_draws_the_skeleton_on_an_engine_chunk(real_pose) -> None:
    """12 frames of 832 x 480 (the portrait scaled to 410 x 480, centred, drifting 2 px per frame):
    every control frame has the nose joint drawn on the face and the neck below it."""
    portrait = cv2.resize(person_photo(), (410, 480), interpolation=cv2.INTER_AREA)
    frames = np.full((12, 480, 832, 3), 40, dtype=np.uint8)
    for i in range(12):
        frames[i, :, 200 + 2 * i : 610 + 2 * i] = portrait
    out = real_pose(frames, {"pose_hands": False, "pose_face": False})
    assert out.shape == frames.shape and out.dtype == np.uint8
    for i, control in enumerate(out):
        nose = np.argwhere((control == BODY_COLORS[0]).all(axis=2))  # (row, col) of red pixels
        face_left = 200 + 2 * i + int(190 * 410 / 512)
        face_right = 200 + 2 * i + int(350 * 410 / 512)
        assert len(nose) > 0, f"frame {i}: no nose drawn"
        row, col = nose.mean(axis=0)
        assert 150 < row < 230 and face_left < col < face_right, f"frame {i}: nose at {(row, col)}"
        assert (control == BODY_COLORS[1]).all(axis=2)[int(row) + 60 :].any(), f"frame {i}: no neck"
