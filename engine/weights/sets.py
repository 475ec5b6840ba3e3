"""Where each weights role comes from: the named sets ``vacelive weights fetch`` downloads.

A set is a generator plus what it needs to run (VAE, umT5 encoder and tokenizer); the add-on
roles (VACE, TAEW, depth, pose, segmenter) can join any set with ``--with`` or ``--only``.
Repository ids and file names were checked against the public model pages and the reference
code (2026-11); sizes are approximate (the exact size is asked from the server at fetch time).
Hub files go through ``huggingface_hub`` (it honours ``HF_ENDPOINT``, ``HF_TOKEN``, ``HF_HOME``);
files published elsewhere are fetched from a base URL that an environment variable can replace.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

WAN_T2V = "Wan-AI/Wan2.1-T2V-1.3B"
APACHE = "Apache-2.0"


@dataclass(frozen=True)
class RemoteFile:
    """One file to download: from a Hugging Face repository (``repo`` + ``path``) or from
    ``url_env``'s base URL (default ``url_base``) + ``path``; it lands at ``local`` in the folder."""

    path: str
    local: str
    approx_bytes: int
    repo: str = ""
    url_base: str = ""
    url_env: str = ""

    @property
    def url(self) -> str:
        """The download URL of a non-hub file (the environment variable's base when set)."""
        base = os.environ.get(self.url_env, "") if self.url_env else ""
        return f"{(base or self.url_base).rstrip('/')}/{self.path}"


@dataclass(frozen=True)
class RoleSource:
    """The files that make up one weights role, the manifest entry they give, and their licence."""

    role: str
    entry: str
    files: tuple[RemoteFile, ...]
    licence: str
    non_commercial: bool = False

    @property
    def approx_bytes(self) -> int:
        return sum(f.approx_bytes for f in self.files)


@dataclass(frozen=True)
class WeightSet:
    """A named set: its roles, plus the manifest settings its generator needs."""

    name: str
    description: str
    roles: tuple[RoleSource, ...]
    settings: dict[str, object] = field(default_factory=dict)


def _hub(repo: str, path: str, approx_bytes: int, local: str | None = None) -> RemoteFile:
    return RemoteFile(path=path, local=local or path, approx_bytes=approx_bytes, repo=repo)


TOKENIZER_FILES = (("special_tokens_map.json", 6_623), ("spiece.model", 4_548_313),
                   ("tokenizer.json", 16_837_417), ("tokenizer_config.json", 61_728))

WAN_SUPPORT = (
    RoleSource("vae", "Wan2.1_VAE.pth", (_hub(WAN_T2V, "Wan2.1_VAE.pth", 507_609_880),), APACHE),
    RoleSource("t5", "models_t5_umt5-xxl-enc-bf16.pth",
               (_hub(WAN_T2V, "models_t5_umt5-xxl-enc-bf16.pth", 11_361_920_418),), APACHE),
    RoleSource("tokenizer", "google/umt5-xxl",
               tuple(_hub(WAN_T2V, f"google/umt5-xxl/{name}", size) for name, size in TOKENIZER_FILES), APACHE),
)
"""VAE, text encoder and tokenizer from the official Wan2.1-T2V-1.3B repository."""

LONGLIVE_LICENCE = "CC-BY-NC-SA-4.0 (its model card; the code is Apache-2.0)"
SELF_FORCING_LICENCE = "not stated on its model card (code Apache-2.0, earlier CC-BY-NC-SA-4.0)"

SETS: dict[str, WeightSet] = {
    "longlive": WeightSet(
        "longlive", "LongLive-1.3B (base + LoRA, window 12 / 3 sinks as the engine runs it) + Wan2.1 VAE, umT5",
        (
            RoleSource("dit", "models/longlive_base.pt",
                       (_hub("Efficient-Large-Model/LongLive-1.3B", "models/longlive_base.pt", 5_676_334_208),),
                       LONGLIVE_LICENCE, non_commercial=True),
            RoleSource("lora", "models/lora.pt",
                       (_hub("Efficient-Large-Model/LongLive-1.3B", "models/lora.pt", 2_800_056_690),),
                       LONGLIVE_LICENCE, non_commercial=True),
            *WAN_SUPPORT,
        ),
        settings={"dit_weights": "generator", "lora_alpha": 256},
    ),
    "self-forcing": WeightSet(
        "self-forcing", "Self-Forcing DMD 1.3B (EMA generator) + Wan2.1 VAE, umT5",
        (
            RoleSource("dit", "checkpoints/self_forcing_dmd.pt",
                       (_hub("gdhe17/Self-Forcing", "checkpoints/self_forcing_dmd.pt", 5_676_252_553),),
                       SELF_FORCING_LICENCE, non_commercial=True),
            *WAN_SUPPORT,
        ),
        settings={"dit_weights": "generator_ema"},
    ),
    "wan-t2v-1.3b": WeightSet(
        "wan-t2v-1.3b", "the official Wan2.1-T2V-1.3B files as they are (bidirectional base weights)",
        (
            RoleSource("dit", "diffusion_pytorch_model.safetensors",
                       (_hub(WAN_T2V, "diffusion_pytorch_model.safetensors", 5_676_070_424),), APACHE),
            *WAN_SUPPORT,
        ),
    ),
}
DEFAULT_SET = "longlive"

MEDIAPIPE_URL = "https://storage.googleapis.com/mediapipe-models"
TAEHV_URL = "https://raw.githubusercontent.com/madebyollin/taehv/main"

ADD_ONS: dict[str, RoleSource] = {
    "vace": RoleSource(
        "vace", "Wan2.1-VACE-1.3B/diffusion_pytorch_model.safetensors",
        (_hub("Wan-AI/Wan2.1-VACE-1.3B", "diffusion_pytorch_model.safetensors", 7_146_067_848,
              local="Wan2.1-VACE-1.3B/diffusion_pytorch_model.safetensors"),), APACHE),
    "tae": RoleSource(
        "tae", "taew2_1.pth",
        (RemoteFile("taew2_1.pth", "taew2_1.pth", 22_680_000, url_base=TAEHV_URL, url_env="VACELIVE_TAEHV_URL"),),
        "MIT"),
    "depth": RoleSource(
        "depth", "depth_anything_v2_vits.pth",
        (_hub("depth-anything/Depth-Anything-V2-Small", "depth_anything_v2_vits.pth", 99_218_434),), APACHE),
    "pose": RoleSource(
        "pose", "pose_landmarker_full.task",
        (RemoteFile("pose_landmarker/pose_landmarker_full/float16/latest/pose_landmarker_full.task",
                    "pose_landmarker_full.task", 9_398_198, url_base=MEDIAPIPE_URL,
                    url_env="VACELIVE_MEDIAPIPE_URL"),), APACHE),
    "segmenter": RoleSource(
        "segmenter", "selfie_segmenter.tflite",
        (RemoteFile("image_segmenter/selfie_segmenter/float16/latest/selfie_segmenter.tflite",
                    "selfie_segmenter.tflite", 250_000, url_base=MEDIAPIPE_URL,
                    url_env="VACELIVE_MEDIAPIPE_URL"),), APACHE),
}
"""Roles any set can add: VACE (only its ``vace_*`` keys are used), TAEW2.1, depth, pose, person masks."""


def plan(set_name: str, only: list[str] | None = None, extra: list[str] | None = None) -> list[RoleSource]:
    """The role sources to fetch: the set's roles plus ``extra`` add-ons, or just ``only``.

    Raises ``ValueError`` naming an unknown set or role.
    """
    if set_name not in SETS:
        raise ValueError(f"unknown weights set {set_name!r}; known: {', '.join(SETS)}")
    own = {r.role: r for r in SETS[set_name].roles}
    available = own | {k: v for k, v in ADD_ONS.items() if k not in own}
    wanted = list(only) if only else list(own) + [r for r in extra or [] if r not in own]
    unknown = [r for r in wanted if r not in available]
    if unknown:
        raise ValueError(f"unknown role(s) for set {set_name!r}: {', '.join(unknown)}; "
                         f"known: {', '.join(available)}")
    return [available[r] for r in dict.fromkeys(wanted)]


def human_size(num_bytes: float) -> str:
    """``5676070424`` -> ``5.7 GB``."""
    unit = "B"
    for unit in ("B", "KB", "MB", "GB"):
        if num_bytes < 1000 or unit == "GB":
            break
        num_bytes /= 1000
    return f"{num_bytes:.0f} {unit}" if unit == "B" else f"{num_bytes:.1f} {unit}"
