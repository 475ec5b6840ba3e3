"""Frames per second of every annotator and mask source at the engine's resolution.

    python bench/bench_annotators.py [--width 832 --height 480] [--weights DIR] [--chunks 4]

Runs on CPU, and the depth network also on CUDA when available. Pose and the person mask run
only when their model files are in ``--weights`` (and mediapipe is installed). The real-size
depth network (ViT-S, input 518) runs with random weights: the speed is the same.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from vacelive.annotators import make_annotator, make_mask_source
from vacelive.annotators.pose import render_people
from vacelive.engine.frames import CHUNK_FRAMES


def moving_texture(n: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """``n`` frames of a smooth random texture moving 3 px right and 1 px down per frame."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (height + n, width + 3 * n, 3), dtype=np.uint8)
    texture = cv2.normalize(cv2.GaussianBlur(noise, (0, 0), 3.0), None, 0, 255, cv2.NORM_MINMAX)
    return np.stack([
        texture[n - i : n - i + height, 3 * (n - i) : 3 * (n - i) + width] for i in range(n)
    ])


def synthetic_person(x: float) -> np.ndarray:
    """33 visible BlazePose landmarks of a standing figure centred at ``x``."""
    rng = np.random.default_rng(int(x * 100))
    landmarks = np.ones((33, 3))
    landmarks[:, 0] = x + rng.uniform(-0.12, 0.12, 33)
    landmarks[:, 1] = np.linspace(0.1, 0.95, 33)
    return landmarks


def fps(run: Callable[[np.ndarray], object], chunks: list[np.ndarray]) -> float:
    """Frames per second of ``run`` over ``chunks``, after one warm-up chunk."""
    run(chunks[0])
    start = time.perf_counter()
    for chunk in chunks:
        run(chunk)
    return sum(len(c) for c in chunks) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--width", type=int, default=832)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--chunks", type=int, default=4, help="12-frame chunks timed per entry")
    parser.add_argument("--weights", type=Path, default=None, help="folder with model files")
    parser.add_argument("--no-real-depth", action="store_true", help="skip the ViT-S depth run")
    parser.add_argument("--torch-threads", type=int, default=0,
                        help="torch CPU threads (0: torch's default); 1 is faster on a busy CPU")
    args = parser.parse_args()

    import torch

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)

    from vacelive.annotators.depth import DepthAnnotator
    from vacelive.annotators.depth_model import TINY, VITS, DepthAnythingV2

    frames = moving_texture(CHUNK_FRAMES * args.chunks, args.height, args.width)
    chunks = [frames[i : i + CHUNK_FRAMES] for i in range(0, len(frames), CHUNK_FRAMES)]
    alpha = np.full(frames.shape[:3], 255, dtype=np.uint8)
    results: list[tuple[str, str]] = []

    def report(label: str, value: float | str) -> None:
        text = f"{value:8.2f} fps" if isinstance(value, float) else value
        results.append((label, text))
        print(f"{label:34s} {text}", flush=True)

    print(f"{args.width}x{args.height}, {args.chunks} chunks of {CHUNK_FRAMES} frames, "
          f"torch threads {torch.get_num_threads()}, cv2 threads {cv2.getNumThreads()}")
    for name in ("passthrough", "edge", "scribble"):
        annotator = make_annotator(name)
        report(name, fps(lambda c, a=annotator: a(c, {}), chunks))
    for method in ("dis", "farneback"):
        annotator = make_annotator("flow")
        run = lambda c, a=annotator, m=method: a(c, {"flow_method": m})  # noqa: E731
        report(f"flow {method}", fps(run, chunks))
    people = [synthetic_person(0.35), synthetic_person(0.65)]
    report("pose drawing only (2 people)", fps(lambda c: [
        render_people(people, args.height, args.width, hands=True, face=True) for _ in c
    ], chunks))
    try:
        annotator = make_annotator("pose", weights=args.weights)
        report("pose (mediapipe)", fps(lambda c, a=annotator: a(c, {}), chunks))
    except (FileNotFoundError, ImportError, RuntimeError) as exc:
        report("pose (mediapipe)", f"skipped: {exc}")

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        torch.manual_seed(0)
        tiny = DepthAnnotator(DepthAnythingV2(TINY), input_size=126, device=device)
        report(f"depth tiny (input 126, {device})", fps(lambda c, a=tiny: a(c, {}), chunks))
        if args.no_real_depth:
            continue
        real = DepthAnnotator(DepthAnythingV2(VITS), input_size=518, device=device)
        sample = chunks if device == "cuda" else [chunks[0][:2], chunks[0][2:4]]
        report(f"depth ViT-S (input 518, {device})", fps(lambda c, a=real: a(c, {}), sample))

    with tempfile.TemporaryDirectory() as tmp:
        mask_file = Path(tmp) / "mask.png"
        mask_image = np.zeros((1080, 1920), dtype=np.uint8)
        mask_image[:, 960:] = 255
        cv2.imwrite(str(mask_file), mask_image)
        settings = {"mask_image": mask_file.name, "mask_feather": 4}
        for name in ("luma", "chroma", "alpha", "image", "person"):
            try:
                source = make_mask_source(name, weights=args.weights,
                                          resolve_path=lambda s: Path(tmp) / s)
            except (FileNotFoundError, ImportError, RuntimeError) as exc:
                report(f"mask {name}", f"skipped: {exc}")
                continue
            run = lambda c, s=source: s(c, settings, alpha=alpha[: len(c)])  # noqa: E731
            report(f"mask {name}", fps(run, chunks))


if __name__ == "__main__":
    main()
