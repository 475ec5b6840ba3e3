"""The person mask source: mediapipe ImageSegmenter with the selfie segmenter model.

mediapipe is imported only when the source is built; the model is a local
``selfie_segmenter.tflite`` (weights role ``segmenter``). A file mediapipe cannot load raises
``RuntimeError`` naming the file, as the pose annotator does.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from vacelive.annotators.masks import KeyedMaskSource
from vacelive.annotators.pose import MEDIAPIPE_INSTALL, MODEL_LOAD_ERRORS, model_load_error
from vacelive.annotators.settings import get_float

FRAME_INTERVAL_MS = 33
"""Timestamp step between frames fed to the segmenter in VIDEO mode."""


class PersonMask(KeyedMaskSource):
    """Generate where a person is (segmenter confidence above ``mask_threshold``)."""

    name = "person"

    def __init__(self, model_file: Path) -> None:
        try:
            from mediapipe.tasks.python import vision  # noqa: F401
        except ImportError as exc:
            raise ImportError(f"mask_source 'person' needs mediapipe: {MEDIAPIPE_INSTALL}") from exc
        if not Path(model_file).is_file():
            raise FileNotFoundError(f"segmenter model file not found: {model_file}")
        self.model_file = Path(model_file)
        self._segmenter: Any = self._create()
        self._timestamp_ms = 0

    def reset(self) -> None:
        """Drop the segmenter (a fresh one is made on the next call)."""
        if self._segmenter is not None:
            self._segmenter.close()
        self._segmenter = None
        self._timestamp_ms = 0

    def _create(self) -> Any:
        from mediapipe.tasks.python import vision
        from mediapipe.tasks.python.core.base_options import BaseOptions

        options = vision.ImageSegmenterOptions(
            base_options=BaseOptions(model_asset_path=str(self.model_file)),
            running_mode=vision.RunningMode.VIDEO,
            output_confidence_masks=True,
            output_category_mask=False,
        )
        try:
            return vision.ImageSegmenter.create_from_options(options)
        except MODEL_LOAD_ERRORS as exc:
            raise model_load_error("segmenter", self.model_file, exc) from exc

    def person_confidence(self, frame: np.ndarray) -> np.ndarray:
        """Person probability (H, W) float32 of one RGB frame.

        The single-class selfie segmenter gives the person mask itself; a multiclass model
        gives background first, so the person is everything that is not background.
        """
        import mediapipe as mp

        if self._segmenter is None:
            self._segmenter = self._create()
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(frame))
        result = self._segmenter.segment_for_video(image, self._timestamp_ms)
        self._timestamp_ms += FRAME_INTERVAL_MS
        masks = [m.numpy_view() for m in result.confidence_masks]
        conf = masks[0] if len(masks) == 1 else 1.0 - masks[0]
        return np.asarray(conf, dtype=np.float32).reshape(frame.shape[:2])

    def raw(
        self, frames: np.ndarray, settings: Mapping[str, Any], alpha: np.ndarray | None
    ) -> np.ndarray:
        threshold = get_float(settings, "mask_threshold")
        return np.stack([self.person_confidence(f) > threshold for f in frames]).astype(np.float32)
