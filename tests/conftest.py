"""One torch thread for every test: the tests use small tensors, and on a shared 2-core
machine extra threads only spin (suites ran several times more CPU with the default)."""

from __future__ import annotations

import pytest

from paperlab.core.seed import torch_threads


@pytest.fixture(autouse=True)
def _one_torch_thread():
    with torch_threads(1):
        yield
