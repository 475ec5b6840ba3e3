"""Per-chunk encode/decode time of the streaming autoencoders at 832x480.

GPU (bf16): real configs of both autoencoders (random weights: timing does not depend on values).
CPU (fp32): tiny configs, the real TAEW, and with ``--real-wan`` the real Wan VAE (slow on CPU).

    python -m bench.bench_vae [--device cuda] [--chunks 3] [--real-wan]   (from the repo root)
"""

from __future__ import annotations

import argparse
import time

import torch

from vacelive.engine.vae import TAEW, TAEW_CONFIGS, WAN_VAE_CONFIGS, WanVAE


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench(name: str, model, device, dtype, width: int, height: int, chunks: int, encode: bool = True) -> None:
    model = model.to(device=device, dtype=dtype).eval()
    frames = torch.rand(1, 3, 12, height, width, device=device, dtype=dtype) * 2 - 1
    latents = torch.randn(1, 16, 3, height // 8, width // 8, device=device, dtype=dtype)
    rows = []
    for op, x in (("encode", frames), ("decode", latents)) if encode else (("decode", latents),):
        cache = model.new_cache()
        times = []
        for _ in range(chunks):
            _sync(device)
            t0 = time.perf_counter()
            out = getattr(model, op)(x, cache)
            _sync(device)
            times.append(time.perf_counter() - t0)
        first, later = times[0], (sum(times[1:]) / len(times[1:]) if len(times) > 1 else float("nan"))
        rows.append(f"{op} first {first * 1e3:8.1f} ms, later {later * 1e3:8.1f} ms/chunk "
                    f"({12 / later if later == later else float('nan'):6.1f} fps), out {tuple(out.shape)}")
    for row in rows:
        print(f"{name:<12} {row}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--chunks", type=int, default=3, help="chunks per stream (the first is timed apart)")
    parser.add_argument("--size", default="832x480", help="WxH")
    parser.add_argument("--real-wan", action="store_true", help="also the real Wan VAE on CPU (decode only)")
    parser.add_argument("--only", default="", help="comma list of names to run, e.g. 'real taew,tiny wan'")
    args = parser.parse_args()
    device = torch.device(args.device)
    width, height = map(int, args.size.split("x"))
    gpu = device.type == "cuda"
    dtype = torch.bfloat16 if gpu else torch.float32
    torch.manual_seed(0)
    print(f"device {device} ({torch.cuda.get_device_name(device) if gpu else 'cpu'}), dtype {dtype}, "
          f"{width}x{height}, 12 frames / 3 latents per chunk, torch threads {torch.get_num_threads()}")
    runs = [("tiny wan", lambda: WanVAE(WAN_VAE_CONFIGS["tiny"]), args.chunks, True),
            ("tiny taew", lambda: TAEW(TAEW_CONFIGS["tiny"]), args.chunks, True),
            ("real taew", TAEW, args.chunks, True)]
    if gpu:
        runs.append(("real wan", WanVAE, args.chunks, True))
    elif args.real_wan:
        runs.append(("real wan", WanVAE, 1, False))
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    with torch.inference_mode():
        for name, build, chunks, encode in runs:
            if not only or name in only:
                bench(name, build(), device, dtype, width, height, chunks, encode)


if __name__ == "__main__":
    main()
