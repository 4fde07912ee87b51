"""Losses on logits: independent formulas, the spec's gradient, invariances, bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from paperlab.zloss import losses
from paperlab.zloss.losses import (
    log_softmax_loss,
    make_loss,
    mse,
    spherical_softmax,
    taylor_softmax,
    z_loss,
)

N, D = 6, 40


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(N, D, dtype=torch.float64, generator=g) * 3
    return logits, torch.randint(0, D, (N,), generator=g)


def test_z_loss_equals_its_definition(batch):
    logits, y = batch
    a, b = 0.7, 2.5
    z = (logits.gather(1, y[:, None]).squeeze(1) - logits.mean(1)) / logits.std(1, unbiased=False)
    expected = F.softplus(a * (b - z)) / a
    torch.testing.assert_close(z_loss(a, b)(logits, y, reduction="none"), expected)
    torch.testing.assert_close(z_loss(a, b)(logits, y), expected.mean())
    torch.testing.assert_close(z_loss(a, b)(logits, y, reduction="sum"), expected.sum())


def test_z_loss_gradient_matches_spec_closed_form(batch):
    """g = alpha 1 + beta o + gamma e_c with the spec's alpha, beta, gamma (and sum g = 0)."""
    logits, y = batch
    a, b = 1.3, 1.0
    logits = logits.requires_grad_()
    (grad,) = torch.autograd.grad(z_loss(a, b)(logits, y, reduction="sum"), logits)
    o = logits.detach()
    mu, sigma = o.mean(1), o.std(1, unbiased=False)
    z = (o.gather(1, y[:, None]).squeeze(1) - mu) / sigma
    rho = torch.sigmoid(a * (b - z))
    gamma, beta = -rho / sigma, rho * z / (D * sigma**2)
    alpha = rho / (D * sigma) - beta * mu
    expected = alpha[:, None] + beta[:, None] * o + gamma[:, None] * F.one_hot(y, D)
    torch.testing.assert_close(grad, expected)
    torch.testing.assert_close(grad.sum(1), torch.zeros(N, dtype=torch.float64))


def test_other_losses_equal_their_definitions(batch):
    logits, y = batch
    onehot = F.one_hot(y, D).to(logits.dtype)
    torch.testing.assert_close(log_softmax_loss(logits, y), F.cross_entropy(logits, y))
    eps = 0.01
    p_sph = (logits**2 + eps) / (logits**2 + eps).sum(1, keepdim=True)
    torch.testing.assert_close(spherical_softmax(eps)(logits, y),
                               -(p_sph * onehot).sum(1).log().mean())
    t = 1 + logits + logits**2 / 2
    torch.testing.assert_close(taylor_softmax()(logits, y),
                               -((t * onehot).sum(1) / t.sum(1)).log().mean())
    torch.testing.assert_close(mse()(logits, y), ((logits - onehot) ** 2).sum(1).mean())


@pytest.mark.parametrize("shift,scale", [(0.0, 5.0), (-40.0, 1.0), (7.5, 0.01), (1e3, 30.0)])
def test_z_loss_is_shift_and_scale_invariant(batch, shift, scale):
    logits, y = batch
    loss = z_loss(1.0, 3.0)
    torch.testing.assert_close(loss(scale * logits + shift, y, reduction="none"),
                               loss(logits, y, reduction="none"))


def test_log_softmax_is_shift_but_not_scale_invariant(batch):
    """Contrast: the invariance test above could fail for a loss without the property."""
    logits, y = batch
    torch.testing.assert_close(log_softmax_loss(logits + 9.0, y), log_softmax_loss(logits, y))
    assert not torch.allclose(log_softmax_loss(3 * logits, y), log_softmax_loss(logits, y))
    assert not torch.allclose(mse()(logits + 1.0, y), mse()(logits, y))


def test_probabilities_sum_to_one_and_rank_scores_order_them(batch):
    logits, _ = batch
    for loss in (spherical_softmax(), taylor_softmax()):
        log_p = torch.stack([loss.log_prob(*losses.logit_stats(logits, torch.full((N,), c)), D)
                             for c in range(D)], 1)
        torch.testing.assert_close(log_p.exp().sum(1), torch.ones(N, dtype=torch.float64))
        order = loss.rank_score(logits).argsort(1, descending=True)
        assert torch.equal(order, log_p.argsort(1, descending=True)), loss.name


def test_zero_variance_logits_give_finite_loss_and_gradient():
    logits = torch.full((3, D), 2.0, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 5, D - 1])
    loss = z_loss(1.0, 3.0)(logits, y)
    (grad,) = torch.autograd.grad(loss, logits)
    assert torch.isfinite(loss) and torch.isfinite(grad).all()
    torch.testing.assert_close(loss, F.softplus(torch.tensor(3.0, dtype=torch.float64)))


@pytest.mark.parametrize("fn", [z_loss(), log_softmax_loss, spherical_softmax(), taylor_softmax(),
                                mse()])
def test_bad_input_is_rejected(fn, batch):
    logits, y = batch
    with pytest.raises(ValueError, match="targets must lie"):
        fn(logits, torch.full((N,), D))
    with pytest.raises(ValueError, match="targets must lie"):
        fn(logits, torch.full((N,), -1))
    with pytest.raises(ValueError, match="targets must have shape"):
        fn(logits, y[:-1])
    with pytest.raises(ValueError, match="integer"):
        fn(logits, y.double())
    with pytest.raises(ValueError, match="shape"):
        fn(logits[0], y[:1])
    for bad in (float("nan"), float("inf")):
        broken = logits.clone()
        broken[1, 3] = bad
        with pytest.raises(ValueError, match="NaN or infinite"):
            fn(broken, y)
    with pytest.raises(ValueError, match="reduction"):
        fn(logits, y, reduction="avg")


def test_bad_hyperparameters_and_names():
    with pytest.raises(ValueError, match="a > 0"):
        z_loss(a=0.0)
    with pytest.raises(ValueError, match="eps > 0"):
        spherical_softmax(eps=0.0)
    with pytest.raises(ValueError, match="unknown spherical loss"):
        make_loss("log_softmax")
