"""Outpainting (the input placed smaller, the border generated) and live grabs into reference slots."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.fakes import RecordingSink, ScriptedGenerator
from tests.waiting import wait_for
from vacelive import annotators, bridges
from vacelive.engine.grabs import Grabber
from vacelive.engine.loop import Engine
from vacelive.engine.outpaint import Placement
from vacelive.engine.params import ParamError
from vacelive.engine.state import ParamStore
from vacelive.engine.vace.context import compose_frames, to_unit
from vacelive.engine.vace.mode import infer_mode

W, H = 64, 48


def test_placement_puts_the_shrunk_input_where_asked_and_masks_the_rest():
    placed = Placement.of(W, H, 0.5, 1.0, 0.0)  # top right
    assert placed == Placement(left=32, top=0, width=32, height=24)
    mask = placed.mask(H, W)
    assert mask[:24, 32:].max() == 0.0 and mask.sum() == W * H - 32 * 24
    inner = np.full((24, 32), 0.25, np.float32)
    assert placed.mask(H, W, inner)[:24, 32:].min() == 0.25
    image = np.full((H, W, 3), 9, np.uint8)
    canvas = placed.place(placed.shrink(image), (H, W, 3))
    assert (canvas[:24, 32:] == 9).all() and (canvas[24:] == 0).all() and (canvas[:, :32] == 0).all()


def test_the_vace_frames_keep_the_placed_input_and_generate_the_border():
    placed = Placement.of(W, H, 0.75, 0.5, 0.5)
    source = placed.place(placed.shrink(np.full((H, W, 3), 200, np.uint8)), (12, H, W, 3)[1:])[None].repeat(12, 0)
    control = np.full((12, H, W, 3), 50, np.uint8)
    masks = np.stack([placed.mask(H, W)] * 12)
    frames, mask = compose_frames(source, control, masks)
    frames, mask = frames[0].permute(1, 2, 3, 0).numpy(), mask[0].numpy()
    inside = (slice(None), slice(placed.top, placed.top + placed.height), slice(placed.left, placed.left + placed.width))
    assert np.allclose(frames[inside], to_unit(source)[inside]) and (mask[inside] == 0).all()
    assert np.allclose(frames[:, 0, 0], to_unit(control)[:, 0, 0]) and (mask[:, 0, 0] == 1).all()


def test_the_mode_says_outpaint_and_adds_inpaint_only_for_a_mask_inside():
    assert infer_mode(control=True, mask=True, outpaint=True) == "control+outpaint"
    assert infer_mode(control=True, mask=True, outpaint=True, inner_mask=True) == "control+outpaint+inpaint"
    assert infer_mode(mask=True, references=1) == "r2v+inpaint"


def test_the_live_loop_places_input_control_and_mask_when_outpainting():
    store = ParamStore()
    for name, value in {"width": W, "height": H, "fps": 25.0, "annotator": "edge", "outpaint_scale": 0.5,
                        "outpaint_x": 0.0, "outpaint_y": 1.0}.items():
        store.set(name, value, live=False)
    generator = ScriptedGenerator(W, H)
    engine = Engine(store, generator, bridges.open_source("testpattern", width=W, height=H, fps=25.0),
                    [RecordingSink()], make_annotator=annotators.make_annotator,
                    make_mask_source=annotators.make_mask_source)
    engine.start()
    try:
        assert wait_for(lambda: len(generator.chunks) >= 2, 30)
    finally:
        assert engine.stop() == []
    chunk = generator.chunks[-1]
    expected = Placement.of(W, H, 0.5, 0.0, 1.0).mask(H, W)  # bottom left
    assert chunk.masks is not None and all(np.array_equal(m, expected) for m in chunk.masks)
    border = expected == 1.0
    assert not chunk.frames[:, border].any() and chunk.frames[:, ~border].any()
    assert not chunk.control[:, border].any()  # the edge map sits inside the placed input only
    assert engine.metrics.mask_coverage == pytest.approx(75.0)


def test_a_grab_writes_the_current_frame_into_the_slot(tmp_path):
    store = ParamStore()
    store.set("media_dir", str(tmp_path), live=False)
    frame = np.random.default_rng(1).integers(0, 255, (H, W, 3), dtype=np.uint8)
    current = {"frame": None}
    grabber = Grabber(store, lambda: current["frame"], "the input")
    with pytest.raises(ParamError, match="no frame from the input yet"):
        store.set("reference_2_grab", True)
    assert store.get("reference_2") == ""
    current["frame"] = frame
    store.set("reference_2_grab", True)
    path = store.get("reference_2")
    assert path.startswith("grabs/reference_2-") and path.endswith(".png")
    saved = cv2.cvtColor(cv2.imread(str(tmp_path / path)), cv2.COLOR_BGR2RGB)
    assert np.array_equal(saved, frame)  # lossless
    assert grabber.grab("keyframe_last") != path and store.get("keyframe_last").startswith("grabs/keyframe_last-")
    store.set("reference_2", "")  # clears the slot
    assert store.get("reference_2") == ""


def test_a_grab_into_a_reference_makes_the_real_pipeline_r2v(tmp_path):
    from vacelive.engine.app import build_store
    from vacelive.engine.pipeline import build_generator

    store = build_store(None, {"media_dir": str(tmp_path), "annotator": "edge", "steps": 1})
    engine = Engine(store, build_generator(store, None, "cpu"),
                    bridges.open_source("testpattern", width=store.get("width"), height=store.get("height"),
                                        fps=store.get("fps")),
                    [RecordingSink()], make_annotator=annotators.make_annotator,
                    make_mask_source=annotators.make_mask_source)
    Grabber(store, lambda: engine.source_reader.latest, "the input")
    engine.start()
    try:
        assert wait_for(lambda: engine.metrics.chunks_done >= 1, 120)
        assert engine.metrics.mode.startswith("control")
        store.set("reference_1_grab", True)
        assert wait_for(lambda: engine.metrics.mode.startswith("r2v+control"), 120), engine.metrics.mode
        assert engine.metrics.references == ["reference_1"]
    finally:
        assert engine.stop(60) == []
