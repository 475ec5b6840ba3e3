"""Attention layers of the Wan2.1 DiT (self-attention with 3D RoPE and a KV cache, text
cross-attention) and the block-causal mask used for full-sequence reference passes."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from .context import BlockContext
from .kv_cache import attend_ring
from .rope import apply_rope

ATTENTION_CHOICES = ("auto", "cudnn", "flash", "efficient")


def attention_kernels(choice: str, device: torch.device | str) -> list[SDPBackend] | None:
    """The SDPA backends to allow, in priority order, for ``choice`` on ``device`` (None: PyTorch's
    own choice). ``auto`` puts cuDNN first on Hopper and newer GPUs, where it ran the stream's
    shapes (one chunk against the full ring, head_dim 128) 1.75x faster than flash on an H200;
    on other cards and on the CPU it leaves the choice to PyTorch. The others stay as fallbacks."""
    if choice not in ATTENTION_CHOICES:
        raise ValueError(f"attention must be one of {ATTENTION_CHOICES}, got {choice!r}")
    device = torch.device(device)
    if device.type != "cuda":
        return None
    if choice == "auto":
        hopper = torch.cuda.get_device_capability(device) >= (9, 0)
        if not (hopper and torch.backends.cudnn.is_available()):
            return None
        choice = "cudnn"
    order = {"cudnn": [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION],
             "flash": [SDPBackend.FLASH_ATTENTION], "efficient": []}[choice]
    return order + [SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]


def using_kernels(kernels: list[SDPBackend] | None) -> AbstractContextManager:
    """A context in which SDPA tries ``kernels`` in order (no-op for None). Compiled graphs take
    the kernel chosen while they are traced, so a generator runs every forward inside it."""
    return nullcontext() if kernels is None else sdpa_kernel(kernels, set_priority=True)


class RMSNorm(nn.Module):
    """Wan's RMSNorm: normalise in float32, cast back, scale by ``weight`` [dim]."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return xf.to(x.dtype) * self.weight


class FP32LayerNorm(nn.LayerNorm):
    """LayerNorm computed in float32 whatever the parameter dtype; returns float32."""

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight.float() if self.weight is not None else None
        b = self.bias.float() if self.bias is not None else None
        return F.layer_norm(x.float(), self.normalized_shape, w, b, self.eps)


class _Projections(nn.Module):
    """The q, k, v, o projections and q/k RMSNorms (over the full dim) of a Wan attention layer."""

    def __init__(self, dim: int, num_heads: int, qk_norm: bool, eps: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.o = nn.Linear(dim, dim)
        self.norm_q = RMSNorm(dim, eps) if qk_norm else nn.Identity()
        self.norm_k = RMSNorm(dim, eps) if qk_norm else nn.Identity()


class SelfAttention(_Projections):
    """Multi-head self-attention: q/k RMSNorm over the full dim, 3D RoPE, optional KV cache."""

    def forward(self, x: Tensor, ctx: BlockContext) -> Tensor:
        """x [B, N, dim] (weight dtype) -> [B, N, dim]."""
        heads = (self.num_heads, -1)
        q = self.norm_q(self.q(x)).unflatten(-1, heads)  # [B, N, H, D]
        k = self.norm_k(self.k(x)).unflatten(-1, heads)
        v = self.v(x).unflatten(-1, heads)
        cos, sin = ctx.rope
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if ctx.sequence is not None:  # this band's tokens, every head -> every token, this process's heads
            q, k, v = (ctx.sequence.to_heads(t, ctx.grid[0]) for t in (q, k, v))
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # [B, H, N, D]
        if ctx.layer_kv is not None:
            k, v = attend_ring(ctx.layer_kv, k, v, ctx.plan)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=ctx.attn_mask).transpose(1, 2)  # [B, N, H, D]
        if ctx.sequence is not None:
            out = ctx.sequence.to_tokens(out, ctx.grid[0])
        return self.o(out.flatten(2))


class CrossAttention(_Projections):
    """Text cross-attention (Wan's T2V cross-attention); K/V come from ``ctx.layer_cross``."""

    def project_context(self, context: Tensor) -> tuple[Tensor, Tensor]:
        """context [B, L, dim] -> K, V [B, heads, L, head_dim]."""
        heads = (self.num_heads, -1)
        k = self.norm_k(self.k(context)).unflatten(-1, heads).transpose(1, 2)
        v = self.v(context).unflatten(-1, heads).transpose(1, 2)
        return k, v

    def forward(self, x: Tensor, ctx: BlockContext) -> Tensor:
        """x [B, N, dim] (weight dtype) -> [B, N, dim]."""
        q = self.norm_q(self.q(x)).unflatten(-1, (self.num_heads, -1)).transpose(1, 2)
        k, v = ctx.layer_cross
        out = F.scaled_dot_product_attention(q, k, v)
        return self.o(out.transpose(1, 2).flatten(2))


def block_causal_mask(
    num_frames: int,
    frame_tokens: int,
    frames_per_chunk: int,
    local_attn_frames: int | None = None,
    sink_frames: int = 0,
    device: torch.device | str = "cpu",
) -> Tensor:
    """Boolean [N, N] mask (True = attend) for a full sequence of ``num_frames`` latent frames.

    A query in chunk c (frames [c*k, (c+1)*k)) attends to every frame before the end of its
    chunk; with ``local_attn_frames`` set, only to the first ``sink_frames`` frames plus the last
    ``local_attn_frames - sink_frames`` frames ending with its chunk (the ring cache's view).
    """
    frame = torch.arange(num_frames, device=device)
    chunk_end = (frame // frames_per_chunk + 1) * frames_per_chunk  # per query frame
    allowed = frame[None, :] < chunk_end[:, None]
    if local_attn_frames is not None:
        in_window = frame[None, :] >= chunk_end[:, None] - (local_attn_frames - sink_frames)
        allowed &= in_window | (frame[None, :] < sink_frames)
    return allowed.repeat_interleave(frame_tokens, 0).repeat_interleave(frame_tokens, 1)
