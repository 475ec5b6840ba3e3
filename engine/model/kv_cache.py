"""Caches for streaming inference: the self-attention KV ring and the per-prompt text K/V cache."""

from __future__ import annotations

from typing import Any, Callable, TypeVar

import torch
from torch import Tensor

T = TypeVar("T")


class RingKVCache:
    """Fixed-size self-attention cache of a stack of blocks, keyed by layer index.

    Each layer owns a preallocated buffer of ``local_attn_frames`` latent frames
    ([B, heads, frames, frame_tokens, head_dim] for K and for V). The first ``sink_frames``
    slots hold the first frames written after a reset (the frame sink) and are never evicted;
    the remaining slots form a ring holding the most recent frames, the current chunk included.
    Keys are stored already rotated (RoPE with their absolute frame index), so the slot order
    does not matter to attention and nothing is ever shifted or reallocated.

    A chunk attends to: the sink frames + the last ``local_attn_frames - sink_frames`` frames
    ending with itself. Passes with ``commit=False`` (denoising steps) write the chunk into the
    slots it will occupy (those slots held frames that just left the window) without advancing;
    a pass with ``commit=True`` (the clean t=0 pass) writes and advances.

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
        self.frames_written = [0] * num_layers  # committed frames per layer since reset
        self.shift = 0

    @property
    def nbytes(self) -> int:
        """Bytes held by the K/V buffers (constant for the life of the cache)."""
        return sum(t.numel() * t.element_size() for t in self.k + self.v)

    def reset(self) -> None:
        """Forget everything (hard cut); memory is kept and reused."""
        self.frames_written = [0] * self.num_layers
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

    def _runs(self, start: int, num_frames: int) -> list[tuple[int, int, int]]:
        """(offset in chunk, first slot, length) runs of consecutive slots for frames
        start..start+num_frames-1 (split where the sinks end or the ring wraps)."""
        runs: list[tuple[int, int, int]] = []
        for i in range(num_frames):
            slot = self.slot(start + i)
            if runs and runs[-1][1] + runs[-1][2] == slot:
                runs[-1] = (runs[-1][0], runs[-1][1], runs[-1][2] + 1)
            else:
                runs.append((i, slot, 1))
        return runs

    @torch.compiler.disable
    def update(self, layer: int, k: Tensor, v: Tensor, commit: bool) -> tuple[Tensor, Tensor]:
        """Write a chunk's K/V [B, heads, F*frame_tokens, head_dim] for ``layer`` and return the
        K/V to attend to, [B, heads, valid_frames*frame_tokens, head_dim] (views, no copy).

        Kept out of ``torch.compile`` graphs (Python bookkeeping); blocks compile around it."""
        num_frames = k.shape[2] // self.frame_tokens
        if num_frames * self.frame_tokens != k.shape[2]:
            raise ValueError(f"{k.shape[2]} tokens is not a whole number of {self.frame_tokens}-token frames")
        if num_frames > self.capacity - self.sink_frames:
            raise ValueError(f"chunk of {num_frames} frames does not fit the ring of the cache")
        start = self.frames_written[layer]
        k = k.unflatten(2, (num_frames, self.frame_tokens))  # [B, H, F, S, D]
        v = v.unflatten(2, (num_frames, self.frame_tokens))
        buf_k, buf_v = self.k[layer], self.v[layer]
        for offset, slot, length in self._runs(start, num_frames):
            buf_k[:, :, slot:slot + length].copy_(k[:, :, offset:offset + length])
            buf_v[:, :, slot:slot + length].copy_(v[:, :, offset:offset + length])
        if commit:
            self.frames_written[layer] = start + num_frames
        valid = min(start + num_frames, self.capacity)
        return buf_k[:, :, :valid].flatten(2, 3), buf_v[:, :, :valid].flatten(2, 3)


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
