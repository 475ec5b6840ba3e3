"""Cost per frame of every bridge that runs on this machine, at the engine's resolution.

    python bench/bench_bridges.py [--width 832 --height 480] [--frames 120] [--no-ndi]

Pacing is taken out of the figures: sources are driven at a very high fps (files are written
at 10000 fps for the file-source figure), so what is measured is the work per frame (render,
decode, encode, convert). NDI runs on loopback (a temporary ``NDI_CONFIG_DIR`` is made when none
is set): the send figure is an unclocked ``write()``; the latency figure is the time from
the return of ``write()`` (a 30 fps clocked stream: it returns once the frame's slot came and it
is sent) to the same frame (by its stamp) coming out of ``read()``,
i.e. NDI encode + transport + decode + frame-sync + UYVY->RGB.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vacelive.bridges import open_sink, open_source
from vacelive.bridges.convert import rgb_to_uyvy, uyvy_to_rgb
from vacelive.bridges.testpattern import TestPattern, read_stamp

FAST = 1e4  # fps high enough that pacing never sleeps


def per_frame_ms(step: Callable[[int], object], frames: int) -> float:
    """Median wall time of ``step(i)`` over ``frames`` calls, in milliseconds."""
    times = []
    for i in range(frames):
        start = time.perf_counter()
        step(i)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def bench(width: int, height: int, frames: int, ndi: bool, work: Path) -> list[tuple[str, float]]:
    """Run every bridge benchmark, writing its files in the folder ``work``; returns (label, ms per
    frame) rows."""
    rows: list[tuple[str, float]] = []
    pattern = TestPattern(width, height)
    clip = [pattern.render(i) for i in range(frames)]

    source = open_source("testpattern", width=width, height=height, fps=FAST)
    source.open()
    rows.append(("testpattern read (render + stamp)", per_frame_ms(lambda i: source.read(1.0), frames)))
    source.close()
    rows.append(("read_stamp", per_frame_ms(lambda i: read_stamp(clip[i]), frames)))

    sink = open_sink("null")
    sink.open(width, height, 30)
    rows.append(("null write", per_frame_ms(lambda i: sink.write(clip[i]), frames)))

    sink = open_sink(f"file:{work / 'out.mp4'}")
    sink.open(width, height, 30)
    rows.append(("file sink write (.mp4, libx264 ultrafast)", per_frame_ms(lambda i: sink.write(clip[i]), frames)))
    sink.close()

    fast = open_sink(f"file:{work / 'fast.mp4'}")
    fast.open(width, height, FAST)
    for frame in clip:
        fast.write(frame)
    fast.close()
    source = open_source(f"file:{work / 'fast.mp4'}", width=width, height=height, fps=30)
    source.open()
    rows.append(("file source read (H.264 decode -> RGB)", per_frame_ms(lambda i: source.read(1.0), frames)))
    source.close()

    for extension in ("png", "jpg"):
        sink = open_sink(f"file:{work / extension}/f_%05d.{extension}")
        sink.open(width, height, 30)
        rows.append((f"file sink write (.{extension} sequence)", per_frame_ms(lambda i: sink.write(clip[i]), frames)))
        sink.close()
        source = open_source(f"images:{work / extension}", width=width, height=height, fps=FAST)
        source.open()
        rows.append((f"images source read (.{extension})", per_frame_ms(lambda i: source.read(1.0), frames)))
        source.close()

    packed = rgb_to_uyvy(clip[0]).reshape(-1)
    rows.append(("UYVY -> RGB (BT.709)", per_frame_ms(lambda i: uyvy_to_rgb(packed, width, height), frames)))
    if ndi:
        rows += bench_ndi(clip, width, height, work)
    return rows


def bench_ndi(clip: list[np.ndarray], width: int, height: int, work: Path) -> list[tuple[str, float]]:
    """NDI sender write cost, and write -> read latency of a 30 fps clocked stream on loopback
    (NDI restricted to 127.0.0.1 by a config in ``work`` unless NDI_CONFIG_DIR is set)."""
    if "NDI_CONFIG_DIR" not in os.environ:
        from vacelive.bridges.ndi import write_ndi_config

        folder = str(work / "ndi")
        write_ndi_config(folder, "127.0.0.1")
        os.environ["NDI_CONFIG_DIR"] = folder
    name = f"vacelive-bench-{os.getpid()}"
    source = open_source(f"ndi:{name}", width=width, height=height, fps=30)
    source.open()
    sink = open_sink(f"ndi:{name}")
    sink.open(width, height, 30)
    send = per_frame_ms(lambda i: sink.write(clip[i]), len(clip))
    sink.close()

    sink = open_sink(f"ndi:{name}?clock=1")  # paced by NDI at 30 fps
    sink.open(width, height, 30)
    sent: dict[int, float] = {}
    received: dict[int, float] = {}
    stop = threading.Event()

    def publish() -> None:
        for i, frame in enumerate(clip):
            if stop.is_set():
                return
            sink.write(frame)  # a clocked write returns when its 30 fps slot comes and it is sent
            sent[i] = time.perf_counter()

    thread = threading.Thread(target=publish)
    thread.start()
    deadline = time.monotonic() + len(clip) / 30 + 10
    while thread.is_alive() or len(received) < len(sent):
        if time.monotonic() > deadline:
            break
        frame = source.read(0.1)
        if frame is not None:
            stamp = read_stamp(frame)
            if stamp is not None:
                received.setdefault(stamp, time.perf_counter())
        elif not thread.is_alive():
            break
    stop.set()
    thread.join()
    sink.close()
    source.close()
    latencies = [received[i] - sent[i] for i in received if i in sent]
    rows = [("NDI send (RGB -> RGBX, unclocked)", send)]
    if latencies:
        rows.append((f"NDI write -> read latency, 30 fps loopback ({len(received)}/{len(sent)} frames)",
                     1000 * statistics.median(latencies)))
    return rows


def main() -> None:
    """Parse arguments, run, print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=832)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--no-ndi", action="store_true", help="skip NDI (cyndilib not installed)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vacelive-bench-") as work:
        rows = bench(args.width, args.height, args.frames, not args.no_ndi, Path(work))
    print(f"bridges at {args.width}x{args.height}, median of {args.frames} frames, {os.cpu_count()} CPU cores")
    for label, ms in rows:
        print(f"  {label:<62} {ms:7.2f} ms/frame")


if __name__ == "__main__":
    main()
