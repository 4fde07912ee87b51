"""The factored layer against a naive O(Dd) autograd layer, in float64."""

from __future__ import annotations

import pytest
import torch

from paperlab.zloss import SphericalOutputLayer, make_loss

D, d, m = 60, 7, 9
LOSSES = [("z", {"a": 1.0, "b": 2.0}), ("z", {"a": 0.2, "b": 8.0}), ("spherical_softmax", {}),
          ("taylor_softmax", {}), ("mse", {})]


def make_layer(name: str, params: dict, lr: float = 0.3, stabilize_every: int = 4,
               seed: int = 0) -> SphericalOutputLayer:
    return SphericalOutputLayer(d, D, name, lr=lr, stabilize_every=stabilize_every,
                                dtype=torch.float64,
                                generator=torch.Generator().manual_seed(seed), **params)


def random_batch(g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    h = torch.randn(m, d, dtype=torch.float64, generator=g)
    y = torch.randint(0, D, (m,), generator=g)
    y[2] = y[1]  # a repeated class: the sparse V update must add both contributions
    return h, y


@pytest.mark.parametrize("name,params", LOSSES)
def test_loss_and_gradients_equal_naive_autograd(name, params):
    layer = make_layer(name, params)
    h, y = random_batch(torch.Generator().manual_seed(1))
    W = layer.weight.clone().requires_grad_()
    h_req = h.clone().requires_grad_()
    naive = make_loss(name, **params)(h_req @ W.T, y)
    grad_W, grad_h = torch.autograd.grad(naive, (W, h_req))
    torch.testing.assert_close(layer.loss(h, y), naive.detach())
    loss, factored_grad_h = layer.step(h, y)
    torch.testing.assert_close(loss, naive.detach())
    torch.testing.assert_close(factored_grad_h, grad_h)
    torch.testing.assert_close(layer.weight, W.detach() - layer.lr * grad_W)


@pytest.mark.parametrize("name,params", LOSSES)
def test_implicit_W_equals_explicit_sgd_after_k_steps(name, params):
    """k minibatch steps (re-stabilised every 4) against SGD on an explicit W."""
    layer = make_layer(name, params, lr=0.5 if name != "mse" else 0.05)
    W = layer.weight.clone().requires_grad_()
    loss_fn = make_loss(name, **params)
    g = torch.Generator().manual_seed(2)
    for _ in range(12):
        h, y = random_batch(g)
        (grad_W,) = torch.autograd.grad(loss_fn(h @ W.T, y), W)
        layer.step(h, y)
        with torch.no_grad():
            W -= layer.lr * grad_W
    assert not torch.allclose(layer.U, torch.eye(d, dtype=torch.float64))  # U did move
    torch.testing.assert_close(layer.weight, W.detach(), rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(layer.Q, W.detach().T @ W.detach(), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(layer.w_bar, W.detach().sum(0), rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(layer.U_inv @ layer.U, torch.eye(d, dtype=torch.float64))


def test_step_touches_only_target_rows_and_never_all_logits(monkeypatch):
    """The O(d^2) path: V changes only in the target rows and no D-sized product is formed."""
    layer = make_layer("z", {"a": 1.0, "b": 2.0})
    h, y = random_batch(torch.Generator().manual_seed(3))
    V_before = layer.V.clone()

    def forbidden(*args, **kwargs):
        raise AssertionError("step() must not compute all D logits")

    monkeypatch.setattr(layer, "logits", forbidden)
    monkeypatch.setattr(layer, "refresh", forbidden)
    monkeypatch.setattr(type(layer), "weight", property(forbidden))
    layer.step(h, y)
    changed = (layer.V != V_before).any(1)
    untouched = torch.ones(D, dtype=torch.bool)
    untouched[y] = False
    assert changed[y].all() and not changed[untouched].any()


def test_topk_and_log_prob_agree_with_explicit_logits():
    for name in ("spherical_softmax", "taylor_softmax", "z"):
        layer = make_layer(name, {} if name != "z" else {"a": 1.0, "b": 2.0})
        h, y = random_batch(torch.Generator().manual_seed(4))
        layer.step(h, y)
        logits = h @ layer.weight.T
        score = layer.loss_fn.rank_score(logits)
        assert torch.equal(layer.topk(h, 5), score.topk(5, dim=1).indices)
        if layer.loss_fn.log_prob is not None:
            all_lp = torch.stack([layer.log_prob(h, torch.full((m,), c)) for c in range(D)], 1)
            torch.testing.assert_close(all_lp.exp().sum(1), torch.ones(m, dtype=torch.float64))
            torch.testing.assert_close(layer.log_prob(h, y), all_lp.gather(1, y[:, None])[:, 0])


def test_refresh_keeps_W_and_resets_the_factorisation():
    layer = make_layer("taylor_softmax", {})
    g = torch.Generator().manual_seed(5)
    for _ in range(3):
        layer.step(*random_batch(g))
    W = layer.weight.clone()
    layer.refresh()
    torch.testing.assert_close(layer.weight, W)
    assert torch.equal(layer.U, torch.eye(d, dtype=torch.float64))
    assert torch.equal(layer.r, torch.zeros(d, dtype=torch.float64))


def test_training_learns_an_easy_mapping():
    """Recovery: classes determined by one-hot-ish inputs are learned to top-1 = 1."""
    torch.manual_seed(0)
    num, dim = 20, 21
    layer = SphericalOutputLayer(dim, num, "z", lr=0.3, a=1.0, b=3.0, stabilize_every=5,
                                 dtype=torch.float64)
    x = torch.cat([torch.eye(num, dtype=torch.float64), torch.ones(num, 1, dtype=torch.float64)], 1)
    y = torch.arange(num)
    first, _ = layer.step(x, y)
    for _ in range(200):
        last, _ = layer.step(x, y)
    assert last < first / 5
    assert torch.equal(layer.topk(x, 1)[:, 0], y)
    assert layer.refreshes > 0  # the Z-loss drives U towards singular: the fallback was used


def test_refresh_fallback_keeps_sgd_exact():
    """With max_condition tiny, stabilize() refreshes nearly every time; W stays exact."""
    layer = SphericalOutputLayer(d, D, "z", lr=0.5, a=1.0, b=2.0, stabilize_every=1,
                                 max_condition=1.01, dtype=torch.float64,
                                 generator=torch.Generator().manual_seed(7))
    W = layer.weight.clone().requires_grad_()
    g = torch.Generator().manual_seed(8)
    for _ in range(6):
        h, y = random_batch(g)
        (grad_W,) = torch.autograd.grad(layer.loss_fn(h @ W.T, y), W)
        layer.step(h, y)
        with torch.no_grad():
            W -= layer.lr * grad_W
    assert layer.refreshes >= 3
    torch.testing.assert_close(layer.weight, W.detach())


def test_bad_input_is_rejected():
    layer = make_layer("z", {"a": 1.0, "b": 2.0})
    h, y = random_batch(torch.Generator().manual_seed(6))
    with pytest.raises(ValueError, match="targets must lie"):
        layer.step(h, torch.full((m,), D))
    with pytest.raises(ValueError, match="targets must lie"):
        layer.step(h, torch.full((m,), -1))
    with pytest.raises(ValueError, match="targets must have shape"):
        layer.step(h, y[:3])
    with pytest.raises(ValueError, match="h must have shape"):
        layer.step(h[:, :3], y)
    with pytest.raises(ValueError, match="empty"):
        layer.step(h[:0], y[:0])
    h_bad = h.clone()
    h_bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite"):
        layer.step(h_bad, y)
    with pytest.raises(ValueError, match="k must be"):
        layer.topk(h, D + 1)
    with pytest.raises(ValueError, match="defines no probability"):
        layer.log_prob(h, y)
    with pytest.raises(ValueError):
        SphericalOutputLayer(d, 1)
    with pytest.raises(ValueError, match="lr"):
        SphericalOutputLayer(d, D, lr=0.0)
    with pytest.raises(ValueError, match="max_condition"):
        SphericalOutputLayer(d, D, max_condition=1.0)
    with pytest.raises(ValueError, match="unknown spherical loss"):
        SphericalOutputLayer(d, D, "softmax")
