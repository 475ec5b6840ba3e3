"""Reading Wan2.1 DiT weights (official safetensors, causal-generator ``.pt``, diffusers layout),
strict key/shape checking, LoRA merging, building a model from a checkpoint and saving one.

Nothing here downloads: every function takes a local path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor

from .config import CONFIGS, WanConfig
from .model import WanModel

# One explicit map between the official Wan2.1 key names and diffusers' WanTransformer3DModel.
# Keys are prefixes (matched up to a dot); block-level entries apply after "blocks.N.".
WAN_TO_DIFFUSERS_TOP: dict[str, str] = {
    "patch_embedding": "patch_embedding",
    "text_embedding.0": "condition_embedder.text_embedder.linear_1",
    "text_embedding.2": "condition_embedder.text_embedder.linear_2",
    "time_embedding.0": "condition_embedder.time_embedder.linear_1",
    "time_embedding.2": "condition_embedder.time_embedder.linear_2",
    "time_projection.1": "condition_embedder.time_proj",
    "head.head": "proj_out",
    "head.modulation": "scale_shift_table",
}
WAN_TO_DIFFUSERS_BLOCK: dict[str, str] = {
    "self_attn.q": "attn1.to_q",
    "self_attn.k": "attn1.to_k",
    "self_attn.v": "attn1.to_v",
    "self_attn.o": "attn1.to_out.0",
    "self_attn.norm_q": "attn1.norm_q",
    "self_attn.norm_k": "attn1.norm_k",
    "cross_attn.q": "attn2.to_q",
    "cross_attn.k": "attn2.to_k",
    "cross_attn.v": "attn2.to_v",
    "cross_attn.o": "attn2.to_out.0",
    "cross_attn.norm_q": "attn2.norm_q",
    "cross_attn.norm_k": "attn2.norm_k",
    "norm3": "norm2",  # the affine cross-attention norm is norm3 in Wan, norm2 in diffusers
    "ffn.0": "ffn.net.0.proj",
    "ffn.2": "ffn.net.2",
    "modulation": "scale_shift_table",
}
_BLOCK_RE = re.compile(r"^(blocks\.\d+\.)(.*)$")


class WeightsMismatchError(KeyError):
    """A state dict does not match the model; ``problems`` lists every offending key."""

    def __init__(self, problems: list[str], source: str = "") -> None:
        self.problems = problems
        head = f"{source}: " if source else ""
        shown = "\n  ".join(problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{head}{len(problems)} key problem(s):\n  {shown}{more}")

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.args[0]


def _rename(key: str, top: Mapping[str, str], block: Mapping[str, str]) -> str:
    m = _BLOCK_RE.match(key)
    prefix, rest, table = (m.group(1), m.group(2), block) if m else ("", key, top)
    for src, dst in table.items():
        if rest == src or rest.startswith(src + "."):
            return prefix + dst + rest[len(src):]
    return key


def to_diffusers(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Official Wan key names -> diffusers ``WanTransformer3DModel`` names."""
    return {_rename(k, WAN_TO_DIFFUSERS_TOP, WAN_TO_DIFFUSERS_BLOCK): v for k, v in state_dict.items()}


def from_diffusers(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """diffusers ``WanTransformer3DModel`` names -> official Wan key names (unknown keys kept)."""
    top = {v: k for k, v in WAN_TO_DIFFUSERS_TOP.items()}
    block = {v: k for k, v in WAN_TO_DIFFUSERS_BLOCK.items()}
    return {_rename(k, top, block): v for k, v in state_dict.items()}


def is_diffusers_layout(keys: list[str]) -> bool:
    """True when the keys use diffusers' names (condition_embedder / attn1 / proj_out)."""
    return any(k.startswith(("condition_embedder.", "proj_out.")) or ".attn1." in k for k in keys)


def _strip_prefix(state_dict: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    if state_dict and all(k.startswith(prefix) for k in state_dict):
        return {k[len(prefix):]: v for k, v in state_dict.items()}
    return state_dict


def read_checkpoint(path: str | Path) -> dict[str, Tensor]:
    """A single-module checkpoint's state dict: ``.safetensors`` read with safetensors, anything
    else with ``torch.load(weights_only=True)`` (no pickled code runs either way)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return load_file(str(path))
    return _torch_load(path)


def _torch_load(path: Path) -> object:
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # legacy (non-zip) files cannot be memory-mapped
        return torch.load(path, map_location="cpu", weights_only=True)


GENERATOR_DICTS = ("generator", "generator_ema")
WRAPPER_PREFIXES = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.", "_orig_mod.")
"""Module names that FSDP, activation checkpointing and torch.compile insert into saved keys."""


def generator_dict_name(obj: Mapping, which: str | None = None) -> str | None:
    """Which dict of a causal-generator checkpoint to run: ``which`` (``generator`` or
    ``generator_ema``) when given, else ``generator_ema`` if present (Self-Forcing), else
    ``generator`` (CausVid, LongLive); ``None`` when the file is a plain state dict."""
    if which is not None:
        if which not in GENERATOR_DICTS:
            raise ValueError(f"dit_weights = {which!r}: must be one of {GENERATOR_DICTS}")
        return which
    return next((k for k in ("generator_ema", "generator") if k in obj), None)


def unwrap_generator(obj: object, path: Path | str = "", which: str | None = None) -> dict[str, Tensor]:
    """The model state dict inside a loaded ``.pt``: the ``generator`` / ``generator_ema`` dict
    chosen by :func:`generator_dict_name`, else the dict itself; wrapper names inserted by FSDP
    and friends and a common ``model.`` prefix are removed."""
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a dict of tensors, got {type(obj).__name__}")
    name = generator_dict_name(obj, which)
    if name is not None:
        if name not in obj:
            held = [k for k in obj if isinstance(obj[k], dict)]
            raise ValueError(f"{path}: no '{name}' dict in this file (it holds: {held})")
        obj = obj[name]
    tensors = {k: v for k, v in obj.items() if isinstance(v, Tensor)}
    if len(tensors) != len(obj):
        non = sorted(k for k in obj if k not in tensors)[:10]
        raise ValueError(f"{path}: not a state dict of tensors (non-tensor entries: {non})")
    for wrapper in WRAPPER_PREFIXES:
        tensors = {k.replace(wrapper, ""): v for k, v in tensors.items()}
    return _strip_prefix(tensors, "model.")


def _diffusers_files(path: Path) -> list[Path]:
    index = sorted(path.glob("*.safetensors.index.json"))
    if index:
        shards = sorted(set(json.loads(index[0].read_text())["weight_map"].values()))
        return [path / s for s in shards]
    single = sorted(path.glob("*.safetensors"))
    if not single:
        raise FileNotFoundError(f"{path}: no .safetensors file in this folder")
    return single


def read_state_dict(path: str | Path, which: str | None = None) -> dict[str, Tensor]:
    """Read DiT weights from a local file or folder and return them with official Wan key names.

    Accepts: a ``.safetensors`` file (official or diffusers names), a diffusers folder (single
    file or shards with an index), or a ``.pt``/``.pth`` file holding a state dict or a
    ``generator_ema`` / ``generator`` dict with a ``model.`` prefix (causal generators; ``which``
    picks the dict, see :func:`generator_dict_name`).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"weights not found: {path}")
    if path.is_dir():
        sd: dict[str, Tensor] = {}
        for f in _diffusers_files(path):
            sd.update(load_file(f))
    elif path.suffix == ".safetensors":
        sd = load_file(path)
    else:
        sd = unwrap_generator(_torch_load(path), path, which)
    return from_diffusers(sd) if is_diffusers_layout(list(sd)) else sd


def expected_shapes(config: WanConfig) -> dict[str, tuple[int, ...]]:
    """Official key -> shape for ``config``, from a model built on the meta device."""
    with torch.device("meta"):
        model = WanModel(config)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def check_shapes(expected: Mapping[str, tuple[int, ...]], actual: Mapping[str, tuple[int, ...]]) -> list[str]:
    """Human-readable list of missing, unexpected and mis-shaped keys (empty when all match)."""
    problems = [f"missing key: {k} {list(expected[k])}" for k in expected if k not in actual]
    problems += [f"unexpected key: {k} {list(actual[k])}" for k in actual if k not in expected]
    problems += [
        f"shape mismatch: {k} is {list(actual[k])}, model wants {list(expected[k])}"
        for k in expected
        if k in actual and tuple(actual[k]) != tuple(expected[k])
    ]
    return problems


def config_name(config: WanConfig) -> str:
    """The ``CONFIGS`` name of ``config`` (``"1.3B"``, ``"14B"``, ``"tiny"``)."""
    return next(name for name, known in CONFIGS.items() if known == config)


def config_from_shapes(shapes: Mapping[str, tuple[int, ...]]) -> WanConfig:
    """Pick the ``CONFIGS`` entry with the checkpoint's model width (and depth, if several match).

    The width is read from the first of patch_embedding / text_embedding / any block's
    self_attn.q that is present, so one renamed key does not hide the model size."""
    dim = None
    for key in ("patch_embedding.weight", "text_embedding.0.weight", "time_embedding.0.weight"):
        if key in shapes:
            dim = shapes[key][0]
            break
    if dim is None:
        dim = next((s[0] for k, s in shapes.items() if k.endswith("self_attn.q.weight")), None)
    if dim is None:
        raise ValueError("cannot detect the model size: no patch_embedding / text_embedding / self_attn.q weight")
    layers = 1 + max((int(k.split(".")[1]) for k in shapes if re.match(r"^blocks\.\d+\.", k)), default=-1)
    candidates = [c for c in CONFIGS.values() if c.dim == dim]
    if not candidates:
        known = {name: c.dim for name, c in CONFIGS.items()}
        raise ValueError(f"no config with dim {dim}; known dims: {known}")
    return next((c for c in candidates if c.num_layers == layers), candidates[0])


_LORA_RE = re.compile(
    r"^(?:generator_lora\.)?(?:base_model\.model\.)?(?:model\.)?(.+)\.lora_([AB])(?:\.default)?\.weight$"
)


def parse_lora_key(key: str) -> tuple[str, str] | None:
    """PEFT LoRA key -> (target weight key with Wan names, "A" or "B"); None if not a LoRA key."""
    m = _LORA_RE.match(key)
    return (m.group(1) + ".weight", m.group(2)) if m else None


def merge_lora(state_dict: dict[str, Tensor], lora: Mapping[str, Tensor], alpha: float | None = None) -> int:
    """Merge LoRA pairs into ``state_dict`` in place: W += (alpha / rank) * B @ A; returns the count.

    Accepts PEFT names (``[base_model.model.][model.]X.lora_A[.default].weight`` / ``lora_B``),
    e.g. LongLive's ``lora.pt`` (``generator_lora`` dict; rank 256, alpha 256). ``alpha``
    defaults to the rank (scale 1). A LoRA target missing from the state dict is an error.
    """
    pairs: dict[str, dict[str, Tensor]] = {}
    for key, value in lora.items():
        parsed = parse_lora_key(key)
        if parsed is None:
            raise WeightsMismatchError([f"unexpected LoRA key: {key}"])
        pairs.setdefault(parsed[0], {})[parsed[1]] = value
    problems = [f"LoRA target not in model: {t}" for t in pairs if t not in state_dict]
    problems += [f"LoRA pair incomplete for: {t}" for t, ab in pairs.items() if len(ab) != 2]
    if problems:
        raise WeightsMismatchError(problems)
    for target, ab in pairs.items():
        a, b = ab["A"].float(), ab["B"].float()  # A [r, in], B [out, r]
        scale = (alpha if alpha is not None else a.shape[0]) / a.shape[0]
        w = state_dict[target]
        state_dict[target] = (w.float() + scale * (b @ a)).to(w.dtype)
    return len(pairs)


def load_into(model: WanModel, state_dict: Mapping[str, Tensor], source: str = "") -> None:
    """Strict load: raises ``WeightsMismatchError`` naming every missing/unexpected/mis-shaped key."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    problems = check_shapes(expected, {k: tuple(v.shape) for k, v in state_dict.items()})
    if problems:
        raise WeightsMismatchError(problems, source)
    on_meta = next(model.parameters()).is_meta
    model.load_state_dict(state_dict, strict=True, assign=on_meta)


def load_model(
    path: str | Path,
    *,
    lora: str | Path | None = None,
    lora_alpha: float | None = None,
    config: WanConfig | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.bfloat16,
    which: str | None = None,
) -> WanModel:
    """Build a ``WanModel`` from local weights (size detected from shapes unless ``config`` is
    given; pass e.g. ``dataclasses.replace(CONFIGS['1.3B'], local_attn_frames=21)`` to change
    the causal settings), optionally merge a LoRA (scale ``lora_alpha / rank``; default 1), load
    strictly, move to ``device``/``dtype``. ``which`` picks a generator file's dict."""
    sd = read_state_dict(path, which)
    if lora is not None:
        lora_obj = _torch_load(Path(lora))
        if isinstance(lora_obj, dict) and "generator_lora" in lora_obj:
            lora_obj = lora_obj["generator_lora"]
        merge_lora(sd, lora_obj, lora_alpha)
    cfg = config or config_from_shapes({k: tuple(v.shape) for k, v in sd.items()})
    with torch.device("meta"):
        model = WanModel(cfg)
    load_into(model, sd, str(path))
    return model.to(device=device, dtype=dtype).eval().requires_grad_(False)


def save_weights(model: WanModel, path: str | Path, layout: str = "wan") -> None:
    """Save the model as ``.safetensors`` with official (``layout='wan'``) or diffusers names."""
    sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    if layout == "diffusers":
        sd = to_diffusers(sd)
    elif layout != "wan":
        raise ValueError(f"layout must be 'wan' or 'diffusers', got {layout!r}")
    save_file(sd, str(path))


_SAFETENSORS_DTYPES = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
    "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2",
    "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool",
}


def read_shapes(path: str | Path) -> tuple[dict[str, tuple[int, ...]], dict[str, str]]:
    """Key -> shape and key -> dtype name of a weights file without loading tensors where
    possible (safetensors headers; ``.pt`` files are memory-mapped). Names stay as stored."""
    path = Path(path)
    files = _diffusers_files(path) if path.is_dir() else [path]
    shapes: dict[str, tuple[int, ...]] = {}
    dtypes: dict[str, str] = {}
    for f in files:
        if f.suffix == ".safetensors":
            with safe_open(str(f), framework="pt") as fh:
                for k in fh.keys():
                    sl = fh.get_slice(k)
                    shapes[k] = tuple(sl.get_shape())
                    dtypes[k] = _SAFETENSORS_DTYPES.get(sl.get_dtype(), sl.get_dtype())
        else:
            obj = _torch_load(f)
            items = obj.items() if isinstance(obj, dict) else []
            for k, v in _flatten_tensors(items):
                shapes[k] = tuple(v.shape)
                dtypes[k] = str(v.dtype).removeprefix("torch.")
    return shapes, dtypes


def read_dit_shapes(path: str | Path, which: str | None = None) -> dict[str, tuple[int, ...]]:
    """Key -> shape of DiT weights with official Wan names, as ``read_state_dict`` would give
    (safetensors read from headers only, ``.pt`` memory-mapped)."""
    path = Path(path)
    if path.is_dir() or path.suffix == ".safetensors":
        shapes = read_shapes(path)[0]
    else:
        shapes = {k: tuple(v.shape) for k, v in unwrap_generator(_torch_load(path), path, which).items()}
    return from_diffusers(shapes) if is_diffusers_layout(list(shapes)) else shapes


def dit_size(path: str | Path, which: str | None = None) -> str:
    """The model size of the DiT checkpoint at ``path``, from its shapes (``KeyError`` /
    ``ValueError`` when it is no Wan2.1 DiT)."""
    return config_name(config_from_shapes(read_dit_shapes(path, which)))


def _flatten_tensors(items, prefix: str = ""):
    for k, v in items:
        if isinstance(v, Tensor):
            yield prefix + str(k), v
        elif isinstance(v, dict):
            yield from _flatten_tensors(v.items(), f"{prefix}{k}.")

