"""Sequence parallelism for one forward (Ulysses, the all-to-all scheme xDiT uses for Wan).

N processes of one ``torch.distributed`` group (NCCL on GPUs, gloo on CPUs) each hold the whole
model and one horizontal band of every latent frame: rows ``[r*h/N, (r+1)*h/N)`` of the token
grid. Everything in a block but self-attention works token by token, so it runs on the band
alone. Self-attention switches, with an all-to-all, from "my tokens, all heads" to "all tokens,
my heads" (heads ``[r*H/N, (r+1)*H/N)``), attends over the whole chunk and the KV ring (which
holds only those heads: the ring is sharded by heads), and switches back. The head's output is
gathered from every band at the end, so every process returns the whole chunk, and the frames
equal one process's within float tolerance (the same sums, in another order).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor


class SequenceParallelError(RuntimeError):
    """A collective of the sequence-parallel group failed: a peer died or timed out."""


@dataclass(frozen=True)
class SequenceShard:
    """This process's place in a sequence-parallel group (``group`` None: the default group)."""

    rank: int
    world: int
    group: dist.ProcessGroup | None = None

    @classmethod
    def of(cls, group: dist.ProcessGroup | None = None) -> SequenceShard:
        """The shard of this process in ``group`` (the process group must be initialised)."""
        return cls(dist.get_rank(group), dist.get_world_size(group), group)

    def rows(self, height: int) -> slice:
        """This process's band of a token grid ``height`` rows high."""
        if height % self.world:
            raise ValueError(f"a token grid of {height} rows does not split over {self.world} processes")
        per = height // self.world
        return slice(self.rank * per, (self.rank + 1) * per)

    def heads(self, num_heads: int) -> int:
        """Heads this process attends with (and holds in its KV ring)."""
        if num_heads % self.world:
            raise ValueError(f"{num_heads} heads do not split over {self.world} processes")
        return num_heads // self.world

    def full_grid(self, local_grid: tuple[int, int, int]) -> tuple[int, int, int]:
        """The whole grid (frames, rows, columns) of a band's grid."""
        f, rows, w = local_grid
        return f, rows * self.world, w

    def local(self, tokens: Tensor, grid: tuple[int, int, int]) -> Tensor:
        """[B, F*h*w, ...] tokens of the whole ``grid`` -> this band's [B, F*(h/N)*w, ...]."""
        f, h, w = grid
        return tokens.unflatten(1, (f, h, w))[:, :, self.rows(h)].flatten(1, 3)

    def gather(self, tokens: Tensor, local_grid: tuple[int, int, int]) -> Tensor:
        """This band's [B, F*(h/N)*w, C] -> every band's, in grid order [B, F*h*w, C]."""
        parts = [torch.empty_like(tokens) for _ in range(self.world)]
        self.collective("all_gather", dist.all_gather, parts, tokens.contiguous(), group=self.group)
        f, rows, w = local_grid
        return torch.stack([p.unflatten(1, (f, rows, w)) for p in parts], 2).flatten(2, 3).flatten(1, 3)

    def to_heads(self, x: Tensor, frames: int) -> Tensor:
        """[B, n, H, D] (this band's tokens, every head) -> [B, N, H/N, D] (every token in grid
        order, this process's heads)."""
        send = x.unflatten(2, (self.world, -1)).permute(2, 0, 1, 3, 4).contiguous()  # [N, B, n, H/N, D]
        received = self._exchange(send)  # [N bands, B, n, H/N, D]
        return received.unflatten(2, (frames, -1)).permute(1, 2, 0, 3, 4, 5).flatten(1, 3)

    def to_tokens(self, x: Tensor, frames: int) -> Tensor:
        """The inverse of :meth:`to_heads`: [B, N, H/N, D] -> [B, n, H, D]."""
        send = x.unflatten(1, (frames, self.world, -1)).permute(2, 0, 1, 3, 4, 5).contiguous()  # [N, B, F, n/F, h, D]
        received = self._exchange(send)  # [N head groups, B, F, n/F, H/N, D]
        return received.permute(1, 2, 3, 0, 4, 5).flatten(1, 2).flatten(2, 3)

    def _exchange(self, send: Tensor) -> Tensor:
        received = torch.empty_like(send)
        self.collective("all_to_all", dist.all_to_all_single, received, send, group=self.group)
        return received

    def collective(self, name: str, op, *args, **kwargs) -> None:
        """Run ``op(*args, **kwargs)`` on the group; a failure (a peer died, the timeout passed)
        becomes a :class:`SequenceParallelError` naming ``name`` and this rank."""
        try:
            op(*args, **kwargs)
        except (RuntimeError, dist.DistBackendError) as exc:  # a peer died, or the group's timeout passed
            raise SequenceParallelError(
                f"sequence-parallel {name} failed on rank {self.rank} of {self.world}: {exc}".splitlines()[0]
            ) from exc
