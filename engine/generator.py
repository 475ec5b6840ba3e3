"""The generator protocol: what the loop needs from a video model, and the pipelined variant
whose last step (the decode) can run while the next chunk starts."""

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


class PendingFrames(Protocol):
    """A submitted chunk whose frames are on their way (its decode runs on a thread of its own)."""

    timings: dict[str, float]
    """The chunk's step times in ms (its ``decode`` and later steps are there once ``result`` returned)."""
    ready_at: float
    """``time.monotonic()`` when the frames were ready (set once ``result`` returned)."""

    def result(self) -> np.ndarray:
        """Wait for the frames (N, H, W, 3) uint8, or raise what went wrong in the last step."""
        ...


@runtime_checkable
class PipelinedGenerator(Generator, Protocol):
    """A generator that can overlap its chunks: ``submit`` does the steps that must run on the
    generator thread and returns at once, the rest (the decode, on another device) going on
    while the next chunk is submitted. Chunks finish in the order submitted; ``reset`` waits for
    the ones in flight. ``pipelined`` says whether submitting overlaps at all (False: ``submit``
    finishes the chunk before returning, and the loop calls ``generate`` as for any generator).
    """

    pipelined: bool

    def submit(self, chunk: Chunk) -> PendingFrames:
        """Start ``chunk``; its frames come from the returned :class:`PendingFrames`."""
        ...


def overlaps(generator: Generator) -> bool:
    """Whether ``generator`` decodes a chunk while the next one starts (see :class:`PipelinedGenerator`)."""
    return isinstance(generator, PipelinedGenerator) and generator.pipelined
