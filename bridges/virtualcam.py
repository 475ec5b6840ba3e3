"""``virtualcam``: a virtual webcam through pyvirtualcam (OBS Virtual Camera, v4l2loopback, Unity Capture)."""

from __future__ import annotations

import numpy as np

from vacelive.bridges.base import BridgeError, BridgeState, Sink
from vacelive.bridges.optional import require
from vacelive.bridges.spec import Spec


class VirtualCamSink(Sink):
    """Publishes RGB frames to the system's virtual camera; ``?device=/dev/video9`` picks one on Linux."""

    def __init__(self, name: str, device: str | None = None) -> None:
        self.name = name
        self.device = device
        self.frames = 0
        self._camera = None

    @classmethod
    def from_spec(cls, spec: Spec) -> "VirtualCamSink":
        """Build from ``virtualcam[?device=PATH]``."""
        return cls(spec.text, spec.options.get("device"))

    def open(self, width: int, height: int, fps: float) -> None:
        """Start the virtual camera; :class:`BridgeError` if pyvirtualcam or a device is missing."""
        pyvirtualcam = require("pyvirtualcam", platform=None, package="pyvirtualcam", what="virtualcam", bridge=self)
        try:
            self._camera = pyvirtualcam.Camera(width, height, fps, fmt=pyvirtualcam.PixelFormat.RGB,
                                               device=self.device)
        except Exception as exc:  # pyvirtualcam raises RuntimeError / ValueError per backend
            self.state = BridgeState.FAILED
            raise BridgeError(
                f"{self.name}: no virtual camera available ({exc}). Install OBS Studio (Windows/macOS, "
                "start its Virtual Camera once) or load v4l2loopback on Linux "
                "(modprobe v4l2loopback exclusive_caps=1)"
            ) from exc
        self.frames = 0
        self.state = BridgeState.LIVE

    def write(self, frame: np.ndarray) -> None:
        """Send one RGB frame (no pacing: the engine's own clock drives it)."""
        if self._camera is None:
            raise BridgeError(f"{self.name}: write() before open()")
        try:
            self._camera.send(np.ascontiguousarray(frame[:, :, :3]))
        except Exception as exc:
            raise BridgeError(f"{self.name}: virtual camera write failed: {exc}") from exc
        self.frames += 1

    def close(self) -> None:
        """Stop the virtual camera; safe to call twice."""
        if self._camera is not None:
            self._camera.close()
        self._camera = None
        self.state = BridgeState.CLOSED
