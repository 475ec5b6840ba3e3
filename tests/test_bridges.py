"""Bridges that run on Linux, for real: factory, test pattern, null, files, images; error paths."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vacelive.bridges import (
    SINK_SCHEMES,
    SOURCE_SCHEMES,
    BridgeError,
    BridgeState,
    open_sink,
    open_source,
    parse_spec,
)
from vacelive.bridges.testpattern import TestPattern, read_stamp, write_stamp
from vacelive.engine.frames import crop_to_fill

W, H = 160, 96


# ---------------------------------------------------------------- factory and specs


def test_spec_grammar():
    spec = parse_spec("file:C:/clips/a.mp4?loop=0&x=1")
    assert (spec.scheme, spec.arg, spec.options) == ("file", "C:/clips/a.mp4", {"loop": "0", "x": "1"})
    assert spec.flag("loop", True) is False and spec.number("x", 0) == 1.0
    assert parse_spec("testpattern?moving=0").options == {"moving": "0"}
    assert parse_spec("NDI:TD (out)").scheme == "ndi" and parse_spec("NDI:TD (out)").arg == "TD (out)"
    with pytest.raises(BridgeError, match="boolean"):
        parse_spec("file:a?loop=maybe").flag("loop", True)


def test_scheme_tables_cover_the_factory():
    assert [s for s, _ in SOURCE_SCHEMES] == ["testpattern", "file", "images", "camera", "ndi", "spout", "syphon"]
    assert [s for s, _ in SINK_SCHEMES] == ["file", "ndi", "spout", "syphon", "virtualcam", "null"]
    assert all(isinstance(d, str) and d for _, d in SOURCE_SCHEMES + SINK_SCHEMES)


def test_unknown_schemes_list_the_valid_ones():
    with pytest.raises(BridgeError, match="valid source schemes: testpattern, file, images"):
        open_source("rtsp://cam", width=W, height=H, fps=30)
    with pytest.raises(BridgeError, match="valid sink schemes: file, ndi, spout, syphon, virtualcam, null"):
        open_sink("screen")
    with pytest.raises(BridgeError, match="takes no argument"):
        open_sink("null:x")


def test_factory_constructs_without_opening():
    for spec in ("testpattern", "file:/nonexistent.mp4", "images:/nonexistent", "camera:3", "ndi:x",
                 "spout:x", "syphon:x"):
        source = open_source(spec, width=W, height=H, fps=30)
        assert source.name == spec and source.state is BridgeState.CLOSED
    for spec in ("file:/tmp/x.mp4", "ndi:x", "spout:x", "syphon:x", "virtualcam", "null"):
        sink = open_sink(spec)
        assert sink.name == spec and sink.state is BridgeState.CLOSED


def test_importing_bridges_loads_no_optional_package():
    code = (
        "import sys, bridges\n"
        "for spec in ('ndi:x', 'spout:x', 'syphon:x'):\n"
        "    bridges.open_source(spec, width=8, height=8, fps=1)\n"
        "bridges.open_sink('virtualcam')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('cyndilib', 'SpoutGL', 'syphon', 'pyvirtualcam')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(__file__)))
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------- test pattern


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**24 - 1))
def test_stamp_round_trip(counter):
    frame = np.full((H, W, 3), 90, np.uint8)
    assert read_stamp(write_stamp(frame, counter)) == counter


def test_stamp_wraps_and_rejects_frames_without_a_code():
    assert read_stamp(write_stamp(np.zeros((H, W, 3), np.uint8), 2**24 + 5)) == 5
    assert read_stamp(np.zeros((H, W, 3), np.uint8)) is None
    assert read_stamp(np.full((H, W, 3), 255, np.uint8)) is None
    assert read_stamp(TestPattern(W, H)._background[:, :W]) is None


@pytest.mark.parametrize("size", [(416, 240), (1280, 720), (1920, 1080), (200, 112), (640, 480)])
def test_stamp_survives_crop_to_fill_and_jpeg(size):
    frame = TestPattern(832, 480).render(1_234_567)
    resized = crop_to_fill(frame, *size)
    assert read_stamp(resized) == 1_234_567
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(resized, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 30])
    noisy = cv2.cvtColor(cv2.imdecode(jpeg, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert ok and read_stamp(noisy) == 1_234_567
    rng = np.random.default_rng(1)
    grainy = np.clip(resized.astype(int) + rng.integers(-25, 26, resized.shape), 0, 255).astype(np.uint8)
    assert read_stamp(grainy) == 1_234_567


def test_pattern_moves_and_has_structure():
    pattern = TestPattern(W, H)
    a, b = pattern.render(0), pattern.render(10)
    assert a.shape == (H, W, 3) and a.dtype == np.uint8
    assert np.abs(a.astype(int) - b).mean() > 5  # shapes and gradient moved
    edges = cv2.Canny(cv2.cvtColor(a, cv2.COLOR_RGB2GRAY), 50, 150)
    assert edges.mean() > 1  # something for edge/flow annotators
    still = TestPattern(W, H, moving=False)
    assert np.array_equal(still.render(1)[H // 4 : H * 3 // 4], still.render(9)[H // 4 : H * 3 // 4])


def test_testpattern_source_paces_itself_and_counts():
    source = open_source("testpattern", width=W, height=H, fps=50)
    with source:
        assert source.state is BridgeState.LIVE and source.fps == 50
        start = time.perf_counter()
        frames = [source.read(1.0) for _ in range(11)]
        elapsed = time.perf_counter() - start
    assert [read_stamp(f) for f in frames] == list(range(11))
    assert 0.17 < elapsed < 0.6  # 10 periods of 20 ms
    assert source.state is BridgeState.CLOSED


def test_testpattern_read_returns_none_before_the_next_frame_is_due():
    source = open_source("testpattern?moving=0", width=W, height=H, fps=2)
    source.open()
    assert source.read(0.01) is not None
    start = time.perf_counter()
    assert source.read(0.02) is None
    assert time.perf_counter() - start < 0.2
    source.close()


# ---------------------------------------------------------------- null


def test_null_sink_counts():
    sink = open_sink("null")
    sink.open(W, H, 30)
    for _ in range(5):
        sink.write(np.zeros((H, W, 3), np.uint8))
    assert sink.frames == 5 and sink.size == (W, H) and sink.state is BridgeState.LIVE
    sink.close()
    sink.close()
    with pytest.raises(BridgeError):
        sink.write(np.zeros((H, W, 3), np.uint8))


# ---------------------------------------------------------------- files


def _write_video(path, count, fps, size=(W, H)):
    sink = open_sink(f"file:{path}")
    sink.open(*size, fps)
    pattern = TestPattern(*size)
    for i in range(count):
        sink.write(pattern.render(i))
    sink.close()
    sink.close()
    return sink


def test_file_sink_to_file_source_round_trip(tmp_path):
    path = tmp_path / "clips" / "out.mp4"  # parent folders are created
    sink = _write_video(path, 30, 25.0)
    assert sink.frames == 30 and path.stat().st_size > 0

    source = open_source(f"file:{path}?loop=0", width=832, height=480, fps=60)
    source.open()
    assert source.fps == pytest.approx(25.0)
    stamps, start = [], time.perf_counter()
    while True:
        frame = source.read(0.5)
        if frame is None:
            break
        assert frame.shape == (H, W, 3)  # native size: the engine resizes
        stamps.append(read_stamp(frame))
    elapsed = time.perf_counter() - start
    assert stamps == list(range(30)) and source.finished
    assert elapsed > 29 / 25.0 * 0.9  # delivered at the file's rate, not as fast as it decodes
    assert source.state is BridgeState.LIVE
    source.close()
    source.close()
    assert source.state is BridgeState.CLOSED


def test_file_source_loops_by_default(tmp_path):
    path = tmp_path / "short.mp4"
    _write_video(path, 4, 200.0)
    with open_source(f"file:{path}", width=W, height=H, fps=30) as source:
        stamps = [read_stamp(source.read(1.0)) for _ in range(10)]
    assert stamps == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]


def test_file_source_missing_or_bad_file(tmp_path):
    missing = tmp_path / "nope.mp4"
    source = open_source(f"file:{missing}", width=W, height=H, fps=30)
    with pytest.raises(BridgeError, match=str(missing)):
        source.open()
    assert source.state is BridgeState.FAILED
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 10)
    with pytest.raises(BridgeError, match="junk.mp4"):
        open_source(f"file:{junk}", width=W, height=H, fps=30).open()
    with pytest.raises(BridgeError, match="give a path"):
        open_source("file:", width=W, height=H, fps=30)


def test_image_sequence_sink_then_images_source(tmp_path):
    folder = tmp_path / "frames"
    sink = open_sink(f"file:{folder}/")
    sink.open(W, H, 30)
    pattern = TestPattern(W, H)
    for i in range(3):
        sink.write(pattern.render(i))
    sink.close()
    assert sorted(os.listdir(folder)) == ["frame_000000.png", "frame_000001.png", "frame_000002.png"]
    (folder / "notes.txt").write_text("ignored")

    source = open_source(f"images:{folder}", width=W, height=H, fps=40)
    source.open()
    start = time.perf_counter()
    frames = [source.read(1.0) for _ in range(7)]
    elapsed = time.perf_counter() - start
    source.close()
    assert [read_stamp(f) for f in frames] == [0, 1, 2, 0, 1, 2, 0]  # lossless PNG, looping
    assert np.array_equal(frames[1], pattern.render(1))
    assert 0.12 < elapsed < 0.6  # 6 periods at 40 fps


def test_image_sequence_pattern_and_jpeg(tmp_path):
    sink = open_sink(f"file:{tmp_path}/seq/img_%03d.jpg")
    sink.open(W, H, 30)
    sink.write(TestPattern(W, H).render(41))
    sink.close()
    image = cv2.imread(str(tmp_path / "seq" / "img_000.jpg"))
    assert read_stamp(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)) == 41


def test_images_source_skips_unreadable_files(tmp_path):
    cv2.imwrite(str(tmp_path / "b.png"), np.zeros((10, 12, 3), np.uint8))
    (tmp_path / "a.png").write_bytes(b"broken")
    with open_source(f"images:{tmp_path}?loop=0", width=W, height=H, fps=100) as source:
        first = source.read(1.0)
        assert first.shape == (10, 12, 3)
        assert source.read(0.05) is None  # played once


def test_images_source_errors(tmp_path):
    with pytest.raises(BridgeError, match="no such folder"):
        open_source(f"images:{tmp_path}/missing", width=W, height=H, fps=30).open()
    with pytest.raises(BridgeError, match="no images"):
        open_source(f"images:{tmp_path}", width=W, height=H, fps=30).open()


def test_file_sink_failures_raise_bridge_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    sink = open_sink(f"file:{blocker}/out.mp4")  # parent is a file
    with pytest.raises(BridgeError, match="cannot create"):
        sink.open(W, H, 30)
    assert sink.state is BridgeState.FAILED

    with pytest.raises(BridgeError, match="even sizes"):
        open_sink(f"file:{tmp_path}/odd.mp4").open(W + 1, H, 30)

    sink = open_sink(f"file:{tmp_path}/seq/")
    sink.open(W, H, 30)
    (tmp_path / "seq" / "frame_000000.png").mkdir()  # the target is taken by a folder
    with pytest.raises(BridgeError, match="write failed|could not write"):
        sink.write(np.zeros((H, W, 3), np.uint8))
    with pytest.raises(BridgeError, match="sink is opened at"):
        sink.write(np.zeros((H, W + 2, 3), np.uint8))
    sink.close()


# ---------------------------------------------------------------- devices and OS-bound bridges


def test_camera_missing_is_a_clear_error():
    source = open_source("camera:7", width=W, height=H, fps=30)
    with pytest.raises(BridgeError, match="camera 7 could not be opened"):
        source.open()
    assert source.state is BridgeState.FAILED
    with pytest.raises(BridgeError, match="index"):
        open_source("camera:front", width=W, height=H, fps=30)


def test_virtualcam_without_a_device_is_a_clear_error():
    sink = open_sink("virtualcam")
    with pytest.raises(BridgeError, match="pyvirtualcam|virtual camera"):
        sink.open(W, H, 30)
    assert sink.state is BridgeState.FAILED


@pytest.mark.skipif(sys.platform == "win32", reason="Spout runs on Windows")
def test_spout_elsewhere_names_windows_and_spoutgl():
    for bridge in (open_source("spout:TD", width=W, height=H, fps=30), open_sink("spout:out")):
        with pytest.raises(BridgeError, match="Windows.*SpoutGL"):
            bridge.open() if hasattr(bridge, "read") else bridge.open(W, H, 30)
        assert bridge.state is BridgeState.FAILED


@pytest.mark.skipif(sys.platform == "darwin", reason="Syphon runs on macOS")
def test_syphon_elsewhere_names_macos_and_syphon_python():
    for bridge in (open_source("syphon:TD", width=W, height=H, fps=30), open_sink("syphon:out")):
        with pytest.raises(BridgeError, match="macOS.*syphon-python"):
            bridge.open() if hasattr(bridge, "read") else bridge.open(W, H, 30)
        assert bridge.state is BridgeState.FAILED


def test_ndi_without_cyndilib_is_a_clear_error(monkeypatch, tmp_path):
    import vacelive.bridges.ndi as ndi

    monkeypatch.setitem(sys.modules, "cyndilib", None)  # makes `import cyndilib` fail
    sink = open_sink("ndi:x")
    with pytest.raises(BridgeError, match=r"cyndilib: pip install 'vacelive\[ndi\]'"):
        sink.open(W, H, 30)
    assert sink.state is BridgeState.FAILED
    source = open_source("ndi:x", width=W, height=H, fps=30)
    with pytest.raises(BridgeError, match="cyndilib"):
        source.open()
    assert source.state is BridgeState.FAILED
    config = ndi.write_ndi_config(str(tmp_path), "127.0.0.1")  # the module works without cyndilib
    assert "127.0.0.1" in open(config, encoding="utf-8").read()
