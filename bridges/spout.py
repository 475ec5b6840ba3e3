"""``spout:NAME``: Spout receiver and sender through SpoutGL (Windows only).

SpoutGL shares DirectX textures through OpenGL, so each bridge makes its own hidden OpenGL
context with ``createOpenGL()``. Frames cross as RGBA/BGRA pixel buffers: the receiver asks for
BGRA when the sender's DXGI format is 87 (``DXGI_FORMAT_B8G8R8A8_UNORM``, TouchDesigner's and
most DirectX senders') to skip a swizzle in Spout, RGBA otherwise; the sender sends RGB rows as
they are (``GL_RGB``), no conversion. Images are exchanged top-down (``invert=False``).
"""

from __future__ import annotations

import time

import numpy as np

from vacelive.bridges.base import BridgeError, BridgeState, Sink, Source
from vacelive.bridges.convert import to_rgb
from vacelive.bridges.optional import require
from vacelive.bridges.spec import Spec

GL_RGB = 0x1907
GL_RGBA = 0x1908
GL_BGRA_EXT = 0x80E1
DXGI_FORMAT_R8G8B8A8_UNORM = 28
DXGI_FORMAT_B8G8R8A8_UNORM = 87
DXGI_FORMAT_B8G8R8X8_UNORM = 88
POLL_S = 0.004
"""Polling step when reading the active sender (frame sync needs a sender name)."""


def receive_layout(dxgi_format: int) -> tuple[int, str]:
    """The GL format to receive a sender of ``dxgi_format`` in, and the pixel layout it yields."""
    if dxgi_format in (DXGI_FORMAT_B8G8R8A8_UNORM, DXGI_FORMAT_B8G8R8X8_UNORM):
        return GL_BGRA_EXT, "BGRA"
    return GL_RGBA, "RGBA"


def _spoutgl(bridge: Source | Sink):
    """Import the package, marking ``bridge`` FAILED when this platform cannot run it."""
    return require("SpoutGL", platform="win32", package="SpoutGL", what="Spout", bridge=bridge)


class SpoutSource(Source):
    """Receives the Spout sender ``NAME``, or the active sender when NAME is empty (``spout:``).

    CONNECTING until the sender exists, LIVE while it sends, LOST when it goes away (SpoutGL
    reconnects to the same name by itself when it comes back).
    """

    def __init__(self, name: str, sender_name: str) -> None:
        self.name = name
        self.sender_name = sender_name
        self.frames = 0
        self._receiver = None
        self._buffer: np.ndarray | None = None
        self._layout = ("RGBA", GL_RGBA)

    @classmethod
    def from_spec(cls, spec: Spec, *, width: int, height: int, fps: float) -> "SpoutSource":
        """Build from ``spout:NAME`` (``spout:`` = the active sender)."""
        return cls(spec.text, spec.arg)

    def open(self) -> None:
        """Create the receiver and its hidden OpenGL context."""
        spout = _spoutgl(self)
        receiver = spout.SpoutReceiver()
        if not receiver.createOpenGL():
            self.state = BridgeState.FAILED
            raise BridgeError(f"{self.name}: SpoutGL could not create an OpenGL context")
        if self.sender_name:
            receiver.setReceiverName(self.sender_name)
        self._receiver = receiver
        self.state = BridgeState.CONNECTING

    def visible(self) -> list[str] | None:
        """The Spout senders on this machine now."""
        return sorted(self._receiver.getSenderList()) if self._receiver is not None else []

    def read(self, timeout: float = 0.1) -> np.ndarray | None:
        """Return the sender's next frame, or ``None`` when none came within ``timeout``."""
        receiver = self._receiver
        if receiver is None:
            time.sleep(timeout)
            return None
        start = time.monotonic()
        if self.sender_name:  # frame sync: wait for the sender's next frame instead of polling
            receiver.waitFrameSync(self.sender_name, max(0, int(timeout * 1000)))
        gl_format = GL_RGBA if self._buffer is None else self._layout[1]
        ok = receiver.receiveImage(self._buffer, gl_format, False, 0)
        if receiver.isUpdated():  # first contact or the sender changed size/format
            width, height = receiver.getSenderWidth(), receiver.getSenderHeight()
            gl_format, layout = receive_layout(receiver.getSenderFormat())
            self._layout = (layout, gl_format)
            self._buffer = np.empty(height * width * 4, np.uint8)
            return None
        if not ok or self._buffer is None:
            if self.state is BridgeState.LIVE:
                self.state = BridgeState.LOST
            time.sleep(max(0.0, timeout - (time.monotonic() - start)))  # no sender: don't spin
            return None
        if not receiver.isFrameNew():
            if not self.sender_name:  # no frame sync with the active sender: poll gently
                time.sleep(min(timeout, POLL_S))
            return None
        self.state = BridgeState.LIVE
        self.frames += 1
        width, height = receiver.getSenderWidth(), receiver.getSenderHeight()
        return to_rgb(self._buffer, width, height, self._layout[0])

    def close(self) -> None:
        """Release the receiver and its OpenGL context; safe to call twice."""
        if self._receiver is not None:
            self._receiver.releaseReceiver()
            self._receiver.closeOpenGL()
        self._receiver = None
        self.state = BridgeState.CLOSED


class SpoutSink(Sink):
    """Publishes frames as the Spout sender ``NAME`` and signals frame sync to receivers."""

    def __init__(self, name: str, sender_name: str) -> None:
        self.name = name
        self.sender_name = sender_name
        self.frames = 0
        self._sender = None

    @classmethod
    def from_spec(cls, spec: Spec) -> "SpoutSink":
        """Build from ``spout:NAME``."""
        if not spec.arg:
            raise BridgeError(f"{spec.text!r}: give the Spout sender name, e.g. spout:vacelive")
        return cls(spec.text, spec.arg)

    def open(self, width: int, height: int, fps: float) -> None:
        """Create the sender and its hidden OpenGL context."""
        spout = _spoutgl(self)
        sender = spout.SpoutSender()
        if not sender.createOpenGL():
            self.state = BridgeState.FAILED
            raise BridgeError(f"{self.name}: SpoutGL could not create an OpenGL context")
        sender.setSenderName(self.sender_name)
        self._sender = sender
        self.state = BridgeState.LIVE

    def write(self, frame: np.ndarray) -> None:
        """Send one RGB frame (its rows as they are: GL_RGB, no conversion)."""
        if self._sender is None:
            raise BridgeError(f"{self.name}: write() before open()")
        rgb = np.ascontiguousarray(frame[:, :, :3])
        height, width = rgb.shape[:2]
        if not self._sender.sendImage(rgb, width, height, GL_RGB, False, 0):
            raise BridgeError(f"{self.name}: Spout sendImage failed")
        self._sender.setFrameSync(self.sender_name)
        self.frames += 1

    def close(self) -> None:
        """Release the sender; safe to call twice."""
        if self._sender is not None:
            self._sender.releaseSender()
            self._sender.closeOpenGL()
        self._sender = None
        self.state = BridgeState.CLOSED
