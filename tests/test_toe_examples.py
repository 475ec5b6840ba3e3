"""The TouchDesigner examples (toe_examples/), run against a recording stand-in of ``td``.

Each script must build the OSC control (Constant CHOP -> OSC Out CHOP on 127.0.0.1:9000, an OSC
Out DAT and cue Text DATs), the status input on the reply port and the video round trip for each
transport, with TouchDesigner's real operator and parameter names (the stand-in refuses others);
every address it can send must be in the registry, with a value the engine accepts; the faders
follow the engine's answers after ``cue_connect`` loads the preset; each saves only its component
as a ``.tox`` (never the user's open project); the NDI In TOP names NDI's full ``HOST (stream)``;
and each names the ``vacelive run`` commands, with a preset that exists, that go with it.
"""

from __future__ import annotations

import importlib
import ipaddress
import shlex
import socket
import sys
from pathlib import Path

import pytest

from vacelive.bridges import SINK_SCHEMES, SOURCE_SCHEMES, parse_spec
from vacelive.engine.cli import build_parser
from vacelive.engine.params import REGISTRY, Kind, ParamError, Registry, lora_scale_params
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
    built = module.main(td=td, transport=transport, save_path=str(tmp_path / f"{name}.tox"))
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


def test_the_examples_are_shipped():
    assert set(SCRIPTS) == {"depth_restyle", "pose_dancer", "reference_style", "inpaint_region",
                            "keyframe_extension", "beat_lora"}


@pytest.mark.parametrize("name", SCRIPTS)
def test_osc_out_chop_sends_registry_numbers(name, tmp_path):
    module, td, built = build(name, "spout", tmp_path)
    comp = comp_of(td, name)
    osc_out = comp.op("osc_out")
    assert osc_out.type == "oscoutCHOP"
    assert osc_out.par.values() == {"netaddress": "127.0.0.1", "port": 9000, "active": True,
                                    "numericformat": "float", "sendevents": False, "cookalways": True}
    # nothing downstream views the OSC Out CHOP, so only cookalways makes it cook (and send)
    assert not any(osc_out in node.inputs for node in td.created)
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
        param = registry_for(module).by_address("/" + channel)  # the OSC Out CHOP sends channel a/b as /a/b
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
    connect = cues["cue_connect"]
    assert connect[:2] == [("/vacelive/osc_reply", [f"127.0.0.1:{vacelive_td.REPLY_PORT}"]),
                           ("/vacelive/preset_load", [module.PRESET])]
    fader_addresses = ["/" + vacelive_td.channel_name(param) for param, _ in module.FADERS]
    assert connect[2:] == [(address, []) for address in fader_addresses]  # queries, after the preset
    assert cues["cue_send_faders"] == [(address, [float(value)])
                                       for address, (_, value) in zip(fader_addresses, module.FADERS)]
    sent_prompt = False
    for cue, messages in cues.items():
        for address, args in messages:
            param = registry_for(module).by_address(address)
            assert param is not None, f"{name} {cue}: {address} is no parameter"
            if not args:  # a query: answered with the value, changes nothing
                assert cue == "cue_connect" and address in fader_addresses
                continue
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
    assert status.par.callbacks.val is comp_of(td, name).op("status_callbacks")


@pytest.mark.parametrize("name", SCRIPTS)
def test_faders_follow_the_engine_after_cue_connect(name, tmp_path):
    """cue_connect loads the preset and queries every fader; the engine answers each query with
    the value in force (the preset's, else the default) to the status port, and the callbacks set
    the faders: TouchDesigner and the engine agree however the faders were set before."""
    module, td, _ = build(name, "spout", tmp_path)
    comp = comp_of(td, name)
    faders, status = comp.op("faders"), comp.op("status_in")
    count = faders.seq.const.numBlocks
    for i in range(count):  # the VJ moved every fader before the engine ran: nothing was sent
        setattr(faders.par, f"const{i}value", 0.0)
    preset = load_preset(PRESETS / f"{module.PRESET}.toml").values
    status.receive_osc("/vacelive/status/fps", [24.0])  # status figures leave the faders alone
    status.receive_osc("/vacelive/prompt", ["a prompt"])
    for address, args in run_cues(td, comp)["cue_connect"][2:]:
        param = registry_for(module).by_address(address)
        answer = preset.get(param.name, param.default)
        status.receive_osc(address, [answer])  # bools arrive as OSC T/F: Python True/False
    values = faders.par.values()
    for i in range(count):
        param = registry_for(module).by_address("/" + values[f"const{i}name"])
        assert values[f"const{i}value"] == float(preset.get(param.name, param.default))


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("name", SCRIPTS)
def test_video_round_trip(name, transport, tmp_path):
    _, td, built = build(name, transport, tmp_path)
    comp = comp_of(td, name)
    send, receive, out = comp.op("to_vacelive"), comp.op("from_vacelive"), comp.op("vacelive_out")
    if transport == "ndi":
        assert (send.type, receive.type) == ("ndioutTOP", "ndiinTOP")
        assert send.par.name.val == vacelive_td.TD_TO_ENGINE and send.par.active.val is True
        # NDI lists the engine's sender as "HOST (vacelive_out)", HOST this machine's name in capitals
        host = socket.gethostname().split(".")[0].upper()
        assert receive.par.name.val == f"{host} ({vacelive_td.ENGINE_TO_TD})" and receive.par.active.val is True
    else:
        assert (send.type, receive.type) == ("syphonspoutoutTOP", "syphonspoutinTOP")
        assert send.par.sendername.val == vacelive_td.TD_TO_ENGINE and send.par.active.val is True
        assert receive.par.sendername.val == vacelive_td.ENGINE_TO_TD
    control = comp.op("control")
    assert send.input() is control is built["control"] and control.type == "nullTOP"
    assert control.input() is not None  # a camera, or the camera through the mask rectangle
    assert out.type == "nullTOP" and out.input() is receive


def registry_for(module) -> Registry:
    """The parameters a run of the example has: the registry plus its LoRAs' scales."""
    return REGISTRY.extended(lora_scale_params(getattr(module, "LORAS", [])))


def _extra(module) -> str:
    """The example's own engine flags."""
    return getattr(module, "ENGINE_FLAGS", "")


def _preview(module) -> bool:
    """Whether the example receives the control preview too."""
    return getattr(module, "PREVIEW", False)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_preview_comes_back_into_touchdesigner(transport, tmp_path):
    module, td, built = build("depth_restyle", transport, tmp_path)
    receive, out = built["from_vacelive_preview"], built["vacelive_preview"]
    if transport == "ndi":
        assert receive.par.name.val == vacelive_td.ndi_source_name(socket.gethostname(), vacelive_td.PREVIEW_TO_TD)
    else:
        assert receive.par.sendername.val == vacelive_td.PREVIEW_TO_TD
    assert out.type == "nullTOP" and out.input() is receive
    args = build_parser().parse_args(shlex.split(vacelive_td.engine_command("depth_restyle", transport,
                                                                            preview=True))[1:])
    assert args.preview_sink == [f"{transport}:{vacelive_td.PREVIEW_TO_TD}"]
    assert "from_vacelive_preview" not in build("pose_dancer", transport, tmp_path)[2]


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
        assert vacelive_td.engine_command(module.PRESET, transport, preview=_preview(module),
                                          extra=_extra(module)) in doc
    assert (PRESETS / f"{module.PRESET}.toml").is_file()


@pytest.mark.parametrize("name", SCRIPTS)
def test_saves_only_its_component_as_a_tox_and_rebuilds_in_place(name, tmp_path):
    module, td, built = build(name, "spout", tmp_path)
    first = comp_of(td, name)
    assert td.saved_comps == [(first.path, str(tmp_path / f"{name}.tox"))]
    assert built["saved"] == str(tmp_path / f"{name}.tox")
    assert td.project.saved == []  # the user's open project is never saved
    with pytest.raises(ValueError, match=".tox"):
        module.main(td=td, transport="spout", save_path=str(tmp_path / f"{name}.toe"))
    module.main(td=td, transport="ndi", save_path=str(tmp_path / "again.tox"))
    assert first.destroyed and comp_of(td, name) is not first
    assert [c.name for c in td.op("/project1").children.values()] == [f"vacelive_{name}"]
    readme = comp_of(td, name).op("readme")
    assert vacelive_td.engine_command(module.PRESET, "ndi", preview=_preview(module),
                                      extra=_extra(module)) in readme.text


def test_engine_on_another_machine(tmp_path):
    td = StandinTD()
    example = importlib.import_module("depth_restyle")
    with pytest.raises(ValueError, match="engine_name"):  # NDI names the source after the engine's machine
        example.main(td=td, transport="ndi", save_path=str(tmp_path / "a.tox"), host="192.168.1.20")
    example.main(td=td, transport="ndi", save_path=str(tmp_path / "a.tox"), host="192.168.1.20",
                 engine_name="gpubox.studio.lan")
    comp = comp_of(td, "depth_restyle")
    receive = comp.op("from_vacelive")
    assert receive.par.name.val == "GPUBOX (vacelive_out)" and receive.par.extraips.val == "192.168.1.20"
    assert comp.op("osc_out").par.netaddress.val == "192.168.1.20"
    assert comp.op("oscout1").par.address.val == "192.168.1.20"
    (address, (target,)), *_ = run_cues(td, comp)["cue_connect"]
    host, _, port = target.rpartition(":")
    assert address == "/vacelive/osc_reply" and port == str(vacelive_td.REPLY_PORT)
    assert ipaddress.ip_address(host).version == 4
    assert vacelive_td.engine_command("depth_restyle", "ndi", td_host=host, preview=True) in comp.op("readme").text
    preview = comp.op("from_vacelive_preview")
    assert preview.par.name.val == "GPUBOX (vacelive_preview)" and comp.op("vacelive_preview").input() is preview


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
        assert vacelive_td.engine_command(module.PRESET, "spout", preview=_preview(module),
                                          extra=_extra(module)) in section


def test_default_save_path_is_next_to_the_scripts():
    td = StandinTD()
    importlib.import_module("pose_dancer").main(td=td, transport="ndi")
    assert td.saved_comps == [("/project1/vacelive_pose_dancer", str(EXAMPLES / "pose_dancer.tox"))]
    assert td.project.saved == []


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


def test_standin_checks_values_as_the_documentation_types_them():
    td = StandinTD()
    comp = td.op("/project1")
    out = comp.create(td.oscoutCHOP, "osc_out")
    with pytest.raises(StandinError, match="toggle"):
        out.par.cookalways = "on"
    with pytest.raises(StandinError, match="integer"):
        out.par.port = "9000"
    with pytest.raises(StandinError, match="string"):
        out.par.netaddress = 127
    receive = comp.create(td.ndiinTOP, "from_vacelive")
    with pytest.raises(StandinError, match="HOST \\(stream\\)"):
        receive.par.name = "vacelive_out"  # the bare stream name never connects
    receive.par.name = "STUDIO (vacelive_out)"
    status = comp.create(td.oscinDAT, "status_in")
    with pytest.raises(StandinError, match="references an operator"):
        status.par.callbacks = 3
    constant = comp.create(td.constantCHOP, "faders")
    with pytest.raises(StandinError, match="number"):
        constant.par.const0value = "1.0"
    with pytest.raises(StandinError, match=".tox"):
        comp.save("project.toe")
    with pytest.raises(AttributeError, match="save"):
        out.save("x.tox")


def test_standin_runs_an_osc_in_dats_callbacks():
    td = StandinTD()
    comp = td.op("/project1")
    log = comp.create(td.textDAT, "log")
    callbacks = comp.create(td.textDAT, "callbacks")
    callbacks.text = ("def onReceiveOSC(dat, rowIndex, message, bytes, timeStamp, address, args, peer):\n"
                      "    op('log').text += address + ' ' + repr(args) + '\\n'\n")
    status = comp.create(td.oscinDAT, "status_in")
    status.receive_osc("/a", [1.0])  # no callbacks DAT yet: nothing runs
    status.par.callbacks = callbacks
    status.receive_osc("/vacelive/seed", [7.0])
    assert log.text == "/vacelive/seed [7.0]\n"


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
