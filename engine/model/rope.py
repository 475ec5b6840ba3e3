"""3D rotary position embedding over (frame, height, width), as in Wan2.1.

The head dimension is split into complex pairs: ``c - 2*(c//3)`` pairs for the frame axis and
``c//3`` each for height and width (``c = head_dim // 2``; 22/21/21 for head_dim 128). Adjacent
channels (2i, 2i+1) form one complex number, like Wan's ``view_as_complex``. The frame position is
the absolute latent frame index, computed on the fly so it can grow without bound; angles are
computed in float64 and applied in float32.
"""

from __future__ import annotations

import torch
from torch import Tensor


class Rope3D:
    """Computes the (cos, sin) tables for a token grid starting at an absolute frame index."""

    def __init__(self, head_dim: int, theta: float = 10000.0) -> None:
        c = head_dim // 2
        self.split = (c - 2 * (c // 3), c // 3, c // 3)
        # inverse frequencies per axis: 1 / theta^(2i / (2n)), i < n; always on CPU (the model may
        # be built on the meta device), tables are moved to the target device per call
        self.inv_freq = [
            1.0 / theta ** (torch.arange(0, 2 * n, 2, dtype=torch.float64, device="cpu") / (2 * n))
            for n in self.split
        ]
        self._last: tuple[tuple, tuple[Tensor, Tensor]] | None = None

    def cos_sin(
        self, start_frame: int, grid: tuple[int, int, int], device: torch.device | str
    ) -> tuple[Tensor, Tensor]:
        """Return (cos, sin), each [F*H*W, head_dim // 2] float32, token order (f, h, w)."""
        key = (start_frame, tuple(grid), str(device))
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        f, h, w = grid
        pos = [
            torch.arange(start_frame, start_frame + f, dtype=torch.float64, device="cpu"),
            torch.arange(h, dtype=torch.float64, device="cpu"),
            torch.arange(w, dtype=torch.float64, device="cpu"),
        ]
        ang_f, ang_h, ang_w = (torch.outer(p, inv) for p, inv in zip(pos, self.inv_freq))
        angles = torch.cat(
            [
                ang_f[:, None, None, :].expand(f, h, w, -1),
                ang_h[None, :, None, :].expand(f, h, w, -1),
                ang_w[None, None, :, :].expand(f, h, w, -1),
            ],
            dim=-1,
        ).reshape(f * h * w, -1)
        out = (angles.cos().float().to(device), angles.sin().float().to(device))
        self._last = (key, out)
        return out


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate adjacent channel pairs of x [B, N, heads, head_dim] by the angles (cos/sin [N, head_dim/2])."""
    xf = x.float().unflatten(-1, (-1, 2))  # [B, N, H, D/2, 2]
    re, im = xf.unbind(-1)
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    out = torch.stack((re * c - im * s, re * s + im * c), dim=-1).flatten(-2)
    return out.to(x.dtype)
