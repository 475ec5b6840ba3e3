"""Frames per second of every annotator and mask source at the engine's resolution.

    python bench/bench_annotators.py [--width 832 --height 480] [--weights DIR] [--chunks 4]

Runs on CPU, and the depth network also on CUDA when available. The real-size depth network
(ViT-S, input 518) runs with random weights: the speed is the same.

Pose and the person mask need mediapipe (the ``pose`` extra) and their model files: from
``--weights``, or else the real models the tests build from the mediapipe 0.10.21 wheel
(``python -m tests.mediapipe_models`` builds them once into ``~/.cache/vacelive-test``). They run on
a clip with a person in it (matplotlib's public-domain portrait of Grace Hopper, scaled to the
frame height, drifting over the moving texture), and pose also on the texture alone (no person:
the detector runs on every frame).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
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


def person_clip(texture: np.ndarray) -> np.ndarray | None:
    """``texture`` with the Grace Hopper portrait (matplotlib sample data) drifting 3 px per frame;
    None without matplotlib."""
    try:
        from matplotlib import cbook
    except ImportError:
        return None
    photo = cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    n, height, width = texture.shape[:3]
    scaled_width = photo.shape[1] * height // photo.shape[0]
    portrait = cv2.cvtColor(cv2.resize(photo, (scaled_width, height), interpolation=cv2.INTER_AREA),
                            cv2.COLOR_BGR2RGB)
    clip = texture.copy()
    for i in range(n):
        left = (width - scaled_width) // 4 + 3 * i
        right = min(width, left + scaled_width)
        clip[i, :, left:right] = portrait[:, : right - left]
    return clip


def mediapipe_models(weights: Path | None) -> Path | None:
    """``weights``, or else the tests' model folder if it has been built."""
    if weights is not None:
        return weights
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.mediapipe_models import BUILT, models_dir

    folder = models_dir()
    return folder if all((folder / name).is_file() for name in BUILT) else None


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

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{platform.system()} {platform.machine()}, {cpus} CPUs, {platform.python_version()}; "
          f"{args.width}x{args.height}, {args.chunks} chunks of {CHUNK_FRAMES} frames, "
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
    models = mediapipe_models(args.weights)
    clip = person_clip(frames)
    person_chunks = None if clip is None else [
        clip[i : i + CHUNK_FRAMES] for i in range(0, len(clip), CHUNK_FRAMES)]
    if models is None:
        report("pose (mediapipe)", "skipped: no model files (--weights DIR, or build the test "
               "models: python -m tests.mediapipe_models)")
    else:
        try:
            from importlib.metadata import version

            mediapipe_version = version("mediapipe")
        except ImportError:
            mediapipe_version = "not installed"
        print(f"mediapipe {mediapipe_version}, models: {models}")
        try:
            annotator = make_annotator("pose", weights=models)
            if person_chunks is not None:
                report("pose (mediapipe, person in frame)",
                       fps(lambda c, a=annotator: a(c, {}), person_chunks))
                annotator.reset()
            report("pose (mediapipe, no person)", fps(lambda c, a=annotator: a(c, {}), chunks))
            annotator.reset()
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
                source = make_mask_source(name, weights=models,
                                          resolve_path=lambda s: Path(tmp) / s)
            except (FileNotFoundError, ImportError, RuntimeError) as exc:
                report(f"mask {name}", f"skipped: {exc}")
                continue
            run = lambda c, s=source: s(c, settings, alpha=alpha[: len(c)])  # noqa: E731
            if name == "person" and person_chunks is not None:
                report("mask person (person in frame)", fps(run, person_chunks))
            else:
                report(f"mask {name}", fps(run, chunks))
            source.reset()  # the person source closes its segmenter


if __name__ == "__main__":
    main()
