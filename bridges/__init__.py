"""Bridges: where frames come from and where they go, chosen by a spec string.

Spec grammar: ``scheme[:argument][?key=value&key=value]``; the scheme is the text before the
first ``:``, options follow the last ``?``. :func:`open_source` and :func:`open_sink` only
construct the bridge (through its ``from_spec`` classmethod): the caller calls ``open()``
(sources) or ``open(width, height, fps)`` (sinks), then ``close()``. Sources return frames at
their native size; the engine resizes them with :func:`engine.frames.crop_to_fill`. A scheme's
module is imported only when the scheme is used, so importing ``bridges`` never loads cyndilib,
SpoutGL, syphon or pyvirtualcam.
"""

from __future__ import annotations

import importlib

from vacelive.bridges.base import BridgeError, BridgeState, Sink, Source
from vacelive.bridges.spec import Spec, parse_spec

SOURCE_SCHEMES: tuple[tuple[str, str], ...] = (
    ("testpattern", "animated pattern with a frame-counter stamp (testpattern?moving=0: still shapes)"),
    ("file", "video file decoded with PyAV at its own fps, looping (file:PATH?loop=0 plays once)"),
    ("images", "folder of images played at the engine fps, looping (images:DIR)"),
    ("camera", "local camera by index via OpenCV (camera:0)"),
    ("ndi", "NDI receiver by name, 'HOST (NAME)' or NAME (ndi:NAME?ip=HOST: unicast discovery)"),
    ("spout", "Spout receiver, Windows only (spout:NAME, or spout: for the active sender)"),
    ("syphon", "Syphon client, macOS only (syphon:NAME, or syphon: for the first server)"),
)
"""Source schemes and a one-line description of each (CLI help, docs)."""

SINK_SCHEMES: tuple[tuple[str, str], ...] = (
    ("file", "H.264 .mp4 (libx264 ultrafast/zerolatency), or PNG/JPEG frames if PATH is a folder or has %d"),
    ("ndi", "NDI sender named NAME, one frame per engine tick (ndi:NAME; ?clock=1 lets NDI pace sends)"),
    ("spout", "Spout sender, Windows only (spout:NAME)"),
    ("syphon", "Syphon Metal server, macOS only (syphon:NAME)"),
    ("virtualcam", "virtual webcam via pyvirtualcam (OBS Virtual Camera, v4l2loopback)"),
    ("null", "discard frames, counting them"),
)
"""Sink schemes and a one-line description of each (CLI help, docs)."""

_SOURCES = {
    "testpattern": "vacelive.bridges.testpattern:TestPatternSource",
    "file": "vacelive.bridges.files:FileSource",
    "images": "vacelive.bridges.images:ImagesSource",
    "camera": "vacelive.bridges.camera:CameraSource",
    "ndi": "vacelive.bridges.ndi:NDISource",
    "spout": "vacelive.bridges.spout:SpoutSource",
    "syphon": "vacelive.bridges.syphon:SyphonSource",
}
_SINKS = {
    "file": "vacelive.bridges.files:FileSink",
    "ndi": "vacelive.bridges.ndi:NDISink",
    "spout": "vacelive.bridges.spout:SpoutSink",
    "syphon": "vacelive.bridges.syphon:SyphonSink",
    "virtualcam": "vacelive.bridges.virtualcam:VirtualCamSink",
    "null": "vacelive.bridges.null:NullSink",
}
_NO_ARGUMENT = ("testpattern", "virtualcam", "null")


def _load(table: dict[str, str], spec: Spec, kind: str) -> type:
    target = table.get(spec.scheme)
    if target is None:
        valid = ", ".join(table)
        raise BridgeError(f"unknown {kind} scheme in {spec.text!r}; valid {kind} schemes: {valid}")
    if spec.scheme in _NO_ARGUMENT and spec.arg:
        raise BridgeError(f"{spec.text!r}: '{spec.scheme}' takes no argument (options go after '?')")
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)


def open_source(spec: str, *, width: int, height: int, fps: float) -> Source:
    """Construct (not open) the source for ``spec``; frames come back at their native size.

    ``width``/``height`` size generated frames (test pattern) and hint devices (camera);
    ``fps`` paces generated and image-folder sources. Raises :class:`BridgeError` for an
    unknown scheme or a malformed spec.
    """
    parsed = parse_spec(spec)
    cls = _load(_SOURCES, parsed, "source")
    return cls.from_spec(parsed, width=width, height=height, fps=fps)


def open_sink(spec: str) -> Sink:
    """Construct (not open) the sink for ``spec``; ``Sink.open(width, height, fps)`` sizes it."""
    parsed = parse_spec(spec)
    cls = _load(_SINKS, parsed, "sink")
    return cls.from_spec(parsed)


__all__ = [
    "BridgeError",
    "BridgeState",
    "SINK_SCHEMES",
    "SOURCE_SCHEMES",
    "Sink",
    "Source",
    "open_sink",
    "open_source",
    "parse_spec",
]
