"""Weight files in the official key layouts, small enough for tests.

``sparse_safetensors`` writes a real, valid safetensors file with any shapes (e.g. the whole
1.3B tree) whose data is a hole in a sparse file: the header is exact, the disk use is nil.
``key_layout_pth`` writes every key of a model with an empty tensor: enough for recognition,
which goes by keys, not for loading.
"""

from __future__ import annotations

import json
import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import save_file

from vacelive.engine.model import CONFIGS, WanModel
from vacelive.engine.model.loading import expected_shapes


def sparse_safetensors(path: Path, shapes: Mapping[str, tuple[int, ...]], dtype: str = "BF16") -> Path:
    """A valid safetensors file declaring ``shapes`` (2-byte elements), its data left sparse."""
    header, offset = {}, 0
    for key, shape in shapes.items():
        size = 2 * int(torch.Size(shape).numel())
        header[key] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(encoded)) + encoded)
        fh.truncate(8 + len(encoded) + offset)
    return path


def official_dit(path: Path, size: str = "1.3B") -> Path:
    """The official ``diffusion_pytorch_model.safetensors`` layout of ``size`` (sparse)."""
    return sparse_safetensors(path, expected_shapes(CONFIGS[size]))


def tiny_dit_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A tiny-config DiT's real weights (official names)."""
    torch.manual_seed(seed)
    return {k: v.contiguous() for k, v in WanModel(CONFIGS["tiny"]).state_dict().items()}


def tiny_dit_safetensors(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tiny_dit_state(seed), str(path))
    return path


def key_layout_pth(path: Path, keys) -> Path:
    """Every key in ``keys`` with an empty tensor, saved with torch.save."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: torch.empty(0) for k in keys}, path)
    return path


def tflite_bytes() -> bytes:
    """The start of a TFLite flatbuffer (identifier ``TFL3`` at bytes 4-8)."""
    return b"\x1c\x00\x00\x00TFL3" + bytes(24)


def task_bundle(path: Path) -> Path:
    """A ``.task`` file: a zip of the detector and landmark ``.tflite`` models."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as bundle:
        bundle.writestr("pose_detector.tflite", tflite_bytes())
        bundle.writestr("pose_landmarks_detector.tflite", tflite_bytes())
    return path
