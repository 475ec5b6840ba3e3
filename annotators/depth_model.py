"""Depth Anything V2 on plain torch: a DINOv2 ViT encoder and a DPT head.

Module names equal the official checkpoint's keys (``pretrained.*`` for DINOv2,
``depth_head.*`` for the DPT head), so ``depth_anything_v2_vits.pth`` loads strictly. The output
is relative inverse depth (disparity): larger = nearer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class DepthConfig:
    """Sizes of a Depth Anything V2 network."""

    name: str
    embed_dim: int
    depth: int
    num_heads: int
    features: int
    out_channels: tuple[int, int, int, int]
    layer_idx: tuple[int, int, int, int]
    """Encoder blocks whose outputs feed the DPT head."""
    pos_grid: int = 37
    """Side of the positional-embedding grid (518 / 14 for the released models)."""
    patch_size: int = 14
    mlp_ratio: int = 4


VITS = DepthConfig("vits", 384, 12, 6, 64, (48, 96, 192, 384), (2, 5, 8, 11))
"""Depth Anything V2 Small (DINOv2 ViT-S/14 + DPT, about 25M parameters)."""

TINY = DepthConfig("tiny", 32, 4, 2, 16, (8, 16, 32, 32), (0, 1, 2, 3), pos_grid=4)
"""A tiny random configuration of the same code, for tests and benchmarks."""


class PatchEmbed(nn.Module):
    """Non-overlapping patches to tokens."""

    def __init__(self, patch_size: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads)
        qkv = qkv.permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    """Two linear layers with GELU between."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class LayerScale(nn.Module):
    """Per-channel learned scale of a residual branch."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Block(nn.Module):
    """Pre-norm transformer block with layer scale."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.ls1 = LayerScale(dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, dim * mlp_ratio)
        self.ls2 = LayerScale(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class DINOv2(nn.Module):
    """The DINOv2 ViT encoder, returning normalised patch tokens of chosen blocks."""

    def __init__(self, cfg: DepthConfig) -> None:
        super().__init__()
        dim = cfg.embed_dim
        self.patch_size = cfg.patch_size
        self.patch_embed = PatchEmbed(cfg.patch_size, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.pos_grid**2 + 1, dim))
        self.mask_token = nn.Parameter(torch.zeros(1, dim))  # unused at inference; in checkpoints
        self.blocks = nn.ModuleList(
            Block(dim, cfg.num_heads, cfg.mlp_ratio) for _ in range(cfg.depth)
        )
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def interpolate_pos_encoding(self, n_patches: int, height: int, width: int) -> torch.Tensor:
        """Positional embeddings for a ``height`` x ``width`` input, resized bicubically.

        Follows DINOv2: scale factors carry a 0.1 offset against floating-point error.
        """
        grid_n = self.pos_embed.shape[1] - 1
        if n_patches == grid_n and height == width:
            return self.pos_embed
        pos = self.pos_embed.float()
        side = int(grid_n**0.5)
        gh, gw = height // self.patch_size, width // self.patch_size
        patch_pos = F.interpolate(
            pos[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2),
            scale_factor=((gh + 0.1) / side, (gw + 0.1) / side),
            mode="bicubic",
            antialias=False,
        )
        patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(1, gh * gw, -1)
        return torch.cat((pos[:, :1], patch_pos), dim=1).to(self.pos_embed.dtype)

    def intermediate_layers(
        self, x: torch.Tensor, layer_idx: tuple[int, ...]
    ) -> list[torch.Tensor]:
        """Normalised patch tokens (B, N, C) after each block in ``layer_idx``."""
        _, _, height, width = x.shape
        tokens = self.patch_embed(x)
        tokens = torch.cat((self.cls_token.expand(tokens.shape[0], -1, -1), tokens), dim=1)
        tokens = tokens + self.interpolate_pos_encoding(tokens.shape[1] - 1, height, width)
        outputs = []
        for i, block in enumerate(self.blocks):
            tokens = block(tokens)
            if i in layer_idx:
                outputs.append(self.norm(tokens)[:, 1:])
        return outputs


class ResidualConvUnit(nn.Module):
    """ReLU-conv-ReLU-conv with a skip connection."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.relu(self.conv1(F.relu(x)))) + x


class FeatureFusionBlock(nn.Module):
    """Fuses a coarser path with a skip feature, then upsamples (DPT RefineNet block)."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.out_conv = nn.Conv2d(features, features, 1)
        self.resConfUnit1 = ResidualConvUnit(features)  # noqa: N815 - checkpoint key
        self.resConfUnit2 = ResidualConvUnit(features)  # noqa: N815 - checkpoint key

    def forward(
        self, x: torch.Tensor, skip: torch.Tensor | None = None, size: tuple[int, int] | None = None
    ) -> torch.Tensor:
        if skip is not None:
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        if size is None:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        else:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
        return self.out_conv(x)


class Scratch(nn.Module):
    """The DPT head's shared-width layers (named ``scratch`` in the checkpoint)."""

    def __init__(self, in_channels: tuple[int, int, int, int], features: int) -> None:
        super().__init__()
        self.layer1_rn = nn.Conv2d(in_channels[0], features, 3, padding=1, bias=False)
        self.layer2_rn = nn.Conv2d(in_channels[1], features, 3, padding=1, bias=False)
        self.layer3_rn = nn.Conv2d(in_channels[2], features, 3, padding=1, bias=False)
        self.layer4_rn = nn.Conv2d(in_channels[3], features, 3, padding=1, bias=False)
        self.refinenet1 = FeatureFusionBlock(features)
        self.refinenet2 = FeatureFusionBlock(features)
        self.refinenet3 = FeatureFusionBlock(features)
        self.refinenet4 = FeatureFusionBlock(features)
        self.output_conv1 = nn.Conv2d(features, features // 2, 3, padding=1)
        self.output_conv2 = nn.Sequential(
            nn.Conv2d(features // 2, 32, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 1, 1),
            nn.ReLU(),
        )


class DPTHead(nn.Module):
    """Reassembles four token maps at 1/4 ... 1/32 scale and fuses them into one depth map."""

    def __init__(self, cfg: DepthConfig) -> None:
        super().__init__()
        oc = cfg.out_channels
        self.patch_size = cfg.patch_size
        self.projects = nn.ModuleList(nn.Conv2d(cfg.embed_dim, c, 1) for c in oc)
        self.resize_layers = nn.ModuleList([
            nn.ConvTranspose2d(oc[0], oc[0], kernel_size=4, stride=4),
            nn.ConvTranspose2d(oc[1], oc[1], kernel_size=2, stride=2),
            nn.Identity(),
            nn.Conv2d(oc[3], oc[3], kernel_size=3, stride=2, padding=1),
        ])
        self.scratch = Scratch(oc, cfg.features)

    def forward(self, features: list[torch.Tensor], patch_h: int, patch_w: int) -> torch.Tensor:
        maps = []
        for tokens, project, resize in zip(features, self.projects, self.resize_layers):
            x = tokens.permute(0, 2, 1).reshape(tokens.shape[0], -1, patch_h, patch_w)
            maps.append(resize(project(x)))
        s = self.scratch
        l1, l2 = s.layer1_rn(maps[0]), s.layer2_rn(maps[1])
        l3, l4 = s.layer3_rn(maps[2]), s.layer4_rn(maps[3])
        path = s.refinenet4(l4, size=l3.shape[2:])
        path = s.refinenet3(path, l3, size=l2.shape[2:])
        path = s.refinenet2(path, l2, size=l1.shape[2:])
        path = s.refinenet1(path, l1)
        out = s.output_conv1(path)
        size = (patch_h * self.patch_size, patch_w * self.patch_size)
        out = F.interpolate(out, size=size, mode="bilinear", align_corners=True)
        return s.output_conv2(out)


class DepthAnythingV2(nn.Module):
    """Depth Anything V2: image (B, 3, H, W), sides multiples of 14, normalised with ImageNet
    mean/std, to relative inverse depth (B, H, W), larger = nearer."""

    def __init__(self, cfg: DepthConfig = VITS) -> None:
        super().__init__()
        self.cfg = cfg
        self.pretrained = DINOv2(cfg)
        self.depth_head = DPTHead(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        patch_h, patch_w = x.shape[-2] // self.cfg.patch_size, x.shape[-1] // self.cfg.patch_size
        features = self.pretrained.intermediate_layers(x, self.cfg.layer_idx)
        return F.relu(self.depth_head(features, patch_h, patch_w)).squeeze(1)


def _listing(items: list[str], limit: int = 8) -> str:
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown} (and {len(items) - limit} more)"


def load_state_dict_strict(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``model``, raising ``ValueError`` that names every missing,
    unexpected or wrongly shaped key."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = sorted(
        f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    )
    problems = [
        f"{label}: {_listing(items)}"
        for label, items in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", mismatched),
        )
        if items
    ]
    if problems:
        raise ValueError(
            f"{source} does not match the Depth Anything V2 network: " + "; ".join(problems)
        )
    model.load_state_dict(state, strict=True)


def load_depth_anything(path: Path, cfg: DepthConfig = VITS) -> DepthAnythingV2:
    """Build the network for ``cfg`` and load the checkpoint at ``path`` strictly (on CPU)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"depth model file not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path} is not a state dict (got {type(state).__name__})")
    model = DepthAnythingV2(cfg)
    load_state_dict_strict(model, state, str(path))
    return model.eval()
