"""The reproduction's models: a MiniLM sentence encoder with an MLP head, and a small CNN."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SentenceEncoder(nn.Module):
    """A BERT encoder followed by masked mean pooling and L2 normalisation, as in
    sentence-transformers' all-MiniLM-L6-v2 pipeline.

    ``forward(input_ids, attention_mask)`` takes ``(batch, tokens)`` integer tensors and returns
    unit-length sentence embeddings ``(batch, hidden)``.
    """

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        tokens = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
        pooled = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return F.normalize(pooled, dim=-1)


def mlp_head(hidden: int, n_classes: int, head_hidden: int = 256) -> nn.Sequential:
    """The classifier head on sentence embeddings: ``(batch, hidden) -> (batch, n_classes)``."""
    return nn.Sequential(nn.Linear(hidden, head_hidden), nn.ReLU(),
                         nn.Linear(head_hidden, n_classes))


class SmallCNN(nn.Module):
    """Three 3x3 conv blocks (conv, ReLU, 2x2 max-pool) and a two-layer classifier for 32x32 RGB.

    ``forward`` maps ``(batch, 3, 32, 32)`` images to ``(batch, n_classes)`` logits.
    """

    def __init__(self, width: int = 16, n_classes: int = 10) -> None:
        super().__init__()
        chans = (3, width, 2 * width, 4 * width)
        blocks = []
        for c_in, c_out in zip(chans[:-1], chans[1:], strict=True):
            blocks += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(chans[-1] * 16, 128), nn.ReLU(),
                                        nn.Linear(128, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
