"""Live reload: new model, weights, size, VAE, source or sinks without stopping the output.

Reload-time parameters (``applies = reload``) set while running wait as *pending* values;
``/vacelive/reload`` applies them. What they need is built on a background thread while the
engine keeps running on the old parts (the publisher holds its clock and its last frame):

1. the new generator (model, weights, device, dtype, VAE, size) and annotator factories, then the
   new source, opened; sinks with new specs, opened at the new size;
2. if any of that fails (missing weights, out of memory, a source that cannot open), everything
   new is closed again, the old parts keep running, the pending values are dropped and the
   error is answered on the reply target and shown in status ``reload``;
3. otherwise :meth:`Engine.swap` puts the new parts in between two chunks and hard-cuts; sinks
   whose spec is unchanged but whose size changed are reopened right after their old writer has
   closed them (a file or NDI sender of one name cannot be open twice); the old generator is
   released and the CUDA cache emptied so its memory is free for the next load.

With nothing pending, ``/vacelive/reload`` reloads the generator from its files (weights replaced
on disk). A reload asked for while one runs is done after it.
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from vacelive.annotators.base import Annotator, MaskSource
from vacelive.bridges.base import Sink, Source
from vacelive.engine.generator import Generator
from vacelive.engine.loop import Engine
from vacelive.engine.state import ParamStore

log = logging.getLogger(__name__)

GENERATOR_PARAMS = frozenset({"model", "weights_dir", "device", "dtype", "vae", "compile", "width", "height",
                              "loras", "lora_mode"})
ANNOTATOR_PARAMS = frozenset({"weights_dir", "device"})


@dataclass
class Builders:
    """How a reload makes each part from a store holding the new values."""

    generator: Callable[[ParamStore], Generator]
    source: Callable[[ParamStore], Source]
    """Constructs the source (the reloader opens it)."""
    sink: Callable[[str], Sink]
    """Constructs the sink for a spec (the reloader opens it)."""
    annotators: Callable[[ParamStore], tuple[Callable[[str], Annotator | None], Callable[[str], MaskSource | None]]]
    """The annotator and mask-source factories for the store's weights and device."""
    resolve: Callable[[ParamStore], None] = lambda store: None
    """Turns the new values into what runs (model defaults for width/height 0, vae auto)."""


class Reloader:
    """Applies pending reload-time values on ``/vacelive/reload`` (see the module docstring)."""

    def __init__(self, store: ParamStore, engine: Engine, builders: Builders) -> None:
        self.store = store
        self.engine = engine
        self.builders = builders
        self.reloads = 0
        """Reloads completed."""
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._again = False
        store.register_action("reload", lambda _value: self.request())

    @property
    def busy(self) -> bool:
        """Whether a reload is being built now."""
        return self._thread is not None and self._thread.is_alive()

    def request(self) -> None:
        """Start a reload in the background (or queue one after the reload under way)."""
        with self._lock:
            if self.busy:
                self._again = True
                return
            self._thread = threading.Thread(target=self._run, name="vacelive-reload", daemon=True)
            self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the reload under way; True when none is running any more."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.busy

    def _run(self) -> None:
        while not self.engine.stopping.is_set():
            try:
                self._reload_once()
            except Exception as exc:  # never let a reload take the engine down
                log.exception("reload failed")
                self._fail(f"reload failed: {exc!r}")
            with self._lock:
                if not self._again:
                    return
                self._again = False

    def _status(self, text: str) -> None:
        self.engine.metrics.reload_state = text

    def _fail(self, message: str) -> None:
        """Status ``reload`` and the engine's error report (log, status, reply target) say why."""
        self._status(message)
        self.engine.report_error(message)

    def _reload_once(self) -> None:
        started = time.monotonic()
        pending = self.store.take_pending()
        trial = self.store.copy()
        trial.update(pending, live=False)
        self.builders.resolve(trial)
        changed = {name for name in pending if trial.get(name) != self.store.get(name)} or set(pending)
        size = (int(trial.get("width")), int(trial.get("height")))
        size_changed = size != (self.engine.width, self.engine.height)
        rebuild_generator = not pending or bool(changed & GENERATOR_PARAMS) or size_changed
        old_specs, new_specs = list(self.store.get("sink")), list(trial.get("sink"))
        replace_sinks = old_specs != new_specs or size_changed
        what = ", ".join(sorted(changed)) or "generator"
        self._status(f"loading: {what}")
        log.info("reload: building %s", what)
        built: list[Source | Sink] = []
        try:
            generator = self.builders.generator(trial) if rebuild_generator else None
            annotators = self.builders.annotators(trial) if (changed & ANNOTATOR_PARAMS) else None
            source = None
            if "source" in changed:
                source = self.builders.source(trial)
                source.open()
                built.append(source)
            fresh = [self._open_sink(spec, size) for spec in new_specs if spec not in old_specs]
            built += fresh
        except Exception as exc:
            for part in built:
                _close(part)
            generator = None  # a half-built generator (out of memory, say) must not hold the GPU
            _free_memory()
            self._fail(f"reload of {what} failed, the running one goes on: {exc}")
            return
        old = self.engine.swap(
            generator=generator, source=source, size=size if size_changed else None,
            make_annotator=annotators[0] if annotators else None,
            make_mask_source=annotators[1] if annotators else None,
        )
        lines = getattr(generator, "placement_lines", None)  # a pipeline says where its parts run
        if lines is not None:
            self.engine.metrics.placement = lines()
        if replace_sinks:
            self._swap_sinks(fresh, new_specs, size, size_changed)
        self.store.update({name: trial.get(name) for name in {*pending, "width", "height", "vae"}}, live=False)
        if old is not None:
            del old
            _free_memory()
        self.reloads += 1
        self._status(f"done: {what} in {time.monotonic() - started:.1f} s")
        log.info("reload: %s in force", what)

    def _open_sink(self, spec: str, size: tuple[int, int]) -> Sink:
        sink = self.builders.sink(spec)
        sink.open(size[0], size[1], float(self.store.get("fps")))
        return sink

    def _swap_sinks(self, fresh: list[Sink], new_specs: list[str], size: tuple[int, int], size_changed: bool) -> None:
        """Keep the writers of unchanged sinks, add the fresh ones, retire the rest; a kept spec
        whose size changed is reopened once its old writer has closed it."""
        engine = self.engine
        by_name = {writer.sink.name: writer for writer in engine.publisher.writers}
        kept = [by_name[spec] for spec in new_specs if spec in by_name and not size_changed]
        reopen = [spec for spec in new_specs if spec in by_name and size_changed]
        engine.set_sinks(kept, fresh)
        reopened = []
        for spec in reopen:
            try:
                reopened.append(self._open_sink(spec, size))
            except Exception as exc:
                engine.report_error(f"reload: sink {spec} could not reopen at {size[0]}x{size[1]}: {exc}")
        if reopened:
            engine.set_sinks(engine.publisher.writers, reopened)


def _close(part: Source | Sink) -> None:
    try:
        part.close()
    except Exception:
        log.exception("closing %s after a failed reload", getattr(part, "name", part))


def _free_memory() -> None:
    """Let the old generator's tensors go and hand the CUDA cache back."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
