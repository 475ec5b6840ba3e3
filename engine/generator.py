"""The generator protocol: what the loop needs from a video model."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from vacelive.engine.chunk import Chunk


@runtime_checkable
class Generator(Protocol):
    """Turns a chunk of control frames into output frames.

    ``generate`` is called once per chunk on the generator thread with the chunk's own parameter
    snapshot (``chunk.snapshot``), and returns uint8 RGB frames (N, H, W, 3) at the engine's
    resolution: 12 per chunk (the first chunk after a reset may give fewer, e.g. 9, where the
    causal VAE maps its first latent frame to one frame). ``reset`` is a hard cut: forget all
    state (KV cache, VAE caches, prompt transition). ``mode`` names what the last chunk was
    conditioned on (``t2v``, ``control``, ``r2v+control``, ...; sent as OSC status), and
    ``warnings`` lists current problems that did not stop generation (an unreadable reference
    image, kept at its last good value), which the engine reports once each. ``timings`` gives
    the milliseconds of the last chunk's steps (e.g. ``encode``, ``denoise``, ``decode``).
    """

    name: str
    mode: str
    warnings: list[str]
    timings: dict[str, float]

    def generate(self, chunk: Chunk) -> np.ndarray:
        """Generate the output frames for ``chunk``."""
        ...

    def reset(self) -> None:
        """Forget all state carried from earlier chunks."""
        ...
