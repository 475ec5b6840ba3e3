"""VACE on the causal Wan2.1 DiT, by composition: a branch of ``vace_blocks`` whose hints are
added to the base model's blocks through hooks (no change to the base's code or weights names).

Modules: :mod:`.branch` (the weights), :mod:`.inject` (hooks, per-stream KV ring, references),
:mod:`.context` (vace_context, mask folding, frame composition), :mod:`.media` (images),
:mod:`.mode` (implicit mode), :mod:`.graft` (checkpoint loading), :mod:`.controller` (per chunk),
:mod:`.remote` (the branch in a worker process on its own device).
"""

from .branch import VACE_IN_DIM, VaceBranch, default_vace_layers
from .context import (
    LAST_KEYFRAME_INDEX,
    MaskStream,
    VaceContextEncoder,
    compose_frames,
    fold_mask,
    reference_context,
)
from .controller import VaceController
from .graft import VaceGraftError, graft_vace, read_vace_weights
from .inject import EXTRAS_KEY, HINTS_KEY, RingShape, VaceConditioning, VaceHooks, VaceInjector, attach_vace
from .media import MediaError, MediaSlot, load_image
from .mode import infer_mode

__all__ = [
    "EXTRAS_KEY",
    "HINTS_KEY",
    "LAST_KEYFRAME_INDEX",
    "VACE_IN_DIM",
    "MaskStream",
    "MediaError",
    "MediaSlot",
    "RingShape",
    "VaceBranch",
    "VaceConditioning",
    "VaceContextEncoder",
    "VaceController",
    "VaceGraftError",
    "VaceHooks",
    "VaceInjector",
    "attach_vace",
    "compose_frames",
    "default_vace_layers",
    "fold_mask",
    "graft_vace",
    "infer_mode",
    "load_image",
    "read_vace_weights",
    "reference_context",
]
