"""The NumPy path: used only when the C extension was not built (no C compiler at install).

It computes the same function with the same edge-case rules as the C kernels (a NaN or
+inf in a row gives a NaN row, a row of -inf is NaN, a -inf element gives 0) but
materialises temporaries, so it is several times slower and its memory traffic is not
the algorithm's: it is a correct stand-in, not an implementation to benchmark. Only
``two_pass`` has its own NumPy form (the extended-exponent sum); the other algorithms
share the max-subtracting form, since they compute the same function.
"""

from __future__ import annotations

import numpy as np

LOG2E = 1.4426950408889634
LN2 = 0.6931471805599453
# As in the C kernels: two-pass rows whose largest exponent exceeds this use max-subtraction.
EXT_LIMIT = 2.0**20
XCLAMP = 1.0e6


def _max_subtract(x: np.ndarray, log: bool) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        m = x.max(axis=1, keepdims=True)
        z = x - m
        s = np.exp(z).sum(axis=1, keepdims=True, dtype=np.float64)
        if log:
            return (x - (m + np.log(s))).astype(x.dtype)
        return (np.exp(z) / s).astype(x.dtype)


def _extended_exponent(x: np.ndarray, log: bool) -> np.ndarray:
    """sum(exp(x)) = value * 2**exponent with exp(x) = p * 2**n, never overflowing."""
    xc = np.clip(x.astype(np.float64), -XCLAMP, XCLAMP)  # NaN stays NaN
    n = np.rint(xc * LOG2E)
    p = np.exp(xc - n * LN2)
    with np.errstate(invalid="ignore"):
        exponent = np.max(np.where(np.isnan(n), -np.inf, n), axis=1, keepdims=True)
        value = np.sum(p * np.exp2(n - exponent), axis=1, keepdims=True)
        if log:
            y = x - (np.log(value) + exponent * LN2)
        else:
            y = p / value * np.exp2(n - exponent)
    extreme = ~(np.abs(exponent[:, 0]) <= EXT_LIMIT)
    if extreme.any():
        y[extreme] = _max_subtract(x[extreme], log)
    return y.astype(x.dtype)


def softmax_rows(x: np.ndarray, algorithm: str, log: bool) -> np.ndarray:
    """Softmax (or log-softmax) of each row of a 2-D float array, as a new array."""
    if x.shape[1] == 0:
        return np.empty_like(x)
    if algorithm == "two_pass":
        return _extended_exponent(x, log)
    return _max_subtract(x, log)
