"""The pose annotator: mediapipe PoseLandmarker (tasks API) drawn as an OpenPose skeleton.

BlazePose's 33 landmarks are mapped onto OpenPose's 18 body keypoints (the neck is the midpoint
of the shoulders). BlazePose has no finger joints or dense face mesh, so ``pose_hands`` draws
the hand points it does have (wrist, thumb, index and pinky knuckles) and ``pose_face`` its 11
face points, in the DWPose hand and face styles. mediapipe is imported only when the annotator is
built; the model is a local ``pose_landmarker_*.task`` file (weights role ``pose``). A file
mediapipe cannot load (not a model, a bundle missing a model, a ``.tflite`` without the
NormalizationOptions metadata the tasks API needs) raises ``RuntimeError`` naming the file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vacelive.annotators.base import Annotator
from vacelive.annotators.pose_drawing import draw_openpose
from vacelive.annotators.settings import check_frames, get_bool

BLAZEPOSE_TO_OPENPOSE: tuple[int | None, ...] = (
    0, None, 12, 14, 16, 11, 13, 15, 24, 26, 28, 23, 25, 27, 5, 2, 8, 7,
)
"""BlazePose landmark index for each OpenPose keypoint (None: the neck, from the shoulders)."""

BLAZEPOSE_HANDS: tuple[dict[int, int], dict[int, int]] = (
    {16: 0, 22: 2, 20: 5, 18: 17},  # right: wrist, thumb, index knuckle, pinky knuckle
    {15: 0, 21: 2, 19: 5, 17: 17},  # left
)
"""BlazePose landmark -> 21-point hand index, for the hand points BlazePose has."""

BLAZEPOSE_FACE: tuple[int, ...] = tuple(range(11))
"""BlazePose's face landmarks: nose, eyes (inner, centre, outer), ears, mouth corners."""

MIN_VISIBILITY = 0.5
"""Landmarks less visible than this are treated as missing."""

FRAME_INTERVAL_MS = 33
"""Timestamp step between frames fed to the landmarker in VIDEO mode (tracking only needs order)."""

MEDIAPIPE_INSTALL = 'pip install "vacelive[pose]"'
"""How to get mediapipe (the tasks API, 0.10.30 or 0.10.31: see annotators/README.md)."""

# mediapipe reports a model it cannot use as RuntimeError or ValueError, and as FileNotFoundError
# for a bundle missing one of its models or a float model without NormalizationOptions metadata.
MODEL_LOAD_ERRORS = (RuntimeError, ValueError, FileNotFoundError)


def model_load_error(what: str, path: Path, exc: Exception) -> RuntimeError:
    """The error for a ``what`` model file mediapipe refused: names the file and, if known, the fix."""
    message = f"could not load the {what} model {path}: {exc}"
    if "NormalizationOptions" in str(exc):
        message += ("; a .tflite taken from a mediapipe 0.10.x wheel needs NormalizationOptions "
                    "metadata added first (see annotators/README.md)")
    return RuntimeError(message)


def blazepose_to_openpose(landmarks: np.ndarray) -> np.ndarray:
    """Map (33, 3) BlazePose landmarks (x, y, visibility) to (18, 2) OpenPose keypoints.

    Coordinates stay normalised; keypoints with low visibility become NaN, and the neck is
    the midpoint of the shoulders when both are visible.
    """
    xy = np.where((landmarks[:, 2] >= MIN_VISIBILITY)[:, None], landmarks[:, :2], np.nan)
    out = np.full((18, 2), np.nan)
    for i, src in enumerate(BLAZEPOSE_TO_OPENPOSE):
        out[i] = (xy[11] + xy[12]) / 2 if src is None else xy[src]
    return out


def blazepose_hands(landmarks: np.ndarray) -> np.ndarray:
    """The right and left hand points BlazePose has, as (2, 21, 2) with NaN elsewhere."""
    xy = np.where((landmarks[:, 2] >= MIN_VISIBILITY)[:, None], landmarks[:, :2], np.nan)
    hands = np.full((2, 21, 2), np.nan)
    for h, mapping in enumerate(BLAZEPOSE_HANDS):
        for src, dst in mapping.items():
            hands[h, dst] = xy[src]
    return hands


def blazepose_face(landmarks: np.ndarray) -> np.ndarray:
    """BlazePose's face points as (11, 2), NaN where not visible."""
    face = landmarks[list(BLAZEPOSE_FACE)]
    return np.where((face[:, 2] >= MIN_VISIBILITY)[:, None], face[:, :2], np.nan)


def render_people(
    people: Sequence[np.ndarray], height: int, width: int, hands: bool, face: bool
) -> np.ndarray:
    """Draw each person's (33, 3) BlazePose landmarks as one OpenPose-style image."""
    bodies = np.array([blazepose_to_openpose(p) for p in people]).reshape(-1, 18, 2)
    hand_points = np.concatenate([blazepose_hands(p) for p in people]) if hands and people else None
    face_points = np.array([blazepose_face(p) for p in people]) if face and people else None
    return draw_openpose(bodies, height, width, hands=hand_points, faces=face_points)


class PoseAnnotator(Annotator):
    """OpenPose-style skeletons of up to ``max_people`` people per frame, on black."""

    name = "pose"

    def __init__(self, model_file: Path, max_people: int = 2) -> None:
        try:
            import mediapipe  # noqa: F401
            from mediapipe.tasks.python import vision  # noqa: F401
        except ImportError as exc:
            raise ImportError(f"the pose annotator needs mediapipe: {MEDIAPIPE_INSTALL}") from exc
        if not Path(model_file).is_file():
            raise FileNotFoundError(f"pose model file not found: {model_file}")
        self.model_file = Path(model_file)
        self.max_people = max_people
        self._landmarker: Any = self._create()
        self._timestamp_ms = 0

    def _create(self) -> Any:
        from mediapipe.tasks.python import vision
        from mediapipe.tasks.python.core.base_options import BaseOptions

        options = vision.PoseLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(self.model_file)),
            running_mode=vision.RunningMode.VIDEO,
            num_poses=self.max_people,
        )
        try:
            return vision.PoseLandmarker.create_from_options(options)
        except MODEL_LOAD_ERRORS as exc:
            raise model_load_error("pose", self.model_file, exc) from exc

    def reset(self) -> None:
        """Drop the landmarker's tracking state (a fresh landmarker is made on the next call)."""
        if self._landmarker is not None:
            self._landmarker.close()
        self._landmarker = None
        self._timestamp_ms = 0

    def detect(self, frame: np.ndarray) -> list[np.ndarray]:
        """Landmarks of the people in one RGB frame: a list of (33, 3) arrays (x, y, visibility)."""
        import mediapipe as mp

        if self._landmarker is None:
            self._landmarker = self._create()
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(frame))
        result = self._landmarker.detect_for_video(image, self._timestamp_ms)
        self._timestamp_ms += FRAME_INTERVAL_MS
        return [
            np.array([(lm.x, lm.y, lm.visibility or 0.0) for lm in person], dtype=np.float64)
            for person in result.pose_landmarks
        ]

    def __call__(self, frames: np.ndarray, settings: Mapping[str, Any]) -> np.ndarray:
        check_frames(frames)
        hands, face = get_bool(settings, "pose_hands"), get_bool(settings, "pose_face")
        height, width = frames.shape[1:3]
        out = np.empty_like(frames)
        for i, frame in enumerate(frames):
            out[i] = render_people(self.detect(frame), height, width, hands, face)
        return out
