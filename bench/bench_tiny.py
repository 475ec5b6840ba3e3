"""The tiny default model's quality and speed on held-out synthetic clips (see engine.tiny.quality).

Usage: python bench/bench_tiny.py [--clips 16] [--chunks 4] [--threads 2] [--weights DIR] [--json]
                                  [--demo-frames 48 [--demo-prompt "white shapes"]]

Runs the engine's generator (bundled trained weights unless --weights names another folder) on
clips drawn with a seed the training never used, and prints: edge agreement of output and input
with control (context_scale 1), without it (context_scale 0) and against another clip's edges
(chance); the output's contrast between the input's shapes and their surroundings with and
without control; how often the output's shapes have the colour the prompt names, and, with the prompt
"shapes" (no colour), the reference image's colour with and without the reference; the seam ratio at chunk
boundaries and the stutter ratio at latent frame boundaries; seconds per chunk and generated frames per
second at 320x192 on this CPU.

With ``--demo-frames N`` it runs the demo's command (``tasks.py demo``) for N frames instead and
prints the edge agreement of its output panels with its input panels, and with the input panels
half the run later (the same pattern, its shapes elsewhere).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from pathlib import Path

import torch

from vacelive.engine.tiny import TINY_WEIGHTS
from vacelive.engine.tiny.quality import DEMO_PROMPT, TinyRunner, demo_edges, demo_pictures, held_out_clips, measure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--chunks", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--weights", type=Path, default=TINY_WEIGHTS)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--demo-frames", type=int, default=0, help="measure the demo's command for this many frames")
    parser.add_argument("--demo-prompt", default=DEMO_PROMPT)
    args = parser.parse_args()
    if args.demo_frames:
        demo(args)
        return
    torch.set_num_threads(args.threads)
    figures = measure(TinyRunner(args.weights), held_out_clips(args.clips), args.chunks)
    if args.json:
        print(json.dumps(figures))
        return
    print(f"tiny model {args.weights} on {platform.processor() or platform.machine()} "
          f"({os.cpu_count()} cores, {args.threads} threads), {figures['clips']} held-out clips, 320x192")
    print(f"  edge agreement (F-score): control {figures['edge_f_control']:.3f} (recall "
          f"{figures['edge_recall_control']:.3f}), context_scale 0 {figures['edge_f_scale0']:.3f}, chance "
          f"{figures['edge_f_chance']:.3f}")
    print(f"  control changes the output by {figures['control_change']:.2f} (mean |difference|, 0..255, "
          f"control vs context_scale 0); a reference by {figures['reference_change']:.2f}")
    print(f"  shape contrast (RGB distance, inside the input's shapes vs around them): control "
          f"{figures['shape_contrast_control']:.1f}, context_scale 0 {figures['shape_contrast_scale0']:.1f}")
    print(f"  colour named by the prompt produced: {figures['prompt_colour_accuracy']:.0%} "
          f"(chance {figures['colour_chance']:.0%})")
    print(f"  'red shapes' vs 'blue shapes': shapes redder (red - blue) by {figures['red_prompt_shift_mean']:.1f} "
          f"on average, {figures['red_prompt_shift_min']:.1f} at least")
    print(f"  reference colour produced (prompt 'shapes', the {figures['reference_clips']} clips whose edge control "
          f"shows their shapes): with the reference {figures['reference_colour_accuracy']:.0%}, without "
          f"{figures['no_reference_colour_accuracy']:.0%}; the reference brings the shapes' colour "
          f"{figures['reference_colour_gain']:.1f} nearer to its own (RGB distance)")
    print(f"  seam ratio at chunk boundaries: {figures['seam_ratio']:.2f} (1 = no seam); stutter ratio at latent "
          f"frame boundaries (every 4 frames): {figures['stutter_ratio']:.1f} (1 = even motion)")
    print(f"  speed: {figures['chunk_seconds'] * 1000:.0f} ms per 12-frame chunk = {figures['generated_fps']:.1f} "
          "generated fps")


def demo(args: argparse.Namespace) -> None:
    """Print the demo's edge agreement (``--demo-frames``)."""
    with tempfile.TemporaryDirectory(prefix="vacelive-demo-") as folder:
        pictures = demo_pictures(Path(folder), args.demo_frames, args.demo_prompt, args.weights)
    shown, shifted = demo_edges(pictures)
    figures = {"frames": len(pictures), "prompt": args.demo_prompt, "edge_f": round(shown.f_score, 3),
               "edge_precision": round(shown.precision, 3), "edge_recall": round(shown.recall, 3),
               "edge_f_shifted": round(shifted.f_score, 3)}
    if args.json:
        print(json.dumps(figures))
        return
    print(f"demo ({len(pictures)} frames, prompt {args.demo_prompt!r}, weights {args.weights}): output edges against "
          f"the input's F {shown.f_score:.3f} (precision {shown.precision:.3f}, recall {shown.recall:.3f}); against "
          f"the input half the run later {shifted.f_score:.3f}")


if __name__ == "__main__":
    main()
