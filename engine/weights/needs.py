"""What a run needs from the weights folder, checked before anything heavy is loaded.

From the run's settings (model, VAE, annotator, mask source; a preset's values included) follow
the roles it needs. :func:`preflight` reports every missing role at once, with the
``vacelive weights fetch`` command that gets them; then it reads each needed file's header (a
corrupt or truncated file is one line naming it) and compares the DiT's size with ``--model``.
All of this takes seconds, however large the files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .manifest import WeightFileMissing, WeightsManifest
from .sets import DEFAULT_SET, SETS

ANNOTATOR_ROLES = {"depth": "depth", "pose": "pose"}
MASK_SOURCE_ROLES = {"person": "segmenter"}
DIT_FILE_SETS = {"longlive_base.pt": "longlive", "self_forcing_dmd.pt": "self-forcing",
                 "diffusion_pytorch_model.safetensors": "wan-t2v-1.3b"}
"""The set a recognised DiT file comes from (for the fetch command suggested)."""


class MissingWeights(FileNotFoundError):
    """A run needs weights the folder does not have, or has in a form that cannot be used.

    ``detail`` says what is wrong; ``fix``, when there is one, the command that gets the missing
    files. The message is both on one line."""

    def __init__(self, detail: str, fix: str = "") -> None:
        super().__init__(f"{detail}; get them with: {fix}" if fix else detail)
        self.detail, self.fix = detail, fix


@dataclass(frozen=True)
class Need:
    """A role the run uses: ``required`` stops the start when missing; otherwise it runs with less."""

    role: str
    reason: str
    required: bool = True


def run_needs(settings: Mapping[str, Any]) -> list[Need]:
    """The roles a run with these (resolved) settings uses, in the order they are loaded."""
    needs = []
    model = settings["model"]
    if model != "tiny":
        needs.append(Need("dit", f"--model {model}"))
        autoencoder = settings["vae"]
        needs.append(Need("vae" if autoencoder == "wan" else "tae", f"--vae {autoencoder}"))
        needs.append(Need("t5", "encoding prompts not in the prompt cache", required=False))
        needs.append(Need("tokenizer", "encoding prompts not in the prompt cache", required=False))
        needs.append(Need("vace", "control, masks, references and keyframes", required=False))
    annotator = settings.get("annotator", "none")
    if annotator in ANNOTATOR_ROLES:
        needs.append(Need(ANNOTATOR_ROLES[annotator], f"--annotator {annotator}"))
    mask_source = settings.get("mask_source", "none")
    if mask_source in MASK_SOURCE_ROLES:
        needs.append(Need(MASK_SOURCE_ROLES[mask_source], f"--mask-source {mask_source}"))
    return needs


def has_role(manifest: WeightsManifest | None, role: str) -> bool:
    """Whether the folder declares ``role`` and its file is there."""
    if manifest is None:
        return False
    if role == "tokenizer" and not manifest.has("tokenizer") and manifest.has("t5"):
        return (manifest.root / manifest.files["t5"]).with_name("google").joinpath("umt5-xxl").is_dir()
    try:
        manifest.path(role)
    except WeightFileMissing:
        return False
    return True


def suggested_set(manifest: WeightsManifest | None) -> str:
    """The set the folder's generator came from (by its manifest or its DiT's file name)."""
    if manifest is not None and manifest.set_name in SETS:
        return manifest.set_name
    if manifest is not None and manifest.has("dit"):
        return DIT_FILE_SETS.get(Path(manifest.files["dit"]).name, DEFAULT_SET)
    return DEFAULT_SET


def usual_file(role: str, set_name: str) -> str:
    """The file (or folder) a role usually is: the set's own, else the add-on's."""
    from .sets import ADD_ONS

    sources = {r.role: r for r in SETS[set_name].roles} | {k: v for k, v in ADD_ONS.items()}
    return sources[role].entry if role in sources else role


def fetch_command(folder: str, manifest: WeightsManifest | None, roles: list[str]) -> str:
    """The ``vacelive weights fetch`` command that gets ``roles`` into ``folder`` (for a run
    without any weights folder: the whole set, plus the add-ons among ``roles``)."""
    set_name = suggested_set(manifest)
    own = {r.role for r in SETS[set_name].roles}
    words = ["vacelive", "weights", "fetch", folder or "weights"]
    if own & set(roles) and set_name != DEFAULT_SET:
        words += ["--set", set_name]
    if manifest is None and own & set(roles):
        add_ons = [r for r in roles if r not in own]
        words += ["--with", *add_ons] if add_ons else []
    else:
        words += ["--only", *roles]
    return " ".join(words)


def missing(needs: list[Need], manifest: WeightsManifest | None) -> list[Need]:
    """The needs the folder does not meet."""
    return [need for need in needs if not has_role(manifest, need.role)]


def preflight(settings: Mapping[str, Any], manifest: WeightsManifest | None) -> list[str]:
    """Stop (``MissingWeights``, one line) if a required role is missing, unreadable or for
    another model size; return warnings for the optional roles that are missing."""
    needs = run_needs(settings)
    absent = missing(needs, manifest)
    required = [n for n in absent if n.required]
    folder = settings.get("weights_dir") or ""
    if required:
        listed = ", ".join(f"{n.role} ({n.reason}: {usual_file(n.role, suggested_set(manifest))})" for n in required)
        where = f"the weights folder {folder} lacks" if manifest is not None else "no --weights-dir given; it needs weights for"
        fix = fetch_command(folder, manifest, [n.role for n in required])
        if manifest is None:
            fix += f" and run with --weights-dir {folder or 'weights'}"
        raise MissingWeights(f"this run needs weights: {where}: {listed}", fix)
    for need in needs:
        if need not in absent and manifest is not None and need.role != "tokenizer":
            _check_readable(manifest, need.role)
    if manifest is not None and settings["model"] != "tiny" and has_role(manifest, "dit"):
        _check_model_size(manifest, settings["model"])
    return [f"no '{n.role}' weights: {n.reason} will not work" for n in absent]


def _check_readable(manifest: WeightsManifest, role: str) -> None:
    from vacelive.engine.model.loading import read_shapes

    path = manifest.path(role)
    if path.is_dir() and not any(path.glob("*.safetensors")):
        return
    if path.suffix in (".task", ".tflite"):
        return
    try:
        read_shapes(path)
    except Exception as err:
        reason = " ".join(str(err).split())[:160] or type(err).__name__
        raise MissingWeights(f"weights file {path} (role {role}) cannot be read, it may be corrupt or "
                             f"truncated: {reason}") from None


def _check_model_size(manifest: WeightsManifest, model: str) -> None:
    from vacelive.engine.model.loading import dit_size

    path = manifest.path("dit")
    try:
        size = dit_size(path, manifest.dit_weights)
    except (KeyError, ValueError) as err:
        raise MissingWeights(f"weights file {path} (role dit) is not a Wan2.1 DiT checkpoint: {err}") from None
    if size != model:
        raise MissingWeights(f"weights file {path} is a Wan2.1 {size} checkpoint, but --model is {model}: "
                             f"run with --model {size}")
