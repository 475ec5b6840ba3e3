"""The parameter registry: every parameter of the engine, declared once.

OSC addresses, the OSCQuery tree, presets, CLI flags and the README's reference are all
derived from :data:`REGISTRY`. A parameter's ``applies`` says when a change takes effect:

- ``chunk``: at the next chunk boundary, as part of one consistent snapshot;
- ``now``: immediately (pause, hard cut, fps, preset actions, reply target);
- ``restart``: only when the engine starts (resolution, model, ports); read-only over OSC.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from vacelive.engine.placement import LAYOUTS

OSC_PREFIX = "/vacelive/"
MAX_STRING_LENGTH = 2000
"""Longest string any parameter accepts (prompts included); longer ones are refused."""


class Kind(str, enum.Enum):
    """The value type of a parameter."""

    FLOAT = "float"
    INT = "int"
    BOOL = "bool"
    STRING = "string"
    CHOICE = "choice"
    PATH = "path"  # a file below the media folder (confined; see engine.paths)
    STRING_LIST = "string_list"
    TRIGGER = "trigger"  # an action with no value: no argument, nil, impulse, true or a non-zero number fires it


class Applies(str, enum.Enum):
    """When a change to a parameter takes effect."""

    CHUNK = "chunk"
    NOW = "now"
    RELOAD = "reload"  # set live, it waits as pending until /vacelive/reload rebuilds what it needs
    RESTART = "restart"


class ParamError(ValueError):
    """A value cannot be taken: wrong type, not a choice, not finite, too long."""


OSCQUERY_UNITS: dict[str, str] = {
    "px": "distance.pixels",
    "fps": "time.hz",
    "ms": "time.ms",
    "s": "time.second",
    "chunks": "",
    "frames": "",
}
"""Each ``Param.unit`` and its name in the OSCQuery proposal's unit list ('' where none fits).

The registry refuses a unit missing here, so a new unit is mapped (or marked as having no
OSCQuery name) when it is introduced.
"""


@dataclass(frozen=True)
class Param:
    """One parameter: its name, type, default, bounds and documentation."""

    name: str
    kind: Kind
    default: Any
    description: str
    applies: Applies = Applies.CHUNK
    group: str = "general"
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    unit: str = ""
    in_presets: bool = True  # saved to and loaded from presets
    text_format: str = ""  # a STRING's form when not empty: a key of TEXT_FORMATS

    @property
    def address(self) -> str:
        """The OSC address, e.g. ``/vacelive/context_scale``."""
        return OSC_PREFIX + self.name

    @property
    def cli_flag(self) -> str:
        """The command-line flag, e.g. ``--context-scale``."""
        return "--" + self.name.replace("_", "-")

    @property
    def oscquery_unit(self) -> str:
        """The unit as the OSCQuery proposal names it, or '' (no unit, or none in its list fits)."""
        return OSCQUERY_UNITS.get(self.unit, "")

    @property
    def writable_live(self) -> bool:
        """Whether OSC may change it while the engine runs (a RELOAD value as pending)."""
        return self.applies is not Applies.RESTART

    def coerce(self, value: Any) -> tuple[Any, str | None]:
        """Return ``(value, note)``: the value in this parameter's type, clamped into range.

        ``note`` says what was adjusted (a clamp), or is ``None``. Raises :class:`ParamError`
        for a value of the wrong type, a NaN or infinity, an unknown choice or a string that
        is too long. Floats are accepted for ints and bools (TouchDesigner's OSC Out CHOP
        sends only floats); a float or int for a choice picks it by index.
        """
        kind = self.kind
        if kind is Kind.FLOAT:
            number = _as_number(self.name, value)
            return self._clamp(float(number))
        if kind is Kind.INT:
            number = _as_number(self.name, value)
            rounded = int(round(number))
            value_out, note = self._clamp(rounded)
            if note is None and rounded != number:
                note = f"{self.name}: {number!r} rounded to {rounded}"
            return int(value_out), note
        if kind is Kind.BOOL:
            return _as_bool(self.name, value), None
        if kind is Kind.TRIGGER:
            # OSC nil (N) and impulse (I) carry no value: they fire, as a message without arguments does
            return (True if value is None else _as_bool(self.name, value)), None
        if kind is Kind.CHOICE:
            return self._choice(value), None
        if kind is Kind.STRING_LIST:
            items = [value] if isinstance(value, str) else value
            if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
                raise ParamError(f"{self.name}: expected a list of strings, got {_describe(value)}")
            return [_as_string(self.name, i) for i in items], None
        text = _as_string(self.name, value)  # STRING, PATH
        if text and self.text_format:
            pattern, example = TEXT_FORMATS[self.text_format]
            if not re.fullmatch(pattern, text):
                raise ParamError(f"{self.name}: {text!r} is not {self.text_format} (e.g. {example})")
        return text, None

    def check(self, value: Any, label: str | None = None) -> Any:
        """The value in this parameter's type, for values given at start (flags, presets): where
        :meth:`coerce` would clamp or round, this refuses with :class:`ParamError` naming
        ``label`` (default ``name = value``), the value and the range."""
        coerced, note = self.coerce(value)
        if note is None:
            return coerced
        number = _as_number(self.name, value)
        label = label or f"{self.name} = {_fmt(number)}"
        low = -math.inf if self.minimum is None else self.minimum
        high = math.inf if self.maximum is None else self.maximum
        if not low <= number <= high:
            raise ParamError(f"{label}: out of range {self.range_text()}")
        raise ParamError(f"{label}: must be a whole number")

    def _clamp(self, number: float) -> tuple[float, str | None]:
        low = -math.inf if self.minimum is None else self.minimum
        high = math.inf if self.maximum is None else self.maximum
        if number < low or number > high:
            clamped = min(max(number, low), high)
            clamped = type(number)(clamped)
            return clamped, f"{self.name}: {number!r} out of range [{low}, {high}], clamped to {clamped!r}"
        return number, None

    def _choice(self, value: Any) -> str:
        if isinstance(value, str):
            if value in self.choices:
                return value
            raise ParamError(f"{self.name}: {value!r} is not one of {', '.join(self.choices)}")
        number = _as_number(self.name, value)
        index = int(round(number))
        if index != number or not 0 <= index < len(self.choices):
            raise ParamError(
                f"{self.name}: index {number!r} is not a whole number in 0..{len(self.choices) - 1}"
            )
        return self.choices[index]

    def range_text(self) -> str:
        """Human-readable range or choices, for tables and docs."""
        if self.choices:
            return " | ".join(self.choices)
        if self.minimum is not None or self.maximum is not None:
            return f"{_fmt(self.minimum)} .. {_fmt(self.maximum)}"
        return ""


def _fmt(number: float | None) -> str:
    if number is None:
        return ""
    return str(int(number)) if float(number).is_integer() else str(number)


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:40]}{'...' if len(text) > 40 else ''}"


def _as_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParamError(f"{name}: expected a number, got {_describe(value)}")
    if not math.isfinite(value):
        raise ParamError(f"{name}: {value!r} is not a finite number")
    return value


def _as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ParamError(f"{name}: {value!r} is not a finite number")
        return value != 0
    if isinstance(value, str) and value.lower() in ("true", "on", "yes", "1", "false", "off", "no", "0"):
        return value.lower() in ("true", "on", "yes", "1")
    raise ParamError(f"{name}: expected a bool (or 0/1), got {_describe(value)}")


TEXT_FORMATS: dict[str, tuple[str, str]] = {
    "host:port": (r"[^\s:]*:(6553[0-5]|655[0-2]\d|65[0-4]\d{2}|6[0-4]\d{3}|[1-5]\d{4}|[1-9]\d{0,3})",
                  "127.0.0.1:9002"),
}
"""Forms a STRING parameter may require: a full-match pattern and an example for the error."""


def _as_string(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ParamError(f"{name}: expected a string, got {_describe(value)}")
    if len(value) > MAX_STRING_LENGTH:
        raise ParamError(f"{name}: string of {len(value)} characters, the limit is {MAX_STRING_LENGTH}")
    if "\x00" in value:
        raise ParamError(f"{name}: string contains a NUL character")
    return value


class Registry:
    """An ordered, name-indexed collection of :class:`Param`."""

    def __init__(self, params: Sequence[Param]) -> None:
        self._params = {p.name: p for p in params}
        if len(self._params) != len(params):
            raise ValueError("duplicate parameter names in the registry")
        for p in params:
            if p.unit and p.unit not in OSCQUERY_UNITS:
                raise ValueError(f"unit {p.unit!r} of {p.name}: add it to OSCQUERY_UNITS ('' if the OSCQuery "
                                 "proposal's unit list has none that fits)")
            if p.kind not in (Kind.TRIGGER,):
                coerced, note = p.coerce(p.default)
                if note is not None or coerced != p.default:
                    raise ValueError(f"default of {p.name} is not valid: {note}")

    def __getitem__(self, name: str) -> Param:
        return self._params[name]

    def __contains__(self, name: object) -> bool:
        return name in self._params

    def __iter__(self) -> Iterator[Param]:
        return iter(self._params.values())

    def __len__(self) -> int:
        return len(self._params)

    def by_address(self, address: str) -> Param | None:
        """The parameter at an OSC address, or ``None``."""
        if not address.startswith(OSC_PREFIX):
            return None
        return self._params.get(address[len(OSC_PREFIX) :])

    def defaults(self) -> dict[str, Any]:
        """A fresh dict of every parameter's default value."""
        return {p.name: _copy(p.default) for p in self}

    def extended(self, params: Sequence[Param]) -> Registry:
        """A new registry: these parameters after this one's (a duplicate name is an error)."""
        return Registry([*self, *params])

    def groups(self) -> dict[str, list[Param]]:
        """Parameters by group, in declaration order."""
        out: dict[str, list[Param]] = {}
        for p in self:
            out.setdefault(p.group, []).append(p)
        return out


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


ANNOTATOR_CHOICES = ("none", "passthrough", "edge", "scribble", "pose", "depth", "flow")
PREVIEW_CHOICES = ("control", "mask", "input", "side_by_side")
"""What a preview sink can show (composed by :mod:`engine.preview`)."""
MASK_SOURCE_CHOICES = ("none", "person", "luma", "chroma", "alpha", "image")

MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "tiny": {"width": 320, "height": 192, "vae": "tae"},
    "1.3B": {"width": 832, "height": 480, "vae": "wan"},
    "14B": {"width": 832, "height": 480, "vae": "wan"},
}
"""What ``width = 0``, ``height = 0`` and ``vae = auto`` become for each model."""

LORA_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,47}$")
LORA_SCALE_RANGE = (0.0, 2.0)


def lora_scale_name(name: str) -> str:
    """The parameter of a LoRA's live scale: ``lora/<name>/scale`` (OSC ``/vacelive/lora/<name>/scale``)."""
    return f"lora/{name}/scale"


def parse_lora_entries(entries: Sequence[str]) -> list[tuple[str, str]]:
    """``loras`` entries ``NAME=PATH`` -> [(name, path)]; raises :class:`ParamError` naming every bad
    entry (no ``=``, a name that is not a plain OSC-safe name, a name given twice, no path)."""
    out: list[tuple[str, str]] = []
    problems: list[str] = []
    for entry in entries:
        name, sep, path = entry.partition("=")
        name, path = name.strip(), path.strip()
        if not sep or not path:
            problems.append(f"{entry!r} is not NAME=PATH")
        elif not LORA_NAME.match(name):
            problems.append(f"{name!r}: a LoRA name is a letter then letters, digits, '_' or '-' (at most 48)")
        elif name in (n for n, _ in out):
            problems.append(f"LoRA name {name!r} given twice")
        else:
            out.append((name, path))
    if problems:
        raise ParamError("loras: " + "; ".join(problems))
    return out


def lora_scale_params(entries: Sequence[str]) -> list[Param]:
    """The live scale parameter of each LoRA named in ``loras`` entries."""
    return [
        Param(lora_scale_name(name), Kind.FLOAT, 1.0, f"Scale of the style LoRA {name!r} ({path}); 0 = off.",
              group="lora", minimum=LORA_SCALE_RANGE[0], maximum=LORA_SCALE_RANGE[1])
        for name, path in parse_lora_entries(entries)
    ]


def with_lora_scales(registry: Registry, entries: Sequence[str]) -> Registry:
    """``registry`` plus the scale parameters of the LoRAs in ``entries`` that it lacks."""
    return registry.extended([p for p in lora_scale_params(entries) if p.name not in registry])


F, I, B, S, C, P, L, T = (
    Kind.FLOAT, Kind.INT, Kind.BOOL, Kind.STRING, Kind.CHOICE, Kind.PATH, Kind.STRING_LIST, Kind.TRIGGER,
)
CHUNK, NOW, RELOAD, RESTART = Applies.CHUNK, Applies.NOW, Applies.RELOAD, Applies.RESTART

REGISTRY = Registry([
    # --- generation -----------------------------------------------------------------------
    Param("prompt", S, "a neon city street at night, rain, cinematic light",
          "Text prompt; a weighted list blends several: 'a forest:0.7|neon city:0.3'.",
          group="generation"),
    Param("prompt_transition", I, 4, "Chunks over which a new prompt blends in from the old one (0 = cut).",
          group="generation", minimum=0, maximum=120, unit="chunks"),
    Param("prompt_blend", C, "slerp", "How prompt embeddings are interpolated during a transition.",
          group="generation", choices=("linear", "slerp")),
    Param("prompt_recache", C, "auto", "When a new prompt starts, re-encode the cached window under it so it "
          "takes hold at once (LongLive's switch re-cache; auto: on for LongLive weights).", group="generation",
          choices=("auto", "on", "off")),
    Param("seed", I, 42, "Noise seed; each chunk's noise comes from (seed, chunk index).",
          group="generation", minimum=0, maximum=2**31 - 1),
    Param("steps", I, 4, "Denoising steps per chunk (few-step schedule 1000/750/500/250).",
          group="generation", minimum=1, maximum=4),
    # --- VACE -------------------------------------------------------------------------------
    Param("context_scale", F, 1.0, "Strength of the VACE hints added to the base model (0 = no control).",
          group="vace", minimum=0.0, maximum=2.0),
    Param("reference_1", P, "", "Reference image (R2V), file below the media folder; '' = none.",
          group="vace"),
    Param("reference_2", P, "", "Second reference image; '' = none.", group="vace"),
    Param("reference_3", P, "", "Third reference image; '' = none.", group="vace"),
    Param("keyframe_first", P, "",
          "Keyframe the stream starts from (extension: firstframe); '' = none.", group="vace"),
    Param("keyframe_last", P, "",
          "Keyframe the stream converges to (extension: lastframe; with keyframe_first: firstlastframe).",
          group="vace"),
    *(Param(f"{slot}_grab", T, False, f"Put the current input frame (or --still-source's) into {slot}.",
            applies=NOW, group="vace", in_presets=False)
      for slot in ("reference_1", "reference_2", "reference_3", "keyframe_first", "keyframe_last")),
    Param("still_source", S, "", "A second source whose current frame the *_grab triggers take instead of the "
          "input (e.g. ndi:NAME fed by any TouchDesigner TOP); '' = the input.", applies=RESTART, group="io"),
    Param("outpaint_scale", F, 1.0, "Outpainting: the input shrunk to this scale inside the frame, the border "
          "generated (1 = off).", group="vace", minimum=0.5, maximum=1.0),
    Param("outpaint_x", F, 0.5, "Outpainting: where the shrunk input sits across (0 = left edge, 1 = right edge).",
          group="vace", minimum=0.0, maximum=1.0),
    Param("outpaint_y", F, 0.5, "Outpainting: where the shrunk input sits down (0 = top edge, 1 = bottom edge).",
          group="vace", minimum=0.0, maximum=1.0),
    # --- annotator --------------------------------------------------------------------------
    Param("annotator", C, "edge", "Control signal made from the input frames.",
          group="annotator", choices=ANNOTATOR_CHOICES),
    Param("canny_low", I, 100, "Edge: lower Canny threshold.", group="annotator", minimum=0, maximum=255),
    Param("canny_high", I, 200, "Edge: upper Canny threshold.", group="annotator", minimum=0, maximum=255),
    Param("scribble_width", I, 4, "Scribble: line width.", group="annotator", minimum=1, maximum=16, unit="px"),
    Param("pose_hands", B, False, "Pose: draw hands.", group="annotator"),
    Param("pose_face", B, False, "Pose: draw face points.", group="annotator"),
    Param("depth_smoothing", F, 0.8, "Depth: weight of the previous depth range (anti-flicker).",
          group="annotator", minimum=0.0, maximum=1.0),
    Param("flow_method", C, "dis", "Flow: optical flow algorithm.", group="annotator",
          choices=("dis", "farneback")),
    # --- mask (inpainting: 1 = generate, 0 = keep) --------------------------------------------
    Param("mask_source", C, "none", "Where inpainting masks come from.", group="mask",
          choices=MASK_SOURCE_CHOICES),
    Param("mask_invert", B, False, "Swap generated and kept regions.", group="mask"),
    Param("mask_feather", I, 4, "Soften the mask edge.", group="mask", minimum=0, maximum=64, unit="px"),
    Param("mask_threshold", F, 0.5, "Luma / chroma key threshold.", group="mask", minimum=0.0, maximum=1.0),
    Param("mask_key_color", S, "#00ff00", "Chroma key colour (hex).", group="mask"),
    Param("mask_image", P, "", "Static mask image below the media folder (white = generate).",
          group="mask"),
    # --- output -----------------------------------------------------------------------------
    Param("fps", F, 24.0, "Output frame rate; the publisher's clock.", applies=NOW, group="output",
          minimum=1.0, maximum=120.0, unit="fps"),
    Param("catch_up", I, 3, "Latency trim: when a chunk arrives while more than this many frames of the "
          "last one still wait to be shown (the stream fell behind after stalls, e.g. at the start), skip "
          "the oldest of them: one jump instead of a lasting delay. 0 = never skip.", applies=NOW,
          group="output", minimum=0, maximum=24, unit="frames"),
    Param("width", I, 0, "Output width, a multiple of 16; 0 = the model's native width (tiny 320, 1.3B/14B 832).",
          applies=RELOAD, group="output", minimum=0, maximum=2048, unit="px"),
    Param("height", I, 0, "Output height, a multiple of 16; 0 = the model's native height (tiny 192, 1.3B/14B 480).",
          applies=RELOAD, group="output", minimum=0, maximum=2048, unit="px"),
    Param("source", S, "testpattern", "Input spec: testpattern, file:PATH, images:DIR, camera:N, "
          "ndi:NAME, spout:NAME, syphon:NAME.", applies=RELOAD, group="io"),
    Param("source_timeout", F, 0.0, "Stop the start if the source delivers no frame within this time "
          "(0 = wait for it as long as it takes, saying what it waits for).", applies=RESTART, group="io",
          minimum=0.0, maximum=3600.0, unit="s"),
    Param("preview_sink", L, [], "Control preview specs (repeatable, any sink): what the model is given, on the "
          "output clock; the preview parameter chooses the view.", applies=RESTART, group="io"),
    Param("preview", C, "control", "What the preview sinks show: the control frames (mask drawn over them, "
          "references as a strip), the mask, the input, or input | control | output side by side.",
          applies=NOW, group="io", choices=PREVIEW_CHOICES),
    Param("sink", L, ["null"], "Output specs (repeatable): null, file:PATH, ndi:NAME, spout:NAME, "
          "syphon:NAME, virtualcam.", applies=RELOAD, group="io"),
    # --- model ------------------------------------------------------------------------------
    Param("model", C, "tiny", "Model config: 'tiny' is a small model trained here on synthetic shapes "
          "(bundled; it shows the pipeline, it is not a video model); 1.3B / 14B need real weights.", applies=RELOAD, group="model", choices=("tiny", "1.3B", "14B")),
    Param("weights_dir", S, "", "Folder with vacelive-weights.toml and the checkpoints.",
          applies=RELOAD, group="model"),
    Param("device", C, "auto", "Compute device.", applies=RELOAD, group="model",
          choices=("auto", "cpu", "cuda")),
    Param("devices", S, "", "Several devices of this machine for one model, shared as layout says: e.g. "
          "cuda:0,cuda:1, or cpu,cpu to try it without GPUs. Empty: one device (device).", applies=RESTART,
          group="model"),
    Param("layout", C, "sequence", "How devices share the work (same frames as one device): sequence = every "
          "device on a band of each chunk (a worker process per extra device); vace = the VACE branch on the "
          "second device beside the base on the first; stages = DiT on the first, VAE, text encoder and "
          "annotators on the second (decode overlaps the next chunk), the VACE branch on a third if given.",
          applies=RESTART, group="model", choices=LAYOUTS),
    Param("dtype", C, "auto", "Compute dtype (auto: bf16 on CUDA, fp32 on CPU).", applies=RELOAD,
          group="model", choices=("auto", "bf16", "fp16", "fp32")),
    Param("vae", C, "auto", "Autoencoder: the Wan2.1 VAE, or the tiny TAEW2.1 for speed "
          "(auto: wan for 1.3B/14B, tae for the tiny CPU demo).", applies=RELOAD, group="model",
          choices=("auto", "wan", "tae")),
    Param("prompt_cache", S, "prompt_cache", "Folder of cached prompt embeddings (vacelive prompts encode).",
          applies=RESTART, group="model"),
    Param("oom_fallback", B, False, "On GPU out-of-memory, lower the denoising steps by one (never below 1).",
          applies=NOW, group="model"),
    Param("compile", B, False, "torch.compile the DiT and VACE blocks (one graph per block, used once the KV "
          "ring is full; compiled during the warm-up, before the clock starts).", applies=RELOAD, group="model"),
    Param("attention", C, "auto", "Attention kernel on CUDA: auto puts cuDNN first on Hopper and newer "
          "(1.75x faster than flash at the stream's shapes on an H200), else leaves it to PyTorch; "
          "cudnn, flash or efficient first.", applies=RELOAD, group="model",
          choices=("auto", "cudnn", "flash", "efficient")),
    # --- style LoRAs ----------------------------------------------------------------------------
    Param("loras", L, [], "Style LoRAs for the DiT (repeatable): NAME=PATH, PATH inside the weights folder or "
          "the media folder; kohya/ComfyUI, PEFT and diffusers layouts. Each gets a live scale "
          "/vacelive/lora/NAME/scale (0 .. 2, default 1, applies per chunk).", applies=RELOAD, group="lora"),
    Param("lora_mode", C, "merged", "merged: folded into the weights (full speed; a scale change rebuilds them "
          "at the next chunk boundary from a kept copy of the originals: faster than unmerged at 832x480, "
          "costs a copy of the targeted weights in device memory); unmerged: each LoRA runs beside its layers "
          "(W x + s B(A x)), no copy.", applies=RELOAD, group="lora",
          choices=("merged", "unmerged")),
    # --- tempo (Ableton Link) -------------------------------------------------------------------
    Param("link", B, False, "Join the Ableton Link session on the network (needs the link extra): its tempo "
          "and phase drive quantize.", applies=RESTART, group="tempo"),
    Param("midi_clock", S, "", "MIDI input port whose clock drives quantize instead of Link (needs the midi "
          "extra); '' = none.", applies=RESTART, group="tempo"),
    Param("tempo", F, 120.0, "Tempo of the Link session (BPM): setting it leads the session; the session's "
          "tempo is on /vacelive/status/tempo.", applies=NOW, group="tempo", minimum=20.0, maximum=999.0),
    Param("quantize", C, "off", "Hold a cut, a prompt change, a preset load or a LoRA scale sent over OSC until "
          "the chunk shown on the next beat, bar or 4 bars of the Link timeline.", applies=NOW, group="tempo",
          choices=("off", "beat", "bar", "4bars")),
    # --- control ------------------------------------------------------------------------------
    Param("pause", B, False, "Freeze the output on the last frame; generation pauses.", applies=NOW,
          group="control", in_presets=False),
    Param("cut", T, False, "Hard cut: reset the model state (KV cache, VAE caches, annotators).",
          applies=NOW, group="control", in_presets=False),
    Param("sources_scan", T, False, "Scan for NDI, Spout and Syphon senders now; the result is the status "
          "figure sources (spec strings). It is rescanned every 5 s while the source is one of those.",
          applies=NOW, group="control", in_presets=False),
    Param("reload", T, False, "Apply the pending reload-time values (model, weights, size, VAE, source, sinks): "
          "what they need is rebuilt in the background while the output holds its last frame; with "
          "nothing pending, the generator is reloaded from its files.", applies=NOW, group="control",
          in_presets=False),
    Param("preset_load", S, "", "Load a preset by name (a .toml file in the preset folder).", applies=NOW,
          group="control", in_presets=False),
    Param("preset_save", S, "", "Save the current state as a preset with this name (atomically).", applies=NOW,
          group="control", in_presets=False),
    # --- server -------------------------------------------------------------------------------
    Param("osc_host", S, "127.0.0.1", "Address the OSC server binds to.", applies=RESTART,
          group="server", in_presets=False),
    Param("osc_port", I, 9000, "OSC UDP port (0 = a free port chosen by the system, logged at start).",
          applies=RESTART, group="server", minimum=0, maximum=65535, in_presets=False),
    Param("osc_reply", S, "", "host:port that receives /vacelive/status/* once a second, errors and a copy "
          "of every answer ('' = off).", text_format="host:port",
          applies=NOW, group="server", in_presets=False),
    Param("osc_allow", L, [], "Sender addresses allowed to send OSC (empty = any).", applies=RESTART,
          group="server", in_presets=False),
    Param("http_port", I, 9001, "OSCQuery HTTP and WebSocket port on the OSC host (0 = off).", applies=RESTART,
          group="server", minimum=0, maximum=65535, in_presets=False),
    Param("http_allow_origin", L, [], "Web page origins (scheme://host:port) that may read the OSCQuery "
          "namespace and use its WebSocket; requests without an Origin header (TouchDesigner, Chataigne, "
          "curl) are always served, other web pages never.", applies=RESTART, group="server", in_presets=False),
    Param("mdns", B, True, "Advertise OSCQuery (_oscjson._tcp) and OSC (_osc._udp) by zeroconf/mDNS on the "
          "interfaces the OSC server is bound to.", applies=RESTART, group="server", in_presets=False),
    Param("media_dir", S, "media", "Folder that reference, keyframe and mask paths are confined to.",
          applies=RESTART, group="server", in_presets=False),
    Param("preset_dir", S, "presets", "Folder of presets (TOML).", applies=RESTART, group="server",
          in_presets=False),
])
"""Every parameter of vacelive."""
