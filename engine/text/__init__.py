"""Text conditioning: umT5 encoder, on-disk prompt cache and the per-chunk PromptConditioner."""

from .cache import PromptCache, prompts_encode
from .conditioner import PromptConditioner, lerp, slerp_tokens
from .encoder import T5_WEIGHTS, RandomPromptEmbeddings, TextEncoder, load_t5, make_text_encoder
from .spec import parse_prompt_spec
from .t5 import T5_CONFIGS, T5Config, UMT5Encoder
from .tokenizer import ByteTokenizer, UMT5Tokenizer, clean_prompt

__all__ = [
    "RandomPromptEmbeddings",
    "PromptCache", "prompts_encode", "PromptConditioner", "lerp", "slerp_tokens", "T5_WEIGHTS",
    "TextEncoder", "load_t5", "make_text_encoder", "parse_prompt_spec", "T5_CONFIGS", "T5Config",
    "UMT5Encoder", "ByteTokenizer", "UMT5Tokenizer", "clean_prompt",
]
