"""Where each part of the generator runs: the ``devices`` and ``layout`` parameters made concrete.

One device (``devices`` empty): everything on ``device``. Several devices of this machine, by
``layout``:

- ``sequence``: every device runs the DiT and its VACE branch on a band of each chunk's tokens
  (one worker process per extra device, :mod:`engine.parallel`); the VAE, the text encoder and
  the annotators stay on the first.
- ``vace``: two devices; the VACE branch runs on the second (a worker process), beside the
  base blocks on the first, which take each hint as it arrives (:mod:`engine.vace.remote`).
- ``stages``: two or three devices; the DiT on the first, the VAE (encode and decode), the text
  encoder and the annotators on the second, so chunk k decodes while chunk k+1 denoises; with a
  third, the VACE branch runs there as in ``vace``.

Every layout gives the frames of one device (within float tolerance).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

LAYOUTS = ("sequence", "vace", "stages")
PARTS = ("DiT", "KV ring", "VACE", "VACE ring", "VAE", "text encoder")
"""The parts whose memory :meth:`Placement.lines` reports, in that order."""
_DIT, _VACE, _VAE = ("DiT", "KV ring"), ("VACE", "VACE ring"), ("VAE", "text encoder")
GB = 1e9


@dataclass(frozen=True)
class Placement:
    """The device of each part, and what each device given runs (``roles``, in ``devices`` order)."""

    layout: str
    dit: str
    vace: str
    vae: str  # VAE encode and decode, and the text encoder
    annotators: str
    roles: tuple[tuple[str, str], ...]  # (device, what it runs), one per device given
    holds: tuple[tuple[str, ...], ...]  # the parts (of PARTS) each of them holds in memory
    sequence: tuple[str, ...] = ()  # the devices of a sequence-parallel group (rank order); () without one
    vace_worker: bool = False  # the VACE branch runs in a worker process, on ``vace``
    launched: bool = False  # the sequence group came from torchrun (:func:`engine.parallel.join_launch`)

    @classmethod
    def of(cls, device: str, devices: list[str], layout: str) -> Placement:
        """The placement of ``layout`` on ``devices`` (parsed, :func:`engine.parallel.parse_devices`;
        [] for one device, then ``device`` holds everything). Raises ValueError, in one line, for a
        device count the layout cannot use."""
        if layout not in LAYOUTS:
            raise ValueError(f"layout {layout!r} is not one of {', '.join(LAYOUTS)}")
        if not devices:
            return cls("one device", device, device, device, device,
                       roles=((device, "DiT, VACE branch, VAE, text encoder, annotators"),), holds=(PARTS,))
        first = devices[0]
        if layout == "sequence":
            n = len(devices)
            roles = tuple((d, f"DiT and VACE branch on band {r + 1} of {n} (rank {r})") for r, d in enumerate(devices))
            roles = ((first, roles[0][1] + "; VAE, text encoder, annotators"), *roles[1:])
            holds = (PARTS, *[_DIT + _VACE] * (n - 1))  # the rings: this rank's heads
            return cls(layout, first, first, first, first, roles, holds, sequence=tuple(devices))
        if layout == "vace":
            if len(devices) != 2:
                raise ValueError(f"layout vace takes 2 devices (base, VACE branch), not {len(devices)}")
            return cls(layout, first, devices[1], first, first,
                       roles=((first, "DiT, VAE, text encoder, annotators"), (devices[1], "VACE branch (worker)")),
                       holds=(_DIT + _VAE, _VACE), vace_worker=True)
        if len(devices) > 3:
            raise ValueError(f"layout stages takes 2 or 3 devices (DiT, VAE and annotators, VACE branch), "
                             f"not {len(devices)}")
        third = len(devices) == 3
        roles = ((first, "DiT" if third else "DiT, VACE branch"), (devices[1], "VAE, text encoder, annotators"))
        holds = (_DIT if third else _DIT + _VACE, _VAE)
        if third:
            roles += ((devices[2], "VACE branch (worker)"),)
            holds += (_VACE,)
        return cls(layout, first, devices[2] if third else first, devices[1], devices[1], roles, holds,
                   vace_worker=third)

    @classmethod
    def launched_on(cls, device: str, labels: tuple[str, ...]) -> Placement:
        """Sequence parallelism over a torchrun launch: ``labels`` names every rank's host and
        device; this process (rank 0) holds the parts outside the DiT on ``device``."""
        n = len(labels)
        roles = tuple((label, f"DiT and VACE branch on band {r + 1} of {n} (rank {r})")
                      for r, label in enumerate(labels))
        roles = ((labels[0], roles[0][1] + "; VAE, text encoder, annotators, sources, sinks, OSC"), *roles[1:])
        holds = (PARTS, *[_DIT + _VACE] * (n - 1))
        return cls("sequence", device, device, device, device, roles, holds, sequence=labels, launched=True)

    def lines(self, sizes: Mapping[str, int] | None = None) -> list[str]:
        """One line per device given: what it runs and, with ``sizes`` (bytes per part of
        :data:`PARTS`), the memory its parts take (printed at start, and on the status)."""
        lines = []
        for (device, what), parts in zip(self.roles, self.holds):
            held = [f"{part} {_size(sizes[part])}" for part in parts if sizes and sizes.get(part)]
            lines.append(f"{device}: {what}" + (f" [{', '.join(held)}]" if held else ""))
        return lines


def _size(nbytes: int) -> str:
    return f"{nbytes / GB:.2f} GB" if nbytes >= 0.1 * GB else f"{nbytes / 1e6:.1f} MB"
