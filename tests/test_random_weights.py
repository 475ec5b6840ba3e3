"""Random weights at a model's real size: speed measurements without weights (vacelive bench --random-weights)."""

from __future__ import annotations

import torch

from vacelive.engine.app import build_store
from vacelive.engine.model import CONFIGS
from vacelive.engine.pipeline import build_model, build_prompts, build_vae
from vacelive.engine.text import RandomPromptEmbeddings


def test_the_real_size_model_and_autoencoder_are_built_with_random_values():
    store = build_store(None, {"model": "1.3B"})
    model = build_model(store, None, "meta", torch.bfloat16, random_weights=True)  # shapes only, no memory
    assert model.config == CONFIGS["1.3B"] and len(model.blocks) == 30
    assert next(model.parameters()).dtype == torch.bfloat16
    vae = build_vae(build_store(None, {"model": "1.3B", "vae": "tae"}), None, "cpu", torch.float32,
                    random_weights=True)
    assert sum(p.numel() for p in vae.parameters()) > 1_000_000  # the real TAEW, not the tiny one


def test_random_prompt_embeddings_are_fixed_per_prompt_and_shaped_like_umt5():
    store = build_store(None, {"model": "1.3B"})
    conditioner = build_prompts(store, None, "cpu", torch.float32, random_weights=True)
    embedding = conditioner.embed("a neon city")
    cfg = CONFIGS["1.3B"]
    assert embedding.shape == (1, cfg.text_len, cfg.text_dim)
    assert embedding[0, RandomPromptEmbeddings.TOKENS:].abs().sum() == 0 and embedding[0, 0].abs().sum() > 0
    again = RandomPromptEmbeddings(cfg.text_len, cfg.text_dim)
    assert torch.equal(again.get("a neon city"), embedding[0]) and not torch.equal(again.get("a forest"),
                                                                                     embedding[0])
