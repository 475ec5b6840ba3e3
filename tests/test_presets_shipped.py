"""The presets shipped in presets/: each loads, validates against the registry, is listed, starts
the engine's parameter store, and the TouchDesigner examples' presets exist."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from vacelive.engine.app import build_store
from vacelive.engine.params import REGISTRY, Kind
from vacelive.engine.presets import Preset, PresetError, list_presets, load_preset

ROOT = Path(__file__).resolve().parent.parent
PRESETS = ROOT / "presets"
EXAMPLES = ROOT / "toe_examples"
FILES = sorted(PRESETS.glob("*.toml"))
EXAMPLE_PRESETS = {"depth_restyle", "pose_dancer", "reference_style", "inpaint_region", "keyframe_extension",
                   "beat_lora"}


def example_presets() -> dict[str, str]:
    """Script name -> its PRESET, read from the source (the scripts import TouchDesigner helpers)."""
    out = {}
    for path in sorted(EXAMPLES.glob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "PRESET" for t in node.targets):
                out[path.stem] = ast.literal_eval(node.value)
    return out


def test_the_show_presets_are_shipped():
    assert {p.stem for p in FILES} >= EXAMPLE_PRESETS | {"default"}


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_preset_loads_and_validates(path):
    preset = load_preset(path)  # raises PresetError naming file, key and reason
    assert preset.name == path.stem
    assert preset.description.strip(), f"{path.name} has no description"
    for key, value in preset.values.items():
        param = REGISTRY[key]
        assert param.in_presets, f"{path.name}: {key} is not a preset parameter"
        if param.kind is Kind.PATH:
            # Image paths are relative to the media folder and checked at load: ship none that
            # is not there (the description says which OSC message sets it).
            assert value == "", f"{path.name}: {key} names a media file; leave it '' and set it over OSC"


def test_every_preset_is_listed_without_errors():
    found = list_presets(PRESETS)
    errors = [str(p) for p in found if isinstance(p, PresetError)]
    assert errors == []
    assert sorted(p.name for p in found if isinstance(p, Preset)) == [p.stem for p in FILES]


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_preset_starts_a_store(path, tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    store = build_store(path.stem, {"preset_dir": str(PRESETS), "media_dir": str(media)})
    for key, value in load_preset(path).values.items():
        assert store.get(key) == value


def test_every_example_names_a_shipped_preset():
    presets = example_presets()
    assert set(presets) == EXAMPLE_PRESETS  # vacelive_td.py, the shared module, has none
    for script, preset in presets.items():
        assert (PRESETS / f"{preset}.toml").is_file(), f"{script}.py uses missing preset {preset!r}"
