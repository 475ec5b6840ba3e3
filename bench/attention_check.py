"""Which attention kernel really runs in the DiT, and its share of a chunk (GPU).

Usage: python bench/attention_check.py [--config 1.3B] [--height 480 --width 832]

1. SDPA at the stream's shapes with the layouts the model passes (q a transposed view of
   [B, N, heads, head_dim], k/v slices of the ring buffers), each backend alone: its time, or
   why it refuses them.
2. One steady-state chunk (4 steps + the cache pass, eager, random weights) under the profiler
   for each ``attention`` setting: the CUDA kernels that took the most time, and attention's share.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.profiler import ProfilerActivity, profile
from vacelive.engine.model import CONFIGS, CausalGenerator, WanModel


def _ms(fn, repeats: int = 20) -> float:
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    fn()
    start.record()
    for _ in range(repeats):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / repeats


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", choices=sorted(CONFIGS), default="1.3B")
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--width", type=int, default=832)
    args = ap.parse_args()
    cfg = CONFIGS[args.config]
    dtype, device = torch.bfloat16, "cuda"
    frame_tokens = (args.height // 16) * (args.width // 16)
    n, window = frame_tokens * cfg.frames_per_chunk, frame_tokens * cfg.local_attn_frames
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}; "
          f"q {n} tokens, k/v {window} tokens, {cfg.num_heads} heads x {cfg.head_dim}", flush=True)

    q_model = torch.randn(1, n, cfg.num_heads, cfg.head_dim, device=device, dtype=dtype).transpose(1, 2)
    ring = torch.randn(1, cfg.num_heads, cfg.local_attn_frames, frame_tokens, cfg.head_dim, device=device, dtype=dtype)
    k_model = ring.flatten(2, 3)
    v_model = torch.randn_like(ring).flatten(2, 3)
    layouts = {"model layout (q transposed view)": (q_model, k_model, v_model),
               "contiguous q": (q_model.contiguous(), k_model, v_model)}
    for label, (q, k, v) in layouts.items():
        for backend in (SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION):
            try:
                with sdpa_kernel([backend]):
                    ms = _ms(lambda: F.scaled_dot_product_attention(q, k, v))
                print(f"  {label:<34} {backend.name:<20} {ms:6.3f} ms", flush=True)
            except RuntimeError as exc:
                print(f"  {label:<34} {backend.name:<20} refused: {str(exc).splitlines()[0][:100]}", flush=True)

    torch.manual_seed(0)
    with torch.device(device):
        model = WanModel(cfg)
    model = model.to(dtype=dtype).eval().requires_grad_(False)
    prompt = torch.randn(1, cfg.text_len, cfg.text_dim, device=device)
    for attention in ("auto", "flash", "cudnn"):
        gen = CausalGenerator(model, args.height, args.width, attention=attention)
        for _ in range(gen.chunks_to_fill + 1):
            gen.generate_chunk(prompt, seed=0, steps=4)
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            gen.generate_chunk(prompt, seed=0, steps=4)
            torch.cuda.synchronize()
        events = [e for e in prof.key_averages() if e.device_time_total > 0]
        total = sum(e.self_device_time_total for e in events)
        attn = sum(e.self_device_time_total for e in events
                   if any(word in e.key.lower() for word in ("flash", "fmha", "cudnn", "attention", "sdpa")))
        print(f"attention={attention}: chunk {total / 1e3:.1f} ms of kernels, attention kernels "
              f"{attn / 1e3:.1f} ms ({100 * attn / max(total, 1):.0f} %); top kernels:", flush=True)
        for e in sorted(events, key=lambda e: -e.self_device_time_total)[:6]:
            print(f"    {e.self_device_time_total / 1e3:8.1f} ms  {e.count:5d}x  {e.key[:110]}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
