"""The live terminal display (rich): the engine's figures, refreshed a few times a second."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table


def status_table(summary: dict[str, Any], title: str) -> Table:
    """A two-column table of the status figures."""
    table = Table(title=title, show_header=False, expand=False)
    table.add_column("figure", style="cyan")
    table.add_column("value", justify="right")
    for name, value in summary.items():
        style = "red" if name == "error" and value else None
        table.add_row(name, str(value), style=style)
    return table


class LiveDisplay:
    """Redraws the status table on its own thread until stopped."""

    def __init__(self, summary: Callable[[], dict[str, Any]], title: str, refresh_hz: float = 4.0) -> None:
        self.summary = summary
        self.title = title
        self.period_s = 1.0 / refresh_hz
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vacelive-console", daemon=True)

    def _run(self) -> None:
        with Live(status_table(self.summary(), self.title), console=Console(stderr=True),
                  refresh_per_second=4, transient=False) as live:
            while not self._stop.wait(self.period_s):
                live.update(status_table(self.summary(), self.title))

    def start(self) -> None:
        """Start redrawing."""
        self._thread.start()

    def stop(self) -> None:
        """Stop redrawing and join the thread."""
        self._stop.set()
        self._thread.join(2.0)
