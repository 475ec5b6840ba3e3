"""Frame conventions shared by every stage, and the one place where images are resized.

A frame is a ``numpy.ndarray`` of ``uint8``, shape ``(H, W, 3)`` (RGB) or ``(H, W, 4)`` (RGBA,
when a source carries alpha). A chunk is 12 frames: exactly 3 latent frames of the causal model.
"""

from __future__ import annotations

import cv2
import numpy as np

CHUNK_FRAMES = 12
"""Video frames per chunk: 4x temporal compression of the VAE times 3 latent frames."""

LATENT_FRAMES_PER_CHUNK = 3
"""Latent frames per chunk; the KV cache and streaming rely on this never changing."""


def crop_to_fill(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize ``frame`` to ``width`` x ``height`` by scaling to cover and centre-cropping.

    Never pads. Keeps the channel count (RGB stays RGB, RGBA stays RGBA) and returns a
    C-contiguous ``uint8`` array; a frame already at the target size is returned as it is.
    """
    if frame.ndim != 3 or frame.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an (H, W, C) frame with C in 1, 3, 4, got shape {frame.shape}")
    src_h, src_w = frame.shape[:2]
    if (src_w, src_h) == (width, height):
        return np.ascontiguousarray(frame)
    scale = max(width / src_w, height / src_h)
    # Round up so the scaled image always covers the target before cropping.
    scaled_w = max(width, int(np.ceil(src_w * scale - 1e-6)))
    scaled_h = max(height, int(np.ceil(src_h * scale - 1e-6)))
    interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    resized = cv2.resize(frame, (scaled_w, scaled_h), interpolation=interpolation)
    if resized.ndim == 2:  # cv2 drops a single channel axis
        resized = resized[:, :, None]
    x0 = (scaled_w - width) // 2
    y0 = (scaled_h - height) // 2
    return np.ascontiguousarray(resized[y0 : y0 + height, x0 : x0 + width])


def to_rgb(frame: np.ndarray) -> np.ndarray:
    """Drop the alpha channel of an RGBA frame (RGB frames are returned unchanged)."""
    return frame[:, :, :3] if frame.shape[2] == 4 else frame
