"""The Wan2.1 text-to-video DiT with the official module tree, run chunk by chunk."""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from .attention import FP32LayerNorm
from .block import WanBlock
from .config import WanConfig
from .context import BlockContext
from .kv_cache import RingKVCache, TextKVCache
from .rope import Rope3D
from .sequence import SequenceShard


def compile_stack(blocks: nn.ModuleList, **kwargs: Any) -> None:
    """Compile a stack of blocks for the stream's steady state (see :meth:`WanBlock.compile`).

    The blocks share one forward and read their own tensors from the context, so they share
    their graphs: a recompile happens only for a new shape (e.g. VACE references) or dtype.
    Dynamo's recompile limit is raised a little so such variants never fall back to eager."""
    import torch._dynamo

    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 16)
    for block in blocks:
        block.compile(**kwargs)


def sinusoidal_embedding(dim: int, position: Tensor) -> Tensor:
    """Wan's 1D sinusoidal embedding: [..] positions -> [.., dim] as cat(cos, sin), float32."""
    half = dim // 2
    pos = position.to(torch.float64)
    freqs = torch.pow(10000.0, -torch.arange(half, dtype=torch.float64, device=pos.device) / half)
    angles = pos[..., None] * freqs
    return torch.cat([angles.cos(), angles.sin()], dim=-1).float()


def _linear_f32(layer: nn.Linear, x: Tensor) -> Tensor:
    """Apply ``layer`` in float32 whatever its parameter dtype (the timestep path is kept fp32)."""
    return F.linear(x, layer.weight.float(), layer.bias.float())


class Head(nn.Module):
    """Output head: modulated LayerNorm (2 vectors: shift, scale) then ``head`` Linear."""

    def __init__(self, config: WanConfig) -> None:
        super().__init__()
        dim = config.dim
        self.norm = FP32LayerNorm(dim, config.eps, elementwise_affine=False)
        self.head = nn.Linear(dim, config.out_dim * math.prod(config.patch_size))
        self.modulation = nn.Parameter(torch.randn(1, 2, dim) / dim**0.5)

    def forward(self, x: Tensor, e: Tensor) -> Tensor:
        """x [B, N, dim] float32, e [B, F, dim] float32 -> [B, N, out_dim*prod(patch)] float32."""
        frames = e.shape[1]
        shift, scale = (self.modulation.float().unsqueeze(1) + e.unsqueeze(2)).unsqueeze(2).unbind(3)
        h = (self.norm(x).unflatten(1, (frames, -1)) * (1 + scale) + shift).flatten(1, 2)
        return self.head(h.to(self.head.weight.dtype)).float()


class WanModel(nn.Module):
    """Wan2.1 T2V DiT (1.3B / 14B / tiny) with block-causal streaming attention.

    Parameter names equal the official checkpoint keys. ``forward`` runs one chunk against a
    ``RingKVCache`` (streaming), or a whole sequence with an explicit mask (reference).
    """

    def __init__(self, config: WanConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.dim
        self.patch_embedding = nn.Conv3d(config.in_dim, dim, kernel_size=config.patch_size, stride=config.patch_size)
        self.text_embedding = nn.Sequential(
            nn.Linear(config.text_dim, dim), nn.GELU(approximate="tanh"), nn.Linear(dim, dim)
        )
        self.time_embedding = nn.Sequential(nn.Linear(config.freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.time_projection = nn.Sequential(nn.SiLU(), nn.Linear(dim, dim * 6))
        self.blocks = nn.ModuleList([WanBlock(config) for _ in range(config.num_layers)])
        self.head = Head(config)
        self.rope = Rope3D(config.head_dim)

    def compile_blocks(self, **kwargs: Any) -> None:
        """Compile every block (see :meth:`WanBlock.compile`); kwargs go to ``torch.compile``."""
        compile_stack(self.blocks, **kwargs)

    def new_kv_cache(self, batch_size: int, frame_tokens: int, sequence: SequenceShard | None = None) -> RingKVCache:
        """A ring cache sized for this model's blocks and causal settings (device/dtype of the weights);
        with ``sequence``, for this process's heads only."""
        p = self.patch_embedding.weight
        cfg = self.config
        heads = cfg.num_heads if sequence is None else sequence.heads(cfg.num_heads)
        return RingKVCache(
            cfg.num_layers, batch_size, heads, cfg.head_dim, frame_tokens,
            cfg.local_attn_frames, cfg.sink_frames, device=p.device, dtype=p.dtype,
        )

    def embed_text(self, prompt: Tensor) -> Tensor:
        """prompt [B, L, text_dim] (L <= text_len) -> [B, text_len, dim]; zero-padded like Wan."""
        cfg = self.config
        if prompt.shape[1] > cfg.text_len:
            raise ValueError(f"prompt has {prompt.shape[1]} tokens, more than text_len {cfg.text_len}")
        if prompt.shape[-1] != cfg.text_dim:
            raise ValueError(f"prompt channel size {prompt.shape[-1]} != text_dim {cfg.text_dim}")
        w = self.text_embedding[0].weight
        prompt = F.pad(prompt.to(device=w.device, dtype=w.dtype), (0, 0, 0, cfg.text_len - prompt.shape[1]))
        return self.text_embedding(prompt)

    def forward(
        self,
        x: Tensor,
        timestep: Tensor | float,
        prompt: Tensor,
        *,
        kv_cache: RingKVCache | None = None,
        text_cache: TextKVCache | None = None,
        start_frame: int = 0,
        write_cache: bool = False,
        attn_mask: Tensor | None = None,
        extras: dict[str, Any] | None = None,
        extras_fn: Callable[[BlockContext], None] | None = None,
        sequence: SequenceShard | None = None,
    ) -> Tensor:
        """Predict the flow (velocity) for latents x [B, in_dim, F, H, W] -> [B, out_dim, F, H, W] float32.

        timestep: scalar, [B] or [B, F] (0..1000). prompt: [B, L, text_dim] raw text embeddings.
        kv_cache / write_cache: attend to cached frames, commit this chunk when write_cache.
        start_frame: absolute latent frame index of x[:, :, 0] (RoPE).
        attn_mask: bool [N, N] self-attention mask (full-sequence reference; no cache).
        extras / extras_fn: ``extras`` becomes ``ctx.extras``; ``extras_fn(ctx)`` is called once
        after the context is built and before block 0 (e.g. to compute VACE hints).
        sequence: run the blocks on this process's band of rows (sequence parallelism, see
        :mod:`.sequence`; every process of the group calls with the same inputs and gets the
        whole output). ``kv_cache`` must then hold this process's heads.
        """
        cfg = self.config
        p = self.patch_embedding.weight
        tokens = self.patch_embedding(x.to(device=p.device, dtype=p.dtype))  # [B, dim, F, h, w]
        batch, grid = tokens.shape[0], tuple(tokens.shape[2:])
        tokens = tokens.flatten(2).transpose(1, 2).float()  # [B, N, dim]

        t = torch.as_tensor(timestep, dtype=torch.float32, device=p.device)
        t = t.reshape(-1, 1) if t.dim() <= 1 else t
        t = t.expand(batch, grid[0])  # [B, F]
        e = _linear_f32(self.time_embedding[2], F.silu(_linear_f32(self.time_embedding[0], sinusoidal_embedding(cfg.freq_dim, t))))
        e0 = _linear_f32(self.time_projection[1], F.silu(e)).unflatten(-1, (6, cfg.dim))  # [B, F, 6, dim]

        if text_cache is not None:
            context = text_cache.get(self.text_embedding, prompt, lambda: self.embed_text(prompt))
        else:
            context = self.embed_text(prompt)

        rope = self.rope.cos_sin(start_frame, grid, p.device)
        local_grid = grid
        if sequence is not None:
            if attn_mask is not None:
                raise ValueError("a masked full-sequence pass does not run sequence-parallel")
            tokens = sequence.local(tokens, grid)
            rope = tuple(sequence.local(table[None], grid)[0] for table in rope)
            local_grid = (grid[0], grid[1] // sequence.world, grid[2])
        ctx = BlockContext(
            e=e0, timestep=t, grid=local_grid, start_frame=start_frame, rope=rope,
            context=context, prompt=prompt, text_cache=text_cache, kv_cache=kv_cache,
            plan=kv_cache.plan(math.prod(grid)) if kv_cache is not None else None,
            write_cache=write_cache, attn_mask=attn_mask, x_embedded=tokens,
            extras={} if extras is None else extras, sequence=sequence,
        )
        if extras_fn is not None:
            extras_fn(ctx)
        cross = ctx.stack_cross_kv(self, self.blocks)
        h = tokens
        for i, block in enumerate(self.blocks):
            h = block(h, ctx.enter_layer(i, cross))
        if kv_cache is not None and write_cache:
            kv_cache.commit(grid[0])
        out = self.head(h, e)  # [B, N, out*prod(patch)]
        if sequence is not None:
            out = sequence.gather(out, local_grid)
        pf, ph, pw = cfg.patch_size
        return rearrange(
            out, "b (f h w) (pf ph pw c) -> b c (f pf) (h ph) (w pw)",
            f=grid[0], h=grid[1], w=grid[2], pf=pf, ph=ph, pw=pw,
        )
