"""Live parameter state: validated sets from any thread, consistent snapshots per chunk."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from vacelive.engine.params import REGISTRY, Applies, Kind, Param, ParamError, Registry
from vacelive.engine.paths import PathRefused, confined_path

log = logging.getLogger(__name__)

Listener = Callable[[Param, Any], None]
Action = Callable[[Any], None]


def _copy_value(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


class Snapshot(Mapping[str, Any]):
    """An immutable view of every parameter's value at one moment, with a version number."""

    def __init__(self, values: dict[str, Any], version: int) -> None:
        self._values = MappingProxyType(values)
        self.version = version

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Snapshot(version={self.version})"


class ParamStore:
    """Holds the current value of every parameter.

    ``set`` validates (type, range, confined paths) and either changes the value or raises
    :class:`ParamError` changing nothing. Listeners are called after a change, outside the lock,
    so NOW parameters (pause, cut, fps, preset actions) can act at once. ``snapshot`` returns a
    consistent immutable view: the loop takes one per chunk, so no change is half-applied.
    """

    def __init__(self, registry: Registry = REGISTRY) -> None:
        self.registry = registry
        self._values = registry.defaults()
        self._version = 0
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []
        self._actions: dict[str, Action] = {}
        self._live_checks: dict[str, Action] = {}
        self._pending: dict[str, Any] = {}
        self._deferred: dict[str, Any] = {}

    @property
    def media_dir(self) -> Path:
        """The folder PATH parameters are confined to."""
        return Path(self.get("media_dir"))

    def resolve_media(self, value: str) -> Path:
        """Resolve a PATH value below the media folder (raises :class:`PathRefused`)."""
        return confined_path(value, self.media_dir)

    def resolve_lora(self, value: str) -> Path:
        """Resolve a LoRA file path inside the weights folder (when one is set), else the media
        folder; raises :class:`PathRefused` saying where it looked."""
        weights_dir = self.get("weights_dir")
        folders = [Path(weights_dir)] if weights_dir else []
        folders.append(self.media_dir)
        refusals = []
        for folder in folders:
            try:
                return confined_path(value, folder)
            except PathRefused as exc:
                refusals.append(str(exc))
        raise PathRefused("; ".join(dict.fromkeys(refusals)))

    def add_params(self, params: Sequence[Param]) -> None:
        """Extend this store's registry with ``params`` at their defaults (the LoRA scales, once the
        LoRAs are known). Call before the OSC and OSCQuery servers are built: they map
        ``registry`` when they are made. A name already present is an error."""
        with self._lock:
            self.registry = self.registry.extended(params)
            for param in params:
                self._values[param.name] = _copy_value(param.default)
            self._version += 1
            waiting = {p.name: self._deferred.pop(p.name) for p in params if p.name in self._deferred}
        for name, value in waiting.items():
            self.set(name, value)

    def defer(self, values: Mapping[str, Any]) -> None:
        """Keep values for parameters that do not exist yet (the scales of LoRAs a live preset
        lists, before the reload has loaded them); :meth:`add_params` applies them."""
        with self._lock:
            self._deferred.update(values)

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(param, value)`` after every change."""
        self._listeners.append(listener)

    def register_action(self, name: str, action: Action) -> None:
        """Run ``action(value)`` when ``name`` is set, before the value is stored.

        An action may raise :class:`ParamError` to refuse the value (nothing is stored then);
        used for preset load/save, whose failure the sender must hear about.
        """
        self._actions[name] = action

    def register_live_check(self, name: str, check: Action) -> None:
        """Run ``check(value)`` on every live value of ``name`` (a pending RELOAD one too) before it
        is taken; it raises :class:`ParamError` to refuse it. Checks that need other values in
        place (the folders a path lives in) belong here, not in the start-up order."""
        self._live_checks[name] = check

    @property
    def pending(self) -> dict[str, Any]:
        """RELOAD values set live and not yet applied (a copy)."""
        with self._lock:
            return dict(self._pending)

    def take_pending(self) -> dict[str, Any]:
        """The pending RELOAD values, which are then no longer pending."""
        with self._lock:
            pending, self._pending = self._pending, {}
        return pending

    def copy(self) -> ParamStore:
        """A store with the same registry and values (no listeners, actions or pending values)."""
        twin = ParamStore(self.registry)
        with self._lock:
            twin._values = dict(self._values)
        return twin

    def get(self, name: str) -> Any:
        """The current value of ``name``."""
        with self._lock:
            return self._values[name]

    def snapshot(self) -> Snapshot:
        """A consistent copy of all values."""
        with self._lock:
            return Snapshot(dict(self._values), self._version)

    def set(self, name: str, value: Any, *, live: bool = True) -> tuple[Any, str | None]:
        """Validate and apply one value; return ``(applied_value, note)``.

        ``live`` refuses RESTART parameters (they are set at start-up only) and keeps RELOAD ones
        as pending (:meth:`take_pending`) instead of applying them. Raises :class:`ParamError`
        (unknown name, wrong type, refused path) and changes nothing then.
        """
        param = self.registry[name] if name in self.registry else None
        if param is None:
            raise ParamError(f"unknown parameter {name!r}")
        if live and not param.writable_live:
            raise ParamError(f"{name} applies at restart; set it on the command line or in a preset")
        coerced, note = param.coerce(value)
        self._check_path(param, coerced)
        if live and name in self._live_checks:
            self._live_checks[name](coerced)
        if live and param.applies is Applies.RELOAD:
            with self._lock:
                self._pending[name] = coerced
            log.info("%s = %r is pending: /vacelive/reload applies it", name, coerced)
            return coerced, note
        action = self._actions.get(name)
        if action is not None and (coerced or param.kind is not Kind.TRIGGER):
            action(coerced)
        if param.kind is Kind.TRIGGER:
            if not coerced:
                return coerced, note
        else:
            with self._lock:
                self._values[name] = coerced
                self._version += 1
        if note:
            log.warning(note)
        for listener in list(self._listeners):
            try:
                listener(param, coerced)
            except Exception:  # a failing listener must not undo or block the change
                log.exception("listener failed for %s", name)
        return coerced, note

    def _check_path(self, param: Param, value: Any) -> None:
        if param.kind is Kind.PATH and value:
            try:
                self.resolve_media(value)
            except PathRefused as exc:
                raise ParamError(f"{param.name}: {exc}") from None

    def update(self, values: Mapping[str, Any], *, live: bool = True) -> list[str]:
        """Validate every value first, then apply them all; return the notes.

        All-or-nothing: if any value is bad, a :class:`ParamError` naming it is raised and
        nothing changes. With ``live``, RESTART parameters that differ from the current value
        are skipped with a note (they take effect at the next start), RELOAD ones become pending.
        """
        checked: dict[str, Any] = {}
        notes: list[str] = []
        for name, value in values.items():
            if name not in self.registry:
                raise ParamError(f"unknown parameter {name!r}")
            param = self.registry[name]
            coerced, note = param.coerce(value)
            if note:
                notes.append(note)
            self._check_path(param, coerced)
            if live and name in self._live_checks:
                self._live_checks[name](coerced)
            if live and param.applies is Applies.RESTART:
                if coerced != self.get(name):
                    notes.append(f"{name} = {coerced!r} takes effect at the next start")
                continue
            if live and param.applies is Applies.RELOAD:
                if coerced != self.get(name):
                    notes.append(f"{name} = {coerced!r} is pending: /vacelive/reload applies it")
                    checked[name] = coerced
                continue
            checked[name] = coerced
        for name, value in checked.items():
            self.set(name, value, live=live)
        return notes
