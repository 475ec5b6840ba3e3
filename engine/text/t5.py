"""umT5-XXL encoder (Wan2.1's text encoder) with Wan's own module names.

Keys match ``models_t5_umt5-xxl-enc-bf16.pth`` (Wan's ``wan/modules/t5.py``, ``T5Encoder``):
``token_embedding.weight``, ``blocks.N.norm1.weight``, ``blocks.N.attn.{q,k,v,o}.weight``,
``blocks.N.norm2.weight``, ``blocks.N.ffn.gate.0.weight``, ``blocks.N.ffn.fc1.weight``,
``blocks.N.ffn.fc2.weight``, ``blocks.N.pos_embedding.embedding.weight`` (umT5: one relative
position bias per block), ``norm.weight``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class T5Config:
    """Encoder architecture plus the number of tokens fed to the DiT."""

    vocab_size: int = 256384
    dim: int = 4096
    dim_attn: int = 4096
    dim_ffn: int = 10240
    num_heads: int = 64
    num_layers: int = 24
    num_buckets: int = 32
    text_len: int = 512


T5_CONFIGS: dict[str, T5Config] = {
    "real": T5Config(),
    # Feeds the tiny DiT (text_dim 32, text_len 16); vocab = the tiny byte tokenizer's.
    "tiny": T5Config(vocab_size=259, dim=32, dim_attn=32, dim_ffn=64, num_heads=4, num_layers=2,
                     num_buckets=32, text_len=16),
}


def _fp16_clamp(x: Tensor) -> Tensor:
    if x.dtype == torch.float16 and torch.isinf(x).any():
        limit = torch.finfo(x.dtype).max - 1000
        x = x.clamp(-limit, limit)
    return x


class T5LayerNorm(nn.Module):
    """RMS norm without bias or mean subtraction, computed in float32."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        x = x * torch.rsqrt(x.float().pow(2).mean(dim=-1, keepdim=True) + self.eps)
        if self.weight.dtype in (torch.float16, torch.bfloat16):
            x = x.type_as(self.weight)
        return self.weight * x


class T5Attention(nn.Module):
    """Multi-head self-attention without the 1/sqrt(d) scaling (T5), with an additive bias."""

    def __init__(self, dim: int, dim_attn: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim_attn, bias=False)
        self.k = nn.Linear(dim, dim_attn, bias=False)
        self.v = nn.Linear(dim, dim_attn, bias=False)
        self.o = nn.Linear(dim_attn, dim, bias=False)

    def forward(self, x: Tensor, bias: Tensor) -> Tensor:
        b, n = x.shape[0], self.num_heads
        q, k, v = (proj(x).view(b, -1, n, proj.out_features // n).transpose(1, 2) for proj in (self.q, self.k, self.v))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype), scale=1.0)  # [B, N, L, C]
        return self.o(y.transpose(1, 2).flatten(2))


class T5FeedForward(nn.Module):
    """Gated GELU(tanh) feed-forward: ``fc2(fc1(x) * gelu(gate(x)))``."""

    def __init__(self, dim: int, dim_ffn: int) -> None:
        super().__init__()
        self.gate = nn.Sequential(nn.Linear(dim, dim_ffn, bias=False), nn.GELU(approximate="tanh"))
        self.fc1 = nn.Linear(dim, dim_ffn, bias=False)
        self.fc2 = nn.Linear(dim_ffn, dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.fc1(x) * self.gate(x))


class T5RelativeEmbedding(nn.Module):
    """Bidirectional bucketed relative position bias ``[1, heads, Lq, Lk]``."""

    def __init__(self, num_buckets: int, num_heads: int, max_dist: int = 128) -> None:
        super().__init__()
        self.num_buckets = num_buckets
        self.max_dist = max_dist
        self.embedding = nn.Embedding(num_buckets, num_heads)

    def forward(self, lq: int, lk: int) -> Tensor:
        device = self.embedding.weight.device
        rel = torch.arange(lk, device=device)[None, :] - torch.arange(lq, device=device)[:, None]
        return self.embedding(self._bucket(rel)).permute(2, 0, 1).unsqueeze(0).contiguous()

    def _bucket(self, rel: Tensor) -> Tensor:
        half = self.num_buckets // 2
        buckets = (rel > 0).long() * half
        rel = rel.abs()
        max_exact = half // 2
        large = max_exact + (torch.log(rel.float() / max_exact) / math.log(self.max_dist / max_exact)
                             * (half - max_exact)).long()
        large = large.clamp(max=half - 1)
        return buckets + torch.where(rel < max_exact, rel, large)


class T5SelfAttention(nn.Module):
    """One encoder block: pre-norm attention and pre-norm gated FFN, own position bias."""

    def __init__(self, cfg: T5Config) -> None:
        super().__init__()
        self.norm1 = T5LayerNorm(cfg.dim)
        self.attn = T5Attention(cfg.dim, cfg.dim_attn, cfg.num_heads)
        self.norm2 = T5LayerNorm(cfg.dim)
        self.ffn = T5FeedForward(cfg.dim, cfg.dim_ffn)
        self.pos_embedding = T5RelativeEmbedding(cfg.num_buckets, cfg.num_heads)

    def forward(self, x: Tensor, keep: Tensor) -> Tensor:
        # relative position bias, padding keys masked out: [B, heads, L, L]
        bias = self.pos_embedding(x.shape[1], x.shape[1]).to(x.dtype)
        bias = bias.masked_fill(~keep, torch.finfo(x.dtype).min)
        x = _fp16_clamp(x + self.attn(self.norm1(x), bias))
        return _fp16_clamp(x + self.ffn(self.norm2(x)))


class UMT5Encoder(nn.Module):
    """Token ids ``[B, L]`` and mask ``[B, L]`` -> hidden states ``[B, L, dim]``."""

    def __init__(self, cfg: T5Config = T5_CONFIGS["real"]) -> None:
        super().__init__()
        self.cfg = cfg
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.blocks = nn.ModuleList(T5SelfAttention(cfg) for _ in range(cfg.num_layers))
        self.norm = T5LayerNorm(cfg.dim)

    def forward(self, ids: Tensor, mask: Tensor) -> Tensor:
        x = self.token_embedding(ids)
        keep = (mask != 0)[:, None, None, :]  # [B, 1, 1, L]
        for block in self.blocks:
            x = block(x, keep)
        return self.norm(x)
