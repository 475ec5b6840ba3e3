"""Weight loading: official safetensors, causal-generator .pt, diffusers names, LoRA, manifest."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from vacelive.engine.model import (
    CONFIGS,
    WanModel,
    WeightsMismatchError,
    from_diffusers,
    load_model,
    merge_lora,
    read_state_dict,
    save_weights,
    to_diffusers,
)
from vacelive.engine.weights import CHECKERS, WeightFileMissing, WeightsManifest, weights_check

DIM = CONFIGS["tiny"].dim


def _model(seed: int = 0) -> WanModel:
    torch.manual_seed(seed)
    return WanModel(CONFIGS["tiny"]).eval()


@torch.no_grad()
def _out(model: WanModel) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 16, 3, 4, 4, generator=gen)
    prompt = torch.randn(1, 5, 32, generator=gen)
    return model(x, 700.0, prompt)


def _renamed(sd: dict, old: str, new: str) -> dict:
    sd = dict(sd)
    sd[new] = sd.pop(old)
    return sd


def test_safetensors_round_trip_gives_identical_outputs(tmp_path):
    model = _model()
    save_weights(model, tmp_path / "w.safetensors")
    loaded = load_model(tmp_path / "w.safetensors", dtype=torch.float32)
    assert torch.equal(_out(loaded), _out(model))
    assert not any(p.requires_grad for p in loaded.parameters())


def test_load_casts_to_requested_dtype(tmp_path):
    save_weights(_model(), tmp_path / "w.safetensors")
    loaded = load_model(tmp_path / "w.safetensors", dtype=torch.bfloat16)
    assert {p.dtype for p in loaded.parameters()} == {torch.bfloat16}


def test_official_safetensors_renamed_key_is_named(tmp_path):
    sd = _renamed(_model().state_dict(), "blocks.1.cross_attn.k.weight", "blocks.1.cross_attn.key.weight")
    save_file(sd, str(tmp_path / "w.safetensors"))
    with pytest.raises(WeightsMismatchError) as err:
        load_model(tmp_path / "w.safetensors")
    msg = str(err.value)
    assert "missing key: blocks.1.cross_attn.k.weight" in msg
    assert "unexpected key: blocks.1.cross_attn.key.weight" in msg
    assert len(err.value.problems) == 2


def test_shape_mismatch_is_named(tmp_path):
    sd = dict(_model().state_dict())
    sd["head.head.weight"] = torch.zeros(3, DIM)
    save_file(sd, str(tmp_path / "w.safetensors"))
    with pytest.raises(WeightsMismatchError, match=rf"shape mismatch: head\.head\.weight is \[3, {DIM}\]"):
        load_model(tmp_path / "w.safetensors")


def test_generator_pt_prefers_ema_and_strips_model_prefix(tmp_path):
    ema, plain = _model(1), _model(2)
    torch.save(
        {
            "generator": {"model." + k: v for k, v in plain.state_dict().items()},
            "generator_ema": {"model." + k: v for k, v in ema.state_dict().items()},
        },
        tmp_path / "self_forcing_dmd.pt",
    )
    assert torch.equal(_out(load_model(tmp_path / "self_forcing_dmd.pt", dtype=torch.float32)), _out(ema))
    assert torch.equal(_out(load_model(tmp_path / "self_forcing_dmd.pt", dtype=torch.float32, which="generator")), _out(plain))


def test_generator_pt_renamed_key_is_named(tmp_path):
    sd = {"model." + k: v for k, v in _model().state_dict().items()}
    sd = _renamed(sd, "model.blocks.0.ffn.2.bias", "model.blocks.0.ffn.3.bias")
    torch.save({"generator_ema": sd}, tmp_path / "g.pt")
    with pytest.raises(WeightsMismatchError) as err:
        load_model(tmp_path / "g.pt")
    assert "missing key: blocks.0.ffn.2.bias" in str(err.value)
    assert "unexpected key: blocks.0.ffn.3.bias" in str(err.value)


def test_diffusers_names_and_round_trip(tmp_path):
    model = _model()
    save_weights(model, tmp_path / "d.safetensors", layout="diffusers")
    keys = set(load_file(str(tmp_path / "d.safetensors")))
    # names of diffusers' WanTransformer3DModel, written by hand
    for k in (
        "condition_embedder.text_embedder.linear_1.weight",
        "condition_embedder.time_embedder.linear_2.bias",
        "condition_embedder.time_proj.weight",
        "blocks.0.attn1.to_out.0.weight",
        "blocks.1.attn2.norm_k.weight",
        "blocks.0.norm2.weight",  # Wan's norm3 (affine cross-attention norm)
        "blocks.0.ffn.net.0.proj.weight",
        "blocks.0.ffn.net.2.bias",
        "blocks.1.scale_shift_table",
        "proj_out.weight",
        "scale_shift_table",
        "patch_embedding.weight",
    ):
        assert k in keys, k
    assert not any(".self_attn." in k or k.startswith("head.") or ".norm3." in k for k in keys)
    assert torch.equal(_out(load_model(tmp_path / "d.safetensors", dtype=torch.float32)), _out(model))
    sd = model.state_dict()
    assert from_diffusers(to_diffusers(sd)).keys() == sd.keys()


def test_diffusers_renamed_key_is_named(tmp_path):
    sd = _renamed(to_diffusers(_model().state_dict()), "blocks.0.attn2.to_k.weight", "blocks.0.attn2.to_kk.weight")
    save_file(sd, str(tmp_path / "d.safetensors"))
    with pytest.raises(WeightsMismatchError) as err:
        load_model(tmp_path / "d.safetensors")
    assert "missing key: blocks.0.cross_attn.k.weight" in str(err.value)
    assert "unexpected key: blocks.0.attn2.to_kk.weight" in str(err.value)


def test_diffusers_sharded_folder(tmp_path):
    sd = to_diffusers(_model().state_dict())
    keys = sorted(sd)
    shards = {"m-00001-of-00002.safetensors": keys[::2], "m-00002-of-00002.safetensors": keys[1::2]}
    for name, ks in shards.items():
        save_file({k: sd[k].contiguous() for k in ks}, str(tmp_path / name))
    index = {"weight_map": {k: name for name, ks in shards.items() for k in ks}}
    (tmp_path / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps(index))
    assert torch.equal(_out(load_model(tmp_path, dtype=torch.float32)), _out(_model()))


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_state_dict(tmp_path / "nope.pt")


def test_lora_merge_adds_scaled_product(tmp_path):
    model = _model()
    a, b = torch.randn(4, DIM), torch.randn(DIM, 4)
    lora = {
        "base_model.model.blocks.1.self_attn.q.lora_A.weight": a,
        "base_model.model.blocks.1.self_attn.q.lora_B.weight": b,
    }
    torch.save({"generator_lora": lora, "critic_lora": {}}, tmp_path / "lora.pt")
    save_weights(model, tmp_path / "w.safetensors")
    merged = load_model(tmp_path / "w.safetensors", lora=tmp_path / "lora.pt", lora_alpha=8.0, dtype=torch.float32)
    want = model.blocks[1].self_attn.q.weight + 2.0 * (b @ a)  # alpha 8 / rank 4
    torch.testing.assert_close(merged.blocks[1].self_attn.q.weight, want)
    assert torch.equal(merged.blocks[0].self_attn.q.weight, model.blocks[0].self_attn.q.weight)
    sd = dict(model.state_dict())
    with pytest.raises(WeightsMismatchError, match="LoRA target not in model: blocks.9.self_attn.q.weight"):
        merge_lora(sd, {"blocks.9.self_attn.q.lora_A.weight": a, "blocks.9.self_attn.q.lora_B.weight": b})


def _weights_dir(tmp_path, manifest: str):
    (tmp_path / "vacelive-weights.toml").write_text(manifest)
    return tmp_path


def test_manifest_paths_and_missing_roles(tmp_path):
    save_weights(_model(), tmp_path / "dit.safetensors")
    d = _weights_dir(tmp_path, '[files]\ndit = "dit.safetensors"\nvae = "Wan2.1_VAE.pth"\n')
    m = WeightsManifest.load(d)
    assert m.path("dit") == tmp_path / "dit.safetensors"
    assert m.has("vae") and not m.has("t5")
    with pytest.raises(FileNotFoundError, match=r"'vae'.*Wan2\.1_VAE\.pth"):
        m.path("vae")
    with pytest.raises(WeightFileMissing, match="'t5'"):
        m.path("t5")
    with pytest.raises(WeightFileMissing):
        WeightsManifest.load(tmp_path / "elsewhere")


def test_weights_check_good_folder(tmp_path, capsys):
    model = _model()
    torch.save({"generator_ema": {"model." + k: v for k, v in model.state_dict().items()}}, tmp_path / "sf.pt")
    from vacelive.engine.vace import VaceBranch, default_vace_layers

    cfg = CONFIGS["tiny"]
    branch = VaceBranch(model.blocks, default_vace_layers(cfg.num_layers), cfg.dim, cfg.patch_size)
    vace = dict(model.state_dict()) | {k: v.contiguous() for k, v in branch.state_dict().items()}
    save_file(vace, str(tmp_path / "vace.safetensors"))
    (tmp_path / "umt5-xxl").mkdir()
    (tmp_path / "umt5-xxl" / "tokenizer.json").write_text("{}")
    lora = {
        "base_model.model.blocks.0.ffn.0.lora_A.weight": torch.zeros(4, DIM),
        "base_model.model.blocks.0.ffn.0.lora_B.weight": torch.zeros(CONFIGS["tiny"].ffn_dim, 4),
    }
    torch.save({"generator_lora": lora, "critic_lora": {"x.lora_A.weight": torch.zeros(1)}}, tmp_path / "lora.pt")
    d = _weights_dir(
        tmp_path,
        '[files]\ndit = "sf.pt"\nlora = "lora.pt"\nvace = "vace.safetensors"\ntokenizer = "umt5-xxl"\n',
    )
    assert weights_check(str(d)) == 0
    out = capsys.readouterr().out
    assert "tiny" in out and "69 tensors (float32 x69)" in out
    assert "1 LoRA pairs, rank [4]" in out
    assert "VACE for Wan2.1 tiny: 1 blocks after layers [0]" in out
    assert "result: all good" in out


def test_weights_check_names_bad_keys_and_missing_files(tmp_path, capsys):
    sd = _renamed(_model().state_dict(), "blocks.0.norm3.weight", "blocks.0.norm_3.weight")
    save_file(sd, str(tmp_path / "dit.safetensors"))
    lora = {
        "blocks.0.self_attn.q.lora_A.weight": torch.zeros(4, DIM),
        "blocks.0.self_attn.q.lora_B.weight": torch.zeros(32, 4),  # wrong out size
        "blocks.0.self_attn.x.lora_A.weight": torch.zeros(4, DIM),  # no such target, no B
    }
    torch.save(lora, tmp_path / "lora.pt")
    d = _weights_dir(tmp_path, '[files]\ndit = "dit.safetensors"\nt5 = "t5.pth"\nlora = "lora.pt"\n')
    assert weights_check(str(d)) == 1
    out = capsys.readouterr().out
    assert f"LoRA shape mismatch: blocks.0.self_attn.q.weight gets [32, {DIM}], model has [{DIM}, {DIM}]" in out
    assert "LoRA pair incomplete for: blocks.0.self_attn.x.weight" in out
    assert "missing key: blocks.0.norm3.weight" in out
    assert "unexpected key: blocks.0.norm_3.weight" in out
    assert "'t5'" in out and "t5.pth" in out


def test_weights_check_runs_registered_checkers(tmp_path, monkeypatch, capsys):
    (tmp_path / "vae.pth").write_bytes(b"not a checkpoint")
    d = _weights_dir(tmp_path, '[files]\nvae = "vae.pth"\n')
    monkeypatch.setitem(CHECKERS, "vae", lambda path, notes=None: [f"{path.name} is not a VAE"])
    assert weights_check(str(d)) == 1
    assert "vae.pth is not a VAE" in capsys.readouterr().out
    assert weights_check(str(tmp_path / "no-such-dir")) == 1
