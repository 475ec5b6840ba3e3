"""What can be received right now: NDI senders, Spout senders, Syphon servers and cameras.

:func:`discover` scans each kind this platform has (a kind whose package or platform is missing
is named in the notes, not an error) and gives each find with the exact spec string for
``--source``. ``vacelive sources`` prints it; a live run refreshes it every few seconds into the
status figure ``sources`` (OSC ``/vacelive/status/sources``, OSCQuery ``/vacelive/status/sources``),
so a TouchDesigner panel can offer the list.
"""

from __future__ import annotations

import glob
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class FoundSource:
    """One receivable source: its kind, its name, what to pass as ``--source``, and a detail."""

    kind: str
    name: str
    spec: str
    detail: str = ""


def ndi_sources(seconds: float) -> list[FoundSource]:
    """NDI senders seen within ``seconds`` (discovery as NDI_CONFIG_DIR configures it)."""
    import cyndilib

    finder = cyndilib.Finder()
    finder.open()
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if finder.wait_for_sources(max(0.0, min(0.5, deadline - time.monotonic()))):
                finder.update_sources()
        finder.update_sources()
        found = []
        for full_name in sorted(finder.get_source_names()):
            source = finder.get_source(full_name)
            stream = getattr(source, "stream_name", "") or full_name
            found.append(FoundSource("ndi", full_name, f"ndi:{stream}", f"host {getattr(source, 'host_name', '')}"))
        return found
    finally:
        finder.close()


def spout_sources(seconds: float) -> list[FoundSource]:
    """Spout senders on this machine (Windows)."""
    import SpoutGL

    receiver = SpoutGL.SpoutReceiver()
    try:
        return [FoundSource("spout", name, f"spout:{name}") for name in sorted(receiver.getSenderList())]
    finally:
        receiver.releaseReceiver()


def syphon_sources(seconds: float) -> list[FoundSource]:
    """Syphon servers (macOS), after pumping the directory's run loop for ``seconds``."""
    import syphon

    directory = syphon.SyphonServerDirectory()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        directory.update_run_loop()
        time.sleep(0.05)
    found = []
    for server in directory.servers:
        name, app = getattr(server, "name", ""), getattr(server, "app_name", "")
        found.append(FoundSource("syphon", name or app, f"syphon:{name or app}", f"app {app}"))
    return found


def camera_sources(seconds: float) -> list[FoundSource]:
    """Cameras: Linux lists /sys/class/video4linux (with device names); elsewhere indices 0-4 are probed."""
    if sys.platform.startswith("linux"):
        found = []
        for device in sorted(glob.glob("/sys/class/video4linux/video*"), key=lambda p: int(p.rsplit("video", 1)[1])):
            index = int(device.rsplit("video", 1)[1])
            try:
                with open(os.path.join(device, "name"), encoding="utf-8") as fh:
                    name = fh.read().strip()
            except OSError:
                name = ""
            found.append(FoundSource("camera", name or f"video{index}", f"camera:{index}", f"/dev/video{index}"))
        return found
    import cv2

    found = []
    for index in range(5):
        capture = cv2.VideoCapture(index)
        if capture.isOpened():
            found.append(FoundSource("camera", f"camera {index}", f"camera:{index}"))
        capture.release()
    return found


SCANNERS: dict[str, tuple[Callable[[float], list[FoundSource]], str]] = {
    "ndi": (ndi_sources, ""),
    "spout": (spout_sources, "win32"),
    "syphon": (syphon_sources, "darwin"),
    "camera": (camera_sources, ""),
}
"""Each kind's scanner and the only platform it runs on ('' = any)."""


def discover(seconds: float = 2.0, kinds: tuple[str, ...] = tuple(SCANNERS)) -> tuple[list[FoundSource], list[str]]:
    """Everything receivable now, and a note for each kind that could not be scanned (and why)."""
    found: list[FoundSource] = []
    notes: list[str] = []
    for kind in kinds:
        scan, platform = SCANNERS[kind]
        if platform and sys.platform != platform:
            notes.append(f"{kind}: not on this platform ({'Windows' if platform == 'win32' else 'macOS'} only)")
            continue
        try:
            found += scan(seconds)
        except ImportError as exc:
            notes.append(f"{kind}: not scanned, its package is missing ({exc.name})")
        except Exception as exc:  # a scanner's failure must not hide the others
            notes.append(f"{kind}: scan failed: {exc}")
    return found, notes


def as_json(found: list[FoundSource], notes: list[str]) -> dict:
    """The discovery result as plain data."""
    return {"sources": [asdict(f) for f in found], "notes": notes}


class SourceWatcher:
    """Keeps the list of receivable network sources (NDI, Spout, Syphon) for the status figure
    ``sources``: scanned when asked (:meth:`request`, the ``sources_scan`` trigger) and, while
    the engine's own source is a network one (its discovery runs anyway), every ``period_s``.

    ``on_update`` gets the spec strings. Cameras are left out of live scans: probing a camera in
    use by the engine could disturb it.
    """

    KINDS = ("ndi", "spout", "syphon")

    def __init__(self, on_update: Callable[[list[str]], None], period_s: float | None = None) -> None:
        self.on_update = on_update
        self.period_s = period_s
        self.scans = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vacelive-sources", daemon=True)

    def request(self) -> None:
        """Scan now (in the background)."""
        self._wake.set()

    def _run(self) -> None:
        if self.period_s is None:
            self._wake.wait()
        while not self._stop.is_set():
            self._wake.clear()
            found, _ = discover(seconds=1.0, kinds=self.KINDS)
            self.scans += 1
            self.on_update([f.spec for f in found])
            self._wake.wait(self.period_s)

    def start(self) -> None:
        """Start the scanning thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop scanning and join the thread."""
        self._stop.set()
        self._wake.set()
        if self._thread.ident is not None:
            self._thread.join(5.0)
