"""vace_context per chunk: 16 inactive + 16 reactive latents + 64 mask channels per latent frame.

Mirrors the official Wan2.1 ``WanVace.vace_encode_frames`` / ``vace_encode_masks``, streamed:

- masks are binarised at 0.5 for encoding; ``inactive = frames * (1 - m)`` (what to keep) and
  ``reactive = frames * m`` (what to regenerate) are VAE-encoded separately, each stream with
  its own encoder cache;
- the mask itself is folded: each 8x8 pixel patch goes to 64 channels (channel ``8*py + px``)
  and time is resampled to the latent length. Time follows the VAE's own streaming grouping:
  frame 0 of a stream alone makes latent 0, then every 4 frames make one latent, the leftover
  frames waiting for the next chunk (12 frames -> 3 latents per chunk). A latent takes the
  maximum of its frames' masks: it is marked "keep" (0) only when all its frames are kept.
- references get ``[latent, zeros(16), zeros(64)]`` (the official layout with masks).

Frame composition (:func:`compose_frames`), as the official ``prepare_source`` does: with no
mask, ``mask = 1`` everywhere and the frames are the control frames (gray, i.e. 0, without
control), so ``inactive = 0`` and ``reactive = control``; with a mask, the source frames are
kept where ``mask = 0`` and the control frames (gray without control) fill where ``mask = 1``.
Keyframes replace whole frames with ``mask = 0``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

from vacelive.engine.vae import StreamCache, VideoAutoencoder

from .zero_stream import ZeroStreamMemo

MASK_CHANNELS = 64
SPATIAL = 8
TEMPORAL = 4
FIRST_KEYFRAME_INDEX = 0
"""Chunk frame holding ``keyframe_first``: frame 0 of a stream is latent 0 alone, output frame 0."""
LAST_KEYFRAME_INDEX = 8
"""Chunk frame holding ``keyframe_last``: the last frame of the chunk's last latent (the VAE
groups frames 5..8 into it; frames 9..11 wait for the next chunk), i.e. the last output frame
of this chunk (output frames of a chunk are input frames 9..11 of the previous chunk and 0..8)."""


def fold_mask(mask: Tensor) -> Tensor:
    """Spatial fold: mask [B, t, H, W] -> [B, 64, t, H/8, W/8], channel = 8 * py + px."""
    return rearrange(mask, "b t (h py) (w px) -> b (py px) t h w", py=SPATIAL, px=SPATIAL)


class MaskStream:
    """Resamples a streamed mask in time exactly as the VAE groups frames, then folds it."""

    def __init__(self) -> None:
        self.position = 0  # frames consumed since reset
        self.pending: Tensor | None = None  # [B, <4, H, W] frames waiting for their group

    def reset(self) -> None:
        """Hard cut: the next chunk starts a new stream."""
        self.position, self.pending = 0, None

    def __call__(self, mask: Tensor) -> Tensor:
        """Next mask frames [B, T, H, W] -> folded [B, 64, t, H/8, W/8] (t as the VAE gives)."""
        x = mask if self.pending is None else torch.cat([self.pending, mask], 1)
        latents = []
        if self.position == 0 and x.shape[1] > 0:
            latents.append(x[:, :1])
            self.position, x = 1, x[:, 1:]
        usable = x.shape[1] // TEMPORAL * TEMPORAL
        if usable:
            latents.append(x[:, :usable].unflatten(1, (-1, TEMPORAL)).amax(2))  # [B, usable/4, H, W]
            self.position += usable
        self.pending = x[:, usable:].clone() if usable < x.shape[1] else None
        b, _, h, w = mask.shape
        resampled = torch.cat(latents, 1) if latents else mask.new_zeros(b, 0, h, w)
        return fold_mask(resampled)


class VaceContextEncoder:
    """Builds the chunk's vace_context with its own streams: the inactive and the reactive VAE
    encoder caches and the mask stream (never shared with the decoder or each other). While the
    inactive stream has only seen zeros (no mask since the last reset), its latents come from a
    :class:`~engine.vace.zero_stream.ZeroStreamMemo`: the same values, without the encode."""

    def __init__(self, vae: VideoAutoencoder) -> None:
        self.vae = vae
        self.inactive_cache: StreamCache = vae.new_cache()
        self.reactive_cache: StreamCache = vae.new_cache()
        self.mask_stream = MaskStream()
        self.zero_memo = ZeroStreamMemo(vae)
        self._zero_chunks: int | None = 0
        """Zero chunks answered from the memo since reset; None once the inactive stream saw frames."""

    def reset(self) -> None:
        """Hard cut: restart all three streams."""
        self.inactive_cache.reset()
        self.reactive_cache.reset()
        self.mask_stream.reset()
        self._zero_chunks = 0

    def encode(self, frames: Tensor, mask: Tensor) -> Tensor:
        """frames [B, 3, T, H, W] in [-1, 1], mask [B, T, H, W] in [0, 1] (1 = generate)
        -> vace_context [B, 96, t, H/8, W/8] (t = 3 for a 12-frame chunk)."""
        m = (mask > 0.5).to(frames.dtype)[:, None]  # [B, 1, T, H, W]
        inactive = self._encode_inactive(frames * (1 - m))  # [B, 16, t, h, w]
        reactive = self.vae.encode(frames * m, self.reactive_cache)
        folded = self.mask_stream(mask.to(inactive))  # [B, 64, t, h, w]
        return torch.cat([inactive, reactive, folded], 1)


    def _encode_inactive(self, inactive: Tensor) -> Tensor:
        """The inactive stream's latents; all-zero chunks of a stream that never saw anything
        else come from the memo (exactly what encoding them gives, at no cost)."""
        if self._zero_chunks is not None:
            if not inactive.any():
                latents = self.zero_memo.latents_for(self._zero_chunks, inactive)
                if latents is not None:
                    self._zero_chunks += 1
                    return latents
            if self._zero_chunks:  # take up the stream where the remembered zero chunks left it
                self.inactive_cache = self.zero_memo.state_after(self._zero_chunks)
            self._zero_chunks = None
        return self.vae.encode(inactive, self.inactive_cache)


def reference_context(latents: Tensor) -> Tensor:
    """Reference latents [B, 16, R, h, w] -> their vace_context entries [B, 96, R, h, w]."""
    return F.pad(latents, (0, 0, 0, 0, 0, 0, 0, 16 + MASK_CHANNELS))


def to_unit(frames: np.ndarray) -> np.ndarray:
    """uint8 (..., 3) -> float32 in [-1, 1]."""
    return frames.astype(np.float32) / 127.5 - 1.0


def compose_frames(source: np.ndarray, control: np.ndarray | None, masks: np.ndarray | None,
                   keyframe_first: np.ndarray | None = None,
                   keyframe_last: np.ndarray | None = None,
                   like: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """The chunk's VACE frames and mask, composed on ``like``'s device (CPU float32 without it).

    source, control: (T, H, W, 3) uint8; masks: (T, H, W) float32, 1 = generate; keyframes:
    (H, W, 3) uint8 at ``FIRST_KEYFRAME_INDEX`` / ``LAST_KEYFRAME_INDEX`` with mask 0.
    The frames travel as uint8 (a quarter of float32's bytes) and become floats there.
    Returns frames [1, 3, T, H, W] in [-1, 1] and mask [1, T, H, W], in ``like``'s dtype.
    """
    device = like.device if like is not None else torch.device("cpu")
    dtype = like.dtype if like is not None else torch.float32

    def unit(images: np.ndarray) -> Tensor:  # uint8 (..., 3) -> float32 in [-1, 1] on the device
        return torch.from_numpy(np.ascontiguousarray(images)).to(device).float() / 127.5 - 1.0

    fill = unit(control) if control is not None else torch.zeros(source.shape, device=device)
    if masks is None:
        mask = torch.ones(source.shape[:3], device=device)
        frames = fill
    else:
        mask = torch.from_numpy(masks).to(device=device, dtype=torch.float32, copy=True)
        frames = torch.where((mask <= 0.5)[..., None], unit(source), fill)
    for image, index in ((keyframe_first, FIRST_KEYFRAME_INDEX), (keyframe_last, LAST_KEYFRAME_INDEX)):
        if image is not None:
            frames[index] = unit(image)
            mask[index] = 0.0
    return frames.permute(3, 0, 1, 2)[None].to(dtype), mask[None].to(dtype)


def to_video_tensor(frames: np.ndarray, like: Tensor) -> Tensor:
    """(T, H, W, 3) float32 -> [1, 3, T, H, W] on ``like``'s device and dtype."""
    return torch.from_numpy(np.ascontiguousarray(frames)).to(like).permute(3, 0, 1, 2)[None]
