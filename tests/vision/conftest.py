"""Fixtures shared by the vision tests and the vision systems' tests: small timm ViTs (built with
pretrained=False: offline) and a run context over the staged CIFAR-10 JPEGs."""

from __future__ import annotations

import pytest
import torch

from paperlab.core.data import DataNotFoundError
from paperlab.core.results import RunContext
from paperlab.vision.data import cifar10_dir
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


@pytest.fixture
def cifar_run_context(tmp_path, monkeypatch):
    """``make(system)`` -> a quick-size ``RunContext`` writing under ``tmp_path``, with a cache of
    its own (no checkpoint from elsewhere is reused); skips when the CIFAR-10 JPEGs are not
    staged under the data root."""
    try:
        cifar10_dir("train"), cifar10_dir("test")
    except DataNotFoundError:
        pytest.skip("CIFAR-10 JPEGs not staged under the data root")
    monkeypatch.setenv("PAPERLAB_CACHE", str(tmp_path / "cache"))
    return lambda system: RunContext(system=system, quick=True, out_dir=tmp_path / "out")
