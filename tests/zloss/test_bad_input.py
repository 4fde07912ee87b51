"""Bad input at the Z-loss system's public entry points raises ValueError/TypeError naming it.

Before these checks: ``FullSoftmaxLayer.logits``/``log_prob`` returned NaN for NaN features and
failed inside torch (matmul shapes, gather index) for the wrong feature size or a class id
``>= D``; ``topk`` with ``k = 0`` returned an empty answer and ``k > D`` failed inside torch;
``SphericalOutputLayer.rows`` raised torch's IndexError; ``FullSoftmaxLayer(0, D)`` failed with
ZeroDivisionError; ``ngram_examples(stream, -1)`` raised numpy's IndexError.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from paperlab.zloss import (
    AdaptiveSoftmaxLayer,
    FullSoftmaxLayer,
    SphericalOutputLayer,
    log_softmax_loss,
    make_loss,
)
from paperlab.zloss.data import ngram_examples

DIM, D = 4, 10
FAST = settings(max_examples=20, deadline=None, derandomize=True)
LOSSES = {name: make_loss(name) for name in ("z", "spherical_softmax", "taylor_softmax", "mse")}
LAYERS = {
    "factored": SphericalOutputLayer(DIM, D, generator=torch.Generator().manual_seed(0)),
    "full": FullSoftmaxLayer(DIM, D, generator=torch.Generator().manual_seed(0)),
    "adaptive": AdaptiveSoftmaxLayer(DIM, D),
}
H = torch.randn(3, DIM, generator=torch.Generator().manual_seed(1))
T = torch.tensor([0, 4, 9])

LOSS_FUNCTIONS = {**{f"loss:{k}": v for k, v in LOSSES.items()}, "log_softmax": log_softmax_loss}
PROBABILISTIC = SphericalOutputLayer(DIM, D, loss="spherical_softmax")
H_TARGET_METHODS = {  # name -> f(h, targets)
    **{f"{name}.step": layer.step for name, layer in LAYERS.items()},
    "factored.loss": LAYERS["factored"].loss,
    "factored.log_prob": PROBABILISTIC.log_prob,
    "full.log_prob": LAYERS["full"].log_prob,
}


def _with_targets(method):
    return lambda h: method(h, T[:1].expand(len(h)))


H_METHODS = {  # name -> f(h)
    **{f"{name}.topk": (lambda h, layer=layer: layer.topk(h, 2)) for name, layer in LAYERS.items()},
    "factored.logits": LAYERS["factored"].logits,
    "full.logits": LAYERS["full"].logits,
    **{k: _with_targets(f) for k, f in H_TARGET_METHODS.items()},
}


@FAST
@given(name=st.sampled_from(sorted(LOSS_FUNCTIONS)), n=st.integers(1, 4),
       bad=st.one_of(st.integers(D, 3 * D), st.integers(-3 * D, -1)), data=st.data())
def test_target_out_of_range(name, n, bad, data):
    targets = torch.zeros(n, dtype=torch.long)
    targets[data.draw(st.integers(0, n - 1))] = bad
    with pytest.raises(ValueError, match=rf"targets must lie in \[0, {D}\)"):
        LOSS_FUNCTIONS[name](torch.randn(n, D), targets)


@FAST
@given(name=st.sampled_from(sorted(H_TARGET_METHODS)),
       bad=st.one_of(st.integers(D, 3 * D), st.integers(-3 * D, -1)), pos=st.integers(0, 2))
def test_layer_target_out_of_range(name, bad, pos):
    targets = T.clone()
    targets[pos] = bad
    with pytest.raises(ValueError, match=rf"targets must lie in \[0, {D}\)"):
        H_TARGET_METHODS[name](H, targets)


@FAST
@given(name=st.sampled_from(sorted(H_METHODS)), i=st.integers(0, 2), j=st.integers(0, DIM - 1),
       value=st.sampled_from([float("nan"), float("inf"), -float("inf")]))
def test_non_finite_features(name, i, j, value):
    h = H.clone()
    h[i, j] = value
    with pytest.raises(ValueError, match="h contains NaN or infinite values"):
        H_METHODS[name](h)


@pytest.mark.parametrize("name", sorted(H_METHODS))
@pytest.mark.parametrize("h,problem", [
    (torch.randn(3, DIM + 1), rf"h must have shape \(m, {DIM}\)"),
    (torch.randn(DIM), rf"h must have shape \(m, {DIM}\)"),
    (torch.randn(0, DIM), r"h is empty \(m = 0\)"),
])
def test_malformed_features(name, h, problem):
    with pytest.raises(ValueError, match=problem):
        H_METHODS[name](h)


@pytest.mark.parametrize("name", sorted(H_METHODS))
def test_features_that_are_not_tensors(name):
    with pytest.raises(TypeError, match="h must be a torch tensor"):
        H_METHODS[name](H.numpy())


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize("k", [0, -1, D + 1, 2.0])
def test_topk_k(name, k):
    with pytest.raises(ValueError, match=rf"k must be an integer in \[1, {D}\]"):
        LAYERS[name].topk(H, k)


@pytest.mark.parametrize("name", sorted(LOSS_FUNCTIONS))
@pytest.mark.parametrize("logits,targets,problem", [
    (torch.tensor([[float("nan"), 1.0]]), torch.tensor([0]), "logits contain NaN"),
    (torch.randn(2, 3), torch.tensor([0.0, 1.0]), "targets must be integer class indices"),
    (torch.randn(2, 3), torch.tensor([0, 1, 2]), r"targets must have shape \(2,\)"),
    (torch.randn(3), torch.tensor([0]), r"logits must have shape \(N, D\)"),
    (torch.randn(0, 3), torch.zeros(0, dtype=torch.long), "need at least one example"),
    (torch.randn(2, 1), torch.tensor([0, 0]), "two classes"),
    (torch.randint(0, 3, (2, 3)), torch.tensor([0, 1]), "logits must be a float tensor"),
])
def test_malformed_logits_and_targets(name, logits, targets, problem):
    with pytest.raises(ValueError, match=problem):
        LOSS_FUNCTIONS[name](logits, targets)


def test_rows_and_construction():
    with pytest.raises(ValueError, match=rf"targets must lie in \[0, {D}\)"):
        LAYERS["factored"].rows(torch.tensor([D]))
    for make in (SphericalOutputLayer, FullSoftmaxLayer, AdaptiveSoftmaxLayer):
        with pytest.raises(ValueError, match="need integers dim >= 1 and num_classes >= 2"):
            make(0, D)
        with pytest.raises(ValueError, match="need integers dim >= 1 and num_classes >= 2"):
            make(DIM, 1)
        with pytest.raises(ValueError, match="need integers dim >= 1 and num_classes >= 2"):
            make(2.5, D)
        with pytest.raises(ValueError, match="lr must be a positive finite number"):
            make(DIM, D, lr=float("nan"))
    with pytest.raises(ValueError, match="unknown spherical loss 'foo'"):
        SphericalOutputLayer(DIM, D, loss="foo")


@FAST
@given(context=st.integers(-3, 0), n=st.integers(0, 8))
def test_ngram_context(context, n):
    with pytest.raises(ValueError, match="context must be a positive number of words"):
        ngram_examples(np.arange(n), context)


def test_ngram_stream():
    with pytest.raises(ValueError, match="stream must be a 1-D array of word ids"):
        ngram_examples(np.zeros((4, 4), dtype=np.int64), 2)
    with pytest.raises(ValueError, match="stream must be a 1-D array of word ids"):
        ngram_examples(np.arange(6.0), 2)
    with pytest.raises(ValueError, match="too short for context 6"):
        ngram_examples(np.arange(6), 6)
    contexts, nxt = ngram_examples(np.arange(6), 2)  # still works
    assert contexts.tolist()[0] == [0, 1] and nxt.tolist() == [2, 3, 4, 5]


def test_numpy_integers_are_sizes():
    layer = FullSoftmaxLayer(np.int64(DIM), np.int64(D))
    assert layer.topk(H, np.int64(2)).shape == (3, 2)
