"""The passthrough annotator: the input frames are the control frames."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from vacelive.annotators.base import Annotator
from vacelive.annotators.settings import check_frames


class PassthroughAnnotator(Annotator):
    """Returns the input unchanged (VACE then follows the input video itself)."""

    name = "passthrough"

    def __call__(self, frames: np.ndarray, settings: Mapping[str, Any]) -> np.ndarray:
        check_frames(frames)
        return np.ascontiguousarray(frames)
