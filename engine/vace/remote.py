"""VACE on its own device: the branch runs in a worker process, beside the base blocks.

A forward's hints depend on the chunk's patch-embedded tokens, its timestep modulation, the text
and the chunk's vace_context, never on the base's hidden states. So the branch can run on a
second device while the base blocks run on the first, and the base takes hint i when it reaches
block ``vace_layers[i]``:

    rank 0 (base)                                   rank 1 (branch, :func:`serve_vace`)
    pre-hook of block vace_layers[0]:
      broadcast the forward's header and inputs --> receive them
      post one receive per hint                      block 0 -> hint 0 --> (sent at once)
    base blocks ...; block vace_layers[i]'s hook     block 1 -> hint 1 --> ...
      waits for hint i, adds hint i * scale

The inputs are sent once where they change: the embedded text when the prompt changes, the
chunk's vace_context (and references, with the base's embedding of their latents) once per
chunk; every forward sends its embedded tokens (in the model's dtype, which holds them exactly),
its modulation and timesteps. The branch's KV ring lives in the worker; rank 0 keeps its count
of committed frames (a hard cut sets it to 0) and sends it with every forward. Hints travel in
the model's dtype, in which they were computed, so the frames are exactly one device's.

Both processes form one ``torch.distributed`` group (NCCL on GPUs, gloo on CPUs); everything is
a broadcast (the hints from rank 1), with the group's timeout: a worker that dies becomes a
:class:`VaceWorkerError` on rank 0 at the next forward, not a hang.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from vacelive.engine.model import BlockContext, TextKVCache

from .inject import RingShape, VaceConditioning, VaceHooks, VaceInjector, patch_embed

BASE, BRANCH = 0, 1
"""The ranks of the two processes."""


class VaceWorkerError(RuntimeError):
    """A transfer to or from the VACE worker failed: it died, or the timeout passed."""


def _checked(what: str, op: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``op(*args, **kwargs)``, a failure of the group becoming a :class:`VaceWorkerError`."""
    try:
        return op(*args, **kwargs)
    except (RuntimeError, dist.DistBackendError) as exc:
        raise VaceWorkerError(f"VACE worker: {what} failed on rank {dist.get_rank()}: {exc}".splitlines()[0]) from exc


@dataclass(frozen=True)
class ForwardHeader:
    """What rank 0 announces for one forward; ``tensors`` (name, shape, dtype) follow in order."""

    kind: str  # "forward", or "stop" (the worker ends)
    grid: tuple[int, int, int] = (0, 0, 0)
    start_frame: int = 0
    write_cache: bool = False
    ring: RingShape | None = None  # the base ring's geometry, which the branch's ring mirrors
    ring_frames: int = 0  # frames committed to the branch's ring since the last cut
    tensors: tuple[tuple[str, tuple[int, ...], str], ...] = ()


def _broadcast_header(header: ForwardHeader | None) -> ForwardHeader:
    box = [header]
    _checked("header", dist.broadcast_object_list, box, src=BASE)
    return box[0]


def _send(tensors: Sequence[tuple[str, Tensor]]) -> None:
    for name, tensor in tensors:
        _checked(f"sending {name}", dist.broadcast, tensor.contiguous(), src=BASE)


def _receive(specs: Sequence[tuple[str, tuple[int, ...], str]], device: torch.device) -> dict[str, Tensor]:
    received = {}
    for name, shape, dtype in specs:
        tensor = torch.empty(shape, dtype=getattr(torch, dtype.removeprefix("torch.")), device=device)
        _checked(f"receiving {name}", dist.broadcast, tensor, src=BASE)
        received[name] = tensor
    return received


class ReceivedHints(Sequence[Tensor]):
    """A forward's hints as they arrive: indexing waits for that hint only."""

    def __init__(self, buffers: list[Tensor], works: list[Any]) -> None:
        self._buffers = buffers
        self._works = works

    def __len__(self) -> int:
        return len(self._buffers)

    def __getitem__(self, index: int) -> Tensor:  # type: ignore[override]
        _checked(f"hint {index}", self._works[index].wait)
        return self._buffers[index].float()


class RemoteVace(VaceHooks):
    """Rank 0's side: the hooks on the base's blocks, the hints coming from the worker."""

    def __init__(self, model: nn.Module, vace_layers: Sequence[int], zero: bool) -> None:
        super().__init__(model, vace_layers)
        self._zero = zero
        self._ring_frames = 0
        self._sent_text: Tensor | None = None
        self._sent_cond: VaceConditioning | None = None

    def reset(self) -> None:
        self._ring_frames = 0

    def branch_is_zero(self) -> bool:
        return self._zero

    def hints_for(self, ctx: BlockContext, cond: VaceConditioning) -> ReceivedHints:
        if ctx.sequence is not None:
            raise ValueError("the VACE worker does not combine with sequence parallelism")
        if ctx.kv_cache is None:
            raise ValueError("the VACE worker runs the streaming (KV-cached) forward only")
        dtype = self.model.patch_embedding.weight.dtype
        tensors: list[tuple[str, Tensor]] = []
        if ctx.context is not self._sent_text:  # the text cache hands out one tensor per prompt
            tensors.append(("context", ctx.context))
        if cond is not self._sent_cond:  # one conditioning per chunk, shared by its forwards
            tensors.append(("vace_context", cond.context))
            if cond.references is not None and cond.references.shape[2]:
                x_ref = patch_embed(self.model.patch_embedding, cond.references[:, :16])  # their own latents
                tensors += [("references", cond.references), ("x_ref", x_ref)]
        tensors += [("x", ctx.x_embedded.to(dtype)), ("e", ctx.e), ("timestep", ctx.timestep)]
        header = ForwardHeader("forward", tuple(ctx.grid), ctx.start_frame, ctx.write_cache,
                               RingShape.of(ctx.kv_cache), self._ring_frames,
                               tuple((name, tuple(t.shape), str(t.dtype)) for name, t in tensors))
        _broadcast_header(header)
        _send(tensors)
        self._sent_text, self._sent_cond = ctx.context, cond
        if ctx.write_cache:
            self._ring_frames += ctx.grid[0]
        buffers = [torch.empty(ctx.x_embedded.shape, dtype=dtype, device=ctx.e.device) for _ in self.vace_layers]
        works = [_checked("posting a hint", dist.broadcast, b, src=BRANCH, async_op=True) for b in buffers]
        return ReceivedHints(buffers, works)

    def stop(self) -> None:
        """Tell the worker to end (it also ends with this process)."""
        _broadcast_header(ForwardHeader("stop"))


def serve_vace(injector: VaceInjector) -> None:
    """The worker's loop: run the branch for each forward rank 0 announces, sending each hint as
    soon as its block is done, until ``stop``. ``injector`` holds the branch alone (no base)."""
    weight = injector.branch.vace_patch_embedding.weight
    device, dtype = weight.device, weight.dtype
    text_cache = TextKVCache()
    inputs: dict[str, Tensor] = {}
    with torch.inference_mode():
        while True:
            header = _broadcast_header(None)
            if header.kind == "stop":
                return
            received = _receive(header.tensors, device)
            if "vace_context" in received:  # a new chunk: its references, if any, came with it
                inputs.pop("references", None), inputs.pop("x_ref", None)
            inputs.update(received)
            cond = VaceConditioning(inputs["vace_context"], 1.0, inputs.get("references"))
            ring = injector.ring(header.ring)
            ring.frames_written, ring.shift = header.ring_frames, 0
            grid, start = header.grid, header.start_frame
            ctx = BlockContext(
                e=inputs["e"], timestep=inputs["timestep"], grid=grid, start_frame=start,
                rope=injector.rope.cos_sin(start, grid, device), context=inputs["context"],
                prompt=inputs["context"], text_cache=text_cache, write_cache=header.write_cache,
                x_embedded=inputs["x"].float(),
            )
            sent = []
            for hint in injector.run(ctx, cond, inputs.get("x_ref"), ring):
                hint = hint.to(dtype).contiguous()  # computed in dtype: exact
                sent.append((hint, _checked("sending a hint", dist.broadcast, hint, src=BRANCH, async_op=True)))
            for _, work in sent:
                _checked("sending a hint", work.wait)
