"""Soak: run the live engine for many chunks and show that memory stays flat and fps steady.

    python bench/bench_soak.py [--chunks 10000] [--width 64 --height 64] [--fps 120]

The tiny model on the CPU by default, test pattern in, null out, at the highest fps so chunks
follow each other as fast as the engine allows. Prints the RSS after warm-up and at the end, the
KV cache size, queue depths, and the output fps of each tenth of the run.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from vacelive import annotators
from vacelive import bridges
from vacelive.engine.app import build_store
from vacelive.engine.loop import Engine
from vacelive.engine.pipeline import build_generator


def rss_mb() -> float:
    """Resident set size now (Linux /proc; 0 elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except OSError:
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--fps", type=float, default=120.0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    store = build_store(overrides={"width": args.width, "height": args.height, "fps": args.fps,
                                   "annotator": "edge", "steps": 4})
    generator = build_generator(store, None, "cpu")
    source = bridges.open_source("testpattern", width=args.width, height=args.height, fps=args.fps)
    engine = Engine(store, generator, source, [bridges.open_sink("null")],
                    make_annotator=annotators.make_annotator, make_mask_source=annotators.make_mask_source)
    engine.start()
    metrics = engine.metrics
    while metrics.chunks_done < 20:
        time.sleep(0.1)
    start_rss, start_time, start_frames = rss_mb(), time.monotonic(), metrics.frames_out
    print(f"after warm-up: RSS {start_rss:.1f} MB, KV cache {generator.causal.kv_cache.nbytes / 2**20:.2f} MB")
    tenth = max(1, args.chunks // 10)
    mark_chunks, mark_time, mark_frames = metrics.chunks_done, start_time, start_frames
    while metrics.chunks_done < args.chunks:
        time.sleep(0.5)
        if metrics.chunks_done - mark_chunks >= tenth:
            now = time.monotonic()
            fps = (metrics.frames_out - mark_frames) / (now - mark_time)
            depths = {k: v() for k, v in metrics.queue_depths.items()}
            print(f"chunks {metrics.chunks_done:6d}  output fps {fps:6.1f}  generated {metrics.fps_generated.rate():6.1f}"
                  f"  RSS {rss_mb():7.1f} MB  queues {depths}", flush=True)
            mark_chunks, mark_time, mark_frames = metrics.chunks_done, now, metrics.frames_out
    end_rss = rss_mb()
    stuck = engine.stop(30.0)
    print(f"end: {metrics.chunks_done} chunks in {time.monotonic() - start_time:.0f} s; RSS {start_rss:.1f} -> "
          f"{end_rss:.1f} MB ({end_rss - start_rss:+.1f} MB); KV cache {generator.causal.kv_cache.nbytes / 2**20:.2f} MB; "
          f"frame index {generator.causal.frame_index}; stalls {metrics.stalls}; errors {metrics.generator_errors}"
          f"{'; stuck threads: ' + ', '.join(stuck) if stuck else ''}")


if __name__ == "__main__":
    main()
