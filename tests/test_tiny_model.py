"""The bundled tiny model, trained on synthetic shapes: it loads like real weights, control and
context_scale change what it draws, it draws where the control's shapes are, the prompt's colour
word colours it, a reference image gives its colour, and the demo's output follows the test
pattern's edges.

Each behaviour test compares two runs of the engine's generator on held-out clips (fixed seeds).
The thresholds come from ``python bench/bench_tiny.py`` (figures on the weights' card) with a
margin, not from these tests. What the trained model does not do yet (edges sharp enough for an
edge detector on held-out clips) is written as a strict expected failure: it starts failing the
day a better model makes it pass, so the mark gets removed.
"""

from __future__ import annotations

import gc
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from vacelive.engine.app import build_store
from vacelive.engine.pipeline import build_generator
from vacelive.engine.runtime import load_manifest
from vacelive.engine.tiny import TINY_LABEL, TINY_WEIGHTS
from vacelive.engine.tiny.quality import (
    DEMO_PROMPT,
    OUTLINE_SHOWN,
    EdgeMatch,
    TinyRunner,
    demo_edges,
    demo_pictures,
    edge_match,
    held_out_clips,
    mean_change,
    nearest_colour,
    outline_shown,
    redness,
    reference_gain,
    seam_ratio,
    shape_colour,
    shape_contrast,
    stutter_ratio,
)
from vacelive.engine.tiny.shapes import NO_COLOUR_PROMPT, prompt_for
from vacelive.engine.weights import WeightsManifest
from vacelive.engine.weights.check import CHECKERS

MAX_BUNDLE_BYTES = 20 * 2**20


@pytest.fixture(scope="module")
def runner(tmp_path_factory) -> TinyRunner:
    return TinyRunner(media=tmp_path_factory.mktemp("media"))


@pytest.fixture(scope="module")
def clips():
    return held_out_clips(3)


def test_bundled_weights_are_small_and_pass_the_weights_check():
    manifest = WeightsManifest.open(TINY_WEIGHTS)
    assert set(manifest.files) == {"dit", "vace", "tae", "t5"}
    assert sum(manifest.path(role).stat().st_size for role in manifest.files) <= MAX_BUNDLE_BYTES
    for role in manifest.files:
        assert CHECKERS[role](manifest.path(role)) == [], role
    assert (TINY_WEIGHTS / "CARD.md").is_file()


def test_a_runner_without_a_media_folder_removes_the_one_it_made():
    runner = TinyRunner()
    media = Path(runner.store.get("media_dir"))
    assert media.is_dir()
    del runner
    gc.collect()
    assert not media.exists()


def test_engine_default_is_the_trained_tiny_model():
    store = build_store(overrides={"device": "cpu"})
    pipeline = build_generator(store, load_manifest(store), "cpu")
    assert pipeline.name == TINY_LABEL
    assert not pipeline.vace.injector.branch.is_zero()  # trained VACE weights, not the zero branch


def test_control_changes_the_output_against_context_scale_0(runner, clips):
    for clip in clips:
        on, off = runner.run(clip, chunks=3), runner.run(clip, chunks=3, context_scale=0.0)
        assert mean_change(on.output, off.output) > 2.0  # bench: 17.84 on average over 16 clips
        assert mean_change(on.output, runner.run(clip, chunks=3).output) == 0.0  # same seed, same frames


def test_the_colour_word_of_the_prompt_colours_the_shapes(runner, clips):
    for clip in clips:
        red = runner.run(clip, chunks=2, prompt=prompt_for("red"))
        blue = runner.run(clip, chunks=2, prompt=prompt_for("blue"))
        shift = redness(shape_colour(red.output, red.inside)) - redness(shape_colour(blue.output, blue.inside))
        assert shift > 40, shift  # bench: 246.3 on average, 111.0 at least over 16 held-out clips


def test_it_draws_where_the_control_puts_shapes_only_with_control(runner):
    # bench: shape contrast 70.4 with control vs 5.1 at context_scale 0 over 16 clips; here the first 8
    # of them, with a wide margin
    on, off = [], []
    for clip in held_out_clips(8):
        with_control, without = runner.run(clip, chunks=4), runner.run(clip, chunks=4, context_scale=0.0)
        on.append(shape_contrast(with_control.output, with_control.inside))
        off.append(shape_contrast(without.output, without.inside))
    assert np.mean(on) > 2 * np.mean(off) + 1.0, (on, off)


@pytest.mark.xfail(strict=True, reason="the trained tiny model draws blurry patches: their edges are too soft for "
                   "an edge detector on held-out clips (bench: edge F 0.259 pooled over 16 clips; 0.0 on these three)")
def test_output_follows_the_control_edges(runner, clips):
    on = sum((edge_match(run.output, run.input) for run in (runner.run(clip, chunks=3) for clip in clips)),
             EdgeMatch())
    off = sum((edge_match(run.output, run.input)
               for run in (runner.run(clip, chunks=3, context_scale=0.0) for clip in clips)), EdgeMatch())
    assert on.f_score > 0.3 and on.f_score > off.f_score + 0.15


@pytest.fixture(scope="module")
def shown_clips():
    """The first held-out clips whose edge control shows their shapes (a reference colours what
    the model draws, and it draws what the control shows)."""
    return [clip for clip in held_out_clips(12) if outline_shown(clip) >= OUTLINE_SHOWN][:3]


def test_a_reference_image_brings_the_shapes_nearer_its_colour(runner, shown_clips):
    gains, changes = [], []
    for clip in shown_clips:
        with_ref = runner.run(clip, chunks=2, prompt=NO_COLOUR_PROMPT, reference=True)
        without = runner.run(clip, chunks=2, prompt=NO_COLOUR_PROMPT)
        changes.append(mean_change(with_ref.output, without.output))
        gains.append(reference_gain(with_ref, without, clip.colour))
    # bench: 106.7 nearer on average over its 12 such clips; the frames change by 11.76 on average
    assert np.mean(gains) > 35 and np.mean(changes) > 4, (gains, changes)


def test_a_reference_image_alone_names_the_colour(runner, shown_clips):
    # bench: the reference's colour is the nearest in 100 % of its 12 clips (33 % without it)
    for clip in shown_clips:
        with_ref = runner.run(clip, chunks=2, prompt=NO_COLOUR_PROMPT, reference=True)
        assert nearest_colour(shape_colour(with_ref.output, with_ref.inside)) == clip.colour


def test_stutter_ratio_is_about_one_for_even_motion_and_high_for_held_frames():
    frames = held_out_clips(1)[0].frames(0, 33)
    latent_frame = [0] + [4 * ((j + 3) // 4) for j in range(1, 33)]  # frame 0 alone, then 1-4, 5-8, ...
    assert stutter_ratio(frames) < 1.2
    assert stutter_ratio(frames[latent_frame]) > 10


def test_the_output_moves_evenly_and_chunks_join_without_a_seam(runner, clips):
    runs = [runner.run(clip, chunks=3) for clip in clips]
    stutter = np.mean([stutter_ratio(run.output) for run in runs])
    seam = np.mean([seam_ratio(run.outputs) for run in runs])
    # bench: stutter 1.7, seam 1.73 (the fifth run's: 13.8 and 4.54)
    assert stutter < 2 and seam < 2.5, (stutter, seam)


def test_demo_redraws_the_test_pattern_shapes_along_their_edges(tmp_path):
    """The demo's command, shortened: the output panel of the side-by-side preview follows the
    input panel's edges far better than those of the pattern half a run later."""
    pictures = demo_pictures(tmp_path, 48)
    assert len(pictures) >= 36
    shown, shifted = demo_edges(pictures)
    assert shown.f_score > shifted.f_score + 0.1


def test_the_demo_prompt_is_the_one_tasks_py_runs():
    spec = importlib.util.spec_from_file_location("tasks", Path(__file__).resolve().parents[1] / "tasks.py")
    tasks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tasks)
    assert tasks.DEMO_ARGS == ("--prompt", DEMO_PROMPT)
