"""Caches for streaming inference: the self-attention KV ring (with the per-forward plan that lets
the blocks compile whole) and the per-prompt text K/V cache."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import torch
from torch import Tensor

T = TypeVar("T")


@dataclass(frozen=True)
class RingPlan:
    """Where one forward's chunk goes in a :class:`RingKVCache`, worked out once per forward.

    Every layer writes its K/V to the same ``slots`` and attends to the first ``valid`` frames
    of its buffers, so the blocks do no slot arithmetic: they index with a tensor and slice with
    an int, which ``torch.compile(fullgraph=True)`` traces without a break. ``prefix_tokens``
    leading tokens of the chunk's K/V (the VACE branch's reference frames) are attended to in
    front of the ring and never written to it.
    """

    slots: Tensor  # [F] long, on the cache's device: the buffer slot of each frame of the chunk
    valid: int  # frames of the buffer attended to (sinks + ring), the chunk included
    full: bool  # the window is full: shapes no longer change (the steady state of a stream)
    prefix_tokens: int = 0  # leading K/V tokens attended to but not cached (references)


def attend_ring(buffers: tuple[Tensor, Tensor], k: Tensor, v: Tensor, plan: RingPlan) -> tuple[Tensor, Tensor]:
    """Write a chunk's K/V into one layer's ring buffers and return the K/V to attend to.

    buffers: that layer's (K, V) [B, heads, capacity, frame_tokens, head_dim] (written in place);
    k, v: [B, heads, prefix + F*frame_tokens, head_dim] -> [B, heads, prefix + valid*frame_tokens, head_dim].
    Pure tensor code (no Python branching on the cache's state), so it compiles into the block.
    """
    buf_k, buf_v = buffers
    n = plan.prefix_tokens
    frames = plan.slots.shape[0]
    chunk_k = k[:, :, n:].unflatten(2, (frames, -1)).to(buf_k.dtype)  # [B, H, F, S, D]
    chunk_v = v[:, :, n:].unflatten(2, (frames, -1)).to(buf_v.dtype)
    buf_k.index_copy_(2, plan.slots, chunk_k)
    buf_v.index_copy_(2, plan.slots, chunk_v)
    ring_k = buf_k[:, :, :plan.valid].flatten(2, 3).to(k.dtype)
    ring_v = buf_v[:, :, :plan.valid].flatten(2, 3).to(v.dtype)
    if n == 0:
        return ring_k, ring_v
    return torch.cat([k[:, :, :n], ring_k], 2), torch.cat([v[:, :, :n], ring_v], 2)


class RingKVCache:
    """Fixed-size self-attention cache of a stack of blocks, one buffer pair per layer.

    Each layer owns a preallocated buffer of ``local_attn_frames`` latent frames
    ([B, heads, frames, frame_tokens, head_dim] for K and for V). The first ``sink_frames``
    slots hold the first frames written after a reset (the frame sink) and are never evicted;
    the remaining slots form a ring holding the most recent frames, the current chunk included.
    Keys are stored already rotated (RoPE with their absolute frame index), so the slot order
    does not matter to attention and nothing is ever shifted or reallocated.

    A chunk attends to: the sink frames + the last ``local_attn_frames - sink_frames`` frames
    ending with itself. A forward asks for a :class:`RingPlan` once (:meth:`plan`), every layer
    writes the chunk into the slots it will occupy (those slots held frames that just left the
    window) with :func:`attend_ring`, and a pass that commits (the clean t=0 pass) then calls
    :meth:`commit`; denoising steps do not, so they overwrite the same slots.

    Any stack of blocks may own an instance (the VACE branch has its own); ``reset()`` is a hard
    cut. ``shift`` rotates the ring's slot assignment: a prompt re-cache
    (:meth:`CausalGenerator.recache`) rewrites the window's frames in order from the first ring
    slot and sets it so that the next frame still replaces the oldest.
    """

    def __init__(
        self,
        num_layers: int,
        batch_size: int,
        num_heads: int,
        head_dim: int,
        frame_tokens: int,
        local_attn_frames: int,
        sink_frames: int,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if not 0 <= sink_frames < local_attn_frames:
            raise ValueError(f"need 0 <= sink_frames ({sink_frames}) < local_attn_frames ({local_attn_frames})")
        self.num_layers = num_layers
        self.frame_tokens = frame_tokens
        self.capacity = local_attn_frames
        self.sink_frames = sink_frames
        shape = (batch_size, num_heads, local_attn_frames, frame_tokens, head_dim)
        self.k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(num_layers)]
        self.v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(num_layers)]
        self.frames_written = 0  # committed frames since reset
        self.shift = 0

    @property
    def nbytes(self) -> int:
        """Bytes held by the K/V buffers (constant for the life of the cache)."""
        return sum(t.numel() * t.element_size() for t in self.k + self.v)

    def reset(self) -> None:
        """Forget everything (hard cut); memory is kept and reused."""
        self.frames_written = 0
        self.shift = 0

    @property
    def ring_frames(self) -> int:
        """Slots of the ring (the window without its sinks)."""
        return self.capacity - self.sink_frames

    def slot(self, frame: int) -> int:
        """Buffer slot of the ``frame``-th frame written since reset."""
        if frame < self.sink_frames:
            return frame
        return self.sink_frames + (frame - self.sink_frames + self.shift) % self.ring_frames

    def layer(self, index: int) -> tuple[Tensor, Tensor]:
        """Layer ``index``'s (K, V) buffers, for :func:`attend_ring`."""
        return self.k[index], self.v[index]

    def plan(self, num_tokens: int, prefix_tokens: int = 0) -> RingPlan:
        """The slots and attended span of the next chunk of ``num_tokens`` tokens (after
        ``prefix_tokens`` uncached leading tokens)."""
        num_frames = num_tokens // self.frame_tokens
        if num_frames * self.frame_tokens != num_tokens:
            raise ValueError(f"{num_tokens} tokens is not a whole number of {self.frame_tokens}-token frames")
        if num_frames > self.ring_frames:
            raise ValueError(f"chunk of {num_frames} frames does not fit the ring of the cache")
        start = self.frames_written
        slots = [self.slot(start + i) for i in range(num_frames)]
        device = self.k[0].device
        valid = min(start + num_frames, self.capacity)
        return RingPlan(torch.tensor(slots, dtype=torch.long).to(device, non_blocking=True),
                        valid, valid == self.capacity, prefix_tokens)

    def commit(self, num_frames: int) -> None:
        """Advance past a chunk of ``num_frames`` frames written under the last plan."""
        self.frames_written += num_frames


class TextKVCache:
    """Per-prompt cache of anything derived from the prompt embeddings (embedded text, the
    cross-attention K/V of every block), keyed by the owning module.

    The prompt is identified by tensor identity plus its in-place version counter: passing a new
    tensor, or modifying the same one in place, clears the cache. (Tensors created under
    ``torch.inference_mode`` have no version counter; for them only identity is checked.)
    """

    def __init__(self) -> None:
        self._prompt: Tensor | None = None
        self._version: int | None = None
        self._entries: dict[Any, Any] = {}

    @staticmethod
    def _version_of(t: Tensor) -> int | None:
        try:
            return t._version
        except RuntimeError:  # inference tensors carry no version counter
            return None

    @torch.compiler.disable
    def get(self, owner: Any, prompt: Tensor, compute: Callable[[], T]) -> T:
        """Return the value cached for ``owner`` under ``prompt``, computing it on a miss.

        Kept out of ``torch.compile`` graphs: guarding on the cache's contents would recompile the
        block at every new entry."""
        if prompt is not self._prompt or self._version_of(prompt) != self._version:
            self._entries = {}
            self._prompt, self._version = prompt, self._version_of(prompt)
        if owner not in self._entries:
            self._entries[owner] = compute()
        return self._entries[owner]
