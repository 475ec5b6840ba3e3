"""The edge annotator: Canny edges, white on black."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from vacelive.annotators.base import Annotator
from vacelive.annotators.settings import check_frames, get_int


def canny_edges(frame: np.ndarray, low: int, high: int) -> np.ndarray:
    """Canny edges of one RGB frame as an (H, W) uint8 map (255 on edges, 0 elsewhere)."""
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    return cv2.Canny(gray, low, high)


class EdgeAnnotator(Annotator):
    """Canny edges with thresholds ``canny_low`` / ``canny_high``, as 3-channel white on black."""

    name = "edge"

    def __call__(self, frames: np.ndarray, settings: Mapping[str, Any]) -> np.ndarray:
        check_frames(frames)
        low = get_int(settings, "canny_low", 0, 255)
        high = get_int(settings, "canny_high", 0, 255)
        out = np.empty_like(frames)
        for i, frame in enumerate(frames):
            cv2.cvtColor(canny_edges(frame, low, high), cv2.COLOR_GRAY2RGB, dst=out[i])
        return out
