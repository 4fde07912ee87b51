"""The O(Dd) baselines: the hand-written softmax step equals autograd SGD; adaptive learns."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from paperlab.zloss import AdaptiveSoftmaxLayer, FullSoftmaxLayer


def test_full_softmax_step_equals_autograd_sgd():
    g = torch.Generator().manual_seed(0)
    layer = FullSoftmaxLayer(5, 30, lr=0.7, dtype=torch.float64, generator=g)
    W = layer.weight.clone().requires_grad_()
    h = torch.randn(8, 5, dtype=torch.float64, generator=g).requires_grad_()
    y = torch.tensor([0, 3, 3, 29, 7, 7, 7, 1])
    expected = F.cross_entropy(h @ W.T, y)
    grad_W, grad_h = torch.autograd.grad(expected, (W, h))
    loss, layer_grad_h = layer.step(h, y)
    torch.testing.assert_close(loss, expected.detach())
    torch.testing.assert_close(layer_grad_h, grad_h)
    torch.testing.assert_close(layer.weight, W.detach() - 0.7 * grad_W)
    torch.testing.assert_close(layer.log_prob(h.detach(), y),
                               -F.cross_entropy(h.detach() @ layer.weight.T, y, reduction="none"))


def test_adaptive_softmax_learns_and_returns_grad_h():
    torch.manual_seed(0)
    layer = AdaptiveSoftmaxLayer(16, 50, cutoffs=[10, 30], div_value=2.0, lr=0.5)
    h = torch.randn(16, 16)
    y = torch.tensor([0, 1, 2, 3, 5, 8, 12, 15, 20, 25, 31, 36, 40, 44, 47, 49])
    first, grad_h = layer.step(h, y)
    assert grad_h.shape == h.shape and torch.isfinite(grad_h).all()
    for _ in range(300):
        last, _ = layer.step(h, y)
    assert last < first / 2
    assert layer.topk(h, 3).shape == (16, 3)


@pytest.mark.parametrize("layer", [FullSoftmaxLayer(4, 10), AdaptiveSoftmaxLayer(4, 10)])
def test_bad_input_is_rejected(layer):
    h = torch.randn(3, 4)
    with pytest.raises(ValueError, match="targets must lie"):
        layer.step(h, torch.tensor([0, 10, 1]))
    with pytest.raises(ValueError, match="h must have shape"):
        layer.step(torch.randn(3, 5), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="NaN"):
        layer.step(torch.full((3, 4), float("inf")), torch.tensor([0, 1, 2]))
