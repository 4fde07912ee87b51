"""A tiny decoder-only transformer that forecasts a univariate series over quantised bins.

A small CPU stand-in for the paper's Chronos experiment: as in Chronos, each window is scaled
by statistics of its own context, the scaled values are quantised into ``m`` bins, and a causal
transformer predicts the next bin with either a linear head or a Fourier head.

Scaling: ``s = (v - mean_context) / std_context``, clipped to ``[-clip, clip]`` and mapped
to ``[-1, 1]``; bin ``b``'s centre maps back to ``mean + std * clip * centre_b``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from paperlab.fourier_head.fourier import FourierHead, bin_centers


@dataclass
class Windows:
    """Scaled, quantised windows of one or more series.

    Attributes:
        tokens: ``(n, context + 1)`` bin indices; position ``t`` predicts ``t + 1``.
        target: ``(n,)`` the raw value after the context (the forecast target).
        mean, std: ``(n,)`` the context statistics used to scale each window.
        scale: ``(n,)`` the series' mean absolute one-step change on its training part (the
            MASE denominator), so scores of different series can be averaged.
        series: ``(n,)`` index of the series each window comes from.
    """

    tokens: np.ndarray
    target: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    scale: np.ndarray
    series: np.ndarray


def make_windows(values: np.ndarray, context: int, num_bins: int, clip: float, start: int,
                 stop: int, scale: float, series: int = 0) -> Windows:
    """All windows of one series whose target index lies in ``[start, stop)``.

    Args:
        values: ``(T,)`` finite raw values.
        context: number of past values the model sees.
        num_bins, clip: quantisation (see module docstring).
        start, stop: range of target indices (``start >= context``).
        scale: the series' MASE denominator (see :class:`Windows`).
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or not np.isfinite(values).all():
        raise ValueError("values must be a 1-D finite series")
    if start < context or stop > len(values) or start >= stop:
        raise ValueError(f"need context <= start < stop <= len(values); got context={context}, "
                         f"start={start}, stop={stop}, len={len(values)}")
    targets = np.arange(start, stop)
    full = np.stack([values[i - context:i + 1] for i in targets])  # (n, context + 1)
    mean = full[:, :-1].mean(1)
    std = full[:, :-1].std(1) + 1e-8 * (1 + np.abs(mean))  # a flat context must not divide by 0
    unit = np.clip((full - mean[:, None]) / std[:, None], -clip, clip) / clip
    edges = np.linspace(-1, 1, num_bins + 1)
    tokens = np.clip(np.digitize(unit, edges) - 1, 0, num_bins - 1)
    n = len(targets)
    return Windows(tokens, full[:, -1], mean, std, np.full(n, scale), np.full(n, series))


def concat(parts: list[Windows]) -> Windows:
    """Stack windows of several series."""
    return Windows(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                     ("tokens", "target", "mean", "std", "scale", "series")))


def support(w: Windows, num_bins: int, clip: float) -> np.ndarray:
    """Raw value of every bin centre for every window: ``(n, num_bins)``."""
    centers = bin_centers(num_bins).double().numpy()
    return w.mean[:, None] + w.std[:, None] * clip * centers[None, :]


class TinyForecaster(nn.Module):
    """Causal transformer over bin tokens with a swappable output head.

    Args:
        num_bins: vocabulary size ``m``.
        context: longest input length.
        head: ``"linear"`` or ``"fourier"``.
        num_frequencies, regularization_gamma: the Fourier head's N and gamma.
        d_model, layers, heads: transformer size.

    ``forward(tokens (B, T))`` -> logits ``(B, T, m)`` (a log-pmf for the Fourier head).
    """

    def __init__(self, num_bins: int, context: int, head: str = "linear",
                 num_frequencies: int = 16, regularization_gamma: float = 1e-6,
                 d_model: int = 32, layers: int = 2, heads: int = 4):
        super().__init__()
        self.embed = nn.Embedding(num_bins, d_model)
        self.position = nn.Parameter(torch.randn(context, d_model) * 0.02)
        block = nn.TransformerEncoderLayer(d_model, heads, 4 * d_model, dropout=0.0,
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        if head == "linear":
            self.head: nn.Module = nn.Linear(d_model, num_bins)
        elif head == "fourier":
            self.head = FourierHead(d_model, num_bins, num_frequencies, regularization_gamma)
        else:
            raise ValueError(f"head must be 'linear' or 'fourier', got {head!r}")

    def forward(self, tokens: Tensor) -> Tensor:
        length = tokens.shape[1]
        if length > self.position.shape[0]:
            raise ValueError(f"sequence of {length} tokens exceeds the context "
                             f"{self.position.shape[0]}")
        h = self.embed(tokens) + self.position[:length]
        mask = nn.Transformer.generate_square_subsequent_mask(length, device=tokens.device)
        h = self.blocks(h, mask=mask, is_causal=True)
        return self.head(self.norm(h))

    def regularization_loss(self) -> Tensor:
        """The Fourier head's regulariser of the last forward pass (0 for a linear head)."""
        if isinstance(self.head, FourierHead):
            return self.head.regularization_loss()
        return torch.zeros(())
