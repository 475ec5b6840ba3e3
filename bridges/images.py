"""``images:DIR``: a folder of still images played in name order at the engine fps, looping."""

from __future__ import annotations

import logging
import os
import time

import cv2
import numpy as np

from vacelive.bridges.base import BridgeError, BridgeState, Source
from vacelive.bridges.pacing import FrameClock
from vacelive.bridges.spec import Spec

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
"""File name endings the folder source plays (case-insensitive); other files are ignored."""


def list_images(folder: str) -> list[str]:
    """The image files of ``folder`` sorted by name (natural order for zero-padded numbering)."""
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS))
    return [os.path.join(folder, n) for n in names]


class ImagesSource(Source):
    """Plays every image of a folder in name order at ``fps``, looping; images keep their size.

    The listing is read at ``open()``. An image that cannot be decoded is skipped with a warning;
    a folder with none readable reads as ``None`` (state FAILED).
    """

    def __init__(self, name: str, folder: str, fps: float, loop: bool = True) -> None:
        self.name = name
        self.folder = folder
        self.loop = loop
        self._fps = fps
        self._clock = FrameClock(fps)
        self._files: list[str] = []
        self._index = 0

    @classmethod
    def from_spec(cls, spec: Spec, *, width: int, height: int, fps: float) -> "ImagesSource":
        """Build from ``images:DIR[?loop=0&fps=N]`` (``fps`` defaults to the engine's)."""
        if not spec.arg:
            raise BridgeError(f"{spec.text!r}: give a folder, e.g. images:stills/")
        return cls(spec.text, spec.arg, spec.number("fps", fps), loop=spec.flag("loop", True))

    @property
    def fps(self) -> float:
        """The rate images are shown at."""
        return self._fps

    def open(self) -> None:
        """List the folder; :class:`BridgeError` if it is missing or holds no images."""
        if not os.path.isdir(self.folder):
            self.state = BridgeState.FAILED
            raise BridgeError(f"{self.name}: no such folder: {self.folder}")
        self._files = list_images(self.folder)
        if not self._files:
            self.state = BridgeState.FAILED
            raise BridgeError(f"{self.name}: no images ({', '.join(IMAGE_EXTENSIONS)}) in {self.folder}")
        self._index = 0
        self._clock.reset()
        self.state = BridgeState.LIVE

    def read(self, timeout: float = 0.1) -> np.ndarray | None:
        """Return the next image when due, or ``None`` (after ``timeout``, or past the end with loop=0)."""
        if self.state is not BridgeState.LIVE:
            time.sleep(timeout)
            return None
        if not self._clock.wait(timeout):
            return None
        for _ in range(len(self._files)):
            if self._index >= len(self._files):
                if not self.loop:
                    return None
                self._index = 0
            path = self._files[self._index]
            self._index += 1
            image = cv2.imread(path, cv2.IMREAD_COLOR)
            if image is not None:
                return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            log.warning("%s: cannot decode %s, skipping it", self.name, path)
        self.state = BridgeState.FAILED
        return None

    def close(self) -> None:
        """Forget the listing; safe to call twice."""
        self._files = []
        self.state = BridgeState.CLOSED
