"""Bad input at the softmax system's public entry points raises ValueError/TypeError naming it.

Before these checks: a float or string ``axis`` failed inside the driver ("'float' object is
not iterable"); ``TwoPassSoftmax(algorithm="foo")`` was accepted and raised ``KeyError: 'foo'``
at its first forward pass, deep inside a model; ``threads=True`` ran as one thread;
``combine_partial_sums([])`` failed in ``max()``. NaN/inf input is *not* an error: as in
``torch.softmax``, it makes its slice NaN (checked here too).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from paperlab.softmax import (
    ALGORITHMS,
    TwoPassSoftmax,
    combine_partial_sums,
    log_softmax,
    softmax,
)

FAST = settings(max_examples=20, deadline=None, derandomize=True)
FUNCTIONS = {"softmax": softmax, "log_softmax": log_softmax}
X = np.random.default_rng(0).random((3, 5)).astype(np.float32)
INPUTS = {"numpy": X, "tensor": torch.from_numpy(X)}


@FAST
@given(fn=st.sampled_from(sorted(FUNCTIONS)), kind=st.sampled_from(sorted(INPUTS)),
       axis=st.one_of(st.integers(2, 9), st.integers(-9, -3)))
def test_axis_out_of_range(fn, kind, axis):
    with pytest.raises(ValueError, match=rf"axis {axis} is out of range .* 2 dimensions"):
        FUNCTIONS[fn](INPUTS[kind], axis=axis)


@pytest.mark.parametrize("fn", sorted(FUNCTIONS))
@pytest.mark.parametrize("kind", sorted(INPUTS))
@pytest.mark.parametrize("kwargs,problem", [
    ({"axis": 1.0}, r"axis \(dim\) must be an int"),
    ({"axis": "last"}, r"axis \(dim\) must be an int"),
    ({"axis": True}, r"axis \(dim\) must be an int"),
    ({"algorithm": "four_pass"}, "unknown algorithm 'four_pass'"),
    ({"threads": 0}, "threads must be a positive int or None"),
    ({"threads": 2.0}, "threads must be a positive int or None"),
    ({"threads": True}, "threads must be a positive int or None"),
])
def test_options(fn, kind, kwargs, problem):
    with pytest.raises(ValueError, match=problem):
        FUNCTIONS[fn](INPUTS[kind], **kwargs)


@pytest.mark.parametrize("fn", sorted(FUNCTIONS))
@pytest.mark.parametrize("x,error,problem", [
    (np.arange(4), TypeError, "needs float32 or float64 input, got int64"),
    (np.ones(4, np.float16), TypeError, "got float16"),
    (np.array(["a", "b"]), TypeError, "needs float32 or float64 input"),
    (np.float32(1.0), ValueError, "at least one dimension, got a scalar"),
    (torch.arange(4), TypeError, "needs float32 or float64 tensors"),
    (torch.tensor(1.0), ValueError, "at least one dimension, got a scalar"),
])
def test_input_dtype_and_rank(fn, x, error, problem):
    with pytest.raises(error, match=problem):
        FUNCTIONS[fn](x)


@pytest.mark.parametrize("kind", sorted(INPUTS))
def test_out_of_the_wrong_shape_or_kind(kind):
    x = INPUTS[kind]
    wrong = np.zeros((3, 4), np.float32) if kind == "numpy" else torch.zeros(3, 4)
    with pytest.raises(ValueError, match=r"out has shape \(3, 4\)"):
        softmax(x, out=wrong)
    other = torch.zeros(3, 5) if kind == "numpy" else np.zeros((3, 5), np.float32)
    with pytest.raises(TypeError, match="out must be a"):
        softmax(x, out=other)


@pytest.mark.parametrize("kwargs,problem", [
    ({"algorithm": "foo"}, "unknown algorithm 'foo'"),
    ({"threads": -1}, "threads must be a positive int or None"),
    ({"dim": 1.5}, r"axis \(dim\) must be an int"),
])
def test_module_options_checked_at_construction(kwargs, problem):
    with pytest.raises(ValueError, match=problem):
        TwoPassSoftmax(**kwargs)


def test_module_input():
    module = TwoPassSoftmax(dim=1)
    with pytest.raises(TypeError, match="x must be a torch.Tensor, got ndarray"):
        module(X)
    with pytest.raises(ValueError, match="axis 1 is out of range"):
        module(torch.ones(4))


@pytest.mark.parametrize("parts", [[], [(1.0,)], [(1.0, 2.0, 3.0)], [1.0]])
def test_partial_sums(parts):
    with pytest.raises(ValueError, match=r"non-empty list of \(value, exponent\) pairs"):
        combine_partial_sums(parts)


@FAST
@given(algorithm=st.sampled_from(ALGORITHMS), n=st.integers(2, 40), data=st.data(),
       value=st.sampled_from([float("nan"), float("inf")]))
def test_non_finite_input_poisons_only_its_slice(algorithm, n, data, value):
    """The documented semantics (torch's): not an error, the slice holding it becomes NaN."""
    x = np.random.default_rng(n).standard_normal((2, n))
    x[0, data.draw(st.integers(0, n - 1))] = value
    y = softmax(x, algorithm=algorithm)
    assert np.isnan(y[0]).all()
    np.testing.assert_allclose(y[1], torch.softmax(torch.from_numpy(x[1]), 0).numpy(),
                               rtol=1e-12, atol=1e-15)
