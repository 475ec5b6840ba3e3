"""Chunk driver: a model, its KV ring, the absolute frame index and the few-step sampler."""

from __future__ import annotations

from collections import deque
from typing import Any, Callable

import torch
from torch import Tensor

from ..sampler import add_noise, chunk_rng, draw_noise, timesteps_for, x0_from_flow
from .attention import attention_kernels, using_kernels
from .context import BlockContext
from .kv_cache import TextKVCache
from .model import WanModel
from .sequence import SequenceShard


class CausalGenerator:
    """Generates a video stream chunk by chunk (3 latent frames = 12 video frames each).

    Holds the model, its ``RingKVCache`` (``kv_cache``), the per-prompt text cache
    (``text_cache``), the absolute latent frame index (``frame_index``, the RoPE position of the
    next chunk; it keeps growing while the cache rolls) and ``chunk_index`` (noise = f(seed,
    chunk_index)). ``reset()`` is a hard cut: empty cache, frame index back to 0; the chunk index
    keeps counting so a cut does not replay the same noise (set ``chunk_index`` to replay).
    """

    def __init__(self, model: WanModel, height: int, width: int, batch_size: int = 1,
                 attention: str = "auto", sequence: SequenceShard | None = None) -> None:
        cfg = model.config
        ph, pw = cfg.patch_size[1:]
        lh, lw = height // 8, width // 8
        if lh % ph or lw % pw:
            raise ValueError(f"{width}x{height} gives a latent {lw}x{lh} not divisible by the patch {pw}x{ph}")
        self.model = model
        self.latent_shape = (batch_size, cfg.in_dim, cfg.frames_per_chunk, lh, lw)
        self.sequence = sequence
        """Sequence parallelism: this process's place in its group (every process of it runs the
        same generator with the same inputs and gets the same chunks); None on one device."""
        self.kv_cache = model.new_kv_cache(batch_size, (lh // ph) * (lw // pw), sequence)
        self.text_cache = TextKVCache()
        self.kernels = attention_kernels(attention, model.patch_embedding.weight.device)
        """SDPA backends tried in order in every forward (``attention``; None: PyTorch's choice)."""
        self.frame_index = 0
        self.chunk_index = 0
        self.window: deque[tuple[int, Tensor]] = deque()
        """(first frame, clean latents) of the chunks whose frames are in the ring now (for re-cache)."""

    @property
    def device(self) -> torch.device:
        return self.model.patch_embedding.weight.device

    @property
    def chunks_to_fill(self) -> int:
        """Chunks after a cut until the KV ring is full (from then on shapes stay fixed)."""
        return -(-self.kv_cache.capacity // self.latent_shape[2])

    def reset(self) -> None:
        """Hard cut: forget the cached frames and restart RoPE positions at frame 0."""
        self.kv_cache.reset()
        self.frame_index = 0
        self.window.clear()

    @torch.no_grad()
    def write_cache(self, x0: Tensor, text_context: Tensor, **forward: Any) -> None:
        """Commit a chunk's clean latents [B, 16, 3, h, w] to the cache (the t=0 pass) and advance."""
        with using_kernels(self.kernels):
            self.model(x0, 0.0, text_context, kv_cache=self.kv_cache, text_cache=self.text_cache,
                       start_frame=self.frame_index, write_cache=True, sequence=self.sequence, **forward)
        self.window.append((self.frame_index, x0))
        self.frame_index += x0.shape[2]
        oldest_in_ring = self.frame_index - self.kv_cache.ring_frames
        while self.window and self.window[0][0] < oldest_in_ring:
            self.window.popleft()

    @torch.no_grad()
    def recache(self, text_context: Tensor) -> int:
        """Re-encode the ring's frames with a new prompt (LongLive's switch re-cache); returns
        the number of latent frames rewritten.

        The kept clean latents of the window are run at t=0 with ``text_context``, in order and
        block-causally (each chunk attends to the sinks and the chunks re-encoded before it), and
        their K/V overwrite the ring. The sink frames keep their K/V, as LongLive's inference
        configuration does (``global_sink: true``). Runs the base model alone (no VACE hints).
        """
        cache = self.kv_cache
        chunks = [(start, x0) for start, x0 in self.window if start >= cache.sink_frames]
        if not chunks:
            return 0
        written = cache.frames_written
        rewritten = sum(x0.shape[2] for _, x0 in chunks)
        if chunks[0][0] != written - rewritten:
            raise RuntimeError("re-cache needs the ring to hold whole chunks (sinks and window multiples of 3)")
        cache.frames_written = cache.sink_frames  # rewrite from the first ring slot
        cache.shift = 0
        with using_kernels(self.kernels):
            for start, x0 in chunks:
                self.model(x0, 0.0, text_context, kv_cache=cache, text_cache=self.text_cache, start_frame=start,
                           write_cache=True, sequence=self.sequence)
        cache.frames_written = written
        cache.shift = (rewritten - (written - cache.sink_frames)) % cache.ring_frames
        return rewritten

    @torch.no_grad()
    def generate_chunk(
        self,
        text_context: Tensor,
        seed: int,
        steps: int = 4,
        extras_fn: Callable[[BlockContext], None] | None = None,
        extras: dict[str, Any] | None = None,
    ) -> Tensor:
        """Denoise the next chunk and write it to the cache; returns clean latents [B, 16, 3, h, w] float32.

        text_context: prompt embeddings [B, L, text_dim]; pass the same tensor object while the
        prompt is unchanged so its cross-attention K/V stay cached.
        steps: 1..4 (see ``engine.sampler.select_steps``).
        extras_fn / extras: forwarded to every model forward of this chunk (denoising steps and
        the cache-writing t=0 pass; ``ctx.write_cache`` tells them apart).
        """
        gen = chunk_rng(seed, self.chunk_index)
        x = draw_noise(gen, self.latent_shape, self.device)
        timesteps = timesteps_for(steps)
        common = dict(
            kv_cache=self.kv_cache, text_cache=self.text_cache, start_frame=self.frame_index,
            extras=extras, extras_fn=extras_fn, sequence=self.sequence,
        )
        with using_kernels(self.kernels):
            for i, t in enumerate(timesteps):
                flow = self.model(x, t, text_context, write_cache=False, **common)
                x0 = x0_from_flow(x, flow, t)
                if i + 1 < len(timesteps):
                    x = add_noise(x0, draw_noise(gen, self.latent_shape, self.device), timesteps[i + 1])
        self.write_cache(x0, text_context, extras=extras, extras_fn=extras_fn)
        self.chunk_index += 1
        return x0
