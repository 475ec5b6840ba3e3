"""The pipeline built from a weights folder (tiny-config checkpoints written here), through the
same calls a real folder takes at start: ``load_manifest`` then ``build_generator``."""

import numpy as np
import torch
from safetensors.torch import save_file

from vacelive.engine.chunk import Chunk
from vacelive.engine.model import CONFIGS, WanModel
from vacelive.engine.pipeline import RANDOM_TINY_LABEL, build_generator
from vacelive.engine.runtime import load_manifest
from vacelive.engine.state import ParamStore
from vacelive.engine.vace import VaceBranch, default_vace_layers
from tests.weight_files import tiny_dit_state

SIZE = 64


def _vace_state(seed: int) -> dict[str, torch.Tensor]:
    """A tiny VACE branch with non-zero projections, as an official VACE file holds it."""
    torch.manual_seed(seed)
    cfg = CONFIGS["tiny"]
    model = WanModel(cfg)
    branch = VaceBranch(model.blocks, default_vace_layers(cfg.num_layers), cfg.dim, cfg.patch_size)
    with torch.no_grad():
        for name, p in branch.named_parameters():
            if "proj" in name:
                p.copy_(torch.randn_like(p) * 0.2)
    return {k: v.contiguous() for k, v in branch.state_dict().items()}


def test_a_weights_folder_builds_the_pipeline_with_its_own_weights(tmp_path):
    folder = tmp_path / "weights"
    folder.mkdir()
    dit, vace = tiny_dit_state(seed=5), _vace_state(seed=6)
    save_file(dit, str(folder / "dit.safetensors"))
    save_file(vace, str(folder / "vace.safetensors"))
    (folder / "vacelive-weights.toml").write_text('[files]\ndit = "dit.safetensors"\nvace = "vace.safetensors"\n')
    store = ParamStore()
    (tmp_path / "media").mkdir()
    for key, value in {"width": SIZE, "height": SIZE, "device": "cpu", "vae": "tae", "model": "tiny",
                       "weights_dir": str(folder), "prompt_cache": str(tmp_path / "pc"),
                       "media_dir": str(tmp_path / "media")}.items():
        store.set(key, value, live=False)
    pipeline = build_generator(store, load_manifest(store), "cpu")
    assert pipeline.name != RANDOM_TINY_LABEL and "tiny" in pipeline.name
    model = pipeline.causal.model
    for key, value in model.state_dict().items():  # the file's weights, not the random tiny ones
        assert torch.equal(value.float(), dit[key].float()), key
    branch = pipeline.vace.injector.branch
    assert not branch.is_zero()
    for key, value in branch.state_dict().items():
        if key in vace:
            assert torch.equal(value.float(), vace[key].float()), key
    rng = np.random.default_rng(0)
    chunk = Chunk(index=0, epoch=0, frames=rng.integers(0, 256, (12, SIZE, SIZE, 3), dtype=np.uint8),
                  control=rng.integers(0, 256, (12, SIZE, SIZE, 3), dtype=np.uint8),
                  masks=np.ones((12, SIZE, SIZE), np.float32), snapshot=store.snapshot(), captured_at=[0.0] * 12)
    out = pipeline.generate(chunk)
    assert out.shape == (9, SIZE, SIZE, 3) and out.dtype == np.uint8
    assert pipeline.mode == "control+inpaint" and pipeline.vace.active  # VACE weights in effect
