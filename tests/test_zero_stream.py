"""The inactive stream's zero chunks come from a memo, and the contexts stay exactly those of
encoding every chunk, across masks appearing, leaving and hard cuts, for both autoencoders."""

from __future__ import annotations

import pytest
import torch

from vacelive.engine.vace.context import VaceContextEncoder
from vacelive.engine.vae import make_autoencoder


class PlainEncoder(VaceContextEncoder):
    """The same context encoder with the memo switched off: every chunk encoded."""

    def _encode_inactive(self, inactive):
        return self.vae.encode(inactive, self.inactive_cache)


@pytest.mark.parametrize("kind", ["tae", "wan"])
def test_memo_gives_exactly_the_encoded_contexts(kind):
    vae = make_autoencoder(kind, None, config="tiny")
    gen = torch.Generator().manual_seed(0)
    memo, plain = VaceContextEncoder(vae), PlainEncoder(vae)
    none = torch.ones(1, 12, 32, 32)
    box = none.clone()
    box[:, :, 8:24, 8:24] = 0  # keep a square: the inactive stream gets real frames
    encoded = []
    for step, mask in enumerate([none, none, none, none, box, box, none, "cut", none, none, box]):
        if isinstance(mask, str):
            memo.reset()
            plain.reset()
            continue
        frames = torch.rand(1, 3, 12, 32, 32, generator=gen) * 2 - 1
        a, b = memo.encode(frames, mask), plain.encode(frames, mask)
        assert torch.equal(a, b), f"chunk {step}"
        encoded.append(a)
    assert len(memo.zero_memo.latents) <= 6  # looked for a fixed point, at most MAX_CHUNKS chunks
    calls = []
    original = vae.encode
    vae.encode = lambda frames, cache: calls.append(1) or original(frames, cache)
    memo.reset()
    memo.encode(torch.rand(1, 3, 12, 32, 32, generator=gen) * 2 - 1, none)
    assert len(calls) == 1  # only the control was encoded
