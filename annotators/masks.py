"""Mask sources for inpainting: 1 = generate, 0 = keep, as (T, H, W) float32 in [0, 1].

Every source applies ``mask_invert`` and then ``mask_feather`` (a Gaussian of that many pixels)
to its raw mask. The person source lives in ``annotators.person`` (it needs mediapipe).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vacelive.annotators.base import MaskSource
from vacelive.annotators.settings import (
    check_frames,
    get_bool,
    get_float,
    get_int,
    get_str,
    parse_hex_color,
)
from vacelive.engine.frames import crop_to_fill

CHROMA_SOFTENING = 8.0
"""Added to each channel before computing chromaticity, so near-black noise reads as grey."""


def chromaticity(rgb: np.ndarray) -> np.ndarray:
    """Brightness-independent colour: (r, g) = (R, G) / (R + G + B), softened near black."""
    values = rgb.astype(np.float32) + CHROMA_SOFTENING
    return values[..., :2] / values.sum(axis=-1, keepdims=True)


def feather(mask: np.ndarray, radius: int) -> np.ndarray:
    """Soften the edges of an (H, W) float32 mask with a ``radius`` px Gaussian, within [0, 1]."""
    if radius <= 0:
        return mask
    size = 2 * radius + 1
    blurred = cv2.GaussianBlur(mask, (size, size), radius / 2.0, borderType=cv2.BORDER_REFLECT)
    return np.clip(blurred, 0.0, 1.0)


class KeyedMaskSource(MaskSource):
    """A mask source whose raw masks get the shared invert and feather settings."""

    @abstractmethod
    def raw(
        self, frames: np.ndarray, settings: Mapping[str, Any], alpha: np.ndarray | None
    ) -> np.ndarray:
        """Return the raw (T, H, W) float32 masks in [0, 1] before invert and feather."""

    def __call__(
        self, frames: np.ndarray, settings: Mapping[str, Any], alpha: np.ndarray | None = None
    ) -> np.ndarray:
        check_frames(frames)
        masks = np.ascontiguousarray(self.raw(frames, settings, alpha), dtype=np.float32)
        if get_bool(settings, "mask_invert"):
            masks = 1.0 - masks
        radius = get_int(settings, "mask_feather", 0, 64)
        if radius > 0:
            masks = np.stack([feather(m, radius) for m in masks])
        return masks


class LumaMask(KeyedMaskSource):
    """Generate where the luma (Rec. 601, 0-1) is above ``mask_threshold``."""

    name = "luma"

    def raw(
        self, frames: np.ndarray, settings: Mapping[str, Any], alpha: np.ndarray | None
    ) -> np.ndarray:
        threshold = get_float(settings, "mask_threshold")
        luma = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])
        return (luma.astype(np.float32) > threshold * 255.0).astype(np.float32)


class ChromaMask(KeyedMaskSource):
    """Generate where the colour is near ``mask_key_color`` (a green screen, say).

    Colours are compared by rg chromaticity (the share of red and green in R + G + B), so a
    shadow on the screen keys like its lit part; pixels closer than ``mask_threshold`` key. For
    scale: pure green to grey is 0.75, to pure red 1.41; a dim green screen stays within 0.35.
    The test runs once per colour of a 6-bit-per-channel table, rebuilt when the settings change.
    """

    name = "chroma"

    def __init__(self) -> None:
        self._table_key: tuple[str, float] | None = None
        self._table = np.zeros(1 << 18, dtype=np.float32)

    def _lookup(self, key_color: str, threshold: float) -> np.ndarray:
        if self._table_key != (key_color, threshold):
            key = chromaticity(np.array(parse_hex_color(key_color)))
            levels = np.arange(64) * 4 + 2  # the centre of each 6-bit bin
            grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1)
            dist = np.linalg.norm(chromaticity(grid.reshape(-1, 3)) - key, axis=1)
            self._table = (dist < threshold).astype(np.float32)
            self._table_key = (key_color, threshold)
        return self._table

    def raw(
        self, frames: np.ndarray, settings: Mapping[str, Any], alpha: np.ndarray | None
    ) -> np.ndarray:
        key_color = get_str(settings, "mask_key_color")
        table = self._lookup(key_color, get_float(settings, "mask_threshold"))
        q = (frames >> 2).astype(np.int32)
        index = (q[..., 0] << 12) | (q[..., 1] << 6) | q[..., 2]
        return np.take(table, index)


class AlphaMask(KeyedMaskSource):
    """The input's own alpha channel, alpha / 255 (opaque = generate)."""

    name = "alpha"

    def raw(
        self, frames: np.ndarray, settings: Mapping[str, Any], alpha: np.ndarray | None
    ) -> np.ndarray:
        if alpha is None:
            raise ValueError(
                "mask_source 'alpha' needs an input with an alpha channel (RGBA), "
                "but the source delivered RGB frames"
            )
        if alpha.shape != frames.shape[:3]:
            raise ValueError(f"alpha shape {alpha.shape} does not match frames {frames.shape[:3]}")
        return alpha.astype(np.float32) * (1.0 / 255.0)


class ImageMask(KeyedMaskSource):
    """A still mask image (white = generate), crop-to-filled to the frames' size.

    ``mask_image`` is passed through ``resolve_path`` (the engine confines it to its media
    folders); the image is reloaded whenever the setting or the frame size changes.
    """

    name = "image"

    def __init__(self, resolve_path: Callable[[str], Path] = Path) -> None:
        self._resolve_path = resolve_path
        self._key: tuple[str, int, int] | None = None
        self._mask: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the loaded image so the next call reads the file again."""
        self._key = None
        self._mask = None

    def _load(self, value: str, width: int, height: int) -> np.ndarray:
        if not value:
            raise ValueError("mask_source 'image' needs the mask_image setting (a file name)")
        path = Path(self._resolve_path(value))
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise FileNotFoundError(f"mask image not found or unreadable: {path}")
        fitted = crop_to_fill(image[:, :, None], width, height)[:, :, 0]
        return fitted.astype(np.float32) * (1.0 / 255.0)

    def raw(
        self, frames: np.ndarray, settings: Mapping[str, Any], alpha: np.ndarray | None
    ) -> np.ndarray:
        value = get_str(settings, "mask_image")
        key = (value, frames.shape[2], frames.shape[1])
        if key != self._key or self._mask is None:
            self._mask = self._load(*key)
            self._key = key
        return np.broadcast_to(self._mask, frames.shape[:3])
