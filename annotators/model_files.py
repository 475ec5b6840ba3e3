"""Finding an annotator's model file from the engine's weights manifest (or a plain path)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

EXPECTED_FILES: dict[str, str] = {
    "depth": "depth_anything_v2_vits.pth",
    "pose": "pose_landmarker_full.task",
    "segmenter": "selfie_segmenter.tflite",
}
"""The file each weights role expects by default (pose also takes the lite / heavy variants)."""

_ALTERNATIVES: dict[str, tuple[str, ...]] = {
    "pose": (
        "pose_landmarker_full.task", "pose_landmarker_heavy.task", "pose_landmarker_lite.task"
    ),
    "segmenter": ("selfie_segmenter.tflite", "selfie_segmenter_landscape.tflite",
                  "selfie_multiclass_256x256.tflite"),
}


def model_path(weights: Any, role: str) -> Path:
    """Return the model file for ``role``, raising ``FileNotFoundError`` naming what is missing.

    ``weights`` is the engine's ``WeightsManifest`` (anything with ``.path(role)``), a path to
    the file itself, or a folder holding the file under its usual name.
    """
    expected = EXPECTED_FILES[role]
    if weights is None:
        raise FileNotFoundError(
            f"the {role} annotator needs the model file {expected!r} in the weights folder "
            f"(weights role {role!r}), but no weights were given"
        )
    if hasattr(weights, "path"):
        path = Path(weights.path(role))
    else:
        path = Path(weights)
        if path.is_dir():
            names = _ALTERNATIVES.get(role, (expected,))
            found = [path / name for name in names if (path / name).is_file()]
            path = found[0] if found else path / expected
    if not path.is_file():
        raise FileNotFoundError(
            f"{role} model file not found: {path} (put {expected!r} in the weights folder)"
        )
    return path
