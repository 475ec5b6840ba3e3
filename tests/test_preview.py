"""The control preview: what the model is given, on the output clock, never slowing the output."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from tests.fakes import RecordingSink, ScriptedGenerator
from tests.waiting import wait_for
from vacelive import annotators, bridges
from vacelive.engine.loop import Engine
from vacelive.engine.preview import PreviewFrame, compose, mask_overlay
from vacelive.engine.state import ParamStore

W, H, FPS = 64, 48, 25.0


def _store(**values) -> ParamStore:
    store = ParamStore()
    for name, value in {"width": W, "height": H, "fps": FPS, "annotator": "edge", **values}.items():
        store.set(name, value, live=False)
    return store


def _engine(store: ParamStore, generator, sinks, previews) -> Engine:
    source = bridges.open_source("testpattern", width=W, height=H, fps=FPS)
    return Engine(store, generator, source, sinks, make_annotator=annotators.make_annotator,
                  make_mask_source=annotators.make_mask_source, preview_sinks=previews)


def test_control_preview_frames_are_the_chunks_control_frames():
    generator, output, preview = ScriptedGenerator(W, H), RecordingSink(), RecordingSink()
    engine = _engine(_store(), generator, [output], [preview])
    engine.start()
    try:
        assert wait_for(lambda: len(preview.frames) >= 30, 30)
    finally:
        assert engine.stop() == []
    controls = np.concatenate([c.control for c in generator.chunks])  # every control frame made
    assert len(preview.frames) == len(output.frames)  # one preview frame per output tick
    matched = [next((i for i, c in enumerate(controls) if np.array_equal(c, p)), None) for p in preview.frames]
    assert None not in matched  # each preview frame is a control frame the model was given
    assert matched == sorted(matched)  # in order (a stall repeats the last one)
    edges = controls[matched[-1]]
    assert set(np.unique(edges)) <= {0, 255} and edges.any()  # Canny edge maps


def test_a_stalled_preview_sink_leaves_the_output_rate_unchanged():
    class Stalled(RecordingSink):
        def __init__(self) -> None:
            super().__init__()
            self.release = threading.Event()

        def write(self, frame):
            self.release.wait(10)  # never returns while the test runs
            super().write(frame)

    stalled, output = Stalled(), RecordingSink()
    engine = _engine(_store(), ScriptedGenerator(W, H), [output], [stalled])
    engine.start()
    try:
        assert wait_for(lambda: len(output.frames) >= 5, 30)
        start, before = time.monotonic(), len(output.frames)
        time.sleep(2.0)
        published = len(output.frames) - before
        elapsed = time.monotonic() - start
    finally:
        stalled.release.set()
        assert engine.stop() == []
    assert published >= 0.8 * FPS * elapsed  # the clock kept its rate (a third of the slack of 3x)
    assert stalled.frames == [] or len(stalled.frames) <= 3


def test_views_compose_input_control_mask_and_output():
    rng = np.random.default_rng(0)
    frame = PreviewFrame(output=rng.integers(0, 255, (H, W, 3), dtype=np.uint8),
                         input=rng.integers(0, 255, (H, W, 3), dtype=np.uint8),
                         control=np.zeros((H, W, 3), np.uint8), mask=np.zeros((H, W), np.float32))
    frame.mask[:, W // 2:] = 1.0
    control = compose("control", frame)
    assert np.array_equal(control[:, : W // 2], frame.control[:, : W // 2])  # kept: no tint
    assert (control[:, W // 2:, 0] > control[:, W // 2:, 1]).all()  # generated: tinted red
    assert np.array_equal(control, mask_overlay(frame.control, frame.mask))
    mask = compose("mask", frame)
    assert (mask[:, : W // 2] == 0).all() and (mask[:, W // 2:] == 255).all()
    assert np.array_equal(compose("input", frame), frame.input)
    side = compose("side_by_side", frame)
    assert side.shape == (H, 3 * W, 3)
    for i, panel in enumerate((frame.input, control, frame.output)):  # full size, labelled top-left
        part = side[:, i * W:(i + 1) * W]
        assert np.array_equal(part[H // 2:], panel[H // 2:]) and not np.array_equal(part[:8, :16], panel[:8, :16])
    reference = np.full((20, 30, 3), 200, np.uint8)
    with_strip = compose("control", frame, [reference])
    assert (with_strip[-H // 5:, : W // 5] == 200).any() and np.array_equal(with_strip[: H // 2], control[: H // 2])
    with pytest.raises(ValueError, match="preview 'nope'"):
        compose("nope", frame)


def test_cli_preview_sink_writes_one_edge_map_per_output_frame(tmp_path):
    preview = tmp_path / "preview"
    result = subprocess.run(
        [sys.executable, "-m", "vacelive.engine.cli", "run", "--source", "testpattern", "--annotator", "edge",
         "--preview-sink", f"file:{preview}/", "--sink", "null", "--frames", "24", "--no-tui", "--osc-port", "0",
         "--http-port", "0", "--no-mdns"], cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    import cv2

    frames = sorted(preview.glob("*.png"))
    assert len(frames) == 24
    for path in frames[::6]:
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        assert set(np.unique(image)) <= {0, 255} and image.any(), path  # binary edge maps (lossless PNG)
