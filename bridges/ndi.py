"""``ndi:NAME``: NDI receiver (source) and sender (sink) through cyndilib (optional extra ``ndi``).

NDI reads its configuration when the first NDI object of the process is created. On one host
without multicast, point ``NDI_CONFIG_DIR`` at a folder whose ``ndi-config.v1.json`` lists
``127.0.0.1`` (see :func:`write_ndi_config`); the ``?ip=HOST[,HOST]`` option of the source does
that for you as long as it is the first NDI object in the process.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import tempfile
import time
from fractions import Fraction
from types import ModuleType

import numpy as np

from vacelive.bridges.base import BridgeError, BridgeState, Sink, Source
from vacelive.bridges.convert import to_rgb
from vacelive.bridges.spec import Spec

log = logging.getLogger(__name__)

REBUILD_AFTER_S = 3.0
"""A source LOST this long while its name is listed again gets a fresh receiver."""

POLL_S = 0.002
"""Polling step of the NDI receiver while it waits for a frame."""

FIND_POLL_S = 0.02
"""Polling step while the named source is not listed by discovery."""

_FOURCC_LAYOUTS = ("RGBA", "RGBX", "BGRA", "BGRX", "UYVY", "UYVA")
_ndi_started = False


def _cyndilib() -> ModuleType:
    """Import cyndilib or raise the one clear error telling how to get it."""
    global _ndi_started
    try:
        import cyndilib
    except ImportError as exc:
        raise BridgeError(
            "NDI needs the optional package cyndilib: pip install 'vacelive[ndi]' "
            f"(or pip install cyndilib) - import failed: {exc}"
        ) from exc
    _ndi_started = True
    return cyndilib


def write_ndi_config(folder: str, ips: str = "127.0.0.1") -> str:
    """Write ``ndi-config.v1.json`` into ``folder`` with unicast discovery of ``ips`` (comma list).

    Point ``NDI_CONFIG_DIR`` at ``folder`` before the first NDI object is created. Returns the file path.
    """
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "ndi-config.v1.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({"ndi": {"networks": {"ips": ips, "discovery": ""}}}, handle)
    return path


def _use_ips(ips: str, owner: str) -> None:
    if _ndi_started:
        log.warning("%s: NDI is already running in this process; ip=%s is ignored "
                    "(set NDI_CONFIG_DIR before starting instead)", owner, ips)
        return
    folder = tempfile.mkdtemp(prefix="vacelive-ndi-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)  # NDI reads it at start: kept until exit
    os.environ["NDI_CONFIG_DIR"] = os.path.dirname(write_ndi_config(folder, ips))


def matches(full_name: str, wanted: str) -> bool:
    """True when NDI source ``full_name`` ("HOST (STREAM)") is the one ``wanted`` names.

    ``wanted`` may be the full name or only the stream name.
    """
    return full_name == wanted or full_name.endswith(f"({wanted})")


def layout_of(fourcc: int) -> str | None:
    """The pixel layout name of an NDI FourCC code (``None`` for layouts the source does not take)."""
    for name in _FOURCC_LAYOUTS:
        if fourcc == int.from_bytes(name.encode(), "little"):
            return name
    return None


class NDISource(Source):
    """Receives the NDI source whose (stream) name is ``NAME``; it may appear at any time.

    Frames are taken through NDI's frame-sync (cyndilib attaches one to every receiver, and it
    takes the frames that a plain capture would miss): each ``read()`` polls it for a frame with
    a new timestamp and converts that one, so the engine always gets the newest frame and never
    a backlog. States: CONNECTING until the first frame, LIVE, LOST when the sender goes away
    (``read()`` then returns ``None``); NDI reconnects by itself when a sender of that name comes
    back, and if it has not after :data:`REBUILD_AFTER_S` the receiver is rebuilt. Frames arrive
    as UYVY (asked for: NDI's native format, converted with BT.709) or RGBA when the sender has
    alpha; BGRA/BGRX/RGBX are handled too. Alpha is dropped.
    """

    def __init__(
        self, name: str, source_name: str, ips: str | None = None, bandwidth: str = "highest"
    ) -> None:
        self.name = name
        self.source_name = source_name
        self.ips = ips
        self.bandwidth = bandwidth
        self.frames = 0
        self.layout: str | None = None
        """Pixel layout of the last frame received (``UYVY`` normally, ``RGBA`` with alpha)."""
        self._ndi: ModuleType | None = None
        self._finder = None
        self._receiver = None
        self._video = None
        self._connected_to: str | None = None
        self._last_stamp: float | None = None
        self._lost_since: float | None = None
        self._fps: float | None = None

    @classmethod
    def from_spec(cls, spec: Spec, *, width: int, height: int, fps: float) -> "NDISource":
        """Build from ``ndi:NAME[?ip=HOST[,HOST]&bandwidth=lowest]``."""
        if not spec.arg:
            raise BridgeError(f"{spec.text!r}: give the NDI source name, e.g. ndi:TD-out")
        bandwidth = spec.options.get("bandwidth", "highest")
        if bandwidth not in ("highest", "lowest"):
            raise BridgeError(f"{spec.text!r}: bandwidth is 'highest' or 'lowest'")
        return cls(spec.text, spec.arg, ips=spec.options.get("ip"), bandwidth=bandwidth)

    @property
    def fps(self) -> float | None:
        """The sender's declared frame rate, once a frame has arrived."""
        return self._fps

    def open(self) -> None:
        """Start discovery and the receiver; the sender need not exist yet (state CONNECTING)."""
        if self.ips and not _ndi_started:
            _use_ips(self.ips, self.name)
        try:
            self._ndi = _cyndilib()
        except BridgeError:
            self.state = BridgeState.FAILED
            raise
        self._finder = self._ndi.Finder()
        self._finder.open()
        self._build_receiver()
        self.state = BridgeState.CONNECTING
        self._try_connect()

    def _build_receiver(self) -> None:
        ndi = self._ndi
        receiver = ndi.Receiver(
            color_format=ndi.RecvColorFormat.UYVY_RGBA,  # UYVY: NDI's native, cheapest
            bandwidth=getattr(ndi.RecvBandwidth, self.bandwidth),
            recv_name="vacelive",
        )
        self._video = ndi.VideoFrameSync()
        receiver.frame_sync.set_video_frame(self._video)
        self._receiver = receiver
        self._connected_to = None
        self._last_stamp = None

    def visible(self) -> list[str] | None:
        """The NDI senders discovery sees now (``HOST (name)``)."""
        return sorted(self._finder.get_source_names()) if self._finder is not None else []

    def _find(self):
        for full_name in self._finder.get_source_names():
            if matches(full_name, self.source_name):
                return self._finder.get_source(full_name)
        return None

    def _try_connect(self) -> bool:
        source = self._find()
        if source is None:
            return False
        self._receiver.set_source(source)
        self._connected_to = source.name
        log.info("%s: connecting to %s", self.name, source.name)
        return True

    def read(self, timeout: float = 0.1) -> np.ndarray | None:
        """Return the newest frame, or ``None`` if none came within ``timeout``; never raises for a lost peer.

        Polls without blocking inside cyndilib (its blocking calls hold the GIL for their whole
        timeout), sleeping :data:`POLL_S` between polls so other Python threads keep running.
        """
        if self._receiver is None:
            time.sleep(timeout)
            return None
        deadline = time.monotonic() + timeout
        while True:
            if self._connected_to is not None or self._try_connect():
                frame = self._poll()
                if frame is not None:
                    self.state = BridgeState.LIVE
                    self._lost_since = None
                    self.frames += 1
                    return frame
            left = deadline - time.monotonic()
            if left <= 0:
                self._on_silence()
                return None
            time.sleep(min(POLL_S if self._connected_to else FIND_POLL_S, left))

    def _poll(self) -> np.ndarray | None:
        if not self._receiver.is_connected():
            return None
        self._receiver.frame_sync.capture_video()
        video = self._video
        if not video.xres:  # nothing received yet
            return None
        stamp = video.get_timestamp_posix()
        if stamp == self._last_stamp:  # the frame-sync repeats the last frame
            return None
        self._last_stamp = stamp
        return self._convert(video)

    def _on_silence(self) -> None:
        if self.state is BridgeState.LIVE and not self._receiver.is_connected():
            log.warning("%s: sender %s lost; waiting for it to come back", self.name, self._connected_to)
            self.state = BridgeState.LOST
            self._lost_since = time.monotonic()
        elif (self.state is BridgeState.LOST and self._lost_since is not None
              and time.monotonic() - self._lost_since > REBUILD_AFTER_S and self._find() is not None):
            log.info("%s: rebuilding the receiver", self.name)
            self._build_receiver()
            self._try_connect()
            self._lost_since = time.monotonic()

    def _convert(self, video) -> np.ndarray | None:
        width, height = video.get_resolution()
        layout = layout_of(int(video.get_fourcc()))
        rate = video.get_frame_rate()
        self._fps = float(rate) if rate else None
        self.layout = layout
        if layout is None:
            log.warning("%s: unsupported NDI FourCC %s, frame dropped", self.name, video.get_fourcc())
            return None
        view = memoryview(video)  # NDI's own frame buffer: converted straight from it, no copy
        try:
            buffer = np.frombuffer(view, np.uint8)
            frame = to_rgb(buffer, width, height, "UYVY" if layout == "UYVA" else layout,
                           video.get_line_stride() or None)
            del buffer
        finally:
            view.release()  # hands the buffer back to the frame-sync
        return frame

    def close(self) -> None:
        """Disconnect and stop discovery; safe to call twice."""
        if self._receiver is not None:
            self._receiver.disconnect()
        if self._finder is not None:
            self._finder.close()
        self._receiver = self._finder = self._video = None
        self._connected_to = None
        self.state = BridgeState.CLOSED


class NDISink(Sink):
    """Publishes frames as the NDI source ``NAME`` (RGBX) at the engine's fps.

    In the engine the publisher owns the clock and writes one frame per tick, so by default
    ``write()`` sends at once (a second pacer would only add jitter). ``?clock=1`` lets NDI pace
    the sends itself: ``write()`` then blocks until the frame's slot at ``fps``, for a writer
    that produces frames in bursts.
    """

    def __init__(self, name: str, sender_name: str, clock: bool = False) -> None:
        self.name = name
        self.sender_name = sender_name
        self.clock = clock
        self.frames = 0
        self._sender = None
        self._rgba: np.ndarray | None = None

    @classmethod
    def from_spec(cls, spec: Spec) -> "NDISink":
        """Build from ``ndi:NAME[?clock=1]``."""
        if not spec.arg:
            raise BridgeError(f"{spec.text!r}: give the NDI name to publish, e.g. ndi:vacelive")
        return cls(spec.text, spec.arg, clock=spec.flag("clock", False))

    @property
    def connections(self) -> int:
        """How many receivers are connected right now."""
        return self._sender.get_num_connections(0) if self._sender is not None else 0

    def open(self, width: int, height: int, fps: float) -> None:
        """Create the NDI sender; :class:`BridgeError` if cyndilib is missing or NDI fails."""
        try:
            ndi = _cyndilib()
            sender = ndi.Sender(self.sender_name, clock_video=self.clock, clock_audio=False)
            video_frame = ndi.VideoSendFrame()
            video_frame.set_resolution(width, height)
            video_frame.set_fourcc(ndi.FourCC.RGBX)
            video_frame.set_frame_rate(Fraction(fps).limit_denominator(1001))
            sender.set_video_frame(video_frame)
            sender.open()
        except BridgeError:
            self.state = BridgeState.FAILED
            raise
        except Exception as exc:  # cyndilib raises plain exceptions from the NDI runtime
            self.state = BridgeState.FAILED
            raise BridgeError(f"{self.name}: NDI sender could not start: {exc}") from exc
        self._sender = sender
        self._rgba = np.empty((height, width, 4), np.uint8)
        self._rgba[:, :, 3] = 255
        self.frames = 0
        self.state = BridgeState.LIVE

    def write(self, frame: np.ndarray) -> None:
        """Send one RGB frame (blocks up to one frame period when clocked)."""
        if self._sender is None:
            raise BridgeError(f"{self.name}: write() before open()")
        if frame.shape[:2] != self._rgba.shape[:2]:
            raise BridgeError(f"{self.name}: frame is {frame.shape[1]}x{frame.shape[0]}, sender is "
                              f"{self._rgba.shape[1]}x{self._rgba.shape[0]}")
        self._rgba[:, :, :3] = frame[:, :, :3]
        try:
            sent = self._sender.write_video(self._rgba.reshape(-1))
        except Exception as exc:
            raise BridgeError(f"{self.name}: NDI send failed: {exc}") from exc
        if not sent:
            raise BridgeError(f"{self.name}: NDI sender is not running")
        self.frames += 1

    def close(self) -> None:
        """Stop the sender; safe to call twice."""
        if self._sender is not None:
            self._sender.close()
        self._sender = None
        self.state = BridgeState.CLOSED
