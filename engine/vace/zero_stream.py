"""The inactive stream without a mask: zeros in, the same latents out, computed once.

Without an inpainting mask the inactive frames ``frames * (1 - mask)`` are all zero, yet encoding
them costs as much as encoding the control. A stream that has only ever seen zero chunks reaches a
fixed point after a chunk or two (every layer's memory then holds the features of zero frames):
each further chunk gives the same latents and leaves the same state. :class:`ZeroStreamMemo`
encodes zero chunks once, on a private cache, until two chunks in a row agree exactly (latents
and state, the frame count aside), and then answers from memory. When real frames arrive after
``n`` remembered chunks, :meth:`ZeroStreamMemo.state_after` gives the stream's state exactly as
if all ``n`` had been encoded, so the result never differs from encoding every chunk.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor

from vacelive.engine.vae import StreamCache, VideoAutoencoder

MAX_CHUNKS = 6
"""Zero chunks encoded while looking for the fixed point; without one, the memo stops helping there."""


def _same(a: Any, b: Any) -> bool:
    """Exact equality of nested cache contents (tensors, lists, tuples, dicts, plain values)."""
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return isinstance(a, Tensor) and isinstance(b, Tensor) and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _clone(value: Any) -> Any:
    """A copy of nested cache contents: tensors cloned, containers rebuilt, keys and other
    objects (such as the modules a cache is keyed by) kept as they are."""
    if isinstance(value, Tensor):
        return value.clone()
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_clone(v) for v in value)
    return value


def _clone_state(cache: StreamCache) -> StreamCache:
    """An independent copy of a stream's state."""
    state = copy.copy(cache)
    for name, value in vars(cache).items():
        setattr(state, name, _clone(value))
    return state


def _same_state(a: StreamCache, b: StreamCache) -> bool:
    """Two stream states equal in everything but the frame count (``position``)."""
    return _same({k: v for k, v in vars(a).items() if k != "position"},
                 {k: v for k, v in vars(b).items() if k != "position"})


class ZeroStreamMemo:
    """Latents and states of a stream of all-zero chunks of one shape, per chunk index."""

    def __init__(self, vae: VideoAutoencoder) -> None:
        self.vae = vae
        self.key: tuple | None = None
        self.latents: list[Tensor] = []
        self.states: list[StreamCache] = []
        self.fixed = False

    def _build(self, like: Tensor) -> None:
        self.key = (tuple(like.shape), like.dtype, like.device)
        self.latents, self.states, self.fixed = [], [], False
        cache, zeros = self.vae.new_cache(), torch.zeros_like(like)
        for _ in range(MAX_CHUNKS):
            self.latents.append(self.vae.encode(zeros, cache))
            self.states.append(_clone_state(cache))
            if len(self.states) > 1 and torch.equal(self.latents[-1], self.latents[-2]) \
                    and _same_state(self.states[-1], self.states[-2]):
                self.fixed = True
                break

    def latents_for(self, index: int, like: Tensor) -> Tensor | None:
        """The latents of zero chunk ``index`` (0 = the stream's first) shaped as ``like``, or None
        past the memo (no fixed point reached): encode for real then, from :meth:`state_after`."""
        if (tuple(like.shape), like.dtype, like.device) != self.key:
            self._build(like)
        if index < len(self.latents):
            return self.latents[index]
        return self.latents[-1] if self.fixed else None

    def state_after(self, chunks: int) -> StreamCache:
        """A fresh copy of the stream's state after ``chunks`` (>= 1) zero chunks."""
        last = len(self.states)
        state = _clone_state(self.states[min(chunks, last) - 1])
        if chunks > last:  # past the fixed point only the frame count moves on
            step = self.states[-1].position - self.states[-2].position
            state.position += (chunks - last) * step
        return state
