"""The live terminal display (rich): the engine's figures, refreshed a few times a second.

The figures are laid out in pairs of columns so the whole display fits an 80x24 terminal; when
the terminal is smaller still, the per-step timings and queue depths are left out first (the
OSC status and ``vacelive bench`` still have them).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.console import Group
from rich.table import Table
from rich.text import Text

ESSENTIAL = ("fps", "fps_in", "fps_generated", "chunk_ms", "chunk_ms_p95", "latency_ms", "latency_ms_p95",
             "stalls", "dropped_frames", "generator_errors", "sink_errors", "frames_out", "chunks", "source",
             "mode", "annotator", "mask_coverage", "references")
"""Figures always shown (with ``source_note`` and ``error`` when they say something)."""
NOTES = ("source_note", "error")
"""Free-text figures: shown on full-width lines below the table, only when not empty."""
FRAME_ROWS = 4
"""Lines the view uses besides the table's rows: title, top and bottom border, one spare."""
VALUE_WIDTH = 12
"""Widest value shown (four columns of names and values fit 80 characters)."""


def _figures(summary: dict[str, Any], rows: int) -> list[tuple[str, str]]:
    """The (name, value) pairs that fit ``rows`` rows of two pairs each."""
    figures = [(n, ", ".join(v) if isinstance(v, list) else str(v)) for n, v in summary.items() if n not in NOTES]
    if len(figures) > 2 * rows:
        figures = [(n, v) for n, v in figures if n in ESSENTIAL]
    return figures[: 2 * rows]


def status_view(summary: dict[str, Any], title: str, height: int = 24, width: int = 80) -> Group:
    """The status figures in two pairs of columns, then the notes (source waiting, last error),
    sized to fit ``height`` x ``width``."""
    notes = [Text(f"{name}: {summary[name]}", style="red" if name == "error" else "yellow",
                  no_wrap=True, overflow="ellipsis")
             for name in NOTES if summary.get(name)]
    rows = max(1, height - FRAME_ROWS - len(notes))
    table = Table(title=title, show_header=False, expand=False)
    for _ in range(2):
        table.add_column("figure", style="cyan", no_wrap=True, overflow="ellipsis")
        table.add_column("value", justify="right", no_wrap=True, overflow="ellipsis", max_width=VALUE_WIDTH)
    figures = _figures(summary, rows)
    half = (len(figures) + 1) // 2
    for left, right in zip(figures[:half], figures[half:] + [("", "")]):
        table.add_row(*left, *right)
    return Group(table, *notes)


class LiveDisplay:
    """Redraws the status table on its own thread until stopped."""

    def __init__(self, summary: Callable[[], dict[str, Any]], title: str, refresh_hz: float = 4.0) -> None:
        self.summary = summary
        self.title = title
        self.period_s = 1.0 / refresh_hz
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vacelive-console", daemon=True)

    def _view(self, console: Console) -> Group:
        return status_view(self.summary(), self.title, console.size.height, console.size.width)

    def _run(self) -> None:
        console = Console(stderr=True)
        with Live(self._view(console), console=console, refresh_per_second=4, transient=False) as live:
            while not self._stop.wait(self.period_s):
                live.update(self._view(console))

    def start(self) -> None:
        """Start redrawing."""
        self._thread.start()

    def stop(self) -> None:
        """Stop redrawing and join the thread."""
        self._stop.set()
        self._thread.join(2.0)
