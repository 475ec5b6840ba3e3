"""VACE by composition: forward hooks on the base model's blocks add ``hint * context_scale``.

Wrapping mechanism: :func:`attach_vace` registers, on the base model's own block modules,

- a forward pre-hook on block ``vace_layers[0]`` that gets the forward's hints (from
  ``ctx.x_embedded``, the base's patch-embedded tokens) into ``ctx.extras[HINTS_KEY]``;
- a forward hook on every block ``vace_layers[i]`` that returns ``output + hints[i] * scale``.

The hooks (:class:`VaceHooks`) are apart from where the hints come from: :class:`VaceInjector`
runs the branch in this process, once per forward before block ``vace_layers[0]``;
:class:`~.remote.RemoteVace` receives them from a worker process on another device, each as its
block finishes there.

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
import functools
import math
from collections.abc import Callable, Iterator, Sequence
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


@dataclass(frozen=True)
class RingShape:
    """The geometry of the base's KV ring, which the branch's own ring mirrors (one layer per VACE
    block): all the branch needs to know of the base's cache, so a branch in another process can
    build its ring from it."""

    batch: int
    heads: int
    capacity: int  # frames (the window, sinks included)
    frame_tokens: int
    head_dim: int
    sink_frames: int

    @classmethod
    def of(cls, ring: RingKVCache) -> RingShape:
        b, heads, capacity, frame_tokens, head_dim = ring.k[0].shape
        return cls(b, heads, capacity, frame_tokens, head_dim, ring.sink_frames)


class VaceHooks:
    """The hooks that put hints into the base model's blocks; where the hints come from is the
    subclass's (:class:`VaceInjector`: the branch in this process; :class:`~.remote.RemoteVace`:
    a worker process on another device)."""

    def __init__(self, model: nn.Module, vace_layers: Sequence[int]) -> None:
        self.model = model
        self.vace_layers = tuple(vace_layers)
        self._handles: list[RemovableHandle] = []
        blocks = model.blocks
        self._handles.append(blocks[self.vace_layers[0]].register_forward_pre_hook(self._compute_hints))
        for i, layer in enumerate(self.vace_layers):
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
        raise NotImplementedError

    def branch_is_zero(self) -> bool:
        """Whether the branch adds nothing (no VACE weights): the controller then skips it."""
        raise NotImplementedError

    def hints_for(self, ctx: BlockContext, cond: VaceConditioning) -> Sequence[Tensor]:
        """This forward's hints, one per VACE block: [B, N, dim] float32 for the chunk's N tokens."""
        raise NotImplementedError

    def _compute_hints(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        """Forward pre-hook: this forward's hints into ``ctx.extras[HINTS_KEY]``."""
        ctx: BlockContext = args[1]
        cond: VaceConditioning | None = ctx.extras.get(EXTRAS_KEY)
        if cond is None or cond.scale == 0.0:
            ctx.extras.pop(HINTS_KEY, None)
            return
        if ctx.x_embedded is None:
            raise ValueError("VACE needs ctx.x_embedded (the patch-embedded tokens before block 0)")
        ctx.extras[HINTS_KEY] = self.hints_for(ctx, cond)

    def _make_inject(self, index: int) -> Callable[[nn.Module, tuple[Any, ...], Tensor], Tensor | None]:
        def inject(module: nn.Module, args: tuple[Any, ...], output: Tensor) -> Tensor | None:
            ctx: BlockContext = args[1]
            hints = ctx.extras.get(HINTS_KEY)
            if hints is None:
                return None
            return output + hints[index] * ctx.extras[EXTRAS_KEY].scale
        return inject


class VaceInjector(VaceHooks):
    """The VACE branch attached to a base model by hooks, plus the branch's per-stream KV ring.

    The ring mirrors the base's (same window, sinks and frame size, :class:`RingShape`) with its
    own layer numbering (one layer per VACE block); it is created on first use and emptied by
    :meth:`reset` (hard cut). ``model`` None: the branch alone, run by :meth:`run` (a worker
    process computing hints for a base elsewhere).
    """

    def __init__(self, model: nn.Module | None, branch: VaceBranch,
                 embed_latents: Callable[[Tensor], Tensor] | None = None) -> None:
        self.branch = branch
        self.embed_latents = embed_latents
        self.kv_cache: RingKVCache | None = None
        self._ring_shape: RingShape | None = None
        first = branch.vace_blocks[0]
        self.rope = Rope3D(first.self_attn.q.weight.shape[0] // first.self_attn.num_heads)
        if model is not None:
            super().__init__(model, branch.vace_layers)

    def reset(self) -> None:
        if self.kv_cache is not None:
            self.kv_cache.reset()

    def branch_is_zero(self) -> bool:
        return self.branch.is_zero()

    def ring(self, shape: RingShape) -> RingKVCache:
        """The branch's ring for a base ring of ``shape`` (kept while the shape stays)."""
        weight = next(self.branch.vace_blocks.parameters())
        if self.kv_cache is None or self._ring_shape != shape or self.kv_cache.k[0].device != weight.device:
            self.kv_cache = RingKVCache(len(self.branch.vace_blocks), shape.batch, shape.heads, shape.head_dim,
                                        shape.frame_tokens, shape.capacity, shape.sink_frames,
                                        device=weight.device, dtype=weight.dtype)
            self._ring_shape = shape
        return self.kv_cache

    def hints_for(self, ctx: BlockContext, cond: VaceConditioning) -> list[Tensor]:
        ring = self.ring(RingShape.of(ctx.kv_cache)) if ctx.kv_cache is not None else None
        return list(self.run(ctx, cond, self.embed_references(cond), ring))

    def embed_references(self, cond: VaceConditioning) -> Tensor | None:
        """The references' own latents embedded as the base embeds its input [B, R*h*w, dim]
        float32 (zeros for a base without ``patch_embedding``), or None without references."""
        refs = cond.references
        if refs is None or refs.shape[2] == 0:
            return None
        latents = refs[:, :16]  # the inactive slot holds the references' latents
        if self.embed_latents is not None:
            return self.embed_latents(latents)
        return torch.zeros_like(self.branch.embed(refs))

    def run(self, ctx: BlockContext, cond: VaceConditioning, x_ref: Tensor | None,
            ring: RingKVCache | None) -> Iterator[Tensor]:
        """Run the branch for one forward of the base (``ctx``: the base's context; ``x_ref``:
        :meth:`embed_references`; ``ring``: the branch's cache, None for a forward without one),
        yielding each block's hint for the chunk's tokens as soon as it is computed; the ring
        commits the chunk after the last block when the forward writes the cache."""
        full = _full_grid(ctx)
        c = _band(ctx, self.branch.embed(cond.context), full)  # [B, N, dim] (this process's band)
        x = ctx.x_embedded
        if c.shape != x.shape:
            raise ValueError(f"vace_context tokens {tuple(c.shape)} do not match the chunk's {tuple(x.shape)}")
        vctx, n_ref = self._branch_context(ctx, cond, ring)
        if n_ref:
            c_ref = self.branch.embed(cond.references)  # [B, R*h*w, dim]
            ref_grid = (cond.references.shape[2], full[1], full[2])
            c = torch.cat([_band(ctx, c_ref, ref_grid), c], 1)
            x = torch.cat([_band(ctx, x_ref, ref_grid), x], 1)
        for hint in self.branch.iter_hints(c, x, vctx):
            yield hint[:, n_ref:]
        if ring is not None and ctx.write_cache:
            ring.commit(ctx.grid[0])

    def _branch_context(self, ctx: BlockContext, cond: VaceConditioning,
                        kv: RingKVCache | None) -> tuple[BlockContext, int]:
        """The branch's context (own cache, references in front) and the reference token count."""
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
                            for table in self.rope.cos_sin(-r, ref_grid, ctx.e.device))
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


def _full_grid(ctx: BlockContext) -> tuple[int, int, int]:
    """The chunk's whole token grid (``ctx.grid`` is one band of it under sequence parallelism)."""
    return ctx.grid if ctx.sequence is None else ctx.sequence.full_grid(ctx.grid)


def _band(ctx: BlockContext, tokens: Tensor, grid: tuple[int, int, int]) -> Tensor:
    """This process's band of ``tokens`` laid out on the whole ``grid`` (all of them on one device)."""
    return tokens if ctx.sequence is None else ctx.sequence.local(tokens, grid)


def patch_embed(patch: nn.Conv3d, latents: Tensor) -> Tensor:
    """Latents [B, 16, F, h, w] embedded by a base's ``patch_embedding`` -> [B, N, dim] float32."""
    w = patch.weight
    return patch(latents.to(device=w.device, dtype=w.dtype)).flatten(2).transpose(1, 2).float()


def attach_vace(model: nn.Module, branch: VaceBranch) -> VaceInjector:
    """Attach ``branch`` to ``model`` (any model with ``.blocks``); returns the handle whose
    ``detach()`` restores the original model. References use ``model.patch_embedding`` (when
    the model has one) to embed their latents as the base would."""
    patch = getattr(model, "patch_embedding", None)
    return VaceInjector(model, branch, functools.partial(patch_embed, patch) if patch is not None else None)
