"""``vacelive weights check``: what a weights folder holds, each file compared key by key with its model.

``CHECKERS`` maps a role to a function that inspects its file and returns a list of problems
(appending what it learned to ``notes``); :func:`weights_check` prints the report, including
what a run with the given settings still needs from the folder.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vacelive.engine.model.config import CONFIGS
from vacelive.engine.model.loading import (
    _torch_load,
    check_shapes,
    config_from_shapes,
    config_name,
    dit_size,
    expected_shapes,
    generator_dict_name,
    parse_lora_key,
    read_dit_shapes,
    read_shapes,
)
from vacelive.engine.model.model import WanModel
from vacelive.engine.vae import fit_taew_checkpoint

from .manifest import KNOWN_ROLES, MANIFEST_NAME, WeightFileMissing, WeightsManifest
from .needs import fetch_command, missing, run_needs

TENSOR_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt")
Notes = list[str] | None


def _note(notes: Notes, text: str) -> None:
    if notes is not None:
        notes.append(text)


def check_dit(path: Path, notes: Notes = None, *, which: str | None = None) -> list[str]:
    """Compare the DiT keys/shapes with the 1.3B / 14B tree (size detected from shapes); for a
    causal-generator ``.pt``, say which dict is used (``which``, see ``generator_dict_name``)."""
    if path.is_file() and path.suffix not in (".safetensors",):
        checkpoint = _torch_load(path)
        if isinstance(checkpoint, dict):
            used = generator_dict_name(checkpoint, which)
            others = [k for k in checkpoint if k != used and isinstance(checkpoint[k], dict)]
            if used:
                _note(notes, f"generator weights: '{used}'" + (f" (the file also holds: {', '.join(others)})"
                                                               if others else ""))
    shapes = read_dit_shapes(path, which)
    try:
        cfg = config_from_shapes(shapes)
    except (KeyError, ValueError) as err:
        return [str(err)]
    _note(notes, f"model: Wan2.1 {config_name(cfg)} (dim {cfg.dim}, {cfg.num_layers} blocks)")
    return check_shapes(expected_shapes(cfg), shapes)


def check_lora(path: Path, notes: Notes = None, *, alpha: float | None = None) -> list[str]:
    """Every LoRA pair must target a Linear weight of a known model tree with matching shapes."""
    shapes = read_shapes(path)[0]
    pairs: dict[str, dict[str, tuple[int, ...]]] = {}
    problems = []
    for key, shape in shapes.items():
        if key.startswith("critic_lora."):  # LongLive also ships the critic's LoRA; unused here
            continue
        parsed = parse_lora_key(key)
        if parsed is None:
            problems.append(f"unexpected LoRA key: {key}")
            continue
        pairs.setdefault(parsed[0], {})[parsed[1]] = shape
    if not pairs:
        return problems + ["no LoRA pairs (lora_A / lora_B) found"]
    ranks = {ab["A"][0] for ab in pairs.values() if "A" in ab}
    scale = f"alpha {alpha:g} (from the manifest)" if alpha is not None else "alpha = rank (scale 1)"
    _note(notes, f"{len(pairs)} LoRA pairs, rank {sorted(ranks)}, {scale}")
    # compare with the model size the LoRA was made for (its input widths), else with every size
    in_features = {ab["A"][1] for ab in pairs.values() if "A" in ab}
    configs = [c for c in CONFIGS.values() if c.dim in in_features] or list(CONFIGS.values())
    best: list[str] | None = None
    for cfg in configs:
        expected = expected_shapes(cfg)
        found = []
        for target, ab in pairs.items():
            if set(ab) != {"A", "B"}:
                found.append(f"LoRA pair incomplete for: {target}")
            elif target not in expected:
                found.append(f"LoRA target not in model: {target}")
            elif (ab["B"][0], ab["A"][1]) != expected[target]:
                found.append(f"LoRA shape mismatch: {target} gets {[ab['B'][0], ab['A'][1]]}, model has {list(expected[target])}")
        if best is None or len(found) < len(best):
            best = found
    return problems + (best or [])


def module_shapes(build: Callable[[], nn.Module]) -> dict[str, tuple[int, ...]]:
    """Parameter and buffer shapes of the module ``build()`` makes, built on the meta device."""
    with torch.device("meta"):
        module = build()
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def check_vace(path: Path, notes: Notes = None) -> list[str]:
    """Compare the file's ``vace_*`` keys with the VACE branch of the model size they fit."""
    from vacelive.engine.vace import VaceBranch, default_vace_layers

    shapes = {k: s for k, s in read_shapes(path)[0].items() if k.startswith("vace_")}
    if not shapes:
        return ["no vace_* keys in this file"]
    dim = shapes.get("vace_patch_embedding.weight", (0,))[0]
    cfg = next((c for c in CONFIGS.values() if c.dim == dim), None)
    if cfg is None:
        return [f"vace_patch_embedding.weight has width {dim}, which fits no known model size"]
    layers = default_vace_layers(cfg.num_layers)
    _note(notes, f"VACE for Wan2.1 {config_name(cfg)}: {len(layers)} blocks after layers {list(layers)}")

    def branch() -> nn.Module:
        return VaceBranch(WanModel(cfg).blocks, layers, cfg.dim, cfg.patch_size)

    return check_shapes(module_shapes(branch), shapes)


def _checker(*candidates: tuple[str, Callable[[], nn.Module], Callable[[dict], dict]]) -> Callable[..., list[str]]:
    """A checker comparing a file's keys and shapes, as each candidate's ``fit`` turns them (what
    the loader does to the file), with the module its ``build()`` makes: the file passes when it
    matches one candidate (e.g. the real config or the tiny one); otherwise the first one's
    problems are reported."""

    def check(path: Path, notes: Notes = None) -> list[str]:
        shapes = read_shapes(path)[0]
        first: list[str] | None = None
        for label, build, fit in candidates:
            problems = check_shapes(module_shapes(build), fit(shapes))
            if not problems:
                _note(notes, f"compared with: {label}")
                return []
            first = problems if first is None else first
        _note(notes, f"compared with: {candidates[0][0]}")
        return first or []

    check.__doc__ = f"Compare the file's keys and shapes with the {' or the '.join(c[0] for c in candidates)}."
    return check


def _wan_vae() -> nn.Module:
    from vacelive.engine.vae import WAN_VAE_CONFIGS, WanVAE

    return WanVAE(WAN_VAE_CONFIGS["real"])


def _taew(config: str = "real") -> nn.Module:
    from vacelive.engine.vae import TAEW, TAEW_CONFIGS

    return TAEW(TAEW_CONFIGS[config])


def _umt5(config: str = "real") -> nn.Module:
    from vacelive.engine.text import T5_CONFIGS, UMT5Encoder

    return UMT5Encoder(T5_CONFIGS[config])


def _depth() -> nn.Module:
    from vacelive.annotators.depth_model import VITS, DepthAnythingV2

    return DepthAnythingV2(VITS)


ROLE_MODELS: dict[str, Callable[[], nn.Module]] = {"vae": _wan_vae, "tae": _taew, "t5": _umt5, "depth": _depth}
"""The model each single-module role's file must match."""

CHECKERS: dict[str, Callable[..., list[str]]] = {
    "dit": check_dit,
    "lora": check_lora,
    "vace": check_vace,
    "vae": _checker(("Wan2.1 VAE", _wan_vae, dict)),
    "tae": _checker(("TAEW2.1", _taew, fit_taew_checkpoint),
                    ("TAEW2.1, tiny config", partial(_taew, "tiny"), partial(fit_taew_checkpoint, config="tiny"))),
    "t5": _checker(("umT5-XXL encoder", _umt5, dict), ("umT5, tiny config", partial(_umt5, "tiny"), dict)),
    "depth": _checker(("Depth Anything V2 Small", _depth, dict)),
}


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size


def _tensor_summary(path: Path) -> str | None:
    is_tensor_dir = path.is_dir() and any(path.glob("*.safetensors"))
    if not (is_tensor_dir or path.suffix in TENSOR_SUFFIXES):
        return None
    _, dtypes = read_shapes(path)
    counts = ", ".join(f"{d} x{n}" for d, n in Counter(dtypes.values()).most_common())
    return f"{len(dtypes)} tensors ({counts})"


def _first_line(err: Exception) -> str:
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}"


def _open(directory: str) -> WeightsManifest | None:
    try:
        return WeightsManifest.open(directory)
    except (OSError, ValueError) as err:
        print(f"error: {err}")
        return None


def _check_role(manifest: WeightsManifest, role: str) -> bool:
    """Print one role's findings; True when its file is there and matches."""
    rel = manifest.files[role]
    note = "" if role in KNOWN_ROLES else "  (not a role vacelive knows)"
    print(f"  {role}: {rel}{note}")
    try:
        path = manifest.path(role)
    except WeightFileMissing as err:
        print(f"    MISSING: {err}")
        return False
    print(f"    size: {_size(path) / 2**20:.1f} MiB")
    problems: list[str] = []
    notes: list[str] = []
    try:
        summary = _tensor_summary(path)
        if summary:
            print(f"    {summary}")
    except Exception as err:  # a corrupt or foreign file is a finding, not a crash
        problems.append(f"cannot read tensors: {_first_line(err)}")
    checker = CHECKERS.get(role)
    if role == "dit":
        checker = partial(check_dit, which=manifest.dit_weights)
    elif role == "lora":
        checker = partial(check_lora, alpha=manifest.lora_alpha)
    if checker is not None:
        try:
            problems += checker(path, notes)
        except Exception as err:
            problems.append(f"{role} check failed: {_first_line(err)}")
    for line in notes:
        print(f"    {line}")
    for p in problems:
        print(f"    PROBLEM: {p}")
    if not problems and checker is not None:
        print("    ok")
    return not problems


def _print_needs(manifest: WeightsManifest, directory: str, settings: Mapping[str, Any]) -> bool:
    """Print what a run with ``settings`` uses and lacks; True when nothing required is missing."""
    needs = run_needs(settings)
    absent = missing(needs, manifest)
    described = ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in settings.items() if k != "weights_dir")
    print(f"a run with {described} needs:")
    for need in needs:
        state = "MISSING" if need in absent else "found"
        kind = "required" if need.required else "optional"
        print(f"  {need.role:9s} {state:8s} ({kind}: {need.reason})")
    if absent:
        print(f"  get them with: {fetch_command(directory, manifest, [n.role for n in absent])}")
    return not any(n.required for n in absent)


def _folder_settings(manifest: WeightsManifest) -> dict[str, Any] | None:
    """Run settings for the model size of the folder's DiT (``None`` without a readable one)."""
    from vacelive.engine.params import MODEL_DEFAULTS

    try:
        model = dit_size(manifest.path("dit"), manifest.dit_weights)
    except Exception:  # no usable DiT: the role's own check says why
        return None
    return {"model": model, "vae": MODEL_DEFAULTS[model]["vae"], "annotator": "none", "mask_source": "none"}


def weights_check(directory: str, settings: Mapping[str, Any] | None = None, *, strict_needs: bool = False,
                  write_manifest: bool = False) -> int:
    """Print what the weights folder holds, how each file matches its model, and what a run with
    ``settings`` (model, vae, annotator, mask_source; default: the folder's DiT size) needs. Returns 0 when every file found is
    good (and, with ``strict_needs``, nothing required is missing), else 1.

    A folder without a manifest is recognised by its files; ``write_manifest`` saves what was found.
    """
    manifest = _open(directory)
    if manifest is None:
        return 1
    origin = "recognised from its files (no manifest)" if manifest.recognised else f"from {MANIFEST_NAME}"
    print(f"weights folder: {manifest.root}  (roles {origin})")
    if not manifest.files:
        print("  (the manifest declares no files)")
    failed = False
    for role in manifest.files:
        failed |= not _check_role(manifest, role)
    if manifest.recognised:
        print(f"manifest it would use ({MANIFEST_NAME}):")
        print("    " + manifest.to_toml().strip().replace("\n", "\n    "))
        if write_manifest:
            print(f"wrote {manifest.save()}")
    settings = settings if settings is not None else _folder_settings(manifest)
    if settings is not None:
        failed |= not _print_needs(manifest, directory, settings) and strict_needs
    print("result: " + ("problems found" if failed else "all good"))
    return 1 if failed else 0
