"""Several processes for one generator: the worker processes of the ``devices`` parameter, and
the ranks of a ``torchrun`` launch.

Sequence parallelism (``--devices cuda:0,cuda:1``, layout ``sequence``; ``cpu,cpu``: gloo on
loopback, to exercise it without GPUs) starts one worker process per extra device of this
machine. Rank 0 is the engine: source, sinks, OSC, the text encoder, the autoencoder and the
annotators live there. The DiT and its VACE branch run on every rank, each on its band of every
latent frame (:mod:`engine.model.sequence`), so the chunks equal one device's. Before each chunk,
and each prompt re-cache, rank 0 broadcasts what the workers need: the stream's counters (frame
and chunk index, the rings' positions: a cut on rank 0 is a cut everywhere), the text embedding
when it changed, the seed and steps, and the chunk's VACE inputs. A ``torchrun`` launch
(:func:`join_launch`, :mod:`engine.worker`) runs the same over several machines.

The ``vace`` layout starts one worker for the VACE branch (:func:`start_vace_worker`; the
protocol is :mod:`engine.vace.remote`).

The processes of one machine meet through a file and talk over loopback only. Every collective
has a timeout, so a worker that dies becomes an error on rank 0 (the engine logs it and holds its
last frame), not a hang.
"""

from __future__ import annotations

import atexit
import datetime
import functools
import logging
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import Tensor

from vacelive.engine.model import CausalGenerator, WanModel, compile_stack
from vacelive.engine.model.sequence import SequenceShard
from vacelive.engine.vace import (
    EXTRAS_KEY,
    VaceBranch,
    VaceConditioning,
    VaceInjector,
    attach_vace,
    default_vace_layers,
)
from vacelive.engine.vace.remote import RemoteVace, serve_vace

log = logging.getLogger(__name__)

TIMEOUT = datetime.timedelta(seconds=60)
"""How long any collective waits for the other processes before it fails."""
_DEVICE = re.compile(r"^(cpu|cuda:\d+)$")


def parse_devices(spec: str) -> list[str]:
    """``"cuda:0,cuda:1"`` -> the devices; ``""`` or one device -> ``[]`` (no worker processes).

    All CPU (gloo) or all CUDA (NCCL), each CUDA device once."""
    devices = [d.strip() for d in spec.split(",") if d.strip()]
    bad = [d for d in devices if not _DEVICE.match(d)]
    if bad:
        raise ValueError(f"devices: {', '.join(bad)} is not 'cpu' or 'cuda:N' (e.g. --devices cuda:0,cuda:1)")
    if len(devices) < 2:
        return []
    kinds = {d.split(":")[0] for d in devices}
    if len(kinds) > 1:
        raise ValueError(f"devices: {spec!r} mixes CPU and CUDA; use one kind")
    if "cuda" in kinds and len(set(devices)) < len(devices):
        raise ValueError(f"devices: {spec!r} names a GPU twice")
    return devices


@dataclass(frozen=True)
class StreamState:
    """The counters of rank 0's stream that the workers copy before each command."""

    frame_index: int
    chunk_index: int
    frames_written: int
    shift: int
    branch_frames_written: int | None  # the VACE ring's (None: not created yet)

    @classmethod
    def of(cls, causal: CausalGenerator, injector: VaceInjector) -> StreamState:
        ring = injector.kv_cache
        return cls(causal.frame_index, causal.chunk_index, causal.kv_cache.frames_written, causal.kv_cache.shift,
                   None if ring is None else ring.frames_written)

    def apply(self, causal: CausalGenerator, injector: VaceInjector) -> None:
        """Make this process's stream match: a cut on rank 0 (counters back to 0) is a cut here."""
        causal.frame_index, causal.chunk_index = self.frame_index, self.chunk_index
        causal.kv_cache.frames_written, causal.kv_cache.shift = self.frames_written, self.shift
        while causal.window and causal.window[-1][0] >= self.frame_index:
            causal.window.pop()  # chunks rank 0 forgot in a cut
        if injector.kv_cache is not None:
            injector.kv_cache.frames_written = self.branch_frames_written or 0
            injector.kv_cache.shift = 0


class LeaderGenerator(CausalGenerator):
    """Rank 0's chunk driver: announces each chunk and re-cache to the workers, then runs its band."""

    def __init__(self, model: WanModel, height: int, width: int, injector: VaceInjector, sequence: SequenceShard,
                 attention: str = "auto") -> None:
        super().__init__(model, height, width, attention=attention, sequence=sequence)
        self.injector = injector
        self._sent_text: Tensor | None = None

    def _announce(self, kind: str, text: Tensor | None, **payload: Any) -> None:
        if text is not None and self._sent_text is not None and torch.equal(text, self._sent_text):
            text = None  # unchanged: the workers keep theirs (compared by value: a blend may reuse a tensor)
        elif text is not None:
            self._sent_text = text.clone()
            text = text.detach().cpu()
        message = dict(kind=kind, state=StreamState.of(self, self.injector), text=text, **payload)
        self.sequence.collective("broadcast", dist.broadcast_object_list, [message], src=0,
                                  group=self.sequence.group)

    def generate_chunk(self, text_context: Tensor, seed: int, steps: int = 4, extras_fn=None,
                       extras: dict[str, Any] | None = None) -> Tensor:
        if extras_fn is not None:
            raise ValueError("extras_fn does not reach worker processes; pass extras")
        cond: VaceConditioning | None = (extras or {}).get(EXTRAS_KEY)
        vace = None if cond is None else (cond.context.cpu(), cond.scale,
                                          None if cond.references is None else cond.references.cpu())
        self._announce("chunk", text_context, seed=seed, steps=steps, vace=vace)
        return super().generate_chunk(text_context, seed, steps, extras=extras)

    def recache(self, text_context: Tensor) -> int:
        self._announce("recache", text_context)
        return super().recache(text_context)

    def stop_workers(self) -> None:
        """Tell the workers to end (they also end with this process)."""
        self._announce("stop", None)


def serve(causal: CausalGenerator, injector: VaceInjector, device: str) -> None:
    """A worker's loop: copy rank 0's counters, then run what it announced, until ``stop``."""
    text: Tensor | None = None
    with torch.inference_mode():
        while True:
            box: list[Any] = [None]
            causal.sequence.collective("broadcast", dist.broadcast_object_list, box, src=0,
                                        group=causal.sequence.group)
            message = box[0]
            if message["kind"] == "stop":
                return
            if message["text"] is not None:
                text = message["text"].to(device)
            message["state"].apply(causal, injector)
            if message["kind"] == "recache":
                causal.recache(text)
                continue
            extras = None
            if message["vace"] is not None:
                context, scale, refs = message["vace"]
                extras = {EXTRAS_KEY: VaceConditioning(context.to(device), scale,
                                                       None if refs is None else refs.to(device))}
            causal.generate_chunk(text, message["seed"], message["steps"], extras=extras)


def rendezvous_file() -> str:
    """A new file where the processes of one group of this machine meet (nothing listens on a
    network for it; a TCP rendezvous would listen on every interface). Its folder is removed
    when this process (rank 0, whose workers end with it) exits."""
    folder = tempfile.mkdtemp(prefix="vacelive-group-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return os.path.join(folder, "store")


def join_group(rank: int, world: int, rendezvous: str, device: str,
               timeout: datetime.timedelta = TIMEOUT, backend: str | None = None) -> SequenceShard:
    """Join the group of ``world`` processes of this machine meeting at the file ``rendezvous``
    (NCCL for a CUDA ``device``, made this process's current one; gloo for the CPU; ``backend``
    overrides, e.g. gloo for processes sharing one GPU) with ``timeout`` on every collective.
    Gloo's and NCCL's own sockets are on the loopback interface: nothing listens beyond it."""
    loopback = next((name for _, name in socket.if_nameindex() if name.startswith("lo")), "lo")
    os.environ.update(GLOO_SOCKET_IFNAME=loopback, NCCL_SOCKET_IFNAME=loopback)
    if device.startswith("cuda"):
        torch.cuda.set_device(device)
    backend = backend or ("nccl" if device.startswith("cuda") else "gloo")
    dist.init_process_group(backend, store=dist.FileStore(rendezvous, world), rank=rank, world_size=world,
                            timeout=timeout)
    return SequenceShard.of()


def _share_cpu(device: str, world: int) -> None:
    """Processes of one machine computing on the CPU split its threads."""
    if device == "cpu":
        torch.set_num_threads(max(1, torch.get_num_threads() // world))


def _worker(rank: int, devices: list[str], rendezvous: str, ready: Any,
            build: Callable[[SequenceShard, str], tuple[Any, Callable[[], None]]]) -> None:
    """Every worker process: join the group, ``build(shard, device)`` its part (which gives what
    to tell rank 0 through ``ready`` and the loop to serve), report, serve until rank 0 says stop."""
    logging.basicConfig(level=logging.WARNING)
    device = devices[rank]
    _share_cpu(device, len(devices))
    sequence = join_group(rank, len(devices), rendezvous, device)
    try:
        try:
            value, serve_part = build(sequence, device)
        except Exception as exc:  # told to rank 0, which stops the start in one line
            ready.send(("failed", _one_line(exc)))
            return
        ready.send(("ready", value))
        serve_part()
    finally:
        dist.destroy_process_group()


def _build_dit(overrides: dict[str, Any], weights: str | None, random_weights: bool,
               device: str) -> tuple[Any, WanModel, VaceBranch]:
    """The store, and the DiT and VACE branch rank 0 builds (from ``overrides``, the weights
    folder ``weights``; None: random, as rank 0's), on ``device``."""
    from vacelive.engine.app import build_store
    from vacelive.engine.pipeline import build_model, build_vace_branch, resolve_dtype
    from vacelive.engine.weights import WeightsManifest

    store = build_store(overrides=overrides)
    manifest = None if weights is None else WeightsManifest.open(weights)
    model = build_model(store, manifest, device, resolve_dtype(store.get("dtype"), device), random_weights)
    return store, model, build_vace_branch(model, manifest, random_weights).to(device)


def build_band(sequence: SequenceShard, device: str, overrides: dict[str, Any], weights: str | None,
               random_weights: bool) -> tuple[CausalGenerator, VaceInjector]:
    """The DiT and VACE branch rank 0 builds, on ``device``, working on this process's band:
    then :func:`serve` them."""
    store, model, branch = _build_dit(overrides, weights, random_weights, device)
    causal = CausalGenerator(model, store.get("height"), store.get("width"), attention=store.get("attention"),
                             sequence=sequence)
    return causal, attach_vace(model, branch)


def _band_worker(overrides: dict[str, Any], weights: str | None, random_weights: bool,
                 sequence: SequenceShard, device: str) -> tuple[None, Callable[[], None]]:
    """A sequence worker's part (:func:`_worker`)."""
    causal, injector = build_band(sequence, device, overrides, weights, random_weights)
    return None, functools.partial(serve, causal, injector, device)


@dataclass(frozen=True)
class Launch:
    """This process's place in a ``torchrun`` launch (one or several machines): rank 0 runs the
    engine, every other rank serves its band (:mod:`engine.worker`)."""

    rank: int
    world: int
    device: str
    labels: tuple[str, ...]  # every rank's "host/device", in rank order


_launch: Launch | None = None


def current_launch() -> Launch | None:
    """The launch this process joined (:func:`join_launch`), or None outside one."""
    return _launch


def join_launch(init_method: str = "env://") -> Launch:
    """Join the group of a launch from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK;
    MASTER_ADDR and MASTER_PORT for ``env://``, which listens on the network for the others:
    several machines need it; ``file://PATH`` for a shared file instead). This process works on
    cuda:LOCAL_RANK (NCCL), or the CPU (gloo) without CUDA. Raises ValueError, in one line,
    outside a launch."""
    global _launch
    missing = [name for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK") if name not in os.environ]
    if missing:
        raise ValueError(f"not started by torchrun ({', '.join(missing)} unset): torchrun --nnodes N "
                         "--nproc-per-node G ... -m vacelive.engine.worker run [flags]")
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    device = f"cuda:{os.environ['LOCAL_RANK']}" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.startswith("cuda") else "gloo", init_method=init_method, rank=rank,
                            world_size=world, timeout=TIMEOUT)
    labels: list[Any] = [None] * world
    dist.all_gather_object(labels, f"{socket.gethostname()}/{device}")
    _launch = Launch(rank, world, device, tuple(labels))
    return _launch


@dataclass(frozen=True)
class SequenceWorkers:
    """The worker processes of sequence parallelism, joined to this process (rank 0)."""

    shard: SequenceShard
    ready: tuple[Any, ...]  # a pipe from each worker, which says whether it built its model

    def wait_ready(self) -> None:
        """Wait until every worker has built its model (rank 0 builds its own meanwhile). Raises
        RuntimeError, in one line, if one failed or did not start in time."""
        for rank, ready in enumerate(self.ready, start=1):
            wait_ready(ready, f"sequence worker {rank}")


def _spawn_and_join(devices: list[str], build: Callable[..., Any], name: str) -> list[Any]:
    """Start a worker process (:func:`_worker` with ``build``) for each device after the first,
    join them as rank 0 on the first; returns the pipe from each on which it says it is ready."""
    rendezvous = rendezvous_file()
    ctx = mp.get_context("spawn")
    pipes = []
    for rank in range(1, len(devices)):
        ours, theirs = ctx.Pipe(duplex=False)
        ctx.Process(target=_worker, args=(rank, devices, rendezvous, theirs, build), daemon=True,
                    name=f"{name}-{rank}").start()
        pipes.append(ours)
    _share_cpu(devices[0], len(devices))
    join_group(0, len(devices), rendezvous, devices[0])
    return pipes


def start_workers(devices: list[str], overrides: dict[str, Any], weights: str | None,
                  random_weights: bool) -> SequenceWorkers:
    """Spawn a worker for each device after the first (each builds the model from ``overrides``
    and the weights folder ``weights``) and join them as rank 0 (this process)."""
    build = functools.partial(_band_worker, overrides, weights, random_weights)
    pipes = _spawn_and_join(devices, build, "vacelive-worker")
    log.info("sequence parallel over %d processes: %s (rank 0 is this one)", len(devices), ", ".join(devices))
    return SequenceWorkers(SequenceShard.of(), tuple(pipes))


def module_bytes(module: Any) -> int:
    """Bytes of a module's parameters and buffers (0 for anything that is not a module)."""
    if not isinstance(module, torch.nn.Module):
        return 0
    return sum(t.numel() * t.element_size() for t in (*module.parameters(), *module.buffers()))


STARTUP_TIMEOUT_S = 600.0
"""How long rank 0 waits for a worker to build its model (loading weights included)."""


def wait_ready(ready: Any, what: str) -> Any:
    """What a worker sends on its pipe ``ready`` once it has built its part. Raises RuntimeError,
    in one line naming ``what``, if it failed or did not start within :data:`STARTUP_TIMEOUT_S`."""
    if not ready.poll(STARTUP_TIMEOUT_S):
        raise RuntimeError(f"{what} did not start within {STARTUP_TIMEOUT_S:.0f} s")
    status, value = ready.recv()
    if status != "ready":
        raise RuntimeError(f"{what} could not start: {value}")
    return value


def _one_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else repr(exc)


class VaceWorker:
    """A worker process running the VACE branch on its own device (:mod:`engine.vace.remote`),
    joined to this process (rank 0) in a group of two."""

    def __init__(self, ready: Any) -> None:
        self._ready = ready
        self.branch_bytes = 0
        """The branch's weights in the worker, once :meth:`attach` returned."""

    def attach(self, model: WanModel) -> RemoteVace:
        """Wait until the worker has built its branch, then hook ``model``'s blocks to take its
        hints. Raises RuntimeError, in one line, if the worker failed or did not start in time."""
        zero, self.branch_bytes = wait_ready(self._ready, "the VACE worker")
        return RemoteVace(model, default_vace_layers(model.config.num_layers), zero=zero)


def _vace_worker(overrides: dict[str, Any], weights: str | None, random_weights: bool,
                 sequence: SequenceShard, device: str) -> tuple[tuple[bool, int], Callable[[], None]]:
    """The VACE worker's part (:func:`_worker`): the branch rank 0 would build, then
    :func:`serve_vace`; rank 0 hears whether it is all zero and its bytes."""
    store, model, branch = _build_dit(overrides, weights, random_weights, device)
    del model  # the branch's blocks are copies; the base stays on rank 0
    if store.get("compile"):
        compile_stack(branch.vace_blocks)
    return (branch.is_zero(), module_bytes(branch)), functools.partial(serve_vace, VaceInjector(None, branch))


def start_vace_worker(devices: tuple[str, str], overrides: dict[str, Any], weights: str | None,
                      random_weights: bool) -> VaceWorker:
    """Spawn the VACE worker for ``devices[1]`` (it builds its branch from ``overrides`` and the
    weights folder ``weights``) and join it as rank 0 on ``devices[0]``; then build the base and
    call :meth:`VaceWorker.attach`."""
    build = functools.partial(_vace_worker, overrides, weights, random_weights)
    (ready,) = _spawn_and_join(list(devices), build, "vacelive-vace-worker")
    log.info("VACE branch in a worker process on %s (the base on %s)", devices[1], devices[0])
    return VaceWorker(ready)
