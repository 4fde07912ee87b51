"""Training the heads and CNNs the reproduction quantises, and the variants it scores: FP32,
fake-quantised, or split-quantised-and-merged."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from paperlab.core.progress import track
from paperlab.splitquant.models import SmallCNN, mlp_head
from paperlab.splitquant.quantize import quantize_model
from paperlab.splitquant.split import merge_split_layers
from paperlab.text.minilm import HIDDEN


def train_head(x: torch.Tensor, y: torch.Tensor, n_classes: int, epochs: int,
               seed: int) -> nn.Module:
    """MLP head on fixed embeddings: full-batch Adam with class-balanced cross-entropy."""
    torch.manual_seed(seed)
    head = mlp_head(HIDDEN, n_classes)
    counts = torch.bincount(y, minlength=n_classes).clamp(min=1).float()
    weights = counts.sum() / (n_classes * counts)
    opt = torch.optim.Adam(head.parameters(), lr=3e-3, weight_decay=1e-4)
    for _ in range(epochs):
        opt.zero_grad()
        F.cross_entropy(head(x), y, weight=weights).backward()
        opt.step()
    return head.eval()


def train_cnn(x: torch.Tensor, y: torch.Tensor, width: int, epochs: int, seed: int) -> nn.Module:
    """SmallCNN(``width``) with Adam, one-cycle learning rate and random horizontal flips for
    ``epochs`` epochs of batches of 128; ``x`` is normalised float ``(N, 3, 32, 32)``."""
    torch.manual_seed(seed)
    model = SmallCNN(width)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    steps = epochs * ((len(x) + 127) // 128)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in track(range(epochs), f"CNN seed {seed}", epochs):
        for idx in torch.randperm(len(x), generator=gen).split(128):
            xb = x[idx]
            flip = torch.rand(len(idx), generator=gen) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(-1), xb)
            opt.zero_grad()
            F.cross_entropy(model(xb), y[idx]).backward()
            opt.step()
            sched.step()
    return model.eval()


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``model``'s logits on ``x`` in batches of 500."""
    return torch.cat([model(xb) for xb in x.split(500)])


def variant(model: nn.Module, bits: int | None, split: nn.Module | None = None,
            keep_zeros: bool = False) -> nn.Module:
    """FP32 ``model`` (``bits=None``), or it fake-quantised; with ``split`` (``split_model(model)``)
    the split copies are quantised and returned merged (the same function, one layer each).
    """
    if bits is None:
        return model
    if split is None:
        return quantize_model(model, bits)
    return merge_split_layers(quantize_model(split, bits, keep_zeros=keep_zeros), inplace=True)


def method_name(bits: int | None, split: bool) -> str:
    """``"fp32"``, ``"int2"``, ``"int2+splitquant"``, ...: the rows' method names."""
    return "fp32" if bits is None else f"int{bits}" + ("+splitquant" if split else "")


def relative_weight_error(model: nn.Module, quantised: nn.Module) -> float:
    """``sum ||W_hat - W||^2 / sum ||W||^2`` over the Linear/Conv layers (same structure)."""
    num = den = 0.0
    for a, b in zip(model.modules(), quantised.modules(), strict=True):
        if isinstance(a, (nn.Linear, nn.Conv2d)):
            num += float((b.weight.detach() - a.weight.detach()).pow(2).sum())
            den += float(a.weight.detach().pow(2).sum())
    return num / den
