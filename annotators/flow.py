"""The flow annotator: dense optical flow between consecutive frames, as a flow colour image.

Colours follow the Middlebury colour wheel of Baker et al. (the convention of ``flow_vis`` and
RAFT's ``flow_to_image``, which VACE's flow annotator uses): hue is the direction, saturation the
magnitude, zero flow is white. Magnitudes are normalised by a running maximum so the colours do
not pump from frame to frame.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from annotators.base import Annotator
from annotators.settings import check_frames, get_str

FLOW_METHODS = ("dis", "farneback")
"""Values of the ``flow_method`` setting."""

MAX_FLOW_SIDE = 416
"""Flow is computed with the longer side at most this many pixels, then upscaled."""

_MAX_DECAY = 0.95
"""Per-frame decay of the running maximum magnitude."""

_MIN_NORM = 1.0
"""Floor of the normalising magnitude in pixels, so sensor noise on a still scene stays white."""


def make_colorwheel() -> np.ndarray:
    """The Middlebury flow colour wheel: (55, 3) float64 RGB values in [0, 255].

    Segments red-yellow 15, yellow-green 6, green-cyan 4, cyan-blue 11, blue-magenta 13,
    magenta-red 6, each a linear ramp of one channel.
    """
    segments = (15, 6, 4, 11, 13, 6)
    wheel = np.zeros((sum(segments), 3))
    col = 0
    # (channel held at 255, channel ramped, ramp direction up?) for each segment
    plan = ((0, 1, True), (1, 0, False), (1, 2, True), (2, 1, False), (2, 0, True), (0, 2, False))
    for n, (full, ramp, up) in zip(segments, plan):
        values = np.floor(255 * np.arange(n) / n)
        wheel[col : col + n, full] = 255
        wheel[col : col + n, ramp] = values if up else 255 - values
        col += n
    return wheel


_COLORWHEEL = make_colorwheel()


def flow_to_rgb(flow: np.ndarray, max_magnitude: float) -> np.ndarray:
    """Colour an (H, W, 2) flow field, dividing magnitudes by ``max_magnitude``: (H, W, 3) uint8.

    Magnitudes within the normaliser desaturate towards white at zero; beyond it the colour is
    darkened by 0.75, as in the reference implementation.
    """
    u = flow[..., 0] / max_magnitude
    v = flow[..., 1] / max_magnitude
    ncols = _COLORWHEEL.shape[0]
    rad = np.sqrt(u * u + v * v)
    angle = np.arctan2(-v, -u) / np.pi
    fk = (angle + 1) / 2 * (ncols - 1)
    k0 = np.floor(fk).astype(np.int32)
    k1 = k0 + 1
    k1[k1 == ncols] = 0
    f = (fk - k0)[..., None]
    col = ((1 - f) * _COLORWHEEL[k0] + f * _COLORWHEEL[k1]) / 255.0
    inside = (rad <= 1)[..., None]
    col = np.where(inside, 1 - rad[..., None] * (1 - col), col * 0.75)
    return np.floor(255 * col).astype(np.uint8)


def compute_flow(prev_gray: np.ndarray, gray: np.ndarray, method: str = "dis") -> np.ndarray:
    """Dense flow from ``prev_gray`` to ``gray`` (both (H, W) uint8): (H, W, 2) float32 (dx, dy).

    A point at (x, y) in the previous frame is at (x + dx, y + dy) in the current one.
    """
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        return dis.calc(prev_gray, gray, None)
    if method == "farneback":
        return cv2.calcOpticalFlowFarneback(prev_gray, gray, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    raise ValueError(f"unknown flow_method {method!r}; expected one of {FLOW_METHODS}")


class FlowAnnotator(Annotator):
    """Optical flow between consecutive frames, kept across calls; the first frame has zero flow."""

    name = "flow"

    def __init__(self) -> None:
        self._prev: np.ndarray | None = None
        self._max = _MIN_NORM
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)

    def reset(self) -> None:
        """Forget the previous frame and the running maximum."""
        self._prev = None
        self._max = _MIN_NORM

    def _small_gray(self, frame: np.ndarray) -> tuple[np.ndarray, float]:
        h, w = frame.shape[:2]
        scale = min(1.0, MAX_FLOW_SIDE / max(h, w))
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        if scale < 1.0:
            size = (max(8, round(w * scale)), max(8, round(h * scale)))
            gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        return gray, scale

    def _flow(self, prev: np.ndarray, gray: np.ndarray, method: str) -> np.ndarray:
        if method == "dis":
            return self._dis.calc(prev, gray, None)
        return compute_flow(prev, gray, method)

    def __call__(self, frames: np.ndarray, settings: Mapping[str, Any]) -> np.ndarray:
        check_frames(frames)
        method = get_str(settings, "flow_method")
        if method not in FLOW_METHODS:
            raise ValueError(f"unknown flow_method {method!r}; expected one of {FLOW_METHODS}")
        h, w = frames.shape[1:3]
        out = np.empty_like(frames)
        for i, frame in enumerate(frames):
            gray, scale = self._small_gray(frame)
            if self._prev is None or self._prev.shape != gray.shape:
                small = np.zeros((*gray.shape, 2), dtype=np.float32)  # no previous frame
            else:
                small = self._flow(self._prev, gray, method)
            self._prev = gray
            magnitude = float(np.sqrt((small * small).sum(axis=2)).max()) / scale
            self._max = max(_MIN_NORM, magnitude, self._max * _MAX_DECAY)
            # Colour at the small size (the colours are smooth), then upscale the picture.
            rgb = flow_to_rgb(small / scale, self._max)
            if rgb.shape[:2] != (h, w):
                rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_LINEAR)
            out[i] = rgb
        return out
