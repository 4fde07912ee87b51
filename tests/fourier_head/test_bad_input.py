"""Bad input at the Fourier-head system's public entry points raises ValueError/TypeError.

Before these checks: integer features failed inside torch's matmul; ``GMMHead`` returned NaN
logits for NaN features and failed in a matmul for the wrong feature size;
``FourierHead(2, num_bins=10.5, ...)`` was accepted; ``bin_centers(0)`` returned an empty grid
and a reversed range a reversed one; ``expected_bin_mse`` read a negative target bin from
the end of the grid (a wrong score) and raised IndexError for one past it or for an
unnormalised pmf; ``kl_divergence`` of empty pmfs was NaN; ``crps_discrete`` of a NaN outcome
was NaN; ``autocorrelation`` of mismatched parts failed in a matmul.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from paperlab.fourier_head import (
    FourierHead,
    FourierHeadMLE,
    GMMHead,
    autocorrelation,
    bin_centers,
    crps_discrete,
    expected_bin_mse,
    kl_divergence,
    regularization,
    smoothness,
)

DIM, BINS = 3, 8
FAST = settings(max_examples=20, deadline=None, derandomize=True)
torch.manual_seed(0)
HEADS = {"fourier": FourierHead(DIM, BINS, 3), "mle": FourierHeadMLE(DIM, 3),
         "gmm": GMMHead(DIM, BINS, 2)}
PMF = np.full((2, BINS), 1.0 / BINS)


@FAST
@given(name=st.sampled_from(sorted(HEADS)), shape=st.lists(st.integers(1, 3), max_size=2),
       value=st.sampled_from([float("nan"), float("inf"), -float("inf")]), data=st.data())
def test_non_finite_features(name, shape, value, data):
    h = torch.randn(*shape, DIM)
    index = tuple(data.draw(st.integers(0, s - 1)) for s in h.shape)
    h[index] = value
    with pytest.raises(ValueError, match="features contain NaN or infinite values"):
        HEADS[name](h)


@FAST
@given(name=st.sampled_from(sorted(HEADS)), width=st.integers(0, 6).filter(lambda w: w != DIM))
def test_features_of_the_wrong_width(name, width):
    with pytest.raises(ValueError, match=rf"expected features of shape \(\.\.\., {DIM}\)"):
        HEADS[name](torch.randn(2, width))


@pytest.mark.parametrize("name", sorted(HEADS))
@pytest.mark.parametrize("h", [torch.ones(2, DIM, dtype=torch.long), np.zeros((2, DIM))],
                         ids=["int", "numpy"])
def test_features_of_the_wrong_type(name, h):
    with pytest.raises(TypeError, match=rf"features must be a float tensor \(\.\.\., {DIM}\)"):
        HEADS[name](h)


@pytest.mark.parametrize("make,problem", [
    (lambda: FourierHead(2.5, BINS, 3), "dim_in must be an integer >= 1"),
    (lambda: FourierHead(DIM, 10.5, 3), "num_bins must be an integer >= 2"),
    (lambda: FourierHead(DIM, 1, 3), "num_bins must be an integer >= 2"),
    (lambda: FourierHead(DIM, BINS, 0), "num_frequencies must be an integer >= 1"),
    (lambda: FourierHead(DIM, BINS, 3, regularization_gamma=float("nan")),
     "regularization_gamma must be a finite number >= 0"),
    (lambda: FourierHeadMLE(DIM, 3, value_range=(1.0, -1.0)), "value_range must be finite"),
    (lambda: FourierHeadMLE(DIM, 3, value_range=(0.0, float("inf"))), "value_range must be"),
    (lambda: GMMHead(0, BINS, 2), "dim_in must be an integer >= 1"),
    (lambda: GMMHead(DIM, BINS, 0), "num_gaussians must be an integer >= 1"),
    (lambda: bin_centers(0), "num_bins must be an integer >= 1"),
    (lambda: bin_centers(4, 1.0, -1.0), "value_range must be finite with lo < hi"),
])
def test_construction(make, problem):
    with pytest.raises(ValueError, match=problem):
        make()


def test_mle_targets_and_samples():
    head = FourierHeadMLE(DIM, 3)
    h = torch.randn(2, DIM)
    with pytest.raises(ValueError, match=r"targets of shape \(3,\) must match the batch shape"):
        head.nll(h, torch.zeros(3))
    with pytest.raises(ValueError, match="x contains NaN or infinite values"):
        head.nll(h, torch.tensor([float("nan"), 0.0]))
    with pytest.raises(ValueError, match=r"outside the value range \[-1.0, 1.0\]"):
        head.nll(h, torch.tensor([5.0, 0.0]))
    head(h)
    for n in (0, 2.5):
        with pytest.raises(ValueError, match="sample: n must be an integer >= 1"):
            head.sample(n)


@FAST
@given(a=st.integers(0, 4), b=st.integers(0, 4))
def test_coefficient_parts_of_different_shapes(a, b):
    if a == b and a > 0:
        assert autocorrelation(torch.randn(a), torch.randn(b))[0].shape == (a,)
        return
    for fn in (autocorrelation, regularization):
        with pytest.raises(ValueError, match="must share a shape"):
            fn(torch.randn(a), torch.randn(b))


@FAST
@given(n=st.integers(1, 4), bad=st.one_of(st.integers(BINS, 3 * BINS), st.integers(-BINS, -1)),
       data=st.data())
def test_target_bins_outside_the_grid(n, bad, data):
    targets = np.zeros(n, dtype=int)
    targets[data.draw(st.integers(0, n - 1))] = bad
    with pytest.raises(ValueError, match=rf"target_bins must be \({n},\) integer bins in \[0, "
                                         rf"{BINS}\)"):
        expected_bin_mse(np.full((n, BINS), 1.0 / BINS), targets)


def test_target_bins_and_pmfs():
    with pytest.raises(ValueError, match="target_bins must be"):
        expected_bin_mse(PMF, np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="target_bins must be"):
        expected_bin_mse(PMF, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="pred rows must sum to 1"):
        expected_bin_mse(PMF * 3, np.array([0, 1]))


PMF_METRICS = {
    "kl_divergence": lambda p: kl_divergence(p, p),
    "expected_bin_mse": lambda p: expected_bin_mse(p, np.zeros(len(p), int)),
    "smoothness": smoothness,
    "crps_discrete": lambda p: crps_discrete(p, np.arange(p.shape[-1], dtype=float),
                                             np.zeros(len(p))),
}


@pytest.mark.parametrize("name", sorted(PMF_METRICS))
@pytest.mark.parametrize("pmfs,problem", [
    (np.zeros((0, BINS)), r"must be \(n, m\) with n >= 1 rows"),
    (np.full(BINS, 1.0 / BINS), r"must be \(n, m\) with n >= 1 rows"),
    (np.ones((2, 1)), "m >= 2 bins"),
    (np.where(np.eye(2, BINS) > 0, np.nan, PMF), "must be finite and non-negative"),
    (PMF - 0.5, "must be finite and non-negative"),
])
def test_malformed_pmfs(name, pmfs, problem):
    with pytest.raises(ValueError, match=problem):
        PMF_METRICS[name](pmfs)


@pytest.mark.parametrize("support,y,problem", [
    (np.arange(BINS, dtype=float), np.array([np.nan, 1.0]), "support and y must be finite"),
    (np.where(np.arange(BINS) == 3, np.inf, np.arange(BINS)), np.ones(2), "must be finite"),
    (np.arange(BINS - 1, dtype=float), np.ones(2), rf"support must be \({BINS},\)"),
])
def test_crps_support_and_outcomes(support, y, problem):
    with pytest.raises(ValueError, match=problem):
        crps_discrete(PMF, support, y)


def test_numpy_integers_are_sizes():
    head = FourierHead(np.int64(DIM), np.int64(BINS), np.int32(2))
    assert head(torch.randn(2, DIM)).shape == (2, BINS)
    assert bin_centers(np.int64(4)).shape == (4,)
