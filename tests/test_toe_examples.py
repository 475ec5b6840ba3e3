"""The TouchDesigner examples (toe_examples/), run against a recording stand-in of ``td``.

Each script must build the OSC control (Constant CHOP -> OSC Out CHOP on 127.0.0.1:9000, an OSC
Out DAT and cue Text DATs), the status input on the reply port and the video round trip for each
transport, with TouchDesigner's real operator and parameter names (the stand-in refuses others);
every address it can send must be in the registry, with a value the engine accepts; each saves a
``.toe``; and each names the ``vacelive run`` commands, with a preset that exists, that go with it.
"""

from __future__ import annotations

import importlib
import ipaddress
import shlex
import sys
from pathlib import Path

import pytest

from vacelive.bridges import SINK_SCHEMES, SOURCE_SCHEMES, parse_spec
from vacelive.engine.cli import build_parser
from vacelive.engine.params import REGISTRY, Kind, ParamError
from vacelive.engine.presets import load_preset
from tests.td_standin import StandinError, StandinTD

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "toe_examples"
PRESETS = ROOT / "presets"
if str(EXAMPLES) not in sys.path:
    sys.path.insert(0, str(EXAMPLES))

import vacelive_td  # noqa: E402  (lives in toe_examples/, importable as TouchDesigner would)

SCRIPTS = sorted(p.stem for p in EXAMPLES.glob("*.py") if p.stem != "vacelive_td")
TRANSPORTS = vacelive_td.TRANSPORTS
NUMERIC = (Kind.FLOAT, Kind.INT, Kind.BOOL, Kind.TRIGGER)


def build(name: str, transport: str, tmp_path: Path):
    td = StandinTD()
    module = importlib.import_module(name)
    built = module.main(td=td, transport=transport, save_path=str(tmp_path / f"{name}.toe"))
    return module, td, built


def comp_of(td: StandinTD, name: str):
    comp = td.op(f"/project1/vacelive_{name}")
    assert comp is not None and comp.type == "baseCOMP"
    return comp


def run_cues(td: StandinTD, comp) -> dict[str, list[tuple[str, list]]]:
    """Run every cue Text DAT as TouchDesigner would; return what each sent."""
    out = {}
    for child in comp.children.values():
        if child.type == "textDAT" and child.name.startswith("cue_"):
            before = len(td.sent)
            child.run()
            out[child.name] = [(address, args) for _, address, args in td.sent[before:]]
    return out


def test_the_five_examples_are_shipped():
    assert set(SCRIPTS) == {"depth_restyle", "pose_dancer", "reference_style", "inpaint_region",
                            "keyframe_extension"}


@pytest.mark.parametrize("name", SCRIPTS)
def test_osc_out_chop_sends_registry_numbers(name, tmp_path):
    module, td, built = build(name, "spout", tmp_path)
    comp = comp_of(td, name)
    osc_out = comp.op("osc_out")
    assert osc_out.type == "oscoutCHOP"
    assert osc_out.par.values() == {"netaddress": "127.0.0.1", "port": 9000, "active": True,
                                 "numericformat": "float", "sendevents": False}
    faders = comp.op("faders")
    assert faders.type == "constantCHOP" and osc_out.input() is faders

    values = faders.par.values()
    count = faders.seq.const.numBlocks
    channels = {values[f"const{i}name"]: values[f"const{i}value"] for i in range(count)}
    assert len(channels) == count
    assert set(vacelive_td.COMMON_FADERS) <= {c.removeprefix("vacelive/") for c in channels}
    preset = load_preset(PRESETS / f"{module.PRESET}.toml").values
    for channel, value in channels.items():
        assert channel.startswith("vacelive/"), channel
        param = REGISTRY.by_address("/" + channel)  # the OSC Out CHOP sends channel a/b as /a/b
        assert param is not None, f"{name}: channel {channel} is no parameter"
        assert param.writable_live and param.kind in NUMERIC, f"{channel} cannot be a float fader"
        assert isinstance(value, float)  # the CHOP sends floats only
        assert param.coerce(value)[1] is None, f"{channel} = {value} is out of range"
        if param.name in preset:
            assert param.coerce(value)[0] == preset[param.name], f"{channel} differs from the preset"


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_cue_sends_valid_messages(name, tmp_path):
    module, td, built = build(name, "syphon", tmp_path)
    comp = comp_of(td, name)
    dat = comp.op("oscout1")
    assert dat.type == "oscoutDAT"
    assert dat.par.values() == {"address": "127.0.0.1", "port": 9000, "active": True}

    cues = run_cues(td, comp)
    assert {"cue_connect", "cue_cut"} <= set(cues) and len(cues) >= 4
    assert all(cues.values()), "a cue that sends nothing"
    assert all(path == dat.path for path, _, _ in td.sent)
    assert ("/vacelive/osc_reply", [f"127.0.0.1:{vacelive_td.REPLY_PORT}"]) in cues["cue_connect"]
    assert ("/vacelive/preset_load", [module.PRESET]) in cues["cue_connect"]
    sent_prompt = False
    for cue, messages in cues.items():
        for address, args in messages:
            param = REGISTRY.by_address(address)
            assert param is not None, f"{name} {cue}: {address} is no parameter"
            assert param.writable_live, f"{address} is read-only over OSC"
            assert len(args) == 1, f"{cue}: {address} {args}"
            try:
                value, note = param.coerce(args[0])
            except ParamError as exc:
                pytest.fail(f"{name} {cue}: {address} {args!r} refused: {exc}")
            assert note is None
            if param.kind is Kind.CHOICE:
                assert args[0] in param.choices
            if param.kind is Kind.PATH and value:
                assert not Path(value).is_absolute() and ".." not in Path(value).parts
            sent_prompt |= param.name == "prompt"
    assert sent_prompt


@pytest.mark.parametrize("name", SCRIPTS)
def test_status_input_listens_on_the_reply_port(name, tmp_path):
    _, td, _ = build(name, "ndi", tmp_path)
    status = comp_of(td, name).op("status_in")
    assert status.type == "oscinDAT"
    assert status.par.port.val == vacelive_td.REPLY_PORT and status.par.active.val is True


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("name", SCRIPTS)
def test_video_round_trip(name, transport, tmp_path):
    _, td, built = build(name, transport, tmp_path)
    comp = comp_of(td, name)
    send, receive, out = comp.op("to_vacelive"), comp.op("from_vacelive"), comp.op("vacelive_out")
    if transport == "ndi":
        assert (send.type, receive.type) == ("ndioutTOP", "ndiinTOP")
        assert send.par.name.val == vacelive_td.TD_TO_ENGINE and send.par.active.val is True
        assert receive.par.name.val == vacelive_td.ENGINE_TO_TD and receive.par.active.val is True
    else:
        assert (send.type, receive.type) == ("syphonspoutoutTOP", "syphonspoutinTOP")
        assert send.par.sendername.val == vacelive_td.TD_TO_ENGINE and send.par.active.val is True
        assert receive.par.sendername.val == vacelive_td.ENGINE_TO_TD
    control = comp.op("control")
    assert send.input() is control is built["control"] and control.type == "nullTOP"
    assert control.input() is not None  # a camera, or the camera through the mask rectangle
    assert out.type == "nullTOP" and out.input() is receive


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_engine_command_matches_the_network(transport):
    command = vacelive_td.engine_command("depth_restyle", transport)
    argv = shlex.split(command)
    assert argv[:2] == ["vacelive", "run"]
    args = build_parser().parse_args(argv[1:])
    assert args.preset == "depth_restyle"
    assert args.source == f"{transport}:{vacelive_td.TD_TO_ENGINE}"
    assert args.sink == [f"{transport}:{vacelive_td.ENGINE_TO_TD}"]
    assert args.osc_reply == f"127.0.0.1:{vacelive_td.REPLY_PORT}"
    assert parse_spec(args.source).scheme in dict(SOURCE_SCHEMES)
    assert parse_spec(args.sink[0]).scheme in dict(SINK_SCHEMES)
    assert parse_spec(args.source).arg == vacelive_td.TD_TO_ENGINE


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_says_how_to_run_it_and_its_preset_exists(name):
    module = importlib.import_module(name)
    doc = module.__doc__
    assert f"import {name}; {name}.main()" in doc
    for transport in TRANSPORTS:
        assert vacelive_td.engine_command(module.PRESET, transport) in doc
    assert (PRESETS / f"{module.PRESET}.toml").is_file()


@pytest.mark.parametrize("name", SCRIPTS)
def test_saves_a_toe_and_rebuilds_in_place(name, tmp_path):
    module, td, built = build(name, "spout", tmp_path)
    assert td.project.saved == [str(tmp_path / f"{name}.toe")] == [built["saved"]]
    first = comp_of(td, name)
    module.main(td=td, transport="ndi", save_path=str(tmp_path / "again.toe"))
    assert first.destroyed and comp_of(td, name) is not first
    assert [c.name for c in td.op("/project1").children.values()] == [f"vacelive_{name}"]
    readme = comp_of(td, name).op("readme")
    assert vacelive_td.engine_command(module.PRESET, "ndi") in readme.text


def test_engine_on_another_machine(tmp_path):
    td = StandinTD()
    importlib.import_module("depth_restyle").main(td=td, transport="ndi", save_path=str(tmp_path / "a.toe"),
                                                  host="192.168.1.20")
    comp = comp_of(td, "depth_restyle")
    assert comp.op("osc_out").par.netaddress.val == "192.168.1.20"
    assert comp.op("oscout1").par.address.val == "192.168.1.20"
    (address, (target,)), _ = run_cues(td, comp)["cue_connect"]
    host, _, port = target.rpartition(":")
    assert address == "/vacelive/osc_reply" and port == str(vacelive_td.REPLY_PORT)
    assert ipaddress.ip_address(host).version == 4
    assert vacelive_td.engine_command("depth_restyle", "ndi", td_host=host) in comp.op("readme").text


def test_engine_command_for_another_machine():
    args = build_parser().parse_args(shlex.split(
        vacelive_td.engine_command("pose_dancer", "ndi", td_host="192.168.1.10"))[1:])
    assert (args.osc_host, args.osc_allow, args.osc_reply) == ("0.0.0.0", ["192.168.1.10"], "192.168.1.10:9002")


def test_readme_lists_every_example_with_its_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## TouchDesigner", 1)[1].split("\n## ", 1)[0]
    for name in SCRIPTS:
        module = importlib.import_module(name)
        assert f"`{name}.py`" in section
        assert vacelive_td.engine_command(module.PRESET, "spout") in section


def test_default_save_path_is_next_to_the_scripts():
    td = StandinTD()
    importlib.import_module("pose_dancer").main(td=td, transport="ndi")
    assert td.project.saved == [str(EXAMPLES / "pose_dancer.toe")]


def test_status_chop_variant():
    td = StandinTD()
    comp = td.op("/project1").create(td.baseCOMP, "x")
    chop = vacelive_td.build_status_in(comp, td, port=9100, kind="chop")
    assert chop.type == "oscinCHOP"
    assert chop.par.values() == {"stripsegments": 2, "port": 9100, "active": True}


@pytest.mark.parametrize("platform, transport", [("win32", "spout"), ("darwin", "syphon"), ("linux", "ndi")])
def test_default_transport(platform, transport):
    assert vacelive_td.default_transport(platform) == transport


def test_unknown_transport_is_refused():
    with pytest.raises(ValueError, match="transport"):
        vacelive_td.engine_command("default", "hdmi")


# --- the stand-in itself refuses typos ----------------------------------------------------------


def test_standin_refuses_unknown_types_and_parameters():
    td = StandinTD()
    comp = td.op("/project1")
    with pytest.raises(AttributeError):
        td.oscoutChop  # noqa: B018  (a typo of oscoutCHOP)
    with pytest.raises(StandinError, match="unknown operator type"):
        comp.create("spoutoutTOP", "x")
    out = comp.create(td.oscoutCHOP, "osc_out")
    with pytest.raises(AttributeError, match="netadress"):
        out.par.netadress = "127.0.0.1"
    dat = comp.create(td.oscoutDAT, "oscout1")
    with pytest.raises(AttributeError, match="netaddress"):
        dat.par.netaddress = "127.0.0.1"  # the DAT's parameter is "address"
    receive = comp.create(td.syphonspoutinTOP, "from_vacelive")
    with pytest.raises(AttributeError, match="active"):
        receive.par.active = True
    with pytest.raises(StandinError, match="numericformat"):
        out.par.numericformat = "float32"
    with pytest.raises(AttributeError, match="sendOSC"):
        out.sendOSC("/vacelive/seed", [1])


def test_standin_refuses_bad_wires_and_sequences():
    td = StandinTD()
    comp = td.op("/project1")
    constant = comp.create(td.constantCHOP, "faders")
    constant.par.const0name = "vacelive/seed"
    with pytest.raises(AttributeError, match="const1name"):
        constant.par.const1name = "vacelive/steps"  # one block until seq.const.numBlocks grows
    camera = comp.create(td.videodeviceinTOP, "camera")
    null = comp.create(td.nullTOP, "null1")
    with pytest.raises(StandinError, match="no inputs"):
        null.outputConnectors[0].connect(camera)
    with pytest.raises(StandinError, match="cannot wire"):
        constant.outputConnectors[0].connect(null)
    with pytest.raises(StandinError, match="already has"):
        comp.create(td.nullTOP, "null1")
