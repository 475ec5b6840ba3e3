"""Start-up and shutdown of a live run: parameters, servers, bridges, generator, loop.

Order of precedence for values: registry defaults < preset < command-line flags; OSC changes
them while the engine runs.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vacelive.engine.discovery import Advertiser
from vacelive.engine.grabs import Grabber, StillSource
from vacelive.engine.loop import Engine
from vacelive.engine.metrics import Metrics
from vacelive.engine.osc import OscControl, OscServer, StatusSender
from vacelive.engine.origin import normalise_origin
from vacelive.engine.oscquery import OscQueryServer
from vacelive.engine.params import (
    MODEL_DEFAULTS,
    REGISTRY,
    Param,
    ParamError,
    lora_scale_params,
    parse_lora_entries,
    with_lora_scales,
)
from vacelive.engine.paths import PathRefused
from vacelive.engine.presets import PresetError, load_preset, preset_path, save_preset
from vacelive.engine.reload import Reloader
from vacelive.engine.runtime import reload_builders
from vacelive.engine.sources import SourceWatcher
from vacelive.engine.tempo import LinkTimeline, MidiClockTimeline, Quantizer
from vacelive.engine.state import ParamStore

log = logging.getLogger(__name__)

SERVER_GROUP = "server"
SOURCE_SCAN_S = 5.0
"""How often the receivable sources are rescanned while the engine's source is a network one."""
STOP_TIMEOUT_S = 30.0
"""How long shutdown waits for a stage (the generator finishing its chunk) before giving up."""


def resolve_preset(name_or_path: str, preset_dir: Path) -> Path:
    """A preset given by name (in ``preset_dir``) or, on the command line, by file path."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" and candidate.is_file():
        return candidate
    return preset_path(name_or_path, preset_dir)


def build_store(preset: str | None = None, overrides: Mapping[str, Any] | None = None) -> ParamStore:
    """The parameter store at start-up: defaults, then a preset, then explicit overrides.

    Server settings (folders, ports) are applied first so that the media folder is known before
    paths are checked. A value out of range is refused, naming its flag, never clamped. Raises
    :class:`ParamError` or :class:`PresetError` naming what is wrong.
    """
    store = ParamStore()
    overrides = {name: REGISTRY[name].check(value, f"{REGISTRY[name].cli_flag} {value}")
                 for name, value in (overrides or {}).items()}
    for name in [n for n in overrides if REGISTRY[n].group == SERVER_GROUP]:
        store.set(name, overrides.pop(name), live=False)
    values: dict[str, Any] = {}
    if preset:
        # the scales of the LoRAs named on the command line (or else in the preset) are valid in it
        registry = with_lora_scales(REGISTRY, overrides.get("loras", []))
        values = load_preset(resolve_preset(preset, Path(store.get("preset_dir"))), registry).values
    loras = overrides.get("loras", values.get("loras", store.get("loras")))
    store.add_params(lora_scale_params(loras))
    stray = [name for name in values if name not in store.registry]
    if stray:
        raise ParamError(f"preset {preset}: {', '.join(stray)} set, but --loras does not name "
                         f"{'that LoRA' if len(stray) == 1 else 'those LoRAs'} (it replaces the preset's list)")
    store.update(values, live=False)
    store.update(overrides, live=False)
    check_lora_paths(store)
    resolve_model_defaults(store)
    for origin in store.get("http_allow_origin"):
        try:
            normalise_origin(origin)
        except ValueError as exc:
            raise ParamError(str(exc)) from None
    return store


def check_lora_paths(store: ParamStore, entries: list[str] | None = None) -> None:
    """Every ``loras`` entry (default: the store's) must be NAME=PATH with PATH a file inside the
    weights or the media folder; raises :class:`ParamError` naming each one that is not."""
    problems = []
    for name, path in parse_lora_entries(store.get("loras") if entries is None else entries):
        try:
            store.resolve_lora(path)
        except PathRefused as exc:
            problems.append(f"{name}: {exc}")
    if problems:
        raise ParamError("loras: " + "; ".join(problems))


def follow_loras(store: ParamStore, control: OscControl) -> None:
    """LoRAs loaded over OSC: a live ``loras`` value is checked at once (entries, confined paths)
    and waits for ``/vacelive/reload``; when the reload puts it in force, each new LoRA's scale
    becomes a parameter of the store (so of OSCQuery and presets) and an OSC address."""
    store.register_live_check("loras", lambda entries: check_lora_paths(store, entries))

    def add_scales(param: Param, value: Any) -> None:
        if param.name != "loras":
            return
        added = [p for p in lora_scale_params(value) if p.name not in store.registry]
        if added:
            store.add_params(added)
            for scale in added:
                control.map_param(scale)
            log.info("LoRA scales now addressable: %s", ", ".join(p.address for p in added))

    store.subscribe(add_scales)


def resolve_model_defaults(store: ParamStore) -> None:
    """Turn ``width``/``height`` 0 and ``vae`` auto into the model's own values; check the size."""
    defaults = MODEL_DEFAULTS[store.get("model")]
    for name, unset in (("width", 0), ("height", 0), ("vae", "auto")):
        if store.get(name) == unset:
            store.set(name, defaults[name], live=False)
    for name in ("width", "height"):
        value = store.get(name)
        if value % 16 or value < 64:
            raise ParamError(f"{name} = {value}: must be a multiple of 16, at least 64 (the VAE's 8x and the patch's 2x)")


def install_preset_actions(store: ParamStore) -> None:
    """Make ``preset_load`` / ``preset_save`` load and save presets when set over OSC."""
    preset_dir = Path(store.get("preset_dir"))

    def load(name: Any) -> None:
        if not name:
            return
        try:
            preset = load_preset(preset_path(name, preset_dir), store.registry)
            unloaded = [key for key in preset.values if key not in store.registry]  # LoRAs not running
            notes = store.update({k: v for k, v in preset.values.items() if k not in unloaded}, live=True)
        except PresetError as exc:
            raise ParamError(str(exc)) from None
        store.defer({key: preset.values[key] for key in unloaded})
        notes += [f"{key} = {preset.values[key]} applies once /vacelive/reload has loaded that LoRA"
                  for key in unloaded]
        for note in notes:
            log.warning("preset %s: %s", name, note)
        log.info("preset %s loaded", name)

    def save(name: Any) -> None:
        if not name:
            return
        try:
            save_preset(preset_path(name, preset_dir), store.snapshot(), description="saved from a live run",
                        registry=store.registry)
        except (PresetError, OSError) as exc:
            raise ParamError(f"preset_save {name!r}: {exc}") from None
        log.info("preset %s saved", name)

    store.register_action("preset_load", load)
    store.register_action("preset_save", save)


def beat_timeline(store: ParamStore) -> LinkTimeline | MidiClockTimeline | None:
    """The timeline ``quantize`` follows: Ableton Link (``--link``), a MIDI clock (``--midi-clock``), or none."""
    if store.get("link") and store.get("midi_clock"):
        raise ParamError("--link and --midi-clock both give the beat: choose one")
    if store.get("link"):
        return LinkTimeline(store.get("tempo"))
    if store.get("midi_clock"):
        return MidiClockTimeline(store.get("midi_clock"), default_bpm=store.get("tempo"))
    return None


class LiveRun:
    """Everything a ``vacelive run`` holds: the engine plus OSC, OSCQuery, mDNS, status and display."""

    def __init__(self, store: ParamStore, engine: Engine, *, tui: bool = False) -> None:
        self.store = store
        self.engine = engine
        self.status = StatusSender(store, engine.metrics.summary)
        engine.on_error = self.status.send_error
        self.timeline = beat_timeline(store)
        engine.quantizer = Quantizer(self.timeline, latency=engine.metrics.latency_s)
        engine.metrics.figure_sources.append(engine.quantizer.figures)
        store.register_action("tempo", self._lead_tempo)
        self.control = OscControl(store, allow=store.get("osc_allow"), on_replies=self.status.copy_replies,
                                  quantizer=engine.quantizer, status=engine.metrics.summary)
        follow_loras(store, self.control)
        self.osc = OscServer(self.control, store.get("osc_host"), store.get("osc_port"))
        http_port = store.get("http_port")
        self.oscquery = (
            OscQueryServer(store, engine.metrics.summary, store.get("osc_host"), http_port, self.osc.address,
                           control=self.control, allow_origins=store.get("http_allow_origin"))
            if http_port else None
        )
        self.discovery = (
            Advertiser("vacelive", store.get("osc_host"), self.osc.address[1],
                       self.oscquery.address[1] if self.oscquery else 0)
            if store.get("mdns") else None
        )
        self.stuck: list[str] = []
        self.display = None
        if tui:
            from vacelive.engine.console import LiveDisplay

            self.display = LiveDisplay(engine.metrics.summary, "vacelive")
        install_preset_actions(store)
        self.reloader = Reloader(store, engine, reload_builders())
        network_source = store.get("source").partition(":")[0] in SourceWatcher.KINDS
        self.sources = SourceWatcher(self._set_sources, period_s=SOURCE_SCAN_S if network_source else None)
        store.register_action("sources_scan", lambda _value: self.sources.request())
        self.still = None
        if store.get("still_source"):
            from vacelive import bridges

            spec = store.get("still_source")
            self.still = StillSource(bridges.open_source(spec, width=engine.width, height=engine.height,
                                                         fps=store.get("fps")), engine.width, engine.height)
            self.grabber = Grabber(store, lambda: self.still.latest, f"the still source {spec}")
        else:
            self.grabber = Grabber(store, lambda: engine.source_reader.latest, "the input")

    def run(self) -> Metrics:
        """Start everything, block until stopped (frames reached, SIGINT, SIGTERM), then stop."""
        restore = self._install_signal_handlers()
        services = [s for s in (self.osc, self.oscquery, self.status, self.sources, self.still, self.display)
                    if s is not None]
        started = []
        try:
            for service in services:
                service.start()
                started.append(service)
            log.info("OSC on %s:%d%s", *self.osc.address,
                     f", OSCQuery on http://{self.oscquery.address[0]}:{self.oscquery.address[1]}/"
                     if self.oscquery else "")
            self.engine.start()
            self._wait_for_source(float(self.store.get("source_timeout")))
            if self.discovery is not None:  # advertised once the engine runs: a failed start is never announced
                self.discovery.start()
                started.append(self.discovery)
            self.engine.wait()
        finally:
            self.engine.stopping.set()
            self.reloader.wait(STOP_TIMEOUT_S)  # a reload under way ends before the parts it swaps close
            self.stuck = self.engine.stop(STOP_TIMEOUT_S)
            for service in reversed(started):
                service.stop()
            restore()
            if self.timeline is not None:
                self.timeline.close()
            if self.stuck:
                log.error("threads still running at shutdown: %s", ", ".join(self.stuck))
        return self.engine.metrics

    def _lead_tempo(self, bpm: float) -> None:
        """``/vacelive/tempo``: set the Link session's tempo (nothing to lead without ``--link``)."""
        if self.timeline is not None:
            self.timeline.set_tempo(float(bpm))

    def _set_sources(self, specs: list[str]) -> None:
        self.engine.metrics.sources = specs

    def _wait_for_source(self, timeout_s: float) -> None:
        """With a timeout, the start fails (``BridgeError``) if the source sends nothing in time."""
        if timeout_s <= 0:
            return
        reader = self.engine.source_reader
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if reader.first_frame.wait(0.2) or self.engine.stopping.is_set():
                return
        from vacelive.bridges import BridgeError
        from vacelive.engine.live.source import waiting_note

        raise BridgeError(f"no frame within --source-timeout {timeout_s:g} s: {waiting_note(reader.source)}")

    def _install_signal_handlers(self):
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {}

        def handle(signum, _frame) -> None:
            log.info("signal %s: shutting down", signal.Signals(signum).name)
            self.engine.stopping.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handle)

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore
