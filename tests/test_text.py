"""Text conditioning tests with the tiny random umT5 config."""

import pytest
import torch

from vacelive.engine.text import (
    T5_WEIGHTS,
    PromptCache,
    PromptConditioner,
    UMT5Encoder,
    lerp,
    make_text_encoder,
    parse_prompt_spec,
    prompts_encode,
    slerp_tokens,
)


class CountingEncoder:
    """Wraps a TextEncoder and counts the prompts it encodes."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []
        self.encoder_id, self.text_len, self.dim = inner.encoder_id, inner.text_len, inner.dim

    def __call__(self, prompts):
        self.calls.extend(prompts)
        return self.inner(prompts)


@pytest.fixture(scope="module")
def encoder():
    return make_text_encoder("tiny", dtype=torch.float32)


def test_tiny_encoder_output_shape_and_zero_padding(encoder):
    out = encoder(["a forest", "x" * 40])
    assert out.shape == (2, 16, 32)
    assert (out[0, :9] != 0).any(-1).all()  # 8 bytes + EOS
    assert (out[0, 9:] == 0).all()
    assert (out[1] != 0).any(-1).all()  # truncated to 16 tokens, EOS last


def test_cache_hit_does_not_call_encoder(encoder, tmp_path):
    counting = CountingEncoder(encoder)
    cache = PromptCache(tmp_path, counting)
    first = cache.get("a forest")
    assert counting.calls == ["a forest"]
    again = PromptCache(tmp_path, counting).get("a forest")
    assert counting.calls == ["a forest"]
    torch.testing.assert_close(again, first)
    assert again.shape == (16, 32)
    cache.get("neon city")
    assert counting.calls == ["a forest", "neon city"]


def test_cache_only_run_and_clear_error_for_uncached(encoder, tmp_path):
    PromptCache(tmp_path, encoder).get("a forest")
    offline = PromptCache(tmp_path)  # no encoder
    torch.testing.assert_close(offline.get("a forest"), encoder(["a forest"])[0])
    conditioner = PromptConditioner(offline)
    assert conditioner.embed("a forest").shape == (1, 16, 32)
    with pytest.raises(KeyError, match="neon city"):
        conditioner.embed("neon city")


def test_prompts_encode_file(tmp_path):
    show = tmp_path / "show.txt"
    show.write_text("a forest\n\nneon city:0.3|a forest:0.7\nrain\n", encoding="utf-8")
    assert prompts_encode(str(show), str(tmp_path / "weights"), str(tmp_path / "cache"), config="tiny") == 3
    assert prompts_encode(str(show), str(tmp_path / "weights"), str(tmp_path / "cache"), config="tiny") == 0
    assert "rain" in PromptCache(tmp_path / "cache")


def test_weighted_list_parsing():
    assert parse_prompt_spec("a forest:0.7|neon city:0.3") == [("a forest", 0.7), ("neon city", 0.3)]
    assert parse_prompt_spec("a forest") == [("a forest", 1.0)]
    assert parse_prompt_spec("x:1|y:3") == [("x", 0.25), ("y", 0.75)]
    assert parse_prompt_spec("sign: OPEN | z") == [("sign: OPEN", 0.5), ("z", 0.5)]
    with pytest.raises(ValueError):
        parse_prompt_spec("a:0|b:0")


def test_weighted_sum(encoder, tmp_path):
    conditioner = PromptConditioner(PromptCache(tmp_path, encoder))
    a, b = encoder(["a forest"])[0], encoder(["neon city"])[0]
    torch.testing.assert_close(conditioner.embed("a forest:7|neon city:3")[0], 0.7 * a + 0.3 * b)


def test_transition_weights_and_identity(encoder, tmp_path):
    conditioner = PromptConditioner(PromptCache(tmp_path, encoder))
    a, b = encoder(["a forest"]), encoder(["neon city"])
    first = conditioner.embed("a forest", 4)
    assert first is conditioner.embed("a forest", 4)  # unchanged -> same object
    torch.testing.assert_close(first, a)
    steps = [conditioner.embed("neon city", 4) for _ in range(4)]
    for k, got in enumerate(steps[:3], start=1):
        torch.testing.assert_close(got, (1 - k / 4) * a + (k / 4) * b)
    torch.testing.assert_close(steps[3], b)
    assert conditioner.embed("neon city", 4) is steps[3]
    conditioner.reset()
    torch.testing.assert_close(conditioner.embed("a forest", 4), a)  # after reset: immediate


def test_slerp_transition(encoder, tmp_path):
    conditioner = PromptConditioner(PromptCache(tmp_path, encoder))
    a, b = encoder(["a forest"]), encoder(["neon city"])
    conditioner.embed("a forest")
    mid = conditioner.embed("neon city", 2, "slerp")
    torch.testing.assert_close(mid, slerp_tokens(a, b, 0.5))
    torch.testing.assert_close(conditioner.embed("neon city", 2, "slerp"), b)
    # per token: unit vectors at 90 degrees meet at 45 degrees with unit norm
    x, y = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    torch.testing.assert_close(slerp_tokens(x, y, 0.5), torch.tensor([[0.5**0.5, 0.5**0.5]]))
    zero = torch.zeros(1, 2)
    torch.testing.assert_close(slerp_tokens(zero, y, 0.25), lerp(zero, y, 0.25))


def test_strict_load_of_saved_tiny_t5(encoder, tmp_path):
    torch.save(encoder.model.state_dict(), tmp_path / T5_WEIGHTS)
    loaded = make_text_encoder("tiny", tmp_path, dtype=torch.float32)
    torch.testing.assert_close(loaded(["a forest"]), encoder(["a forest"]))
    assert loaded.encoder_id == encoder.encoder_id
    state = encoder.model.state_dict()
    state["blocks.0.attn.query.weight"] = state.pop("blocks.0.attn.q.weight")
    torch.save(state, tmp_path / T5_WEIGHTS)
    with pytest.raises(KeyError) as err:
        make_text_encoder("tiny", tmp_path, dtype=torch.float32)
    assert "blocks.0.attn.q.weight" in str(err.value) and "blocks.0.attn.query.weight" in str(err.value)


def test_real_config_key_names_and_missing_weights(tmp_path):
    with torch.device("meta"):
        keys = {k: tuple(v.shape) for k, v in UMT5Encoder().state_dict().items()}
    assert keys["token_embedding.weight"] == (256384, 4096)
    assert keys["blocks.0.attn.q.weight"] == (4096, 4096)
    assert keys["blocks.23.ffn.gate.0.weight"] == (10240, 4096)
    assert keys["blocks.23.ffn.fc2.weight"] == (4096, 10240)
    assert keys["blocks.5.pos_embedding.embedding.weight"] == (32, 64)
    assert keys["norm.weight"] == (4096,)
    assert len(keys) == 2 + 24 * 10
    with pytest.raises(FileNotFoundError, match=T5_WEIGHTS):
        make_text_encoder("real", tmp_path)


def test_umt5_tokenizer_from_local_tokenizer_json(tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    from vacelive.engine.text import UMT5Tokenizer

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, "a": 3, "forest": 4}
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tok.save(str(tmp_path / "tokenizer.json"))
    ids, mask = UMT5Tokenizer(tmp_path)(["a  &amp; forest", "a a a a a a"], 5)
    assert ids.tolist() == [[3, 2, 4, 1, 0], [3, 3, 3, 3, 1]]
    assert mask.tolist() == [[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]]
