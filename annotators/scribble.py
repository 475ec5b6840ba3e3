"""The scribble annotator: thick, soft, hand-drawn-looking lines, white on black."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from vacelive.annotators.base import Annotator
from vacelive.annotators.settings import check_frames, get_int


def scribble_lines(frame: np.ndarray, low: int, high: int, width: int) -> np.ndarray:
    """Scribble map of one RGB frame: (H, W) uint8, white strokes about ``width`` px wide.

    The frame is blurred first so only the main contours survive Canny; the edges are then
    dilated to the stroke width and softened with a slight blur like a marker line.
    """
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    gray = cv2.GaussianBlur(gray, (5, 5), 1.5)
    edges = cv2.Canny(gray, low, high)
    if width > 1:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (width, width))
        edges = cv2.dilate(edges, kernel)
    soft = 2 * max(1, width // 2) + 1
    return cv2.GaussianBlur(edges, (soft, soft), 0)


class ScribbleAnnotator(Annotator):
    """Scribble lines of width ``scribble_width`` from Canny at ``canny_low`` / ``canny_high``."""

    name = "scribble"

    def __call__(self, frames: np.ndarray, settings: Mapping[str, Any]) -> np.ndarray:
        check_frames(frames)
        low = get_int(settings, "canny_low", 0, 255)
        high = get_int(settings, "canny_high", 0, 255)
        width = get_int(settings, "scribble_width", 1, 16)
        out = np.empty_like(frames)
        for i, frame in enumerate(frames):
            cv2.cvtColor(scribble_lines(frame, low, high, width), cv2.COLOR_GRAY2RGB, dst=out[i])
        return out
