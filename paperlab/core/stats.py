"""Uncertainty shared by the experiments: paired tests and 95 % intervals.

Every interval here is returned as a plain dict, ``{"lo", "hi", "level", "method"}``, so that
an experiment can put it in its summary as it is (JSON) and a claim can read it back
(:func:`paperlab.core.claims.interval_of`). The level is :data:`LEVEL` (two-sided) unless a
caller asks for another. Which interval to use:

* accuracy of two classifiers on the same test examples: :func:`paired_difference_interval`
  (exact, from the discordant pairs; agrees with :func:`mcnemar`);
* one accuracy: :func:`proportion_interval` (Clopper-Pearson);
* a mean over seeds, or a mean of per-seed differences: :func:`mean_interval` (Student t);
* anything else computed from per-example or per-unit values: :func:`bootstrap_interval`;
* a figure over test examples x several trained models (seeds): :func:`crossed_bootstrap_interval`;
* a ratio of two timings from repeats measured side by side: :func:`ratio_interval`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.stats import beta, binomtest, t

LEVEL = 0.95


def interval(lo: float, hi: float, method: str, level: float = LEVEL) -> dict[str, Any]:
    """An interval as the summaries store it; ``lo <= hi``, both finite."""
    lo, hi = float(lo), float(hi)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"an interval needs finite ends, got [{lo}, {hi}]")
    if lo > hi:
        raise ValueError(f"an interval needs lo <= hi, got [{lo}, {hi}]")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    return {"lo": lo, "hi": hi, "level": float(level), "method": str(method)}


def _bools(name: str, a: Any) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype != bool:
        raise TypeError(f"{name} expects boolean arrays, got {a.dtype}")
    return a


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> dict[str, float]:
    """Exact McNemar test of two classifiers scored on the same examples.

    Args:
        correct_a: boolean array of shape ``(n,)``: whether classifier A got example ``i``
            right.
        correct_b: the same for classifier B, on the same examples.

    Returns:
        ``a_only`` (examples only A got right), ``b_only`` and the two-sided ``p`` of a
        binomial test on the discordant pairs (1.0 when there are none).
    """
    a, b = _bools("mcnemar", correct_a), _bools("mcnemar", correct_b)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"mcnemar expects two 1-D arrays of one length, got {a.shape}, {b.shape}")
    a_only = int(np.sum(a & ~b))
    b_only = int(np.sum(~a & b))
    n = a_only + b_only
    p = binomtest(a_only, n, 0.5).pvalue if n else 1.0
    return {"a_only": a_only, "b_only": b_only, "p": float(p)}


def _clopper_pearson(k: int, n: int, level: float) -> tuple[float, float]:
    alpha = 1 - level
    lo = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    return lo, hi


def proportion_interval(successes: int, n: int, level: float = LEVEL) -> dict[str, Any]:
    """Exact (Clopper-Pearson) interval of a proportion, e.g. one accuracy on ``n`` examples."""
    if n < 1 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n >= 1, got {successes} of {n}")
    lo, hi = _clopper_pearson(int(successes), int(n), level)
    return interval(lo, hi, f"Clopper-Pearson, {n} examples", level)


def paired_difference_interval(correct_a: np.ndarray, correct_b: np.ndarray,
                               level: float = LEVEL, scale: float = 1.0) -> dict[str, Any]:
    """Interval of ``accuracy(a) - accuracy(b)`` on the same ``n`` examples.

    Exact and conditional on the ``m`` discordant pairs (the examples exactly one of the two
    got right), as McNemar's test is: ``a_only ~ Binomial(m, pi)`` with a Clopper-Pearson
    interval for ``pi``, and the difference is ``m (2 pi - 1) / n``. With no discordant pair
    the interval is ``[0, 0]``: the two classifiers agree on every example. ``scale``
    multiplies both ends (100 for percentage points).
    """
    test = mcnemar(correct_a, correct_b)
    n = len(np.asarray(correct_a))
    if n == 0:
        raise ValueError("paired_difference_interval needs at least one example")
    m = test["a_only"] + test["b_only"]
    if m == 0:
        lo = hi = 0.0
    else:
        p_lo, p_hi = _clopper_pearson(test["a_only"], m, level)
        lo, hi = m * (2 * p_lo - 1) / n, m * (2 * p_hi - 1) / n
    return interval(scale * lo, scale * hi,
                    f"exact paired (McNemar), {m} discordant of {n} examples", level)


def mean_interval(values: Sequence[float], level: float = LEVEL) -> dict[str, Any] | None:
    """Student-t interval of the mean of ``values`` (e.g. one figure per seed).

    Returns ``None`` for fewer than two values: one seed has no spread to show.
    """
    x = np.asarray(values, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"mean_interval expects a 1-D sequence, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("mean_interval got a NaN or infinite value")
    if len(x) < 2:
        return None
    half = float(t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    mean = float(x.mean())
    return interval(mean - half, mean + half, f"t over {len(x)} seeds", level)


def bootstrap_interval(statistic: Callable[..., float], *samples: np.ndarray,
                       n_boot: int = 2000, seed: int = 0, level: float = LEVEL,
                       unit: str = "examples") -> dict[str, Any]:
    """Percentile bootstrap interval of ``statistic(*samples)``.

    The samples are resampled together (the same rows of each: they must be paired, one row
    per example, graph or seed), ``n_boot`` times with a seeded generator.
    """
    arrays = [np.asarray(s) for s in samples]
    if not arrays:
        raise ValueError("bootstrap_interval needs at least one sample")
    n = len(arrays[0])
    if n < 2 or any(len(a) != n for a in arrays):
        raise ValueError(f"bootstrap_interval needs paired samples of one length >= 2, "
                         f"got {[len(a) for a in arrays]}")
    rng = np.random.default_rng(seed)
    stats = np.empty(n_boot)
    for i in range(n_boot):
        idx = rng.integers(0, n, n)
        stats[i] = statistic(*(a[idx] for a in arrays))
    lo, hi = np.quantile(stats, [(1 - level) / 2, (1 + level) / 2])
    return interval(lo, hi, f"bootstrap over {n} {unit}", level)


def crossed_bootstrap_interval(statistic: Callable[..., float], *correct: np.ndarray,
                               seed: int = 0, n_boot: int = 2000,
                               level: float = LEVEL) -> dict[str, Any]:
    """Interval of ``statistic(*correct)`` over both sources of noise of a model's accuracy.

    Each of ``correct`` is a ``(n examples, M models)`` array (e.g. one column per training
    seed), scored on the same test examples, so the arrays are paired row by row and column by
    column. Each replicate resamples the examples (rows) and, independently, the models
    (columns): a figure averaged over models varies with the test sample and with the models'
    training seeds, and one example tends to be right or wrong under every model, so pooling the
    ``n * M`` (example, model) pairs as if independent would be too narrow.
    """
    arrays = [np.asarray(c) for c in correct]
    models = arrays[0].shape[1] if arrays and arrays[0].ndim == 2 else 0
    if not arrays or any(c.ndim != 2 or c.shape[1] != models for c in arrays):
        raise ValueError(f"expected (n, M) arrays with one M, got {[c.shape for c in arrays]}")
    columns = np.random.default_rng(seed + 1)

    def resampled(*rows: np.ndarray) -> float:
        cols = columns.integers(0, models, models)
        return statistic(*(r[:, cols] for r in rows))

    return bootstrap_interval(resampled, *arrays, n_boot=n_boot, seed=seed, level=level,
                              unit=f"test examples x {models} trained models")


def ratio_interval(times_a: Sequence[float], times_b: Sequence[float], n_boot: int = 2000,
                   seed: int = 0, level: float = LEVEL) -> dict[str, Any]:
    """Interval of ``median(times_a) / median(times_b)`` from repeated timings.

    Each side's repeats are resampled on their own (percentile bootstrap of the ratio of
    medians): the spread of the repeats, not the clock's resolution, sets the width.
    """
    a, b = np.asarray(times_a, dtype=float), np.asarray(times_b, dtype=float)
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"ratio_interval needs >= 2 repeats per side, got {len(a)}, {len(b)}")
    if np.any(a <= 0) or np.any(b <= 0) or not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("ratio_interval needs positive, finite times")
    rng = np.random.default_rng(seed)
    ra = np.median(a[rng.integers(0, len(a), (n_boot, len(a)))], axis=1)
    rb = np.median(b[rng.integers(0, len(b), (n_boot, len(b)))], axis=1)
    lo, hi = np.quantile(ra / rb, [(1 - level) / 2, (1 + level) / 2])
    return interval(lo, hi, f"bootstrap of medians, {len(a)} and {len(b)} repeats", level)
