"""Length-sorted batches and FP32 sentence embeddings (cached on disk) of the pretrained
all-MiniLM-L6-v2 encoder, which the text substrate loads (:mod:`paperlab.text.minilm`)."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import torch
from torch import nn

from paperlab.core.data import cache_dir
from paperlab.text.minilm import HIDDEN

Batches = list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def make_batches(tokenizer: object, texts: list[str], max_length: int, size: int = 64) -> Batches:
    """Length-sorted, padded batches ``(input_ids, attention_mask, original positions)``.

    Sorting by length keeps padding (wasted compute on CPU) small.
    """
    ids = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    order = np.argsort([len(t) for t in ids], kind="stable")
    batches = []
    for start in range(0, len(order), size):
        rows = order[start:start + size]
        width = max(len(ids[i]) for i in rows)
        input_ids = torch.zeros((len(rows), width), dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, i in enumerate(rows):
            input_ids[r, :len(ids[i])] = torch.tensor(ids[i])
            mask[r, :len(ids[i])] = 1
        batches.append((input_ids, mask, torch.from_numpy(rows)))
    return batches


@torch.no_grad()
def embed(encoder: nn.Module, batches: Batches) -> torch.Tensor:
    """Sentence embeddings ``(N, hidden)`` in the original order."""
    n = sum(len(b[2]) for b in batches)
    out = torch.empty((n, HIDDEN))
    for input_ids, mask, rows in batches:
        out[rows] = encoder(input_ids, mask)
    return out


def cached_fp32_embeddings(encoder: nn.Module, batches: Batches, texts: list[str], tag: str,
                           max_length: int) -> torch.Tensor:
    """FP32 embeddings of ``texts``, cached under ``~/.cache/paperlab/splitquant``."""
    key = hashlib.sha256(("\n".join(texts) + f"|{max_length}").encode()).hexdigest()[:16]
    path = cache_dir() / "splitquant" / f"minilm-{tag}-{key}.pt"
    if path.exists():
        cached = torch.load(path, weights_only=True)
        if isinstance(cached, torch.Tensor) and cached.shape == (len(texts), HIDDEN):
            return cached
    emb = embed(encoder, batches)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(emb, tmp)
    os.replace(tmp, path)
    return emb
