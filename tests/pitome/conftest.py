"""PiToMe's tests use the vision substrate's fixtures (tests/vision/conftest.py): small ViTs and
the CIFAR-10 run context."""

from tests.vision.conftest import (  # noqa: F401  (pytest fixtures)
    cifar_run_context,
    timm_vit_224,
    tiny_vit,
)
