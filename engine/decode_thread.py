"""The ``stages`` layout's decode thread: chunk k decodes on the VAE's device while chunk k+1
denoises on the DiT's.

One thread runs every decode, in the order submitted (the streaming VAE cache depends on it).
The latents come already copied to the VAE's device, on the submitting thread. On CUDA the
thread decodes on a stream of its own, so the next chunk's VAE encode (VACE control, on the same
device, from the generator thread) does not queue behind the decode; each decode waits, on the
device, for the copy of its own latents (an event recorded where they were copied), not for more.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import torch
from torch import Tensor

T = TypeVar("T")


class DecodeThread:
    """Runs ``decode(latents)`` calls one at a time, in the order submitted, on ``device``."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._stream = torch.cuda.Stream(device) if device.type == "cuda" else None
        # One worker: its queue is first in, first out. The worker holds no reference to the
        # owner, so a pipeline dropped after a reload is freed, and the idle worker with it.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="vacelive-decode")

    def submit(self, decode: Callable[[Tensor], T], latents: Tensor) -> Future[T]:
        """Run ``decode(latents)`` after every call submitted before; ``latents`` are on ``device``
        (copied there by the calling thread just before)."""
        copied = None
        if self._stream is not None:
            copied = torch.cuda.Event()
            copied.record(torch.cuda.current_stream(self.device))
            latents.record_stream(self._stream)  # the allocator must not reuse them before the decode read them
        return self._executor.submit(self._run, decode, latents, copied)

    def drain(self) -> None:
        """Wait until every call submitted so far has ended (done or failed)."""
        self._executor.submit(lambda: None).result()

    def _run(self, decode: Callable[[Tensor], T], latents: Tensor, copied: torch.cuda.Event | None) -> T:
        if self._stream is None:
            return decode(latents)
        with torch.cuda.stream(self._stream):  # also makes the VAE's device the current one
            self._stream.wait_event(copied)
            return decode(latents)
