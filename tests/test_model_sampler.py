"""Few-step flow-matching schedule and per-chunk reproducible noise."""

import pytest
import torch

from vacelive.engine.sampler import (
    DENOISING_STEPS,
    add_noise,
    chunk_rng,
    draw_noise,
    select_steps,
    timesteps_for,
    warp_timesteps,
    x0_from_flow,
)


def test_warped_timesteps_match_the_shift_formula_by_hand():
    # s -> 5s / (1 + 4s): 1 -> 1, 0.75 -> 3.75/4, 0.5 -> 2.5/3, 0.25 -> 1.25/2
    got = warp_timesteps(DENOISING_STEPS, shift=5.0)
    assert got == pytest.approx([1000.0, 937.5, 2500.0 / 3.0, 625.0])
    assert warp_timesteps([0]) == [0.0]
    assert warp_timesteps([500], shift=1.0) == pytest.approx([500.0])  # no shift = identity


@pytest.mark.parametrize(
    "n,want",
    [(1, [1000]), (2, [1000, 250]), (3, [1000, 500, 250]), (4, [1000, 750, 500, 250])],
)
def test_step_subsets(n, want):
    assert select_steps(n) == want
    assert len(timesteps_for(n)) == n and timesteps_for(n)[0] == 1000.0


def test_step_count_out_of_range():
    for n in (0, 5):
        with pytest.raises(ValueError):
            select_steps(n)


def test_noise_is_a_function_of_seed_and_chunk():
    shape = (1, 16, 3, 4, 4)
    a = draw_noise(chunk_rng(7, 3), shape)
    assert torch.equal(a, draw_noise(chunk_rng(7, 3), shape))
    assert not torch.equal(a, draw_noise(chunk_rng(7, 4), shape))
    assert not torch.equal(a, draw_noise(chunk_rng(8, 3), shape))
    assert a.dtype == torch.float32 and 0.7 < a.std() < 1.3
    # the generator lives on the CPU whatever the target device
    assert chunk_rng(7, 3).device.type == "cpu"


def test_renoise_and_x0_are_consistent():
    x0, noise = torch.randn(2, 5), torch.randn(2, 5)
    for t in (1000.0, 937.5, 625.0, 10.0):
        xt = add_noise(x0, noise, t)
        torch.testing.assert_close(x0_from_flow(xt, noise - x0, t), x0)
    torch.testing.assert_close(add_noise(x0, noise, 1000.0), noise)
    torch.testing.assert_close(add_noise(x0, noise, 0.0), x0)
