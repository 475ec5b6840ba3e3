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

from vacelive.annotators.base import Annotator
from vacelive.annotators.settings import check_frames, get_str

FLOW_METHODS = ("dis", "farneback")
"""Values of the ``flow_method`` setting."""

MAX_FLOW_SIDE = {"dis": 416, "farneback": 256}
"""Flow is computed with the longer side at most this many pixels, then upscaled (the slower
Farneback works smaller to keep up with the frame rate)."""

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


ANGLE_BINS = 55 * 8
"""Directions in the colour lookup table (8 per colour-wheel entry)."""

RADIUS_BINS = 256
"""Normalised magnitudes 0..1 in the lookup table; one more bin holds everything beyond 1."""


def make_flow_lut() -> np.ndarray:
    """Flow colours by (direction bin, magnitude bin): (ANGLE_BINS, RADIUS_BINS + 1, 3) uint8.

    Direction bin a is the angle 2 pi a / ANGLE_BINS of (dx, dy) (image y down), which sits at
    position a / ANGLE_BINS * (55 - 1) on the wheel, as in the reference's
    ``arctan2(-v, -u)``. Magnitudes within the normaliser fade to white at zero; beyond it
    the wheel colour is darkened to 75 %.
    """
    wheel = make_colorwheel() / 255.0
    ncols = wheel.shape[0]
    fk = np.arange(ANGLE_BINS) / ANGLE_BINS * (ncols - 1)
    k0 = np.floor(fk).astype(np.int64)
    f = (fk - k0)[:, None]
    col = (1 - f) * wheel[k0] + f * wheel[(k0 + 1) % ncols]  # (A, 3)
    rad = np.arange(RADIUS_BINS) / (RADIUS_BINS - 1)
    inside = 1 - rad[None, :, None] * (1 - col[:, None, :])  # (A, R, 3)
    beyond = (col * 0.75)[:, None, :]
    return np.floor(255 * np.concatenate([inside, beyond], axis=1)).astype(np.uint8)


_FLOW_LUT = make_flow_lut().reshape(-1, 3)


def flow_to_rgb(flow: np.ndarray, max_magnitude: float) -> np.ndarray:
    """Colour an (H, W, 2) flow field, dividing magnitudes by ``max_magnitude``: (H, W, 3) uint8.

    Hue is the direction (right = red, left = cyan-blue), saturation the magnitude relative
    to ``max_magnitude`` (zero = white), via a lookup table of the Middlebury wheel.
    """
    flow = np.asarray(flow, dtype=np.float32)
    magnitude, angle = cv2.cartToPolar(flow[..., 0], flow[..., 1])
    radius = cv2.multiply(magnitude, (RADIUS_BINS - 1) / max_magnitude) + 0.5
    np.putmask(radius, radius > RADIUS_BINS - 0.5, RADIUS_BINS)  # beyond the normaliser
    index = (cv2.multiply(angle, ANGLE_BINS / (2 * np.pi)) + 0.5).astype(np.int32)
    index[index >= ANGLE_BINS] = 0
    index *= RADIUS_BINS + 1
    index += radius.astype(np.int32)
    return np.take(_FLOW_LUT, index, axis=0)


def compute_flow(prev_gray: np.ndarray, gray: np.ndarray, method: str = "dis") -> np.ndarray:
    """Dense flow from ``prev_gray`` to ``gray`` (both (H, W) uint8): (H, W, 2) float32 (dx, dy).

    A point at (x, y) in the previous frame is at (x + dx, y + dy) in the current one.
    """
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        return dis.calc(prev_gray, gray, None)
    if method == "farneback":
        return cv2.calcOpticalFlowFarneback(
            prev_gray, gray, None, pyr_scale=0.5, levels=3, winsize=13, iterations=2,
            poly_n=5, poly_sigma=1.1, flags=0,
        )
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

    def _small_gray(self, frame: np.ndarray, method: str) -> tuple[np.ndarray, float]:
        h, w = frame.shape[:2]
        scale = min(1.0, MAX_FLOW_SIDE[method] / max(h, w))
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
            gray, scale = self._small_gray(frame, method)
            if self._prev is None or self._prev.shape != gray.shape:
                # first frame, or the size changed: no motion to show
                small = np.zeros((*gray.shape, 2), dtype=np.float32)
            else:
                small = self._flow(self._prev, gray, method)
            self._prev = gray
            magnitude = float(cv2.magnitude(small[..., 0], small[..., 1]).max()) / scale
            self._max = max(_MIN_NORM, magnitude, self._max * _MAX_DECAY)
            # Colour at the small size (the colours are smooth), then upscale the picture.
            rgb = flow_to_rgb(small / scale, self._max)
            if rgb.shape[:2] != (h, w):
                rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_LINEAR)
            out[i] = rgb
        return out
