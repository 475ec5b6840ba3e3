"""Defaults of the annotator settings and typed access to the engine's parameter snapshot.

The names and defaults match the engine's parameter registry; a key missing from the snapshot
(as in tests or tools that pass a partial mapping) falls back to its default here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DEFAULTS: dict[str, Any] = {
    "canny_low": 100,
    "canny_high": 200,
    "scribble_width": 4,
    "pose_hands": False,
    "pose_face": False,
    "depth_smoothing": 0.8,
    "flow_method": "dis",
    "mask_invert": False,
    "mask_feather": 4,
    "mask_threshold": 0.5,
    "mask_key_color": "#00ff00",
    "mask_image": "",
}
"""Every setting an annotator or mask source reads, with its default."""


def get_int(settings: Mapping[str, Any], key: str, lo: int, hi: int) -> int:
    """Read ``key`` as an int clamped to [lo, hi] (OSC delivers numbers as floats)."""
    return int(min(max(round(float(settings.get(key, DEFAULTS[key]))), lo), hi))


def get_float(settings: Mapping[str, Any], key: str, lo: float = 0.0, hi: float = 1.0) -> float:
    """Read ``key`` as a float clamped to [lo, hi]."""
    return float(min(max(float(settings.get(key, DEFAULTS[key])), lo), hi))


def get_bool(settings: Mapping[str, Any], key: str) -> bool:
    """Read ``key`` as a bool (OSC delivers 0.0 / 1.0)."""
    return bool(settings.get(key, DEFAULTS[key]))


def get_str(settings: Mapping[str, Any], key: str) -> str:
    """Read ``key`` as a string."""
    return str(settings.get(key, DEFAULTS[key]))


def parse_hex_color(value: str) -> tuple[int, int, int]:
    """Parse ``#rrggbb`` (or ``rrggbb``, or ``#rgb``) into an RGB tuple of ints."""
    text = value.strip().lstrip("#")
    if len(text) == 3:
        text = "".join(c * 2 for c in text)
    if len(text) != 6:
        raise ValueError(f"expected a hex colour like '#00ff00', got {value!r}")
    try:
        return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)
    except ValueError as exc:
        raise ValueError(f"expected a hex colour like '#00ff00', got {value!r}") from exc


def check_frames(frames: Any) -> None:
    """Raise ``ValueError`` unless ``frames`` is a (T, H, W, 3) uint8 array."""
    shape = getattr(frames, "shape", None)
    dtype = getattr(frames, "dtype", None)
    if shape is None or len(shape) != 4 or shape[3] != 3 or str(dtype) != "uint8":
        raise ValueError(f"expected (T, H, W, 3) uint8 frames, got shape {shape} dtype {dtype}")
