"""``vacelive bench``: end-to-end figures of a live run, and the component benchmarks.

The run uses the real engine and pipeline with the test pattern as source. Each test-pattern
frame carries a frame counter stamped into its pixels; the generator is wrapped so that every
output frame carries the counter of the input frame it was made from, and a measuring sink reads
it back: glass-to-glass latency is the time from the pattern frame being read to its generated
frame being written. Printed: the start-up (building the generator, its warm-up, the time to the
first frame out), the first frame after a hard cut, output fps, latency (median, p95), the
chunk time split into annotator / text / encode / denoise / to_vae (the ``stages`` layout's copy
to the VAE's device) / decode / to_frames / publish, the engine's own overhead per frame
(everything but the model, the annotator and the sinks), the publisher's frame-interval jitter,
peak memory, and where each part ran (the placement, one line per device).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vacelive.bridges.base import BridgeState, Sink, Source
from vacelive.bridges.testpattern import read_stamp, write_stamp
from vacelive.engine.chunk import Chunk
from vacelive.engine.frames import CHUNK_FRAMES
from vacelive.engine.generator import PendingFrames, overlaps

BENCH_SCRIPTS = ("bench_model.py", "bench_vae.py", "bench_vace.py", "bench_lora.py", "bench_annotators.py",
                 "bench_bridges.py")


class StampedSource(Source):
    """Wraps the test pattern; remembers when each stamped frame was read."""

    def __init__(self, inner: Source) -> None:
        self.inner = inner
        self.name = inner.name
        self.read_at: dict[int, float] = {}

    def open(self) -> None:
        self.inner.open()

    def read(self, timeout: float = 0.1) -> np.ndarray | None:
        frame = self.inner.read(timeout)
        self.state = self.inner.state
        if frame is not None:
            stamp = read_stamp(frame)
            if stamp is not None:
                self.read_at[stamp] = time.monotonic()
        return frame

    def close(self) -> None:
        self.inner.close()


class StampRelay:
    """Wraps a generator: stamps each output frame with the counter of its input frame (a
    pipelined generator's frames when they come, so that its chunks still overlap)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.relay_ms: list[float] = []

    @property
    def mode(self) -> str:
        return self.inner.mode

    @property
    def warnings(self) -> list[str]:
        return self.inner.warnings

    @property
    def timings(self) -> dict[str, float]:
        return self.inner.timings

    @property
    def pipelined(self) -> bool:
        return overlaps(self.inner)

    def submit(self, chunk: Chunk) -> PendingFrames:
        return StampedFrames(self, chunk, self.inner.submit(chunk))

    def generate(self, chunk: Chunk) -> np.ndarray:
        return self.stamp(chunk, self.inner.generate(chunk))

    def stamp(self, chunk: Chunk, frames: np.ndarray) -> np.ndarray:
        """A copy of ``chunk``'s output ``frames``, each with its input frame's counter."""
        started = time.perf_counter()
        frames = frames.copy()
        inputs = chunk.frames[CHUNK_FRAMES - len(frames):]  # output i shows input i (first chunk: the last 9)
        for out, source in zip(frames, inputs):
            stamp = read_stamp(source)
            if stamp is not None:
                write_stamp(out, stamp)
        self.relay_ms.append((time.perf_counter() - started) * 1000.0)
        return frames

    def reset(self) -> None:
        self.inner.reset()

    def warm_up(self, snapshot: dict[str, Any]) -> float:
        return self.inner.warm_up(snapshot)


@dataclass
class StampedFrames:
    """A pipelined generator's frames to come, stamped by the relay when they do."""

    relay: StampRelay
    chunk: Chunk
    inner: PendingFrames
    ready_at: float = 0.0  # once stamped, as with a generator that does not overlap (the relay's time counts)

    @property
    def timings(self) -> dict[str, float]:
        return self.inner.timings

    def result(self) -> np.ndarray:
        frames = self.relay.stamp(self.chunk, self.inner.result())
        self.ready_at = time.monotonic()
        return frames


class MeasuringSink(Sink):
    """Reads the stamp of every frame written and records its glass-to-glass latency."""

    def __init__(self, source: StampedSource) -> None:
        self.name = "measure"
        self.source = source
        self.latency_ms: list[float] = []
        self.frames = 0
        self.unreadable = 0
        self.read_written: list[tuple[float, float]] = []  # (input read at, output written at), monotonic

    def open(self, width: int, height: int, fps: float) -> None:
        self.state = BridgeState.LIVE

    def write(self, frame: np.ndarray) -> None:
        now = time.monotonic()
        self.frames += 1
        stamp = read_stamp(frame)
        read_at = self.source.read_at.get(stamp) if stamp is not None else None
        if read_at is None:
            self.unreadable += 1
            return
        self.latency_ms.append((now - read_at) * 1000.0)
        self.read_written.append((read_at, now))

    def first_written_after(self, moment: float) -> float | None:
        """When the first frame made from an input read after ``moment`` was written (monotonic)."""
        return next((written for read_at, written in self.read_written if read_at > moment), None)

    def close(self) -> None:
        self.state = BridgeState.CLOSED


@dataclass
class BenchResult:
    """Figures of one end-to-end run."""

    model: str
    device: str
    width: int
    height: int
    steps: int
    annotator: str
    target_fps: float
    seconds: float
    load_s: float  # building the generator (weights, or random values, onto the device)
    warmup_s: float  # its warm-up (compilation, kernel selection) before the clock starts
    first_frame_s: float | None  # from the start of the command to the first generated frame out
    after_cut_s: float | None  # from a hard cut to the first frame of the new stream out
    output_fps: float
    generated_fps: float
    chunks: int
    stalls: int
    latency_ms_median: float
    latency_ms_p95: float
    chunk_ms_median: float
    split_ms: dict[str, float]
    engine_overhead_ms_per_frame: float
    jitter_ms_std: float
    jitter_ms_p99: float
    peak_rss_mb: float | None
    peak_gpu_mb: float | None
    placement: list[str] = field(default_factory=list)  # what each device ran, one line per device


def _percentile(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 2) if values else 0.0


def _peak_rss_mb() -> float | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(kb / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def run_bench(overrides: dict[str, Any], seconds: float, warmup_s: float,
              random_weights: bool = False) -> BenchResult:
    """Run the engine for ``warmup_s + seconds`` and measure the last ``seconds`` (with
    ``random_weights``, the model's real size with random values: no weights needed)."""
    from vacelive import bridges
    from vacelive.engine.app import build_store
    from vacelive.engine.loop import Engine
    from vacelive.engine.pipeline import build_generator
    from vacelive.engine.runtime import load_manifest, resolve_device
    from vacelive import annotators

    started = time.monotonic()
    store = build_store(overrides=dict(overrides, source="testpattern", sink=["null"]))
    device = resolve_device(store.get("device"))
    manifest = None if random_weights else load_manifest(store)
    generator = StampRelay(build_generator(store, manifest, device, random_weights=random_weights))
    placement = generator.inner.placement
    load_s = time.monotonic() - started
    warmup = generator.warm_up(store.snapshot())
    width, height, fps = store.get("width"), store.get("height"), store.get("fps")
    source = StampedSource(bridges.open_source("testpattern", width=width, height=height, fps=fps))
    sink = MeasuringSink(source)
    def make_annotator(name: str) -> Any:
        if random_weights and name == "depth":  # the real network with random values
            from vacelive.annotators.depth import DepthAnnotator
            from vacelive.annotators.depth_model import VITS, DepthAnythingV2
            return DepthAnnotator(DepthAnythingV2(VITS).eval(), device=placement.annotators)
        return annotators.make_annotator(name, weights=manifest, device=placement.annotators)

    engine = Engine(
        store, generator, source, [sink],
        make_annotator=make_annotator,
        make_mask_source=lambda name: annotators.make_mask_source(name, weights=manifest,
                                                                  resolve_path=store.resolve_media),
    )
    torch = sys.modules.get("torch")
    cuda = torch is not None and device.startswith("cuda")
    engine.start()
    time.sleep(warmup_s)
    metrics = engine.metrics
    metrics.timings.clear()
    engine.publisher.intervals.clear()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    start_frames, start_chunks, start_stalls = sink.frames, metrics.chunks_done, metrics.stalls
    start_latency, start_relay = len(sink.latency_ms), len(generator.relay_ms)
    time.sleep(seconds)
    frames, chunks, stalls = sink.frames - start_frames, metrics.chunks_done - start_chunks, metrics.stalls - start_stalls
    latency = sink.latency_ms[start_latency:]
    relay = generator.relay_ms[start_relay:]
    intervals_ms = np.asarray(engine.publisher.intervals, dtype=np.float64) * 1000.0
    first_out = sink.read_written[0][1] if sink.read_written else None
    cut_at = time.monotonic()
    engine.hard_cut()
    deadline = cut_at + max(30.0, 10 * seconds)
    while sink.first_written_after(cut_at) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    after_cut = sink.first_written_after(cut_at)
    engine.stop(60.0)
    split = {name: round(metrics.median_ms(name) * (CHUNK_FRAMES if name == "annotate" else 1), 2)
             for name in ("annotate", "text", "encode", "denoise", "to_vae", "decode", "to_frames")}
    split["publish"] = round(metrics.median_ms("publish") * CHUNK_FRAMES, 2)
    chunk_ms = [ms for ms in metrics.chunk_ms][-max(chunks, 1):]
    relay_median = float(np.median(relay)) if relay else 0.0
    overhead = (metrics.median_ms("resize") + metrics.median_ms("annotator_stage")
                + metrics.median_ms("assemble") / CHUNK_FRAMES + metrics.median_ms("publish"))
    period_ms = 1000.0 / fps
    return BenchResult(
        model=store.get("model"), device=device, width=width, height=height, steps=store.get("steps"),
        annotator=store.get("annotator"), target_fps=fps, seconds=seconds,
        load_s=round(load_s, 2), warmup_s=round(warmup, 2),
        first_frame_s=round(first_out - started, 2) if first_out is not None else None,
        after_cut_s=round(after_cut - cut_at, 3) if after_cut is not None else None,
        output_fps=round(frames / seconds, 2),
        generated_fps=round(chunks * CHUNK_FRAMES / seconds, 2),
        chunks=chunks, stalls=stalls,
        latency_ms_median=_percentile(latency, 50), latency_ms_p95=_percentile(latency, 95),
        chunk_ms_median=round(float(np.median(chunk_ms)) - relay_median, 2) if chunk_ms else 0.0,
        split_ms=split,
        engine_overhead_ms_per_frame=round(overhead, 3),
        jitter_ms_std=round(float(intervals_ms.std()), 3) if intervals_ms.size else 0.0,
        jitter_ms_p99=round(float(np.percentile(np.abs(intervals_ms - period_ms), 99)), 3) if intervals_ms.size else 0.0,
        peak_rss_mb=_peak_rss_mb(),
        peak_gpu_mb=round(torch.cuda.max_memory_allocated() / 2**20, 1) if cuda else None,
        placement=generator.inner.placement_lines(),
    )


def print_result(result: BenchResult) -> None:
    """A readable table of the figures."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"vacelive bench: {result.model} on {result.device}, {result.width}x{result.height}, "
                        f"{result.steps} steps, annotator {result.annotator}, target {result.target_fps:g} fps")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name, value in asdict(result).items():
        if name == "split_ms":
            for step, ms in value.items():
                table.add_row(f"chunk split: {step} (ms/chunk)", f"{ms:.2f}")
        elif name == "placement":
            for line in value:
                table.add_row("placement", line)
        elif name not in ("model", "device", "width", "height", "steps", "annotator", "target_fps"):
            table.add_row(name, "-" if value is None else str(value))
    Console().print(table)


def run_scripts(root: Path) -> int:
    """Run the component benchmarks under ``bench/`` (a source checkout only)."""
    bench_dir = root / "bench"
    if not bench_dir.is_dir():
        print(f"no bench/ folder under {root}: the component benchmarks need a source checkout")
        return 1
    status = 0
    for script in BENCH_SCRIPTS:
        path = bench_dir / script
        if not path.is_file():
            continue
        print(f"\n=== {script} ===", flush=True)
        env = dict(os.environ, PYTHONPATH=str(root))
        status |= subprocess.call([sys.executable, str(path)], cwd=root, env=env)
    return status


def bench_overrides(args: Any) -> dict[str, Any]:
    """The parameters ``vacelive bench``'s flags set."""
    return {name: value for name, value in (
        ("model", args.model), ("device", args.device), ("width", args.width), ("height", args.height),
        ("steps", args.steps), ("annotator", args.annotator), ("fps", args.fps), ("weights_dir", args.weights_dir),
        ("vae", args.vae), ("compile", args.compile), ("devices", args.devices), ("layout", args.layout))
        if value is not None}


def bench_main(args: Any) -> int:
    """Entry point of ``vacelive bench``."""
    try:
        result = run_bench(bench_overrides(args), args.seconds, args.warmup, random_weights=args.random_weights)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:  # bad flags, missing weights: one line
        print(f"cannot bench: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(asdict(result), indent=2))
    else:
        print_result(result)
    if args.scripts:
        return run_scripts(Path(__file__).resolve().parent.parent)
    return 0
