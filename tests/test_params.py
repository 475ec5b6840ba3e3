"""The parameter registry and the live store."""

import math
import os

import pytest

from vacelive.engine.params import MAX_STRING_LENGTH, REGISTRY, Applies, Kind, ParamError
from vacelive.engine.state import ParamStore

REQUIRED = [
    "prompt", "prompt_transition", "seed", "steps", "context_scale", "annotator", "canny_low",
    "reference_1", "reference_2", "reference_3", "mask_source", "mask_invert", "keyframe_first",
    "keyframe_last", "fps", "width", "height", "source", "sink", "pause", "cut", "preset_load", "preset_save",
]


def test_registry_declares_what_the_engine_needs():
    for name in REQUIRED:
        assert name in REGISTRY, name
    scale = REGISTRY["context_scale"]
    assert (scale.minimum, scale.maximum, scale.default) == (0.0, 2.0, 1.0)
    assert scale.address == "/vacelive/context_scale"
    assert scale.cli_flag == "--context-scale"
    assert REGISTRY["width"].applies is Applies.RELOAD
    assert REGISTRY["osc_port"].applies is Applies.RESTART
    assert REGISTRY["context_scale"].applies is Applies.CHUNK


def test_every_param_is_documented_and_its_default_valid():
    for p in REGISTRY:
        assert p.description.strip(), p.name
        default = p.default
        if p.kind in (Kind.FLOAT, Kind.INT):  # against the declaration, not Param.coerce
            assert type(default) is (float if p.kind is Kind.FLOAT else int), p.name
            assert (p.minimum is None or default >= p.minimum) and (p.maximum is None or default <= p.maximum), p.name
        elif p.kind is Kind.CHOICE:
            assert default in p.choices, p.name
        elif p.kind is Kind.BOOL:
            assert isinstance(default, bool), p.name
        elif p.kind is Kind.STRING_LIST:
            assert all(isinstance(item, str) for item in default), p.name
        elif p.kind is not Kind.TRIGGER:
            assert isinstance(default, str) and len(default) <= MAX_STRING_LENGTH, p.name


def test_numbers_clamp_with_a_note_and_floats_feed_ints_and_bools():
    assert REGISTRY["context_scale"].coerce(3.5) == (2.0, "context_scale: 3.5 out of range [0.0, 2.0], clamped to 2.0")
    assert REGISTRY["context_scale"].coerce(-1)[0] == 0.0
    assert REGISTRY["steps"].coerce(3.0) == (3, None)  # TouchDesigner sends floats
    value, note = REGISTRY["steps"].coerce(9.0)
    assert value == 4 and "clamped" in note
    assert REGISTRY["pause"].coerce(1.0) == (True, None)
    assert REGISTRY["pause"].coerce(0.0) == (False, None)
    assert REGISTRY["annotator"].coerce(2.0) == ("edge", None)  # a choice by index


@pytest.mark.parametrize("name, value", [
    ("context_scale", "loud"), ("context_scale", math.nan), ("context_scale", math.inf), ("steps", "four"),
    ("prompt", 3.0), ("prompt", "x" * 5000), ("annotator", "sketchy"), ("annotator", 99.0),
    ("annotator", 1.5), ("pause", "maybe"), ("sink", [1, 2]), ("context_scale", True),
])
def test_bad_values_raise_a_clear_error(name, value):
    with pytest.raises(ParamError, match=name):
        REGISTRY[name].coerce(value)


def test_store_set_refuses_and_keeps_the_old_value():
    store = ParamStore()
    store.set("context_scale", 0.5)
    with pytest.raises(ParamError):
        store.set("context_scale", "nope")
    assert store.get("context_scale") == 0.5
    with pytest.raises(ParamError, match="restart"):
        store.set("osc_port", 9100)
    assert store.get("osc_port") == 9000
    store.set("width", 512)  # reload-time: pending, not in force
    assert store.get("width") == 0 and store.pending == {"width": 512}
    assert store.take_pending() == {"width": 512} and store.pending == {}
    store.set("width", 512, live=False)
    assert store.get("width") == 512
    with pytest.raises(ParamError, match="unknown"):
        store.set("volume", 1)


def test_snapshot_is_consistent_and_immutable():
    store = ParamStore()
    before = store.snapshot()
    store.set("prompt", "a forest")
    after = store.snapshot()
    assert before["prompt"] != "a forest" and after["prompt"] == "a forest"
    assert after.version > before.version
    with pytest.raises(TypeError):
        after["prompt"] = "x"  # type: ignore[index]


def test_update_is_all_or_nothing():
    store = ParamStore()
    with pytest.raises(ParamError, match="seed"):
        store.update({"context_scale": 0.3, "seed": "abc"})
    assert store.get("context_scale") == 1.0
    notes = store.update({"context_scale": 0.3, "width": 640, "osc_port": 9100})
    assert store.get("context_scale") == 0.3
    assert store.get("osc_port") == 9000 and any("osc_port = 9100 takes effect at the next start" in n for n in notes)
    assert store.get("width") == 0 and store.pending == {"width": 640}
    assert any("width = 640 is pending: /vacelive/reload applies it" in n for n in notes)


def test_trigger_fires_action_and_is_not_stored():
    store = ParamStore()
    fired = []
    store.register_action("cut", fired.append)
    store.set("cut", 1.0)
    store.set("cut", 0.0)  # TouchDesigner's button release: ignored
    assert fired == [True]
    assert store.get("cut") is False


def test_media_paths_are_confined(tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    (media / "ref.png").write_bytes(b"png")
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"png")
    (media / "link.png").symlink_to(outside)
    store = ParamStore()
    store.set("media_dir", str(media), live=False)
    store.set("reference_1", "ref.png")
    assert store.get("reference_1") == "ref.png"
    for bad, reason in [("../secret.png", r"'\.\.'"), (str(outside), "absolute"), ("link.png", "outside"),
                        ("missing.png", "no such file")]:
        with pytest.raises(ParamError, match=reason):
            store.set("reference_1", bad)
    assert store.get("reference_1") == "ref.png"
    store.set("reference_1", "")  # clearing is always allowed
    assert store.get("reference_1") == ""
    assert os.path.exists(outside)


def test_model_defaults_resolve_resolution_and_autoencoder():
    from vacelive.engine.app import build_store

    tiny = build_store()
    assert (tiny.get("width"), tiny.get("height"), tiny.get("vae")) == (320, 192, "tae")
    big = build_store(overrides={"model": "1.3B", "vae": "tae", "height": 512})
    assert (big.get("width"), big.get("height"), big.get("vae")) == (832, 512, "tae")
    with pytest.raises(ParamError, match="multiple of 16"):
        build_store(overrides={"width": 330})
