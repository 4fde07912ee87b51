"""Hypothesis properties: rows sum to 1, shift invariance, order preserved."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from paperlab.softmax import ALGORITHMS, softmax, twopass

ISAS = twopass._C.supported_isas() if twopass._C is not None else [None]
FAST = settings(max_examples=40, deadline=None)

# Multiples of 1/16 in [-60, 60]: adding an integer shift up to 1000 is exact in float32,
# so a shifted row is the same mathematical input.
rows = arrays(
    np.float32,
    st.tuples(st.integers(1, 4), st.integers(1, 70)),
    elements=st.integers(-960, 960).map(lambda k: k / 16),
)
settings_for = st.tuples(st.sampled_from(ALGORITHMS), st.sampled_from(ISAS))


def _softmax(x, algorithm, isa):
    if isa is None:
        return softmax(x, algorithm=algorithm)
    previous = twopass._C.set_isa(isa)
    try:
        return softmax(x, algorithm=algorithm, threads=1)
    finally:
        twopass._C.set_isa(previous)


@FAST
@given(rows, settings_for)
def test_rows_sum_to_one(x, how):
    y = _softmax(x, *how)
    assert np.all(y >= 0)
    np.testing.assert_allclose(y.sum(axis=-1, dtype=np.float64), 1.0, rtol=1e-5)


@FAST
@given(rows, st.integers(-1000, 1000), settings_for)
def test_shift_invariance(x, shift, how):
    y = _softmax(x, *how)
    y_shifted = _softmax(x + np.float32(shift), *how)
    tol = 1e-5 * y + 2 * float(np.finfo(np.float32).smallest_subnormal)
    assert np.all(np.abs(y_shifted - y) <= tol)


@FAST
@given(rows, settings_for)
def test_order_preserved(x, how):
    y = _softmax(x, *how)
    order = np.argsort(x, axis=-1, kind="stable")
    y_sorted = np.take_along_axis(y, order, axis=-1)
    assert np.all(np.diff(y_sorted, axis=-1) >= 0)
