"""One torch thread for these tests: the models are tiny, and on a shared CPU extra threads
only spin (the suite ran ~7x more CPU with the default thread count)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
