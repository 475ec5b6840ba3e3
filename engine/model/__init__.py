"""Wan2.1 text-to-video DiT as the causal streaming generators use it (Self-Forcing, CausVid,
LongLive), its caches, weight loading and the chunk driver."""

from .attention import block_causal_mask
from .block import WanBlock
from .causal import CausalGenerator
from .config import CONFIGS, WanConfig
from .context import BlockContext
from .kv_cache import RingKVCache, RingPlan, TextKVCache, attend_ring
from .loading import (
    WeightsMismatchError,
    from_diffusers,
    load_into,
    load_model,
    merge_lora,
    read_state_dict,
    save_weights,
    to_diffusers,
)
from .lora import LORA_FORMATS, StyleLora, StyleLoras, detect_format, load_lora, parse_lora
from .model import WanModel, compile_stack

__all__ = [
    "BlockContext",
    "CONFIGS",
    "CausalGenerator",
    "LORA_FORMATS",
    "RingKVCache",
    "RingPlan",
    "StyleLora",
    "StyleLoras",
    "TextKVCache",
    "WanBlock",
    "WanConfig",
    "WanModel",
    "WeightsMismatchError",
    "attend_ring",
    "block_causal_mask",
    "compile_stack",
    "detect_format",
    "from_diffusers",
    "load_into",
    "load_lora",
    "load_model",
    "merge_lora",
    "parse_lora",
    "read_state_dict",
    "save_weights",
    "to_diffusers",
]
