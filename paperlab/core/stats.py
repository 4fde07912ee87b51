"""Paired significance tests shared by the experiments."""

from __future__ import annotations

import numpy as np
from scipy.stats import binomtest


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> dict[str, float]:
    """Exact McNemar test of two classifiers scored on the same examples.

    Args:
        correct_a, correct_b: boolean arrays of shape ``(n,)``: whether each classifier got
            example ``i`` right.

    Returns:
        ``a_only`` (examples only A got right), ``b_only`` and the two-sided ``p`` of a
        binomial test on the discordant pairs (1.0 when there are none).
    """
    a, b = np.asarray(correct_a), np.asarray(correct_b)
    if a.dtype != bool or b.dtype != bool:
        raise TypeError(f"mcnemar expects boolean arrays, got {a.dtype} and {b.dtype}")
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"mcnemar expects two 1-D arrays of one length, got {a.shape}, {b.shape}")
    a_only = int(np.sum(a & ~b))
    b_only = int(np.sum(~a & b))
    n = a_only + b_only
    p = binomtest(a_only, n, 0.5).pvalue if n else 1.0
    return {"a_only": a_only, "b_only": b_only, "p": float(p)}
