"""Builds a ready-to-start :class:`Engine` from the parameter store: bridges, annotators, model."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from vacelive.engine.loop import Engine
from vacelive.engine.state import ParamStore

log = logging.getLogger(__name__)

T = TypeVar("T")


def resolve_device(choice: str) -> str:
    """``auto`` becomes ``cuda`` when a GPU is usable, else ``cpu``."""
    if choice != "auto":
        return choice
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_manifest(store: ParamStore):
    """The weights folder's roles (its manifest, or what its files are recognised as), checked
    against what this run needs before anything heavy loads. Without a folder, the tiny model
    uses its bundled trained weights and a real size gets ``None``.

    Raises ``FileNotFoundError`` naming every missing role and the fetch command that gets them,
    or a corrupt file, or a checkpoint of another model size.
    """
    from vacelive.engine.tiny import TINY_WEIGHTS
    from vacelive.engine.weights import WeightsManifest, preflight

    weights_dir = store.get("weights_dir")
    if not weights_dir and store.get("model") == "tiny":
        weights_dir = str(TINY_WEIGHTS)  # the bundled trained tiny model
    manifest = WeightsManifest.open(weights_dir) if weights_dir else None
    for warning in preflight(store.snapshot(), manifest):
        log.warning("%s", warning)
    return manifest


def build_engine(store: ParamStore, *, max_frames: int | None = None) -> Engine:
    """Open nothing yet, but build everything; errors (missing weights, bad specs) raise here.

    Weights are checked and loaded (the model's and the starting annotator's) before any source
    or sink opens, so a missing file stops the start with a clear error and no half-open devices.
    """
    from vacelive import annotators
    from vacelive import bridges
    from vacelive.engine.pipeline import build_generator

    device = resolve_device(store.get("device"))
    manifest = load_manifest(store)
    generator = build_generator(store, manifest, device)
    log.info("generator warmed up in %.1f s (compiled and ready before the clock starts)",
             generator.warm_up(store.snapshot()))
    width, height, fps = store.get("width"), store.get("height"), store.get("fps")
    source = bridges.open_source(store.get("source"), width=width, height=height, fps=fps)
    sinks = [bridges.open_sink(spec) for spec in store.get("sink")]
    preview_sinks = [bridges.open_sink(spec) for spec in store.get("preview_sink")]
    make_annotator = partial(annotators.make_annotator, weights=manifest, device=generator.placement.annotators)
    make_mask_source = partial(annotators.make_mask_source, weights=manifest, resolve_path=store.resolve_media)
    engine = Engine(
        store,
        generator,
        source,
        sinks,
        make_annotator=_built_first(make_annotator, store.get("annotator")),
        make_mask_source=_built_first(make_mask_source, store.get("mask_source")),
        max_frames=max_frames,
        preview_sinks=preview_sinks,
    )
    engine.metrics.placement = generator.placement_lines()
    return engine


def _built_first(factory: Callable[[str], T], name: str) -> Callable[[str], T]:
    """Build ``name`` now (a missing model file stops the start here) and hand it out first."""
    built = {name: factory(name)}

    def make(requested: str) -> T:
        return built.pop(requested) if requested in built else factory(requested)

    return make


def reload_builders():
    """How a live reload builds each part: the same code paths as the start."""
    from vacelive import annotators, bridges
    from vacelive.engine.app import resolve_model_defaults
    from vacelive.engine.pipeline import build_generator, placement_for
    from vacelive.engine.reload import Builders

    def generator(store: ParamStore):
        pipeline = build_generator(store, load_manifest(store), resolve_device(store.get("device")))
        pipeline.warm_up(store.snapshot())  # compiled and ready before it is swapped in
        return pipeline

    def source(store: ParamStore):
        return bridges.open_source(store.get("source"), width=store.get("width"), height=store.get("height"),
                                   fps=store.get("fps"))

    def annotator_factories(store: ParamStore):
        manifest = load_manifest(store)
        device = placement_for(store, resolve_device(store.get("device"))).annotators
        return (partial(annotators.make_annotator, weights=manifest, device=device),
                partial(annotators.make_mask_source, weights=manifest, resolve_path=store.resolve_media))

    return Builders(generator=generator, source=source, sink=bridges.open_sink, annotators=annotator_factories,
                    resolve=resolve_model_defaults)
