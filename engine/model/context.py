"""The per-forward state handed to every transformer block."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from torch import Tensor

from .kv_cache import RingKVCache, TextKVCache

if TYPE_CHECKING:
    from .attention import CrossAttention


@dataclass
class BlockContext:
    """Everything a block needs for one forward pass over one chunk (or one full sequence).

    The model builds one context per forward and sets ``layer`` before calling each block, so a
    block (or a wrapper around it) finds its cache slot as ``ctx.kv_cache.update(ctx.layer, ...)``.
    A different stack of blocks (e.g. the VACE branch) reuses the same block code by passing a
    context with its own ``kv_cache`` (and its own layer numbering).
    """

    e: Tensor  # [B, F, 6, dim] float32 modulation (time_projection output) per latent frame
    timestep: Tensor  # [B, F] float32 timesteps (0..1000) per latent frame
    grid: tuple[int, int, int]  # (F, H, W) token grid of x (after patching)
    start_frame: int  # absolute latent frame index of the first frame of x (RoPE position)
    rope: tuple[Tensor, Tensor]  # (cos, sin), each [F*H*W, head_dim/2] float32
    context: Tensor  # [B, text_len, dim] embedded text (text_embedding output)
    prompt: Tensor  # [B, L, text_dim] raw prompt embeddings; key of ``text_cache``
    text_cache: TextKVCache | None = None  # cross-attention K/V per prompt (None: recompute)
    kv_cache: RingKVCache | None = None  # self-attention cache (None: attend within x only)
    layer: int = 0  # index of the block being run, within the stack owning ``kv_cache``
    write_cache: bool = False  # commit this chunk to ``kv_cache`` (the clean t=0 pass)
    attn_mask: Tensor | None = None  # bool [N, N] self-attention mask when kv_cache is None
    x_embedded: Tensor | None = None  # [B, N, dim] float32 patch-embedded tokens before block 0
    extras: dict[str, Any] = field(default_factory=dict)  # free-form, passed through untouched

    @property
    def frame_tokens(self) -> int:
        """Tokens per latent frame (H*W of the token grid)."""
        return self.grid[1] * self.grid[2]

    def cross_kv(self, module: CrossAttention) -> tuple[Tensor, Tensor]:
        """The text K/V [B, heads, text_len, head_dim] of ``module``, cached per prompt."""
        if self.text_cache is None:
            return module.project_context(self.context)
        return self.text_cache.get(module, self.prompt, lambda: module.project_context(self.context))
