"""The engine in process with the real tiny pipeline (no scripted generator): a test-pattern
source, the edge annotator and a luma mask, down to what the VACE context encoder is given."""

import numpy as np
import torch

from vacelive import annotators, bridges
from vacelive.engine.loop import Engine
from vacelive.engine.pipeline import build_generator
from vacelive.engine.state import ParamStore
from tests.fakes import RecordingSink
from tests.waiting import wait_for

SIZE = 64


class Recording:
    """The real pipeline, keeping each chunk it was given (delegates everything else)."""

    def __init__(self, pipeline):
        self.pipeline = pipeline
        self.chunks = []

    def generate(self, chunk):
        self.chunks.append(chunk)
        return self.pipeline.generate(chunk)

    def __getattr__(self, name):
        return getattr(self.pipeline, name)


def _randomize(branch, seed=1):
    """Non-zero VACE projections, so the branch is active (a folder without VACE weights has zeros)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for block in branch.vace_blocks:
            for proj in (getattr(block, "before_proj", None), block.after_proj):
                if proj is not None:
                    proj.weight.copy_(torch.randn(proj.weight.shape, generator=gen) * 0.2)
                    proj.bias.copy_(torch.randn(proj.bias.shape, generator=gen) * 0.2)


def test_tiny_pipeline_with_testpattern_edges_and_a_luma_mask(tmp_path):
    store = ParamStore()
    (tmp_path / "media").mkdir()
    for key, value in {"width": SIZE, "height": SIZE, "device": "cpu", "vae": "tae", "model": "tiny",
                       "prompt_cache": str(tmp_path / "pc"), "media_dir": str(tmp_path / "media")}.items():
        store.set(key, value, live=False)
    for key, value in {"fps": 25.0, "annotator": "edge", "mask_source": "luma", "mask_threshold": 0.5,
                       "mask_feather": 0}.items():
        store.set(key, value)
    pipeline = build_generator(store, None, "cpu")
    _randomize(pipeline.vace.injector.branch)
    encoded = []  # (frames [1, 3, T, H, W], mask [1, T, H, W]) as the VACE context encoder got them
    encode = pipeline.vace.encoder.encode
    pipeline.vace.encoder.encode = lambda frames, mask: (encoded.append((frames.clone(), mask.clone())),
                                                         encode(frames, mask))[1]
    generator = Recording(pipeline)
    sink = RecordingSink()
    errors = []
    engine = Engine(store, generator, bridges.open_source("testpattern", width=SIZE, height=SIZE, fps=25.0), [sink],
                    make_annotator=annotators.make_annotator, make_mask_source=annotators.make_mask_source,
                    on_error=errors.append)
    engine.start()
    try:
        assert wait_for(lambda: len(generator.chunks) >= 2 and len(sink.frames) >= 12, timeout=30)
    finally:
        assert engine.stop() == []
    assert engine.metrics.mode == "control+inpaint"  # inferred from what the chunks carried
    assert not [e for e in errors if "generator" in e]
    assert len(encoded) >= 2
    for chunk, (frames, mask) in zip(generator.chunks, encoded):
        rgb = chunk.frames.astype(np.float64)
        luma = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
        want = (luma > 127.5).astype(np.float32)
        unsure = np.abs(luma - 127.5) < 1.0  # OpenCV's fixed-point grey may round the other way
        assert chunk.masks.shape == (12, SIZE, SIZE) and chunk.masks.dtype == np.float32
        np.testing.assert_array_equal(chunk.masks[~unsure], want[~unsure])
        assert 0.0 < chunk.masks.mean() < 1.0  # the pattern has dark and light parts
        assert chunk.control.shape == (12, SIZE, SIZE, 3)
        assert set(np.unique(chunk.control).tolist()) <= {0, 255} and chunk.control.any()  # Canny, white on black
        # what the model was conditioned on: the chunk's masks, kept pixels from the input,
        # generated ones from the edge map
        np.testing.assert_array_equal(mask[0].numpy(), chunk.masks)
        composed = frames[0].permute(1, 2, 3, 0).numpy()  # (T, H, W, 3) in [-1, 1]
        keep = chunk.masks <= 0.5
        np.testing.assert_allclose(composed[keep], chunk.frames[keep] / 127.5 - 1.0, atol=1e-6)
        np.testing.assert_allclose(composed[~keep], chunk.control[~keep] / 127.5 - 1.0, atol=1e-6)
    out = np.stack(sink.frames)
    assert out.shape[1:] == (SIZE, SIZE, 3) and out.dtype == np.uint8 and out.any()
