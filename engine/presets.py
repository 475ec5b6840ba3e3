"""Presets: TOML files of parameter values, validated against the registry, saved atomically.

A preset file looks like::

    [preset]
    description = "Depth-driven restyle of a camera"

    [params]
    annotator = "depth"
    context_scale = 1.2

Only parameters with ``in_presets`` may appear under ``[params]``; any other key, or a bad
value, is an error that names the file, the key and the reason. A preset that lists ``loras``
may set their scales (``"lora/NAME/scale" = 0.8``).
"""

from __future__ import annotations

import difflib

import os
import re
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from vacelive.engine.params import REGISTRY, ParamError, Registry, parse_lora_entries, with_lora_scales

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

PRESET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class PresetError(ValueError):
    """A preset cannot be read, validated or written; the message names file, key and reason."""


@dataclass(frozen=True)
class Preset:
    """A validated preset: its name, description and parameter values."""

    name: str
    description: str
    values: dict[str, Any]


def preset_path(name: str, preset_dir: Path) -> Path:
    """The file of preset ``name`` in ``preset_dir``; refuses names that are not plain names."""
    stem = name[:-5] if name.endswith(".toml") else name
    if not PRESET_NAME.match(stem) or ".." in stem:
        raise PresetError(
            f"preset name {name!r} refused: use letters, digits, '_', '-', '.' (no folders)"
        )
    return preset_dir / f"{stem}.toml"


def validate(values: Mapping[str, Any], source: str, registry: Registry = REGISTRY) -> dict[str, Any]:
    """Check every key and value against the registry; return the values in their types.

    Every problem is reported at once (an unknown key with the closest known one); a value
    out of range is refused, not clamped: a preset is checked before the show, not during it.
    """
    out: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in values.items():
        if key not in registry:
            close = difflib.get_close_matches(key, [p.name for p in registry], n=1)
            problems.append(f"unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            continue
        param = registry[key]
        if not param.in_presets:
            problems.append(f"{key!r} cannot be set by a preset")
            continue
        try:
            out[key] = param.check(value)
            if key == "loras":
                parse_lora_entries(out[key])
        except ParamError as exc:
            problems.append(str(exc))
    if problems:
        raise PresetError(f"{source}: " + "; ".join(problems))
    return out


def load_preset(path: Path, registry: Registry = REGISTRY) -> Preset:
    """Read and validate a preset file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PresetError(f"{path}: no such preset file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PresetError(f"{path}: cannot read: {exc}") from None
    unknown = set(data) - {"preset", "params"}
    if unknown:
        raise PresetError(f"{path}: unknown table(s) {', '.join(sorted(unknown))}; use [preset] and [params]")
    meta = data.get("preset", {})
    params = data.get("params", {})
    if not isinstance(meta, dict) or not isinstance(params, dict):
        raise PresetError(f"{path}: [preset] and [params] must be tables")
    extra_meta = set(meta) - {"description"}
    if extra_meta:
        raise PresetError(f"{path}: unknown key(s) in [preset]: {', '.join(sorted(extra_meta))}")
    description = meta.get("description", "")
    if not isinstance(description, str):
        raise PresetError(f"{path}: [preset] description must be a string")
    return Preset(path.stem, description, validate(params, str(path), registry_with_loras(params, registry)))


def registry_with_loras(values: Mapping[str, Any], registry: Registry = REGISTRY) -> Registry:
    """``registry`` plus the scale parameters of the LoRAs ``values`` lists under ``loras``, so
    a preset that lists LoRAs may set their scales (a bad ``loras`` is left to :func:`validate`)."""
    if "loras" not in values or "loras" not in registry:
        return registry
    try:
        return with_lora_scales(registry, registry["loras"].check(values["loras"]))
    except ParamError:
        return registry


def save_preset(path: Path, values: Mapping[str, Any], description: str = "",
                registry: Registry = REGISTRY) -> None:
    """Write a preset atomically (temp file in the same folder, then rename)."""
    params = {p.name: values[p.name] for p in registry if p.in_presets and p.name in values}
    text = tomli_w.dumps({"preset": {"description": description}, "params": params})
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def list_presets(preset_dir: Path, registry: Registry = REGISTRY) -> list[Preset | PresetError]:
    """Every preset in ``preset_dir``, each loaded or the error that stops it, sorted by name."""
    out: list[Preset | PresetError] = []
    for path in sorted(preset_dir.glob("*.toml")):
        try:
            out.append(load_preset(path, registry))
        except PresetError as exc:
            out.append(exc)
    return out
