"""Tiny timm ViTs for the DiffRate tests (random weights, pretrained=False: offline)."""

from __future__ import annotations

import pytest
import torch

from paperlab.vision.models import ViTSpec
from tests.text.conftest import sst2_run_context, tokenizer  # noqa: F401  (pytest fixtures)
from tests.vision.conftest import cifar_run_context  # noqa: F401  (a pytest fixture)

TINY = ViTSpec(dim=32, depth=4, heads=2, drop_path=0.0)


@pytest.fixture
def tiny_vit():
    torch.manual_seed(0)
    return TINY.build().eval()


@pytest.fixture
def images():
    return torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
