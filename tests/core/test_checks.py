"""paperlab.core.checks: plain numbers of every scalar kind accepted, everything else named."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from paperlab.core import checks

FAST = settings(max_examples=40, deadline=None, derandomize=True)
FLOAT_KINDS = (float, np.float32, np.float64, lambda v: np.array(v), torch.tensor,
               lambda v: torch.tensor(v, dtype=torch.float64))
INT_KINDS = (int, np.int32, np.int64, lambda v: np.array(v), torch.tensor)


@FAST
@given(v=st.floats(-1e6, 1e6), kind=st.sampled_from(FLOAT_KINDS))
def test_real_accepts_every_scalar_kind(v, kind):
    out = checks.real(kind(v), "x")
    assert type(out) is float
    assert out == pytest.approx(v, rel=1e-6, abs=1e-6)


@FAST
@given(v=st.integers(-10**6, 10**6), kind=st.sampled_from(INT_KINDS))
def test_integer_accepts_every_scalar_kind(v, kind):
    out = checks.integer(kind(v), "n")
    assert type(out) is int and out == v
    assert checks.real(kind(v), "x") == float(v)  # an integer is a real number too


@FAST
@given(bad=st.sampled_from([math.nan, math.inf, -math.inf]),
       kind=st.sampled_from(FLOAT_KINDS))
def test_real_refuses_non_finite(bad, kind):
    with pytest.raises(ValueError, match="lr must be a finite number"):
        checks.real(kind(bad), "lr")


def test_real_refuses_an_int_too_large_for_a_float():
    with pytest.raises(ValueError, match="finite"):
        checks.real(10**400, "lr")


@pytest.mark.parametrize("bad, shown", [
    (True, "True (bool)"), (np.bool_(False), "(bool)"), (torch.tensor(True), "True"),
    ("0.5", "'0.5' (str)"), (None, "None (NoneType)"), ([0.5], "[0.5] (list)"),
    (torch.ones(2), "a Tensor of shape (2,)"), (np.ones((1, 1)), "a ndarray of shape (1, 1)"),
    (1 + 2j, "(1+2j) (complex)"),
])
def test_real_refuses_what_is_not_a_number(bad, shown):
    with pytest.raises(TypeError) as exc:
        checks.real(bad, "margin")
    assert "margin must be a real number" in str(exc.value) and shown in str(exc.value)


@FAST
@given(v=st.floats(-1e6, 1e6).filter(lambda v: not float(v).is_integer()),
       kind=st.sampled_from(FLOAT_KINDS))
def test_integer_refuses_fractions(v, kind):
    with pytest.raises(TypeError, match="n must be an integer"):
        checks.integer(kind(v), "n")


@pytest.mark.parametrize("bad", [2.0, True, "3", None, torch.tensor(2.0), np.float64(1)])
def test_integer_refuses_non_integers(bad):
    with pytest.raises(TypeError, match="n must be an integer"):
        checks.integer(bad, "n")


@FAST
@given(v=st.floats(-10, 10), low=st.floats(-5, 5), width=st.floats(0.1, 5),
       low_open=st.booleans(), high_open=st.booleans())
def test_real_range_is_exact_at_the_bounds(v, low, width, low_open, high_open):
    high = low + width
    inside = (low < v if low_open else low <= v) and (v < high if high_open else v <= high)
    if inside:
        assert checks.real(v, "x", low=low, high=high, low_open=low_open,
                           high_open=high_open) == v
    else:
        with pytest.raises(ValueError) as exc:
            checks.real(v, "x", low=low, high=high, low_open=low_open, high_open=high_open)
        bounds = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        assert f"x must be in {bounds}, got {v}" == str(exc.value)


@pytest.mark.parametrize("kwargs, v, message", [
    ({"low": 0, "low_open": True}, 0.0, "x must be > 0, got 0.0"),
    ({"low": 1}, 0.5, "x must be >= 1, got 0.5"),
    ({"high": 1}, 2.0, "x must be <= 1, got 2.0"),
    ({"high": 1, "high_open": True}, 1.0, "x must be < 1, got 1.0"),
])
def test_one_sided_range_messages(kwargs, v, message):
    with pytest.raises(ValueError) as exc:
        checks.real(v, "x", **kwargs)
    assert str(exc.value) == message


@FAST
@given(v=st.integers(-20, 20), low=st.integers(-5, 5), width=st.integers(0, 5))
def test_integer_range(v, low, width):
    high = low + width
    if low <= v <= high:
        assert checks.integer(v, "n", low=low, high=high) == v
    else:
        with pytest.raises(ValueError, match=rf"n must be in \[{low}, {high}\], got {v}"):
            checks.integer(v, "n", low=low, high=high)


def test_describe_shortens_long_values():
    text = checks.describe("x" * 200)
    assert len(text) < 80 and text.endswith("(str)")
