"""VACE by composition: forward hooks on the base model's blocks add ``hint * context_scale``.

Wrapping mechanism: :func:`attach_vace` registers, on the base model's own block modules,

- a forward pre-hook on block ``vace_layers[0]`` that computes all hints once per model forward
  (from ``ctx.x_embedded``, the base's patch-embedded tokens) and stashes them in
  ``ctx.extras[HINTS_KEY]``;
- a forward hook on every block ``vace_layers[i]`` that returns ``output + hints[i] * scale``.

Nothing is re-registered or renamed: the base model's ``state_dict`` keys stay ``blocks.N.*``
and its block code is untouched. :meth:`VaceInjector.detach` removes the hooks, giving back the
original behaviour byte for byte. The hooks do nothing unless the forward's ``extras`` carry a
:class:`VaceConditioning` under ``EXTRAS_KEY`` with a non-zero scale, so a chunk without VACE
inputs runs exactly the base model and skips the branch.

Works on any model exposing ``.blocks`` (blocks called as ``block(x, ctx)`` with a
:class:`~engine.model.BlockContext`); the Wan-tree generators (Self-Forcing, CausVid, LongLive)
all do.

References (R2V): the branch's token sequence for a forward is ``[R reference frames, the
chunk's frames]``. References sit at fixed RoPE frame positions ``-R .. -1`` (before the
stream's frame 0, as VACE puts them before the video), carry the chunk's first-frame timestep
modulation, and use the base's patch embedding of their clean latent as ``x`` (zeros for a
model without ``patch_embedding``). The chunk's frames use the base's own positions and cache.
The references' K/V are recomputed each forward and never written to the cache (the branch's
ring plan counts them as ``prefix_tokens``); only the chunk's tokens' hints are added to the
base, so the base chunk stays exactly 3 latent frames.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from vacelive.engine.model import BlockContext, RingKVCache
from vacelive.engine.model.rope import Rope3D

from .branch import VaceBranch

EXTRAS_KEY = "vace"
"""``ctx.extras`` key of the chunk's :class:`VaceConditioning`."""
HINTS_KEY = "vace_hints"
"""``ctx.extras`` key where the hints of the current forward are stashed."""


@dataclass(frozen=True)
class VaceConditioning:
    """What the branch needs for one chunk; pass as ``extras={EXTRAS_KEY: cond}``."""

    context: Tensor  # [B, 96, F, h, w] the chunk's vace_context (F = 3 latent frames)
    scale: float  # context_scale; 0 skips the branch
    references: Tensor | None = None  # [B, 96, R, h, w] reference entries (R2V), or None


class VaceInjector:
    """The VACE branch attached to a base model by hooks, plus the branch's per-stream KV ring.

    The ring mirrors the base's (same window, sinks and frame size, read from ``ctx.kv_cache``)
    with its own layer numbering (one layer per VACE block); it is created on first use and
    emptied by :meth:`reset` (hard cut).
    """

    def __init__(self, model: nn.Module, branch: VaceBranch,
                 embed_latents: Callable[[Tensor], Tensor] | None = None) -> None:
        self.model = model
        self.branch = branch
        self.embed_latents = embed_latents
        self.kv_cache: RingKVCache | None = None
        first = branch.vace_blocks[0]
        self._rope = Rope3D(first.self_attn.q.weight.shape[0] // first.self_attn.num_heads)
        self._handles: list[RemovableHandle] = []
        blocks = model.blocks
        self._handles.append(blocks[branch.vace_layers[0]].register_forward_pre_hook(self._compute_hints))
        for i, layer in enumerate(branch.vace_layers):
            self._handles.append(blocks[layer].register_forward_hook(self._make_inject(i)))

    @property
    def attached(self) -> bool:
        """Whether the hooks are still registered."""
        return bool(self._handles)

    def detach(self) -> None:
        """Remove the hooks: the base model behaves exactly as before :func:`attach_vace`."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def reset(self) -> None:
        """Hard cut: empty the branch's KV ring."""
        if self.kv_cache is not None:
            self.kv_cache.reset()

    def _ring_like(self, base: RingKVCache) -> RingKVCache:
        b, heads, capacity, frame_tokens, head_dim = base.k[0].shape
        ring = self.kv_cache
        if ring is None or ring.k[0].shape != base.k[0].shape or ring.k[0].device != base.k[0].device:
            ring = RingKVCache(len(self.branch.vace_blocks), b, heads, head_dim, frame_tokens, capacity,
                               base.sink_frames, device=base.k[0].device, dtype=base.k[0].dtype)
            self.kv_cache = ring
        return ring

    def _compute_hints(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        """Forward pre-hook: compute this forward's hints into ``ctx.extras[HINTS_KEY]``."""
        ctx: BlockContext = args[1]
        cond: VaceConditioning | None = ctx.extras.get(EXTRAS_KEY)
        if cond is None or cond.scale == 0.0:
            ctx.extras.pop(HINTS_KEY, None)
            return
        if ctx.x_embedded is None:
            raise ValueError("VACE needs ctx.x_embedded (the patch-embedded tokens before block 0)")
        full = _full_grid(ctx)
        c = _band(ctx, self.branch.embed(cond.context), full)  # [B, N, dim] (this process's band)
        x = ctx.x_embedded
        if c.shape != x.shape:
            raise ValueError(f"vace_context tokens {tuple(c.shape)} do not match the chunk's {tuple(x.shape)}")
        vctx, n_ref = self._branch_context(ctx, cond)
        if n_ref:
            c_ref = self.branch.embed(cond.references)  # [B, R*h*w, dim]
            latents = cond.references[:, :16]  # the references' own latents (inactive slot)
            x_ref = self.embed_latents(latents) if self.embed_latents is not None else torch.zeros_like(c_ref)
            ref_grid = (cond.references.shape[2], full[1], full[2])
            c = torch.cat([_band(ctx, c_ref, ref_grid), c], 1)
            x = torch.cat([_band(ctx, x_ref, ref_grid), x], 1)
        ctx.extras[HINTS_KEY] = [h[:, n_ref:] for h in self.branch.hints(c, x, vctx)]
        if vctx.kv_cache is not None and ctx.write_cache:
            vctx.kv_cache.commit(ctx.grid[0])

    def _branch_context(self, ctx: BlockContext, cond: VaceConditioning) -> tuple[BlockContext, int]:
        """The branch's context (own cache, references in front) and the reference token count."""
        kv = self._ring_like(ctx.kv_cache) if ctx.kv_cache is not None else None
        full = _full_grid(ctx)
        refs = cond.references
        if refs is None or refs.shape[2] == 0:
            plan = kv.plan(math.prod(full)) if kv is not None else None
            return dataclasses.replace(ctx, kv_cache=kv, plan=plan, extras={}, x_embedded=None), 0
        if kv is None:
            raise ValueError("VACE reference images need the streaming (KV-cached) forward")
        r = refs.shape[2]
        f, h, w = ctx.grid
        n_ref = r * h * w  # this process's reference tokens
        ref_grid = (r, full[1], full[2])
        ref_cos, ref_sin = (_band(ctx, table[None], ref_grid)[0]
                            for table in self._rope.cos_sin(-r, ref_grid, ctx.e.device))
        cos, sin = ctx.rope
        vctx = dataclasses.replace(
            ctx,
            e=torch.cat([ctx.e[:, :1].expand(-1, r, -1, -1), ctx.e], 1),  # [B, R+F, 6, dim]
            timestep=torch.cat([ctx.timestep[:, :1].expand(-1, r), ctx.timestep], 1),  # [B, R+F]
            grid=(r + f, h, w),
            rope=(torch.cat([ref_cos, cos]), torch.cat([ref_sin, sin])),
            kv_cache=kv,
            plan=kv.plan(math.prod(full), prefix_tokens=math.prod(ref_grid)),
            extras={},
            x_embedded=None,
        )
        return vctx, n_ref

    def _make_inject(self, index: int) -> Callable[[nn.Module, tuple[Any, ...], Tensor], Tensor | None]:
        def inject(module: nn.Module, args: tuple[Any, ...], output: Tensor) -> Tensor | None:
            ctx: BlockContext = args[1]
            hints = ctx.extras.get(HINTS_KEY)
            if hints is None:
                return None
            return output + hints[index] * ctx.extras[EXTRAS_KEY].scale
        return inject


def _full_grid(ctx: BlockContext) -> tuple[int, int, int]:
    """The chunk's whole token grid (``ctx.grid`` is one band of it under sequence parallelism)."""
    return ctx.grid if ctx.sequence is None else ctx.sequence.full_grid(ctx.grid)


def _band(ctx: BlockContext, tokens: Tensor, grid: tuple[int, int, int]) -> Tensor:
    """This process's band of ``tokens`` laid out on the whole ``grid`` (all of them on one device)."""
    return tokens if ctx.sequence is None else ctx.sequence.local(tokens, grid)


def attach_vace(model: nn.Module, branch: VaceBranch) -> VaceInjector:
    """Attach ``branch`` to ``model`` (any model with ``.blocks``); returns the handle whose
    ``detach()`` restores the original model. References use ``model.patch_embedding`` (when
    the model has one) to embed their latents as the base would."""
    patch = getattr(model, "patch_embedding", None)

    def embed_latents(latents: Tensor) -> Tensor:  # [B, 16, R, h, w] -> [B, N, dim] float32
        w = patch.weight
        return patch(latents.to(device=w.device, dtype=w.dtype)).flatten(2).transpose(1, 2).float()

    return VaceInjector(model, branch, embed_latents if patch is not None else None)
