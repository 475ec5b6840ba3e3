"""Grafting the ``vace_*`` weights of a Wan2.1-VACE checkpoint onto a :class:`VaceBranch`.

The checkpoint (``Wan2.1-VACE-1.3B`` / ``-14B`` ``diffusion_pytorch_model*.safetensors``, or a
VACE-only module file) also holds the base keys (``blocks.*``, ``head.*``, ...): those are
ignored, the base comes from the causal generator. The ``vace_*`` keys must match the branch
exactly: a missing, unexpected or mis-shaped key is an error that names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import safe_open
from torch import Tensor

from vacelive.engine.model import read_state_dict

from .branch import VaceBranch

PREFIX = "vace_"


class VaceGraftError(KeyError):
    """The checkpoint's ``vace_*`` keys do not match the branch; ``problems`` names each key."""

    def __init__(self, problems: list[str], source: str) -> None:
        self.problems = problems
        super().__init__(f"{source}: VACE weights do not match the branch:\n  " + "\n  ".join(problems))


def read_vace_weights(path: str | Path) -> dict[str, Tensor]:
    """The ``vace_*`` tensors of a checkpoint file or folder (safetensors files are read lazily,
    so the base weights they also hold are never loaded)."""
    path = Path(path)
    files = sorted(path.glob("*.safetensors")) if path.is_dir() else [path]
    if files and all(f.suffix == ".safetensors" for f in files):
        out: dict[str, Tensor] = {}
        for f in files:
            if not f.is_file():
                raise FileNotFoundError(f"VACE weights not found: {f}")
            with safe_open(str(f), framework="pt") as handle:
                out.update({k: handle.get_tensor(k) for k in handle.keys() if k.startswith(PREFIX)})
        return out
    return {k: v for k, v in read_state_dict(path).items() if k.startswith(PREFIX)}


@torch.no_grad()
def graft_vace(branch: VaceBranch, weights: str | Path | Mapping[str, Tensor]) -> None:
    """Load the ``vace_*`` entries of ``weights`` (a path or a state dict) into ``branch``
    strictly; other keys are ignored. Raises :class:`VaceGraftError` naming every problem."""
    source = "state dict" if isinstance(weights, Mapping) else str(weights)
    given = {k: v for k, v in weights.items() if k.startswith(PREFIX)} if isinstance(weights, Mapping) \
        else read_vace_weights(weights)
    own = branch.state_dict()
    problems = [f"missing key: {k}" for k in sorted(set(own) - set(given))]
    problems += [f"unexpected key: {k}" for k in sorted(set(given) - set(own))]
    problems += [f"shape mismatch: {k} (checkpoint {tuple(given[k].shape)} vs branch {tuple(own[k].shape)})"
                 for k in sorted(set(own) & set(given)) if given[k].shape != own[k].shape]
    if problems:
        raise VaceGraftError(problems, source)
    for k, target in own.items():
        target.copy_(given[k].to(device=target.device, dtype=target.dtype))
