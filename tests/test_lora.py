"""Style LoRAs: every shared layout read onto the tiny model, strict keys, unmerged vs merged, the
off state against the plain model, and the live scales in the registry, OSC, OSCQuery and presets."""

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from vacelive.engine.app import build_store, install_preset_actions
from vacelive.engine.model import CONFIGS, WanModel, WeightsMismatchError
from vacelive.engine.model.loading import to_diffusers
from vacelive.engine.model.lora import StyleLoras, detect_format, linear_targets, load_lora, parse_lora
from vacelive.engine.params import ParamError
from vacelive.engine.presets import PresetError, load_preset

TARGETS = ("blocks.0.self_attn.q", "blocks.0.cross_attn.k", "blocks.1.ffn.0", "blocks.1.self_attn.o",
           "text_embedding.0", "time_embedding.0", "time_projection.1", "head.head")
RANK, ALPHA = 4, 8.0


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return WanModel(CONFIGS["tiny"]).eval().requires_grad_(False)


def random_pairs(model, seed: int = 1, targets=TARGETS) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Wan module name -> (A [rank, in], B [out, rank]), large enough to change the output clearly."""
    gen = torch.Generator().manual_seed(seed)
    linears = linear_targets(model)
    out = {}
    for name in targets:
        out_f, in_f = linears[name].weight.shape
        out[name] = (torch.randn(RANK, in_f, generator=gen) * 0.3, torch.randn(out_f, RANK, generator=gen) * 0.3)
    return out


def layout(pairs, fmt: str) -> dict[str, torch.Tensor]:
    """The pairs under the key names of one shared layout (with alpha where the layout carries it)."""
    out = {}
    for name, (a, b) in pairs.items():
        if fmt == "peft":
            out[f"base_model.model.{name}.lora_A.weight"], out[f"base_model.model.{name}.lora_B.weight"] = a, b
        elif fmt == "comfyui":
            out[f"diffusion_model.{name}.lora_A.weight"], out[f"diffusion_model.{name}.lora_B.weight"] = a, b
            out[f"diffusion_model.{name}.alpha"] = torch.tensor(ALPHA)
        elif fmt == "comfyui-down":
            out[f"diffusion_model.{name}.lora_down.weight"], out[f"diffusion_model.{name}.lora_up.weight"] = a, b
            out[f"diffusion_model.{name}.alpha"] = torch.tensor(ALPHA)
        elif fmt == "kohya":
            stem = "lora_unet_" + name.replace(".", "_")
            out[f"{stem}.lora_down.weight"], out[f"{stem}.lora_up.weight"] = a, b
            out[f"{stem}.alpha"] = torch.tensor(ALPHA)
        elif fmt in ("diffusers", "diffusers-bare"):
            diff = next(iter(to_diffusers({name: None})))
            prefix = "transformer." if fmt == "diffusers" else ""
            out[f"{prefix}{diff}.lora_A.weight"], out[f"{prefix}{diff}.lora_B.weight"] = a, b
    return out


LAYOUTS = {"peft": "peft", "comfyui": "comfyui", "comfyui-down": "comfyui", "kohya": "kohya",
           "diffusers": "diffusers", "diffusers-bare": "diffusers"}


@pytest.mark.parametrize("fmt", sorted(LAYOUTS))
@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_each_layout_loads_onto_the_wan_modules(model, tmp_path, fmt, suffix):
    pairs = random_pairs(model)
    tensors = layout(pairs, fmt)
    path = tmp_path / f"style{suffix}"
    save_file(tensors, str(path)) if suffix == ".safetensors" else torch.save(tensors, path)
    assert detect_format(tensors) == LAYOUTS[fmt]
    lora = load_lora(path, model, "style")
    assert lora.format == LAYOUTS[fmt] and sorted(lora.layers) == sorted(TARGETS)
    for name, (a, b) in pairs.items():
        layer = lora.layers[name]
        assert torch.equal(layer.down, a) and torch.equal(layer.up, b)
        assert layer.alpha == (ALPHA if fmt in ("comfyui", "comfyui-down", "kohya") else RANK)  # else = rank


def test_longlive_lora_dict_is_unwrapped(model, tmp_path):
    path = tmp_path / "lora.pt"
    torch.save({"generator_lora": layout(random_pairs(model), "peft"), "critic_lora": {}, "step": 3}, path)
    assert load_lora(path, model).format == "peft"


def test_keys_that_fit_no_layer_are_all_named(model):
    linears = linear_targets(model)
    tensors = layout(random_pairs(model, targets=("blocks.0.self_attn.q", "blocks.0.ffn.2")), "comfyui")
    tensors["diffusion_model.blocks.0.norm3.lora_A.weight"] = torch.zeros(RANK, 64)  # a LayerNorm
    tensors["diffusion_model.blocks.0.norm3.lora_B.weight"] = torch.zeros(64, RANK)
    tensors["diffusion_model.blocks.9.self_attn.q.lora_A.weight"] = torch.zeros(RANK, 64)  # no block 9
    tensors["diffusion_model.blocks.0.ffn.2.lora_A.weight"] = torch.zeros(RANK + 1, 128)  # rank mismatch
    tensors["diffusion_model.blocks.1.self_attn.k.lora_A.weight"] = torch.zeros(RANK, 64)  # no B
    with pytest.raises(WeightsMismatchError) as info:
        parse_lora(tensors, linears, name="bad")
    text = str(info.value)
    for part in ("blocks.0.norm3.lora_A", "blocks.0.norm3.lora_B", "blocks.9.self_attn.q", "shapes do not fit blocks.0.ffn.2",
                 "pair incomplete for blocks.1.self_attn.k"):
        assert part in text, part
    with pytest.raises(WeightsMismatchError, match="not a LoRA key.*blocks.0.self_attn.q.weight"):
        detect_format(["blocks.0.self_attn.q.weight"])
    with pytest.raises(WeightsMismatchError, match="layouts mixed"):
        detect_format(["lora_unet_blocks_0_self_attn_q.alpha", "diffusion_model.blocks.0.self_attn.q.alpha"])


def run(model, seed: int = 5) -> torch.Tensor:
    """One full-sequence forward of the tiny model on fixed inputs."""
    cfg = model.config
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(1, cfg.in_dim, 3, 8, 8, generator=gen)
    prompt = torch.randn(1, 6, cfg.text_dim, generator=gen)
    return model(x, 500.0, prompt)


def two_loras(model):
    linears = linear_targets(model)
    return [parse_lora(layout(random_pairs(model, seed=s), "kohya"), linears, name=n) for s, n in ((1, "ink"), (2, "oil"))]


def plain_state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_scale_zero_and_detach_give_the_plain_model_exactly(model):
    before, plain = plain_state(model), run(model)
    for merged in (False, True):
        loras = StyleLoras(model, two_loras(model), merged=merged, scales={"ink": 0.0, "oil": 0.0})
        assert torch.equal(run(model), plain), merged
        loras.set_scales({"ink": 1.0})
        assert not torch.allclose(run(model), plain)
        loras.detach()
        assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items()), merged
        assert torch.equal(run(model), plain), merged


def test_merged_weights_do_not_drift_over_many_changes(model):
    before = plain_state(model)
    model.to(torch.bfloat16)  # where adding each difference would round
    try:
        fresh = StyleLoras(model, two_loras(model), merged=True, scales={"ink": 0.3, "oil": 1.0})
        expected = {k: v.clone() for k, v in model.state_dict().items()}
        fresh.detach()
        moved = StyleLoras(model, two_loras(model), merged=True, scales={"ink": 0.3, "oil": 1.0})
        for i in range(50):
            moved.set_scales({"ink": 0.3 + 0.001 * (i + 1)})
        moved.set_scales({"ink": 0.3})
        assert all(torch.equal(v, expected[k]) for k, v in model.state_dict().items())
        moved.detach()
    finally:
        model.to(torch.float32)
        with torch.no_grad():
            for k, v in model.state_dict().items():
                v.copy_(before[k])


def test_unmerged_equals_merged_and_a_remerge_follows_the_scale(model):
    before = plain_state(model)
    unmerged = StyleLoras(model, two_loras(model), scales={"ink": 1.0, "oil": 0.5})
    expected = run(model)
    unmerged.set_scales({"ink": 0.25, "oil": 1.5})
    expected_after = run(model)
    unmerged.detach()
    merged = StyleLoras(model, two_loras(model), merged=True, scales={"ink": 1.0, "oil": 0.5})
    torch.testing.assert_close(run(model), expected, rtol=1e-4, atol=1e-4)
    assert merged.set_scales({"ink": 0.25, "oil": 1.5}) and not merged.set_scales({"ink": 0.25})
    torch.testing.assert_close(run(model), expected_after, rtol=1e-4, atol=1e-4)
    merged.detach()
    with torch.no_grad():
        for k, v in model.state_dict().items():
            v.copy_(before[k])


def test_alpha_scales_the_update(model):
    before, plain = plain_state(model), run(model)
    linears = linear_targets(model)
    pairs = random_pairs(model, targets=("blocks.0.self_attn.q",))
    half = layout(pairs, "comfyui")  # alpha 8 / rank 4 = 2
    unit = layout(pairs, "peft")  # alpha = rank: 1
    a = StyleLoras(model, [parse_lora(half, linears, name="a")], scales={"a": 0.5})
    out_half = run(model)
    a.detach()
    b = StyleLoras(model, [parse_lora(unit, linears, name="b")], scales={"b": 1.0})
    torch.testing.assert_close(run(model), out_half)
    b.detach()
    assert torch.equal(run(model), plain) and all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


# --- the scales as parameters ----------------------------------------------------------------------

def lora_file(folder: Path, name: str, model) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    save_file(layout(random_pairs(model), "kohya"), str(folder / name))
    return name


def test_scales_are_parameters_everywhere(model, tmp_path):
    from vacelive.engine.osc import OscControl
    from vacelive.engine.oscquery import build_tree, find_node

    media = tmp_path / "media"
    lora_file(media / "styles", "ink.safetensors", model)
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets" / "show.toml").write_text(
        '[params]\nloras = ["ink=styles/ink.safetensors"]\n"lora/ink/scale" = 0.4\n', encoding="utf-8")
    store = build_store("show", {"media_dir": str(media), "preset_dir": str(tmp_path / "presets")})
    assert store.get("loras") == ["ink=styles/ink.safetensors"] and store.get("lora/ink/scale") == 0.4
    param = store.registry["lora/ink/scale"]
    assert param.address == "/vacelive/lora/ink/scale" and (param.minimum, param.maximum) == (0.0, 2.0)
    assert store.set("lora/ink/scale", 3.0)[0] == 2.0  # clamped live, like every float
    control = OscControl(store)
    assert ["/vacelive/lora/ink/scale"] == [a for a in control.dispatcher._map if "lora/" in a]
    tree = build_tree(store, {})
    node = find_node(tree, "/vacelive/lora/ink/scale")
    assert node["VALUE"] == [2.0] and node["RANGE"] == [{"MIN": 0.0, "MAX": 2.0}]
    assert find_node(tree, "/vacelive/lora/ink")["FULL_PATH"] == "/vacelive/lora/ink"
    install_preset_actions(store)
    store.set("preset_save", "saved")
    saved = load_preset(tmp_path / "presets" / "saved.toml")
    assert saved.values["lora/ink/scale"] == 2.0 and saved.values["loras"] == ["ink=styles/ink.safetensors"]


def test_lora_entries_and_paths_are_checked_at_start(model, tmp_path):
    media = tmp_path / "media"
    lora_file(media, "ink.safetensors", model)
    base = {"media_dir": str(media)}
    with pytest.raises(ParamError, match="'ink' given twice"):
        build_store(None, base | {"loras": ["ink=ink.safetensors", "ink=ink.safetensors"]})
    with pytest.raises(ParamError, match="not NAME=PATH"):
        build_store(None, base | {"loras": ["ink.safetensors"]})
    with pytest.raises(ParamError, match="'..' is refused"):
        build_store(None, base | {"loras": ["ink=../ink.safetensors"]})
    weights = tmp_path / "weights"
    lora_file(weights / "loras", "oil.safetensors", model)
    store = build_store(None, base | {"weights_dir": str(weights), "loras": ["oil=loras/oil.safetensors",
                                                                           "ink=ink.safetensors"]})
    assert store.resolve_lora("loras/oil.safetensors") == (weights / "loras" / "oil.safetensors").resolve()
    assert "lora/oil/scale" in store.registry and "lora/ink/scale" in store.registry


def test_presets_setting_scales_of_loras_not_listed(model, tmp_path):
    media = tmp_path / "media"
    lora_file(media, "ink.safetensors", model)
    presets = tmp_path / "presets"
    presets.mkdir()
    (presets / "oil.toml").write_text('[params]\n"lora/oil/scale" = 0.5\n', encoding="utf-8")
    with pytest.raises(PresetError, match="unknown key 'lora/oil/scale'"):
        load_preset(presets / "oil.toml")
    (presets / "both.toml").write_text('[params]\nloras = ["oil=oil.safetensors"]\n"lora/oil/scale" = 0.5\n',
                                       encoding="utf-8")
    dirs = {"media_dir": str(media), "preset_dir": str(presets)}
    with pytest.raises(ParamError, match="lora/oil/scale set, but --loras does not name"):
        build_store("both", dirs | {"loras": ["ink=ink.safetensors"]})
    from vacelive.engine.app import follow_loras
    from vacelive.engine.osc import OscControl

    store = build_store(None, dirs | {"loras": ["ink=ink.safetensors"]})
    install_preset_actions(store)
    follow_loras(store, OscControl(store))
    lora_file(media, "oil.safetensors", model)
    store.set("preset_load", "both")  # live: loras wait for the reload, oil's scale waits with them
    assert "lora/oil/scale" not in store.registry and store.get("loras") == ["ink=ink.safetensors"]
    assert store.pending == {"loras": ["oil=oil.safetensors"]}
    store.update(store.take_pending(), live=False)  # what a reload does once the new generator is built
    assert store.get("lora/oil/scale") == 0.5  # the preset's scale, applied once the LoRA is there


def test_the_pipeline_takes_each_chunks_scales(model, tmp_path):
    from vacelive.engine.chunk import Chunk
    from vacelive.engine.pipeline import build_generator

    media = tmp_path / "media"
    tiny = WanModel(CONFIGS["tiny"])
    lora_file(media, "ink.safetensors", tiny)
    outputs = {}
    for mode in ("unmerged", "merged"):
        store = build_store(None, {"media_dir": str(media), "loras": ["ink=ink.safetensors"], "lora_mode": mode,
                                   "width": 64, "height": 64, "steps": 1, "annotator": "none"})
        pipeline = build_generator(store, None, "cpu")
        assert pipeline.loras is not None and pipeline.loras.merged is (mode == "merged")
        frames = []
        for index, scale in enumerate((1.0, 1.0, 0.0, 2.0)):
            store.set("lora/ink/scale", scale)
            chunk = Chunk(index=index, epoch=0, frames=np.zeros((12, 64, 64, 3), np.uint8), control=None,
                          masks=None, snapshot=store.snapshot(), captured_at=[0.0] * 12)
            frames.append(pipeline.generate(chunk))
            assert ("lora" in pipeline.timings) is (index in (2, 3))  # applied when the scale moves
        assert pipeline.loras.scales == {"ink": 2.0}
        outputs[mode] = frames
    for a, b in zip(outputs["unmerged"], outputs["merged"]):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 2


def test_a_lora_loaded_over_osc_waits_for_the_reload_then_gets_its_address(model, tmp_path):
    from vacelive.engine.app import follow_loras
    from vacelive.engine.osc import OscControl, build_message
    from vacelive.engine.oscquery import build_tree, find_node

    media = tmp_path / "media"
    lora_file(media, "ink.safetensors", model)
    store = build_store(None, {"media_dir": str(media), "loras": ["ink=ink.safetensors"]})
    control = OscControl(store)
    follow_loras(store, control)
    with pytest.raises(ParamError, match="oil: 'oil.safetensors': no such file"):
        store.set("loras", ["ink=ink.safetensors", "oil=oil.safetensors"])  # refused at once, not at reload
    lora_file(media, "oil.safetensors", model)
    control.handle_packet(build_message("/vacelive/loras", ["ink=ink.safetensors", "oil=oil.safetensors"]),
                          ("127.0.0.1", 9))
    assert store.pending == {"loras": ["ink=ink.safetensors", "oil=oil.safetensors"]}
    assert "lora/oil/scale" not in store.registry
    store.update(store.take_pending(), live=False)  # what a reload does once the new generator is built
    assert "/vacelive/lora/oil/scale" in control.dispatcher._map
    control.handle_packet(build_message("/vacelive/lora/oil/scale", [0.5]), ("127.0.0.1", 9))
    assert store.get("lora/oil/scale") == 0.5
    assert find_node(build_tree(store, {}), "/vacelive/lora/oil/scale")["VALUE"] == [0.5]
