"""Shared interface and helpers for the streaming video autoencoders.

Both autoencoders (the Wan2.1 VAE and the tiny TAEW2.1) speak the same language:

* pixels: ``[B, 3, T, H, W]`` float in ``[-1, 1]``;
* latents: ``[B, 16, t, H/8, W/8]``, *normalised* with the official Wan2.1 per-channel mean/std
  (``(mu - mean) / std``), i.e. the space the DiT works in;
* streaming: every call takes one chunk and a per-stream :class:`StreamCache`; ``12 frames in ->
  3 latents out`` and ``3 latents in -> 12 frames out`` (the first decode chunk of a stream gives
  ``1 + 4 * 2 = 9`` frames).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

# Official Wan2.1 latent statistics (wan/modules/vae.py, class WanVAE).
LATENT_MEAN: tuple[float, ...] = (
    -0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
    0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921,
)
LATENT_STD: tuple[float, ...] = (
    2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
    3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160,
)

TEMPORAL_STRIDE = 4
SPATIAL_STRIDE = 8


def _stats(like: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and std as ``[1, 16, 1, 1, 1]`` tensors on ``like``'s device and dtype."""
    mean = torch.tensor(LATENT_MEAN, device=like.device, dtype=like.dtype).view(1, -1, 1, 1, 1)
    std = torch.tensor(LATENT_STD, device=like.device, dtype=like.dtype).view(1, -1, 1, 1, 1)
    return mean, std


def normalize_latents(mu: Tensor) -> Tensor:
    """Raw VAE latents ``[B, 16, t, h, w]`` -> the normalised space the DiT uses."""
    mean, std = _stats(mu)
    return (mu - mean) / std


def denormalize_latents(z: Tensor) -> Tensor:
    """Normalised latents ``[B, 16, t, h, w]`` -> raw VAE latents."""
    mean, std = _stats(z)
    return z * std + mean


@runtime_checkable
class StreamCache(Protocol):
    """Per-stream state of one autoencoder (conv feature caches plus stream position)."""

    position: int  # frames (encode) or latent frames (decode) consumed so far

    def reset(self) -> None:
        """Forget everything: the next chunk starts a new stream (hard cut)."""


@dataclass
class DirectedStreamCache:
    """The state of one stream through an autoencoder, in one direction (encode *or* decode).

    ``memory``: the tail of the stream each layer needs (keyed by the autoencoder);
    ``position``: frames encoded, or latent frames decoded, so far; ``pending``: encode only,
    input frames waiting for a complete group; ``direction``: set by the first call.
    """

    memory: dict[Any, Any] = field(default_factory=dict)
    position: int = 0
    pending: Tensor | None = None
    direction: str | None = None

    def reset(self) -> None:
        """Start a new stream (hard cut)."""
        self.memory = {}
        self.position = 0
        self.pending = None
        self.direction = None

    def _claim(self, direction: str) -> None:
        if self.direction is None:
            self.direction = direction
        elif self.direction != direction:
            raise ValueError(f"this cache belongs to a {self.direction} stream; use another cache to {direction}")


@runtime_checkable
class VideoAutoencoder(Protocol):
    """What the engine needs from a streaming video autoencoder.

    ``encode``: ``[B, 3, T, H, W]`` in ``[-1, 1]`` -> normalised latents ``[B, 16, t, H/8, W/8]``.
    With 12-frame chunks every call returns exactly 3 latent frames.
    ``decode``: normalised latents ``[B, 16, t, h, w]`` -> ``[B, 3, T, 8h, 8w]`` in ``[-1, 1]``;
    ``T = 4t`` except the first chunk of a stream, where ``T = 4t - 3`` (9 for t = 3).
    A cache object serves one stream in one direction; keep one per stream.
    """

    z_dim: int

    def new_cache(self) -> StreamCache: ...

    def encode(self, frames: Tensor, cache: StreamCache) -> Tensor: ...

    def decode(self, latents: Tensor, cache: StreamCache) -> Tensor: ...

    def encode_image(self, image: Tensor) -> Tensor: ...


def load_state_dict_strict(module: nn.Module, state_dict: Mapping[str, Tensor], source: str,
                           assign: bool = False) -> None:
    """Load ``state_dict`` into ``module`` requiring exactly the same keys and shapes.

    Raises ``KeyError`` naming every missing, unexpected or mis-shaped key and the ``source``.
    """
    own = module.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    mis_shaped = sorted(
        f"{k} (checkpoint {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)})"
        for k in set(own) & set(state_dict) if tuple(own[k].shape) != tuple(state_dict[k].shape))
    if missing or unexpected or mis_shaped:
        parts = []
        if missing:
            parts.append(f"missing keys: {missing}")
        if unexpected:
            parts.append(f"unexpected keys: {unexpected}")
        if mis_shaped:
            parts.append(f"shape mismatch: {mis_shaped}")
        raise KeyError(f"{source} does not match {type(module).__name__}: " + "; ".join(parts))
    module.load_state_dict(state_dict, strict=True, assign=assign)
