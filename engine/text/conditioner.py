"""Per-chunk prompt conditioning: weighted prompt lists and smooth prompt transitions."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from .cache import PromptCache
from .encoder import RandomPromptEmbeddings
from .spec import parse_prompt_spec


def slerp_tokens(a: Tensor, b: Tensor, w: float) -> Tensor:
    """Spherical interpolation from ``a`` to ``b`` (``[..., L, D]``) per token vector.

    Each token's D-vector follows the great circle between the two directions (norms are carried
    along by the same weights). Where either vector is zero (padding positions) or the two are
    (anti)parallel, the weights fall back to linear ``(1 - w, w)``.
    """
    a32, b32 = a.float(), b.float()
    na, nb = a32.norm(dim=-1, keepdim=True), b32.norm(dim=-1, keepdim=True)
    cos = ((a32 * b32).sum(-1, keepdim=True) / (na * nb).clamp_min(1e-12)).clamp(-1.0, 1.0)
    theta = torch.acos(cos)
    sin = torch.sin(theta)
    ok = (sin > 1e-6) & (na > 0) & (nb > 0)
    safe = torch.where(ok, sin, torch.ones_like(sin))
    wa = torch.where(ok, torch.sin((1 - w) * theta) / safe, torch.full_like(sin, 1 - w))
    wb = torch.where(ok, torch.sin(w * theta) / safe, torch.full_like(sin, w))
    return (wa * a32 + wb * b32).to(a.dtype)


def lerp(a: Tensor, b: Tensor, w: float) -> Tensor:
    """Linear interpolation ``(1 - w) a + w b``."""
    return a + (b - a) * w


class PromptConditioner:
    """Turns the live prompt spec into the text embedding ``[1, text_len, dim]`` of each chunk.

    * A spec is a weighted list, ``"a forest:0.7|neon city:0.3"``: the embedding is the weighted
      sum (weights normalised to 1) of the prompts' embeddings (zero-padded positions stay zero
      where every prompt is padded).
    * When the spec changes with ``transition_chunks = N > 1``, the output moves from the last
      returned embedding to the new one over N chunks: chunk k = 1..N of the transition uses
      weight ``k / N`` on the new embedding (the chunk of the change already uses 1/N; chunk N is
      exactly the new embedding). ``N <= 1`` switches at once. A change during a transition starts
      a new one from the embedding shown last. ``blend`` is "linear" or "slerp" (per token vector,
      see :func:`slerp_tokens`), taken from the call that changes the spec.
    * While nothing changes the very same tensor object is returned, so callers may cache derived
      values (cross-attention K/V) by identity.
    """

    def __init__(self, cache: PromptCache | RandomPromptEmbeddings, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32) -> None:
        self.cache = cache
        self.device = torch.device(device)
        self.dtype = dtype
        self._memo: dict[str, Tensor] = {}
        self.reset()

    def reset(self) -> None:
        """Forget the current prompt and any transition (the next ``embed`` switches at once)."""
        self._parsed: tuple[tuple[str, float], ...] | None = None
        self._current: Tensor | None = None
        self._target: Tensor | None = None
        self._source: Tensor | None = None
        self._step = self._steps = 0
        self._blend = lerp
        self.switched = False
        """Whether the last ``embed`` started a new prompt (a switch, or the start of a transition)."""

    def _prompt(self, prompt: str) -> Tensor:
        if prompt not in self._memo:
            self._memo[prompt] = self.cache.get(prompt).to(self.device, self.dtype)
        return self._memo[prompt]

    def _mix(self, parsed: tuple[tuple[str, float], ...]) -> Tensor:
        out = sum(self._prompt(p) * w for p, w in parsed)
        return out.unsqueeze(0)  # [1, L, D]

    def embed(self, prompt_spec: str, transition_chunks: int = 0,
              blend: Literal["linear", "slerp"] = "linear") -> Tensor:
        """The embedding ``[1, text_len, dim]`` for the next chunk (see the class docstring)."""
        if blend not in ("linear", "slerp"):
            raise ValueError(f"blend must be 'linear' or 'slerp', got {blend!r}")
        parsed = tuple(parse_prompt_spec(prompt_spec))
        self.switched = parsed != self._parsed and self._current is not None
        if parsed != self._parsed:
            target = self._mix(parsed)
            if self._current is None or transition_chunks <= 1:
                self._source, self._current = None, target
            else:
                self._source, self._step, self._steps = self._current, 0, transition_chunks
                self._blend = slerp_tokens if blend == "slerp" else lerp
            self._parsed, self._target = parsed, target
        if self._source is not None:
            self._step += 1
            if self._step >= self._steps:
                self._source, self._current = None, self._target
            else:
                self._current = self._blend(self._source, self._target, self._step / self._steps)
        return self._current
