"""The paper's GMM head baseline: a mixture of K Gaussians evaluated at the bin centres.

The means come from ``tanh(Linear(h))`` (so they stay inside ``[-1, 1]``); the standard
deviations are K free parameters shared by every input (softplus, initialised to ``2 / m``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperlab.fourier_head.fourier import LOG_EPS, _check_count, _check_features, bin_centers


def gmm_logits(means: Tensor, stds: Tensor, centers: Tensor, weights: Tensor | None = None
               ) -> Tensor:
    """``log(mixture density at the bin centres + eps)``, logits for cross-entropy.

    Args:
        means: ``(..., K)`` component means in ``[-1, 1]``.
        stds: ``(K,)`` or broadcastable to ``means``: component standard deviations (> 0).
        centers: ``(m,)`` bin centres.
        weights: optional ``(K,)``/broadcastable mixture weights summing to 1 (default uniform).

    Returns:
        ``(..., m)`` logits (the reference leaves the mixture unnormalised over bins; softmax
        normalises it).
    """
    stds = stds.expand_as(means)
    diff = centers - means[..., None]  # (..., K, m)
    density = torch.exp(-diff**2 / (2 * stds[..., None] ** 2)) / (stds[..., None]
                                                                  * math.sqrt(2 * math.pi))
    if weights is None:
        mixture = density.mean(-2)
    else:
        mixture = (weights.expand_as(means)[..., None] * density).sum(-2)
    return torch.log(mixture + LOG_EPS)


def inverse_softplus(y: float) -> float:
    """The ``x`` with ``softplus(x) = y`` (for initialising a softplus-parametrised scale)."""
    return math.log(math.expm1(y))


class GMMHead(nn.Module):
    """Gaussian-mixture classification head over ``num_bins`` equal bins on ``[-1, 1]``.

    Args:
        dim_in: feature size.
        num_bins: number of bins ``m`` (>= 2).
        num_gaussians: mixture size ``K`` (>= 1).

    ``forward(h)``: ``(..., dim_in)`` -> logits ``(..., num_bins)`` for cross-entropy.
    """

    def __init__(self, dim_in: int, num_bins: int, num_gaussians: int):
        super().__init__()
        _check_count("dim_in", dim_in, 1)
        _check_count("num_bins", num_bins, 2)
        _check_count("num_gaussians", num_gaussians, 1)
        self.dim_in = dim_in
        self.mean_layer = nn.Linear(dim_in, num_gaussians)
        self.raw_stds = nn.Parameter(torch.full((num_gaussians,),
                                                inverse_softplus(2.0 / num_bins)))
        self.register_buffer("centers", bin_centers(num_bins))

    def forward(self, h: Tensor) -> Tensor:
        _check_features(h, self.dim_in)
        means = torch.tanh(self.mean_layer(h))
        return gmm_logits(means, F.softplus(self.raw_stds), self.centers)
