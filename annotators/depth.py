"""The depth annotator: Depth Anything V2 rendered as a grey map, near = bright.

The network predicts relative inverse depth; each frame is normalised by a running min/max
(``depth_smoothing`` is the weight of the previous range) so the picture does not flicker
when the nearest or farthest thing in view changes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from contextlib import nullcontext
from typing import Any

import cv2
import numpy as np
import torch

from vacelive.annotators.base import Annotator
from vacelive.annotators.depth_model import DepthAnythingV2
from vacelive.annotators.settings import check_frames, get_float

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def network_size(height: int, width: int, input_size: int, multiple: int = 14) -> tuple[int, int]:
    """The size the network sees: the shorter side scaled to ``input_size``, aspect kept,
    both sides rounded to multiples of 14 and never below ``input_size`` (as the reference)."""
    scale = max(input_size / height, input_size / width)

    def fit(x: float) -> int:
        y = round(x / multiple) * multiple
        return y if y >= input_size else math.ceil(x / multiple) * multiple

    return fit(height * scale), fit(width * scale)


class DepthRange:
    """Running min/max of the depth maps: ``new = s * previous + (1 - s) * current``."""

    def __init__(self) -> None:
        self.lo: float | None = None
        self.hi: float | None = None

    def reset(self) -> None:
        """Forget the range; the next frame sets it."""
        self.lo = self.hi = None

    def update(self, lo: float, hi: float, smoothing: float) -> tuple[float, float]:
        """Blend the frame's range into the running range and return the running range."""
        if self.lo is None or self.hi is None:
            self.lo, self.hi = lo, hi
        else:
            self.lo = smoothing * self.lo + (1.0 - smoothing) * lo
            self.hi = smoothing * self.hi + (1.0 - smoothing) * hi
        return self.lo, self.hi


class DepthAnnotator(Annotator):
    """Depth maps from a Depth Anything V2 network, 3-channel grey, near = bright."""

    name = "depth"

    def __init__(self, model: DepthAnythingV2, input_size: int = 518, device: str = "cpu") -> None:
        if input_size % 14:
            raise ValueError(f"depth input_size must be a multiple of 14, got {input_size}")
        self.device = torch.device(device)
        self.dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        self.model = model.to(self.device, self.dtype).eval()
        self.input_size = input_size
        self.range = DepthRange()
        self._mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1) * 255
        self._std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1) * 255
        # on a GPU the network runs on a stream of its own: its waits are for its own work, not
        # for the generator's kernels queued on the default stream by another thread
        self.stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None
        if self.stream is not None:
            torch.cuda.current_stream(self.device).synchronize()  # weights in place before its first use

    def reset(self) -> None:
        """Forget the running depth range."""
        self.range.reset()

    @torch.inference_mode()
    def predict(self, frames: np.ndarray) -> torch.Tensor:
        """Relative inverse depth (T, h, w) float32 at the network's size for (T, H, W, 3) uint8.

        Frames are resized on the CPU as uint8 (bicubic, as the reference) before the copy to
        the device, which keeps the transfer and the normalisation small.
        """
        height, width = frames.shape[1:3]
        net_h, net_w = network_size(height, width, self.input_size)
        small = np.stack([
            cv2.resize(f, (net_w, net_h), interpolation=cv2.INTER_CUBIC) for f in frames
        ])
        x = torch.from_numpy(small).to(self.device).permute(0, 3, 1, 2).float()
        x = ((x - self._mean) / self._std).to(self.dtype)
        return self.model(x).float()

    def __call__(self, frames: np.ndarray, settings: Mapping[str, Any]) -> np.ndarray:
        with torch.cuda.stream(self.stream) if self.stream is not None else nullcontext():
            return self._annotate(frames, settings)

    def _annotate(self, frames: np.ndarray, settings: Mapping[str, Any]) -> np.ndarray:
        check_frames(frames)
        smoothing = get_float(settings, "depth_smoothing")
        depth = self.predict(frames)
        lows = depth.amin(dim=(1, 2)).tolist()
        highs = depth.amax(dim=(1, 2)).tolist()
        ranges = [self.range.update(lo, hi, smoothing) for lo, hi in zip(lows, highs)]
        lo = torch.tensor([r[0] for r in ranges], device=depth.device).view(-1, 1, 1)
        hi = torch.tensor([r[1] for r in ranges], device=depth.device).view(-1, 1, 1)
        grey = ((depth - lo) / (hi - lo).clamp_min(1e-6)).clamp(0, 1) * 255
        grey = grey.round().to(torch.uint8).cpu().numpy()
        height, width = frames.shape[1:3]
        out = np.empty_like(frames)
        for i, g in enumerate(grey):
            up = cv2.resize(g, (width, height), interpolation=cv2.INTER_LINEAR)
            cv2.cvtColor(up, cv2.COLOR_GRAY2RGB, dst=out[i])
        return out
