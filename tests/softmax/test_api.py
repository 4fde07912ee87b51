"""The API around the kernels: out=, bad input, torch tensors, autograd, the NumPy fallback."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from paperlab.softmax import ALGORITHMS, TwoPassSoftmax, backend, log_softmax, softmax, twopass
from tests.softmax.reference import assert_close, reference


def _x(shape=(6, 50), seed=0, dtype=np.float32):
    return (np.random.default_rng(seed).standard_normal(shape) * 4).astype(dtype)


# ---- out= ------------------------------------------------------------------------------

def test_out_is_filled_and_returned():
    x = _x()
    out = np.empty_like(x)
    assert softmax(x, out=out) is out
    assert_close(out, reference(x))


def test_in_place_and_strided_out():
    x = _x()
    expected = reference(x)
    y = x.copy()
    softmax(y, out=y)  # in place
    assert_close(y, expected)
    out = np.empty((50, 6), np.float32).T  # out's rows are not contiguous
    softmax(x, out=out)
    assert_close(out, expected)
    col = np.empty_like(x)
    softmax(x, axis=0, out=col)
    assert_close(col, reference(x, axis=0))


def test_out_partly_overlapping_input_is_safe():
    buf = _x((1, 101))
    x = buf[:, :100]
    expected = reference(x)
    softmax(x, out=buf[:, 1:])  # shifted by one element: a naive kernel would smear
    assert_close(buf[:, 1:], expected)


# ---- bad input -------------------------------------------------------------------------

@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"x": np.arange(6).reshape(2, 3)}, TypeError, "float32 or float64"),
        ({"x": np.float32(1.0)}, ValueError, "at least one dimension"),
        ({"axis": 2}, ValueError, "axis 2 is out of range"),
        ({"algorithm": "three_pass"}, ValueError, "unknown algorithm"),
        ({"threads": 0}, ValueError, "threads"),
        ({"out": np.empty((6, 49), np.float32)}, ValueError, "out has shape"),
        ({"out": np.empty((6, 50), np.float64)}, ValueError, "dtype"),
        ({"out": [0.0] * 300}, TypeError, "out must be a NumPy array"),
    ],
)
def test_bad_input_is_named(kwargs, error, match):
    args = {"x": _x()} | kwargs
    with pytest.raises(error, match=match):
        softmax(**args)


def test_read_only_out_is_refused():
    out = np.empty((6, 50), np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        softmax(_x(), out=out)


# ---- torch ----------------------------------------------------------------------------

def test_tensor_in_tensor_out_and_zero_copy_out():
    x = torch.from_numpy(_x())
    y = softmax(x)
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float32
    torch.testing.assert_close(y, torch.softmax(x, -1), rtol=1e-5, atol=1e-7)
    out = torch.empty_like(x)
    ptr = out.data_ptr()
    assert softmax(x, out=out) is out and out.data_ptr() == ptr
    torch.testing.assert_close(out, torch.softmax(x, -1), rtol=1e-5, atol=1e-7)
    xt = x.t()  # non-contiguous
    torch.testing.assert_close(log_softmax(xt, axis=0), torch.log_softmax(xt, 0),
                               rtol=1e-5, atol=1e-5)


def test_tensor_errors():
    with pytest.raises(TypeError, match="float32 or float64"):
        softmax(torch.ones(3, dtype=torch.float16))
    with pytest.raises(TypeError, match="float32 or float64"):
        softmax(torch.ones(3, dtype=torch.int64))
    x = torch.randn(3, 4, requires_grad=True)
    with pytest.raises(ValueError, match="requires grad"):
        softmax(x, out=torch.empty(3, 4))


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_autograd_matches_finite_differences(axis):
    x = torch.randn(4, 5, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: softmax(t, axis=axis), (x,))
    assert torch.autograd.gradcheck(lambda t: log_softmax(t, axis=axis), (x,))


@pytest.mark.parametrize("log", [False, True])
def test_module_stands_in_for_torch_softmax(log):
    torch.manual_seed(0)
    layer = torch.nn.Linear(16, 10)
    ours = torch.nn.Sequential(layer, TwoPassSoftmax(dim=1, log=log))
    theirs = torch.nn.Sequential(layer, torch.nn.LogSoftmax(1) if log else torch.nn.Softmax(1))
    x = torch.randn(32, 16)
    grads = []
    for model in (ours, theirs):
        layer.zero_grad()
        out = model(x)
        (out * torch.arange(10.0)).sum().backward()
        grads.append((out.detach(), layer.weight.grad.clone()))
    torch.testing.assert_close(grads[0][0], grads[1][0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grads[0][1], grads[1][1], rtol=1e-4, atol=1e-5)


# ---- the NumPy fallback -----------------------------------------------------------------

def test_numpy_fallback_is_labelled_and_correct(monkeypatch):
    from tests.softmax.test_kernels import adversarial_rows

    monkeypatch.setattr(twopass, "_C", None)
    monkeypatch.setattr(twopass, "_warned", False)
    assert backend() == "numpy-fallback"
    x = adversarial_rows()
    with pytest.warns(RuntimeWarning, match="NumPy fallback"):
        softmax(x[:1])
    for algorithm in ALGORITHMS:
        assert_close(softmax(x, algorithm=algorithm), reference(x))
        assert_close(log_softmax(x, algorithm=algorithm), reference(x, log=True), x, log=True)
    x64 = _x(dtype=np.float64)
    assert_close(softmax(x64, axis=0), reference(x64, axis=0), rtol=1e-12)


def test_backend_names_the_kernels():
    assert backend() in {"c-avx512f", "c-avx2-fma", "c-portable", "numpy-fallback"}
