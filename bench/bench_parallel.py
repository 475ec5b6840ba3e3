"""Sequence parallelism (Ulysses) against one process: time per chunk and bytes exchanged.

Usage: python bench/bench_sequence.py [--processes 1 2] [--config tiny] [--width 320 --height 192]
       [--steps 4] [--chunks 6] [--backend gloo|nccl] [--device cpu|cuda] [--vace]

Each setting spawns its processes on this machine (gloo over loopback on CPUs, one GPU per process
with nccl), runs the same stream in every process (random weights, same seeds), and reports rank
0's median time per chunk after the KV ring is full, with the all-to-all and all-gather volume one
process sends per chunk, and how far its last chunk is from one process's. With gloo on a CPU this
exercises the machinery, not the speed-up: the processes share the same cores. ``--backend gloo
--device cuda`` puts every process on the one GPU cuda:0 (gloo moves CUDA tensors through the
host): the sharded code on CUDA, checked against one process, on a machine with a single GPU.
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
from vacelive.engine.parallel import free_port, join_group
from vacelive.engine.vace import EXTRAS_KEY, VaceBranch, VaceConditioning, attach_vace, default_vace_layers


def _stream_ms(args: argparse.Namespace, sequence: SequenceShard | None,
               device: str) -> tuple[list[float], torch.Tensor]:
    """Rank 0's milliseconds per chunk once the ring is full, and its last chunk's latents."""
    cfg = CONFIGS[args.config]
    torch.manual_seed(0)
    with torch.device(device):
        model = WanModel(cfg).eval().requires_grad_(False)
        branch = VaceBranch(model.blocks, default_vace_layers(cfg.num_layers), cfg.dim, cfg.patch_size).eval()
        prompt = torch.randn(1, cfg.text_len, cfg.text_dim)
        context = torch.randn(1, 96, 3, args.height // 8, args.width // 8)
    with torch.no_grad():
        for p in branch.parameters():
            p.normal_(0, 0.02)
    attach_vace(model, branch.requires_grad_(False))
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


def _worker(rank: int, world: int, port: int, args: argparse.Namespace, result: str) -> None:
    torch.set_num_threads(max(1, args.threads // world))
    device = f"cuda:{rank}" if args.backend == "nccl" else _single_device(args)
    sequence = join_group(rank, world, port, device, timeout=datetime.timedelta(seconds=120),
                          backend=args.backend)
    try:
        times, latents = _stream_ms(args, sequence, device)
        if rank == 0:
            torch.save({"times": times, "latents": latents}, result)
    finally:
        dist.destroy_process_group()


def _single_device(args: argparse.Namespace) -> str:
    """The device of a one-process run (and of every gloo process)."""
    return "cuda:0" if args.backend == "nccl" or args.device == "cuda" else "cpu"


def _bytes_per_chunk(args: argparse.Namespace, world: int) -> int:
    """Bytes one process sends per chunk: per self-attention, q/k/v out and the output back
    ((N-1)/N of its band each), per forward one gather of the head's output."""
    cfg = CONFIGS[args.config]
    tokens = 3 * (args.height // 16) * (args.width // 16)
    band = tokens // world
    element = 4  # float32 on CPU (bf16 on GPU halves it)
    layers = cfg.num_layers + (len(default_vace_layers(cfg.num_layers)) if args.vace else 0)
    attention = 4 * band * cfg.dim * element * (world - 1) // world * layers
    gather = band * cfg.out_dim * 4 * element * (world - 1)
    return (attention + gather) * (args.steps + 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    ap.add_argument("--vace", action="store_true", help="with the VACE branch (random projections)")
    args = ap.parse_args(argv)
    print(f"{args.config} {args.width}x{args.height}, {args.steps} steps, VACE {'on' if args.vace else 'off'}, "
          f"{args.backend} on {_single_device(args) if args.backend == 'gloo' else 'one GPU each'}", flush=True)
    first: torch.Tensor | None = None
    for world in args.processes:
        if world == 1:
            torch.set_num_threads(args.threads)
            times, latents = _stream_ms(args, None, _single_device(args))
        else:
            with tempfile.TemporaryDirectory() as tmp:
                result = Path(tmp) / "rank0.pt"
                mp.start_processes(_worker, args=(world, free_port(), args, str(result)), nprocs=world,
                                   start_method="spawn")
                saved = torch.load(result)
                times, latents = saved["times"], saved["latents"]
        first = latents if first is None else first
        sent = _bytes_per_chunk(args, world) if world > 1 else 0
        print(f"{world} process(es): {statistics.median(times):8.1f} ms per chunk (median of {len(times)}), "
              f"{sent / 2**20:7.2f} MiB sent per process per chunk, last chunk max |diff| from the first "
              f"setting's {(latents - first).abs().max().item():.1e}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
