"""The annotator stage: control frames and masks with one parameter snapshot per chunk, the input
placed smaller when outpainting."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from vacelive.annotators.base import Annotator, MaskSource
from vacelive.engine.frames import CHUNK_FRAMES, to_rgb
from vacelive.engine.live.queues import AnnotatedFrame
from vacelive.engine.live.stage import Stage
from vacelive.engine.outpaint import Placement
from vacelive.engine.params import ParamError
from vacelive.engine.state import Snapshot

if TYPE_CHECKING:
    from vacelive.engine.loop import Engine


class AnnotatorStage(Stage):
    """Annotates frames as they arrive, with one parameter snapshot per chunk."""

    def __init__(self, engine: "Engine") -> None:
        super().__init__("annotator", engine)
        self._epoch = -1
        self._chunk_seq = 0
        self._position = 0
        self._snapshot: Snapshot | None = None
        self._annotator: Annotator | None = None
        self._annotator_name = "none"
        self._mask_source: MaskSource | None = None
        self._mask_name = "none"
        self._last_control: np.ndarray | None = None
        self._rebuild = False

    def step(self) -> None:
        engine = self.engine
        item = engine.frames_q.get(timeout=0.1)
        if item is None:
            return
        started = time.perf_counter()
        if self._position == 0 and engine.quantizer.held:  # a chunk starts: what is due on the beat applies now
            self._apply_on_beat(item.captured_at)
            item = replace(item, epoch=engine.epoch)  # a cut made just now starts with this frame
        if item.epoch != self._epoch:  # hard cut: fresh chunk, fresh annotator state
            self._epoch = item.epoch
            if self._position:
                self._chunk_seq += 1
            self._position = 0
            for stateful in (self._annotator, self._mask_source):
                if stateful is not None:
                    stateful.reset()
        if self._position == 0:
            self._snapshot = engine.store.snapshot()
            self._select(self._snapshot)
        snapshot = self._snapshot
        assert snapshot is not None
        rgb = to_rgb(item.image)
        alpha = item.image[None, :, :, 3] if item.image.shape[2] == 4 else None
        placement = _outpaint_placement(snapshot, rgb.shape)
        if placement is not None:  # outpainting: the model is given the input shrunk and placed
            rgb = placement.shrink(rgb)
            alpha = None if alpha is None else placement.shrink(alpha[0])[None]
        annotate_start = time.perf_counter()
        control = self._annotate(rgb, snapshot)
        mask = self._mask(rgb, alpha, snapshot)
        annotate_end = time.perf_counter()
        if placement is not None:
            frame_shape = (engine.height, engine.width, 3)
            control = None if control is None else placement.place(control, frame_shape)
            mask = placement.mask(engine.height, engine.width, mask)
            rgb = placement.place(rgb, frame_shape)
        engine.metrics.dropped_frames += engine.annotated_q.put(AnnotatedFrame(
            self._epoch, self._chunk_seq, self._position, rgb, control, mask, snapshot, item.captured_at,
        ))
        engine.metrics.record("annotate", (annotate_end - annotate_start) * 1000.0)
        engine.metrics.record("annotator_stage",
                              (time.perf_counter() - started - (annotate_end - annotate_start)) * 1000.0)
        self._position += 1
        if self._position == CHUNK_FRAMES:
            self._position = 0
            self._chunk_seq += 1

    def _apply_on_beat(self, captured_at: float) -> None:
        """Apply the held changes whose boundary this chunk's first frame will be shown on or after."""
        for change in self.engine.quantizer.due(captured_at):
            try:
                self.engine.store.set(change.name, change.value)
            except ParamError as exc:  # e.g. a preset deleted meanwhile: said, the show goes on
                self.engine.report_error(f"on the beat: {exc}")

    def rebuild(self) -> None:
        """Build the annotator and mask source anew at the next chunk (their factories changed)."""
        self._rebuild = True

    def _select(self, snapshot: Snapshot) -> None:
        """Build the annotator and mask source the snapshot asks for; keep the old on failure."""
        rebuild, self._rebuild = self._rebuild, False
        name = snapshot["annotator"]
        if name != self._annotator_name or rebuild:
            try:
                self._annotator = self.engine.make_annotator(name)
                self._annotator_name = name
                self._last_control = None
            except Exception as exc:
                self.engine.report_error(f"annotator {name!r} unavailable: {exc}; keeping {self._annotator_name!r}")
                self.engine.store.set("annotator", self._annotator_name)
        mask_name = snapshot["mask_source"]
        if mask_name != self._mask_name or rebuild:
            try:
                self._mask_source = self.engine.make_mask_source(mask_name)
                self._mask_name = mask_name
            except Exception as exc:
                self.engine.report_error(f"mask source {mask_name!r} unavailable: {exc}; keeping {self._mask_name!r}")
                self.engine.store.set("mask_source", self._mask_name)

    def _annotate(self, rgb: np.ndarray, snapshot: Snapshot) -> np.ndarray | None:
        if self._annotator is None:
            return None
        try:
            control = self._annotator(rgb[None], snapshot)[0]
        except Exception as exc:  # hold the last good control frame
            self.engine.report_error(f"annotator {self._annotator_name}: {exc!r}", condition="annotator")
            last = self._last_control
            return last if last is not None and last.shape == rgb.shape else np.zeros_like(rgb)
        self._last_control = control
        self.engine.clear_error("annotator")
        return control

    def _mask(self, rgb: np.ndarray, alpha: np.ndarray | None, snapshot: Snapshot) -> np.ndarray | None:
        if self._mask_source is None:
            return None
        try:
            mask = self._mask_source(rgb[None], snapshot, alpha)[0]
        except Exception as exc:  # no mask this frame: generate everywhere
            self.engine.report_error(f"mask {self._mask_name}: {exc!r}", condition="mask")
            return np.ones(rgb.shape[:2], dtype=np.float32)
        self.engine.clear_error("mask")
        return mask


def _outpaint_placement(snapshot: Snapshot, frame_shape: tuple[int, ...]) -> Placement | None:
    """Where the input goes when the snapshot asks for outpainting (``outpaint_scale`` < 1)."""
    scale = float(snapshot["outpaint_scale"])
    if scale >= 1.0:
        return None
    return Placement.of(frame_shape[1], frame_shape[0], scale, snapshot["outpaint_x"], snapshot["outpaint_y"])
