"""Small timm ViTs shared by the vision tests (built with pretrained=False: offline)."""

from __future__ import annotations

import pytest
import torch

from paperlab.vision.models import ViTSpec

TINY = ViTSpec(dim=48, depth=4, heads=3, drop_path=0.0)


@pytest.fixture
def tiny_vit():
    torch.manual_seed(0)
    return TINY.build().eval()


@pytest.fixture(scope="session")
def timm_vit_224():
    """A ViT-Ti/16 at 224x224 as timm builds it (197 tokens), random weights, eval mode."""
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    return timm.create_model("vit_tiny_patch16_224", pretrained=False).eval()
