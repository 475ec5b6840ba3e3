"""`vacelive weights check`: every tensor role is compared key by key with its model."""

import torch
from safetensors.torch import save_file

from vacelive.engine.model import CONFIGS, WanModel
from vacelive.engine.vace import VaceBranch, default_vace_layers
from vacelive.engine.weights import CHECKERS, module_shapes, weights_check
from vacelive.engine.weights.check import ROLE_MODELS


def test_autoencoder_checker_passes_a_matching_file_and_names_a_renamed_key(tmp_path):
    shapes = module_shapes(ROLE_MODELS["tae"])
    state = {k: torch.empty(v, dtype=torch.bfloat16) for k, v in shapes.items()}
    good = tmp_path / "taew2_1.pth"
    torch.save(state, good)
    assert CHECKERS["tae"](good) == []
    key = sorted(state)[3]
    state[key + "_renamed"] = state.pop(key)
    bad = tmp_path / "bad.pth"
    torch.save(state, bad)
    problems = CHECKERS["tae"](bad)
    assert f"missing key: {key} {list(shapes[key])}" in problems
    assert any(p.startswith(f"unexpected key: {key}_renamed") for p in problems)


def test_vace_checker_compares_the_vace_keys_only(tmp_path, capsys):
    cfg = CONFIGS["tiny"]
    branch = VaceBranch(WanModel(cfg).blocks, default_vace_layers(cfg.num_layers), cfg.dim, cfg.patch_size)
    state = {k: v.contiguous() for k, v in branch.state_dict().items()}
    state["blocks.0.norm3.weight"] = torch.ones(cfg.dim)  # base keys in a VACE file are ignored
    save_file(state, str(tmp_path / "vace.safetensors"))
    assert CHECKERS["vace"](tmp_path / "vace.safetensors") == []
    del state["vace_blocks.0.after_proj.weight"]
    save_file(state, str(tmp_path / "vace_missing.safetensors"))
    problems = CHECKERS["vace"](tmp_path / "vace_missing.safetensors")
    assert problems == [f"missing key: vace_blocks.0.after_proj.weight [{cfg.dim}, {cfg.dim}]"]


def test_weights_check_reports_each_role(tmp_path, capsys):
    torch.save({k: torch.empty(v, dtype=torch.bfloat16) for k, v in module_shapes(ROLE_MODELS["tae"]).items()},
               tmp_path / "taew2_1.pth")
    (tmp_path / "vacelive-weights.toml").write_text('[files]\ntae = "taew2_1.pth"\nvae = "Wan2.1_VAE.pth"\n')
    assert weights_check(str(tmp_path)) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    tae = lines.index("  tae: taew2_1.pth")
    block = lines[tae + 1:lines.index("  vae: Wan2.1_VAE.pth")]
    assert "    compared with: TAEW2.1" in block and block[-1] == "    ok"  # the tae file checked and found good
    assert not [line for line in block if "PROBLEM" in line or "MISSING" in line]
    assert "MISSING: weights role 'vae': file 'Wan2.1_VAE.pth' not found" in out
