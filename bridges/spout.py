"""``spout:NAME``: Spout receiver and sender through SpoutGL (Windows only).

SpoutGL shares DirectX textures through OpenGL. ``createOpenGL()`` makes a hidden OpenGL context
current on the calling thread only, and without a current context SpoutGL falls back to slow
DirectX CPU staging; the context's hidden window can only be destroyed by the thread that made
it. The engine opens a bridge on one thread (the main one, or the reload thread) and reads or
writes it on another (the source reader, a sink writer), so each bridge here owns one
:class:`GLThread` that makes every SpoutGL call: create the context, receive or send, release,
close the context. Whoever calls ``open``/``read``/``write``/``close``, the context is current
where it is used and is closed where it was made.

Frames cross as RGBA/BGRA pixel buffers: the receiver asks for BGRA when the sender's DXGI format
is 87 (``DXGI_FORMAT_B8G8R8A8_UNORM``, TouchDesigner's and most DirectX senders') to skip a swizzle
in Spout, RGBA otherwise; the sender sends RGB rows as they are (``GL_RGB``), no conversion.
Images are exchanged top-down (``invert=False``).

Receiving: ``waitFrameSync`` blocks until a sender that signals frame sync sends, but returns at
once (false) for a sender that does not, and ``receiveImage`` then returns true whether or not a
new frame came (``isFrameNew()`` tells). So unless frame sync has just signalled a frame, two
receive attempts are at least :data:`POLL_S` apart, and nothing new means waiting: a named sender
without frame sync is polled every 4 ms, never spun on.

Names: a sender whose name is already taken (a vacelive that crashed, another program) is renamed
``NAME_1`` by Spout, which a receiver set to ``NAME`` never finds; the sink warns when that
happens and keeps the name Spout gave it in ``published_name``. (SpoutGL binds
``getSenderName()`` to the width getter, so the names here come from ``getSenderList()``.)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

from vacelive.bridges.base import BridgeError, BridgeState, Sink, Source
from vacelive.bridges.convert import to_rgb
from vacelive.bridges.optional import require
from vacelive.bridges.spec import Spec

log = logging.getLogger(__name__)

GL_RGB = 0x1907
GL_RGBA = 0x1908
GL_BGRA_EXT = 0x80E1
DXGI_FORMAT_R8G8B8A8_UNORM = 28
DXGI_FORMAT_B8G8R8A8_UNORM = 87
DXGI_FORMAT_B8G8R8X8_UNORM = 88
POLL_S = 0.004
"""Least time between two receive attempts: the polling step for senders without frame sync."""

T = TypeVar("T")


def receive_layout(dxgi_format: int) -> tuple[int, str]:
    """The GL format to receive a sender of ``dxgi_format`` in, and the pixel layout it yields."""
    if dxgi_format in (DXGI_FORMAT_B8G8R8A8_UNORM, DXGI_FORMAT_B8G8R8X8_UNORM):
        return GL_BGRA_EXT, "BGRA"
    return GL_RGBA, "RGBA"


def _spoutgl(bridge: Source | Sink):
    """Import the package, marking ``bridge`` FAILED when this platform cannot run it."""
    return require("SpoutGL", platform="win32", package="SpoutGL", what="Spout", bridge=bridge)


def sender_names(spout) -> list[str]:
    """The Spout senders registered on this machine now (``getSenderList()``, SpoutGL >= 0.1.0)."""
    return sorted(str(name) for name in spout.SpoutReceiver().getSenderList())


def renamed_by_spout(name: str, names: list[str]) -> list[str]:
    """The names Spout gives a second sender called ``name`` (``name_1``, ``name_2``, ...) in ``names``."""
    prefix = name + "_"
    return [n for n in names if n.startswith(prefix) and n[len(prefix):].isdigit()]


class GLThread:
    """The one thread that owns a bridge's hidden OpenGL context and runs all its SpoutGL calls.

    A single-worker executor: its one thread lives from the first :meth:`call` to :meth:`stop`,
    so every call runs on the same thread, in order. :meth:`call` blocks for the result and
    re-raises the call's exception in the caller.
    """

    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        return self._executor.submit(fn, *args).result()

    def stop(self) -> None:
        """Let the thread finish what it was given and end; later calls raise ``RuntimeError``."""
        self._executor.shutdown(wait=True)


class SpoutSource(Source):
    """Receives the Spout sender ``NAME``, or the active sender when NAME is empty (``spout:``).

    CONNECTING until the sender exists, LIVE while it sends, LOST when it goes away (SpoutGL
    reconnects to the same name by itself when it comes back).
    """

    def __init__(self, name: str, sender_name: str) -> None:
        self.name = name
        self.sender_name = sender_name
        self.frames = 0
        self._gl: GLThread | None = None
        self._receiver = None
        self._buffer: np.ndarray | None = None
        self._layout = ("RGBA", GL_RGBA)
        self._last_try = float("-inf")

    @classmethod
    def from_spec(cls, spec: Spec, *, width: int, height: int, fps: float) -> "SpoutSource":
        """Build from ``spout:NAME`` (``spout:`` = the active sender)."""
        return cls(spec.text, spec.arg)

    def open(self) -> None:
        """Create the receiver and its hidden OpenGL context, both on this bridge's GL thread."""
        spout = _spoutgl(self)
        gl = GLThread(f"spout-in-{self.sender_name or 'active'}")
        try:
            self._receiver = gl.call(self._create, spout)
        except BaseException:
            gl.stop()
            raise
        self._gl = gl
        self.state = BridgeState.CONNECTING

    def _create(self, spout):
        receiver = spout.SpoutReceiver()
        if not receiver.createOpenGL():
            self.state = BridgeState.FAILED
            raise BridgeError(f"{self.name}: SpoutGL could not create an OpenGL context "
                              "(update the GPU driver; Spout needs an NVIDIA, AMD or Intel GPU with OpenGL 4)")
        if self.sender_name:
            receiver.setReceiverName(self.sender_name)
        return receiver

    def visible(self) -> list[str] | None:
        """The Spout senders on this machine now."""
        if self._gl is None or self._receiver is None:
            return []
        receiver = self._receiver
        return self._gl.call(lambda: sorted(str(n) for n in receiver.getSenderList()))

    def read(self, timeout: float = 0.1) -> np.ndarray | None:
        """Return the sender's next frame, or ``None`` when none came within ``timeout``."""
        if self._gl is None:
            time.sleep(timeout)
            return None
        return self._gl.call(self._receive, timeout)

    def _receive(self, timeout: float) -> np.ndarray | None:
        """On the GL thread: wait up to ``timeout`` for a new frame, never spinning."""
        receiver = self._receiver
        deadline = time.monotonic() + timeout
        came_empty = False
        while True:
            synced = False
            if self.sender_name:  # blocks only for senders that signal frame sync
                remaining_ms = int(max(0.0, deadline - time.monotonic()) * 1000)
                synced = bool(receiver.waitFrameSync(self.sender_name, remaining_ms))
            if not synced or came_empty:  # polling: at most one receive attempt per POLL_S
                pause = self._last_try + POLL_S - time.monotonic()
                if pause > 0:
                    time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            self._last_try = time.monotonic()
            gl_format = GL_RGBA if self._buffer is None else self._layout[1]
            ok = receiver.receiveImage(self._buffer, gl_format, False, 0)
            if receiver.isUpdated():  # first contact or the sender changed size/format
                width, height = receiver.getSenderWidth(), receiver.getSenderHeight()
                gl_format, layout = receive_layout(receiver.getSenderFormat())
                self._layout = (layout, gl_format)
                self._buffer = np.empty(height * width * 4, np.uint8)
            elif ok and self._buffer is not None and receiver.isFrameNew():
                self.state = BridgeState.LIVE
                self.frames += 1
                width, height = receiver.getSenderWidth(), receiver.getSenderHeight()
                return to_rgb(self._buffer, width, height, self._layout[0])
            elif not ok:
                if self.state is BridgeState.LIVE:
                    self.state = BridgeState.LOST
                time.sleep(max(0.0, deadline - time.monotonic()))  # no sender: wait out the timeout
                return None
            if time.monotonic() >= deadline:
                return None
            came_empty = True

    def close(self) -> None:
        """Release the receiver and close its OpenGL context on the thread that made it; safe
        to call twice."""
        if self._gl is not None:
            receiver, self._receiver = self._receiver, None
            try:
                if receiver is not None:
                    self._gl.call(_release, receiver, receiver.releaseReceiver)
            finally:
                self._gl.stop()
                self._gl = None
        self.state = BridgeState.CLOSED


def _release(bridge, release: Callable[[], Any]) -> None:
    """On the GL thread: release the sender or receiver, then close the context it made."""
    try:
        release()
    finally:
        bridge.closeOpenGL()


class SpoutSink(Sink):
    """Publishes frames as the Spout sender ``NAME`` and signals frame sync to receivers."""

    def __init__(self, name: str, sender_name: str) -> None:
        self.name = name
        self.sender_name = sender_name
        self.frames = 0
        self.published_name: str | None = None
        """The name Spout registered the sender under (``NAME``, or ``NAME_1`` when taken)."""
        self._gl: GLThread | None = None
        self._sender = None
        self._spout = None
        self._names_before: list[str] = []

    @classmethod
    def from_spec(cls, spec: Spec) -> "SpoutSink":
        """Build from ``spout:NAME``."""
        if not spec.arg:
            raise BridgeError(f"{spec.text!r}: give the Spout sender name, e.g. spout:vacelive")
        return cls(spec.text, spec.arg)

    def open(self, width: int, height: int, fps: float) -> None:
        """Create the sender and its hidden OpenGL context, both on this bridge's GL thread;
        warn when another sender already holds the name."""
        spout = _spoutgl(self)
        gl = GLThread(f"spout-out-{self.sender_name}")
        try:
            self._sender = gl.call(self._create, spout)
        except BaseException:
            gl.stop()
            raise
        self._gl, self._spout = gl, spout
        self.state = BridgeState.LIVE

    def _create(self, spout):
        self._names_before = sender_names(spout)
        if self.sender_name in self._names_before:
            log.warning(
                "%s: a Spout sender named %r already exists (another program, or a vacelive that "
                "crashed); Spout will publish this one as %s_1, which a receiver set to %r does not "
                "find. Close the other sender, or pick the new name in TouchDesigner's Syphon Spout In TOP.",
                self.name, self.sender_name, self.sender_name, self.sender_name)
        sender = spout.SpoutSender()
        if not sender.createOpenGL():
            self.state = BridgeState.FAILED
            raise BridgeError(f"{self.name}: SpoutGL could not create an OpenGL context "
                              "(update the GPU driver; Spout needs an NVIDIA, AMD or Intel GPU with OpenGL 4)")
        sender.setSenderName(self.sender_name)
        return sender

    def write(self, frame: np.ndarray) -> None:
        """Send one RGB frame (its rows as they are: GL_RGB, no conversion)."""
        if self._gl is None:
            raise BridgeError(f"{self.name}: write() before open()")
        self._gl.call(self._send, np.ascontiguousarray(frame[:, :, :3]))

    def _send(self, rgb: np.ndarray) -> None:
        height, width = rgb.shape[:2]
        if not self._sender.sendImage(rgb, width, height, GL_RGB, False, 0):
            raise BridgeError(f"{self.name}: Spout sendImage failed")
        self._sender.setFrameSync(self.sender_name)
        self.frames += 1
        if self.published_name is None:  # the sender exists from its first frame on
            self.published_name = self._published_name()

    def _published_name(self) -> str:
        names = sender_names(self._spout)
        if self.sender_name not in self._names_before:
            return self.sender_name
        new = [n for n in renamed_by_spout(self.sender_name, names) if n not in self._names_before]
        published = new[0] if len(new) == 1 else f"{self.sender_name}_1"
        log.warning("%s: Spout published this sender as %r (the name %r was taken): receivers set to "
                    "%r show the other sender", self.name, published, self.sender_name, self.sender_name)
        return published

    def close(self) -> None:
        """Release the sender and close its OpenGL context on the thread that made it; safe to
        call twice."""
        if self._gl is not None:
            sender, self._sender = self._sender, None
            try:
                if sender is not None:
                    self._gl.call(_release, sender, sender.releaseSender)
            finally:
                self._gl.stop()
                self._gl = None
        self.state = BridgeState.CLOSED
