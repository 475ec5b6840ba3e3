"""The VACE branch: ``vace_patch_embedding`` + ``vace_blocks`` with the official Wan2.1-VACE names.

State-dict keys (the branch is its own root module, so they equal the checkpoint's ``vace_*`` keys):

- ``vace_patch_embedding.{weight,bias}``: Conv3d(96 -> dim, kernel = stride = patch (1, 2, 2));
- ``vace_blocks.i.<base block names>``: a full transformer block of the base model's own class;
- ``vace_blocks.0.before_proj.{weight,bias}``: Linear(dim, dim), only on block 0;
- ``vace_blocks.i.after_proj.{weight,bias}``: Linear(dim, dim), on every block; its output is hint i.

Hint i is added (times ``context_scale``) to the output of base block ``vace_layers[i]``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor, nn

from vacelive.engine.model import BlockContext

VACE_IN_DIM = 96
"""Channels of vace_context per latent frame: 16 inactive + 16 reactive latents + 64 mask."""


def default_vace_layers(num_layers: int) -> tuple[int, ...]:
    """The official ``vace_layers`` for a base of ``num_layers`` blocks.

    Wan2.1-VACE-1.3B (30 layers): every second layer, 0..28 (15 blocks). Wan2.1-VACE-14B (40
    layers): 0, 5, ..., 35 (8 blocks, the checkpoint's config). Anything else (the tiny config):
    every second layer, so 2 layers give ``(0,)``.
    """
    if num_layers == 40:
        return tuple(range(0, 40, 5))
    return tuple(range(0, num_layers, 2))


class VaceBranch(nn.Module):
    """The VACE context blocks; weights only (the per-stream KV cache lives in the injector).

    Blocks are deep copies of the base model's blocks at ``vace_layers`` (VACE initialises its
    context blocks from the base the same way), so they have the base block's class and
    parameter names, plus ``before_proj`` / ``after_proj``. The projections start at zero: a
    branch with no grafted weights adds exactly nothing.
    """

    def __init__(self, blocks: Sequence[nn.Module], vace_layers: Sequence[int], dim: int,
                 patch_size: tuple[int, int, int] = (1, 2, 2)) -> None:
        super().__init__()
        layers = tuple(int(i) for i in vace_layers)
        if not layers or list(layers) != sorted(set(layers)) or layers[0] < 0 or layers[-1] >= len(blocks):
            raise ValueError(f"vace_layers {layers} must be strictly increasing indices below {len(blocks)}")
        self.vace_layers = layers
        weight = next(blocks[0].parameters())
        factory = dict(device=weight.device, dtype=weight.dtype)
        self.vace_patch_embedding = nn.Conv3d(VACE_IN_DIM, dim, kernel_size=patch_size, stride=patch_size,
                                              **factory)
        vace_blocks = []
        for i, layer in enumerate(layers):
            block = _bare_copy(blocks[layer])
            if i == 0:
                block.before_proj = nn.Linear(dim, dim, **factory)
            block.after_proj = nn.Linear(dim, dim, **factory)
            vace_blocks.append(block)
        self.vace_blocks = nn.ModuleList(vace_blocks)
        self.zero_projections()

    @torch.no_grad()
    def zero_projections(self) -> None:
        """Set every ``before_proj`` / ``after_proj`` to zero (the branch then has no effect)."""
        for name, p in self.named_parameters():
            if ".before_proj." in name or ".after_proj." in name:
                p.zero_()

    def is_zero(self) -> bool:
        """True when every ``after_proj`` is zero: the hints are then all zero, the branch a no-op."""
        flags = [p.any() for b in self.vace_blocks for p in (b.after_proj.weight, b.after_proj.bias)]
        return not bool(torch.stack(flags).any())  # one device sync

    def embed(self, vace_context: Tensor) -> Tensor:
        """vace_context [B, 96, F, h, w] -> tokens [B, F*(h/2)*(w/2), dim] float32."""
        w = self.vace_patch_embedding.weight
        tokens = self.vace_patch_embedding(vace_context.to(device=w.device, dtype=w.dtype))
        return tokens.flatten(2).transpose(1, 2).float()

    def hints(self, c: Tensor, x: Tensor, ctx: BlockContext) -> list[Tensor]:
        """Run the blocks; one hint [B, N, dim] float32 per block.

        c: embedded vace_context tokens [B, N, dim] float32; x: the base's patch-embedded tokens
        at the same positions [B, N, dim] float32; ctx: the branch's own context (its own
        ``kv_cache`` and layer numbering, ``grid`` / ``rope`` / ``e`` covering the N tokens).
        """
        return list(self.iter_hints(c, x, ctx))

    def iter_hints(self, c: Tensor, x: Tensor, ctx: BlockContext) -> Iterator[Tensor]:
        """:meth:`hints`, each yielded as soon as its block has run (a base on another device can
        take hint i while block i+1 runs)."""
        dtype = self.vace_patch_embedding.weight.dtype
        c = self.vace_blocks[0].before_proj(c.to(dtype)).float() + x
        cross = ctx.stack_cross_kv(self, self.vace_blocks)
        for i, block in enumerate(self.vace_blocks):
            c = block(c, ctx.enter_layer(i, cross))
            yield block.after_proj(c.to(dtype)).float()


def _bare_copy(block: nn.Module) -> nn.Module:
    """A deep copy of ``block`` without the hooks registered on it (e.g. an attached injector)
    and without its compiled twin (``WanBlock.compile``), which is bound to the original."""
    hooks = (block._forward_hooks, block._forward_hooks_with_kwargs, block._forward_hooks_always_called,
             block._forward_pre_hooks, block._forward_pre_hooks_with_kwargs)
    saved = [dict(h) for h in hooks]
    compiled = block.__dict__.pop("compiled", None)
    for h in hooks:
        h.clear()
    try:
        return copy.deepcopy(block)
    finally:
        for h, s in zip(hooks, saved):
            h.update(s)
        if compiled is not None:
            block.compiled = compiled
