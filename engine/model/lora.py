"""Style LoRAs on the DiT: read the shared file layouts, run them unmerged or merged, live scales.

Each LoRA file is read into a :class:`StyleLora`: for every target, the official Wan name of an
``nn.Linear`` of the model (``blocks.0.self_attn.q``), the pair A [rank, in] / B [out, rank] and
``alpha`` (the file's per-module ``.alpha`` when present, else the rank). :func:`detect_format`
names the layout; every key is mapped, and anything that does not map (a key of no known form, a
target that is not a Linear of the model, an incomplete pair, A/B shapes that do not fit the
layer) is one :class:`WeightsMismatchError` naming all of them.

:class:`StyleLoras` attaches any number of them with a live scale each (``set_scales`` once per
chunk):

- **unmerged**: one forward hook per target Linear returns ``out + sum_i s_i * alpha_i/r_i *
  B_i(A_i x)``; a LoRA at scale 0 adds nothing (with all at 0 the hook returns the output
  untouched), and :meth:`StyleLoras.detach` removes the hooks, giving the plain model back byte
  for byte.
- **merged**: ``W = W0 + sum_i s_i * alpha_i/r_i * B_i @ A_i``, summed in float32 from a kept
  copy of the original weight ``W0`` and rounded once; a scale change rebuilds the weights its
  LoRA touches (at the chunk boundary). Rebuilding from ``W0`` rather than adding the
  difference keeps bf16 weights from drifting over many changes (a small step would round away)
  and makes scale 0 and ``detach`` exact; the price is a copy of every target weight (2.7 GB
  for a LoRA on all 300 block Linears of the 1.3B model in bf16) on the device.

The timestep Linears (:data:`READ_DIRECTLY`) are never called as modules (the model reads their
weights in float32), so a hook cannot reach them: in both modes they are merged as above.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from .loading import WeightsMismatchError, _torch_load, from_diffusers, to_diffusers

LORA_FORMATS = {
    "peft": "PEFT on Wan names ([base_model.model.][model.]blocks.0.self_attn.q.lora_A.weight)",
    "comfyui": "ComfyUI (diffusion_model.blocks.0.self_attn.q.lora_A / lora_down.weight, .alpha)",
    "kohya": "kohya (lora_unet_blocks_0_self_attn_q.lora_down.weight, .alpha)",
    "diffusers": "diffusers ([transformer.]blocks.0.attn1.to_q.lora_A.weight)",
}
"""Every layout :func:`detect_format` recognises, with an example key."""

_ROLES = {
    ".lora_A.weight": "down", ".lora_A.default.weight": "down", ".lora_down.weight": "down",
    ".lora_B.weight": "up", ".lora_B.default.weight": "up", ".lora_up.weight": "up",
    ".alpha": "alpha",
}
_DIFFUSERS_NAME = re.compile(r"(^|\.)(attn1|attn2|ffn\.net|condition_embedder|proj_out)(\.|$)")
READ_DIRECTLY = frozenset({"time_embedding.0", "time_embedding.2", "time_projection.1"})
"""Linears whose weights ``WanModel.forward`` reads itself (float32 timestep path): merged, never hooked."""


@dataclass(frozen=True)
class LoraLayer:
    """One target's pair: ``down`` A [rank, in], ``up`` B [out, rank], and ``alpha``."""

    down: Tensor
    up: Tensor
    alpha: float

    @property
    def factor(self) -> float:
        """alpha / rank: what scale 1 multiplies B @ A by."""
        return self.alpha / self.down.shape[0]


@dataclass(frozen=True)
class StyleLora:
    """A LoRA file read against a model: its layout and its layers by Wan module name."""

    name: str
    source: str
    format: str
    layers: dict[str, LoraLayer]


def linear_targets(model: nn.Module) -> dict[str, nn.Linear]:
    """Every ``nn.Linear`` of ``model`` by its official name (what a LoRA may target)."""
    return {name: module for name, module in model.named_modules() if isinstance(module, nn.Linear)}


def split_key(key: str) -> tuple[str, str] | None:
    """``key`` -> (module part, "down" | "up" | "alpha"), or None when it has no LoRA suffix."""
    for suffix, role in _ROLES.items():
        if key.endswith(suffix):
            return key[: -len(suffix)], role
    return None


def key_format(module: str) -> tuple[str, str]:
    """A key's module part -> (its layout, the module name in that layout with prefixes removed)."""
    if module.startswith("lora_unet_"):
        return "kohya", module[len("lora_unet_"):]
    if module.startswith("diffusion_model."):
        return "comfyui", module[len("diffusion_model."):]
    module = module.removeprefix("base_model.model.")
    if module.startswith("transformer."):
        return "diffusers", module[len("transformer."):]
    if _DIFFUSERS_NAME.search(module):
        return "diffusers", module
    return "peft", module.removeprefix("model.")


def detect_format(keys: Iterable[str]) -> str:
    """The layout of a LoRA file's keys (a key of :data:`LORA_FORMATS`); raises
    :class:`WeightsMismatchError` for keys of no known form or for a mix of layouts."""
    keys = list(keys)
    unknown = [k for k in keys if split_key(k) is None]
    if unknown:
        raise WeightsMismatchError([f"not a LoRA key (no lora_A/lora_B/lora_down/lora_up/alpha suffix): {k}"
                                    for k in unknown])
    found: dict[str, str] = {}
    for key in keys:
        found.setdefault(key_format(split_key(key)[0])[0], key)  # type: ignore[index]
    if not found:
        raise WeightsMismatchError(["no keys: the file holds no LoRA"])
    if len(found) > 1:
        raise WeightsMismatchError([f"layouts mixed in one file: {fmt} (e.g. {key})" for fmt, key in found.items()])
    return next(iter(found))


def _wan_name(fmt: str, module: str, underscored: Mapping[str, str]) -> str:
    if fmt == "kohya":
        return underscored.get(module, module)
    if fmt == "diffusers" or _DIFFUSERS_NAME.search(module):
        return next(iter(from_diffusers({module: None})))  # type: ignore[dict-item]
    return module


def read_lora_file(path: str | Path) -> dict[str, Tensor]:
    """The tensors of a LoRA file: ``.safetensors``, or a ``.pt``/``.pth``/``.ckpt`` state dict
    (LongLive's ``lora.pt`` is unwrapped from its ``generator_lora`` dict)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"LoRA file not found: {path}")
    if path.suffix == ".safetensors":
        return load_file(path)
    obj = _torch_load(path)
    if isinstance(obj, dict) and isinstance(obj.get("generator_lora"), dict):
        obj = obj["generator_lora"]
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise ValueError(f"{path}: not a LoRA state dict (a dict of tensors)")
    return obj


def parse_lora(tensors: Mapping[str, Tensor], targets: Mapping[str, nn.Linear], *, name: str = "lora",
               source: str = "") -> StyleLora:
    """Map every key of ``tensors`` to a Linear of ``targets`` (see :func:`linear_targets`).

    Raises :class:`WeightsMismatchError` naming every key that maps to no Linear, every
    incomplete pair and every shape that does not fit (all at once).
    """
    fmt = detect_format(tensors)
    underscored = {wan.replace(".", "_"): wan for wan in targets}
    underscored.update({diff.replace(".", "_"): wan for diff, wan in
                        zip(to_diffusers(dict.fromkeys(targets)), targets)})  # kohya over diffusers names
    parts: dict[str, dict[str, tuple[str, Tensor]]] = {}
    problems: list[str] = []
    for key, value in tensors.items():
        module, role = split_key(key)  # type: ignore[misc]
        target = _wan_name(fmt, key_format(module)[1], underscored)
        if target not in targets:
            problems.append(f"LoRA key targets no Linear of the model: {key} (as {target})")
            continue
        parts.setdefault(target, {})[role] = (key, value)
    layers: dict[str, LoraLayer] = {}
    for target, found in parts.items():
        if "down" not in found or "up" not in found:
            problems.append(f"LoRA pair incomplete for {target}: only {', '.join(k for k, _ in found.values())}")
            continue
        (down_key, down), (up_key, up) = found["down"], found["up"]
        weight = targets[target].weight
        out_features, in_features = weight.shape
        if down.dim() != 2 or up.dim() != 2 or down.shape[1] != in_features or up.shape[0] != out_features \
                or up.shape[1] != down.shape[0]:
            problems.append(f"LoRA shapes do not fit {target} [{out_features}, {in_features}]: {down_key} "
                            f"{list(down.shape)}, {up_key} {list(up.shape)}")
            continue
        alpha = float(found["alpha"][1].float().reshape(-1)[0]) if "alpha" in found else float(down.shape[0])
        layers[target] = LoraLayer(down, up, alpha)
    if problems:
        raise WeightsMismatchError(problems, source or name)
    return StyleLora(name, source, fmt, layers)


def load_lora(path: str | Path, model: nn.Module, name: str = "lora") -> StyleLora:
    """Read the LoRA file at ``path`` and map it strictly onto ``model``'s Linears."""
    return parse_lora(read_lora_file(path), linear_targets(model), name=name, source=str(path))


class StyleLoras:
    """Several LoRAs attached to one model, each with a live scale (see the module docstring).

    ``scales`` maps each LoRA's name to its starting scale (default 1). The pairs are copied to
    each target's device and dtype. Attach before ``torch.compile`` (like VACE's hooks).
    """

    def __init__(self, model: nn.Module, loras: Iterable[StyleLora], *, merged: bool = False,
                 scales: Mapping[str, float] | None = None) -> None:
        self.loras = list(loras)
        self.merged = merged
        names = [lora.name for lora in self.loras]
        if len(set(names)) != len(names):
            raise ValueError(f"LoRA names must be unique, got {names}")
        self.scales = {name: float((scales or {}).get(name, 1.0)) for name in names}
        targets = linear_targets(model)
        self._terms: dict[str, list[tuple[str, float, Tensor, Tensor]]] = {}
        for lora in self.loras:
            for target, layer in lora.layers.items():
                weight = targets[target].weight
                self._terms.setdefault(target, []).append(
                    (lora.name, layer.factor, layer.down.to(weight.device, weight.dtype),
                     layer.up.to(weight.device, weight.dtype)))
        self._modules = {target: targets[target] for target in self._terms}
        rebuilt = self._terms if merged else [t for t in self._terms if t in READ_DIRECTLY]
        self._originals = {t: self._modules[t].weight.detach().clone() for t in rebuilt}
        self._handles: list[RemovableHandle] = [
            self._modules[target].register_forward_hook(self._hook(terms))
            for target, terms in self._terms.items() if target not in self._originals
        ]
        self._rebuild(self._originals)

    def _hook(self, terms: list[tuple[str, float, Tensor, Tensor]]):
        scales = self.scales

        def add_lora(_module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> Tensor | None:
            """x [..., in] (weight dtype), out [..., out] -> out + sum_i s_i * alpha_i/r_i * B_i(A_i x)."""
            x = inputs[0]
            changed = None
            for name, factor, down, up in terms:
                scale = scales[name]
                if scale != 0.0:
                    term = F.linear(F.linear(x, down), up) * (scale * factor)  # [..., rank] -> [..., out]
                    changed = (output if changed is None else changed) + term
            return changed

        return add_lora

    @torch.no_grad()
    def _rebuild(self, targets: Iterable[str]) -> None:
        """W = W0 + sum_i s_i * alpha_i/r_i * B_i @ A_i, summed in float32 from the kept original."""
        for target in targets:
            original = self._originals[target]
            active = [(self.scales[name] * factor, down, up) for name, factor, down, up in self._terms[target]
                      if self.scales[name] != 0.0]
            if not active:
                self._modules[target].weight.copy_(original)
                continue
            total = original.float()
            for weight, down, up in active:
                total = torch.addmm(total, up.float(), down.float(), alpha=weight)  # [out, r] @ [r, in]
            self._modules[target].weight.copy_(total)

    def set_scales(self, scales: Mapping[str, float]) -> bool:
        """Take new scales (names not given keep theirs); True when any changed. Merged weights
        are rebuilt now for the LoRAs that changed: call it between chunks."""
        new = {name: float(scales.get(name, old)) for name, old in self.scales.items()}
        moved = {name for name in new if new[name] != self.scales[name]}
        if not moved:
            return False
        self.scales.update(new)  # the hooks read this dict
        self._rebuild([t for t in self._originals if any(term[0] in moved for term in self._terms[t])])
        return True

    def detach(self) -> None:
        """Remove the hooks and put the original weights back: the plain model byte for byte."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        with torch.no_grad():
            for target, original in self._originals.items():
                self._modules[target].weight.copy_(original)
        self._terms.clear()
        self._originals.clear()
