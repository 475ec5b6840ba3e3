"""The weights folder: its manifest (``vacelive-weights.toml``) and ``weights check``.

Manifest format (every role optional; paths relative to the folder)::

    [files]
    dit = "self_forcing_dmd.pt"     # base causal generator, official safetensors or diffusers file/dir
    lora = "lora.pt"                # LongLive LoRA (merged at load)
    vace = "Wan2.1-VACE-1.3B/diffusion_pytorch_model.safetensors"
    vae = "Wan2.1_VAE.pth"
    tae = "taew2_1.pth"
    t5 = "models_t5_umt5-xxl-enc-bf16.pth"
    tokenizer = "umt5-xxl"          # folder with tokenizer files
    depth = "depth_anything_v2_vits.pth"
    pose = "pose_landmarker_full.task"
    segmenter = "selfie_segmenter.tflite"

Nothing is ever downloaded. ``CHECKERS`` maps a role to a function that inspects its file and
returns a list of problems; other components register theirs (e.g. ``CHECKERS["vae"] = ...``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

import torch
from torch import nn

from .model.config import CONFIGS
from .model.model import WanModel
from .model.loading import (
    check_shapes,
    config_from_shapes,
    expected_shapes,
    parse_lora_key,
    read_dit_shapes,
    read_shapes,
)

MANIFEST_NAME = "vacelive-weights.toml"
KNOWN_ROLES = ("dit", "lora", "vace", "vae", "tae", "t5", "tokenizer", "depth", "pose", "segmenter")
TENSOR_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt")


class WeightFileMissing(FileNotFoundError):
    """A role is not declared in the manifest, or its file is not on disk."""


@dataclass
class WeightsManifest:
    """The parsed manifest of a weights folder: role -> path relative to ``root``."""

    root: Path
    files: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: str | Path) -> WeightsManifest:
        """Parse ``directory/vacelive-weights.toml``."""
        root = Path(directory)
        manifest = root / MANIFEST_NAME
        if not manifest.is_file():
            raise WeightFileMissing(f"no {MANIFEST_NAME} in {root}")
        data = tomllib.loads(manifest.read_text(encoding="utf-8"))
        files = data.get("files", {})
        if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
            raise ValueError(f"{manifest}: [files] must map role names to path strings")
        return cls(root=root, files=dict(files))

    def has(self, role: str) -> bool:
        """Whether the manifest declares ``role``."""
        return role in self.files

    def path(self, role: str) -> Path:
        """Absolute path of the file for ``role``; ``WeightFileMissing`` names role and file."""
        if role not in self.files:
            raise WeightFileMissing(f"weights role '{role}' is not declared in {self.root / MANIFEST_NAME}")
        path = self.root / self.files[role]
        if not path.exists():
            raise WeightFileMissing(f"weights role '{role}': file '{self.files[role]}' not found in {self.root}")
        return path


def check_dit(path: Path) -> list[str]:
    """Compare the DiT keys/shapes with the 1.3B / 14B tree (size detected from shapes)."""
    shapes = read_dit_shapes(path)
    try:
        cfg = config_from_shapes(shapes)
    except (KeyError, ValueError) as err:
        return [str(err)]
    name = next(n for n, c in CONFIGS.items() if c == cfg)
    print(f"    model: Wan2.1 {name} (dim {cfg.dim}, {cfg.num_layers} blocks)")
    return check_shapes(expected_shapes(cfg), shapes)


def check_lora(path: Path) -> list[str]:
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
    print(f"    {len(pairs)} LoRA pairs, rank {sorted(ranks)}")
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


def check_vace(path: Path) -> list[str]:
    """Compare the file's ``vace_*`` keys with the VACE branch of the model size they fit."""
    from .vace import VaceBranch, default_vace_layers

    shapes = {k: s for k, s in read_shapes(path)[0].items() if k.startswith("vace_")}
    if not shapes:
        return ["no vace_* keys in this file"]
    dim = shapes.get("vace_patch_embedding.weight", (0,))[0]
    cfg = next((c for c in CONFIGS.values() if c.dim == dim), None)
    if cfg is None:
        return [f"vace_patch_embedding.weight has width {dim}, which fits no known model size"]
    name = next(n for n, c in CONFIGS.items() if c == cfg)
    layers = default_vace_layers(cfg.num_layers)
    print(f"    VACE for Wan2.1 {name}: {len(layers)} blocks after layers {list(layers)}")

    def branch() -> nn.Module:
        return VaceBranch(WanModel(cfg).blocks, layers, cfg.dim, cfg.patch_size)

    return check_shapes(module_shapes(branch), shapes)


def _checker(label: str, build: Callable[[], nn.Module]) -> Callable[[Path], list[str]]:
    """A checker comparing a file's keys and shapes with the module ``build()`` makes."""

    def check(path: Path) -> list[str]:
        print(f"    compared with: {label}")
        return check_shapes(module_shapes(build), read_shapes(path)[0])

    check.__doc__ = f"Compare the file's keys and shapes with the {label}."
    return check


def _wan_vae() -> nn.Module:
    from .vae import WAN_VAE_CONFIGS, WanVAE

    return WanVAE(WAN_VAE_CONFIGS["real"])


def _taew() -> nn.Module:
    from .vae import TAEW, TAEW_CONFIGS

    return TAEW(TAEW_CONFIGS["real"])


def _umt5() -> nn.Module:
    from .text import T5_CONFIGS, UMT5Encoder

    return UMT5Encoder(T5_CONFIGS["real"])


def _depth() -> nn.Module:
    from vacelive.annotators.depth_model import VITS, DepthAnythingV2

    return DepthAnythingV2(VITS)


CHECKERS: dict[str, Callable[[Path], list[str]]] = {
    "dit": check_dit,
    "lora": check_lora,
    "vace": check_vace,
    "vae": _checker("Wan2.1 VAE", _wan_vae),
    "tae": _checker("TAEW2.1", _taew),
    "t5": _checker("umT5-XXL encoder", _umt5),
    "depth": _checker("Depth Anything V2 Small", _depth),
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


def weights_check(directory: str) -> int:
    """Print what the weights folder holds and how it matches the models; 0 if all good, else 1."""
    try:
        manifest = WeightsManifest.load(directory)
    except (OSError, ValueError, tomllib.TOMLDecodeError) as err:
        print(f"error: {err}")
        return 1
    print(f"weights folder: {manifest.root}")
    if not manifest.files:
        print("  (the manifest declares no files)")
    failed = False
    for role, rel in manifest.files.items():
        note = "" if role in KNOWN_ROLES else "  (not a role vacelive knows)"
        print(f"  {role}: {rel}{note}")
        try:
            path = manifest.path(role)
        except WeightFileMissing as err:
            print(f"    MISSING: {err}")
            failed = True
            continue
        print(f"    size: {_size(path) / 2**20:.1f} MiB")
        problems = []
        try:
            summary = _tensor_summary(path)
            if summary:
                print(f"    {summary}")
        except Exception as err:  # a corrupt or foreign file is a finding, not a crash
            problems.append(f"cannot read tensors: {_first_line(err)}")
        if role in CHECKERS:
            try:
                problems += CHECKERS[role](path)
            except Exception as err:
                problems.append(f"{role} check failed: {_first_line(err)}")
        for p in problems:
            print(f"    PROBLEM: {p}")
        if problems:
            failed = True
        elif role in CHECKERS:
            print("    ok")
    print("result: " + ("problems found" if failed else "all good"))
    return 1 if failed else 0
