"""The per-forward state handed to every transformer block."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

from .kv_cache import RingKVCache, RingPlan, TextKVCache
from .sequence import SequenceShard


@dataclass
class BlockContext:
    """Everything a block needs for one forward pass over one chunk (or one full sequence).

    The model builds one context per forward (with the cache's :class:`RingPlan`) and calls
    :meth:`enter_layer` before each block, which hands the block that layer's own tensors (its
    ring buffers, its text K/V): a block reads tensors only, never indexes by layer, so one
    compiled graph serves every block. A different stack of blocks (e.g. the VACE branch) reuses
    the same block code with a context of its own ``kv_cache`` (and its own layer numbering).
    """

    e: Tensor  # [B, F, 6, dim] float32 modulation (time_projection output) per latent frame
    timestep: Tensor  # [B, F] float32 timesteps (0..1000) per latent frame
    grid: tuple[int, int, int]  # (F, H, W) token grid of x (after patching; this band's with ``sequence``)
    start_frame: int  # absolute latent frame index of the first frame of x (RoPE position)
    rope: tuple[Tensor, Tensor]  # (cos, sin), each [F*H*W, head_dim/2] float32 (of x's tokens)
    context: Tensor  # [B, text_len, dim] embedded text (text_embedding output)
    prompt: Tensor  # [B, L, text_dim] raw prompt embeddings; key of ``text_cache``
    text_cache: TextKVCache | None = None  # cross-attention K/V per prompt (None: recompute)
    kv_cache: RingKVCache | None = None  # self-attention cache (None: attend within x only)
    plan: RingPlan | None = None  # this forward's slots in ``kv_cache`` (set with it)
    layer: int = 0  # index of the block being run, within the stack owning ``kv_cache``
    layer_kv: tuple[Tensor, Tensor] | None = None  # that block's ring buffers (K, V), when cached
    layer_cross: tuple[Tensor, Tensor] | None = None  # that block's text K/V [B, heads, text_len, head_dim]
    write_cache: bool = False  # commit this chunk to ``kv_cache`` (the clean t=0 pass)
    attn_mask: Tensor | None = None  # bool [N, N] self-attention mask when kv_cache is None
    x_embedded: Tensor | None = None  # [B, N, dim] float32 patch-embedded tokens before block 0
    extras: dict[str, Any] = field(default_factory=dict)  # free-form, passed through untouched
    sequence: SequenceShard | None = None  # sequence parallelism: x holds this process's band of rows

    @property
    def frame_tokens(self) -> int:
        """Tokens per latent frame (H*W of the token grid)."""
        return self.grid[1] * self.grid[2]

    def stack_cross_kv(self, owner: Any, blocks: Sequence[nn.Module]) -> list[tuple[Tensor, Tensor]]:
        """The text K/V of every block of a stack (``owner`` keys them in ``text_cache``),
        computed once per prompt."""
        def compute() -> list[tuple[Tensor, Tensor]]:
            return [block.cross_attn.project_context(self.context) for block in blocks]
        return compute() if self.text_cache is None else self.text_cache.get(owner, self.prompt, compute)

    def enter_layer(self, index: int, cross: Sequence[tuple[Tensor, Tensor]]) -> BlockContext:
        """Point the context at block ``index`` of its stack (its ring buffers and text K/V)."""
        self.layer = index
        self.layer_kv = self.kv_cache.layer(index) if self.kv_cache is not None else None
        self.layer_cross = cross[index]
        return self
