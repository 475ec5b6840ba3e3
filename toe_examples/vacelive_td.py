"""Shared building code for the TouchDesigner examples (run inside TouchDesigner).

Every example script (``depth_restyle.py``, ``pose_dancer.py``, ...) calls :func:`build_example`,
which creates one Base COMP and saves only that component as a ``.tox`` next to the scripts
(``COMP.save``; the open project is never saved), holding:

- ``faders`` (Constant CHOP) -> ``osc_out`` (OSC Out CHOP): number parameters. The OSC Out CHOP
  sends channel ``vacelive/context_scale`` as the address ``/vacelive/context_scale``, as floats
  (its ``numericformat``; int and double exist too, the engine takes floats for ints, bools and
  choice indices). ``cookalways`` is on, since nothing downstream views the CHOP, and
  ``sendevents`` is off: it sends a channel only when its value changes. So a fader set before
  the engine ran was never sent: ``cue_connect`` loads the preset and asks the engine for every
  fader's value, and ``status_callbacks`` (the OSC In DAT's callbacks) sets each fader from the
  answer, so faders and engine agree; ``cue_send_faders`` sends every fader's value once instead,
  when TouchDesigner's faders should win.
- ``oscout1`` (OSC Out DAT) plus one Text DAT per cue (``cue_*``): strings (prompts, choices,
  media paths) and actions. Right-click a cue DAT > Run Script to send it. Replies to queries and
  ``/vacelive/error`` answers come back to the OSC Out DAT itself.
- ``status_in`` (OSC In DAT, or OSC In CHOP): ``/vacelive/status/*`` and the answers to queries on
  the ``--osc-reply`` port.
- the video round trip: ``control`` (the frames TD sends) -> ``to_vacelive`` (Syphon Spout Out or
  NDI Out TOP) and ``from_vacelive`` (Syphon Spout In or NDI In TOP) -> ``vacelive_out`` (Null TOP).
  The NDI In TOP's ``name`` is the full source name as NDI lists it, ``HOST (vacelive_out)``: NDI
  names a source after its machine's host name in capitals (checked with NDI 6: host ``vm`` sends
  ``VM (vacelive_out)``); the bare stream name never connects.

Operator type and parameter names are TouchDesigner's own (docs.derivative.ca):
constantCHOP ``const{i}name``/``const{i}value`` (a sequence: ``seq.const.numBlocks``);
oscoutCHOP ``netaddress``, ``port``, ``active``, ``numericformat``, ``sendevents``,
``cookalways``; oscoutDAT ``address``, ``port``, ``active`` and ``sendOSC(address, args)``;
oscinDAT ``port``, ``active``, ``splitbundle``, ``splitmessage``, ``callbacks`` (whose DAT
defines ``onReceiveOSC(dat, rowIndex, message, bytes, timeStamp, address, args, peer)``);
oscinCHOP ``port``, ``active``, ``stripsegments``; syphonspoutoutTOP ``sendername``, ``active``;
syphonspoutinTOP ``sendername``; ndioutTOP ``name``, ``active``, ``fps``; ndiinTOP ``name``,
``active``, ``extraips``.

The functions take the ``td`` module as an argument, so the tests run them against a recording
stand-in outside TouchDesigner (``tests/td_standin.py``).
"""

from __future__ import annotations

import os
import socket
import sys

OSC_HOST = "127.0.0.1"
OSC_PORT = 9000
"""The engine's OSC control port (``--osc-port``)."""
REPLY_PORT = 9002
"""Where TouchDesigner listens for ``/vacelive/status/*`` (the engine's ``--osc-reply 127.0.0.1:9002``)."""
OSCQUERY_PORT = 9001
"""The engine's OSCQuery HTTP namespace (``--http-port``)."""

TD_TO_ENGINE = "vacelive_in"
"""Sender name of the frames TouchDesigner sends to the engine (``--source spout:vacelive_in``)."""
ENGINE_TO_TD = "vacelive_out"
"""Sender name of the frames the engine sends back (``--sink spout:vacelive_out``)."""
PREVIEW_TO_TD = "vacelive_preview"
"""Sender name of the control preview, what the model is given (``--preview-sink spout:vacelive_preview``)."""

TRANSPORTS = ("spout", "syphon", "ndi")
PREFIX = "vacelive/"
"""Channel prefix: the OSC Out CHOP turns channel ``vacelive/seed`` into ``/vacelive/seed``."""
COMMON_FADERS = ("context_scale", "seed", "steps", "prompt_transition")


def default_transport(platform: str | None = None) -> str:
    """Spout on Windows, Syphon on macOS, NDI elsewhere (or across machines)."""
    platform = sys.platform if platform is None else platform
    if platform.startswith("win"):
        return "spout"
    if platform == "darwin":
        return "syphon"
    return "ndi"


def engine_command(preset: str, transport: str, reply_port: int = REPLY_PORT,
                   td_host: str = "127.0.0.1", preview: bool = False, extra: str = "") -> str:
    """The ``vacelive run`` command that goes with an example on ``transport``.

    ``td_host`` is TouchDesigner's address as the engine sees it: another machine's address makes
    the engine listen on every interface, accept OSC only from it and send the status there.
    ``preview`` adds the control preview sink the example receives; ``extra``, the example's own
    flags (e.g. ``--loras``).
    """
    if transport not in TRANSPORTS:
        raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, not {transport!r}")
    command = (f"vacelive run --preset {preset} --source {transport}:{TD_TO_ENGINE} "
               f"--sink {transport}:{ENGINE_TO_TD} --osc-reply {td_host}:{reply_port}")
    if preview:
        command += f" --preview-sink {transport}:{PREVIEW_TO_TD}"
    if extra:
        command += f" {extra}"
    if td_host != "127.0.0.1":
        command += f" --osc-host 0.0.0.0 --osc-allow {td_host}"
    return command


def channel_name(param: str) -> str:
    """The Constant CHOP channel that the OSC Out CHOP sends to ``/vacelive/<param>``."""
    return PREFIX + param


def _place(node, x: int, y: int):
    node.nodeX, node.nodeY = x, y
    return node


def _connect(source, target) -> None:
    source.outputConnectors[0].connect(target)


def build_osc_control(parent, td, faders, host: str = OSC_HOST, port: int = OSC_PORT) -> dict:
    """A Constant CHOP of ``vacelive/<param>`` channels wired into an OSC Out CHOP, and an OSC Out DAT.

    ``faders`` is a sequence of ``(param, value)``: number parameters only (the CHOP sends floats).
    """
    faders = list(faders)
    constant = _place(parent.create(td.constantCHOP, "faders"), 0, 200)
    constant.seq.const.numBlocks = len(faders)
    for index, (param, value) in enumerate(faders):
        setattr(constant.par, f"const{index}name", channel_name(param))
        setattr(constant.par, f"const{index}value", float(value))

    chop_out = _place(parent.create(td.oscoutCHOP, "osc_out"), 200, 200)
    chop_out.par.netaddress = host
    chop_out.par.port = port
    chop_out.par.active = True
    chop_out.par.numericformat = "float"  # the default; the engine also takes floats for ints and bools
    chop_out.par.sendevents = False  # only changed values: a preset loaded in the engine is not overwritten
    chop_out.par.cookalways = True  # nothing downstream views it: without this it may never cook
    _connect(constant, chop_out)

    dat_out = _place(parent.create(td.oscoutDAT, "oscout1"), 200, 0)
    dat_out.par.address = host
    dat_out.par.port = port
    dat_out.par.active = True
    return {"faders": constant, "osc_out": chop_out, "oscout1": dat_out}


def cue_script(messages, sender: str = "oscout1") -> str:
    """Python for a Text DAT that sends ``messages`` (``(address, args)`` pairs) via the OSC Out DAT.

    A message with no argument is a query: the engine answers it (to ``oscout1`` and to the status
    port, where ``status_callbacks`` sets the fader of that address)."""
    lines = ["# Right-click > Run Script to send this cue to vacelive."]
    for address, args in messages:
        lines.append(f"op({sender!r}).sendOSC({address!r}, {list(args)!r})")
    return "\n".join(lines) + "\n"


def send_faders_script(faders: str = "faders", sender: str = "oscout1") -> str:
    """Python for a Text DAT that sends every fader's current value once (TouchDesigner's faders
    win over the engine's values; the OSC Out CHOP alone sends only values that change)."""
    return (
        "# Right-click > Run Script: send every fader's value to vacelive once.\n"
        f"faders = op({faders!r})\n"
        "for i in range(faders.seq.const.numBlocks):\n"
        "    name = getattr(faders.par, 'const%dname' % i).eval()\n"
        "    value = getattr(faders.par, 'const%dvalue' % i).eval()\n"
        f"    op({sender!r}).sendOSC('/' + name, [float(value)])\n"
    )


def fader_callbacks_script(faders: str = "faders") -> str:
    """Python for the OSC In DAT's callbacks DAT: a ``/vacelive/<param> value`` arriving (the
    engine's answer to a query) sets the fader whose channel is ``vacelive/<param>``."""
    return (
        "# status_in's callbacks: faders follow the engine's answers to cue_connect's queries.\n"
        "def onReceiveOSC(dat, rowIndex, message, bytes, timeStamp, address, args, peer):\n"
        "    if not args or not address.startswith('/vacelive/') or address.startswith('/vacelive/status/'):\n"
        "        return\n"
        "    value = args[0]\n"
        "    if isinstance(value, str):\n"
        "        return\n"
        f"    faders = op({faders!r})\n"
        "    for i in range(faders.seq.const.numBlocks):\n"
        "        if getattr(faders.par, 'const%dname' % i).eval() == address[1:]:\n"
        "            setattr(faders.par, 'const%dvalue' % i, float(value))\n"
        "    return\n"
    )


def build_cues(parent, td, cues) -> dict:
    """One Text DAT per cue: ``cues`` maps a cue name to a list of ``(address, args)`` messages,
    or to the script itself (a string)."""
    out = {}
    for index, (name, messages) in enumerate(cues.items()):
        dat = _place(parent.create(td.textDAT, f"cue_{name}"), 400, 200 - 120 * index)
        dat.text = messages if isinstance(messages, str) else cue_script(messages)
        out[dat.name] = dat
    return out


def build_status_in(parent, td, port: int = REPLY_PORT, kind: str = "dat"):
    """Where ``/vacelive/status/*`` and the answers to queries arrive: an OSC In DAT (all messages,
    strings included; its callbacks DAT ``status_callbacks`` makes the faders follow the answers)
    or an OSC In CHOP (numbers only, one channel per figure; faders do not follow)."""
    if kind == "dat":
        status = parent.create(td.oscinDAT, "status_in")
        status.par.splitbundle = True
        status.par.splitmessage = True
        callbacks = _place(parent.create(td.textDAT, "status_callbacks"), 200, -320)
        callbacks.text = fader_callbacks_script()
        status.par.callbacks = callbacks
    elif kind == "chop":
        status = parent.create(td.oscinCHOP, "status_in")
        status.par.stripsegments = 2  # /vacelive/status/fps -> channel "fps"
    else:
        raise ValueError(f"kind must be 'dat' or 'chop', not {kind!r}")
    status.par.port = port
    status.par.active = True
    return _place(status, 200, -200)


def ndi_source_name(host_name: str, stream: str = ENGINE_TO_TD) -> str:
    """The name NDI lists a source under: ``HOST (stream)``, the host name without its domain, in
    capitals (NDI 6 lists host ``vm``'s stream ``x`` as ``VM (x)``)."""
    if not host_name or host_name.startswith(("127.", "localhost")) or host_name.replace(".", "").isdigit():
        raise ValueError(f"NDI names a source after its machine's host name, not {host_name!r}: "
                         "give the engine machine's name (what `hostname` prints there)")
    return f"{host_name.split('.')[0].upper()} ({stream})"


def _receiver(parent, td, transport: str, op_name: str, stream: str, engine_name: str | None,
              engine_host: str):
    """A TOP receiving the engine's sender ``stream`` over ``transport``."""
    if transport in ("spout", "syphon"):  # one operator serves both: Spout on Windows, Syphon on macOS
        receive = parent.create(td.syphonspoutinTOP, op_name)
        receive.par.sendername = stream
    else:
        receive = parent.create(td.ndiinTOP, op_name)
        receive.par.name = ndi_source_name(engine_name or socket.gethostname(), stream)
        if engine_host not in ("127.0.0.1", "localhost"):
            receive.par.extraips = engine_host  # finds the engine without multicast discovery
        receive.par.active = True
    return receive


def build_video_io(parent, td, transport: str, control, fps: float = 24.0,
                   engine_name: str | None = None, engine_host: str = OSC_HOST, preview: bool = False) -> dict:
    """Send ``control`` (a TOP) to the engine and receive its output, over ``transport``; with
    ``preview`` also the control preview (what the model is given) into ``vacelive_preview``.

    For NDI, ``engine_name`` is the engine machine's host name (default: this machine's, for an
    engine on the same machine) and ``engine_host`` its address, searched directly when not local.
    """
    if transport in ("spout", "syphon"):
        send = parent.create(td.syphonspoutoutTOP, "to_vacelive")
        send.par.sendername = TD_TO_ENGINE
        send.par.active = True
    elif transport == "ndi":
        send = parent.create(td.ndioutTOP, "to_vacelive")
        send.par.name = TD_TO_ENGINE
        send.par.fps = fps
        send.par.active = True
    else:
        raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, not {transport!r}")
    receive = _receiver(parent, td, transport, "from_vacelive", ENGINE_TO_TD, engine_name, engine_host)
    _place(send, 400, -400)
    _place(receive, 0, -600)
    _connect(control, send)
    out = _place(parent.create(td.nullTOP, "vacelive_out"), 200, -600)
    _connect(receive, out)
    built = {"to_vacelive": send, "from_vacelive": receive, "vacelive_out": out}
    if preview:
        preview_in = _place(_receiver(parent, td, transport, "from_vacelive_preview", PREVIEW_TO_TD,
                                      engine_name, engine_host), 0, -800)
        preview_out = _place(parent.create(td.nullTOP, "vacelive_preview"), 200, -800)
        _connect(preview_in, preview_out)
        built.update(from_vacelive_preview=preview_in, vacelive_preview=preview_out)
    return built


def build_camera(parent, td):
    """A camera (Video Device In TOP) into a Null TOP named ``control``: what the engine receives."""
    camera = _place(parent.create(td.videodeviceinTOP, "camera"), 0, -400)
    control = _place(parent.create(td.nullTOP, "control"), 200, -400)
    _connect(camera, control)
    return camera, control


def reply_host(engine_host: str) -> str:
    """This machine's address as the engine at ``engine_host`` sees it (``127.0.0.1`` when local)."""
    if engine_host in ("127.0.0.1", "localhost"):
        return "127.0.0.1"
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect((engine_host, OSC_PORT))  # UDP: picks the route, sends nothing
            return probe.getsockname()[0]
    except OSError:
        pass
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"  # unknown: correct cue_connect's osc_reply by hand


def connect_cue(preset: str, reply_port: int = REPLY_PORT, host: str = "127.0.0.1", faders=()) -> list:
    """Messages that point the engine's status at this TouchDesigner (``host``), load the preset,
    then ask for each fader's value (the answers set the faders: faders and engine agree)."""
    return [
        ("/vacelive/osc_reply", [f"{host}:{reply_port}"]),
        ("/vacelive/preset_load", [preset]),
        *[("/" + channel_name(param), []) for param, _ in faders],
    ]


def build_example(td, *, name: str, preset: str, faders, cues, transport: str | None = None,
                  control=None, parent_path: str = "/project1", save_path: str | None = None,
                  status_kind: str = "dat", host: str = OSC_HOST, engine_name: str | None = None,
                  preview: bool = False, engine_flags: str = "") -> dict:
    """Build an example as ``<parent_path>/vacelive_<name>`` and save that component as a ``.tox``.

    Only the component is saved (``COMP.save``), never the open project: drag the ``.tox`` into
    any project. ``control`` is ``None`` for a camera, or a function ``(comp, td) -> TOP`` that
    builds the frames to send. ``host`` is the engine's address (another machine: start it with
    ``--osc-host``); over NDI, ``engine_name`` is that machine's host name (needed when ``host`` is
    not this machine). ``cues`` maps cue names to ``(address, args)`` lists; a ``connect`` cue
    (reply target, preset, fader queries), a ``send_faders`` cue and a ``cut`` cue are added.
    Returns the created operators by name, plus ``"comp"`` and ``"saved"`` (the ``.tox`` path).
    """
    transport = transport or default_transport()
    local = host in ("127.0.0.1", "localhost")
    if transport == "ndi" and not local and not engine_name:
        raise ValueError(f"the engine at {host} sends NDI as 'HOST ({ENGINE_TO_TD})' after its machine's "
                         "name: pass engine_name='...' (what `hostname` prints on that machine)")
    if save_path is None:
        save_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.tox")
    if not save_path.endswith(".tox"):
        raise ValueError(f"save_path {save_path!r}: the example is saved as a component, give a .tox path")
    faders = list(faders)
    root = td.op(parent_path)
    comp_name = f"vacelive_{name}"
    old = root.op(comp_name)
    if old is not None:
        old.destroy()
    comp = root.create(td.baseCOMP, comp_name)

    td_host = reply_host(host)
    built = {"comp": comp}
    built.update(build_osc_control(comp, td, faders, host=host))
    all_cues = {"connect": connect_cue(preset, host=td_host, faders=faders)}
    all_cues.update(cues)
    all_cues["send_faders"] = send_faders_script()
    all_cues["cut"] = [("/vacelive/cut", [1])]
    built.update(build_cues(comp, td, all_cues))
    built["status_in"] = build_status_in(comp, td, kind=status_kind)
    if status_kind == "dat":
        built["status_callbacks"] = comp.op("status_callbacks")
    if control is None:
        built["camera"], source = build_camera(comp, td)
    else:
        source = control(comp, td)
    built["control"] = source
    built.update(build_video_io(comp, td, transport, source, engine_name=engine_name, engine_host=host,
                                preview=preview))

    readme = _place(comp.create(td.textDAT, "readme"), -200, 200)
    readme.text = (f"vacelive example '{name}' ({transport}).\n"
                   "Start the engine with:\n  "
                   f"{engine_command(preset, transport, td_host=td_host, preview=preview, extra=engine_flags)}\n"
                   "Run cue_connect once (right-click > Run Script): it loads the preset and the faders take "
                   "its values.\nMove the faders, run the other cues; cue_send_faders sends every fader once.\n"
                   f"Status arrives in status_in (UDP {REPLY_PORT}); replies to queries and errors in oscout1.\n")
    if transport == "ndi":
        readme.text += (f"from_vacelive's Source Name is {built['from_vacelive'].par.name.val!r} "
                        "(NDI lists sources as 'HOST (name)'); if it stays black, pick the engine's "
                        "source from its menu.\n")
    built["readme"] = readme

    comp.save(save_path)
    built["saved"] = save_path
    return built


def example_main(module_name: str):
    """The ``main`` of an example script: it builds the network that module describes (``NAME``,
    ``PRESET``, ``FADERS``, ``CUES``, and optionally ``PREVIEW``, ``ENGINE_FLAGS`` and a
    ``build_control(comp, td)`` making the frames to send) and saves it as a ``.tox``."""

    def main(td=None, transport=None, save_path=None, host=OSC_HOST, engine_name=None):
        """Build the network and save it as a .tox; ``td`` defaults to TouchDesigner's own module,
        ``host`` is the engine's address (127.0.0.1: the same machine), ``engine_name`` its machine's
        host name (NDI from another machine)."""
        if td is None:
            import td  # only importable inside TouchDesigner
        example = sys.modules[module_name]
        return build_example(td, name=example.NAME, preset=example.PRESET, faders=example.FADERS,
                             cues=example.CUES, transport=transport, save_path=save_path, host=host,
                             engine_name=engine_name, control=getattr(example, "build_control", None),
                             preview=getattr(example, "PREVIEW", False),
                             engine_flags=getattr(example, "ENGINE_FLAGS", ""))

    return main
