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

import numpy as np


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
        values = {"bottom_up": self.bottom_up, "top_down": self.top_down}[algorithm]
        return (np.minimum.accumulate(values) > 1) & self.increasing


def chernoff_hellinger(a: Sequence[float], branching: int = 2) -> Thresholds:
    """``CH_t`` (bottom-up) and ``TD_t`` (top-down) for ``a = (a_0, ..., a_d)``."""
    a = np.asarray(a, dtype=float)
    d = len(a) - 1
    if d < 1 or branching < 2 or np.any(a < 0):
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
