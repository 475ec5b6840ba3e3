"""Synthetic clips for the tiny model: coloured shapes moving over soft textured backgrounds.

A :class:`ClipSpec` is drawn from a seeded ``numpy`` generator and renders, frame by frame:

- the picture: a two-colour gradient background with faint scrolling stripes, and 1-3 shapes
  (rectangle, circle, triangle) of one colour from :data:`PALETTE`, each moving on a straight
  line that bounces off the frame's edges, nearer shapes drawn over farther ones;
- a depth-like map (the background dark, each shape a flat grey, nearer = brighter), standing in
  for the depth annotator, which needs a model file;
- the prompt naming the colour (``"red shapes"``) and a reference still (a close-up of the first
  shape, centred on grey), the R2V input.

Everything is a function of the spec, so a clip is reproducible from its seed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import cv2
import numpy as np

PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 190, 60),
    "blue": (50, 80, 230),
    "yellow": (235, 215, 40),
    "cyan": (40, 210, 220),
    "magenta": (210, 50, 200),
    "white": (240, 240, 240),
    "orange": (245, 140, 30),
}
"""Colour words of the prompts and their RGB values."""

KINDS = ("rectangle", "circle", "triangle")
REFERENCE_SIZE = 0.5
"""A reference still's shape size (half-extent) as a share of the frame's height."""


NO_COLOUR_PROMPT = "shapes"
"""The prompt that names no colour (what a dropped prompt becomes in training): the colour is
then the model's choice, or the reference image's."""


def prompt_for(colour: str) -> str:
    """The training prompt for a clip whose shapes are ``colour`` (fits the tiny text length)."""
    return f"{colour} {NO_COLOUR_PROMPT}"


@dataclass(frozen=True)
class Shape:
    """One shape: kind, size (half-extent in pixels), start centre and velocity (pixels/frame)."""

    kind: str
    size: float
    x: float
    y: float
    vx: float
    vy: float

    def centre(self, frame: int, width: int, height: int) -> tuple[int, int]:
        """The centre at ``frame``, bouncing off the edges (the shape stays inside the frame)."""
        return (int(_bounce(self.x + self.vx * frame, self.size, width - self.size)),
                int(_bounce(self.y + self.vy * frame, self.size, height - self.size)))


def _bounce(position: float, low: float, high: float) -> float:
    span = max(high - low, 1e-6)
    phase = (position - low) % (2 * span)
    return low + (phase if phase <= span else 2 * span - phase)


def _draw(canvas: np.ndarray, shape: Shape, centre: tuple[int, int], colour) -> None:
    cx, cy = centre
    s = int(shape.size)
    if shape.kind == "rectangle":
        cv2.rectangle(canvas, (cx - s, cy - int(s * 0.7)), (cx + s, cy + int(s * 0.7)), colour, thickness=-1)
    elif shape.kind == "circle":
        cv2.circle(canvas, (cx, cy), s, colour, thickness=-1, lineType=cv2.LINE_AA)
    else:
        points = np.array([(cx, cy - s), (cx - s, cy + int(s * 0.8)), (cx + s, cy + int(s * 0.8))], np.int32)
        cv2.fillPoly(canvas, [points], colour, lineType=cv2.LINE_AA)


@dataclass(frozen=True)
class ClipSpec:
    """Everything a clip's frames are made from; :meth:`draw` picks one at random."""

    width: int
    height: int
    colour: str
    shapes: tuple[Shape, ...]  # far to near
    background: tuple[tuple[int, int, int], tuple[int, int, int]]
    angle: float  # gradient direction, radians
    stripes: float  # stripe contrast, 0..1
    stripe_period: float  # pixels
    scroll: float  # stripe drift, pixels/frame

    @classmethod
    def draw(cls, rng: np.random.Generator, width: int = 320, height: int = 192) -> ClipSpec:
        """A random clip: one palette colour, 1-3 shapes, a muted background."""
        colour = str(rng.choice(list(PALETTE)))
        shapes = []
        for _ in range(int(rng.integers(1, 4))):
            size = float(rng.uniform(0.09, 0.22) * height)
            speed = float(rng.uniform(0.5, 4.0))
            direction = float(rng.uniform(0, 2 * np.pi))
            shapes.append(Shape(str(rng.choice(KINDS)), size, float(rng.uniform(size, width - size)),
                                float(rng.uniform(size, height - size)),
                                speed * np.cos(direction), speed * np.sin(direction)))
        muted = [tuple(int(v) for v in rng.uniform(25, 140, 3)) for _ in range(2)]
        return cls(width, height, colour, tuple(shapes), (muted[0], muted[1]), float(rng.uniform(0, 2 * np.pi)),
                   float(rng.uniform(0, 0.3)), float(rng.uniform(12, 60)), float(rng.uniform(-2, 2)))

    @property
    def prompt(self) -> str:
        return prompt_for(self.colour)

    @cached_property
    def _gradient(self) -> tuple[np.ndarray, np.ndarray]:
        """The still gradient (H, W, 3) float32 and each pixel's position across the stripes (H, W)."""
        y, x = np.mgrid[0:self.height, 0:self.width].astype(np.float32)
        along = x * np.cos(self.angle) + y * np.sin(self.angle)
        ramp = (along - along.min()) / max(float(along.max() - along.min()), 1.0)
        a, b = (np.array(c, np.float32) for c in self.background)
        return a + (b - a) * ramp[..., None], x * np.sin(self.angle) - y * np.cos(self.angle)

    def _background(self, frame: int) -> np.ndarray:
        gradient, across = self._gradient
        stripes = 1 + self.stripes * 0.5 * np.sin((2 * np.pi / self.stripe_period) * (across + self.scroll * frame))
        return (gradient * stripes[..., None]).clip(0, 255).astype(np.uint8)

    def frames(self, start: int, count: int) -> np.ndarray:
        """Frames ``start .. start+count-1`` as (count, H, W, 3) uint8 RGB."""
        out = np.empty((count, self.height, self.width, 3), np.uint8)
        colour = PALETTE[self.colour]
        for i in range(count):
            canvas = self._background(start + i)
            for shape in self.shapes:
                _draw(canvas, shape, shape.centre(start + i, self.width, self.height), colour)
            out[i] = canvas
        return out

    def depth(self, start: int, count: int) -> np.ndarray:
        """Depth-like control (count, H, W, 3) uint8: background dark, nearer shapes brighter."""
        out = np.empty((count, self.height, self.width, 3), np.uint8)
        y = np.linspace(40, 10, self.height, dtype=np.float32)[:, None, None]
        background = np.broadcast_to(y, (self.height, self.width, 3)).astype(np.uint8)
        levels = np.linspace(140, 250, len(self.shapes)).astype(int)
        for i in range(count):
            canvas = background.copy()
            for shape, level in zip(self.shapes, levels):
                _draw(canvas, shape, shape.centre(start + i, self.width, self.height), (int(level),) * 3)
            out[i] = canvas
        return out

    def masks(self, start: int, count: int) -> np.ndarray:
        """Where the shapes are: (count, H, W) bool."""
        out = np.zeros((count, self.height, self.width), np.uint8)
        for i in range(count):
            for shape in self.shapes:
                _draw(out[i], shape, shape.centre(start + i, self.width, self.height), 1)
        return out > 0

    def reference(self) -> np.ndarray:
        """A close-up still of the first shape, centred on mid grey and as tall as the frame:
        (H, W, 3) uint8, the clip's R2V reference (its colour covers a quarter to a half of it)."""
        canvas = np.full((self.height, self.width, 3), 128, np.uint8)
        close_up = replace(self.shapes[0], size=REFERENCE_SIZE * self.height)
        _draw(canvas, close_up, (self.width // 2, self.height // 2), PALETTE[self.colour])
        return canvas


def box_mask(rng: np.random.Generator, count: int, width: int, height: int) -> np.ndarray:
    """An inpainting mask (count, H, W) float32, 1 = generate: one random box, still over the clip."""
    mask = np.zeros((count, height, width), np.float32)
    bw, bh = int(rng.uniform(0.3, 0.7) * width), int(rng.uniform(0.3, 0.7) * height)
    x0, y0 = int(rng.integers(0, width - bw + 1)), int(rng.integers(0, height - bh + 1))
    mask[:, y0:y0 + bh, x0:x0 + bw] = 1.0
    return mask
