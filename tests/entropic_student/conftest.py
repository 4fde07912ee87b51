"""A tiny untrained Entropic Student shared by the tests (random weights, tables frozen)."""

from __future__ import annotations

import pytest
import torch

from paperlab.core.seed import torch_threads
from tests.vision.conftest import cifar_run_context  # noqa: F401  (a pytest fixture)


@pytest.fixture(scope="session")
def student():
    from paperlab.entropic_student.model import EntropicStudent
    from paperlab.vision.train import QUICK_CIFAR_TEACHER

    with torch_threads(1):
        torch.manual_seed(0)
        model = EntropicStudent(QUICK_CIFAR_TEACHER.build(), b=8).eval()
        model.bottleneck.update()
    return model


@pytest.fixture
def images():
    gen = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8, generator=gen)
