"""On-disk prompt embedding cache, so a show's prompts are encoded once.

One safetensors file per (prompt, encoder) entry, ``<sha256(prompt)[:32]>-<sha256(encoder_id)[:12]>
.safetensors``, holding ``context`` ``[n_tokens, dim]`` (the real tokens only; zero padding up to
``text_len`` is restored on load) and the prompt, encoder id and text_len as metadata.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor

from .encoder import TextEncoder, make_text_encoder
from .spec import parse_prompt_spec


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class PromptCache:
    """Prompt embeddings ``[text_len, dim]`` stored under ``cache_dir``.

    With an ``encoder``, misses are encoded and stored. Without one, only cached prompts work:
    entries are looked up for ``encoder_id`` when given, else for the single encoder the cache
    holds that prompt for.
    """

    def __init__(self, cache_dir: str | Path, encoder: TextEncoder | None = None,
                 encoder_id: str | None = None) -> None:
        self.dir = Path(cache_dir)
        self.encoder = encoder
        self.encoder_id = encoder.encoder_id if encoder is not None else encoder_id

    def _path(self, prompt: str, encoder_id: str) -> Path:
        return self.dir / f"{_sha(prompt)[:32]}-{_sha(encoder_id)[:12]}.safetensors"

    def _find(self, prompt: str) -> Path | None:
        if self.encoder_id is not None:
            path = self._path(prompt, self.encoder_id)
            return path if path.is_file() else None
        found = sorted(self.dir.glob(f"{_sha(prompt)[:32]}-*.safetensors"))
        if len(found) > 1:
            raise LookupError(f"prompt {prompt!r} is cached for {len(found)} encoders; name the encoder_id")
        return found[0] if found else None

    def __contains__(self, prompt: str) -> bool:
        return self._find(prompt) is not None

    def get(self, prompt: str) -> Tensor:
        """The embedding ``[text_len, dim]`` of ``prompt``, encoding and storing it on a miss."""
        path = self._find(prompt)
        if path is not None:
            return self._load(path)
        if self.encoder is None:
            raise KeyError(f"prompt {prompt!r} is not in the prompt cache {self.dir} and no text encoder is "
                           "loaded; run `vacelive prompts encode` with it first")
        return self.put_many([prompt])[0]

    def put_many(self, prompts: list[str]) -> list[Tensor]:
        """Encode ``prompts`` in one batch with the encoder and store them; returns the embeddings."""
        if self.encoder is None:
            raise RuntimeError("PromptCache.put_many needs a text encoder")
        out = self.encoder(prompts)  # [B, text_len, dim]
        self.dir.mkdir(parents=True, exist_ok=True)
        for prompt, context in zip(prompts, out):
            n = int((context != 0).any(-1).nonzero().max()) + 1 if context.any() else 0
            meta = {"prompt": prompt, "encoder_id": self.encoder_id, "text_len": str(context.shape[0])}
            save_file({"context": context[:n].contiguous().cpu()}, str(self._path(prompt, self.encoder_id)), meta)
        return list(out)

    @staticmethod
    def _load(path: Path) -> Tensor:
        with safe_open(str(path), framework="pt") as f:
            text_len = int(f.metadata()["text_len"])
            context = f.get_tensor("context")
        out = context.new_zeros(text_len, context.shape[1])
        out[: context.shape[0]] = context
        return out


def prompts_encode(file: str, weights_dir: str | Path, cache_dir: str,
                   config: Literal["real", "tiny"] = "real", tokenizer_dir: str | Path | None = None) -> int:
    """Encode every prompt of ``file`` (one prompt spec per line; weighted lists
    ``"a:0.7|b:0.3"`` are split into their prompts; blank lines skipped) into ``cache_dir``.

    ``weights_dir`` and ``tokenizer_dir`` are as for :func:`make_text_encoder`. Returns the
    number of prompts newly encoded (already cached ones are skipped).
    """
    lines = Path(file).read_text(encoding="utf-8").splitlines()
    prompts = list(dict.fromkeys(p for line in lines if line.strip() for p, _ in parse_prompt_spec(line)))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if config == "real" else torch.float32
    encoder = make_text_encoder(config, weights_dir, device=device, dtype=dtype, tokenizer_dir=tokenizer_dir)
    cache = PromptCache(cache_dir, encoder)
    todo = [p for p in prompts if p not in cache]
    for i in range(0, len(todo), 8):
        cache.put_many(todo[i:i + 8])
    return len(todo)
