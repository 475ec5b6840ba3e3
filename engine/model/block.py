"""One Wan2.1 transformer block: modulated self-attention, text cross-attention, modulated FFN."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from .attention import CrossAttention, FP32LayerNorm, SelfAttention
from .config import WanConfig
from .context import BlockContext


class WanBlock(nn.Module):
    """Wan2.1 ``WanAttentionBlock`` with the official parameter names.

    ``forward(x, ctx)`` takes the float32 residual stream x [B, N, dim] and returns it updated.
    The six modulation vectors (``modulation`` [1, 6, dim] + ``ctx.e`` [B, F, 6, dim]) are, in
    order, shift/scale/gate of the attention branch then shift/scale/gate of the FFN branch;
    they apply per latent frame, so frames of one call may carry different timesteps.

    :meth:`compile` gives the block a ``torch.compile(fullgraph=True)`` twin of its forward,
    used once the KV ring is full (the stream's steady state: static shapes, one graph for every
    block of the class); the chunks that fill the ring after a cut, cache-less passes, masked
    reference passes and sequence-parallel passes run eagerly. Hooks (VACE) stay outside the
    graph, in the module call.
    """

    compiled: Callable[[Tensor, BlockContext], Tensor] | None = None

    def __init__(self, config: WanConfig) -> None:
        super().__init__()
        dim, eps = config.dim, config.eps
        self.norm1 = FP32LayerNorm(dim, eps, elementwise_affine=False)
        self.self_attn = SelfAttention(dim, config.num_heads, config.qk_norm, eps)
        self.norm3 = FP32LayerNorm(dim, eps, elementwise_affine=True) if config.cross_attn_norm else nn.Identity()
        self.cross_attn = CrossAttention(dim, config.num_heads, config.qk_norm, eps)
        self.norm2 = FP32LayerNorm(dim, eps, elementwise_affine=False)
        self.ffn = nn.Sequential(
            nn.Linear(dim, config.ffn_dim), nn.GELU(approximate="tanh"), nn.Linear(config.ffn_dim, dim)
        )
        self.modulation = nn.Parameter(torch.randn(1, 6, dim) / dim**0.5)

    def compile(self, *args: Any, **kwargs: Any) -> None:
        """Compile the forward as one graph (``fullgraph=True``); kwargs go to ``torch.compile``
        (e.g. ``mode="max-autotune-no-cudagraphs"``). State-dict keys are unchanged."""
        self.compiled = torch.compile(self.run, *args, fullgraph=True, **kwargs)

    def forward(self, x: Tensor, ctx: BlockContext) -> Tensor:
        """x [B, N, dim] float32 -> [B, N, dim] float32 (compiled in the steady state, if compiled)."""
        if self.compiled is not None and ctx.plan is not None and ctx.plan.full and ctx.sequence is None:
            return self.compiled(x, ctx)
        return self.run(x, ctx)

    def run(self, x: Tensor, ctx: BlockContext) -> Tensor:
        """The block's computation (eager)."""
        frames = ctx.grid[0]
        dtype = self.self_attn.q.weight.dtype
        mod = self.modulation.float().unsqueeze(1) + ctx.e  # [B, F, 6, dim]
        shift_a, scale_a, gate_a, shift_f, scale_f, gate_f = mod.unsqueeze(2).unbind(3)  # [B, F, 1, dim]

        def per_frame(h: Tensor) -> Tensor:  # [B, N, dim] -> [B, F, N/F, dim]
            return h.float().unflatten(1, (frames, -1))

        h = (per_frame(self.norm1(x)) * (1 + scale_a) + shift_a).flatten(1, 2)
        x = x + (per_frame(self.self_attn(h.to(dtype), ctx)) * gate_a).flatten(1, 2)
        x = x + self.cross_attn(self.norm3(x).to(dtype), ctx).float()
        h = (per_frame(self.norm2(x)) * (1 + scale_f) + shift_f).flatten(1, 2)
        return x + (per_frame(self.ffn(h.to(dtype))) * gate_f).flatten(1, 2)
