"""Changes on the beat: a shared timeline (Ableton Link) and the quantiser that holds changes for it.

With ``quantize`` set to ``beat``, ``bar`` or ``4bars``, a cut, a prompt change or a preset load
sent over OSC is not applied at once: :class:`Quantizer` holds it until the chunk whose first
output frame will be *shown* on or after the next boundary of the timeline. A chunk's first
frame shows about one glass-to-glass latency after it was captured, so the annotator asks, at
each chunk boundary, for the changes due by ``capture time + latency``; the change then lands on
the beat instead of a chunk late.

The timeline is an Ableton Link session (``pip install "vacelive[link]"``: linkpython-extern,
wheels for Linux, macOS and Windows), joined with ``--link``; TouchDesigner's Ableton Link CHOP,
Ableton Live and any other peer on the network share its tempo and phase. The engine can also
lead: ``/vacelive/tempo`` sets the session's tempo. Or it is a MIDI clock from an input port
(``--midi-clock PORT``, :class:`MidiClockTimeline`). :class:`ManualTimeline` is a timeline with
a clock of its own, for tests.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

QUANTA: dict[str, float] = {"beat": 1.0, "bar": 4.0, "4bars": 16.0}
"""Beats per boundary for each ``quantize`` choice (4/4)."""


class Timeline(Protocol):
    """A beat timeline; times are ``time.monotonic()`` seconds."""

    def tempo(self) -> float: ...

    def set_tempo(self, bpm: float) -> None: ...

    def beat_at(self, when: float) -> float: ...

    def time_at_beat(self, beat: float) -> float: ...

    def peers(self) -> int: ...


class ManualTimeline:
    """A timeline running at ``bpm`` from beat 0 at ``start`` (monotonic seconds)."""

    def __init__(self, bpm: float = 120.0, start: float | None = None) -> None:
        self._bpm = bpm
        self._origin = time.monotonic() if start is None else start
        self._origin_beat = 0.0

    def tempo(self) -> float:
        return self._bpm

    def set_tempo(self, bpm: float) -> None:
        """Change the tempo from now on, keeping the beat continuous."""
        now = time.monotonic()
        self._origin_beat, self._origin, self._bpm = self.beat_at(now), now, bpm

    def beat_at(self, when: float) -> float:
        return self._origin_beat + (when - self._origin) * self._bpm / 60.0

    def time_at_beat(self, beat: float) -> float:
        return self._origin + (beat - self._origin_beat) * 60.0 / self._bpm

    def peers(self) -> int:
        return 0


class LinkTimeline:
    """An Ableton Link session peer (linkpython-extern). Link's clock is converted to
    ``time.monotonic()`` seconds by an offset measured at each call."""

    def __init__(self, bpm: float = 120.0) -> None:
        try:
            import link
        except ImportError:
            raise RuntimeError('Ableton Link needs the link extra: pip install "vacelive[link]"') from None
        self._link = link.Link(bpm)
        self._link.enabled = True

    def _offset_s(self) -> float:
        """Link clock seconds minus monotonic seconds."""
        return self._link.clock().micros() / 1e6 - time.monotonic()

    def tempo(self) -> float:
        return float(self._link.captureAppSessionState().tempo())

    def set_tempo(self, bpm: float) -> None:
        state = self._link.captureAppSessionState()
        state.setTempo(bpm, self._link.clock().micros())
        self._link.commitAppSessionState(state)

    def beat_at(self, when: float) -> float:
        state = self._link.captureAppSessionState()
        return float(state.beatAtTime(int((when + self._offset_s()) * 1e6), QUANTA["4bars"]))

    def time_at_beat(self, beat: float) -> float:
        state = self._link.captureAppSessionState()
        return float(state.timeAtBeat(beat, QUANTA["4bars"])) / 1e6 - self._offset_s()

    def peers(self) -> int:
        return int(self._link.numPeers())

    def close(self) -> None:
        """Leave the session."""
        self._link.enabled = False


class MidiClockTimeline:
    """Follows a MIDI clock (24 pulses per quarter note) from an input port (``--midi-clock PORT``,
    the midi extra: mido + python-rtmidi): the tempo from the recent pulse intervals, the beat
    from the pulses since *start* (a *song position* moves it), extrapolated between pulses.

    MIDI clock has one leader: ``/vacelive/tempo`` cannot change it (set the tempo at the source).
    :meth:`receive` takes messages with a ``type`` (mido's) and is what the port calls.
    """

    PPQN = 24
    WINDOW = 48
    """Pulse intervals averaged for the tempo (two beats)."""

    def __init__(self, port_name: str | None = None, *, open_port: bool = True, default_bpm: float = 120.0) -> None:
        self._lock = threading.Lock()
        self._pulses = 0
        self._last_pulse: float | None = None
        self._intervals: list[float] = []
        self._default_bpm = default_bpm
        self._port = None
        if open_port:
            try:
                import mido
            except ImportError:
                raise RuntimeError('MIDI clock needs the midi extra: pip install "vacelive[midi]"') from None
            try:
                self._port = mido.open_input(port_name, callback=self.receive)
            except (OSError, IOError) as exc:
                names = ", ".join(mido.get_input_names()) or "none"
                raise RuntimeError(f"MIDI input {port_name!r} cannot open ({exc}); inputs now: {names}") from None

    def receive(self, message: Any, now: float | None = None) -> None:
        """Take one MIDI message (clock, start, continue, songpos; others are ignored)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if message.type == "clock":
                if self._last_pulse is not None:
                    self._intervals = (self._intervals + [now - self._last_pulse])[-self.WINDOW:]
                self._last_pulse = now
                self._pulses += 1
            elif message.type == "start":
                self._pulses, self._last_pulse = 0, None
            elif message.type == "songpos":  # in sixteenth notes: 6 pulses each
                self._pulses = int(message.pos) * 6

    def tempo(self) -> float:
        with self._lock:
            if not self._intervals:
                return self._default_bpm
            return 60.0 / (sum(self._intervals) / len(self._intervals) * self.PPQN)

    def set_tempo(self, bpm: float) -> None:
        """MIDI clock is led by its source: nothing to set here."""

    def _anchor(self) -> tuple[float, float]:
        with self._lock:
            if self._last_pulse is None:
                return time.monotonic(), self._pulses / self.PPQN
            return self._last_pulse, (self._pulses - 1) / self.PPQN

    def beat_at(self, when: float) -> float:
        at, beat = self._anchor()
        return beat + (when - at) * self.tempo() / 60.0

    def time_at_beat(self, beat: float) -> float:
        at, anchor_beat = self._anchor()
        return at + (beat - anchor_beat) * 60.0 / self.tempo()

    def peers(self) -> int:
        return 0

    def close(self) -> None:
        """Close the input port."""
        if self._port is not None:
            self._port.close()


def next_boundary(timeline: Timeline, quantum: float, after: float) -> float:
    """The time of the first boundary (a multiple of ``quantum`` beats) at or after ``after``."""
    beat = timeline.beat_at(after)
    return timeline.time_at_beat(math.ceil(beat / quantum - 1e-9) * quantum)


@dataclass
class HeldChange:
    """A change waiting for its boundary."""

    name: str
    value: Any
    boundary: float  # monotonic seconds


class QuantizeError(ValueError):
    """A change cannot be quantised (no timeline)."""


class Quantizer:
    """Holds changes until their beat boundary; :meth:`due` hands out those that must apply now.

    ``latency`` gives the engine's current capture-to-display time in seconds.
    """

    def __init__(self, timeline: Timeline | None, latency: Callable[[], float] = lambda: 0.0) -> None:
        self.timeline = timeline
        self.latency = latency
        self._held: list[HeldChange] = []
        self._lock = threading.Lock()

    def hold(self, name: str, value: Any, quantize: str, now: float | None = None) -> HeldChange:
        """Keep ``name = value`` until the next ``quantize`` boundary; ``QuantizeError`` without a timeline."""
        if self.timeline is None:
            raise QuantizeError(f"{name}: quantize is {quantize!r} but there is no beat timeline: start with --link "
                                '(pip install "vacelive[link]") or --midi-clock PORT, or set quantize off')
        now = time.monotonic() if now is None else now
        change = HeldChange(name, value, next_boundary(self.timeline, QUANTA[quantize], now))
        with self._lock:
            self._held.append(change)
        return change

    def due(self, captured_at: float) -> list[HeldChange]:
        """The held changes whose boundary falls on or before the display time of a frame captured
        at ``captured_at`` (removed from the queue, oldest first)."""
        shows_at = captured_at + self.latency()
        with self._lock:
            ready = [c for c in self._held if c.boundary <= shows_at]
            self._held = [c for c in self._held if c.boundary > shows_at]
        return ready

    @property
    def held(self) -> list[HeldChange]:
        """The changes still waiting (a copy)."""
        with self._lock:
            return list(self._held)

    def figures(self) -> dict[str, float | int]:
        """Tempo, beat phase within the bar and peers, for status."""
        if self.timeline is None:
            return {"tempo": 0.0, "beat_phase": 0.0, "link_peers": 0}
        beat = self.timeline.beat_at(time.monotonic())
        return {"tempo": round(self.timeline.tempo(), 2), "beat_phase": round(beat % QUANTA["bar"], 2),
                "link_peers": self.timeline.peers()}
