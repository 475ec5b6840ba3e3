"""The GPU speed matrix in one process: steps x VACE x compile x autoencoder, one table.

Usage: python bench/bench_matrix.py [--config 1.3B] [--device cuda] [--height 480 --width 832]
       [--steps 4 2] [--chunks 3] [--attention auto|cudnn|flash|efficient] [--no-compile | --compiled-only]
       [--json FILE]

Random weights (VACE projections too, so the branch really runs), bf16 on a GPU (fp32 on a CPU,
where ``--config tiny`` or a small size keeps it short). The model and both autoencoders are
built once. For every steps x VACE x compile setting it times, per 12-frame chunk, after the
chunks that fill the KV ring (the steady state):

- ``denoise``: the DiT's denoising forwards + the cache-writing forward (+ the VACE branch);
- ``encode``: with VACE, the control frames' encode into vace_context (the inactive stream of an
  unmasked control is answered from the zero-stream memo, so one encode);
- ``decode``: the autoencoder's decode of the chunk's 3 latent frames;
- ``annotate``: with VACE, the depth network (Depth Anything V2 small, random weights) on 12 frames;

and prints ``chunk`` = their sum (the generator thread runs them in series), fps = 12 / chunk, and
``overlap``: one chunk's denoising and the previous chunk's decode issued together on two CUDA
streams (what a decode stage of its own would reach). Before the matrix: which attention kernel
(SDPA backend) runs at the DiT's shapes and how fast each one is, and peak memory at the end.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from vacelive.annotators.depth import DepthAnnotator
from vacelive.annotators.depth_model import VITS, DepthAnythingV2
from vacelive.engine.model import CONFIGS, CausalGenerator, WanModel, compile_stack
from vacelive.engine.model.attention import ATTENTION_CHOICES
from vacelive.engine.vace import (
    EXTRAS_KEY,
    VaceBranch,
    VaceConditioning,
    attach_vace,
    default_vace_layers,
)
from vacelive.engine.vae import TAEW, TAEW_CONFIGS, WAN_VAE_CONFIGS, WanVAE

FRAMES = 12


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _median_ms(fn: Callable[[], object], device: str, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times)


def attention_backends(cfg, tokens: int, window_tokens: int, device: str, dtype: torch.dtype) -> list[dict]:
    """Time each SDPA backend at the streaming shapes (q: one chunk, k/v: the full ring)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    shape = (1, cfg.num_heads, tokens, cfg.head_dim)
    q = torch.randn(shape, device=device, dtype=dtype)
    k = torch.randn(1, cfg.num_heads, window_tokens, cfg.head_dim, device=device, dtype=dtype)
    v = torch.randn_like(k)
    reference = F.scaled_dot_product_attention(q.float(), k.float(), v.float())
    flops = 4 * tokens * window_tokens * cfg.dim
    rows = []
    for backend in (SDPBackend.FLASH_ATTENTION, SDPBackend.CUDNN_ATTENTION, SDPBackend.EFFICIENT_ATTENTION,
                    SDPBackend.MATH):
        try:
            with sdpa_kernel([backend]):
                out = F.scaled_dot_product_attention(q, k, v)
                ms = _median_ms(lambda: F.scaled_dot_product_attention(q, k, v), device, 20)
            err = ((out.float() - reference).norm() / reference.norm()).item()
            rows.append({"backend": backend.name, "ms": ms, "tflops": flops / ms / 1e9, "rel_err": err})
        except RuntimeError as exc:  # not available for these shapes / this card
            rows.append({"backend": backend.name, "error": str(exc).splitlines()[0][:80]})
    return rows


def main(argv: list[str] | None = None) -> int:
    has_cuda = torch.cuda.is_available()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=sorted(CONFIGS), default="1.3B" if has_cuda else "tiny")
    ap.add_argument("--device", default="cuda" if has_cuda else "cpu")
    ap.add_argument("--height", type=int, default=480 if has_cuda else 96)
    ap.add_argument("--width", type=int, default=832 if has_cuda else 160)
    ap.add_argument("--steps", type=int, nargs="+", default=[4, 2])
    ap.add_argument("--chunks", type=int, default=3, help="timed chunks per setting (median)")
    ap.add_argument("--attention", choices=ATTENTION_CHOICES, default="auto", help="SDPA kernels (as the engine's "
                    "'attention' parameter); with another than flash, the eager output is compared with flash's")
    ap.add_argument("--no-compile", dest="compile", action="store_false", help="eager rows only")
    ap.add_argument("--compiled-only", action="store_true", help="compiled rows only")
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    args = ap.parse_args(argv)

    device, on_gpu = args.device, args.device.startswith("cuda")
    dtype = torch.bfloat16 if on_gpu else torch.float32
    cfg = CONFIGS[args.config]
    size = "tiny" if args.config == "tiny" else "real"
    lh, lw = args.height // 8, args.width // 8
    name = torch.cuda.get_device_name() if on_gpu else "cpu"
    print(f"{name}, torch {torch.__version__}, {args.config} {args.width}x{args.height} {dtype}, "
          f"random weights", flush=True)

    torch.manual_seed(0)
    with torch.device(device):
        model = WanModel(cfg)
        vaes = {"wan": WanVAE(WAN_VAE_CONFIGS[size]), "tae": TAEW(TAEW_CONFIGS[size])}
    model = model.to(dtype=dtype).eval().requires_grad_(False)
    vaes = {k: v.to(dtype=dtype).eval().requires_grad_(False) for k, v in vaes.items()}
    branch = VaceBranch(model.blocks, default_vace_layers(cfg.num_layers), cfg.dim, cfg.patch_size).eval()
    with torch.no_grad():
        for pname, p in branch.named_parameters():
            if "_proj." in pname:
                p.normal_(0.0, 0.02)
    injector = attach_vace(model, branch.requires_grad_(False))
    depth = DepthAnnotator(DepthAnythingV2(VITS).eval(), device=device)
    prompt = torch.randn(1, cfg.text_len, cfg.text_dim, device=device)
    context = torch.randn(1, 96, cfg.frames_per_chunk, lh, lw, device=device)
    frames_u8 = np.random.default_rng(0).integers(0, 256, (FRAMES, args.height, args.width, 3), dtype=np.uint8)
    frames = torch.rand(1, 3, FRAMES, args.height, args.width, device=device, dtype=dtype) * 2 - 1
    frame_tokens = (lh // cfg.patch_size[1]) * (lw // cfg.patch_size[2])
    figures: dict = {"device": name, "torch": torch.__version__, "config": args.config,
                     "size": f"{args.width}x{args.height}", "rows": []}

    if on_gpu:
        figures["attention"] = attention_backends(cfg, frame_tokens * cfg.frames_per_chunk,
                                                  frame_tokens * cfg.local_attn_frames, device, dtype)
        print("attention at the streaming shapes (q one chunk, k/v the full ring):", flush=True)
        for row in figures["attention"]:
            if "error" in row:
                print(f"  {row['backend']:<20} unavailable: {row['error']}")
            else:
                print(f"  {row['backend']:<20} {row['ms']:7.3f} ms  {row['tflops']:6.0f} TFLOP/s  "
                      f"rel. error {row['rel_err']:.1e}")

    with torch.inference_mode():
        per_vae = {}
        for vname, vae in vaes.items():
            latents = torch.randn(1, 16, 3, lh, lw, device=device, dtype=dtype)
            enc_cache, dec_cache = vae.new_cache(), vae.new_cache()
            vae.encode(frames, enc_cache), vae.decode(latents, dec_cache)  # first chunks apart
            per_vae[vname] = {
                "encode": _median_ms(lambda: vae.encode(frames, enc_cache), device, args.chunks + 1),
                "decode": _median_ms(lambda: vae.decode(latents, dec_cache), device, args.chunks + 1),
            }
        depth(frames_u8, {})
        annotate = _median_ms(lambda: depth(frames_u8, {}), device, args.chunks)
        figures["autoencoders_ms"], figures["depth_ms_per_chunk"] = per_vae, annotate

        def denoise_ms(steps: int, vace: bool, overlap_vae: str | None = None) -> float:
            gen = CausalGenerator(model, args.height, args.width, attention=args.attention)
            injector.reset()
            extras = {EXTRAS_KEY: VaceConditioning(context, 1.0)} if vace else None
            for _ in range(gen.chunks_to_fill):
                gen.generate_chunk(prompt, seed=0, steps=steps, extras=extras)
            if overlap_vae is None:
                return _median_ms(lambda: gen.generate_chunk(prompt, seed=0, steps=steps, extras=extras),
                                  device, args.chunks)
            vae, side = vaes[overlap_vae], torch.cuda.Stream()
            cache = vae.new_cache()
            previous = gen.generate_chunk(prompt, seed=0, steps=steps, extras=extras).to(dtype)
            vae.decode(previous, cache)

            def both() -> None:
                nonlocal previous
                side.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(side):
                    vae.decode(previous, cache)
                previous.record_stream(side)  # not reused by the denoising stream until decoded
                previous = gen.generate_chunk(prompt, seed=0, steps=steps, extras=extras).to(dtype)
                torch.cuda.current_stream().wait_stream(side)
            return _median_ms(both, device, args.chunks)

        def steady_chunk(attention: str = args.attention) -> torch.Tensor:
            """The first steady-state chunk of a stream with VACE (4 steps)."""
            gen = CausalGenerator(model, args.height, args.width, attention=attention)
            injector.reset()
            extras = {EXTRAS_KEY: VaceConditioning(context, 1.0)}
            for _ in range(gen.chunks_to_fill + 1):
                out = gen.generate_chunk(prompt, seed=0, steps=4, extras=extras)
            return out.float()

        modes = [True] if args.compiled_only else [False, True] if args.compile else [False]
        eager_chunk = steady_chunk()
        kernels = CausalGenerator(model, args.height, args.width, attention=args.attention).kernels
        figures["attention_kernels"] = [k.name for k in kernels] if kernels else "PyTorch's choice"
        print(f"attention {args.attention}: {figures['attention_kernels']}", flush=True)
        if on_gpu and args.attention != "flash":
            flash_chunk = steady_chunk("flash")
            figures["vs_flash_rel_err"] = ((eager_chunk - flash_chunk).norm() / flash_chunk.norm()).item()
            print(f"eager, 4 steps + VACE, against flash: relative error {figures['vs_flash_rel_err']:.1e}",
                  flush=True)
        for compiled in modes:
            if compiled:
                t0 = time.perf_counter()
                model.compile_blocks()
                compile_stack(branch.vace_blocks)
                compiled_chunk = steady_chunk()  # compiles the graphs (base and branch)
                figures["compile_s"] = time.perf_counter() - t0
                figures["compiled_vs_eager_rel_err"] = ((compiled_chunk - eager_chunk).norm()
                                                        / eager_chunk.norm()).item()
                print(f"compiled in {figures['compile_s']:.1f} s (with the stream's first steady chunk); "
                      f"compiled vs eager, 4 steps + VACE: relative error "
                      f"{figures['compiled_vs_eager_rel_err']:.1e}", flush=True)
            for steps in args.steps:
                for vace in (False, True):
                    dit = denoise_ms(steps, vace)
                    for vname in vaes:
                        extra = (per_vae[vname]["encode"] + annotate) if vace else 0.0
                        chunk = dit + extra + per_vae[vname]["decode"]
                        overlap = denoise_ms(steps, vace, vname) + extra if on_gpu and vname == "wan" else None
                        row = {"steps": steps, "vace": vace, "compile": compiled, "vae": vname,
                               "denoise_ms": dit, "encode_ms": per_vae[vname]["encode"] if vace else 0.0,
                               "annotate_ms": annotate if vace else 0.0, "decode_ms": per_vae[vname]["decode"],
                               "chunk_ms": chunk, "fps": FRAMES * 1000.0 / chunk,
                               "overlap_chunk_ms": overlap,
                               "overlap_fps": FRAMES * 1000.0 / overlap if overlap else None}
                        figures["rows"].append(row)
                        print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}),
                              flush=True)
    if on_gpu:
        figures["peak_gb"] = torch.cuda.max_memory_allocated() / 2**30

    print(f"\n{name}: {args.config} random weights, {args.width}x{args.height}, {dtype}, attention "
          f"{args.attention}; ms per 12-frame chunk")
    print("| steps | VACE | compile | VAE | denoise | +encode +depth | decode | chunk | fps | overlapped decode: fps |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in figures["rows"]:
        extra = f"{r['encode_ms'] + r['annotate_ms']:.0f}" if r["vace"] else "-"
        overlap = f"{r['overlap_fps']:.1f}" if r["overlap_fps"] else "-"
        print(f"| {r['steps']} | {'on' if r['vace'] else 'off'} | {'on' if r['compile'] else 'off'} | {r['vae']} | "
              f"{r['denoise_ms']:.0f} | {extra} | {r['decode_ms']:.0f} | {r['chunk_ms']:.0f} | {r['fps']:.1f} | "
              f"{overlap} |")
    if on_gpu:
        print(f"peak memory allocated: {figures['peak_gb']:.1f} GB (DiT + VACE + both autoencoders + depth)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
