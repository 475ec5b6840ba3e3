"""Benchmark the causal DiT: seconds per chunk and output fps for each step count.

Usage: python bench/bench_model.py [--config 1.3B|14B|tiny] [--device cuda|cpu]
       [--height 480 --width 832] [--steps 1 2 3 4] [--compile] [--json]

Random weights. Defaults: on a GPU the 1.3B config in bf16 at 832x480 and 512x512; without one
the tiny config in fp32 on CPU at half those sizes (416x240 and 256x256: on a CPU even the tiny
model is attention-bound at full size, 5 to 25 s per chunk measured on 2 shared cores).
A chunk is 3 latent frames = 12 output frames; each chunk costs ``steps`` denoising forwards
plus one cache-writing forward at t=0. Timing starts after warm-up chunks that fill the KV
ring (so the attention span is the steady-state one). Per size it also times a prompt re-cache
of the full ring (the extra cost of a prompt switch with ``prompt_recache`` on).
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from vacelive.engine.model import CONFIGS, CausalGenerator, WanModel

FRAMES_PER_CHUNK_OUT = 12


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _time_recache(gen: CausalGenerator, cfg, device: str, repeats: int) -> float:
    """Seconds to re-encode a full ring under a new prompt (what a prompt switch adds to its chunk)."""
    prompts = [torch.randn(1, cfg.text_len, cfg.text_dim, device=device) for _ in range(repeats + 1)]
    gen.recache(prompts[0])  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    for prompt in prompts[1:]:
        gen.recache(prompt)
    _sync(device)
    return (time.perf_counter() - t0) / repeats


def main(argv: list[str] | None = None) -> int:
    has_cuda = torch.cuda.is_available()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=sorted(CONFIGS), default="1.3B" if has_cuda else "tiny")
    ap.add_argument("--device", default="cuda" if has_cuda else "cpu")
    ap.add_argument("--dtype", choices=["bf16", "fp16", "fp32"], default=None,
                    help="default: bf16 on cuda, fp32 on cpu")
    ap.add_argument("--height", type=int, help="with --width: one resolution instead of the defaults")
    ap.add_argument("--width", type=int)
    ap.add_argument("--steps", type=int, nargs="+", default=[1, 2, 3, 4])
    ap.add_argument("--chunks", type=int, default=None, help="timed chunks per setting (default 10 cuda, 2 cpu)")
    ap.add_argument("--compile", action="store_true", help="torch.compile every block")
    ap.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    args = ap.parse_args(argv)

    dtype_name = args.dtype or ("bf16" if args.device.startswith("cuda") else "fp32")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[dtype_name]
    if (args.height is None) != (args.width is None):
        ap.error("give both --height and --width")
    on_gpu = args.device.startswith("cuda")
    default_sizes = [(480, 832), (512, 512)] if on_gpu else [(240, 416), (256, 256)]
    sizes = [(args.height, args.width)] if args.height else default_sizes
    timed = args.chunks or (10 if on_gpu else 2)
    cfg = CONFIGS[args.config]

    torch.manual_seed(0)
    with torch.device(args.device):
        model = WanModel(cfg)
    model = model.to(dtype=dtype).eval().requires_grad_(False)
    if args.compile:
        model.compile_blocks()
    prompt = torch.randn(1, cfg.text_len, cfg.text_dim, device=args.device)
    warmup = -(-cfg.local_attn_frames // cfg.frames_per_chunk)  # chunks to fill the ring

    results = []
    for height, width in sizes:
        for steps in args.steps:
            gen = CausalGenerator(model, height=height, width=width)
            for _ in range(warmup):
                gen.generate_chunk(prompt, seed=0, steps=steps)
            _sync(args.device)
            t0 = time.perf_counter()
            for _ in range(timed):
                gen.generate_chunk(prompt, seed=0, steps=steps)
            _sync(args.device)
            sec = (time.perf_counter() - t0) / timed
            results.append({
                "config": args.config, "device": args.device, "dtype": dtype_name, "compile": args.compile,
                "height": height, "width": width, "steps": steps, "chunks": timed,
                "sec_per_chunk": sec, "fps": FRAMES_PER_CHUNK_OUT / sec,
            })
            if not args.json:
                print(f"{args.config} {args.device} {dtype_name} {width}x{height} steps={steps}: "
                      f"{sec:.4f} s/chunk, {FRAMES_PER_CHUNK_OUT / sec:.1f} fps", flush=True)
        recache = _time_recache(gen, cfg, args.device, timed)
        results.append({"config": args.config, "device": args.device, "dtype": dtype_name, "height": height,
                        "width": width, "recache_sec": recache, "recache_frames": gen.kv_cache.ring_frames})
        if not args.json:
            print(f"{args.config} {args.device} {dtype_name} {width}x{height} prompt re-cache "
                  f"({gen.kv_cache.ring_frames} frames): {recache:.4f} s per switch", flush=True)
    if args.json:
        device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
        print(json.dumps({"device_name": device_name, "torch": torch.__version__, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
