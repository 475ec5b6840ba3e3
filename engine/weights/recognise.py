"""Recognising a weights folder that has no manifest: each role found by file name, confirmed by content.

Layouts covered: the official Wan2.1-T2V download (``diffusion_pytorch_model.safetensors`` or its
shards, ``Wan2.1_VAE.pth``, ``models_t5_umt5-xxl-enc-bf16.pth``, ``google/umt5-xxl/``), a
Self-Forcing / CausVid / LongLive checkout (``.pt`` files holding ``generator`` /
``generator_ema``, LongLive's ``lora.pt``), a Wan2.1-VACE download (a safetensors with
``vace_*`` keys), TAEW2.1, Depth Anything V2 Small and the mediapipe pose / segmenter files.
Names suggest, content decides: tensor files must carry the keys of their role, mediapipe files
must be what their extension says (a ``.task`` is a zip of ``.tflite`` models, a ``.tflite`` a
TFLite flatbuffer). The folder is searched a few levels deep; hidden folders are skipped.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from .manifest import WeightsManifest

MAX_DEPTH = 4
GENERATOR_FILES = {"longlive_base.pt": "generator", "self_forcing_dmd.pt": "generator_ema"}
"""Known causal-generator files and the dict their authors run (LongLive, CausVid: generator;
Self-Forcing: generator_ema)."""
LONGLIVE_LORA_ALPHA = 256
NAMED_ROLES = {
    "Wan2.1_VAE.pth": "vae",
    "taew2_1.pth": "tae",
    "models_t5_umt5-xxl-enc-bf16.pth": "t5",
    "depth_anything_v2_vits.pth": "depth",
}
"""Files whose name gives their role (confirmed by holding most of their model's keys)."""

def _files(root: Path) -> list[Path]:
    found = []
    stack = [(root, 0)]
    while stack:
        folder, depth = stack.pop()
        for entry in sorted(folder.iterdir()):
            if entry.name.startswith("."):
                continue
            if entry.is_dir() and depth + 1 < MAX_DEPTH:
                stack.append((entry, depth + 1))
            elif entry.is_file():
                found.append(entry)
    return sorted(found)


def _keys(path: Path) -> set[str]:
    from vacelive.engine.model.loading import read_shapes

    try:
        return set(read_shapes(path)[0])
    except Exception:  # unreadable: not this role
        return set()


def _generator_dicts(path: Path) -> list[str]:
    """Which of generator / generator_ema / generator_lora a .pt holds (loaded memory-mapped)."""
    from vacelive.engine.model.loading import _torch_load

    try:
        obj = _torch_load(path)
    except Exception:
        return []
    return [k for k in ("generator", "generator_ema", "generator_lora") if isinstance(obj, dict) and k in obj]


def _is_tflite(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(8)[4:8] == b"TFL3"


def _is_task_bundle(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as bundle:
        return any(name.endswith(".tflite") for name in bundle.namelist())


def _dit_or_vace(path: Path) -> str | None:
    """A Wan DiT safetensors (file or sharded folder): 'vace' if it carries vace_* keys, else 'dit'."""
    keys = _keys(path)
    if any(k.startswith("vace_") for k in keys):
        return "vace"
    if "patch_embedding.weight" in keys or "condition_embedder.time_proj.weight" in keys:
        return "dit"
    return None


def _holds_model_keys(path: Path, role: str) -> bool:
    """Whether most of the role's model keys are in the file (a few wrong ones are for the check to name)."""
    from .check import ROLE_MODELS, module_shapes

    expected = set(module_shapes(ROLE_MODELS[role]))
    return len(expected & _keys(path)) >= len(expected) / 2


def recognise(root: str | Path) -> WeightsManifest:
    """The roles found in ``root`` (``recognised=True``); the first candidate of each role wins."""
    root = Path(root)
    found: dict[str, str] = {}
    dit_weights: str | None = None

    def take(role: str, path: Path) -> None:
        found.setdefault(role, path.relative_to(root).as_posix())

    for path in _files(root):
        name = path.name
        if name == "diffusion_pytorch_model.safetensors.index.json":
            role = _dit_or_vace(path.parent)
            if role:
                take(role, path.parent)
        elif name == "diffusion_pytorch_model.safetensors":  # shards are read through their index
            role = _dit_or_vace(path)
            if role:
                take(role, path)
        elif name in NAMED_ROLES:
            if _holds_model_keys(path, NAMED_ROLES[name]):
                take(NAMED_ROLES[name], path)
        elif name == "tokenizer.json" and path.parent.name.startswith("umt5"):
            take("tokenizer", path.parent)
        elif path.suffix == ".pt":
            dicts = _generator_dicts(path)
            if "generator_lora" in dicts:
                take("lora", path)
            elif dicts and "dit" not in found:
                take("dit", path)
                dit_weights = GENERATOR_FILES.get(name, "generator_ema" if "generator_ema" in dicts else "generator")
        elif path.suffix == ".task" and name.startswith("pose_landmarker") and _is_task_bundle(path):
            take("pose", path)
        elif path.suffix == ".tflite" and "selfie" in name and _is_tflite(path):
            take("segmenter", path)
    manifest = WeightsManifest(root, found, dit_weights=dit_weights, recognised=True)
    if "lora" in found and Path(found.get("dit", "")).name == "longlive_base.pt":
        manifest.lora_alpha = LONGLIVE_LORA_ALPHA
    return manifest
