"""``camera:N``: a local camera through OpenCV's VideoCapture."""

from __future__ import annotations

import logging
import time

import cv2
import numpy as np

from vacelive.bridges.base import BridgeError, BridgeState, Source
from vacelive.bridges.spec import Spec

log = logging.getLogger(__name__)

REOPEN_INTERVAL_S = 1.0
"""How often a lost camera is tried again."""


class CameraSource(Source):
    """Camera ``index`` (0 = the first), asked for the engine size; frames come at its native size.

    A camera that stops delivering (unplugged) goes LOST, reads ``None`` and is reopened every
    :data:`REOPEN_INTERVAL_S` seconds until it answers again.
    """

    def __init__(self, name: str, index: int, width: int, height: int, fps: float) -> None:
        self.name = name
        self.index = index
        self._request = (width, height, fps)
        self._capture: cv2.VideoCapture | None = None
        self._fps: float | None = None
        self._next_reopen = 0.0

    @classmethod
    def from_spec(cls, spec: Spec, *, width: int, height: int, fps: float) -> "CameraSource":
        """Build from ``camera:N``."""
        try:
            index = int(spec.arg or "0")
        except ValueError:
            raise BridgeError(f"{spec.text!r}: the camera is given by its index, e.g. camera:0") from None
        return cls(spec.text, index, width, height, fps)

    @property
    def fps(self) -> float | None:
        """The rate the camera reports (after ``open()``), if it reports one."""
        return self._fps

    def _connect(self) -> bool:
        capture = cv2.VideoCapture(self.index)
        if not capture.isOpened():
            capture.release()
            return False
        width, height, fps = self._request
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        capture.set(cv2.CAP_PROP_FPS, fps)
        reported = capture.get(cv2.CAP_PROP_FPS)
        self._fps = reported if reported and reported > 0 else None
        self._capture = capture
        return True

    def open(self) -> None:
        """Open the camera; :class:`BridgeError` if there is no camera ``index``."""
        if not self._connect():
            self.state = BridgeState.FAILED
            raise BridgeError(f"{self.name}: camera {self.index} could not be opened (none connected, "
                              "in use by another program, or no permission to /dev/video*)")
        self.state = BridgeState.CONNECTING

    def read(self, timeout: float = 0.1) -> np.ndarray | None:
        """Return the camera's next frame (it paces itself), or ``None`` while it is lost."""
        if self.state is BridgeState.CLOSED:
            time.sleep(timeout)
            return None
        if self._capture is None:
            if time.monotonic() < self._next_reopen or not self._connect():
                self._next_reopen = max(self._next_reopen, time.monotonic() + REOPEN_INTERVAL_S)
                time.sleep(timeout)
                return None
        ok, image = self._capture.read()
        if not ok or image is None:
            log.warning("%s: camera stopped delivering; will retry", self.name)
            self._capture.release()
            self._capture = None
            self._next_reopen = time.monotonic() + REOPEN_INTERVAL_S
            self.state = BridgeState.LOST
            return None
        self.state = BridgeState.LIVE
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        """Release the camera; safe to call twice."""
        if self._capture is not None:
            self._capture.release()
        self._capture = None
        self.state = BridgeState.CLOSED
