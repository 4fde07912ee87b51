"""Classification losses on logits, all with one signature ``loss(logits, targets) -> Tensor``.

The *spherical family* (Vincent et al., 2015) are losses that depend on the output
pre-activations ``o`` (shape ``(N, D)``) only through three numbers per example:

    s = sum_k o_k,     q = sum_k o_k**2,     o_c (the target's logit),

plus the constant ``D``. Each spherical loss below is written ONCE as a function of these
statistics (``SphericalLoss.from_stats``); the logits versions compute the statistics and
call it, and :class:`~paperlab.zloss.factored.SphericalOutputLayer` computes the same
statistics in O(d^2) from its factored weights. The log-softmax needs every logit
(its normaliser is ``logsumexp``), so it is only available on logits.

The losses (per example, ``c`` the target):

* Z-loss (de Brebisson & Vincent, 2016): ``z_c = (o_c - mu) / sigma`` with ``mu = s/D``,
  ``sigma**2 = q/D - mu**2``; ``L = softplus(a (b - z_c)) / a``. Shift and scale invariant.
* spherical softmax: ``p_c = (o_c**2 + eps) / (q + D eps)``, ``L = -log p_c``.
* Taylor softmax (2nd order): ``p_c = (1 + o_c + o_c**2/2) / (D + s + q/2)``, ``L = -log p_c``.
* MSE against the one-hot target: ``L = ||o - e_c||**2 = q - 2 o_c + 1``.
* log-softmax cross-entropy: ``L = logsumexp(o) - o_c``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral

import torch
import torch.nn.functional as F
from torch import Tensor

REDUCTIONS = ("mean", "sum", "none")

# Floor for the Z-loss variance: all-equal logits (sigma = 0, e.g. a zero-initialised
# layer) give z_c = 0 instead of 0/0. Relative to the scale of the logits it is negligible,
# so shift/scale invariance holds to float precision for any non-degenerate logits.
VARIANCE_FLOOR = 1e-12


def check_logits_targets(logits: Tensor, targets: Tensor) -> None:
    """Raise ``ValueError`` unless ``logits`` is finite ``(N, D)`` float and ``targets`` ``(N,)``
    integer class indices in ``[0, D)``."""
    if not isinstance(logits, Tensor) or not isinstance(targets, Tensor):
        raise TypeError("logits and targets must be torch tensors")
    if logits.dim() != 2:
        raise ValueError(f"logits must have shape (N, D), got {tuple(logits.shape)}")
    if not logits.is_floating_point():
        raise ValueError(f"logits must be a float tensor, got {logits.dtype}")
    n, num_classes = logits.shape
    if n == 0 or num_classes < 2:
        raise ValueError(f"need at least one example and two classes, got shape {(n, num_classes)}")
    check_targets(targets, n, num_classes)
    if not torch.isfinite(logits).all():
        raise ValueError("logits contain NaN or infinite values")


def check_targets(targets: Tensor, n: int, num_classes: int) -> None:
    """Raise ``ValueError`` unless ``targets`` is ``(n,)`` integers in ``[0, num_classes)``."""
    if not isinstance(targets, Tensor):
        raise TypeError(f"targets must be a torch tensor, got {type(targets).__name__}")
    if targets.dim() != 1 or targets.shape[0] != n:
        raise ValueError(f"targets must have shape ({n},), got {tuple(targets.shape)}")
    if targets.is_floating_point() or targets.dtype == torch.bool:
        raise ValueError(f"targets must be integer class indices, got {targets.dtype}")
    lo, hi = int(targets.min()), int(targets.max())
    if lo < 0 or hi >= num_classes:
        raise ValueError(f"targets must lie in [0, {num_classes}), got values in [{lo}, {hi}]")


def check_features(h: Tensor, dim: int) -> None:
    """Raise ``TypeError``/``ValueError`` unless ``h`` is a finite ``(m, dim)`` tensor, m >= 1."""
    if not isinstance(h, Tensor):
        raise TypeError(f"h must be a torch tensor, got {type(h).__name__}")
    if h.dim() != 2 or h.shape[1] != dim:
        raise ValueError(f"h must have shape (m, {dim}), got {tuple(h.shape)}")
    if h.shape[0] == 0:
        raise ValueError("h is empty (m = 0)")
    if not torch.isfinite(h).all():
        raise ValueError("h contains NaN or infinite values")


def check_k(k: int, num_classes: int) -> None:
    """Raise ``ValueError`` unless ``1 <= k <= num_classes`` (how many classes top-k returns)."""
    if not isinstance(k, Integral) or not 1 <= k <= num_classes:
        raise ValueError(f"k must be an integer in [1, {num_classes}], got {k!r}")


def check_layer_size(dim: int, num_classes: int, lr: float) -> None:
    """Raise ``ValueError`` unless ``dim >= 1``, ``num_classes >= 2`` (integers) and ``lr > 0``."""
    if not all(isinstance(v, Integral) and not isinstance(v, bool) for v in (dim, num_classes)) \
            or dim < 1 or num_classes < 2:
        raise ValueError(f"need integers dim >= 1 and num_classes >= 2, got {dim!r}, "
                         f"{num_classes!r}")
    if not lr > 0 or not math.isfinite(lr):
        raise ValueError(f"lr must be a positive finite number, got {lr}")


def _reduce(per_example: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return per_example.mean()
    if reduction == "sum":
        return per_example.sum()
    if reduction == "none":
        return per_example
    raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def logit_stats(logits: Tensor, targets: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(s, q, o_c)`` of each row: sum, sum of squares, target logit; each shape ``(N,)``."""
    o_c = logits.gather(1, targets[:, None]).squeeze(1)
    return logits.sum(1), logits.square().sum(1), o_c


@dataclass(frozen=True)
class SphericalLoss:
    """A loss of the spherical family, given by its formula on ``(s, q, o_c, D)``.

    Attributes:
        name: short name (``"z"``, ``"spherical_softmax"``, ``"taylor_softmax"``, ``"mse"``).
        per_example: ``f(s, q, o_c, D) -> loss`` on ``(N,)`` tensors (differentiable).
        rank_score: monotone transform of the logits whose order is the model's ranking
            of classes (the logits themselves, or ``o**2`` for the spherical softmax).
        log_prob: ``f(s, q, o_c, D) -> log p_c`` when the loss defines a distribution
            (for perplexity), else ``None``.
    """

    name: str
    per_example: Callable[[Tensor, Tensor, Tensor, int], Tensor]
    rank_score: Callable[[Tensor], Tensor]
    log_prob: Callable[[Tensor, Tensor, Tensor, int], Tensor] | None = None

    def from_stats(self, s: Tensor, q: Tensor, o_c: Tensor, num_classes: int,
                   reduction: str = "mean") -> Tensor:
        """The loss from the statistics ``s, q, o_c`` (each ``(N,)``) of ``num_classes`` logits."""
        return _reduce(self.per_example(s, q, o_c, num_classes), reduction)

    def __call__(self, logits: Tensor, targets: Tensor, reduction: str = "mean") -> Tensor:
        """The loss of ``logits`` ``(N, D)`` for ``targets`` ``(N,)`` (inputs are validated)."""
        check_logits_targets(logits, targets)
        return self.from_stats(*logit_stats(logits, targets), logits.shape[1], reduction)


def z_statistic(s: Tensor, q: Tensor, o_c: Tensor, num_classes: int) -> Tensor:
    """``z_c = (o_c - mu) / sigma``: the target logit standardised over the D logits."""
    mu = s / num_classes
    var = (q / num_classes - mu.square()).clamp_min(0.0) + VARIANCE_FLOOR
    return (o_c - mu) / var.sqrt()


def z_loss(a: float = 1.0, b: float = 10.0) -> SphericalLoss:
    """The Z-loss ``softplus(a (b - z_c)) / a``.

    ``b`` is the standardised score beyond which the target no longer needs pushing up
    (a margin in units of the logits' standard deviation); ``a`` sets how sharp the hinge
    is (``a -> inf`` gives ``max(0, b - z_c)``). The paper tunes both for top-k.
    """
    if not (a > 0 and math.isfinite(a) and math.isfinite(b)):
        raise ValueError(f"Z-loss needs a > 0 and finite a, b; got a={a}, b={b}")

    def per_example(s: Tensor, q: Tensor, o_c: Tensor, num_classes: int) -> Tensor:
        return F.softplus(a * (b - z_statistic(s, q, o_c, num_classes))) / a

    return SphericalLoss(f"z(a={a:g},b={b:g})", per_example, rank_score=lambda o: o)


def spherical_softmax(eps: float = 1e-3) -> SphericalLoss:
    """Spherical softmax ``-log((o_c**2 + eps) / (q + D eps))``; ranks classes by ``o**2``."""
    if not eps > 0:
        raise ValueError(f"spherical softmax needs eps > 0, got {eps}")

    def log_prob(s: Tensor, q: Tensor, o_c: Tensor, num_classes: int) -> Tensor:
        return torch.log(o_c.square() + eps) - torch.log(q + num_classes * eps)

    return SphericalLoss("spherical_softmax", lambda *stats: -log_prob(*stats),
                         rank_score=torch.square, log_prob=log_prob)


def _taylor_log_prob(s: Tensor, q: Tensor, o_c: Tensor, num_classes: int) -> Tensor:
    # 1 + o + o^2/2 = ((o + 1)^2 + 1) / 2 > 0, so both logs are defined for any logits.
    return torch.log(1 + o_c + o_c.square() / 2) - torch.log(num_classes + s + q / 2)


def taylor_softmax() -> SphericalLoss:
    """Second-order Taylor softmax; ranks classes by ``(o + 1)**2``, i.e. by ``1 + o + o**2/2``."""
    return SphericalLoss("taylor_softmax", lambda *stats: -_taylor_log_prob(*stats),
                         rank_score=lambda o: 1 + o + o.square() / 2, log_prob=_taylor_log_prob)


def mse() -> SphericalLoss:
    """Squared error against the one-hot target, ``q - 2 o_c + 1``."""
    return SphericalLoss("mse", lambda s, q, o_c, num_classes: q - 2 * o_c + 1,
                         rank_score=lambda o: o)


def log_softmax_loss(logits: Tensor, targets: Tensor, reduction: str = "mean") -> Tensor:
    """Cross-entropy of the softmax, ``logsumexp(o) - o_c`` (not spherical: needs every logit)."""
    check_logits_targets(logits, targets)
    return _reduce(torch.logsumexp(logits, 1) - logits.gather(1, targets[:, None]).squeeze(1),
                   reduction)


def make_loss(name: str, **params: float) -> SphericalLoss:
    """A spherical loss by name: ``"z"`` (``a``, ``b``), ``"spherical_softmax"`` (``eps``),
    ``"taylor_softmax"``, ``"mse"``."""
    makers: dict[str, Callable[..., SphericalLoss]] = {
        "z": z_loss, "spherical_softmax": spherical_softmax,
        "taylor_softmax": taylor_softmax, "mse": mse,
    }
    if name not in makers:
        raise ValueError(f"unknown spherical loss {name!r}; choose one of {sorted(makers)}")
    return makers[name](**params)
