"""The merging tests use the vision substrate's small ViTs (tests/vision/conftest.py)."""

from tests.vision.conftest import timm_vit_224, tiny_vit  # noqa: F401  (pytest fixtures)
