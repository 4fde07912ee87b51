"""Which levels of an HSBM each algorithm can recover exactly (Chernoff-Hellinger).

For a complete ``k``-ary tree of depth ``d`` with ``K = k^d`` equal communities and
``p_t = a_t log N / N``, two leaf communities whose LCA sits at depth ``t`` are separable
exactly iff their Chernoff-Hellinger divergence exceeds 1; by symmetry the optimum is at
``lambda = 1/2`` (Hellinger):

    CH_t = (1/K) [ (sqrt a_d - sqrt a_t)^2
                   + sum_{s=t+1}^{d-1} (k-1) k^{d-s-1} (sqrt a_s - sqrt a_t)^2 ]

Bottom-up recovers level ``l`` iff ``min_{t<l} CH_t > 1`` (the paper's theorem: the
information-theoretic threshold). A top-down split at depth ``t`` sees only the averaged
two-level picture, a within-child density ``abar_t`` against ``a_t`` among ``k^{t+1}``
equal groups: ``TD_t = (sqrt abar_t - sqrt a_t)^2 / k^{t+1}``, and top-down recovers level
``l`` iff ``min_{t<l} TD_t > 1``. (For ``k = 2`` this is the spec's formula.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Thresholds:
    """Per-depth divergences and the levels they make recoverable.

    Attributes:
        bottom_up: ``(d,)`` ``CH_t`` for ``t = 0..d-1``.
        top_down: ``(d,)`` ``TD_t`` for ``t = 0..d-1``.
        increasing: ``(d,)`` whether ``a_{l-1} < a_l`` for ``l = 1..d``.
    """

    bottom_up: np.ndarray
    top_down: np.ndarray
    increasing: np.ndarray

    def recoverable(self, algorithm: str) -> np.ndarray:
        """``(d,)`` bools: level ``l = 1..d`` exactly recoverable by ``"bottom_up"`` or
        ``"top_down"``. Level ``l`` also needs ``a_{l-1} < a_l``: with ``a_{l-1} = a_l`` its
        groups are indistinguishable from their parent's, so no cut recovers them."""
        if algorithm not in ("bottom_up", "top_down"):
            raise ValueError(f"algorithm must be 'bottom_up' or 'top_down', got {algorithm!r}")
        values = {"bottom_up": self.bottom_up, "top_down": self.top_down}[algorithm]
        return (np.minimum.accumulate(values) > 1) & self.increasing


def check_constants(a: Sequence[float]) -> np.ndarray:
    """The connection constants ``a`` as a 1-D float array; ``ValueError`` if not finite."""
    try:
        a = np.asarray(a, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"a must be a sequence of numbers (a_0..a_d), got {a!r}") from None
    if a.ndim != 1 or not np.isfinite(a).all():
        raise ValueError(f"a must be a 1-D sequence of finite numbers (a_0..a_d), got "
                         f"{a.tolist()}")
    return a


def chernoff_hellinger(a: Sequence[float], branching: int = 2) -> Thresholds:
    """``CH_t`` (bottom-up) and ``TD_t`` (top-down) for ``a = (a_0, ..., a_d)``."""
    a = check_constants(a)
    d = len(a) - 1
    if d < 1 or not isinstance(branching, Integral) or branching < 2 or np.any(a < 0):
        raise ValueError(f"need a = (a_0..a_d) with d >= 1, a >= 0 and branching >= 2; got "
                         f"a={a.tolist()}, branching={branching}")
    k, K, root = branching, branching**d, np.sqrt(a)
    # Leaves whose LCA with a given leaf is at depth s (s < d): (k-1) k^(d-s-1) of them.
    share = np.array([(k - 1) * k ** (d - s - 1) for s in range(d)], dtype=float)
    bottom_up, top_down = np.zeros(d), np.zeros(d)
    for t in range(d):
        deeper = range(t + 1, d)
        bottom_up[t] = ((root[d] - root[t]) ** 2
                        + sum(share[s] * (root[s] - root[t]) ** 2 for s in deeper)) / K
        # Mean a over pairs inside one depth-(t+1) subtree (k^(d-t-1) leaves).
        within = (a[d] + sum(share[s] * a[s] for s in deeper)) / k ** (d - t - 1)
        top_down[t] = (np.sqrt(within) - root[t]) ** 2 / k ** (t + 1)
    increasing = np.diff(a) > 0
    return Thresholds(bottom_up=bottom_up, top_down=top_down, increasing=increasing)


def top_down_split_errors(a: Sequence[float], n0: int, t: int, branching: int = 2,
                          regime: str = "log") -> float:
    """Expected number of nodes a depth-``t`` top-down split puts in the wrong child, at
    finite size.

    The split sees the averaged two-level picture that ``TD_t`` describes: a node compares
    its edge count into its own child subtree (its leaf at ``p_d``, the deeper leaves at
    their ``p_s``) with its count into a sibling subtree (all at ``p_t``) and errs when the
    sibling count is larger (half a node on a tie). Counts are exact binomial sums for a
    complete ``branching``-ary tree with ``n0`` nodes per leaf, ``N = branching**d * n0``,
    ``p_s = a_s log N / N`` (``regime="log"``) or ``a_s / N`` (``"bounded"``). The result
    is ``N (branching - 1) P(error)`` (a union bound over siblings, exact for a binary
    tree). Exact recovery of level ``t + 1`` then has probability about
    ``exp(-errors)``; the errors grow like ``N^(1 - TD_t)`` up to log factors, so for
    ``TD_t`` just below 1 they grow very slowly with ``N``.
    """
    a = np.asarray(a, dtype=float)
    d, k = len(a) - 1, branching
    if d < 1 or k < 2 or n0 < 2 or not 0 <= t < d or np.any(a < 0):
        raise ValueError(f"need a = (a_0..a_d) >= 0 with d >= 1, branching >= 2, n0 >= 2 and "
                         f"0 <= t < d; got a={a.tolist()}, branching={k}, n0={n0}, t={t}")
    if regime not in ("log", "bounded"):
        raise ValueError(f"regime must be 'log' or 'bounded', got {regime!r}")
    N = k**d * n0
    p = a * (np.log(N) if regime == "log" else 1.0) / N
    if np.any(p > 1):
        raise ValueError(f"edge probabilities exceed 1 at N = {N}: {p.tolist()}")
    own = [(n0 - 1, p[d])] + [((k - 1) * k ** (d - s - 1) * n0, p[s]) for s in range(t + 1, d)]
    sibling = [(k ** (d - t - 1) * n0, p[t])]
    mean = sum(n * q for n, q in own + sibling)
    top = int(mean + 20 * np.sqrt(mean) + 50)  # beyond it the mass is below 1e-80
    support = np.arange(top)

    def pmf(parts: list[tuple[int, float]]) -> np.ndarray:
        out = np.zeros(top)
        out[0] = 1.0
        for n, q in parts:
            out = np.convolve(out, stats.binom.pmf(support, n, q))[:top]
        return out

    x, y = pmf(own), pmf(sibling)
    below = np.concatenate([[0.0], np.cumsum(x)[:-1]])  # P(X < j)
    p_error = float(np.sum(y * below) + 0.5 * np.sum(x * y))
    return N * (k - 1) * p_error
