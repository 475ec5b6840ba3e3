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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

LAYOUTS = ("sequence", "vace", "stages")
PARTS = ("DiT", "KV ring", "VACE", "VACE ring", "VAE", "text encoder")
"""The parts whose memory :meth:`Placement.lines` reports, in that order."""
_DIT, _VACE, _VAE = ("DiT", "KV ring"), ("VACE", "VACE ring"), ("VAE", "text encoder")
GB = 1e9


Role = tuple[str, str, tuple[str, ...]]
"""(device, what it runs, the parts of :data:`PARTS` it holds in memory)."""


@dataclass(frozen=True)
class Placement:
    """The device of each part, and what each device given runs (``roles``, in ``devices`` order)."""

    layout: str
    dit: str
    vace: str
    vae: str  # VAE encode and decode, and the text encoder
    annotators: str
    roles: tuple[Role, ...]  # one per device given
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
                       roles=((device, "DiT, VACE branch, VAE, text encoder, annotators", PARTS),))
        first = devices[0]
        if layout == "sequence":
            return cls(layout, first, first, first, first, _bands(devices, "VAE, text encoder, annotators"),
                       sequence=tuple(devices))
        if layout == "vace":
            if len(devices) != 2:
                raise ValueError(f"layout vace takes 2 devices (base, VACE branch), not {len(devices)}")
            return cls(layout, first, devices[1], first, first,
                       roles=((first, "DiT, VAE, text encoder, annotators", _DIT + _VAE),
                              (devices[1], "VACE branch (worker)", _VACE)),
                       vace_worker=True)
        if len(devices) > 3:
            raise ValueError(f"layout stages takes 2 or 3 devices (DiT, VAE and annotators, VACE branch), "
                             f"not {len(devices)}")
        if len(devices) == 3:
            roles = ((first, "DiT", _DIT), (devices[1], "VAE, text encoder, annotators", _VAE),
                     (devices[2], "VACE branch (worker)", _VACE))
            return cls(layout, first, devices[2], devices[1], devices[1], roles, vace_worker=True)
        roles = ((first, "DiT, VACE branch", _DIT + _VACE), (devices[1], "VAE, text encoder, annotators", _VAE))
        return cls(layout, first, first, devices[1], devices[1], roles)

    @classmethod
    def launched_on(cls, device: str, labels: tuple[str, ...]) -> Placement:
        """Sequence parallelism over a torchrun launch: ``labels`` names every rank's host and
        device; this process (rank 0) holds the parts outside the DiT on ``device``."""
        return cls("sequence", device, device, device, device,
                   _bands(labels, "VAE, text encoder, annotators, sources, sinks, OSC"), sequence=labels,
                   launched=True)

    def lines(self, sizes: Mapping[str, int] | None = None) -> list[str]:
        """One line per device given: what it runs and, with ``sizes`` (bytes per part of
        :data:`PARTS`), the memory its parts take (printed at start, and on the status)."""
        lines = []
        for device, what, parts in self.roles:
            held = [f"{part} {_size(sizes[part])}" for part in parts if sizes and sizes.get(part)]
            lines.append(f"{device}: {what}" + (f" [{', '.join(held)}]" if held else ""))
        return lines


def _bands(devices: Sequence[str], rank0: str) -> tuple[Role, ...]:
    """The roles of a sequence-parallel group: every rank a band of the DiT and VACE branch (its
    rings: its heads); rank 0 also ``rank0``, and the VAE and text encoder in memory."""
    n = len(devices)
    return tuple((d, f"DiT and VACE branch on band {r + 1} of {n} (rank {r})" + (f"; {rank0}" if r == 0 else ""),
                  PARTS if r == 0 else _DIT + _VACE) for r, d in enumerate(devices))


def _size(nbytes: int) -> str:
    return f"{nbytes / GB:.2f} GB" if nbytes >= 0.1 * GB else f"{nbytes / 1e6:.1f} MB"
