"""The weights folder's manifest, ``vacelive-weights.toml``: which file plays which role.

Format (every entry optional; paths relative to the folder)::

    set = "longlive"                # the fetch set the folder came from (informational)
    dit_weights = "generator"       # which dict of a causal-generator .pt: generator | generator_ema
    lora_alpha = 256                # LoRA scale numerator (default: the LoRA's rank, scale 1)

    [files]
    dit = "longlive_base.pt"        # base causal generator, official safetensors or diffusers file/dir
    lora = "lora.pt"                # LongLive LoRA (merged at load)
    vace = "Wan2.1-VACE-1.3B/diffusion_pytorch_model.safetensors"
    vae = "Wan2.1_VAE.pth"
    tae = "taew2_1.pth"
    t5 = "models_t5_umt5-xxl-enc-bf16.pth"
    tokenizer = "google/umt5-xxl"   # folder with tokenizer files
    depth = "depth_anything_v2_vits.pth"
    pose = "pose_landmarker_full.task"
    segmenter = "selfie_segmenter.tflite"

A folder without a manifest is recognised by what it holds (:mod:`.recognise`);
:meth:`WeightsManifest.open` does both. Nothing here downloads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

import tomli_w

from vacelive.engine.model.loading import GENERATOR_DICTS

MANIFEST_NAME = "vacelive-weights.toml"
KNOWN_ROLES = ("dit", "lora", "vace", "vae", "tae", "t5", "tokenizer", "depth", "pose", "segmenter")


class WeightFileMissing(FileNotFoundError):
    """A role is not declared in the manifest, or its file is not on disk."""


class WeightsFolderError(FileNotFoundError):
    """The weights folder does not exist, or holds nothing vacelive can use."""


@dataclass
class WeightsManifest:
    """A weights folder's roles: role -> path relative to ``root``, plus how to read them.

    ``recognised`` is True when the roles were found from the files (no manifest on disk).
    """

    root: Path
    files: dict[str, str] = field(default_factory=dict)
    dit_weights: str | None = None
    lora_alpha: float | None = None
    set_name: str | None = None
    recognised: bool = False

    @classmethod
    def load(cls, directory: str | Path) -> WeightsManifest:
        """Parse ``directory/vacelive-weights.toml``."""
        root = Path(directory)
        manifest = root / MANIFEST_NAME
        if not manifest.is_file():
            raise WeightFileMissing(f"no {MANIFEST_NAME} in {root}")
        try:
            data = tomllib.loads(manifest.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{manifest}: not valid TOML ({err})") from None
        files = data.get("files", {})
        if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
            raise ValueError(f"{manifest}: [files] must map role names to path strings")
        dit_weights = data.get("dit_weights")
        if dit_weights is not None and dit_weights not in GENERATOR_DICTS:
            raise ValueError(f"{manifest}: dit_weights = {dit_weights!r}: must be one of {GENERATOR_DICTS}")
        lora_alpha = data.get("lora_alpha")
        if lora_alpha is not None and (isinstance(lora_alpha, bool) or not isinstance(lora_alpha, (int, float))
                                       or lora_alpha <= 0):
            raise ValueError(f"{manifest}: lora_alpha = {lora_alpha!r}: must be a positive number")
        return cls(root=root, files=dict(files), dit_weights=dit_weights, lora_alpha=lora_alpha,
                   set_name=data.get("set"))

    @classmethod
    def open(cls, directory: str | Path) -> WeightsManifest:
        """The folder's manifest, or, without one, the roles recognised from its files.

        Raises :class:`WeightsFolderError` with different words for a folder that does not exist
        and one that holds nothing recognisable.
        """
        root = Path(directory)
        if not root.is_dir():
            what = "is a file, not a folder" if root.exists() else "does not exist"
            raise WeightsFolderError(f"weights folder {root} {what}")
        if (root / MANIFEST_NAME).is_file():
            return cls.load(root)
        from .recognise import recognise

        found = recognise(root)
        if not found.files:
            raise WeightsFolderError(
                f"weights folder {root} has no {MANIFEST_NAME} and no file vacelive recognises "
                f"(get some with: vacelive weights fetch {root})")
        return found

    def has(self, role: str) -> bool:
        """Whether the manifest declares ``role``."""
        return role in self.files

    def path(self, role: str) -> Path:
        """Absolute path of the file for ``role``; ``WeightFileMissing`` names role and file."""
        if role not in self.files:
            raise WeightFileMissing(f"weights role '{role}' is not declared in {self.root / MANIFEST_NAME}")
        path = self.root / self.files[role]
        if not path.exists():
            raise WeightFileMissing(f"weights role '{role}': file '{self.files[role]}' not found in {self.root}")
        return path

    def to_toml(self) -> str:
        """The manifest file's text."""
        data: dict = {}
        if self.set_name:
            data["set"] = self.set_name
        if self.dit_weights:
            data["dit_weights"] = self.dit_weights
        if self.lora_alpha is not None:
            data["lora_alpha"] = self.lora_alpha
        data["files"] = {role: self.files[role] for role in KNOWN_ROLES if role in self.files} | {
            role: rel for role, rel in self.files.items() if role not in KNOWN_ROLES}
        return tomli_w.dumps(data)

    def save(self) -> Path:
        """Write ``root/vacelive-weights.toml`` atomically; returns its path."""
        target = self.root / MANIFEST_NAME
        temporary = target.with_name(target.name + ".tmp")
        temporary.write_text(self.to_toml(), encoding="utf-8")
        temporary.replace(target)
        return target
