"""``testpattern``: an animated synthetic source with a machine-readable frame counter.

Each frame shows a scrolling colour gradient, a bouncing rectangle and a circle on a Lissajous
path (so edge, pose-free flow and depth annotators have structure to follow) and, near the top
centre, a row of 34 black/white cells that encodes a 24-bit frame counter:
``[white, black]`` guard, 24 counter bits (most significant first), 8 check bits. The cells
scale with the frame (each is 1/68 of its width and 1/16 of its height) and sit in the middle
half of the width, so the code survives resizing, lossy codecs and crop-to-fill to another
aspect ratio (the reader also tries the zooms a centred crop causes, up to 2x).
:func:`read_stamp` decodes it; :func:`write_stamp` stamps any frame.
"""

from __future__ import annotations

import cv2
import numpy as np

from vacelive.bridges.base import BridgeState, Source
from vacelive.bridges.pacing import FrameClock
from vacelive.bridges.spec import Spec

STAMP_BITS = 24
"""Width of the counter; it wraps at ``2**24`` (about 3.2 days at 60 fps)."""

_CHECK_BITS = 8
_CELLS = 2 + STAMP_BITS + _CHECK_BITS
_X0, _X1 = 0.25, 0.75  # the code spans the middle half of the width
_Y0, _Y1 = 1 / 48, 1 / 48 + 1 / 16  # and a band near the top


_ZOOMS = (1.0, 1.05, 1.1, 1.2, 1.25, 4 / 3, 1.4, 1.5, 1.6, 16 / 9, 1.9, 2.0)
"""Zooms tried by :func:`read_stamp`: a centred crop to a narrower (wider) aspect ratio
stretches the code horizontally (vertically) about the frame centre by up to this much."""


def _check(counter: int) -> int:
    folded = counter ^ (counter >> 8) ^ (counter >> 16) ^ ((counter * 0x9E) >> 4)
    return (folded ^ 0xA5) & ((1 << _CHECK_BITS) - 1)


def _cells(counter: int) -> list[int]:
    counter &= (1 << STAMP_BITS) - 1
    data = [(counter >> (STAMP_BITS - 1 - i)) & 1 for i in range(STAMP_BITS)]
    check = _check(counter)
    return [1, 0] + data + [(check >> (_CHECK_BITS - 1 - i)) & 1 for i in range(_CHECK_BITS)]


def _geometry(width: int, height: int, zoom_x: float = 1.0, zoom_y: float = 1.0) -> tuple[np.ndarray, int, int]:
    def place(fraction: float, size: int, zoom: float) -> float:
        return size / 2 + (fraction - 0.5) * size * zoom

    edges = np.round(np.linspace(place(_X0, width, zoom_x), place(_X1, width, zoom_x), _CELLS + 1)).astype(int)
    return edges, int(round(place(_Y0, height, zoom_y))), int(round(place(_Y1, height, zoom_y)))


def write_stamp(frame: np.ndarray, counter: int) -> np.ndarray:
    """Draw the code for ``counter`` (taken modulo ``2**24``) into ``frame`` in place; returns it."""
    h, w = frame.shape[:2]
    edges, y0, y1 = _geometry(w, h)
    for i, bit in enumerate(_cells(counter)):
        frame[y0:y1, edges[i] : edges[i + 1]] = 255 if bit else 0
    return frame


def read_stamp(frame: np.ndarray) -> int | None:
    """Decode the counter stamped by :func:`write_stamp`, or ``None`` if there is no valid code.

    Works on RGB, RGBA or single-channel frames of any size, also after crop-to-fill to another
    aspect ratio. Each cell is judged by the mean of its central quarter against a threshold
    halfway between the guard's white and black cells; guard and check bits must agree.
    """
    if frame.ndim == 3 and frame.shape[2] >= 3:
        gray = cv2.cvtColor(np.ascontiguousarray(frame[:, :, :3]), cv2.COLOR_RGB2GRAY)
    else:
        gray = frame if frame.ndim == 2 else frame[:, :, 0]
    h, w = gray.shape[:2]
    for zoom in _ZOOMS:
        for zoom_x, zoom_y in ((zoom, 1.0), (1.0, zoom)) if zoom != 1.0 else ((1.0, 1.0),):
            counter = _decode(gray, *_geometry(w, h, zoom_x, zoom_y))
            if counter is not None:
                return counter
    return None


def _decode(gray: np.ndarray, edges: np.ndarray, y0: int, y1: int) -> int | None:
    h, w = gray.shape[:2]
    if y0 < 0 or y1 > h or edges[0] < 0 or edges[-1] > w or y1 - y0 < 2 or np.min(np.diff(edges)) < 2:
        return None
    qy = (y1 - y0) / 4
    ya, yb = int(y0 + qy), max(int(y0 + qy) + 1, int(y1 - qy))

    def level(i: int) -> float:
        qx = (edges[i + 1] - edges[i]) / 4
        xa = int(edges[i] + qx)
        return float(gray[ya:yb, xa : max(xa + 1, int(edges[i + 1] - qx))].mean())

    white, black = level(0), level(1)
    if white - black < 64:  # no guard here: skip the other cells
        return None
    levels = np.array([white, black] + [level(i) for i in range(2, _CELLS)])
    bits = (levels > (white + black) / 2).astype(int)
    counter = 0
    for bit in bits[2 : 2 + STAMP_BITS]:
        counter = (counter << 1) | int(bit)
    check = 0
    for bit in bits[2 + STAMP_BITS :]:
        check = (check << 1) | int(bit)
    return counter if check == _check(counter) else None


class TestPattern:
    """Renders the animated pattern for frame ``index`` at a fixed size (no pacing)."""

    __test__ = False  # not a pytest test class despite the name

    def __init__(self, width: int, height: int, moving: bool = True) -> None:
        self.width, self.height, self.moving = width, height, moving
        # A gradient twice as wide as the frame; each frame shows a window scrolled along it.
        x = np.linspace(0.0, 4.0 * np.pi, 2 * width, endpoint=False)
        y = np.linspace(0.0, 1.0, height)[:, None]
        base = np.empty((height, 2 * width, 3), np.float32)
        base[:, :, 0] = 0.5 + 0.5 * np.sin(x)[None, :]
        base[:, :, 1] = y
        base[:, :, 2] = 0.5 + 0.5 * np.cos(x / 2)[None, :]
        self._background = (40 + 150 * base).astype(np.uint8)

    def render(self, index: int) -> np.ndarray:
        """Return frame ``index`` as a new ``(H, W, 3)`` RGB array, stamped with ``index``."""
        w, h = self.width, self.height
        t = index if self.moving else 0
        offset = (t * 4) % w
        frame = self._background[:, offset : offset + w].copy()
        rw, rh = max(4, w // 6), max(4, h // 5)
        rx = _bounce(t * 5, w - rw)
        ry = _bounce(t * 3 + h // 3, h - rh)
        cv2.rectangle(frame, (rx, ry), (rx + rw, ry + rh), (250, 250, 250), thickness=-1)
        cv2.rectangle(frame, (rx, ry), (rx + rw, ry + rh), (20, 20, 160), thickness=max(2, w // 200))
        radius = max(3, min(w, h) // 8)
        cx = int(w / 2 + (w / 2 - radius - 2) * np.sin(t * 0.031))
        cy = int(h * 0.55 + (h * 0.45 - radius - 2) * np.sin(t * 0.047 + 1.0))
        cv2.circle(frame, (cx, cy), radius, (230, 60, 30), thickness=-1, lineType=cv2.LINE_AA)
        cv2.putText(frame, f"{index}", (max(2, w // 50), h - max(4, h // 30)), cv2.FONT_HERSHEY_SIMPLEX,
                    max(0.4, h / 600), (255, 255, 255), max(1, h // 300), cv2.LINE_AA)
        return write_stamp(frame, index)


def _bounce(position: int, span: int) -> int:
    """Triangle wave: 0 .. span .. 0 as ``position`` grows."""
    if span <= 0:
        return 0
    phase = position % (2 * span)
    return phase if phase <= span else 2 * span - phase


class TestPatternSource(Source):
    """``testpattern[?moving=0]``: the animated pattern, paced at ``fps``; frame ``n`` carries ``n``."""

    __test__ = False

    def __init__(self, name: str, width: int, height: int, fps: float, moving: bool = True) -> None:
        self.name = name
        self._pattern = TestPattern(width, height, moving)
        self._fps = fps
        self._clock = FrameClock(fps)
        self.frames = 0
        """Frames delivered so far (the counter stamped into the next frame)."""

    @classmethod
    def from_spec(cls, spec: Spec, *, width: int, height: int, fps: float) -> "TestPatternSource":
        """Build from ``testpattern[?moving=0]``."""
        return cls(spec.text, width, height, fps, moving=spec.flag("moving", True))

    @property
    def fps(self) -> float:
        """The rate the pattern is generated at (the engine's)."""
        return self._fps

    def open(self) -> None:
        """Start the clock; the first frame is due immediately."""
        self._clock.reset()
        self.state = BridgeState.LIVE

    def read(self, timeout: float = 0.1) -> np.ndarray | None:
        """Return the next frame when it is due (sleeping until then), or ``None`` after ``timeout``."""
        if self.state is not BridgeState.LIVE or not self._clock.wait(timeout):
            return None
        frame = self._pattern.render(self.frames)
        self.frames += 1
        return frame

    def close(self) -> None:
        """Stop; safe to call twice."""
        self.state = BridgeState.CLOSED
