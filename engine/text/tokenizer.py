"""Tokenizers for the text encoder: umT5's (from local files) and the tiny test tokenizer.

Both mirror Wan's ``HuggingfaceTokenizer(clean='whitespace')`` call: clean the text, tokenize,
truncate to ``text_len - 1`` tokens, append EOS (id 1), pad with id 0 to ``text_len``; the mask
is 1 on real tokens (EOS included).
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Protocol, Sequence

import torch
from torch import Tensor

PAD_ID = 0
EOS_ID = 1


def clean_prompt(text: str) -> str:
    """Wan's prompt cleaning (HTML entities unescaped, whitespace collapsed); ftfy's mojibake fix
    is not applied."""
    text = html.unescape(html.unescape(text)).strip()
    return re.sub(r"\s+", " ", text).strip()


class Tokenizer(Protocol):
    """Text -> padded ids ``[B, text_len]`` and mask ``[B, text_len]``."""

    name: str

    def __call__(self, texts: Sequence[str], text_len: int) -> tuple[Tensor, Tensor]: ...


def _pad(rows: list[list[int]], text_len: int) -> tuple[Tensor, Tensor]:
    ids = torch.full((len(rows), text_len), PAD_ID, dtype=torch.long)
    mask = torch.zeros((len(rows), text_len), dtype=torch.long)
    for i, row in enumerate(rows):
        row = row[: text_len - 1] + [EOS_ID]
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
    return ids, mask


class UMT5Tokenizer:
    """The umT5-XXL SentencePiece vocabulary read from a local folder (no hub access).

    Uses ``tokenizer.json`` with the ``tokenizers`` package when present, else ``spiece.model``
    with ``sentencepiece``.
    """

    def __init__(self, folder: str | Path) -> None:
        folder = Path(folder)
        self.name = f"umt5:{folder.name}"
        if (folder / "tokenizer.json").is_file():
            from tokenizers import Tokenizer as HFTokenizer

            tok = HFTokenizer.from_file(str(folder / "tokenizer.json"))
            self._encode = lambda text: tok.encode(text, add_special_tokens=False).ids
        elif (folder / "spiece.model").is_file():
            import sentencepiece

            sp = sentencepiece.SentencePieceProcessor(model_file=str(folder / "spiece.model"))
            self._encode = lambda text: sp.encode(text)
        else:
            raise FileNotFoundError(f"no tokenizer.json or spiece.model in {folder}")

    def __call__(self, texts: Sequence[str], text_len: int) -> tuple[Tensor, Tensor]:
        return _pad([list(self._encode(clean_prompt(t))) for t in texts], text_len)


class ByteTokenizer:
    """TINY TEST TOKENIZER: UTF-8 bytes as ids 3..258 (0 pad, 1 EOS); for the tiny config only."""

    name = "tiny-bytes"
    vocab_size = 259

    def __call__(self, texts: Sequence[str], text_len: int) -> tuple[Tensor, Tensor]:
        return _pad([[b + 3 for b in clean_prompt(t).encode("utf-8")] for t in texts], text_len)
