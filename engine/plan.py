"""``vacelive plan``: where a model's parts would sit on N devices, and whether they fit.

Computed from the real module shapes, built on the meta device (no weights are read and no memory
is taken), for a size and resolution:

- weights: the DiT, the VACE branch (its official layers), the umT5 text encoder (which a run
  with a prompt cache can leave out) and the Wan VAE, at the chosen dtype (umT5 in bf16, as
  shipped);
- caches: the KV ring of the DiT and the VACE branch's own ring, at the window the model uses;
- working memory: a reserve on the device that decodes (activations, the VAE decode's feature
  caches); ``--reserve-gb`` sets it. Its default, 8 GB, comes from the one measurement there is:
  ``vacelive bench --model 1.3B --random-weights`` at 832x480 peaked at 15.3 GB on an H200 with
  about 8 GB of weights and caches allocated, so about 7 GB went to working memory.

Four ways to spread one model over N devices, each keeping the frames exactly those of one device:

- ``sequence`` (Ulysses sequence parallelism, as xDiT does for Wan): every device holds the whole
  DiT and VACE branch and 1/N of each chunk's tokens; attention exchanges heads with an
  all-to-all, so the KV rings are split by heads (N must divide the head count);
- ``vace``: two devices, the VACE branch and its ring on the second, beside the base;
- ``stages``: the DiT on device 0, the VACE branch on device 2 when there is one (else beside the
  DiT), the VAE and the text encoder on device 1, so decoding overlaps the next chunk's denoising;
- ``layers`` (a pipeline of blocks): the blocks, their VACE blocks and their KV rings are split in
  N consecutive groups, one per device; chunks flow from device to device.

This is a plan for buying and placing hardware. ``sequence``, ``vace`` and ``stages`` run
(``--devices`` with ``--layout``, :mod:`engine.placement`); ``layers`` is planned only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from vacelive.engine.model import CONFIGS, WanModel
from vacelive.engine.model.kv_cache import RingKVCache
from vacelive.engine.placement import GB
from vacelive.engine.placement import LAYOUTS as RUN_LAYOUTS

DTYPE_BYTES = {"bf16": 2, "fp16": 2, "fp8": 1, "fp32": 4}
LAYOUTS = (*RUN_LAYOUTS, "layers")
"""The layouts ``vacelive run --layout`` runs, and ``layers``, planned only."""


def _numel(module: nn.Module) -> int:
    return sum(t.numel() for t in module.state_dict().values())


@dataclass(frozen=True)
class Footprint:
    """Bytes of each part of one model at one resolution."""

    model: str
    heads: int
    layers: int
    vace_layers: tuple[int, ...]
    dit: int
    vace: int
    text: int
    vae: int
    kv: int  # the DiT's KV ring
    vace_kv: int  # the VACE branch's ring

    @classmethod
    def of(cls, model: str, width: int, height: int, dtype: str = "bf16") -> Footprint:
        """Build the modules on the meta device and count their bytes."""
        from vacelive.engine.text import T5_CONFIGS, UMT5Encoder
        from vacelive.engine.vace import VaceBranch, default_vace_layers
        from vacelive.engine.vae import WAN_VAE_CONFIGS, WanVAE

        cfg = CONFIGS[model]
        size = DTYPE_BYTES[dtype]
        layers = default_vace_layers(cfg.num_layers)
        with torch.device("meta"):
            dit = WanModel(cfg)
            branch = VaceBranch(dit.blocks, layers, cfg.dim, cfg.patch_size)
            text = UMT5Encoder(T5_CONFIGS["real"])
            vae = WanVAE(WAN_VAE_CONFIGS["real"])
        frame_tokens = (height // 16) * (width // 16)
        kv_dtype = torch.float32 if dtype == "fp32" else torch.bfloat16  # with fp8 weights the cache stays bf16
        ring = RingKVCache(cfg.num_layers, 1, cfg.num_heads, cfg.head_dim, frame_tokens, cfg.local_attn_frames,
                           cfg.sink_frames, device="meta", dtype=kv_dtype)
        per_layer = ring.nbytes // cfg.num_layers
        return cls(model, cfg.num_heads, cfg.num_layers, layers, _numel(dit) * size, _numel(branch) * size,
                   _numel(text) * 2, _numel(vae) * size, per_layer * cfg.num_layers, per_layer * len(layers))


@dataclass
class Device:
    """What one device holds, in bytes per part."""

    parts: dict[str, float] = field(default_factory=dict)

    def add(self, name: str, nbytes: float) -> None:
        if nbytes:
            self.parts[name] = self.parts.get(name, 0) + nbytes

    @property
    def total(self) -> float:
        return sum(self.parts.values())


def place(fp: Footprint, layout: str, devices: int, *, text: bool = True, reserve: float = 8 * GB) -> list[Device]:
    """The bytes each of ``devices`` holds with ``layout`` (one of :data:`LAYOUTS`)."""
    out = [Device() for _ in range(devices)]
    if layout == "sequence" or devices == 1:
        if fp.heads % devices:
            raise ValueError(f"sequence parallelism needs the {fp.heads} heads of {fp.model} to split evenly over "
                             f"{devices} devices")
        for device in out:
            device.add("DiT", fp.dit)
            device.add("VACE", fp.vace)
            device.add("KV ring", fp.kv / devices)
            device.add("VACE ring", fp.vace_kv / devices)
        decoder = out[0]
    elif layout == "vace":
        if devices != 2:
            raise ValueError("the VACE branch on its own device takes exactly 2 devices")
        out[0].add("DiT", fp.dit)
        out[0].add("KV ring", fp.kv)
        out[1].add("VACE", fp.vace)
        out[1].add("VACE ring", fp.vace_kv)
        decoder = out[0]
    elif layout == "layers":
        groups = [range(fp.layers * i // devices, fp.layers * (i + 1) // devices) for i in range(devices)]
        for device, group in zip(out, groups):
            share = len(group) / fp.layers
            vace_share = sum(1 for layer in fp.vace_layers if layer in group) / len(fp.vace_layers)
            device.add("DiT", fp.dit * share)
            device.add("KV ring", fp.kv * share)
            device.add("VACE", fp.vace * vace_share)
            device.add("VACE ring", fp.vace_kv * vace_share)
        decoder = out[-1]
    elif layout == "stages":
        if devices < 2:
            raise ValueError("stage placement needs at least 2 devices")
        vace_device = out[2] if devices > 2 else out[0]
        out[0].add("DiT", fp.dit)
        out[0].add("KV ring", fp.kv)
        vace_device.add("VACE", fp.vace)
        vace_device.add("VACE ring", fp.vace_kv)
        decoder = out[1]
    else:
        raise ValueError(f"layout {layout!r}: expected one of {', '.join(LAYOUTS)}")
    decoder.add("VAE", fp.vae)
    decoder.add("working memory", reserve)
    if text:
        decoder.add("text encoder", fp.text)
    return out


def plan_text(model: str, devices: int, memory_gb: float, width: int, height: int, dtype: str = "bf16",
              text: bool = True, reserve_gb: float = 8.0) -> tuple[str, bool]:
    """The printed plan, and whether some layout fits."""
    fp = Footprint.of(model, width, height, dtype)
    lines = [f"{model} at {width}x{height}, {dtype}, on {devices} device(s) of {memory_gb:g} GB:",
             f"  weights: DiT {fp.dit / GB:.1f} GB, VACE {fp.vace / GB:.1f} GB ({len(fp.vace_layers)} blocks), "
             f"text encoder {fp.text / GB:.1f} GB{'' if text else ' (left out: prompt cache)'}, "
             f"VAE {fp.vae / GB:.2f} GB",
             f"  KV rings: DiT {fp.kv / GB:.1f} GB, VACE {fp.vace_kv / GB:.1f} GB; working memory reserve "
             f"{reserve_gb:g} GB on the decoding device"]
    any_fits = False
    for layout in LAYOUTS if devices > 1 else ("sequence",):
        try:
            placed = place(fp, layout, devices, text=text, reserve=reserve_gb * GB)
        except ValueError as err:
            lines.append(f"  {layout}: not possible: {err}")
            continue
        fits = all(d.total <= memory_gb * GB for d in placed)
        any_fits |= fits
        name = (layout if layout in RUN_LAYOUTS else f"{layout} (planned, not built)") if devices > 1 else "one device"
        lines.append(f"  {name}: {'fits' if fits else 'does NOT fit'} "
                     f"(largest {max(d.total for d in placed) / GB:.1f} GB)")
        for i, device in enumerate(placed):
            parts = ", ".join(f"{k} {v / GB:.1f}" for k, v in device.parts.items()) or "unused"
            lines.append(f"    device {i}: {device.total / GB:5.1f} GB  ({parts})")
    return "\n".join(lines), any_fits
