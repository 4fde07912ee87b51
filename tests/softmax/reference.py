"""Float64 reference and the comparison every correctness test uses."""

from __future__ import annotations

import numpy as np


def reference(x: np.ndarray, axis: int = -1, log: bool = False) -> np.ndarray:
    """exp(x - max) / sum in float64 (NaN/inf rules of IEEE arithmetic, as the kernels)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        m = x.max(axis=axis, keepdims=True)
        s = np.exp(x - m).sum(axis=axis, keepdims=True)
        return x - m - np.log(s) if log else np.exp(x - m) / s


def assert_close(y: np.ndarray, ref: np.ndarray, x: np.ndarray | None = None,
                 rtol: float = 1e-5, log: bool = False) -> None:
    """NaNs in the same places; elsewhere relative error <= rtol. Softmax outputs below the
    smallest normal are held to two units of the last place; log-softmax to
    rtol * (1 + |x| + |ref|), the rounding of x, lse and x - lse in the output's precision."""
    y = np.asarray(y)
    finfo = np.finfo(y.dtype)
    assert y.shape == ref.shape
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
    ok = ~np.isnan(ref)
    y, ref = y[ok].astype(np.float64), ref[ok]
    if log:
        scale = 1.0 + np.abs(np.asarray(x, dtype=np.float64)[ok]) + np.abs(ref)
        np.testing.assert_array_equal(np.isneginf(y), np.isneginf(ref))
        fin = np.isfinite(ref)
        assert np.all(np.abs(y[fin] - ref[fin]) <= rtol * scale[fin])
        return
    tol = np.maximum(rtol * np.abs(ref), 2 * float(finfo.smallest_subnormal))
    err = np.abs(y - ref)
    assert np.all(err <= tol), f"max error {err.max():.3g}, {np.max(err / tol):.3g} x tolerance"
