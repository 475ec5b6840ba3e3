"""The Annotator and MaskSource interfaces.

An annotator turns input frames into VACE control frames: ``(T, H, W, 3) uint8`` in,
``(T, H, W, 3) uint8`` out, same size, in the visual conventions VACE was trained on.
Settings (thresholds, options) come from the engine's parameter snapshot on every call, so a
change made over OSC applies at the next chunk without rebuilding the annotator.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import numpy as np


class Annotator(ABC):
    """Turns RGB frames into control frames; may keep state across calls (flow, depth range)."""

    name: str

    @abstractmethod
    def __call__(self, frames: np.ndarray, settings: Mapping[str, Any]) -> np.ndarray:
        """Annotate ``frames`` (T, H, W, 3) uint8 and return control frames of the same shape."""

    def reset(self) -> None:
        """Forget state carried across calls (called on a hard cut)."""


class MaskSource(ABC):
    """Produces inpainting masks, 1 = generate, 0 = keep."""

    name: str

    @abstractmethod
    def __call__(
        self, frames: np.ndarray, settings: Mapping[str, Any], alpha: np.ndarray | None = None
    ) -> np.ndarray:
        """Return masks (T, H, W) float32 in [0, 1] for ``frames`` (T, H, W, 3) uint8.

        ``alpha`` is the input's alpha channel (T, H, W) uint8 when the source carries one.
        """

    def reset(self) -> None:
        """Forget state carried across calls."""
