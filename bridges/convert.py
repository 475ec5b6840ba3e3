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


_KR_KB = {"bt709": (0.2126, 0.0722), "bt601": (0.299, 0.114)}


def _yuv_to_rgb_matrix(matrix: str) -> np.ndarray:
    """3x4 affine matrix: limited-range Y'CbCr (Y 16..235, C 16..240) -> full-range RGB."""
    try:
        kr, kb = _KR_KB[matrix]
    except KeyError:
        raise ValueError(f"matrix is one of {sorted(_KR_KB)}, got {matrix!r}") from None
    kg = 1.0 - kr - kb
    ys, cs = 255.0 / 219.0, 255.0 / 224.0
    m = np.array(
        [
            [ys, 0.0, 2.0 * (1.0 - kr) * cs],
            [ys, -2.0 * (1.0 - kb) * kb / kg * cs, -2.0 * (1.0 - kr) * kr / kg * cs],
            [ys, 2.0 * (1.0 - kb) * cs, 0.0],
        ]
    )
    offset = -m @ np.array([16.0, 128.0, 128.0])
    return np.hstack([m, offset[:, None]]).astype(np.float32)


def uyvy_to_rgb(
    buffer: np.ndarray, width: int, height: int, stride: int | None = None, matrix: str = "bt709"
) -> np.ndarray:
    """UYVY 4:2:2 (``U0 Y0 V0 Y1`` per pixel pair, limited range) -> RGB.

    ``matrix`` is ``bt709`` (what NDI sends, checked against a real NDI receiver) or ``bt601``.
    ``buffer`` is the flat frame or an ``(H, W, 2)`` array; ``stride`` defaults to ``2 * width``.
    Chroma is repeated to full width (nearest), then one SIMD affine transform does the matrix.
    """
    stride = 2 * width if stride is None else stride
    packed = unpad_rows(np.asarray(buffer, np.uint8), width, height, 2, stride)
    luma = packed[:, :, 1]
    cb = np.repeat(packed[:, 0::2, 0], 2, axis=1)
    cr = np.repeat(packed[:, 1::2, 0], 2, axis=1)
    return cv2.transform(cv2.merge([np.ascontiguousarray(luma), cb, cr]), _yuv_to_rgb_matrix(matrix))


def rgb_to_uyvy(frame: np.ndarray, matrix: str = "bt709") -> np.ndarray:
    """RGB -> UYVY ``(H, W, 2)`` (limited range, chroma averaged over pixel pairs).

    The inverse of :func:`uyvy_to_rgb`; used by tests and by senders that want 4:2:2.
    """
    full = np.vstack([_yuv_to_rgb_matrix(matrix), [0.0, 0.0, 0.0, 1.0]])
    inverse = np.linalg.inv(full)[:3].astype(np.float32)
    yuv = cv2.transform(np.ascontiguousarray(frame[:, :, :3]), inverse).astype(np.uint16)
    out = np.empty(frame.shape[:2] + (2,), np.uint8)
    out[:, :, 1] = yuv[:, :, 0]
    out[:, 0::2, 0] = (yuv[:, 0::2, 1] + yuv[:, 1::2, 1] + 1) // 2
    out[:, 1::2, 0] = (yuv[:, 0::2, 2] + yuv[:, 1::2, 2] + 1) // 2
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
