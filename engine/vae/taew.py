"""TAEW2.1: the tiny autoencoder for Wan2.1 latents (madebyollin/taehv), streaming by chunks.

Module layout follows ``taehv.py`` (class ``TAEHV``) so ``taew2_1.pth`` loads strictly: two
``nn.Sequential`` stacks, ``encoder.N`` and ``decoder.N``, of 3x3 convs, ``MemBlock``s
(``conv.{0,2,4}``, optional ``skip``), ``TPool`` / ``TGrow`` (``conv``, 1x1, no bias).

Time: a ``MemBlock`` sees its own input at the previous time step (zeros at stream start);
``TPool(stride 2)`` merges consecutive frame pairs, ``TGrow(stride 2)`` splits each frame into two.
The per-stream cache holds, for every MemBlock, its last input frame, so chunks stream exactly.

* **Encode**: each group of 4 consecutive frames from the stream start gives one latent (taehv's
  own grouping; no first-frame special case), so 12 frames in -> 3 latents out on every chunk
  with no lag. Frames short of a whole group wait in the cache.
* **Decode**: each latent gives 4 frames; the first 3 frames of a stream are dropped (taehv's
  ``frames_to_trim``, aligning with the Wan VAE, whose latent 0 is one frame), so the first chunk
  of 3 latents gives 9 frames and later chunks 12. Concatenated, the chunks of a stream are
  exactly taehv's ``decode_video`` of all its latents (which decodes 4t frames and drops the
  first 3); ``tests/test_vae.py`` pins this against a fixture made with taehv's own code.

Latents: TAEW encodes to and decodes from exactly the latents the DiT uses (taehv's README: "TAEHV
does not use any latent scales / shifts"), i.e. the same normalised space as
:func:`~engine.vae.base.normalize_latents` gives for the Wan VAE, so no Wan mean/std is applied
here. Pixels: ``[-1, 1]`` at the interface, ``[0, 1]`` inside (taehv's range).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vacelive.engine.model.loading import read_checkpoint

from .base import DirectedStreamCache, load_state_dict_strict


@dataclass(frozen=True)
class TAEWConfig:
    """Widths and temporal/spatial scaling of TAEHV (taew2_1 defaults)."""

    enc_channels: int = 64
    dec_channels: tuple[int, int, int, int] = (256, 128, 64, 64)
    latent_channels: int = 16
    patch_size: int = 1
    encoder_time_downscale: tuple[bool, bool, bool] = (True, True, False)
    decoder_time_upscale: tuple[bool, bool, bool] = (False, True, True)
    decoder_space_upscale: tuple[bool, bool, bool] = (True, True, True)


TAEW_CONFIGS: dict[str, TAEWConfig] = {
    "real": TAEWConfig(),
    "tiny": TAEWConfig(enc_channels=8, dec_channels=(16, 8, 8, 8)),
}


def conv(n_in: int, n_out: int, **kwargs) -> nn.Conv2d:
    return nn.Conv2d(n_in, n_out, 3, padding=1, **kwargs)


class Clamp(nn.Module):
    """Soft clamp to (-3, 3)."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(x / 3) * 3


class MemBlock(nn.Module):
    """Residual block fed with the current frame and the previous frame's input."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(conv(n_in * 2, n_out), nn.ReLU(), conv(n_out, n_out), nn.ReLU(), conv(n_out, n_out))
        self.skip = nn.Conv2d(n_in, n_out, 1, bias=False) if n_in != n_out else nn.Identity()
        self.act = nn.ReLU()

    def forward(self, x: Tensor, past: Tensor) -> Tensor:
        return self.act(self.conv(torch.cat([x, past], 1)) + self.skip(x))


class TPool(nn.Module):
    """Merge ``stride`` consecutive frames (stacked on channels) with a 1x1 conv."""

    def __init__(self, n_f: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.conv = nn.Conv2d(n_f * stride, n_f, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:  # [N*T, C, H, W] -> [N*T/stride, C, H, W]
        _, c, h, w = x.shape
        return self.conv(x.reshape(-1, self.stride * c, h, w))


class TGrow(nn.Module):
    """Split every frame into ``stride`` consecutive frames with a 1x1 conv."""

    def __init__(self, n_f: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.conv = nn.Conv2d(n_f, n_f * stride, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:  # [N*T, C, H, W] -> [N*T*stride, C, H, W]
        _, c, h, w = x.shape
        return self.conv(x).reshape(-1, c, h, w)


def _apply(seq: nn.Sequential, x: Tensor, memory: dict[int, Tensor]) -> Tensor:
    """Run ``seq`` on the next frames ``x`` [N, T, C, H, W] of a stream, all frames in parallel."""
    n, t = x.shape[:2]
    x = x.flatten(0, 1)
    for i, block in enumerate(seq):
        if isinstance(block, MemBlock):
            frames = x.unflatten(0, (n, t))
            prev = memory.get(i)
            if prev is None:
                prev = torch.zeros_like(frames[:, 0])
            past = torch.cat([prev.unsqueeze(1), frames[:, :-1]], dim=1)
            memory[i] = frames[:, -1].clone()
            x = block(x, past.flatten(0, 1))
        elif isinstance(block, TPool):
            if t % block.stride:
                raise ValueError(f"TPool needs a multiple of {block.stride} frames, got {t}")
            x, t = block(x), t // block.stride
        elif isinstance(block, TGrow):
            x, t = block(x), t * block.stride
        else:
            x = block(x)
    return x.unflatten(0, (n, t))


class TAEWStreamCache(DirectedStreamCache):
    """State of one stream through :class:`TAEW`: ``memory`` holds the last input frame of every
    MemBlock (by index in its Sequential); ``pending`` the encode frames waiting for a group of 4."""


class TAEW(nn.Module):
    """Tiny Wan2.1 autoencoder behind the :class:`~engine.vae.base.VideoAutoencoder` interface."""

    def __init__(self, cfg: TAEWConfig = TAEW_CONFIGS["real"]) -> None:
        super().__init__()
        self.cfg = cfg
        self.z_dim = cfg.latent_channels
        e, pix = cfg.enc_channels, 3 * cfg.patch_size**2
        enc: list[nn.Module] = [conv(pix, e), nn.ReLU()]
        for down in cfg.encoder_time_downscale:
            enc += [TPool(e, 2 if down else 1), conv(e, e, stride=2, bias=False), MemBlock(e, e), MemBlock(e, e), MemBlock(e, e)]
        enc.append(conv(e, cfg.latent_channels))
        self.encoder = nn.Sequential(*enc)
        n_f = cfg.dec_channels
        dec: list[nn.Module] = [Clamp(), conv(cfg.latent_channels, n_f[0]), nn.ReLU()]
        for i in range(3):
            dec += [MemBlock(n_f[i], n_f[i]), MemBlock(n_f[i], n_f[i]), MemBlock(n_f[i], n_f[i]),
                    nn.Upsample(scale_factor=2 if cfg.decoder_space_upscale[i] else 1),
                    TGrow(n_f[i], 2 if cfg.decoder_time_upscale[i] else 1), conv(n_f[i], n_f[i + 1], bias=False)]
        dec += [nn.ReLU(), conv(n_f[3], pix)]
        self.decoder = nn.Sequential(*dec)
        self.t_downscale = 2 ** sum(cfg.encoder_time_downscale)
        self.t_upscale = 2 ** sum(cfg.decoder_time_upscale)
        self.frames_to_trim = self.t_upscale - 1

    def new_cache(self) -> TAEWStreamCache:
        return TAEWStreamCache()

    def _param(self) -> Tensor:
        return next(self.parameters())

    @torch.no_grad()
    def encode(self, frames: Tensor, cache: TAEWStreamCache) -> Tensor:
        """Next frames ``[B, 3, T, H, W]`` in [-1, 1] -> DiT latents ``[B, 16, t, H/8, W/8]``.

        ``t`` = complete groups of 4 frames so far (3 for every 12-frame chunk).
        """
        cache._claim("encode")
        p = self._param()
        x = frames.to(device=p.device, dtype=p.dtype)
        if cache.pending is not None:
            x = torch.cat([cache.pending, x], dim=2)
        usable = x.shape[2] // self.t_downscale * self.t_downscale
        cache.pending = x[:, :, usable:].clone() if usable < x.shape[2] else None
        cache.position += usable
        b, _, _, h, w = x.shape
        if not usable:
            return x.new_zeros(b, self.z_dim, 0, h // 8, w // 8)
        x = x[:, :, :usable].transpose(1, 2).add(1).mul(0.5)  # [B, T, 3, H, W] in [0, 1]
        if self.cfg.patch_size > 1:
            x = F.pixel_unshuffle(x.flatten(0, 1), self.cfg.patch_size).unflatten(0, (b, usable))
        z = _apply(self.encoder, x, cache.memory)  # [B, t, 16, h, w]
        return z.transpose(1, 2)

    @torch.no_grad()
    def decode(self, latents: Tensor, cache: TAEWStreamCache) -> Tensor:
        """Next DiT latents ``[B, 16, t, h, w]`` -> frames ``[B, 3, T, 8h, 8w]`` in [-1, 1].

        ``T = 4t``; on a stream's first chunk the first 3 frames are dropped (``T = 4t - 3``).
        """
        cache._claim("decode")
        p = self._param()
        z = latents.to(device=p.device, dtype=p.dtype).transpose(1, 2)  # [B, t, 16, h, w]
        y = _apply(self.decoder, z, cache.memory)  # [B, T, 3*p*p, H, W]
        if self.cfg.patch_size > 1:
            y = F.pixel_shuffle(y.flatten(0, 1), self.cfg.patch_size).unflatten(0, y.shape[:2])
        if cache.position == 0:
            y = y[:, self.frames_to_trim:]
        cache.position += latents.shape[2]
        return y.clamp(0, 1).mul(2).sub(1).transpose(1, 2)

    def encode_image(self, image: Tensor) -> Tensor:
        """One image ``[B, 3, 1, H, W]`` -> latent ``[B, 16, 1, H/8, W/8]``.

        TAEW needs 4 frames per latent; the image is repeated 4 times (a still clip).
        """
        return self.encode(image.expand(-1, -1, self.t_downscale, -1, -1), self.new_cache())


Shaped = TypeVar("Shaped", Tensor, tuple[int, ...])


def _tgrow_rows(config: str) -> dict[str, int]:
    """``decoder.N.conv.weight`` -> output channels, for every TGrow of the ``config`` model."""
    with torch.device("meta"):
        model = TAEW(TAEW_CONFIGS[config])
    return {f"decoder.{i}.conv.weight": block.conv.weight.shape[0]
            for i, block in enumerate(model.decoder) if isinstance(block, TGrow)}


def fit_taew_checkpoint(state: Mapping[str, Shaped], config: str = "real") -> dict[str, Shaped]:
    """A checkpoint as the loader uses it: tensors, or just their shapes (for ``weights check``).

    As taehv's ``patch_tgrow_layers`` does, a TGrow weight with more output channels than the
    model's (a checkpoint trained with time upsampling where this config has none) keeps its last
    rows, those of the last time step; every other entry is returned as is.
    """
    fitted = dict(state)
    for key, rows in _tgrow_rows(config).items():
        value = fitted.get(key)
        if value is None:
            continue
        if isinstance(value, Tensor):
            if value.shape[0] > rows:
                fitted[key] = value[-rows:]
        elif value[0] > rows:
            fitted[key] = (rows, *value[1:])
    return fitted


def load_taew(path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
              config: str = "real") -> TAEW:
    """Build TAEW2.1 and load ``taew2_1.pth`` (or a ``.safetensors`` file) strictly.

    A wider ``TGrow`` weight is cut as taehv cuts it (:func:`fit_taew_checkpoint`); every other
    difference raises.
    """
    state = fit_taew_checkpoint(read_checkpoint(path), config)
    model = TAEW(TAEW_CONFIGS[config])
    load_state_dict_strict(model, state, str(path))
    return model.to(device=device, dtype=dtype).eval().requires_grad_(False)
