"""Softmax and log-softmax by the two-pass algorithm (Dukhan & Ablavatski, 2020).

Three-pass softmax reads its input three times (max; sum of exp(x - max); scale) or
writes and re-reads an intermediate. The two-pass algorithm drops the max pass: it sums
exp(x) as (value, exponent) pairs, exp(x) = p * 2**n with p in [0.71, 1.42], so the sum
cannot overflow, and its second pass recomputes p * 2**n and scales by 1 / sum. Out of
cache that is 12 bytes per float32 element instead of 16-20.

The kernels are C (``_csoftmax``: AVX-512F, AVX2+FMA or portable C, chosen at run time);
this module validates the input, lays it out as contiguous rows, and spreads rows (or
blocks of one long row, whose (value, exponent) partial sums it combines) over threads.
Threads are Python threads calling the C kernel with the GIL released: that keeps the C
side free of a threading library (portable to every compiler setuptools drives) and makes
the block split and combine the same code the tests exercise; the cost, tens of
microseconds per call, matters only below ``PARALLEL_MIN`` elements, where one thread is
used anyway.
"""

from __future__ import annotations

import math
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from paperlab.softmax import numpy_fallback

try:
    from paperlab.softmax import _csoftmax as _C
except ImportError:  # built without a C compiler: the labelled NumPy path
    _C = None

ALGORITHMS = ("two_pass", "three_pass_recompute", "three_pass_reload", "online")
_CODES = {name: code for code, name in enumerate(ALGORITHMS)}  # the C side's numbering
PARALLEL_MIN = 1 << 16  # below this many elements a call runs on one thread
STREAM_MIN_BYTES = 1 << 25  # outputs this large bypass the cache (non-temporal stores)
_BLOCK_ALIGN = 64  # elements: block edges of a split row fall on cache lines
_pool: ThreadPoolExecutor | None = None
_warned = False


def backend() -> str:
    """Which kernels run: ``"c-avx512f"``, ``"c-avx2-fma"``, ``"c-portable"`` or
    ``"numpy-fallback"`` (the C extension was not built)."""
    return "numpy-fallback" if _C is None else f"c-{_C.isa()}"


def check_options(algorithm: str, threads: int | None, axis: int = -1) -> None:
    """``ValueError`` unless ``algorithm`` is one of :data:`ALGORITHMS`, ``threads`` a
    positive int or None, and ``axis`` an int (its range is checked against the input)."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm '{algorithm}'; choose one of {ALGORITHMS}")
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool)
                                or threads < 1):
        raise ValueError(f"threads must be a positive int or None, got {threads!r}")
    if not isinstance(axis, int | np.integer) or isinstance(axis, bool):
        raise ValueError(f"axis (dim) must be an int, got {axis!r}")


def softmax_numpy(
    x: Any, axis: int, out: np.ndarray | None, algorithm: str, threads: int | None, log: bool
) -> np.ndarray:
    """The NumPy-array form of :func:`paperlab.softmax.functional.softmax` /
    ``log_softmax`` (``log=True``); ``algorithm`` and ``threads`` as checked there."""
    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"softmax needs float32 or float64 input, got {x.dtype}")
    if x.ndim == 0:
        raise ValueError("softmax needs an array with at least one dimension, got a scalar")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis {axis} is out of range for an array of {x.ndim} dimensions")
    if out is not None:
        if not isinstance(out, np.ndarray):
            raise TypeError(f"out must be a NumPy array, got {type(out).__name__}")
        if out.shape != x.shape or out.dtype != x.dtype:
            raise ValueError(
                f"out has shape {out.shape} and dtype {out.dtype}; "
                f"x has shape {x.shape} and dtype {x.dtype}"
            )
        if not out.flags.writeable:
            raise ValueError("out is read-only")

    x_last = np.moveaxis(x, axis, -1)
    rows, n = math.prod(x_last.shape[:-1]), x_last.shape[-1]
    x2 = _as_rows(x_last)
    if x2 is None:
        x2 = np.ascontiguousarray(x_last).reshape(rows, n)
    out_last = None if out is None else np.moveaxis(out, axis, -1)
    y2 = None if out_last is None else _as_rows(out_last)
    if y2 is not None and np.may_share_memory(x2, y2) and not _same_layout(x2, y2):
        y2 = None  # out partly overlaps x: write through a temporary
    direct = y2 is not None
    if not direct:
        y2 = np.empty((rows, n), x.dtype)
    if y2.size:
        _compute(x2, y2, algorithm, threads, log)
    if out_last is None:
        return np.moveaxis(y2.reshape(x_last.shape), -1, axis)
    if not direct:
        out_last[...] = y2.reshape(out_last.shape)
    return out


def _as_rows(a: np.ndarray) -> np.ndarray | None:
    """``a`` as a 2-D (rows, n) view with contiguous rows, or None if that needs a copy."""
    n = a.shape[-1]
    try:
        a2 = a.reshape(math.prod(a.shape[:-1]), n, copy=False)
    except ValueError:
        return None
    if not a2.flags.aligned or (n > 1 and a2.strides[1] != a2.itemsize):
        return None
    return a2


def _same_layout(a: np.ndarray, b: np.ndarray) -> bool:
    return a.__array_interface__["data"][0] == b.__array_interface__["data"][0] and (
        a.strides == b.strides
    )


def _compute(x2: np.ndarray, y2: np.ndarray, algorithm: str, threads: int | None, log: bool):
    """Fill y2 with the (log-)softmax of each row of x2 (2-D, contiguous rows)."""
    global _warned
    if _C is None:
        if not _warned:
            warnings.warn(
                "paperlab.softmax: the C extension is not built (no C compiler at install); "
                "using the slow NumPy fallback",
                RuntimeWarning,
                stacklevel=5,
            )
            _warned = True
        y2[...] = numpy_fallback.softmax_rows(x2, algorithm, log)
        return
    rows, n = x2.shape
    code = _CODES[algorithm]
    stream = y2.nbytes >= STREAM_MIN_BYTES
    if threads is None:
        threads = (os.cpu_count() or 1) if x2.size >= PARALLEL_MIN else 1
    if threads == 1:
        _C.rows(x2, y2, code, log, 0, rows, stream)
    elif rows >= threads:
        edges = np.linspace(0, rows, threads + 1).astype(int)
        _parallel(lambda r0, r1: _C.rows(x2, y2, code, log, r0, r1, stream),
                  zip(edges[:-1], edges[1:], strict=True))
    elif algorithm == "two_pass":
        for r in range(rows):
            _two_pass_split(x2[r], y2[r], threads, log, stream)
    else:
        _parallel(lambda r: _C.rows(x2, y2, code, log, r, r + 1, stream),
                  ((r,) for r in range(rows)))


def _parallel(fn, arg_tuples) -> list:
    """Run ``fn(*args)`` for each tuple, the first in this thread and the rest in a pool."""
    global _pool
    jobs = list(arg_tuples)
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="softmax")
    futures = [_pool.submit(fn, *args) for args in jobs[1:]]
    first = fn(*jobs[0])
    return [first] + [f.result() for f in futures]


def combine_partial_sums(parts: list[tuple[float, float]]) -> tuple[float, float]:
    """Combine (value, exponent) partial sums, each ``value * 2**exponent``, into one.

    The result's exponent is the largest; the others are rescaled by exact powers of two.
    """
    parts = list(parts)
    if not parts or any(not isinstance(p, tuple | list) or len(p) != 2 for p in parts):
        raise ValueError(f"parts must be a non-empty list of (value, exponent) pairs, got "
                         f"{parts!r}")
    exponent = max(e for _, e in parts)
    value = sum(v * 2.0 ** max(e - exponent, -2100.0) for v, e in parts)
    return value, exponent


def _two_pass_split(x: np.ndarray, y: np.ndarray, threads: int, log: bool, stream: bool):
    """One long row over ``threads`` blocks: pass 1 per block, combine, pass 2 per block."""
    n = x.shape[0]
    step = -(-n // threads)
    step = -(-step // _BLOCK_ALIGN) * _BLOCK_ALIGN
    blocks = [(a, min(a + step, n)) for a in range(0, n, step)]
    parts = _parallel(lambda a, b: _C.extexp_sum(x[a:b]), blocks)
    value, exponent = combine_partial_sums(parts)
    if not abs(exponent) <= numpy_fallback.EXT_LIMIT:
        # extreme row (|max x| above ~7e5): the kernel's three-pass route, on one thread
        _C.rows(x[None], y[None], _CODES["three_pass_recompute"], log, 0, 1, stream)
        return
    _parallel(lambda a, b: _C.extexp_scale(x[a:b], y[a:b], value, exponent, log, stream),
              blocks)
