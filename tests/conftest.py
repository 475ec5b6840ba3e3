"""Shared test set-up."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One torch thread per test: steadier timing on small CI machines, same results."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
