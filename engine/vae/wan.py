"""The Wan2.1 causal 3D VAE (z_dim 16, 4x temporal / 8x spatial), streaming chunk by chunk.

Module names follow ``wan/modules/vae.py`` (``WanVAE_``) exactly so that ``Wan2.1_VAE.pth``
loads strictly: ``encoder.conv1``, ``encoder.downsamples.N``, ``encoder.middle``,
``encoder.head``, ``conv1``, ``conv2``, ``decoder.conv1``, ``decoder.middle``,
``decoder.upsamples.N``, ``decoder.head``.

Streaming rules (the causal VAE's first-frame rule is applied once per stream):

* Every causal conv keeps the last ``CACHE_T = 2`` input frames of the stream in the cache, so a
  clip processed in several calls gives the same result as in one call.
* **Encode** maps frame 0 alone to latent 0 and then each group of 4 frames to one latent
  (latent ``k >= 1`` covers frames ``4k-3 .. 4k``), as Wan does. A chunk of 12 frames therefore
  cannot map onto whole latents at stream start: the first chunk encodes frame 0 alone plus
  frames 1..8 (3 latents) and keeps frames 9..11 as *pending* pixels in the cache; every later
  chunk prepends those 3 pending frames to its 12 and encodes 15 -> 3 latents + 3 pending. So
  **every 12-frame chunk gives exactly 3 latents**, with a fixed 3-frame lag. The lag matches the
  decoder exactly: the latents encoded from chunk ``n`` cover frames ``12n-3 .. 12n+8`` (chunk 0:
  ``0 .. 8``), the same frames that decoding chunk ``n``'s latents produces. Streaming the clip in
  chunks equals encoding its first ``12n - 3`` frames in one call.
* **Decode** maps latent 0 to one frame and every later latent to 4 frames: the first chunk of
  3 latents gives ``1 + 4*2 = 9`` frames, every later chunk 12.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import LATENT_STD, DirectedStreamCache, denormalize_latents, load_state_dict_strict, normalize_latents

CACHE_T = 2


@dataclass(frozen=True)
class WanVAEConfig:
    """Architecture of the Wan2.1 VAE (``_video_vae`` arguments)."""

    dim: int = 96
    z_dim: int = 16
    dim_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    attn_scales: tuple[float, ...] = ()
    temperal_downsample: tuple[bool, ...] = (False, True, True)


WAN_VAE_CONFIGS: dict[str, WanVAEConfig] = {
    "real": WanVAEConfig(),
    "tiny": WanVAEConfig(dim=8),
}

# Feature cache: per causal conv / temporal resample module, the tail of its input stream.
FeatCache = dict[nn.Module, object]


class CausalConv3d(nn.Conv3d):
    """3D conv, zero-padded only on the past side in time; ``past`` replaces that padding."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        pt, ph, pw = self.padding
        self._causal_pad = (pw, pw, ph, ph, 2 * pt, 0)
        self.padding = (0, 0, 0)

    def forward(self, x: Tensor, past: Tensor | None = None) -> Tensor:
        pad = list(self._causal_pad)
        if past is not None and pad[4] > 0:
            x = torch.cat([past.to(x.dtype), x], dim=2)
            pad[4] = max(pad[4] - past.shape[2], 0)
        x = F.pad(x, pad)
        if x.device.type == "cpu" and self.kernel_size[0] > 1:
            return self._taps_2d(x)
        return super().forward(x)

    def _taps_2d(self, x: Tensor) -> Tensor:
        """The same conv as a sum over temporal taps of 2D convs: CPU torch runs 3D convs on a
        slow reference kernel, 2D ones on oneDNN (about 3x faster here)."""
        kt, st = self.kernel_size[0], self.stride[0]
        b, c, t = x.shape[:3]
        t_out = (t - kt) // st + 1
        out = None
        for i in range(kt):
            frames = x[:, :, i: i + st * (t_out - 1) + 1: st].transpose(1, 2).flatten(0, 1)  # [B*t', C, H, W]
            y = F.conv2d(frames, self.weight[:, :, i], None, self.stride[1:], 0, self.dilation[1:], self.groups)
            out = y if out is None else out + y
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1)
        return out.unflatten(0, (b, t_out)).transpose(1, 2)  # [B, C', t', H', W']


def _cached(conv: CausalConv3d, x: Tensor, feats: FeatCache) -> Tensor:
    """Run ``conv`` on the next frames ``x`` of a stream, updating its cached input tail."""
    past = feats.get(conv)
    tail = x[:, :, -CACHE_T:]
    if tail.shape[2] < CACHE_T and past is not None:
        tail = torch.cat([past[:, :, -1:], tail], dim=2)
    out = conv(x, past)
    feats[conv] = tail.clone()
    return out


class RMS_norm(nn.Module):  # noqa: N801 - official name
    """L2-normalise over channels, times sqrt(dim) and a learned ``gamma``."""

    def __init__(self, dim: int, images: bool = True) -> None:
        super().__init__()
        shape = (dim, 1, 1) if images else (dim, 1, 1, 1)
        self.scale = dim**0.5
        self.gamma = nn.Parameter(torch.ones(shape))

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(x, dim=1) * self.scale * self.gamma


class Upsample(nn.Upsample):
    """Nearest-exact upsampling computed in float32 (bf16 support)."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.float()).type_as(x)


def _per_frame(fn, x: Tensor) -> Tensor:
    """Apply a 2D module to every frame of ``[B, C, T, H, W]``."""
    b, _, t = x.shape[:3]
    y = fn(x.transpose(1, 2).flatten(0, 1))  # [B*T, C', H', W']
    return y.unflatten(0, (b, t)).transpose(1, 2)


class Resample(nn.Module):
    """Spatial 2x up/down sampling, optionally with a causal temporal 2x (``*3d`` modes)."""

    def __init__(self, dim: int, mode: str) -> None:
        super().__init__()
        self.mode = mode
        if mode in ("upsample2d", "upsample3d"):
            self.resample = nn.Sequential(
                Upsample(scale_factor=(2.0, 2.0), mode="nearest-exact"),
                nn.Conv2d(dim, dim // 2, 3, padding=1))
        elif mode in ("downsample2d", "downsample3d"):
            self.resample = nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(dim, dim, 3, stride=(2, 2)))
        else:
            raise ValueError(f"unknown resample mode {mode!r}")
        if mode == "upsample3d":
            self.time_conv = CausalConv3d(dim, dim * 2, (3, 1, 1), padding=(1, 0, 0))
        elif mode == "downsample3d":
            self.time_conv = CausalConv3d(dim, dim, (3, 1, 1), stride=(2, 1, 1), padding=(0, 0, 0))

    def forward(self, x: Tensor, feats: FeatCache) -> Tensor:
        if self.mode == "upsample3d":
            x = self._time_up(x, feats)
        x = _per_frame(self.resample, x)
        if self.mode == "downsample3d":
            x = self._time_down(x, feats)
        return x

    def _time_up(self, x: Tensor, feats: FeatCache) -> Tensor:
        # Stream frame 0 passes without temporal upsampling (1 latent -> 1 frame); from then on
        # each frame becomes 2, and frame 0 is not part of this conv's history (zero padding).
        past = feats.get(self)
        if past is None:
            feats[self] = "first-frame-done"
            return x
        past = None if isinstance(past, str) else past
        tail = x[:, :, -CACHE_T:]
        if tail.shape[2] < CACHE_T:
            prev = past[:, :, -1:] if past is not None else torch.zeros_like(tail)
            tail = torch.cat([prev, tail], dim=2)
        y = self.time_conv(x, past)  # [B, 2C, T, H, W]
        feats[self] = tail.clone()
        b, c2, t, h, w = y.shape
        # channels (2, C) -> frames interleaved: [B, C, T, 2, H, W] -> [B, C, 2T, H, W]
        return y.view(b, 2, c2 // 2, t, h, w).permute(0, 2, 3, 1, 4, 5).reshape(b, c2 // 2, 2 * t, h, w)

    def _time_down(self, x: Tensor, feats: FeatCache) -> Tensor:
        # Stream frame 0 passes alone; later groups are convolved (stride 2) with the last frame
        # of the previous call in front: [prev, f1, f2, f3, f4] -> 2 frames.
        past = feats.get(self)
        feats[self] = x[:, :, -1:].clone()
        if past is None:
            return x
        return self.time_conv(torch.cat([past[:, :, -1:], x], dim=2))


class ResidualBlock(nn.Module):
    """Two (RMS_norm, SiLU, causal 3x3x3 conv) stages plus a (1x1x1 conv) shortcut."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.residual = nn.Sequential(
            RMS_norm(in_dim, images=False), nn.SiLU(),
            CausalConv3d(in_dim, out_dim, 3, padding=1),
            RMS_norm(out_dim, images=False), nn.SiLU(), nn.Dropout(0.0),
            CausalConv3d(out_dim, out_dim, 3, padding=1))
        self.shortcut = CausalConv3d(in_dim, out_dim, 1) if in_dim != out_dim else nn.Identity()

    def forward(self, x: Tensor, feats: FeatCache) -> Tensor:
        h = self.shortcut(x)
        for layer in self.residual:
            x = _cached(layer, x, feats) if isinstance(layer, CausalConv3d) else layer(x)
        return x + h


class AttentionBlock(nn.Module):
    """Single-head self-attention over the pixels of each frame."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = RMS_norm(dim)
        self.to_qkv = nn.Conv2d(dim, dim * 3, 1)
        self.proj = nn.Conv2d(dim, dim, 1)
        nn.init.zeros_(self.proj.weight)

    def forward(self, x: Tensor, feats: FeatCache | None = None) -> Tensor:
        # per frame, so no temporal state; ``feats`` is accepted for a uniform block call
        return x + _per_frame(self._attend, x)

    def _attend(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        qkv = self.to_qkv(self.norm(x)).view(n, 1, 3 * c, h * w).transpose(2, 3)  # [N, 1, HW, 3C]
        q, k, v = qkv.contiguous().chunk(3, dim=-1)
        y = F.scaled_dot_product_attention(q, k, v)  # [N, 1, HW, C]
        return self.proj(y.squeeze(1).transpose(1, 2).reshape(n, c, h, w))


def _head(out_dim: int, channels: int) -> nn.Sequential:
    return nn.Sequential(RMS_norm(out_dim, images=False), nn.SiLU(), CausalConv3d(out_dim, channels, 3, padding=1))


def _run(layers, x: Tensor, feats: FeatCache) -> Tensor:
    for layer in layers:
        if isinstance(layer, CausalConv3d):
            x = _cached(layer, x, feats)
        elif isinstance(layer, (ResidualBlock, Resample, AttentionBlock)):
            x = layer(x, feats)
        else:
            x = layer(x)
    return x


class Encoder3d(nn.Module):
    """Pixels ``[B, 3, T, H, W]`` -> ``[B, 2*z_dim, t, H/8, W/8]`` (mu and log-var)."""

    def __init__(self, cfg: WanVAEConfig) -> None:
        super().__init__()
        dims = [cfg.dim * u for u in (1, *cfg.dim_mult)]
        scale = 1.0
        self.conv1 = CausalConv3d(3, dims[0], 3, padding=1)
        blocks: list[nn.Module] = []
        for i, (in_dim, out_dim) in enumerate(zip(dims[:-1], dims[1:])):
            for _ in range(cfg.num_res_blocks):
                blocks.append(ResidualBlock(in_dim, out_dim))
                if scale in cfg.attn_scales:
                    blocks.append(AttentionBlock(out_dim))
                in_dim = out_dim
            if i != len(cfg.dim_mult) - 1:
                blocks.append(Resample(out_dim, "downsample3d" if cfg.temperal_downsample[i] else "downsample2d"))
                scale /= 2.0
        self.downsamples = nn.Sequential(*blocks)
        self.middle = nn.Sequential(ResidualBlock(out_dim, out_dim), AttentionBlock(out_dim), ResidualBlock(out_dim, out_dim))
        self.head = _head(out_dim, cfg.z_dim * 2)

    def forward(self, x: Tensor, feats: FeatCache) -> Tensor:
        x = _cached(self.conv1, x, feats)
        return _run([*self.downsamples, *self.middle, *self.head], x, feats)


class Decoder3d(nn.Module):
    """Raw latents ``[B, z_dim, t, h, w]`` -> pixels ``[B, 3, T, 8h, 8w]``."""

    def __init__(self, cfg: WanVAEConfig) -> None:
        super().__init__()
        temperal_upsample = cfg.temperal_downsample[::-1]
        dims = [cfg.dim * u for u in (cfg.dim_mult[-1], *cfg.dim_mult[::-1])]
        scale = 1.0 / 2 ** (len(cfg.dim_mult) - 2)
        self.conv1 = CausalConv3d(cfg.z_dim, dims[0], 3, padding=1)
        self.middle = nn.Sequential(ResidualBlock(dims[0], dims[0]), AttentionBlock(dims[0]), ResidualBlock(dims[0], dims[0]))
        blocks: list[nn.Module] = []
        for i, (in_dim, out_dim) in enumerate(zip(dims[:-1], dims[1:])):
            if i > 0:
                in_dim //= 2  # the previous Resample halved the channels
            for _ in range(cfg.num_res_blocks + 1):
                blocks.append(ResidualBlock(in_dim, out_dim))
                if scale in cfg.attn_scales:
                    blocks.append(AttentionBlock(out_dim))
                in_dim = out_dim
            if i != len(cfg.dim_mult) - 1:
                blocks.append(Resample(out_dim, "upsample3d" if temperal_upsample[i] else "upsample2d"))
                scale *= 2.0
        self.upsamples = nn.Sequential(*blocks)
        self.head = _head(out_dim, 3)

    def forward(self, x: Tensor, feats: FeatCache) -> Tensor:
        x = _cached(self.conv1, x, feats)
        return _run([*self.middle, *self.upsamples, *self.head], x, feats)


class WanStreamCache(DirectedStreamCache):
    """State of one stream through :class:`WanVAE`: ``memory`` holds the tail of the stream of
    every causal conv (its last 2 input frames); ``pending`` the encode frames waiting for a
    complete group of 4."""


class WanVAE(nn.Module):
    """Wan2.1 VAE with per-stream caches (see the module docstring for the chunk rules)."""

    def __init__(self, cfg: WanVAEConfig = WAN_VAE_CONFIGS["real"]) -> None:
        super().__init__()
        self.cfg = cfg
        self.z_dim = cfg.z_dim
        if cfg.z_dim != len(LATENT_STD):
            raise ValueError(f"z_dim must be {len(LATENT_STD)} (the latent statistics), got {cfg.z_dim}")
        self.encoder = Encoder3d(cfg)
        self.conv1 = CausalConv3d(cfg.z_dim * 2, cfg.z_dim * 2, 1)
        self.conv2 = CausalConv3d(cfg.z_dim, cfg.z_dim, 1)
        self.decoder = Decoder3d(cfg)

    def new_cache(self) -> WanStreamCache:
        return WanStreamCache()

    def _param(self) -> Tensor:
        return next(self.parameters())

    @torch.no_grad()
    def encode(self, frames: Tensor, cache: WanStreamCache) -> Tensor:
        """Next frames of a stream ``[B, 3, T, H, W]`` in [-1, 1] -> normalised latents.

        Returns ``[B, 16, t, H/8, W/8]`` with ``t`` = latents completed by these frames: frame 0
        of a stream alone makes latent 0, then each group of 4; leftover frames wait in the
        cache. For 12-frame chunks ``t`` is always 3 (see the module docstring).
        """
        cache._claim("encode")
        p = self._param()
        x = frames.to(device=p.device, dtype=p.dtype)
        if cache.pending is not None:
            x = torch.cat([cache.pending, x], dim=2)
        outs = []
        if cache.position == 0 and x.shape[2] > 0:
            outs.append(self.encoder(x[:, :, :1], cache.memory))
            cache.position, x = 1, x[:, :, 1:]
        usable = x.shape[2] // 4 * 4
        if usable:
            outs.append(self.encoder(x[:, :, :usable], cache.memory))
            cache.position += usable
        cache.pending = x[:, :, usable:].clone() if usable < x.shape[2] else None
        if not outs:
            b, _, _, h, w = x.shape
            return x.new_zeros(b, self.z_dim, 0, h // 8, w // 8)
        mu = self.conv1(torch.cat(outs, dim=2))[:, : self.z_dim]  # drop log-var
        return normalize_latents(mu)

    @torch.no_grad()
    def decode(self, latents: Tensor, cache: WanStreamCache) -> Tensor:
        """Next normalised latents of a stream ``[B, 16, t, h, w]`` -> ``[B, 3, T, 8h, 8w]``.

        ``T = 4t``, except on the first chunk of a stream where latent 0 gives one frame:
        ``T = 1 + 4(t-1)`` (9 for 3 latents). Output is clamped to [-1, 1].
        """
        cache._claim("decode")
        p = self._param()
        z = self.conv2(denormalize_latents(latents.to(device=p.device, dtype=p.dtype)))
        outs = []
        if cache.position == 0 and z.shape[2] > 0:
            outs.append(self.decoder(z[:, :, :1], cache.memory))
            z = z[:, :, 1:]
        if z.shape[2]:
            outs.append(self.decoder(z, cache.memory))
        cache.position += latents.shape[2]
        return torch.cat(outs, dim=2).clamp_(-1.0, 1.0)

    def encode_image(self, image: Tensor) -> Tensor:
        """One image ``[B, 3, 1, H, W]`` -> its latent ``[B, 16, 1, H/8, W/8]`` (fresh cache)."""
        return self.encode(image, self.new_cache())


def load_wan_vae(path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 config: str = "real") -> WanVAE:
    """Build the Wan2.1 VAE and load ``Wan2.1_VAE.pth`` strictly (``weights_only=True``)."""
    state = torch.load(path, map_location=device, weights_only=True)
    with torch.device("meta"):
        model = WanVAE(WAN_VAE_CONFIGS[config])
    state = {k: v.to(dtype) for k, v in state.items()}
    load_state_dict_strict(model, state, str(path), assign=True)
    return model.eval().requires_grad_(False)
