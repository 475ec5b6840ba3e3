"""Outpainting: the input shrunk and placed inside the frame, the border generated.

With ``outpaint_scale`` s < 1 the input (and its control frame, and any inpainting mask) is
scaled by s and placed with ``outpaint_x`` / ``outpaint_y`` (0 = left/top edge, 1 = right/bottom
edge, 0.5 = centred); the mask is 1 (generate) outside the placed input, so the border goes
through VACE's inpainting path and the inferred mode says ``outpaint``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Placement:
    """Where the shrunk input sits in the frame, in pixels."""

    left: int
    top: int
    width: int
    height: int

    @classmethod
    def of(cls, frame_width: int, frame_height: int, scale: float, x: float, y: float) -> Placement:
        """The placement for ``scale`` (0.5..1) at relative position ``x``, ``y`` (0..1)."""
        width, height = max(1, round(frame_width * scale)), max(1, round(frame_height * scale))
        return cls(round((frame_width - width) * x), round((frame_height - height) * y), width, height)

    def shrink(self, image: np.ndarray) -> np.ndarray:
        """``image`` (H, W[, C]) resized to the placed size."""
        return cv2.resize(image, (self.width, self.height), interpolation=cv2.INTER_AREA)

    def place(self, small: np.ndarray, frame_shape: tuple[int, ...], fill: float = 0) -> np.ndarray:
        """A frame of ``frame_shape`` holding ``small`` at the placement, ``fill`` elsewhere."""
        canvas = np.full(frame_shape, fill, dtype=small.dtype)
        canvas[self.top:self.top + self.height, self.left:self.left + self.width] = small
        return canvas

    def mask(self, frame_height: int, frame_width: int, inner: np.ndarray | None = None) -> np.ndarray:
        """The inpainting mask (H, W) float32: 1 outside the placement; inside, ``inner`` (the
        mask source's mask, already shrunk) or 0 (keep the input)."""
        mask = np.ones((frame_height, frame_width), np.float32)
        mask[self.top:self.top + self.height, self.left:self.left + self.width] = 0.0 if inner is None else inner
        return mask
