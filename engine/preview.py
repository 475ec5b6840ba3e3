"""The control preview: what the model is given, as a picture for a preview sink.

Built from frames that already exist (the chunk's input, control and mask travel with its output
to the publisher) and composed on the preview sink's own writer thread, so it costs the
generator nothing and a slow preview sink never slows the output. ``preview`` chooses the view:

- ``control``: the annotator's control frame (the input when there is no annotator), the
  inpainting mask drawn over it in red where the model generates, and the reference images as a
  strip along the bottom when set;
- ``mask``: the mask, white where the model generates (all white without a mask);
- ``input``: the input frame as the model gets it (resized, placed when outpainting);
- ``side_by_side``: input | control | output, each at the output's size and labelled (so the
  picture is three times as wide as the output).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vacelive.engine.params import PREVIEW_CHOICES as PREVIEWS

log = logging.getLogger(__name__)

REFERENCE_PARAMS = ("reference_1", "reference_2", "reference_3")
MASK_TINT = np.array([255, 40, 40], np.float32)
MASK_ALPHA = 0.45
STRIP_FRACTION = 5
"""The reference strip is 1/STRIP_FRACTION of the frame's height."""
SIDE_BY_SIDE_LABELS = ("input", "control", "output")


@dataclass
class PreviewFrame:
    """One output tick's frames: the output and what the model was given for it."""

    output: np.ndarray  # (H, W, 3) uint8
    input: np.ndarray  # (H, W, 3) uint8
    control: np.ndarray | None  # (H, W, 3) uint8, None without an annotator
    mask: np.ndarray | None  # (H, W) float32, 1 = generate; None without a mask


def mask_overlay(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``image`` tinted red where ``mask`` > 0.5 (generated), unchanged where kept."""
    tinted = image.astype(np.float32)
    where = mask > 0.5
    tinted[where] = (1 - MASK_ALPHA) * tinted[where] + MASK_ALPHA * MASK_TINT
    return tinted.round().astype(np.uint8)


def fit(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` scaled to fit ``width`` x ``height`` (aspect kept), centred on black."""
    h, w = image.shape[:2]
    scale = min(width / w, height / h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    canvas = np.zeros((height, width, 3), np.uint8)
    top, left = (height - size[1]) // 2, (width - size[0]) // 2
    canvas[top:top + size[1], left:left + size[0]] = small
    return canvas


class ReferenceImages:
    """The reference images named by the store's paths, loaded once per path (RGB uint8)."""

    def __init__(self, paths: Callable[[], list[str]], resolve: Callable[[str], Path]) -> None:
        self.paths = paths
        self.resolve = resolve
        self._cache: dict[str, np.ndarray | None] = {}

    def images(self) -> list[np.ndarray]:
        """The images of the slots that are set and readable."""
        out = []
        for value in self.paths():
            if value not in self._cache:
                self._cache[value] = self._load(value)
            if self._cache[value] is not None:
                out.append(self._cache[value])
        return out

    def _load(self, value: str) -> np.ndarray | None:
        try:
            image = cv2.imread(str(self.resolve(value)), cv2.IMREAD_COLOR)
        except Exception as exc:  # a refused or odd path: the preview just shows no thumbnail
            log.debug("preview: reference %s not shown: %s", value, exc)
            return None
        return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def labelled(image: np.ndarray, label: str) -> np.ndarray:
    """A copy of ``image`` with ``label`` written in its top-left corner (white on a dark box)."""
    out = image.copy()
    height = out.shape[0]
    scale = max(0.35, height / 480)
    thickness = max(1, round(height / 240))
    (w, h), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    pad = max(2, h // 3)
    out[: h + base + 2 * pad, : w + 2 * pad] //= 3
    cv2.putText(out, label, (pad, pad + h), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return out


def with_strip(image: np.ndarray, references: list[np.ndarray]) -> np.ndarray:
    """``image`` with the references as thumbnails along its bottom edge."""
    if not references:
        return image
    out = image.copy()
    height, width = image.shape[:2]
    strip_h = max(8, height // STRIP_FRACTION)
    cell_w = width // max(len(references), STRIP_FRACTION)
    for i, ref in enumerate(references):
        out[height - strip_h:, i * cell_w:(i + 1) * cell_w] = fit(ref, cell_w, strip_h)
    return out


def preview_size(view: str, width: int, height: int) -> tuple[int, int]:
    """The (width, height) of ``view``'s picture for an output of ``width`` x ``height``."""
    return (3 * width, height) if view == "side_by_side" else (width, height)


def compose(view: str, frame: PreviewFrame, references: list[np.ndarray] | None = None) -> np.ndarray:
    """The preview picture for ``view`` (one of :data:`PREVIEWS`), the output's size."""
    height, width = frame.output.shape[:2]
    control = frame.control if frame.control is not None else frame.input
    if frame.mask is not None:
        control = mask_overlay(control, frame.mask)
    control = with_strip(control, references or [])
    if view == "control":
        return control
    if view == "mask":
        mask = frame.mask if frame.mask is not None else np.ones((height, width), np.float32)
        return np.repeat((np.clip(mask, 0, 1) * 255).round().astype(np.uint8)[..., None], 3, axis=2)
    if view == "input":
        return frame.input
    if view == "side_by_side":
        panels = [fit(p, width, height) for p in (frame.input, control, frame.output)]
        return np.concatenate([labelled(p, name) for p, name in zip(panels, SIDE_BY_SIDE_LABELS)], axis=1)
    raise ValueError(f"preview {view!r}: expected one of {', '.join(PREVIEWS)}")
