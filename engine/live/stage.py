"""The base of every live stage: a thread that runs ``step`` until the engine stops (or the stage
is retired), and never dies of an error."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING



if TYPE_CHECKING:
    from vacelive.engine.loop import Engine

log = logging.getLogger(__name__)


class Stage(threading.Thread):
    """A daemon thread that runs ``step`` until the engine stops, and never dies of an error."""

    def __init__(self, name: str, engine: "Engine") -> None:
        super().__init__(name=f"vacelive-{name}", daemon=True)
        self.engine = engine
        self.retired = threading.Event()
        """Set to end this stage alone (a sink writer replaced by a reload)."""

    def run(self) -> None:
        while not (self.engine.stopping.is_set() or self.retired.is_set()):
            try:
                self.step()
            except Exception as exc:  # a stage must outlive any single failure
                self.engine.report_error(f"{self.name}: {exc!r}")
                log.exception("%s failed; continuing", self.name)
                self.engine.stopping.wait(0.05)
        self.finish()

    def step(self) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """Release what the stage holds; called once on its own thread at shutdown."""
