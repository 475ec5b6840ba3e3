"""Live references and keyframes: ``/vacelive/<slot>_grab`` puts the current frame into a slot.

The frame is the engine's current input frame (as the model gets it: resized crop-to-fill), or,
with ``--still-source SPEC``, the newest frame of that second source (an NDI or Spout sender that
TouchDesigner points at any TOP). It is written as a PNG under ``grabs/`` in the media folder and
the slot's path parameter is set to it, so the VACE branch loads it like any reference or
keyframe file, a preset saved afterwards keeps it, and ``/vacelive/<slot> ""`` clears it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

import cv2
import numpy as np

from vacelive.bridges.base import Source
from vacelive.engine.frames import crop_to_fill, to_rgb
from vacelive.engine.params import ParamError
from vacelive.engine.state import ParamStore

log = logging.getLogger(__name__)

GRAB_SLOTS = ("reference_1", "reference_2", "reference_3", "keyframe_first", "keyframe_last")
GRABS_FOLDER = "grabs"


class StillSource:
    """A second source read on its own thread, keeping only its newest frame (engine size, RGB)."""

    RETRY_S = 2.0

    def __init__(self, source: Source, width: int, height: int) -> None:
        self.source = source
        self.width, self.height = width, height
        self.latest: np.ndarray | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vacelive-still-source", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                frame = self.source.read(timeout=0.1)
            except Exception as exc:  # a lost still source is retried; grabs say there is no frame
                log.warning("still source %s: %s; retrying", self.source.name, exc)
                self._stop.wait(self.RETRY_S)
                continue
            if frame is not None:
                self.latest = crop_to_fill(to_rgb(frame), self.width, self.height)

    def start(self) -> None:
        """Open the source (``BridgeError`` if it cannot) and start reading."""
        self.source.open()
        self._thread.start()

    def stop(self) -> None:
        """Stop reading and close the source."""
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(5.0)
        self.source.close()


class Grabber:
    """Registers the ``<slot>_grab`` triggers: each writes ``current()`` into the slot."""

    def __init__(self, store: ParamStore, current: Callable[[], np.ndarray | None], what: str) -> None:
        self.store = store
        self.current = current
        self.what = what
        for slot in GRAB_SLOTS:
            store.register_action(f"{slot}_grab", lambda _value, slot=slot: self.grab(slot))

    def grab(self, slot: str) -> str:
        """Save the current frame for ``slot`` and point the slot at it; returns the media path."""
        frame = self.current()
        if frame is None:
            raise ParamError(f"{slot}_grab: no frame from {self.what} yet")
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        relative = f"{GRABS_FOLDER}/{slot}-{stamp}.png"
        target = self.store.media_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(target), cv2.cvtColor(to_rgb(frame), cv2.COLOR_RGB2BGR)):
            raise ParamError(f"{slot}_grab: could not write {target}")
        self.store.set(slot, relative)
        log.info("%s grabbed from %s into %s", slot, self.what, relative)
        return relative
