"""Few-step flow-matching sampler of the causal generators (Self-Forcing / CausVid / LongLive).

Conventions (Wan2.1 flow matching): sigma = t / 1000, x_t = (1 - sigma) * x0 + sigma * noise, the
model predicts the flow ``noise - x0``, so ``x0 = x_t - sigma * flow``.

The generators were distilled on ``DENOISING_STEPS = [1000, 750, 500, 250]`` warped through the
shifted schedule (shift 5.0): with s = t/1000, ``t' = 1000 * shift*s / (1 + (shift-1)*s)``,
i.e. [1000, 937.5, 833.33, 625] (Self-Forcing's ``warp_denoising_step``). Between steps the
predicted x0 is re-noised to the next timestep with fresh noise.

Choosing fewer steps (``select_steps``): the subset is evenly spaced over the 4-step list and
always keeps the first step (pure noise, t=1000) and the last one (the finest, t=250):
1 -> [1000], 2 -> [1000, 250], 3 -> [1000, 500, 250], 4 -> [1000, 750, 500, 250].

Noise is a function of (seed, chunk index) only: one CPU ``torch.Generator`` per chunk, seeded
from a hash of both, draws the initial noise then the re-noising noise of each step, and the
tensors are moved to the target device afterwards, so CPU and GPU runs see the same noise.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
from torch import Tensor

DENOISING_STEPS: tuple[int, ...] = (1000, 750, 500, 250)
SHIFT: float = 5.0
NUM_TRAIN_TIMESTEPS: int = 1000


def warp_timesteps(
    steps: Sequence[float], shift: float = SHIFT, num_train_timesteps: int = NUM_TRAIN_TIMESTEPS
) -> list[float]:
    """Map timesteps through the shifted flow-matching schedule: t -> T * shift*s/(1+(shift-1)*s), s = t/T."""
    out = []
    for t in steps:
        s = t / num_train_timesteps
        out.append(num_train_timesteps * shift * s / (1 + (shift - 1) * s))
    return out


def select_steps(num_steps: int, steps: Sequence[int] = DENOISING_STEPS) -> list[int]:
    """Evenly spaced subset of ``steps`` of length ``num_steps``, keeping the first and the last."""
    if not 1 <= num_steps <= len(steps):
        raise ValueError(f"num_steps must be in 1..{len(steps)}, got {num_steps}")
    if num_steps == 1:
        return [steps[0]]
    last = len(steps) - 1
    return [steps[int(i * last / (num_steps - 1) + 0.5)] for i in range(num_steps)]


def timesteps_for(num_steps: int, shift: float = SHIFT) -> list[float]:
    """The warped timesteps actually fed to the model for a live step count (1..4)."""
    return warp_timesteps(select_steps(num_steps), shift)


def chunk_rng(seed: int, chunk_index: int) -> torch.Generator:
    """A CPU generator seeded from a hash of (seed, chunk_index)."""
    digest = hashlib.blake2b(f"{seed}:{chunk_index}".encode(), digest_size=8).digest()
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int.from_bytes(digest, "little") & ((1 << 63) - 1))
    return gen


def draw_noise(gen: torch.Generator, shape: Sequence[int], device: torch.device | str = "cpu") -> Tensor:
    """Standard normal float32 noise drawn on CPU from ``gen``, then moved to ``device``."""
    return torch.randn(tuple(shape), generator=gen, dtype=torch.float32).to(device)


def x0_from_flow(x_t: Tensor, flow: Tensor, t: float) -> Tensor:
    """Clean-latent prediction from the model's flow at timestep t."""
    return x_t - (t / NUM_TRAIN_TIMESTEPS) * flow


def add_noise(x0: Tensor, noise: Tensor, t: float) -> Tensor:
    """Noise clean latents to timestep t."""
    sigma = t / NUM_TRAIN_TIMESTEPS
    return (1 - sigma) * x0 + sigma * noise
