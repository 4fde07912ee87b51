"""Layer splitting: clustering, the split rule, equivalence, skip rules and bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from paperlab.splitquant import (
    SplitActivation,
    SplitLayer,
    cluster_boundaries,
    cluster_labels,
    fake_quantize_weight,
    kmeans_1d,
    merge_split_layers,
    quantize_model,
    split_layer,
    split_model,
    split_tensor,
    splittable_layers,
)


def _optimal_inertia(values: np.ndarray, k: int) -> float:
    """Brute force: the best partition of sorted 1-D data into k contiguous runs."""
    xs = np.sort(values)
    best = np.inf
    for cuts in itertools.combinations(range(1, len(xs)), k - 1):
        parts = np.split(xs, cuts)
        best = min(best, sum(((p - p.mean()) ** 2).sum() for p in parts))
    return best


def _inertia(values: np.ndarray, centres: np.ndarray) -> float:
    return float(((values[:, None] - centres[None, :]) ** 2).min(1).sum())


def test_kmeans_recovers_separated_clusters() -> None:
    gen = torch.Generator().manual_seed(0)
    values = torch.cat([torch.randn(300, generator=gen) * 0.1 + c for c in (-5.0, 0.5, 4.0)])
    centres = kmeans_1d(values[torch.randperm(900, generator=gen)], k=3)
    assert torch.allclose(centres, torch.tensor([-5.0, 0.5, 4.0], dtype=torch.float64), atol=0.05)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kmeans_matches_brute_force_optimum(seed: int) -> None:
    values = np.random.default_rng(seed).standard_t(df=2, size=13)
    centres = kmeans_1d(torch.from_numpy(values), k=3, seed=seed).numpy()
    assert _inertia(values, centres) == pytest.approx(_optimal_inertia(values, 3), rel=1e-9)


def test_kmeans_no_worse_than_sklearn_and_deterministic() -> None:
    from sklearn.cluster import KMeans

    values = np.random.default_rng(3).standard_t(df=3, size=2000)
    ours = kmeans_1d(torch.from_numpy(values), k=3, seed=7)
    assert torch.equal(ours, kmeans_1d(torch.from_numpy(values), k=3, seed=7))
    sk = KMeans(n_clusters=3, n_init=4, random_state=0).fit(values.reshape(-1, 1))
    assert _inertia(values, ours.numpy()) <= sk.inertia_ * (1 + 1e-6)


def test_kmeans_with_fewer_distinct_values_than_k() -> None:
    centres = kmeans_1d(torch.tensor([2.0, 2.0, 7.0, 7.0]), k=3)
    assert centres.tolist() == [2.0, 7.0, 7.0]


def test_boundaries_are_midpoints_of_centres() -> None:
    values = torch.tensor([-4.0, -4.2, -3.8, 0.0, 0.1, -0.1, 6.0, 6.2, 5.8])
    assert torch.allclose(cluster_boundaries(values), torch.tensor([-2.0, 3.0]), atol=1e-6)


def test_split_rule_at_and_between_boundaries() -> None:
    bounds = torch.tensor([-1.0, 1.0])
    values = torch.tensor([-3.0, -1.0, -0.999, 0.0, 0.999, 1.0, 3.0])
    # lower: w <= b1, middle: b1 < w < b2, upper: w >= b2 (the paper's rule)
    assert cluster_labels(values, bounds).tolist() == [0, 0, 1, 1, 1, 2, 2]


def test_coincident_boundaries_give_each_entry_one_label() -> None:
    labels = cluster_labels(torch.tensor([-1.0, 0.0, 1.0]), torch.tensor([0.0, 0.0]))
    assert labels.tolist() == [0, 0, 2]


def test_split_tensor_pieces_are_disjoint_ordered_and_sum_exactly() -> None:
    w = torch.randn(16, 24, generator=torch.Generator().manual_seed(1))
    pieces = split_tensor(w, k=3)
    assert pieces.shape == (3, 16, 24)
    assert torch.equal(pieces.sum(0), w)
    assert ((pieces != 0).sum(0) <= 1).all()
    b1, b2 = cluster_boundaries(w).tolist()
    assert pieces[0][pieces[0] != 0].max() <= b1
    middle = pieces[1][pieces[1] != 0]
    assert middle.min() > b1 and middle.max() < b2
    assert pieces[2][pieces[2] != 0].min() >= b2


def test_conv_is_clustered_per_output_kernel() -> None:
    conv = nn.Conv2d(2, 3, 3)
    with torch.no_grad():
        conv.weight[1] *= 100  # a kernel on another scale gets its own boundaries
    split = split_layer(conv)
    for j, piece in enumerate(split.clusters):
        kernel = conv.weight[1].detach()
        bounds = cluster_boundaries(kernel)
        labels = cluster_labels(kernel.reshape(1, -1), bounds[None]).reshape(kernel.shape)
        expect = torch.where(labels == j, kernel, torch.zeros(()))
        assert torch.equal(piece.weight[1].detach(), expect)


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(20, 32), nn.GELU(), nn.LayerNorm(32), nn.Linear(32, 5))


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 4, 3, stride=2),
                         nn.Flatten(), nn.Linear(4 * 3 * 3, 3)).eval()


@pytest.mark.parametrize(("make", "x", "n_layers"),
                         [(_mlp, torch.randn(7, 20), 2), (_cnn, torch.randn(2, 3, 8, 8), 3)])
def test_split_model_is_equivalent_in_float32(make, x, n_layers: int) -> None:
    model = make()
    split = split_model(model)
    n_split = sum(isinstance(m, SplitLayer) for m in split.modules())
    assert n_split == len(splittable_layers(model)) == n_layers
    with torch.no_grad():
        assert torch.allclose(split(x), model(x), atol=1e-5, rtol=1e-5)


def test_split_model_on_a_hugging_face_bert() -> None:
    from transformers import BertConfig, BertModel

    cfg = BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=16)
    torch.manual_seed(0)
    bert = BertModel(cfg).eval()
    split = split_model(bert)
    kinds = {type(m).__name__ for m in split.modules()}
    assert "SplitLayer" in kinds and "Embedding" in kinds and "LayerNorm" in kinds
    ids = torch.randint(0, 50, (3, 10))
    with torch.no_grad():
        assert torch.allclose(split(ids).last_hidden_state, bert(ids).last_hidden_state, atol=1e-5)


def test_multihead_attention_out_projection_is_not_split() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8))
    model.attn = nn.MultiheadAttention(8, 2, batch_first=True)
    assert splittable_layers(model) == ["0"]
    split = split_model(model)
    assert not isinstance(split.attn.out_proj, SplitLayer)
    x = torch.randn(2, 4, 8)
    with torch.no_grad():
        assert torch.allclose(split.attn(x, x, x)[0], model.attn(x, x, x)[0])


def test_all_zero_bias_layer_is_still_split() -> None:
    layer = nn.Linear(10, 6)
    nn.init.zeros_(layer.bias)
    split = split_model(nn.Sequential(layer))
    assert isinstance(split[0], SplitLayer)
    x = torch.randn(4, 10)
    with torch.no_grad():
        assert torch.allclose(split(x), layer(x), atol=1e-6)


def test_bias_is_clustered_or_kept_whole() -> None:
    layer = nn.Linear(10, 30)
    split = split_layer(layer)
    assert torch.equal(sum(c.bias for c in split.clusters), layer.bias)
    assert all((c.bias != 0).sum() < 30 for c in split.clusters)
    whole = split_layer(layer, split_bias=False)
    assert torch.equal(whole.clusters[1].bias, layer.bias)
    assert not whole.clusters[0].bias.any() and not whole.clusters[2].bias.any()


def test_activation_split_is_optional_and_exact() -> None:
    model = _mlp()
    assert not any(isinstance(m, SplitActivation) for m in split_model(model).modules())
    split = split_model(model, split_activations=True)
    assert isinstance(split[1], SplitActivation)
    x = torch.randn(7, 20)
    with torch.no_grad():
        assert torch.allclose(split(x), model(x), atol=1e-5)


def test_split_copies_by_default_and_inplace_on_request() -> None:
    model = _mlp()
    before = [p.clone() for p in model.parameters()]
    split_model(model)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert split_model(model, inplace=True) is model
    assert isinstance(model[0], SplitLayer)


def test_merge_equals_split_before_and_after_quantisation() -> None:
    model, x = _cnn(), torch.randn(2, 3, 8, 8)
    split = split_model(model)
    quantised = quantize_model(split, 2)
    with torch.no_grad():
        assert torch.allclose(merge_split_layers(split)(x), split(x), atol=1e-5)
        merged = merge_split_layers(quantised)
        assert not any(isinstance(m, SplitLayer) for m in merged.modules())
        assert torch.allclose(merged(x), quantised(x), atol=1e-5)


def test_splitting_shrinks_int2_error_on_weights_with_outliers() -> None:
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(64, 256, generator=gen) * 0.02
    w[torch.rand(w.shape, generator=gen) < 0.01] *= 30  # 1% outliers stretch every row's range
    plain = fake_quantize_weight(w, 2)
    pieces = split_tensor(w)
    split = sum(fake_quantize_weight(p, 2) for p in pieces)
    assert (split - w).pow(2).mean() < 0.5 * (plain - w).pow(2).mean()


@pytest.mark.parametrize("k", [1, 0, -3, 2.5, True])
def test_bad_k(k) -> None:
    with pytest.raises(ValueError, match="k must be an integer >= 2"):
        split_model(_mlp(), k=k)


def test_layers_with_fewer_than_k_weights() -> None:
    model = nn.Sequential(nn.Linear(1, 2), nn.Linear(2, 3))
    assert splittable_layers(model) == ["1"]
    split = split_model(model)
    assert isinstance(split[0], nn.Linear) and isinstance(split[1], SplitLayer)
    with pytest.raises(ValueError, match="fewer than k=3 weights"):
        split_layer(nn.Linear(1, 2))
    with pytest.raises(ValueError, match="at least 3 values"):
        kmeans_1d(torch.tensor([1.0, 2.0]))


def test_integer_models_are_rejected() -> None:
    model = _mlp()
    model[0].weight = nn.Parameter(torch.ones(32, 20, dtype=torch.int8), requires_grad=False)
    with pytest.raises(TypeError, match="floating-point model"):
        split_model(model)
    buffered = nn.Linear(4, 4)
    del buffered.weight
    buffered.register_buffer("weight", torch.ones(4, 4, dtype=torch.int8))
    with pytest.raises(TypeError, match="torch.int8 weight"):
        split_model(nn.Sequential(buffered))


def test_already_quantised_models_are_rejected() -> None:
    pytest.importorskip("optimum.quanto")
    from paperlab.splitquant import quanto_quantize

    with pytest.raises(TypeError, match="already quantised"):
        split_model(quanto_quantize(_mlp(), 4))


def test_nan_weights_are_rejected() -> None:
    model = _mlp()
    with torch.no_grad():
        model[0].weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        split_model(model)


def test_split_layer_rejects_other_layer_types() -> None:
    with pytest.raises(TypeError, match="Linear and Conv"):
        split_layer(nn.LayerNorm(8))
