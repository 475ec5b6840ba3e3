"""``syphon:NAME``: Syphon Metal client (source) and server (sink) through syphon-python (macOS 11+).

Discovery goes through ``SyphonServerDirectory``, whose notifications arrive on the calling
thread's run loop: the source pumps it briefly on every ``read()`` while it has no server, so the
bridge is meant to be read from one thread (the main one when possible). Textures are read and
written with Metal's ``getBytes``/``replaceRegion`` (top-down rows, BGRA8 or RGBA8 by the
texture's pixel format); ``?flip=1`` turns images that arrive upside down.
"""

from __future__ import annotations

import time

import numpy as np

from vacelive.bridges.base import BridgeError, BridgeState, Sink, Source
from vacelive.bridges.convert import rgb_to_rgba, to_rgb
from vacelive.bridges.optional import require
from vacelive.bridges.spec import Spec

MTL_PIXEL_FORMAT_RGBA8 = 70
MTL_PIXEL_FORMAT_BGRA8 = 80


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

    @classmethod
    def from_spec(cls, spec: Spec, *, width: int, height: int, fps: float) -> "SyphonSource":
        """Build from ``syphon:NAME[?flip=1]`` (``syphon:`` = the first server found)."""
        return cls(spec.text, spec.arg, flip=spec.flag("flip", False))

    def open(self) -> None:
        """Start server discovery; the server need not exist yet (state CONNECTING)."""
        self._syphon = _syphon(self)
        self._directory = self._syphon.SyphonServerDirectory()
        self._directory.run_loop_interval = 0.001
        self.state = BridgeState.CONNECTING

    def visible(self) -> list[str] | None:
        """The Syphon servers the directory knows now (``app: name``)."""
        if self._directory is None:
            return []
        return sorted(f"{getattr(s, 'app_name', '')}: {getattr(s, 'name', '')}" for s in self._directory.servers)

    def _connect(self) -> bool:
        directory = self._directory
        if self.server_name:
            servers = directory.servers_matching_name(name=self.server_name, app_name=self.server_name)
        else:
            servers = directory.servers
        if not servers:
            return False
        self._client = self._syphon.SyphonMetalClient(servers[0])
        return True

    def read(self, timeout: float = 0.1) -> np.ndarray | None:
        """Return the server's newest frame, or ``None`` when none came within ``timeout``."""
        if self._directory is None:
            time.sleep(timeout)
            return None
        deadline = time.monotonic() + timeout
        while True:
            self._directory.update_run_loop()
            if self._client is not None and not self._client.is_valid:
                self._client.stop()
                self._client = None
                self.state = BridgeState.LOST
            if self._client is None:
                self._connect()
            elif self._client.has_new_frame:
                texture = self._client.new_frame_image
                if texture is not None:
                    return self._frame_from(texture)
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.002)

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
        self._client = self._directory = None
        self.state = BridgeState.CLOSED


class SyphonSink(Sink):
    """Publishes frames as the Syphon Metal server ``NAME`` (one RGBA8 texture, refilled per frame)."""

    def __init__(self, name: str, server_name: str, flip: bool = False) -> None:
        self.name = name
        self.server_name = server_name
        self.flip = flip
        self.frames = 0
        self._server = None
        self._texture = None
        self._rgba: np.ndarray | None = None

    @classmethod
    def from_spec(cls, spec: Spec) -> "SyphonSink":
        """Build from ``syphon:NAME[?flip=1]``."""
        if not spec.arg:
            raise BridgeError(f"{spec.text!r}: give the Syphon server name, e.g. syphon:vacelive")
        return cls(spec.text, spec.arg, flip=spec.flag("flip", False))

    def open(self, width: int, height: int, fps: float) -> None:
        """Create the Metal server and its texture."""
        syphon = _syphon(self)
        import Metal

        self._server = syphon.SyphonMetalServer(self.server_name)
        descriptor = Metal.MTLTextureDescriptor.texture2DDescriptorWithPixelFormat_width_height_mipmapped_(
            MTL_PIXEL_FORMAT_RGBA8, width, height, False)
        self._texture = self._server.device.newTextureWithDescriptor_(descriptor)
        self._rgba = np.empty((height, width, 4), np.uint8)
        self._region = Metal.MTLRegionMake2D(0, 0, width, height)
        self.state = BridgeState.LIVE

    def write(self, frame: np.ndarray) -> None:
        """Upload one RGB frame into the texture and publish it."""
        if self._server is None:
            raise BridgeError(f"{self.name}: write() before open()")
        rgb_to_rgba(frame[::-1] if self.flip else frame, out=self._rgba)
        width = self._rgba.shape[1]
        try:
            self._texture.replaceRegion_mipmapLevel_withBytes_bytesPerRow_(self._region, 0, self._rgba, width * 4)
            self._server.publish_frame_texture(self._texture)
        except Exception as exc:  # PyObjC surfaces Objective-C failures as various exception types
            raise BridgeError(f"{self.name}: Syphon publish failed: {exc}") from exc
        self.frames += 1

    def close(self) -> None:
        """Stop the server; safe to call twice."""
        if self._server is not None:
            self._server.stop()
        self._server = self._texture = None
        self.state = BridgeState.CLOSED
