"""The paper's scores for predicted pmfs over ordered bins, plus CRPS for forecasting."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.ndimage import gaussian_filter1d

MAX_SIGMA = 100


def _check_pmfs(p: np.ndarray, name: str) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2 or p.shape[0] < 1:
        raise ValueError(f"{name} must be (n, m) with n >= 1 rows and m >= 2 bins, got shape "
                         f"{p.shape}")
    if not np.isfinite(p).all() or (p < 0).any():
        raise ValueError(f"{name} must be finite and non-negative")
    return p


def kl_divergence(pred: np.ndarray, true: np.ndarray) -> float:
    """Mean over rows of ``KL(true || pred)`` (torch ``KLDivLoss(batchmean)``, as the reference).

    ``pred`` gets ``+1e-10`` inside the log as in the reference; ``0 log 0 = 0``.
    """
    pred, true = _check_pmfs(pred, "pred"), _check_pmfs(true, "true")
    if pred.shape != true.shape:
        raise ValueError(f"pred {pred.shape} and true {true.shape} differ in shape")
    ratio = np.where(true > 0, np.log(np.where(true > 0, true, 1.0)) - np.log(pred + 1e-10), 0.0)
    return float((true * ratio).sum(axis=1).mean())


def expected_bin_mse(pred: np.ndarray, target_bins: np.ndarray) -> float:
    """MSE between the centre of the rounded expected bin and the centre of the true bin."""
    pred = _check_pmfs(pred, "pred")
    m = pred.shape[1]
    sums = pred.sum(axis=1)
    if not np.allclose(sums, 1.0, atol=1e-3):  # else the expected bin can fall off the grid
        raise ValueError(f"pred rows must sum to 1, got sums in [{sums.min():.4g}, "
                         f"{sums.max():.4g}]")
    target_bins = np.asarray(target_bins)
    if target_bins.shape != (pred.shape[0],) or target_bins.dtype.kind not in "iu" or \
            target_bins.min() < 0 or target_bins.max() >= m:
        raise ValueError(f"target_bins must be ({pred.shape[0]},) integer bins in [0, {m}), "
                         f"got {target_bins.dtype} {target_bins.shape}"
                         + (f" in [{target_bins.min()}, {target_bins.max()}]"
                            if target_bins.size and target_bins.dtype.kind in "iuf" else ""))
    centers = np.linspace(-1, 1, m + 1)[:-1] + 1.0 / m
    expected = np.rint(pred @ np.arange(m)).astype(int)
    return float(np.mean((centers[expected] - centers[np.asarray(target_bins)]) ** 2))


@lru_cache(maxsize=8)
def _blur_operators(num_bins: int) -> np.ndarray:
    """``(MAX_SIGMA, m, m)``: row-vector ``p @ ops[s-1]`` is ``p`` blurred with sigma ``s``.

    The wrap-mode Gaussian filter is linear, so filtering the identity once per sigma gives
    its matrix; then every pmf costs a matmul instead of a filter pass.
    """
    eye = np.eye(num_bins)
    return np.stack([gaussian_filter1d(eye, s, axis=1, mode="wrap", radius=num_bins - 1)
                     for s in range(1, MAX_SIGMA + 1)])


def smoothness(pmfs: np.ndarray) -> np.ndarray:
    """Per-row ``sum_{s=1..100} 6/(pi^2 s^2) * ||p - G_s * p||_2`` (wrap-mode Gaussian filter).

    Lower is smoother; a constant pmf scores 0. Returns ``(n,)``.
    """
    p = _check_pmfs(pmfs, "pmfs")
    ops = _blur_operators(p.shape[1])
    total = np.zeros(p.shape[0])
    for sigma in range(1, MAX_SIGMA + 1):
        residual = p - p @ ops[sigma - 1]
        total += 6 / (np.pi**2 * sigma**2) * np.linalg.norm(residual, axis=1)
    return total


def crps_discrete(pmfs: np.ndarray, support: np.ndarray, y: np.ndarray) -> np.ndarray:
    """CRPS of discrete forecasts on ``support`` ``(m,)`` against outcomes ``y`` ``(n,)``.

    ``CRPS = E|X - y| - E|X - X'| / 2`` for X, X' iid from the pmf. Returns ``(n,)``.
    """
    p = _check_pmfs(pmfs, "pmfs")
    support, y = np.asarray(support, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if support.shape != (p.shape[1],) or y.shape != (p.shape[0],):
        raise ValueError(f"support must be ({p.shape[1]},) and y ({p.shape[0]},), "
                         f"got {support.shape} and {y.shape}")
    if not (np.isfinite(support).all() and np.isfinite(y).all()):
        raise ValueError("support and y must be finite (found NaN or inf)")
    spread = np.abs(support[:, None] - support[None, :])
    error = (p * np.abs(support[None, :] - y[:, None])).sum(axis=1)
    return error - 0.5 * np.einsum("ni,ij,nj->n", p, spread, p)
