"""One torch thread for these small-tensor tests: on a loaded shared machine, tiny ops that
wait on a descheduled second thread run orders of magnitude slower."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
