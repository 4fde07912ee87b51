"""The Fourier head layer: normalisation, non-negativity, closed forms, gradients, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from paperlab.fourier_head import FourierHead, FourierHeadMLE, autocorrelation, regularization
from paperlab.fourier_head.fourier import fourier_density


def _trained_like(head: torch.nn.Module, scale: float = 100.0) -> torch.nn.Module:
    """Undo the /100 init so the densities are far from uniform (a harder test)."""
    with torch.no_grad():
        head.coefficients.weight.mul_(scale)
        head.coefficients.bias.mul_(scale)
    return head


def _direct_autocorrelation(a: np.ndarray) -> np.ndarray:
    """c_k = sum_j a_{j+k} conj(a_j), straight from the definition."""
    n1 = a.shape[-1]
    return np.stack([(a[..., k:] * np.conj(a[..., :n1 - k])).sum(-1) for k in range(n1)], -1)


def test_autocorrelation_matches_definition():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 9)) + 1j * rng.normal(size=(4, 9))
    c_re, c_im = autocorrelation(torch.tensor(a.real), torch.tensor(a.imag))
    expected = _direct_autocorrelation(a)
    np.testing.assert_allclose(c_re.numpy(), expected.real, atol=1e-10)
    np.testing.assert_allclose(c_im.numpy(), expected.imag, atol=1e-10)


def test_regularizer_matches_direct_computation():
    torch.manual_seed(0)
    head = _trained_like(FourierHead(6, 20, 5, regularization_gamma=1e-3).double())
    h = torch.randn(7, 6, dtype=torch.float64)
    head(h)
    params = head.coefficients(h).detach().numpy()
    a = params[:, :6] + 1j * params[:, 6:]
    c = _direct_autocorrelation(a)
    k = np.arange(6)
    direct = 1e-3 * 2 * np.mean(np.sum(2 * np.pi**2 * k**2 * np.abs(c) ** 2, axis=1))
    assert head.regularization_loss().item() == pytest.approx(direct, rel=1e-10)
    assert direct > 0


def test_pmf_sums_to_one_and_is_a_log_pmf():
    torch.manual_seed(1)
    head = _trained_like(FourierHead(8, 50, 12))
    logp = head(torch.randn(3, 5, 8))
    assert logp.shape == (3, 5, 50)
    torch.testing.assert_close(logp.exp().sum(-1), torch.ones(3, 5))
    # a log-pmf is already normalised: log_softmax leaves it unchanged, so CE applies as is
    torch.testing.assert_close(torch.log_softmax(logp, -1), logp, atol=1e-5, rtol=0)


def test_pdf_nonnegative_and_integrates_to_one_on_any_range():
    torch.manual_seed(2)
    head = _trained_like(FourierHeadMLE(4, 10, value_range=(2.0, 5.0)).double())
    dist = head(torch.randn(6, 4, dtype=torch.float64))
    x = torch.linspace(2.0, 5.0, 20001, dtype=torch.float64)
    p = dist.pdf(x)
    assert p.min() >= -1e-12
    assert not torch.allclose(p, p[:, :1].expand_as(p))  # really not uniform
    integral = torch.trapezoid(p, x, dim=-1)
    torch.testing.assert_close(integral, torch.ones(6, dtype=torch.float64), atol=1e-6, rtol=0)


def test_pdf_equals_squared_modulus_form():
    """Fejér–Riesz: p(t) = |sum_j a_j e^{i pi j t}|^2 / (2 sum_j |a_j|^2)."""
    torch.manual_seed(3)
    params = torch.randn(2, 2 * 7, dtype=torch.float64)
    dist, _, _ = fourier_density(params)
    t = torch.linspace(-1, 1, 101, dtype=torch.float64)
    a = (params[:, :7] + 1j * params[:, 7:]).numpy()
    series = np.exp(1j * np.pi * np.arange(7)[None, :] * t.numpy()[:, None]) @ a.T  # (101, 2)
    expected = np.abs(series.T) ** 2 / (2 * (np.abs(a) ** 2).sum(1, keepdims=True))
    np.testing.assert_allclose(dist.pdf(t).numpy(), expected, atol=1e-12)


def test_cdf_matches_numerical_integral_and_sampling_inverts_it():
    torch.manual_seed(4)
    head = _trained_like(FourierHeadMLE(3, 8).double())
    dist = head(torch.randn(2, 3, dtype=torch.float64))
    x = torch.linspace(-1, 1, 4001, dtype=torch.float64)
    numeric = torch.cumulative_trapezoid(dist.pdf(x), x, dim=-1)
    torch.testing.assert_close(dist.cdf(x)[:, 1:], numeric, atol=1e-6, rtol=0)
    ends = dist.cdf(torch.tensor([-1.0, 1.0], dtype=torch.float64))
    torch.testing.assert_close(ends, torch.tensor([[0.0, 1.0]] * 2, dtype=torch.float64),
                               atol=1e-12, rtol=0)
    gen = torch.Generator().manual_seed(0)
    samples = head.sample(4000, generator=gen)  # the head remembers its last batch
    assert samples.shape == (2, 4000)
    # the empirical CDF of the samples follows the closed-form CDF (Kolmogorov distance)
    for row in range(2):
        s, _ = samples[row].sort()
        ecdf = torch.arange(1, 4001, dtype=torch.float64) / 4000
        ks = (dist.cdf(s[None].expand(2, -1))[row] - ecdf).abs().max().item()
        assert ks < 0.03


def test_mle_recovers_a_bimodal_density():
    """Trained by NLL on a two-bump target, the head puts its mass on the bumps."""
    torch.manual_seed(5)
    y = torch.cat([torch.randn(300) * 0.08 - 0.5, torch.randn(300) * 0.08 + 0.5]).clamp(-1, 1)
    head = FourierHeadMLE(1, num_frequencies=10, regularization_gamma=1e-6)
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    h = torch.ones(len(y), 1)
    for _ in range(150):
        loss = head.nll(h, y) + head.regularization_loss()
        opt.zero_grad()
        loss.backward()
        opt.step()
    p = head(h[:1]).pdf(torch.tensor([-0.5, 0.0, 0.5]))[0]
    assert p[0] > 4 * p[1] and p[2] > 4 * p[1]
    assert loss.item() < 0  # sharper than uniform (whose NLL is log 2 > 0)


def test_classification_head_learns_bin_distribution():
    torch.manual_seed(6)
    head = FourierHead(1, num_bins=20, num_frequencies=8)
    target = torch.full((512,), 14)
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    for _ in range(200):
        loss = F.cross_entropy(head(torch.ones(512, 1)), target) + head.regularization_loss()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert head(torch.ones(1, 1)).argmax().item() == 14


def test_gradcheck_float64():
    torch.manual_seed(7)
    head = _trained_like(FourierHead(3, 12, 4, regularization_gamma=0.1), 10).double()
    h = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)

    def f(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return head(features), head.regularization_loss()

    assert torch.autograd.gradcheck(f, (h,))
    a = torch.randn(2, 5, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda u, v: regularization(*autocorrelation(u, v)), (a, b))
    mle = _trained_like(FourierHeadMLE(3, 4), 10).double()
    y = torch.tensor([0.3, -0.7], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: mle.nll(x, y), (h,))


def test_masked_high_coefficients_equal_a_smaller_head():
    """Zeroing a_j for j > n gives exactly an n-frequency head (what the batched sweep uses)."""
    torch.manual_seed(8)
    params = torch.randn(3, 2 * 5, dtype=torch.float64)  # N = 4
    big = torch.zeros(3, 2 * 9, dtype=torch.float64)  # N = 8, a_5..a_8 zero
    big[:, :5], big[:, 9:14] = params[:, :5], params[:, 5:]
    small_d, small_re, small_im = fourier_density(params)
    big_d, big_re, big_im = fourier_density(big)
    torch.testing.assert_close(big_d.pmf(50), small_d.pmf(50))
    torch.testing.assert_close(regularization(big_re, big_im), regularization(small_re, small_im))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"num_bins": 1}, "num_bins"),
    ({"num_frequencies": 0}, "num_frequencies"),
    ({"regularization_gamma": -1.0}, "regularization_gamma"),
    ({"value_range": (1.0, 1.0)}, "value_range"),
    ({"value_range": (0.0, math.inf)}, "value_range"),
])
def test_bad_construction(kwargs, match):
    args = {"dim_in": 4, "num_bins": 10, "num_frequencies": 3} | kwargs
    with pytest.raises(ValueError, match=match):
        FourierHead(**args)


def test_bad_inputs():
    head = FourierHead(4, 10, 3, value_range=(0.0, 2.0))
    with pytest.raises(RuntimeError, match="forward pass"):
        head.pdf(torch.tensor([1.0]))
    with pytest.raises(ValueError, match=r"\(\.\.\., 4\)"):
        head(torch.randn(2, 5))
    with pytest.raises(ValueError, match="NaN"):
        head(torch.tensor([[0.0, float("nan"), 0.0, 0.0]]))
    head(torch.randn(2, 4))
    with pytest.raises(ValueError, match="outside the value range"):
        head.pdf(torch.tensor([0.5, 2.5]))
    with pytest.raises(ValueError, match="outside the value range"):
        head.cdf(torch.tensor([-0.1]))
    with pytest.raises(ValueError, match="must be"):
        head.pdf(torch.rand(3, 7))  # batch of 2, not 3
    with pytest.raises(ValueError, match="n must be"):
        head.sample(0)
    mle = FourierHeadMLE(4, 3)
    with pytest.raises(ValueError, match="targets"):
        mle.nll(torch.randn(5, 4), torch.zeros(4))
