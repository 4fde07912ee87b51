"""The merging tests use the vision substrate's small ViTs (tests/vision/conftest.py) and the text
substrate's MiniLM tokenizer (tests/text/conftest.py)."""

from tests.text.conftest import tokenizer  # noqa: F401  (a pytest fixture)
from tests.vision.conftest import timm_vit_224, tiny_vit  # noqa: F401  (pytest fixtures)
