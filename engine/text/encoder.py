"""Prompt -> embeddings ``[B, text_len, dim]`` with the umT5 encoder, zero past the real tokens."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal, Sequence

import torch
from torch import Tensor

from ..model.loading import read_checkpoint
from ..vae.base import load_state_dict_strict
from .t5 import T5_CONFIGS, UMT5Encoder
from .tokenizer import ByteTokenizer, Tokenizer, UMT5Tokenizer

T5_WEIGHTS = "models_t5_umt5-xxl-enc-bf16.pth"
TOKENIZER_DIRS = ("google/umt5-xxl", "umt5-xxl", ".")


class TextEncoder:
    """umT5 encoder plus its tokenizer; ``encoder_id`` names the weights for the prompt cache."""

    def __init__(self, model: UMT5Encoder, tokenizer: Tokenizer, encoder_id: str) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.encoder_id = encoder_id
        self.text_len = model.cfg.text_len
        self.dim = model.cfg.dim

    @torch.no_grad()
    def __call__(self, prompts: Sequence[str]) -> Tensor:
        """Prompts -> ``[B, text_len, dim]``; positions past each prompt's tokens (EOS included)
        are zero, as Wan feeds the DiT."""
        ids, mask = self.tokenizer(prompts, self.text_len)
        device = self.model.token_embedding.weight.device
        ids, mask = ids.to(device), mask.to(device)
        return self.model(ids, mask) * mask[..., None].to(self.model.token_embedding.weight.dtype)


class RandomPromptEmbeddings:
    """Stands in for umT5 and the prompt cache when the model has random weights (speed
    measurements): each prompt maps to a fixed random embedding ``[text_len, dim]`` (seeded by the
    prompt's hash, zero past its first 16 positions, as a short prompt's would be)."""

    TOKENS = 16

    def __init__(self, text_len: int, dim: int) -> None:
        self.text_len, self.dim = text_len, dim

    def get(self, prompt: str) -> Tensor:
        """The embedding ``[text_len, dim]`` of ``prompt``."""
        seed = int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:8], "little")
        out = torch.zeros(self.text_len, self.dim)
        out[: self.TOKENS] = torch.randn(self.TOKENS, self.dim, generator=torch.Generator().manual_seed(seed))
        return out


def _file_fingerprint(path: Path) -> str:
    h = hashlib.sha256(f"{path.name}:{path.stat().st_size}".encode())
    with open(path, "rb") as f:
        h.update(f.read(1 << 20))
    return h.hexdigest()[:16]


def _state_fingerprint(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in model.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def load_t5(path: str | Path, config: Literal["real", "tiny"] = "real",
            device: str | torch.device = "cpu", dtype: torch.dtype = torch.bfloat16) -> UMT5Encoder:
    """Build the encoder on the meta device and load ``path`` (``.pth`` or ``.safetensors``) strictly."""
    state = {k: v.to(device=device, dtype=dtype) for k, v in read_checkpoint(path).items()}
    with torch.device("meta"):
        model = UMT5Encoder(T5_CONFIGS[config])
    load_state_dict_strict(model, state, str(path), assign=True)
    return model.eval().requires_grad_(False)


def make_text_encoder(config: Literal["real", "tiny"] = "real", weights_dir: str | Path | None = None,
                      device: str | torch.device = "cpu", dtype: torch.dtype = torch.bfloat16,
                      seed: int = 0, tokenizer_dir: str | Path | None = None) -> TextEncoder:
    """The text encoder for ``config``.

    real: ``weights_dir`` is the checkpoint file, or a folder holding
    ``models_t5_umt5-xxl-enc-bf16.pth``; the tokenizer files are in ``tokenizer_dir``, or else in
    ``google/umt5-xxl`` (or ``umt5-xxl``, or the folder itself) beside the checkpoint.
    tiny: the byte test tokenizer and, when ``weights_dir`` holds no checkpoint, random weights
    seeded with ``seed``.
    """
    path = None if weights_dir is None else Path(weights_dir)
    if path is not None and not path.is_file():
        path = path / T5_WEIGHTS  # a folder holding the checkpoint under its official name
    if config == "tiny":
        if path is not None and path.is_file():
            model = load_t5(path, "tiny", device, dtype)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = UMT5Encoder(T5_CONFIGS["tiny"])
            model = model.to(device=device, dtype=dtype).eval().requires_grad_(False)
        return TextEncoder(model, ByteTokenizer(), f"tiny:{_state_fingerprint(model)}")
    if path is None or not path.is_file():
        raise FileNotFoundError(f"text encoder weights not found: {path or T5_WEIGHTS} (weights_dir={weights_dir})")
    base = path.parent
    folders = [Path(tokenizer_dir)] if tokenizer_dir is not None else [base / d for d in TOKENIZER_DIRS]
    folder = next((f for f in folders if (f / "tokenizer.json").is_file() or (f / "spiece.model").is_file()), None)
    if folder is None:
        raise FileNotFoundError(f"umT5 tokenizer (tokenizer.json or spiece.model) not found in any of {folders}")
    tokenizer = UMT5Tokenizer(folder)
    return TextEncoder(load_t5(path, "real", device, dtype), tokenizer, f"umt5-xxl:{_file_fingerprint(path)}")
