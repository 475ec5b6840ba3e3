"""The ``stages`` layout (``--devices cpu,cpu --layout stages``): the tiny pipeline with random
weights gives the frames of one device, submitted one by one or overlapped; in the live loop a
chunk decodes while the next one denoises (shown without timing: a decode that waits for the next
denoise would never end otherwise); a failing decode is a generator error the show survives; a
reload swaps the generator only once its decode in flight is done; and the placement is on the
status."""

import threading

import numpy as np
import pytest
import torch

from vacelive.engine.app import build_store
from vacelive.engine.chunk import Chunk
from vacelive.engine.loop import Engine
from vacelive.engine.pipeline import build_generator, placement_for
from vacelive.engine.runtime import build_engine
from tests.fakes import CountingSource, RecordingSink, ScriptedGenerator
from tests.waiting import wait_for

SIZE = 64
STAGES = ["cpu: DiT, VACE branch", "cpu: VAE, text encoder, annotators"]


def _store(tmp_path, devices: str, **overrides):
    torch.manual_seed(0)  # the random tiny autoencoder and text encoder are drawn from the global generator
    return build_store(overrides={"device": "cpu", "width": SIZE, "height": SIZE, "devices": devices,
                                  "layout": "stages", "annotator": "edge", "prompt_cache": str(tmp_path / "pc"),
                                  **overrides})


def _chunks(store) -> list[Chunk]:
    """Five chunks with control (VACE) and a prompt change."""
    rng = np.random.default_rng(0)
    chunks = []
    for index in range(5):
        store.set("prompt", "red shapes" if index < 2 else "blue shapes")
        frames = rng.integers(0, 256, (12, SIZE, SIZE, 3), dtype=np.uint8)
        control = rng.integers(0, 256, (12, SIZE, SIZE, 3), dtype=np.uint8)
        chunks.append(Chunk(index=index, epoch=0, frames=frames, control=control, masks=None,
                            snapshot=store.snapshot(), captured_at=[0.0] * 12))
    return chunks


CUT_BEFORE = 3  # a hard cut before this chunk


def _generated(pipeline, chunks) -> list[np.ndarray]:
    out = []
    for chunk in chunks:
        if chunk.index == CUT_BEFORE:
            pipeline.reset()
        out.append(pipeline.generate(chunk))
    return out


def _overlapped(pipeline, chunks) -> list[np.ndarray]:
    """Every chunk submitted before any frames are asked for (the cut waits for the decodes in flight)."""
    pending = []
    for chunk in chunks:
        if chunk.index == CUT_BEFORE:
            pipeline.reset()
        pending.append(pipeline.submit(chunk))
    return [p.result() for p in pending]


def _stages_pipeline(tmp_path, **overrides):
    store = _store(tmp_path, "cpu,cpu", **overrides)
    return store, build_generator(store, None, "cpu", random_weights=True)


def test_stages_give_the_frames_of_one_device_bit_for_bit(tmp_path):
    store = _store(tmp_path, "")
    single = _generated(build_generator(store, None, "cpu", random_weights=True), _chunks(store))
    store, pipeline = _stages_pipeline(tmp_path)
    assert pipeline.pipelined and pipeline.placement.lines() == STAGES
    chunks = _chunks(store)
    one_by_one = _generated(pipeline, chunks)
    assert pipeline.mode == "control"  # VACE ran
    assert {"denoise", "to_vae", "decode", "to_frames"} <= set(pipeline.timings)
    _, pipeline = _stages_pipeline(tmp_path)
    overlapped = _overlapped(pipeline, chunks)
    assert [len(f) for f in single] == [9, 12, 12, 9, 12]  # a fresh stream after the cut
    for i, (a, b, c) in enumerate(zip(single, one_by_one, overlapped)):
        np.testing.assert_array_equal(a, b, err_msg=f"chunk {i}, generate")
        np.testing.assert_array_equal(a, c, err_msg=f"chunk {i}, submitted ahead")
    assert np.abs(single[1].astype(int) - single[4].astype(int)).mean() > 1.0  # the chunks differ


def _engine(store, pipeline, sink):
    errors: list[str] = []
    engine = Engine(store, pipeline, CountingSource(SIZE, SIZE, 200.0), [sink],
                    make_annotator=lambda name: None, make_mask_source=lambda name: None, on_error=errors.append)
    return engine, errors


def test_the_loop_decodes_a_chunk_while_the_next_one_denoises(tmp_path):
    """The first decode waits until the second chunk's denoise has begun: without overlap the
    generator thread would be waiting for that decode, the wait would run out and fail the chunk."""
    store, pipeline = _stages_pipeline(tmp_path, fps=100.0)
    second_denoise = threading.Event()
    denoise, decode = pipeline.causal.generate_chunk, pipeline.vae.decode
    denoised, waited = [], []

    def counting_denoise(*args, **kwargs):
        denoised.append(len(denoised))
        if len(denoised) == 2:
            second_denoise.set()
        return denoise(*args, **kwargs)

    def waiting_decode(latents, cache):
        if not waited:
            waited.append(second_denoise.wait(timeout=30))
            assert waited[0], "the next chunk did not start denoising while this one decoded"
        return decode(latents, cache)

    pipeline.causal.generate_chunk = counting_denoise
    pipeline.vae.decode = waiting_decode
    sink = RecordingSink()
    engine, errors = _engine(store, pipeline, sink)
    engine.start()
    try:
        assert wait_for(lambda: engine.metrics.chunks_done >= 3 and sink.frames, timeout=60)
    finally:
        assert engine.stop() == []
    assert waited == [True]
    assert engine.metrics.generator_errors == 0 and not errors
    assert engine.metrics.median_ms("decode") > 0 and engine.metrics.median_ms("denoise") > 0


def test_a_failing_decode_is_a_generator_error_and_the_show_goes_on(tmp_path):
    """Decodes 2 to 4 fail: each is reported and counted like a generator failure, the publisher
    keeps its clock on the last good frame, three in a row reset the model, and it recovers."""
    store, pipeline = _stages_pipeline(tmp_path, fps=100.0)
    decode, reset = pipeline.vae.decode, pipeline.reset
    decodes, resets, published_at_failure = [], [], []
    sink = RecordingSink()

    def failing_decode(latents, cache):
        decodes.append(len(decodes))
        if 1 <= len(decodes) - 1 <= 3:
            published_at_failure.append(len(sink.frames))
            raise RuntimeError("decode failed on purpose")
        return decode(latents, cache)

    def counting_reset():
        resets.append(len(decodes))
        reset()

    pipeline.vae.decode = failing_decode
    pipeline.reset = counting_reset
    engine, errors = _engine(store, pipeline, sink)
    engine.start()
    try:
        assert wait_for(lambda: engine.metrics.generator_errors >= 3, timeout=60)
        assert wait_for(lambda: len(sink.frames) > published_at_failure[0] + 24, timeout=30)  # the clock went on
        assert wait_for(lambda: len(decodes) >= 6 and engine.metrics.last_error == "", timeout=60)  # recovered
    finally:
        assert engine.stop() == []
    assert engine.metrics.generator_errors == 3
    failures = [e for e in errors if "decode failed on purpose" in e]
    assert len(failures) == 3 and all(e.startswith("generator: ") for e in failures)
    assert "failure 3 in a row" in failures[-1]
    assert any(at >= 4 for at in resets)  # reset after the third failure, before the next chunk
    assert engine.metrics.stalls > 0  # the last good frame was held while no chunk came
    assert engine.metrics.chunks_done >= 2


def test_a_reload_swaps_the_generator_only_once_its_decodes_are_done(tmp_path):
    store, pipeline = _stages_pipeline(tmp_path, fps=100.0)
    decode = pipeline.vae.decode
    release, decoding, order = threading.Event(), threading.Event(), []

    def held_decode(latents, cache):
        if not decoding.is_set():
            decoding.set()
            release.wait(timeout=30)
            order.append("decoded")
        return decode(latents, cache)

    pipeline.vae.decode = held_decode
    engine, errors = _engine(store, pipeline, RecordingSink())
    engine.start()
    try:
        assert wait_for(decoding.is_set, timeout=60)
        swapper = threading.Thread(target=lambda: order.append(engine.swap(generator=ScriptedGenerator(SIZE, SIZE))))
        swapper.start()
        assert not wait_for(lambda: not swapper.is_alive(), timeout=2.0)  # held by the decode in flight
        release.set()
        swapper.join(30)
    finally:
        release.set()
        assert engine.stop() == []
    assert order == ["decoded", pipeline]  # the old generator came back after its decode
    assert not errors


def test_the_placement_is_on_the_status(tmp_path):
    store = _store(tmp_path, "cpu,cpu", source="testpattern", sink=["null"], model="tiny")
    engine = build_engine(store)
    dit, vae = engine.metrics.summary()["placement"]  # what each device runs and the memory it takes
    assert dit.startswith(f"{STAGES[0]} [DiT ") and "KV ring" in dit and "VACE ring" in dit and "VAE" not in dit
    assert vae.startswith(f"{STAGES[1]} [VAE ") and "text encoder" in vae and "DiT" not in vae
    assert placement_for(store, "cpu").lines() == STAGES
    assert engine.generator_stage.generator.pipelined


@pytest.mark.parametrize("devices, lines", [("", ["cpu: DiT, VACE branch, VAE, text encoder, annotators"]),
                                            ("cpu,cpu", STAGES)])
def test_placement_lines_one_per_device(tmp_path, devices, lines):
    assert placement_for(_store(tmp_path, devices), "cpu").lines() == lines
