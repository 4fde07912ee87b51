"""PiToMe's tests use the substrates' fixtures: small ViTs and the CIFAR-10 run context
(tests/vision/conftest.py), MiniLM's tokenizer and the SST-2 run context
(tests/text/conftest.py)."""

from tests.text.conftest import sst2_run_context, tokenizer  # noqa: F401  (pytest fixtures)
from tests.vision.conftest import (  # noqa: F401  (pytest fixtures)
    cifar_run_context,
    timm_vit_224,
    tiny_vit,
)
