"""Several processes for one stream against one process: time per chunk, bytes sent, exactness.

Usage: python bench/bench_parallel.py [--layout sequence|vace] [--processes 1 2] [--config tiny]
       [--width 320 --height 192] [--steps 4] [--chunks 6] [--backend gloo|nccl]
       [--device cpu|cuda] [--dtype fp32|bf16] [--vace]

``--layout sequence`` (Ulysses sequence parallelism): every process holds the model and a band
of each chunk. ``--layout vace``: two processes, the VACE branch in the second, its hints
streamed to the base in the first (``--vace`` is implied; 1 process is the branch in-process).
Each setting spawns its processes on this machine (gloo over loopback on CPUs, one GPU per process
with nccl), runs the same stream (random weights, same seeds), and reports rank 0's median time
per chunk after the KV ring is full, the volume one process sends per chunk, and how far its
last chunk is from the first setting's. With gloo on a CPU this exercises the machinery, not the
speed-up: the processes share the same cores. ``--backend gloo --device cuda`` puts every
process on the one GPU cuda:0 (gloo moves CUDA tensors through the host): the code on CUDA,
checked against one process, on a machine with a single GPU.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from vacelive.engine.model import CONFIGS, CausalGenerator, WanModel
from vacelive.engine.model.sequence import SequenceShard
from vacelive.engine.parallel import join_group, rendezvous_file
from vacelive.engine.vace import (
    EXTRAS_KEY,
    VaceBranch,
    VaceConditioning,
    VaceInjector,
    attach_vace,
    default_vace_layers,
)
from vacelive.engine.vace.remote import RemoteVace, serve_vace


def _setup(args: argparse.Namespace, device: str) -> tuple[WanModel, VaceBranch, torch.Tensor, torch.Tensor]:
    """The same random model, branch, prompt and vace_context in every process."""
    cfg = CONFIGS[args.config]
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    torch.manual_seed(0)
    with torch.device(device):
        model = WanModel(cfg)
        branch = VaceBranch(model.blocks, default_vace_layers(cfg.num_layers), cfg.dim, cfg.patch_size)
        prompt = torch.randn(1, cfg.text_len, cfg.text_dim)
        context = torch.randn(1, 96, 3, args.height // 8, args.width // 8)
    with torch.no_grad():
        for p in branch.parameters():
            p.normal_(0, 0.02)
    model = model.to(dtype).eval().requires_grad_(False)
    return model, branch.to(dtype).eval().requires_grad_(False), prompt, context


def _stream_ms(args: argparse.Namespace, model: WanModel, prompt: torch.Tensor, context: torch.Tensor,
               sequence: SequenceShard | None, device: str) -> tuple[list[float], torch.Tensor]:
    """Rank 0's milliseconds per chunk once the ring is full, and its last chunk's latents."""
    extras = {EXTRAS_KEY: VaceConditioning(context, 1.0)} if args.vace else None
    gen = CausalGenerator(model, args.height, args.width, sequence=sequence)
    times = []
    latents = torch.empty(0)
    for i in range(gen.chunks_to_fill + args.chunks):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        started = time.perf_counter()
        latents = gen.generate_chunk(prompt, seed=0, steps=args.steps, extras=extras)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if i >= gen.chunks_to_fill:
            times.append((time.perf_counter() - started) * 1000.0)
    return times, latents.float().cpu()


def _worker(rank: int, world: int, rendezvous: str, args: argparse.Namespace, result: str) -> None:
    torch.set_num_threads(max(1, args.threads // world))
    device = f"cuda:{rank}" if args.backend == "nccl" else _single_device(args)
    sequence = join_group(rank, world, rendezvous, device, timeout=datetime.timedelta(seconds=120),
                          backend=args.backend)
    try:
        model, branch, prompt, context = _setup(args, device)
        if args.layout == "vace":
            if rank == 1:
                del model
                serve_vace(VaceInjector(None, branch))
                return
            remote = RemoteVace(model, branch.vace_layers, zero=False)
            del branch
            times, latents = _stream_ms(args, model, prompt, context, None, device)
            remote.stop()
        else:
            attach_vace(model, branch)
            times, latents = _stream_ms(args, model, prompt, context, sequence, device)
        if rank == 0:
            torch.save({"times": times, "latents": latents}, result)
    finally:
        dist.destroy_process_group()


def _single_device(args: argparse.Namespace) -> str:
    """The device of a one-process run (and of every gloo process)."""
    return "cuda:0" if args.backend == "nccl" or args.device == "cuda" else "cpu"


def _bytes_per_chunk(args: argparse.Namespace, world: int) -> int:
    """Bytes rank 0 sends (sequence: per self-attention q/k/v out and the output back, (N-1)/N of
    its band each, and per forward a gather of the head's output) or moves (vace: per forward its
    embedded tokens out and one hint per VACE block in) per chunk."""
    cfg = CONFIGS[args.config]
    tokens = 3 * (args.height // 16) * (args.width // 16)
    element = 2 if args.dtype == "bf16" else 4
    vace_blocks = len(default_vace_layers(cfg.num_layers))
    if args.layout == "vace":
        return tokens * cfg.dim * element * (1 + vace_blocks) * (args.steps + 1)
    band = tokens // world
    layers = cfg.num_layers + (vace_blocks if args.vace else 0)
    attention = 4 * band * cfg.dim * element * (world - 1) // world * layers
    gather = band * cfg.out_dim * 4 * 4 * (world - 1)  # the head's output is float32
    return (attention + gather) * (args.steps + 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layout", choices=("sequence", "vace"), default="sequence")
    ap.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--config", choices=sorted(CONFIGS), default="tiny")
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--height", type=int, default=192)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--chunks", type=int, default=6, help="timed chunks after the ring is full")
    ap.add_argument("--backend", choices=("gloo", "nccl"), default="gloo")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                    help="with gloo: where the processes compute (cuda: all of them on cuda:0)")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(), help="CPU threads shared by the processes")
    ap.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32")
    ap.add_argument("--vace", action="store_true", help="with the VACE branch (random projections)")
    args = ap.parse_args(argv)
    if args.layout == "vace":
        args.vace = True
        if set(args.processes) - {1, 2}:
            ap.error("--layout vace runs 1 (the branch in-process) or 2 processes")
    print(f"{args.layout}: {args.config} {args.width}x{args.height} {args.dtype}, {args.steps} steps, "
          f"VACE {'on' if args.vace else 'off'}, "
          f"{args.backend} on {_single_device(args) if args.backend == 'gloo' else 'one GPU each'}", flush=True)
    first: torch.Tensor | None = None
    for world in args.processes:
        if world == 1:
            torch.set_num_threads(args.threads)
            model, branch, prompt, context = _setup(args, _single_device(args))
            attach_vace(model, branch)
            times, latents = _stream_ms(args, model, prompt, context, None, _single_device(args))
        else:
            with tempfile.TemporaryDirectory() as tmp:
                result = Path(tmp) / "rank0.pt"
                mp.start_processes(_worker, args=(world, rendezvous_file(), args, str(result)), nprocs=world,
                                   start_method="spawn")
                saved = torch.load(result)
                times, latents = saved["times"], saved["latents"]
        first = latents if first is None else first
        sent = _bytes_per_chunk(args, world) if world > 1 else 0
        print(f"{world} process(es): {statistics.median(times):8.1f} ms per chunk (median of {len(times)}), "
              f"{sent / 2**20:7.2f} MiB sent by rank 0 per chunk, last chunk max |diff| from the first "
              f"setting's {(latents - first).abs().max().item():.1e}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
