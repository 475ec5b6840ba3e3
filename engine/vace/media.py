"""Reference and keyframe images: loaded from the media folder, resized with ``crop_to_fill``.

A :class:`MediaSlot` follows one path parameter: it (re)loads the image only when the value in
the chunk's snapshot changes. A missing or unreadable file is logged once and the slot keeps
its last good image (the stream goes on); an empty value clears the slot.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from vacelive.engine.frames import crop_to_fill

log = logging.getLogger(__name__)


class MediaError(ValueError):
    """An image could not be resolved or read."""


def load_image(path: Path, width: int, height: int) -> np.ndarray:
    """Read ``path`` as RGB and crop-to-fill it to ``width`` x ``height``: (H, W, 3) uint8."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise MediaError(f"cannot read image {path}")
    return crop_to_fill(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), width, height)


class MediaSlot:
    """The image named by one path parameter (``reference_1``, ``keyframe_last``, ...).

    ``resolver`` maps a parameter value to a file (e.g. ``ParamStore.resolve_media``, which
    confines it to the media folder) and may raise.
    """

    def __init__(self, name: str, resolver: Callable[[str], Path], width: int, height: int) -> None:
        self.name = name
        self.resolver = resolver
        self.width, self.height = width, height
        self.value = ""  # the value last asked for
        self.image: np.ndarray | None = None  # (H, W, 3) uint8, the last good image
        self.version = 0  # bumped whenever ``image`` changes
        self.error: str | None = None  # why the last asked-for value could not be loaded

    def update(self, value: str) -> np.ndarray | None:
        """The slot's image for the parameter ``value`` (loading it if the value changed)."""
        if value == self.value:
            return self.image
        self.value = value
        if not value:
            self.image, self.error = None, None
            self.version += 1
            return None
        try:
            image = load_image(self.resolver(value), self.width, self.height)
        except (OSError, ValueError) as exc:  # PathRefused and MediaError are ValueErrors
            self.error = f"{self.name}: {exc}"
            kept = "keeping the previous image" if self.image is not None else "no image"
            log.warning("%s (%s)", self.error, kept)
            return self.image
        self.image, self.error = image, None
        self.version += 1
        return image
