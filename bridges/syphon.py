"""``syphon:NAME``: Syphon Metal client (source) and server (sink) through syphon-python (macOS).

syphon-python 0.2.0, the current release, needs macOS 12+ and pyobjc 12 (its wheel pins
pyobjc-core ~= 12.2.2); 0.1.1 is the last release for macOS 11 (Python <= 3.12). Both have the
names used here (checked in 0.1.1's source and the 0.2.0 wheel; no Mac ran this code).

Discovery, and what was checked (Syphon-Framework's ``SyphonServerDirectory.m``, syphon-python's
``server_directory.py``, Apple's notification programming guide):

- the framework's shared directory registers for Syphon's distributed notifications (announce,
  retire, update) when the framework loads, asks running servers to announce themselves, and
  changes its server list only in those notification handlers;
- since macOS 10.3 distributed notifications are delivered to the main thread, through its run
  loop: a server that starts later reaches the list only while the main thread runs its run loop;
- syphon-python's ``servers`` pumps the *calling* thread's run loop, then reads the shared
  directory's list (safe from any thread: the framework guards it with a lock).

So this source re-reads the directory on every retry from whatever thread reads it, and makes the
main thread deliver notifications when it can: ``open()`` on the main thread (``Engine.start``)
pumps it until the server is seen (at most :data:`OPEN_DISCOVERY_S`), ``read()`` on the main
thread pumps it each try, and :func:`pump_main_run_loop` is for the main thread's idle loop while
the source is read elsewhere. A source read off the main thread with nobody pumping the main run
loop still finds the servers that were up at ``open()``, and says once in the log that later ones
are not seen.

Textures are read and written with Metal's ``getBytes``/``replaceRegion`` (top-down rows, BGRA8 or
RGBA8 by the texture's pixel format); ``?flip=1`` turns images that arrive upside down. The sink
fills two textures in turn: ``publish_frame_texture`` returns once its blit is submitted, not
done, so refilling the texture just published could tear the frame a client copies; before a
texture is refilled, the blit that last read it is waited for (normally long finished).
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

from vacelive.bridges.base import BridgeError, BridgeState, Sink, Source
from vacelive.bridges.convert import rgb_to_rgba, to_rgb
from vacelive.bridges.optional import require
from vacelive.bridges.spec import Spec

log = logging.getLogger(__name__)

MTL_PIXEL_FORMAT_RGBA8 = 70
MTL_PIXEL_FORMAT_BGRA8 = 80
OPEN_DISCOVERY_S = 0.5
"""How long ``open()`` on the main thread lets already-running servers announce themselves."""
RETRY_S = 0.25
"""How often a source without a server re-reads the directory."""
RUN_LOOP_STEP_S = 0.002
"""One pump of a run loop (``runMode:beforeDate:`` returns on the first event or at this step)."""
TEXTURES = 2
"""Textures the sink fills in turn."""

_open_directories: list = []
"""The directories of open Syphon sources: :func:`pump_main_run_loop` works only while one is open."""
_main_pumped_at = float("-inf")


def on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def texture_layout(pixel_format: int) -> str:
    """The pixel layout of a Metal texture format (BGRA8Unorm or RGBA8Unorm)."""
    if pixel_format == MTL_PIXEL_FORMAT_BGRA8:
        return "BGRA"
    if pixel_format == MTL_PIXEL_FORMAT_RGBA8:
        return "RGBA"
    raise BridgeError(f"Syphon texture pixel format {pixel_format} is not 8-bit RGBA/BGRA")


def _syphon(bridge: Source | Sink):
    """Import the package, marking ``bridge`` FAILED when this platform cannot run it."""
    return require("syphon", platform="darwin", package="syphon-python", what="Syphon", bridge=bridge)


def _pump(directory, seconds: float) -> None:
    """Run the calling thread's run loop for ``seconds`` in steps, never spinning."""
    deadline = time.monotonic() + seconds
    while True:
        started = time.monotonic()
        directory.update_run_loop()  # returns at once when the run loop has no source
        now = time.monotonic()
        if now >= deadline:
            return
        time.sleep(min(deadline - now, max(0.0, RUN_LOOP_STEP_S - (now - started))))


def pump_main_run_loop(seconds: float) -> bool:
    """On the main thread, while a Syphon source is open: run the main run loop for ``seconds`` so
    Syphon's distributed notifications (servers appearing, going) are delivered. Returns whether it
    pumped; elsewhere, or with no Syphon source open, it returns ``False`` at once (no Cocoa import).

    Meant for the main thread's idle loop, e.g. ``while not stopping.wait(0.2):
    pump_main_run_loop(0.05)``.
    """
    global _main_pumped_at
    if not _open_directories or not on_main_thread():
        return False
    _pump(_open_directories[0], seconds)
    _main_pumped_at = time.monotonic()
    return True


class SyphonSource(Source):
    """Receives the Syphon server named ``NAME`` (server name or app name), or the first one."""

    def __init__(self, name: str, server_name: str, flip: bool = False) -> None:
        self.name = name
        self.server_name = server_name
        self.flip = flip
        self.frames = 0
        self._syphon = None
        self._directory = None
        self._client = None
        self._buffer: np.ndarray | None = None
        self._next_scan = 0.0
        self._warned_off_main = False

    @classmethod
    def from_spec(cls, spec: Spec, *, width: int, height: int, fps: float) -> "SyphonSource":
        """Build from ``syphon:NAME[?flip=1]`` (``syphon:`` = the first server found)."""
        return cls(spec.text, spec.arg, flip=spec.flag("flip", False))

    def open(self) -> None:
        """Start server discovery; the server need not exist yet (state CONNECTING). On the main
        thread, the servers already running are given :data:`OPEN_DISCOVERY_S` to announce."""
        self._syphon = _syphon(self)
        directory = self._syphon.SyphonServerDirectory()
        directory.run_loop_interval = RUN_LOOP_STEP_S
        self._directory = directory
        _open_directories.append(directory)
        self.state = BridgeState.CONNECTING
        if on_main_thread():
            deadline = time.monotonic() + OPEN_DISCOVERY_S
            while not self._matching() and time.monotonic() < deadline:
                _pump(directory, 0.05)

    def _matching(self) -> list:
        """The servers that match NAME now (every server for an empty NAME), read afresh."""
        if self.server_name:
            return self._directory.servers_matching_name(name=self.server_name, app_name=self.server_name)
        return self._directory.servers

    def visible(self) -> list[str] | None:
        """The Syphon servers the directory knows now (``app: name``)."""
        if self._directory is None:
            return []
        return sorted(f"{getattr(s, 'app_name', '')}: {getattr(s, 'name', '')}" for s in self._directory.servers)

    def _connect(self) -> bool:
        self._next_scan = time.monotonic() + RETRY_S
        servers = self._matching()
        if servers:
            self._client = self._syphon.SyphonMetalClient(servers[0])
            return True
        if not on_main_thread() and not self._warned_off_main \
                and time.monotonic() - _main_pumped_at > 2.0:
            self._warned_off_main = True
            log.warning("%s: no Syphon server %r yet; read off the main thread, this source sees servers "
                        "that were up when it opened, and later ones only while the main thread runs "
                        "pump_main_run_loop(): start the Syphon sender before the engine", self.name,
                        self.server_name or "(any)")
        return False

    def read(self, timeout: float = 0.1) -> np.ndarray | None:
        """Return the server's newest frame, or ``None`` when none came within ``timeout``."""
        if self._directory is None:
            time.sleep(timeout)
            return None
        deadline = time.monotonic() + timeout
        main = on_main_thread()
        while True:
            if main:
                self._directory.update_run_loop()  # delivers Syphon's notifications here
            if self._client is not None and not self._client.is_valid:
                self._client.stop()
                self._client = None
                self.state = BridgeState.LOST
            if self._client is None:
                if time.monotonic() >= self._next_scan:
                    self._connect()
            elif self._client.has_new_frame:
                texture = self._client.new_frame_image
                if texture is not None:
                    return self._frame_from(texture)
            if time.monotonic() >= deadline:
                return None
            time.sleep(RUN_LOOP_STEP_S)

    def _frame_from(self, texture) -> np.ndarray:
        import Metal

        width, height = texture.width(), texture.height()
        if self._buffer is None or self._buffer.size != width * height * 4:
            self._buffer = np.empty(width * height * 4, np.uint8)
        region = Metal.MTLRegionMake2D(0, 0, width, height)
        texture.getBytes_bytesPerRow_fromRegion_mipmapLevel_(self._buffer, width * 4, region, 0)
        self.state = BridgeState.LIVE
        self.frames += 1
        return to_rgb(self._buffer, width, height, texture_layout(texture.pixelFormat()), flip=self.flip)

    def close(self) -> None:
        """Stop the client; safe to call twice."""
        if self._client is not None:
            self._client.stop()
        if self._directory is not None and self._directory in _open_directories:
            _open_directories.remove(self._directory)
        self._client = self._directory = None
        self.state = BridgeState.CLOSED


class SyphonSink(Sink):
    """Publishes frames as the Syphon Metal server ``NAME``, filling :data:`TEXTURES` RGBA8
    textures in turn."""

    def __init__(self, name: str, server_name: str, flip: bool = False) -> None:
        self.name = name
        self.server_name = server_name
        self.flip = flip
        self.frames = 0
        self._server = None
        self._textures: list = []
        self._blits: list = []  # per texture: the command buffer of its last publish, or None
        self._rgba: np.ndarray | None = None

    @classmethod
    def from_spec(cls, spec: Spec) -> "SyphonSink":
        """Build from ``syphon:NAME[?flip=1]``."""
        if not spec.arg:
            raise BridgeError(f"{spec.text!r}: give the Syphon server name, e.g. syphon:vacelive")
        return cls(spec.text, spec.arg, flip=spec.flag("flip", False))

    def open(self, width: int, height: int, fps: float) -> None:
        """Create the Metal server and its textures."""
        syphon = _syphon(self)
        import Metal

        self._server = syphon.SyphonMetalServer(self.server_name)
        descriptor = Metal.MTLTextureDescriptor.texture2DDescriptorWithPixelFormat_width_height_mipmapped_(
            MTL_PIXEL_FORMAT_RGBA8, width, height, False)
        self._textures = [self._server.device.newTextureWithDescriptor_(descriptor) for _ in range(TEXTURES)]
        self._blits = [None] * TEXTURES
        self._rgba = np.empty((height, width, 4), np.uint8)
        self._region = Metal.MTLRegionMake2D(0, 0, width, height)
        self.state = BridgeState.LIVE

    def write(self, frame: np.ndarray) -> None:
        """Upload one RGB frame into the next texture and publish it."""
        if self._server is None:
            raise BridgeError(f"{self.name}: write() before open()")
        rgb_to_rgba(frame[::-1] if self.flip else frame, out=self._rgba)
        width = self._rgba.shape[1]
        slot = self.frames % TEXTURES
        texture = self._textures[slot]
        try:
            if self._blits[slot] is not None:  # the GPU may still be copying this texture out
                self._blits[slot].waitUntilCompleted()
            texture.replaceRegion_mipmapLevel_withBytes_bytesPerRow_(self._region, 0, self._rgba, width * 4)
            blit = self._server.command_queue.commandBuffer()
            self._server.publish_frame_texture(texture, command_buffer=blit, auto_commit=False)
            blit.commit()
            self._blits[slot] = blit
        except Exception as exc:  # PyObjC surfaces Objective-C failures as various exception types
            raise BridgeError(f"{self.name}: Syphon publish failed: {exc}") from exc
        self.frames += 1

    def close(self) -> None:
        """Wait for the last blits, stop the server; safe to call twice."""
        if self._server is not None:
            for blit in self._blits:
                if blit is not None:
                    blit.waitUntilCompleted()
            self._server.stop()
        self._server = None
        self._textures, self._blits = [], []
        self.state = BridgeState.CLOSED
