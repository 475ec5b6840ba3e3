"""Model configuration as data: the Wan2.1 T2V DiT hyper-parameters plus the causal settings."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WanConfig:
    """Hyper-parameters of a Wan2.1 text-to-video DiT used as a causal chunk generator.

    The architecture fields mirror the official Wan2.1 ``WanModel`` constructor. The causal
    fields describe the streaming attention:

    - ``frames_per_chunk``: latent frames denoised together (block-causal attention unit).
    - ``local_attn_frames``: total latent frames a chunk attends to, sinks and the chunk itself
      included (LongLive's ``local_attn_size``; the KV ring holds exactly this many frames).
    - ``sink_frames``: the first latent frames after a reset, kept forever (frame sink).
    """

    dim: int
    ffn_dim: int
    num_heads: int
    num_layers: int
    freq_dim: int = 256
    text_dim: int = 4096
    text_len: int = 512
    patch_size: tuple[int, int, int] = (1, 2, 2)
    in_dim: int = 16
    out_dim: int = 16
    eps: float = 1e-6
    qk_norm: bool = True
    cross_attn_norm: bool = True
    frames_per_chunk: int = 3
    local_attn_frames: int = 12
    sink_frames: int = 3

    def __post_init__(self) -> None:
        if self.dim % self.num_heads:
            raise ValueError(f"dim {self.dim} is not divisible by num_heads {self.num_heads}")
        if self.head_dim % 2:
            raise ValueError(f"head_dim {self.head_dim} must be even for RoPE")
        if self.local_attn_frames < self.sink_frames + self.frames_per_chunk:
            raise ValueError(
                f"local_attn_frames {self.local_attn_frames} must hold the sinks "
                f"({self.sink_frames}) plus one chunk ({self.frames_per_chunk})"
            )

    @property
    def head_dim(self) -> int:
        """Per-head channel count (128 for 1.3B and 14B)."""
        return self.dim // self.num_heads


CONFIGS: dict[str, WanConfig] = {
    "1.3B": WanConfig(dim=1536, ffn_dim=8960, num_heads=12, num_layers=30),
    "14B": WanConfig(dim=5120, ffn_dim=13824, num_heads=40, num_layers=40),
    # The tiny config (the trained CPU default and the random-weight test model). Its width is
    # twice a patch token's 64 values: the flow the model predicts carries the input's noise
    # through the residual stream, which a 64-wide stream cannot do beside anything else.
    "tiny": WanConfig(
        dim=128,
        ffn_dim=256,
        num_heads=2,
        num_layers=2,
        freq_dim=32,
        text_dim=32,
        text_len=16,
    ),
}
