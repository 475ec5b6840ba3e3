"""The live status display fits an 80x24 terminal, and a smaller one with the essentials."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from vacelive.engine.console import ESSENTIAL, status_view
from vacelive.engine.metrics import Metrics


def _busy_summary() -> dict:
    metrics = Metrics()
    for step in ("resize", "annotate", "assemble", "text", "encode", "denoise", "decode", "to_frames", "publish",
                 "mask", "sink_file", "sink_ndi"):
        metrics.record(step, 12.5)
    for name in ("frames", "annotated", "chunks", "output"):
        metrics.queue_depths[name] = lambda: 3
    metrics.source_note = "waiting for ndi source 'TD-out' (visible now: STUDIO (TouchDesigner out), LAPTOP (vj))"
    metrics.last_error = "source: ndi:TD-out: the sender went away"
    return metrics.summary()


def _render(summary: dict, height: int) -> list[str]:
    console = Console(width=80, height=height, record=True, file=io.StringIO())
    console.print(status_view(summary, "vacelive", height, 80))
    return console.export_text().rstrip("\n").split("\n")


@pytest.mark.parametrize("height", [24, 16, 12])
def test_the_display_fits_the_terminal_and_keeps_the_essentials(height):
    summary = _busy_summary()
    lines = _render(summary, height)
    assert len(lines) <= height and max(map(len, lines)) <= 80
    text = "\n".join(lines)
    shown = [name for name in ESSENTIAL if f" {name} " in text]
    assert len(shown) >= min(len(ESSENTIAL), 2 * (height - 4 - 2))
    assert "source_note: waiting for ndi source 'TD-out'" in text and "error: source: ndi:TD-out" in text


def test_a_tall_enough_terminal_shows_every_figure():
    summary = _busy_summary()
    text = "\n".join(_render(summary, 4 + 2 + (len(summary) + 1) // 2))
    for name in summary:
        if name not in ("source_note", "error"):
            assert f" {name} " in text, name
