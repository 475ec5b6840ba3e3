"""A small recording stand-in for TouchDesigner's ``td`` module, for testing ``toe_examples/``.

It records what a build script does (operators created, parameters set, wires, Text DAT
contents, ``sendOSC`` calls, ``COMP.save`` and ``project.save``) and refuses what TouchDesigner
would refuse or what is most likely a typo: an operator type it does not know, a parameter name
an operator does not have, a value of the wrong kind for a parameter (a toggle, a number, a
string, a menu token, an operator reference), a wire into an operator without inputs or across
families, and an NDI In TOP source name that is not NDI's full ``HOST (stream)``. An OSC In DAT
can be handed a message (:meth:`StandinOP.receive_osc`): it calls its callbacks DAT's
``onReceiveOSC`` as TouchDesigner does.

The operator types and parameter names are those of TouchDesigner's own reference
(docs.derivative.ca, e.g. "OSC Out CHOP": Network Address ``netaddress``, Network Port ``port``),
restricted to the operators the examples use. A parameter missing here but real in
TouchDesigner only needs adding to :data:`PARAMS` with its documented name.
"""

from __future__ import annotations

import re
from typing import Any

TOP_COMMON = frozenset({
    "outputresolution", "resolutionw", "resolutionh", "resmenu", "resmult", "outputaspect",
    "aspect1", "aspect2", "armenu", "inputfiltertype", "fillmode", "filtertype", "npasses",
    "chanmask", "format",
})
CHOP_COMMON = frozenset({"timeslice", "scope", "srselect", "exportmethod", "autoexportroot", "exporttable"})
DAT_COMMON = frozenset({"language", "extension", "customext", "wordwrap"})
OSC_DAT = frozenset({
    "active", "protocol", "address", "port", "localaddress", "shared", "addscope", "typetag",
    "splitbundle", "splitmessage", "bundletimestamp", "callbacks", "executeloc", "fromop", "clamp",
    "maxlines", "clear", "bytes",
})

PARAMS: dict[str, frozenset[str]] = {
    "baseCOMP": frozenset(),
    "containerCOMP": frozenset(),
    "constantCHOP": CHOP_COMMON | {"snap", "first", "current", "single", "start", "startunit", "end",
                                   "endunit", "rate", "left", "right", "defval"},
    "oscoutCHOP": CHOP_COMMON | {"active", "protocol", "netaddress", "port", "localaddress", "maxsize",
                                 "maxsizeunit", "cookalways", "numericformat", "format", "maxbytes",
                                 "sendevents"},
    "oscinCHOP": CHOP_COMMON | {"active", "protocol", "netaddress", "port", "localaddress",
                                "oscaddressscope", "useglobalrate", "samplerate", "queued",
                                "queuevariance", "queuevarianceunit", "maxqueue", "maxqueueunit",
                                "adjusttime", "adjusttimeunit", "stripsegments", "resetchannels",
                                "resetchannelspulse", "resetvalues"},
    "oscoutDAT": DAT_COMMON | OSC_DAT,
    "oscinDAT": DAT_COMMON | OSC_DAT,
    "textDAT": DAT_COMMON,
    "syphonspoutoutTOP": TOP_COMMON | {"active", "sendername"},
    "syphonspoutinTOP": TOP_COMMON | {"usespoutactivesender", "sendername"},
    "ndioutTOP": TOP_COMMON | {"active", "name", "failovername", "fps", "lowperformancebehavior",
                               "outputpixelformat", "includealpha", "grouptable", "audiochop", "metadata"},
    "ndiinTOP": TOP_COMMON | {"active", "name", "extraips", "bandwidth", "hwdecode", "inputpixelformat",
                              "grouptable", "audiobuflen"},
    "nullTOP": TOP_COMMON,
    "videodeviceinTOP": TOP_COMMON,
    "rectangleTOP": TOP_COMMON | {"sizex", "sizey", "sizeunit", "rotate", "centerx", "centery",
                                  "centerunit", "justifyh", "justifyv", "fillcolorr", "fillcolorg",
                                  "fillcolorb", "fillalpha", "borderr", "borderg", "borderb",
                                  "borderalpha", "bgcolorr", "bgcolorg", "bgcolorb", "bgalpha",
                                  "multrgbbyalpha", "borderwidth", "borderwidthunit", "borderoffset",
                                  "cornerradius", "cornerradiusunit", "antialias", "softness",
                                  "softnessunit", "compoverinput", "operand", "swaporder"},
}
"""Operator type -> the parameter names it has (by TouchDesigner's documentation).

Menu parameters are checked against :data:`MENUS`; other values are not type-checked.
"""

TOGGLES = frozenset({
    "active", "cookalways", "sendevents", "splitbundle", "splitmessage", "typetag", "bundletimestamp",
    "shared", "clamp", "usespoutactivesender", "includealpha", "hwdecode", "compoverinput",
    "multrgbbyalpha", "antialias", "queued", "useglobalrate", "resetchannels", "resetvalues",
    "wordwrap", "snap",
})
"""Toggle parameters: ``True``/``False`` (TouchDesigner also takes 0 and 1)."""
INTS = frozenset({"port", "stripsegments", "maxlines", "maxsize", "maxbytes", "resolutionw", "resolutionh"})
"""Integer parameters."""
STRINGS = frozenset({"netaddress", "address", "localaddress", "sendername", "name", "failovername", "extraips"})
"""String parameters."""
OP_REFS = frozenset({"callbacks", "fromop", "audiochop", "grouptable"})
"""Parameters that reference another operator: an operator or its path."""
NUMBERS = frozenset({"fps", "rate", "fillcolorr", "fillcolorg", "fillcolorb", "fillalpha", "sizex", "sizey",
                     "centerx", "centery", "rotate", "softness", "borderwidth", "cornerradius"})
"""Float parameters (ints accepted)."""

_PROTOCOLS = frozenset({"msging", "multicastmsging", "reliablemsging"})
MENUS: dict[tuple[str, str], frozenset[str]] = {
    ("oscoutCHOP", "numericformat"): frozenset({"int", "float", "double"}),
    ("oscoutCHOP", "protocol"): _PROTOCOLS,
    ("oscoutDAT", "protocol"): _PROTOCOLS,
    ("oscinDAT", "protocol"): _PROTOCOLS,
    ("oscinCHOP", "protocol"): frozenset({"msging", "multicastmsging"}),
    ("ndiinTOP", "bandwidth"): frozenset({"high", "low"}),
}
"""(operator type, menu parameter) -> its menu tokens, by TouchDesigner's documentation."""

INPUTS = {
    "baseCOMP": 0, "containerCOMP": 0, "constantCHOP": 2, "oscoutCHOP": 1, "oscinCHOP": 0,
    "oscoutDAT": 1, "oscinDAT": 0, "textDAT": 1, "syphonspoutoutTOP": 1, "syphonspoutinTOP": 0,
    "ndioutTOP": 1, "ndiinTOP": 0, "nullTOP": 1, "videodeviceinTOP": 0, "rectangleTOP": 1,
}
"""Operator type -> number of inputs."""

_CONST = re.compile(r"^const(\d+)(name|value)$")
_NDI_SOURCE = re.compile(r"^\S.* \(.+\)$")
"""NDI lists every source as ``HOST (stream)``; the NDI In TOP's ``name`` must be that full name."""
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class StandinError(Exception):
    """Something TouchDesigner would refuse (or a typo it would not catch for you)."""


class OpType:
    """The stand-in for an operator type object such as ``td.oscoutCHOP``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


def family(type_name: str) -> str:
    for suffix in ("COMP", "CHOP", "TOP", "DAT"):
        if type_name.endswith(suffix):
            return suffix
    raise StandinError(f"no operator family in {type_name!r}")


class Par:
    """One parameter: its value (``val``), set by assignment on ``op.par``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.val: Any = None
        self.set = False

    def eval(self) -> Any:
        return self.val


class ParCollection:
    """``op.par``: only the parameter names the operator type has."""

    def __init__(self, owner: StandinOP) -> None:
        object.__setattr__(self, "_owner", owner)
        object.__setattr__(self, "_pars", {})

    def _allowed(self, name: str) -> bool:
        owner = self._owner
        match = _CONST.match(name)
        if owner.type == "constantCHOP" and match:
            return int(match.group(1)) < owner.seq.const.numBlocks
        return name in PARAMS[owner.type]

    def _par(self, name: str) -> Par:
        if name.startswith("_") or not self._allowed(name):
            raise AttributeError(f"{self._owner.type} {self._owner.path} has no parameter {name!r}")
        return self._pars.setdefault(name, Par(name))

    def __getattr__(self, name: str) -> Par:
        return self._par(name)

    def __setattr__(self, name: str, value: Any) -> None:
        par = self._par(name)
        value = value.val if isinstance(value, Par) else value
        menu = MENUS.get((self._owner.type, name))
        if menu is not None and value not in menu:
            raise StandinError(f"{self._owner.type}.par.{name}: {value!r} is not one of {sorted(menu)}")
        _check_kind(self._owner, name, value)
        par.val = value
        par.set = True

    def values(self) -> dict[str, Any]:
        """Every parameter the script set, by name."""
        return {name: par.val for name, par in self._pars.items() if par.set}


def _check_kind(owner: "StandinOP", name: str, value: Any) -> None:
    """Refuse a value of the wrong kind for parameter ``name`` of ``owner``."""
    where = f"{owner.type}.par.{name}"
    if _CONST.match(name):
        expected = str if name.endswith("name") else (int, float)
        if not isinstance(value, expected) or isinstance(value, bool):
            raise StandinError(f"{where}: {value!r} is not a {'channel name' if expected is str else 'number'}")
        return
    if name in TOGGLES:
        if value not in (True, False, 0, 1):
            raise StandinError(f"{where} is a toggle: {value!r} is not True/False")
    elif name in INTS:
        if not isinstance(value, int) or isinstance(value, bool):
            raise StandinError(f"{where} is an integer: {value!r}")
    elif name in NUMBERS:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise StandinError(f"{where} is a number: {value!r}")
    elif name in STRINGS:
        if not isinstance(value, str):
            raise StandinError(f"{where} is a string: {value!r}")
        if (owner.type, name) == ("ndiinTOP", "name") and value and not _NDI_SOURCE.match(value):
            raise StandinError(f"{where}: {value!r} is not an NDI source name; NDI lists sources as "
                               "'HOST (stream)' and the NDI In TOP only connects to that full name")
    elif name in OP_REFS and not isinstance(value, (str, StandinOP)):
        raise StandinError(f"{where} references an operator: {value!r}")


class Sequence:
    def __init__(self, blocks: int) -> None:
        self.numBlocks = blocks


class SeqCollection:
    """``op.seq``: the Constant CHOP's ``const`` sequence (a fresh one has one block)."""

    def __init__(self, owner: StandinOP) -> None:
        self._owner = owner
        self._seqs = {"const": Sequence(1)} if owner.type == "constantCHOP" else {}

    def __getattr__(self, name: str) -> Sequence:
        if name.startswith("_") or name not in self._seqs:
            raise AttributeError(f"{self._owner.type} has no sequence {name!r}")
        return self._seqs[name]


class Connector:
    def __init__(self, owner: StandinOP, index: int, is_input: bool) -> None:
        self.owner, self.index, self.isInput = owner, index, is_input

    def connect(self, target: Any) -> None:
        if self.isInput:
            source = target.owner if isinstance(target, Connector) else target
            source.outputConnectors[0].connect(self)
            return
        if isinstance(target, Connector):
            if not target.isInput:
                raise StandinError("connect an output to an input")
            connector = target
        else:
            if not target.inputConnectors:
                raise StandinError(f"{target.type} {target.path} has no inputs")
            connector = target.inputConnectors[0]
        if family(connector.owner.type) != family(self.owner.type):
            raise StandinError(f"cannot wire {self.owner.type} into {connector.owner.type}")
        connector.owner.inputs[connector.index] = self.owner


class StandinOP:
    """An operator: records its type, parameters, wires and (DATs) text."""

    _ATTRS = {"nodeX", "nodeY", "text", "comment"}

    def __init__(self, td: StandinTD, type_name: str, name: str, parent: StandinOP | None) -> None:
        d = self.__dict__
        d.update(td=td, type=type_name, name=name, parent=parent, children={}, destroyed=False,
                 nodeX=0, nodeY=0, comment="")
        d["path"] = "/" if parent is None else f"{parent.path.rstrip('/')}/{name}"
        d["par"] = ParCollection(self)
        d["seq"] = SeqCollection(self)
        n_inputs = INPUTS[type_name]
        d["inputs"] = [None] * n_inputs
        d["inputConnectors"] = [Connector(self, i, True) for i in range(n_inputs)]
        d["outputConnectors"] = [Connector(self, 0, False)]
        if family(type_name) == "DAT":
            d["text"] = ""

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self._ATTRS or (name == "text" and family(self.type) != "DAT"):
            raise AttributeError(f"{self.type} has no settable member {name!r}")
        self.__dict__[name] = value

    def create(self, op_type: Any, name: str) -> StandinOP:
        if family(self.type) != "COMP":
            raise StandinError(f"{self.type} cannot hold operators")
        type_name = op_type.name if isinstance(op_type, OpType) else op_type
        if type_name not in PARAMS:
            raise StandinError(f"unknown operator type {type_name!r}")
        if not _NAME.match(name):
            raise StandinError(f"bad operator name {name!r}")
        if name in self.children:
            raise StandinError(f"{self.path} already has an operator named {name!r}")
        node = StandinOP(self.td, type_name, name, self)
        self.children[name] = node
        self.td.created.append(node)
        return node

    def op(self, path: str) -> StandinOP | None:
        node: StandinOP | None = self
        for part in path.strip("/").split("/"):
            if node is None:
                return None
            node = node.children.get(part)
        return node

    def destroy(self) -> None:
        self.parent.children.pop(self.name, None)
        self.__dict__["destroyed"] = True

    def sendOSC(self, address: str, args: list, asBundle: bool = False) -> int:  # noqa: N802, N803
        if self.type != "oscoutDAT":
            raise AttributeError(f"{self.type} has no sendOSC")
        if not isinstance(address, str) or not isinstance(args, (list, tuple)):
            raise StandinError("sendOSC(address: str, args: list)")
        self.td.sent.append((self.path, address, list(args)))
        return 0

    def save(self, path: str, createFolders: bool = False) -> str:  # noqa: N803
        """``COMP.save``: save this component (and what it holds) as a ``.tox``; returns the path."""
        if family(self.type) != "COMP":
            raise AttributeError(f"{self.type} has no save")
        if not str(path).endswith(".tox"):
            raise StandinError(f"COMP.save({path!r}): a component is saved as a .tox")
        self.td.saved_comps.append((self.path, str(path)))
        return str(path)

    def receive_osc(self, address: str, args: list) -> None:
        """An OSC In DAT receiving one message: its callbacks DAT's ``onReceiveOSC`` runs, with
        ``op()`` relative to that DAT, as TouchDesigner calls it."""
        if self.type != "oscinDAT":
            raise AttributeError(f"{self.type} receives no OSC messages")
        callbacks = self.par.callbacks.val
        if callbacks is None:
            return
        dat = callbacks if isinstance(callbacks, StandinOP) else self.parent.op(callbacks)
        if dat is None or family(dat.type) != "DAT":
            raise StandinError(f"{self.path}.par.callbacks: {callbacks!r} is no DAT")
        scope = {"op": dat.parent.op, "__name__": "__td_dat__"}
        exec(compile(dat.text, dat.path, "exec"), scope)
        message = " ".join([address, *map(str, args)])
        scope["onReceiveOSC"](self, 0, message, message.encode(), 0.0, address, list(args), None)

    def run(self) -> None:
        """Run a DAT's text as a script, with ``op()`` relative to the DAT (as TouchDesigner does)."""
        if family(self.type) != "DAT":
            raise AttributeError(f"{self.type} has no run")
        exec(compile(self.text, self.path, "exec"), {"op": self.parent.op, "__name__": "__td_dat__"})

    def input(self) -> StandinOP | None:
        return self.inputs[0] if self.inputs else None

    def __repr__(self) -> str:
        return f"<{self.type} {self.path}>"


class Project:
    """``td.project``: ``save`` writes the whole open project (the user's!) to ``path``."""

    def __init__(self) -> None:
        self.saved: list[str] = []

    def save(self, path: str | None = None, saveExternalToxs: bool = False) -> bool:  # noqa: N803
        self.saved.append(path)
        return True


class StandinTD:
    """The ``td`` module as the examples use it: operator types, ``op()``, ``project``."""

    def __init__(self) -> None:
        self.created: list[StandinOP] = []
        self.sent: list[tuple[str, str, list]] = []
        self.saved_comps: list[tuple[str, str]] = []  # (component path, .tox path)
        self.project = Project()
        self._top = StandinOP(self, "baseCOMP", "", None)
        project1 = StandinOP(self, "containerCOMP", "project1", self._top)
        self._top.children["project1"] = project1
        for type_name in PARAMS:
            setattr(self, type_name, OpType(type_name))

    def op(self, path: str) -> StandinOP | None:
        return self._top.op(path)
