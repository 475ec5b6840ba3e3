"""Pixel-format conversions shared by the bridges (plain numpy / OpenCV, tested everywhere).

Every function takes and returns ``uint8`` arrays; outputs are C-contiguous unless said otherwise.
"""

from __future__ import annotations

import cv2
import numpy as np


def unpad_rows(buffer: np.ndarray, width: int, height: int, channels: int, stride: int) -> np.ndarray:
    """View a flat buffer whose rows are ``stride`` bytes apart as an ``(H, W, C)`` image.

    No copy: the result is a strided view that skips the row padding.
    """
    needed = stride * (height - 1) + width * channels
    if stride < width * channels or buffer.size < needed:
        raise ValueError(
            f"buffer of {buffer.size} bytes cannot hold {width}x{height}x{channels} with stride {stride}"
        )
    flat = buffer.reshape(-1)
    return np.lib.stride_tricks.as_strided(
        flat, shape=(height, width, channels), strides=(stride, channels, 1), writeable=False
    )


def bgra_to_rgb(frame: np.ndarray) -> np.ndarray:
    """BGRA or BGRX -> RGB (one copy)."""
    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_BGRA2RGB)


def rgba_to_rgb(frame: np.ndarray) -> np.ndarray:
    """RGBA or RGBX -> RGB (one copy)."""
    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGBA2RGB)


def rgb_to_rgba(frame: np.ndarray, out: np.ndarray | None = None, alpha: int = 255) -> np.ndarray:
    """RGB -> RGBA with constant ``alpha``, written into ``out`` when given (no allocation)."""
    h, w = frame.shape[:2]
    if out is None:
        out = np.empty((h, w, 4), np.uint8)
    out[:, :, :3] = frame[:, :, :3]
    out[:, :, 3] = alpha
    return out


def rgb_to_bgra(frame: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """RGB -> BGRA with opaque alpha, written into ``out`` when given."""
    h, w = frame.shape[:2]
    if out is None:
        out = np.empty((h, w, 4), np.uint8)
    cv2.cvtColor(np.ascontiguousarray(frame[:, :, :3]), cv2.COLOR_RGB2BGRA, dst=out)
    return out


def uyvy_to_rgb(buffer: np.ndarray, width: int, height: int, stride: int | None = None) -> np.ndarray:
    """UYVY 4:2:2 (``U0 Y0 V0 Y1`` per pixel pair, BT.601 as NDI sends it) -> RGB.

    ``buffer`` is the flat frame (or an ``(H, W, 2)`` array); ``stride`` defaults to ``2 * width``.
    """
    stride = 2 * width if stride is None else stride
    packed = unpad_rows(np.asarray(buffer, np.uint8), width, height, 2, stride)
    return cv2.cvtColor(np.ascontiguousarray(packed), cv2.COLOR_YUV2RGB_UYVY)


def rgb_to_uyvy(frame: np.ndarray) -> np.ndarray:
    """RGB -> UYVY (``(H, W, 2)``); the inverse of :func:`uyvy_to_rgb`, used by tests and senders."""
    yuv = cv2.cvtColor(np.ascontiguousarray(frame[:, :, :3]), cv2.COLOR_RGB2YUV).astype(np.int16)
    y = yuv[:, :, 0]
    u = ((yuv[:, 0::2, 1] + yuv[:, 1::2, 1] + 1) // 2).astype(np.uint8)
    v = ((yuv[:, 0::2, 2] + yuv[:, 1::2, 2] + 1) // 2).astype(np.uint8)
    out = np.empty(frame.shape[:2] + (2,), np.uint8)
    out[:, :, 1] = y
    out[:, 0::2, 0] = u
    out[:, 1::2, 0] = v
    return out


def flip_vertical(frame: np.ndarray) -> np.ndarray:
    """Flip rows (OpenGL textures are bottom-up); returns a view, no copy."""
    return frame[::-1]


def to_rgb(
    buffer: np.ndarray,
    width: int,
    height: int,
    layout: str,
    stride: int | None = None,
    flip: bool = False,
) -> np.ndarray:
    """Turn a raw frame buffer into a contiguous ``(H, W, 3)`` RGB frame.

    ``layout`` is one of ``RGBA``, ``RGBX``, ``BGRA``, ``BGRX``, ``RGB``, ``BGR``, ``UYVY``;
    ``stride`` is the row pitch in bytes (default: tightly packed); ``flip`` turns a bottom-up
    (OpenGL) image upright. Packed upright buffers take one copy, padded or flipped ones two.
    """
    layout = layout.upper()
    if layout == "UYVY":
        rgb = uyvy_to_rgb(buffer, width, height, stride)
        return np.ascontiguousarray(rgb[::-1]) if flip else rgb
    channels = {"RGBA": 4, "RGBX": 4, "BGRA": 4, "BGRX": 4, "RGB": 3, "BGR": 3}.get(layout)
    if channels is None:
        raise ValueError(f"unsupported pixel layout {layout!r}")
    image = unpad_rows(np.asarray(buffer, np.uint8), width, height, channels,
                       width * channels if stride is None else stride)
    if flip:
        image = image[::-1]
    if layout == "RGB":
        return np.ascontiguousarray(image)
    code = {
        "RGBA": cv2.COLOR_RGBA2RGB,
        "RGBX": cv2.COLOR_RGBA2RGB,
        "BGRA": cv2.COLOR_BGRA2RGB,
        "BGRX": cv2.COLOR_BGRA2RGB,
        "BGR": cv2.COLOR_BGR2RGB,
    }[layout]
    if image.strides[0] != width * channels or flip:
        image = np.ascontiguousarray(image)  # cv2 needs plain row pitch; copy only when padded/flipped
    return cv2.cvtColor(image, code)
