"""Annotators: input frames to VACE control frames, and mask sources for inpainting.

``make_annotator`` and ``make_mask_source`` build them by the names the engine's parameter
registry offers. Heavy dependencies (torch for depth, mediapipe for pose and person masks) are
imported only when such an annotator is built, so ``import annotators`` stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vacelive.annotators.base import Annotator, MaskSource

if TYPE_CHECKING:
    from vacelive.engine.weights import WeightsManifest

ANNOTATORS: tuple[str, ...] = ("none", "passthrough", "edge", "scribble", "pose", "depth", "flow")
"""Names of the ``annotator`` choice."""

MASK_SOURCES: tuple[str, ...] = ("none", "person", "luma", "chroma", "alpha", "image")
"""Names of the ``mask_source`` choice."""

__all__ = [
    "ANNOTATORS",
    "MASK_SOURCES",
    "Annotator",
    "MaskSource",
    "make_annotator",
    "make_mask_source",
]


def make_annotator(
    name: str, *, weights: WeightsManifest | Path | None = None, device: str = "cpu"
) -> Annotator | None:
    """Build the annotator called ``name`` (one of ``ANNOTATORS``); ``None`` for ``"none"``.

    ``weights`` is the engine's weights manifest (or, for tools and tests, a model file or the
    folder holding it); ``pose`` and ``depth`` raise ``FileNotFoundError`` naming the missing
    model file. ``device`` places the depth network.
    """
    from vacelive.annotators.model_files import model_path

    if name == "none":
        return None
    if name == "passthrough":
        from vacelive.annotators.passthrough import PassthroughAnnotator

        return PassthroughAnnotator()
    if name == "edge":
        from vacelive.annotators.edge import EdgeAnnotator

        return EdgeAnnotator()
    if name == "scribble":
        from vacelive.annotators.scribble import ScribbleAnnotator

        return ScribbleAnnotator()
    if name == "flow":
        from vacelive.annotators.flow import FlowAnnotator

        return FlowAnnotator()
    if name == "pose":
        from vacelive.annotators.pose import PoseAnnotator

        return PoseAnnotator(model_path(weights, "pose"))
    if name == "depth":
        path = model_path(weights, "depth")
        from vacelive.annotators.depth import DepthAnnotator
        from vacelive.annotators.depth_model import load_depth_anything

        return DepthAnnotator(load_depth_anything(path), device=device)
    raise ValueError(f"unknown annotator {name!r}; expected one of {ANNOTATORS}")


def make_mask_source(
    name: str,
    *,
    weights: WeightsManifest | Path | None = None,
    resolve_path: Callable[[str], Path] = Path,
) -> MaskSource | None:
    """Build the mask source called ``name`` (one of ``MASK_SOURCES``); ``None`` for ``"none"``.

    ``resolve_path`` turns the ``mask_image`` setting into a file path (the engine confines it
    to its media folders); ``person`` needs the segmenter model file from ``weights``.
    """
    from vacelive.annotators import masks
    from vacelive.annotators.model_files import model_path

    if name == "none":
        return None
    simple: dict[str, Callable[[], Any]] = {
        "luma": masks.LumaMask,
        "chroma": masks.ChromaMask,
        "alpha": masks.AlphaMask,
        "image": lambda: masks.ImageMask(resolve_path),
    }
    if name in simple:
        return simple[name]()
    if name == "person":
        from vacelive.annotators.person import PersonMask

        return PersonMask(model_path(weights, "segmenter"))
    raise ValueError(f"unknown mask source {name!r}; expected one of {MASK_SOURCES}")
