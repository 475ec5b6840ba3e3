"""Style LoRA cost: seconds per chunk with no LoRA, merged, and unmerged, and the re-merge cost.

Usage: python bench/bench_lora.py [--config 1.3B|14B|tiny] [--device cuda|cpu] [--dtype bf16|fp16|fp32]
       [--height 480 --width 832] [--steps 4] [--rank 32] [--loras 1] [--chunks N] [--threads N] [--json]

Random weights and random LoRAs on every Linear of every block (self- and cross-attention
q/k/v/o, ffn.0, ffn.2: what style LoRAs train). Defaults: on a GPU the 1.3B config in bf16 at
832x480; without one the tiny config in fp32 at 320x192. Each setting runs warm-up chunks that
fill the KV ring, then ``--chunks`` timed chunks (``steps`` denoising forwards + the cache write).

- ``none``: the plain model;
- ``merged``: folded into the weights at start (``lora_mode merged``, a scale that never moves);
- ``unmerged``: forward hooks, W x + s * alpha/r * B(A x) (``lora_mode unmerged``);
- ``unmerged, scale 0``: hooks attached, every scale 0 (they return at once);
- ``re-merge``: one scale change in merged mode (what the chunk boundary pays when a scale moves:
  the touched weights rebuilt from the kept originals).

On a GPU it also prints the device memory each mode holds (merged keeps the original weights).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch

from vacelive.engine.model import CONFIGS, CausalGenerator, WanModel
from vacelive.engine.model.lora import StyleLora, StyleLoras, linear_targets, parse_lora

FRAMES_PER_CHUNK_OUT = 12


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _allocated(device: str) -> int:
    return torch.cuda.memory_allocated() if device.startswith("cuda") else 0


def machine(device: str) -> str:
    """What the figures were measured on."""
    cpu = f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores".replace("  ", " ")
    gpu = f", {torch.cuda.get_device_name()}" if device.startswith("cuda") else ""
    return f"{cpu}{gpu}, torch {torch.__version__}, {torch.get_num_threads()} torch threads"


def random_lora(model: WanModel, name: str, rank: int, seed: int) -> StyleLora:
    """A LoRA of ``rank`` on every block Linear, in kohya names (as style LoRAs are shared)."""
    gen = torch.Generator().manual_seed(seed)
    tensors = {}
    for target, linear in linear_targets(model).items():
        if not target.startswith("blocks."):
            continue
        out_f, in_f = linear.weight.shape
        stem = "lora_unet_" + target.replace(".", "_")
        tensors[f"{stem}.lora_down.weight"] = torch.randn(rank, in_f, generator=gen) / in_f**0.5
        tensors[f"{stem}.lora_up.weight"] = torch.randn(out_f, rank, generator=gen) * 1e-3
        tensors[f"{stem}.alpha"] = torch.tensor(float(rank))
    return parse_lora(tensors, linear_targets(model), name=name)


def time_chunks(gen: CausalGenerator, prompt: torch.Tensor, steps: int, warmup: int, timed: int, device: str) -> float:
    for _ in range(warmup):
        gen.generate_chunk(prompt, seed=0, steps=steps)
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(timed):
        gen.generate_chunk(prompt, seed=0, steps=steps)
    _sync(device)
    return (time.perf_counter() - t0) / timed


def main(argv: list[str] | None = None) -> int:
    has_cuda = torch.cuda.is_available()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=sorted(CONFIGS), default="1.3B" if has_cuda else "tiny")
    ap.add_argument("--device", default="cuda" if has_cuda else "cpu")
    ap.add_argument("--dtype", choices=["bf16", "fp16", "fp32"], default=None, help="default: bf16 on cuda, fp32 on cpu")
    ap.add_argument("--height", type=int, default=None, help="default 480 on cuda, 192 on cpu")
    ap.add_argument("--width", type=int, default=None, help="default 832 on cuda, 320 on cpu")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--rank", type=int, default=32, help="LoRA rank (style LoRAs: 16 to 128)")
    ap.add_argument("--loras", type=int, default=1, help="how many LoRAs at once")
    ap.add_argument("--chunks", type=int, default=None, help="timed chunks per setting (default 10 cuda, 3 cpu)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 is steadier on a shared CPU)")
    ap.add_argument("--json", action="store_true", help="print one JSON document instead of lines")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    on_gpu = args.device.startswith("cuda")
    dtype_name = args.dtype or ("bf16" if on_gpu else "fp32")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[dtype_name]
    height = args.height or (480 if on_gpu else 192)
    width = args.width or (832 if on_gpu else 320)
    timed = args.chunks or (10 if on_gpu else 3)
    cfg = CONFIGS[args.config]
    torch.manual_seed(0)
    with torch.device(args.device):
        model = WanModel(cfg)
    model = model.to(dtype=dtype).eval().requires_grad_(False)
    loras = [random_lora(model, f"style{i}", args.rank, seed=i) for i in range(args.loras)]
    prompt = torch.randn(1, cfg.text_len, cfg.text_dim, device=args.device)
    warmup = -(-cfg.local_attn_frames // cfg.frames_per_chunk)  # chunks to fill the ring
    where = f"{args.config} {args.device} {dtype_name} {width}x{height} steps={args.steps} " \
            f"{args.loras} LoRA(s) rank {args.rank} on {len(loras[0].layers)} Linears"

    def run(label: str) -> dict:
        sec = time_chunks(CausalGenerator(model, height=height, width=width), prompt, args.steps, warmup, timed,
                          args.device)
        row = {"setting": label, "sec_per_chunk": sec, "fps": FRAMES_PER_CHUNK_OUT / sec}
        if not args.json:
            print(f"  {label:18s} {sec * 1000:9.1f} ms/chunk  {row['fps']:7.1f} fps", flush=True)
        return row

    if not args.json:
        print(f"machine: {machine(args.device)}\n{where}, {timed} timed chunks", flush=True)
    scales = {lora.name: 1.0 for lora in loras}
    time_chunks(CausalGenerator(model, height=height, width=width), prompt, args.steps, warmup, 1, args.device)
    results = [run("none")]  # after one untimed round: the first pays one-off costs (allocator, kernels)
    held = _allocated(args.device)
    merged = StyleLoras(model, loras, merged=True, scales=scales)
    merged_memory = _allocated(args.device) - held
    results.append(run("merged") | {"extra_mb": merged_memory / 2**20})
    changes = [{name: 0.5 + 0.1 * (i % 2) for name in scales} for i in range(timed)]
    _sync(args.device)
    t0 = time.perf_counter()
    for change in changes:  # every LoRA's scale moves each time
        merged.set_scales(change)
    _sync(args.device)
    remerge = (time.perf_counter() - t0) / timed
    merged.detach()
    held = _allocated(args.device)
    unmerged = StyleLoras(model, loras, scales=scales)
    unmerged_memory = _allocated(args.device) - held
    results.append(run("unmerged") | {"extra_mb": unmerged_memory / 2**20})
    unmerged.set_scales({name: 0.0 for name in scales})
    results.append(run("unmerged, scale 0"))
    unmerged.detach()
    results.append({"setting": "re-merge", "sec_per_change": remerge})
    if args.json:
        print(json.dumps({"machine": machine(args.device), "setting": where, "results": results}, indent=2))
    else:
        base = results[0]["sec_per_chunk"]
        print(f"  re-merge (one scale change of every LoRA): {remerge * 1000:.1f} ms; unmerged costs "
              f"{(results[2]['sec_per_chunk'] - base) * 1000:+.1f} ms/chunk, merged "
              f"{(results[1]['sec_per_chunk'] - base) * 1000:+.1f} ms/chunk over none", flush=True)
        if args.device.startswith("cuda"):
            print(f"  device memory held: merged {merged_memory / 2**20:.0f} MB (originals kept for exact "
                  f"re-merges), unmerged {unmerged_memory / 2**20:.0f} MB (the pairs)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
