"""``file:PATH`` as a source (PyAV decode, paced at the file's fps) and as a sink (H.264 or images)."""

from __future__ import annotations

import logging
import os
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from vacelive.bridges.base import BridgeError, BridgeState, Sink, Source
from vacelive.bridges.pacing import FrameClock
from vacelive.bridges.spec import Spec

log = logging.getLogger(__name__)


class FileSource(Source):
    """``file:PATH[?loop=0]``: a video file decoded with PyAV, delivered at the file's own rate.

    Loops by default (seeks back to the start at the end); with ``loop=0`` it plays once, then
    ``read()`` returns ``None`` and :attr:`finished` is true (the state stays LIVE).
    """

    def __init__(self, name: str, path: str, loop: bool = True) -> None:
        self.name = name
        self.path = path
        self.loop = loop
        self.finished = False
        self._container = None
        self._stream = None
        self._frames = None
        self._pending: np.ndarray | None = None
        self._fps: float | None = None
        self._clock: FrameClock | None = None

    @classmethod
    def from_spec(cls, spec: Spec, *, width: int, height: int, fps: float) -> "FileSource":
        """Build from ``file:PATH[?loop=0]`` (the engine size does not apply: frames are native)."""
        if not spec.arg:
            raise BridgeError(f"{spec.text!r}: give a path, e.g. file:clip.mp4")
        return cls(spec.text, spec.arg, loop=spec.flag("loop", True))

    @property
    def fps(self) -> float | None:
        """The file's average frame rate (known after ``open()``)."""
        return self._fps

    def open(self) -> None:
        """Open the file and its first video stream; :class:`BridgeError` if missing or unreadable."""
        import av

        if not os.path.isfile(self.path):
            self.state = BridgeState.FAILED
            raise BridgeError(f"{self.name}: no such file: {self.path}")
        try:
            self._container = av.open(self.path)
        except (av.FFmpegError, OSError) as exc:
            self.state = BridgeState.FAILED
            raise BridgeError(f"{self.name}: cannot open {self.path}: {exc}") from exc
        if not self._container.streams.video:
            self.close()
            self.state = BridgeState.FAILED
            raise BridgeError(f"{self.name}: {self.path} has no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        rate = self._stream.average_rate or self._stream.guessed_rate
        self._fps = float(rate) if rate else 30.0
        self._clock = FrameClock(self._fps)
        self._frames = self._container.decode(self._stream)
        try:  # decode one frame now, so an undecodable file stops the start instead of playing nothing
            self._pending = next(self._frames).to_ndarray(format="rgb24")
        except (StopIteration, av.FFmpegError) as exc:
            self.close()
            self.state = BridgeState.FAILED
            reason = f": {exc}" if str(exc) else ""
            raise BridgeError(f"{self.name}: cannot decode a frame of {self.path}{reason}") from None
        self.finished = False
        self.state = BridgeState.LIVE

    def _next_frame(self) -> np.ndarray | None:
        import av

        if self._pending is not None:
            frame, self._pending = self._pending, None
            return frame

        for attempt in range(2):
            try:
                return next(self._frames).to_ndarray(format="rgb24")
            except StopIteration:
                pass
            except av.FFmpegError as exc:  # a damaged tail ends the pass like EOF does
                log.warning("%s: decode error, treating as end of file: %s", self.name, exc)
            if not self.loop or attempt:
                return None
            self._container.seek(0)
            self._frames = self._container.decode(self._stream)
        return None

    def read(self, timeout: float = 0.1) -> np.ndarray | None:
        """Return the next frame when it is due at the file's fps, else ``None`` after ``timeout``."""
        if self.state is not BridgeState.LIVE or self.finished:
            time.sleep(timeout)
            return None
        if not self._clock.wait(timeout):
            return None
        frame = self._next_frame()
        if frame is None:
            self.finished = True
        return frame

    def close(self) -> None:
        """Close the file; safe to call twice."""
        if self._container is not None:
            self._container.close()
        self._container = self._stream = self._frames = None
        self.state = BridgeState.CLOSED


def is_image_sequence(path: str) -> bool:
    """True when ``path`` names a folder (existing, or ending with a separator) or has a ``%d`` pattern."""
    return "%" in path or path.endswith(("/", os.sep)) or os.path.isdir(path)


class FileSink(Sink):
    """``file:PATH``: an H.264 video (libx264, yuv420p, ultrafast/zerolatency) or an image sequence.

    PATH with a ``%d``-style pattern (``out/f_%05d.jpg``) or naming a folder (``out/``, written as
    ``frame_000000.png`` ...) gives one image per frame, numbered from 0; anything else is a video
    container chosen by its extension (``.mp4``, ``.mov``, ``.mkv``). Options: ``crf`` (default 18).
    """

    def __init__(self, name: str, path: str, crf: int = 18) -> None:
        self.name = name
        self.path = path
        self.crf = crf
        self.frames = 0
        self._pattern: str | None = None
        self._container = None
        self._stream = None
        self._size: tuple[int, int] | None = None

    @classmethod
    def from_spec(cls, spec: Spec) -> "FileSink":
        """Build from ``file:PATH[?crf=N]``."""
        if not spec.arg:
            raise BridgeError(f"{spec.text!r}: give a path, e.g. file:out.mp4 or file:frames/")
        return cls(spec.text, spec.arg, crf=int(spec.number("crf", 18)))

    def open(self, width: int, height: int, fps: float) -> None:
        """Create the output (and its parent folders); :class:`BridgeError` if impossible."""
        import av

        self._size = (width, height)
        self.frames = 0
        try:
            if is_image_sequence(self.path):
                self._pattern = self.path if "%" in self.path else os.path.join(self.path, "frame_%06d.png")
                Path(self._pattern).parent.mkdir(parents=True, exist_ok=True)
            else:
                if width % 2 or height % 2:
                    raise BridgeError(f"{self.name}: H.264 yuv420p needs even sizes, got {width}x{height}")
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                self._container = av.open(self.path, mode="w")
                stream = self._container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
                stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
                stream.options = {"preset": "ultrafast", "tune": "zerolatency", "crf": str(self.crf)}
                self._stream = stream
        except BridgeError:
            self.state = BridgeState.FAILED
            raise
        except (av.FFmpegError, OSError, ValueError) as exc:
            self.state = BridgeState.FAILED
            raise BridgeError(f"{self.name}: cannot create {self.path}: {exc}") from exc
        self.state = BridgeState.LIVE

    def write(self, frame: np.ndarray) -> None:
        """Encode or save one RGB frame; :class:`BridgeError` on any failure."""
        import av

        if self.state is not BridgeState.LIVE:
            raise BridgeError(f"{self.name}: write() on a sink that is {self.state.value}")
        if (frame.shape[1], frame.shape[0]) != self._size:
            raise BridgeError(f"{self.name}: frame is {frame.shape[1]}x{frame.shape[0]}, sink is opened at "
                              f"{self._size[0]}x{self._size[1]}")
        rgb = np.ascontiguousarray(frame[:, :, :3])
        try:
            if self._pattern is not None:
                target = self._pattern % self.frames
                if not cv2.imwrite(target, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
                    raise BridgeError(f"{self.name}: could not write {target}")
            else:
                video_frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                video_frame.pts = self.frames
                self._container.mux(self._stream.encode(video_frame))
        except (av.FFmpegError, OSError, cv2.error) as exc:
            raise BridgeError(f"{self.name}: write failed: {exc}") from exc
        self.frames += 1

    def close(self) -> None:
        """Flush the encoder and close the file; safe to call twice."""
        import av

        container, self._container = self._container, None
        if container is not None:
            try:
                container.mux(self._stream.encode(None))
                container.close()
            except (av.FFmpegError, OSError) as exc:
                log.warning("%s: error while finishing %s: %s", self.name, self.path, exc)
        self._stream = None
        self.state = BridgeState.CLOSED
