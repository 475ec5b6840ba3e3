"""Presets: validation against the registry, atomic save, the shipped presets."""

from pathlib import Path

import pytest

from vacelive.engine.app import build_store, install_preset_actions
from vacelive.engine.params import ParamError
from vacelive.engine.presets import PresetError, list_presets, load_preset, preset_path, save_preset
from vacelive.engine.state import ParamStore

SHIPPED = Path(__file__).resolve().parent.parent / "presets"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_load_valid_preset(tmp_path):
    path = write(tmp_path / "show.toml", '[preset]\ndescription = "x"\n[params]\ncontext_scale = 1.5\nannotator = "flow"\n')
    preset = load_preset(path)
    assert preset.name == "show"
    assert preset.values == {"context_scale": 1.5, "annotator": "flow"}


@pytest.mark.parametrize("body, message", [
    ("[params]\nvolume = 3\n", "unknown key 'volume'"),
    ("[params]\ncontext_scale = 7.0\n", "context_scale"),
    ("[params]\nannotator = 'sketch'\n", "annotator"),
    ("[params]\nsteps = 'many'\n", "steps"),
    ("[params]\nosc_port = 9100\n", "cannot be set by a preset"),
    ("[other]\nx = 1\n", "unknown table"),
    ("[params\n", "cannot read"),
])
def test_bad_presets_name_file_key_and_reason(tmp_path, body, message):
    path = write(tmp_path / "bad.toml", body)
    with pytest.raises(PresetError) as info:
        load_preset(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_save_is_atomic_and_round_trips(tmp_path, monkeypatch):
    store = ParamStore()
    store.set("context_scale", 0.25)
    target = tmp_path / "mine.toml"
    save_preset(target, store.snapshot(), "mine")
    assert load_preset(target).values["context_scale"] == 0.25
    original = target.read_text()

    import vacelive.engine.presets as presets_module

    def crash(*_args, **_kwargs):
        raise OSError("disk gone")

    monkeypatch.setattr(presets_module.os, "replace", crash)
    store.set("context_scale", 1.75)
    with pytest.raises(OSError):
        save_preset(target, store.snapshot(), "mine")
    assert target.read_text() == original  # the crash mid-save lost nothing
    assert [p.name for p in tmp_path.iterdir()] == ["mine.toml"]  # and left no temp file


def test_preset_names_cannot_escape_the_folder(tmp_path):
    for bad in ("../x", "/etc/passwd", "a/b", ""):
        with pytest.raises(PresetError):
            preset_path(bad, tmp_path)
    assert preset_path("show-1", tmp_path) == tmp_path / "show-1.toml"


def test_osc_preset_actions_load_and_save(tmp_path):
    write(tmp_path / "calm.toml", "[params]\ncontext_scale = 0.4\nwidth = 512\n")
    store = build_store(overrides={"preset_dir": str(tmp_path)})
    install_preset_actions(store)
    store.set("preset_load", "calm")
    assert store.get("context_scale") == 0.4
    assert store.get("width") == 320  # restart parameters wait for the next start
    with pytest.raises(ParamError, match="no such preset"):
        store.set("preset_load", "missing")
    store.set("preset_save", "saved")
    assert load_preset(tmp_path / "saved.toml").values["context_scale"] == 0.4


def test_cli_precedence_defaults_preset_flags(tmp_path):
    write(tmp_path / "p.toml", "[params]\ncontext_scale = 0.4\nseed = 7\n")
    store = build_store("p", {"preset_dir": str(tmp_path), "seed": 9})
    assert (store.get("context_scale"), store.get("seed"), store.get("steps")) == (0.4, 9, 4)


def test_shipped_presets_validate():
    found = list_presets(SHIPPED)
    assert any(not isinstance(p, PresetError) and p.name == "default" for p in found)
    errors = [str(p) for p in found if isinstance(p, PresetError)]
    assert errors == []
