"""Drawing of OpenPose-style skeletons, the pose convention VACE (DWPose) was trained on.

Keypoints are normalised (x, y) in [0, 1] with NaN for a missing point. Body keypoints follow
the 18-point OpenPose/COCO order: 0 nose, 1 neck, 2-4 right shoulder/elbow/wrist, 5-7 left
shoulder/elbow/wrist, 8-10 right hip/knee/ankle, 11-13 left hip/knee/ankle, 14 right eye,
15 left eye, 16 right ear, 17 left ear. Hands use the 21-point hand order (0 wrist, 1-4 thumb,
5-8 index, 9-12 middle, 13-16 ring, 17-20 pinky). Colours are RGB.
"""

from __future__ import annotations

import colorsys
import math

import cv2
import numpy as np

BODY_COLORS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)
"""Colour of keypoint i and of limb i (OpenPose's 18-colour rainbow)."""

LIMBS: tuple[tuple[int, int], ...] = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
    (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)
"""The 17 limbs OpenPose draws (0-based keypoint pairs); limb i takes the colour BODY_COLORS[i]."""

LIMB_DIM = 0.6
"""Limbs are dimmed to 60 % before the joints are drawn over them."""

LIMB_COLORS: tuple[tuple[int, int, int], ...] = tuple(
    (int(r * LIMB_DIM), int(g * LIMB_DIM), int(b * LIMB_DIM)) for r, g, b in BODY_COLORS[:17]
)
"""Limb colours after OpenPose's 60 % dimming (exact: every channel is a multiple of 85)."""

HAND_EDGES: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (0, 9), (9, 10),
    (10, 11), (11, 12), (0, 13), (13, 14), (14, 15), (15, 16), (0, 17), (17, 18), (18, 19),
    (19, 20),
)
"""Hand bones, wrist outwards, finger by finger."""

HAND_EDGE_COLORS: tuple[tuple[int, int, int], ...] = tuple(
    (round(r * 255), round(g * 255), round(b * 255))  # cv2 rounds float colours likewise
    for r, g, b in (colorsys.hsv_to_rgb(i / len(HAND_EDGES), 1.0, 1.0) for i in range(20))
)
"""Colour of hand bone i: the hue i / 20 at full saturation and value."""

HAND_JOINT_COLOR = (0, 0, 255)
FACE_COLOR = (255, 255, 255)
STICK_WIDTH = 4
"""Half thickness of a limb ellipse in pixels."""


def _pixel(point: np.ndarray, height: int, width: int) -> tuple[float, float] | None:
    x, y = float(point[0]), float(point[1])
    if not (math.isfinite(x) and math.isfinite(y)):
        return None
    return x * width, y * height


def draw_body(canvas: np.ndarray, bodies: np.ndarray) -> np.ndarray:
    """Draw (N, 18, 2) body keypoints on ``canvas`` (H, W, 3) uint8 in place and return it.

    OpenPose draws the limbs, dims the whole canvas to 60 % and draws the joints on top; on a
    black canvas that equals drawing the limbs in their dimmed colours, which is what this does.
    """
    height, width = canvas.shape[:2]
    for body in bodies:
        for (a, b), dimmed in zip(LIMBS, LIMB_COLORS):
            pa, pb = _pixel(body[a], height, width), _pixel(body[b], height, width)
            if pa is None or pb is None:
                continue
            mx, my = (pa[0] + pb[0]) / 2, (pa[1] + pb[1]) / 2
            length = math.hypot(pa[0] - pb[0], pa[1] - pb[1])
            angle = math.degrees(math.atan2(pa[1] - pb[1], pa[0] - pb[0]))
            polygon = cv2.ellipse2Poly(
                (int(mx), int(my)), (int(length / 2), STICK_WIDTH), int(angle), 0, 360, 1
            )
            cv2.fillConvexPoly(canvas, polygon, dimmed)
    for body in bodies:
        for point, color in zip(body, BODY_COLORS):
            p = _pixel(point, height, width)
            if p is not None:
                cv2.circle(canvas, (int(p[0]), int(p[1])), 4, color, thickness=-1)
    return canvas


def draw_hands(canvas: np.ndarray, hands: np.ndarray) -> np.ndarray:
    """Draw (N, 21, 2) hand keypoints on ``canvas`` in place: rainbow bones, blue joints."""
    height, width = canvas.shape[:2]
    for hand in hands:
        for (a, b), color in zip(HAND_EDGES, HAND_EDGE_COLORS):
            pa, pb = _pixel(hand[a], height, width), _pixel(hand[b], height, width)
            if pa is None or pb is None:
                continue
            cv2.line(canvas, (int(pa[0]), int(pa[1])), (int(pb[0]), int(pb[1])), color, 2)
        for point in hand:
            p = _pixel(point, height, width)
            if p is not None:
                cv2.circle(canvas, (int(p[0]), int(p[1])), 4, HAND_JOINT_COLOR, thickness=-1)
    return canvas


def draw_faces(canvas: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Draw (N, K, 2) face landmarks on ``canvas`` in place as small white dots."""
    height, width = canvas.shape[:2]
    for face in faces:
        for point in face:
            p = _pixel(point, height, width)
            if p is not None:
                cv2.circle(canvas, (int(p[0]), int(p[1])), 3, FACE_COLOR, thickness=-1)
    return canvas


def draw_openpose(
    bodies: np.ndarray,
    height: int,
    width: int,
    hands: np.ndarray | None = None,
    faces: np.ndarray | None = None,
) -> np.ndarray:
    """Render an OpenPose-style pose image (H, W, 3) uint8 RGB on black.

    ``bodies`` is (N, 18, 2) normalised keypoints (NaN = missing); ``hands`` (M, 21, 2) and
    ``faces`` (F, K, 2) are drawn over the bodies when given. Pure: same input, same picture.
    """
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    bodies = np.asarray(bodies, dtype=np.float64).reshape(-1, 18, 2)
    canvas = draw_body(canvas, bodies)
    if hands is not None and len(hands):
        draw_hands(canvas, np.asarray(hands, dtype=np.float64).reshape(-1, 21, 2))
    if faces is not None and len(faces):
        faces = np.asarray(faces, dtype=np.float64)
        draw_faces(canvas, faces.reshape(len(faces), -1, 2))
    return canvas
