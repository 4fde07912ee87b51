"""The paper's synthetic conditional densities: inputs (x, y) in [-1, 1]^2, target z in [-1, 1].

All three follow the reference generator (variance 0.01):

- ``gaussian``: x ~ U(-.8, .8), y ~ N(x, var), z ~ N(y, var)       (z | x, y is one Gaussian)
- ``gmm2``:     x, y ~ U(-.8, .8), z ~ N(x, var) or N(y, var) w.p. 1/2 (two modes)
- ``beta``:     x ~ U(-.8, .8), y ~ N(x, var), z = ±Beta(100|x|, 100|y|) (mirrored, two modes)

The true binned pmf of z given (x, y) is the density at the bin centres, normalised, as in
the reference evaluation.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

DATASETS = ("gaussian", "gmm2", "beta")
VARIANCE = 0.01


def generate(name: str, n: int, seed: int, var: float = VARIANCE) -> np.ndarray:
    """``n`` samples ``(x, y, z)`` of the named dataset: ``(n, 3)`` float64."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset '{name}'; choose from {DATASETS}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    sd = np.sqrt(var)
    x = rng.uniform(-0.8, 0.8, n)
    if name == "gmm2":
        y = rng.uniform(-0.8, 0.8, n)
        z = rng.normal(np.where(rng.uniform(size=n) < 0.5, x, y), sd)
    else:
        y = rng.normal(x, sd)
        if name == "gaussian":
            z = rng.normal(y, sd)
        else:
            z = rng.choice([1.0, -1.0], size=n) * rng.beta(np.abs(100 * x), np.abs(100 * y))
    return np.stack([x, y, z], axis=1)


def true_pmf(name: str, xy: np.ndarray, centers: np.ndarray, var: float = VARIANCE) -> np.ndarray:
    """True pmf of z over the bins for each row of ``xy`` ``(n, 2)``: ``(n, m)``, rows sum to 1."""
    x, y = xy[:, :1], xy[:, 1:2]
    sd = np.sqrt(var)
    if name == "gaussian":
        density = stats.norm.pdf(centers, y, sd)
    elif name == "gmm2":
        density = (stats.norm.pdf(centers, x, sd) + stats.norm.pdf(centers, y, sd)) / 2
    elif name == "beta":
        # z = ±B with B ~ Beta on (0, 1): the density of |z|, mirrored onto the negative half.
        density = stats.beta.pdf(np.abs(centers), np.abs(100 * x), np.abs(100 * y))
    else:
        raise ValueError(f"unknown dataset '{name}'; choose from {DATASETS}")
    return density / density.sum(axis=1, keepdims=True)


def quantize(values: np.ndarray, num_bins: int) -> np.ndarray:
    """Bin index in ``0..num_bins-1`` of values in ``[-1, 1]`` (out-of-range values clip)."""
    edges = np.linspace(-1, 1, num_bins + 1)
    return np.clip(np.digitize(values, edges) - 1, 0, num_bins - 1)
