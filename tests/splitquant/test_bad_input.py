"""Bad input at SplitQuant's public entry points raises ValueError/TypeError naming it.

Before these checks: ``group_size=0`` raised ZeroDivisionError and a negative one was
accepted; an empty weight failed inside torch's reshape/amin; ``cluster_labels`` gave a NaN
weight a label, accepted unsorted or NaN boundaries (wrong clusters) and failed inside
``torch.searchsorted`` on mismatched shapes; NumPy input and non-modules failed with
AttributeError; ``SplitActivation`` with a dimension the input lacks raised torch's
IndexError.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from paperlab.splitquant.quantize import (
    fake_quantize_weight,
    group_size_for,
    quantize_model,
    weight_storage_bytes,
)
from paperlab.splitquant.split import (
    SplitActivation,
    cluster_boundaries,
    cluster_labels,
    kmeans_1d,
    merge_split_layers,
    split_layer,
    split_model,
    split_tensor,
    splittable_layers,
)

FAST = settings(max_examples=20, deadline=None, derandomize=True)
MODEL = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 2))


@FAST
@given(group_size=st.one_of(st.integers(-64, 0), st.sampled_from([64.5, True, "128"])),
       bits=st.sampled_from([2, 4, 8]))
def test_group_size(group_size, bits):
    with pytest.raises(ValueError, match="group_size must be a positive integer"):
        fake_quantize_weight(torch.randn(3, 256), bits, group_size=group_size)
    with pytest.raises(ValueError, match="group_size must be a positive integer"):
        quantize_model(MODEL, bits, group_size=group_size)
    with pytest.raises(ValueError, match="group_size must be a positive integer"):
        weight_storage_bytes(MODEL, bits, group_size=group_size)
    with pytest.raises(ValueError, match="group_size must be a positive integer"):
        group_size_for(256, group_size)


@FAST
@given(bits=st.one_of(st.integers(-3, 16).filter(lambda b: b not in (2, 4, 8)),
                      st.sampled_from([True, 4.5, "8"])))
def test_bits(bits):
    with pytest.raises(ValueError, match=r"bits must be one of \(2, 4, 8\)"):
        fake_quantize_weight(torch.randn(3, 4), bits)
    with pytest.raises(ValueError, match=r"bits must be one of \(2, 4, 8\)"):
        quantize_model(MODEL, bits)


@settings(max_examples=8, deadline=None, derandomize=True)  # each example deep-copies a model twice
@given(rows=st.integers(1, 4), cols=st.integers(1, 40), bits=st.sampled_from([2, 4, 8]),
       value=st.sampled_from([float("nan"), float("inf")]), data=st.data())
def test_non_finite_weights(rows, cols, bits, value, data):
    weight = torch.randn(rows, cols)
    weight[data.draw(st.integers(0, rows - 1)), data.draw(st.integers(0, cols - 1))] = value
    with pytest.raises(ValueError, match="weight contains NaN or infinite values"):
        fake_quantize_weight(weight, bits)
    layer = nn.Linear(cols, rows)
    with torch.no_grad():
        layer.weight.copy_(weight)
    with pytest.raises(ValueError, match="weight contains NaN or infinite values"):
        quantize_model(layer, bits)
    with pytest.raises(ValueError, match="parameter '0.weight' contains NaN or infinite values"):
        split_model(nn.Sequential(layer))


@pytest.mark.parametrize("weight,error,problem", [
    (torch.randn(0, 4), ValueError, "no empty dimension"),
    (torch.randn(3, 0), ValueError, "no empty dimension"),
    (torch.randn(5), ValueError, r"shape \(out_features, \.\.\.\)"),
    (torch.ones(3, 4, dtype=torch.long), TypeError, "weight must be a float tensor"),
    (np.zeros((3, 4)), TypeError, "weight must be a float tensor"),
])
def test_malformed_weights(weight, error, problem):
    with pytest.raises(error, match=problem):
        fake_quantize_weight(weight, 4)


@pytest.mark.parametrize("call", [
    lambda m: quantize_model(m, 4), lambda m: weight_storage_bytes(m, 4), split_model,
    splittable_layers, merge_split_layers,
], ids=["quantize_model", "weight_storage_bytes", "split_model", "splittable_layers",
        "merge_split_layers"])
def test_models_that_are_not_modules(call):
    with pytest.raises(TypeError, match="expected a torch.nn.Module, got dict"):
        call({"weight": torch.randn(2, 2)})


@FAST
@given(values=st.lists(st.floats(-5, 5), min_size=3, max_size=12),
       bad=st.sampled_from([float("nan"), float("inf"), -float("inf")]), data=st.data())
def test_non_finite_values_are_never_clustered(values, bad, data):
    values[data.draw(st.integers(0, len(values) - 1))] = bad
    tensor = torch.tensor(values)
    for call in (kmeans_1d, cluster_boundaries, split_tensor):
        with pytest.raises(ValueError, match="NaN or infinite"):
            call(tensor)
    with pytest.raises(ValueError, match="values and boundaries must be finite"):
        cluster_labels(tensor, torch.tensor([-1.0, 1.0]))


@FAST
@given(bounds=st.lists(st.floats(-5, 5), min_size=2, max_size=4).filter(
    lambda b: any(y < x for x, y in zip(b, b[1:], strict=False))))
def test_unsorted_boundaries(bounds):
    with pytest.raises(ValueError, match="boundaries must be sorted"):
        cluster_labels(torch.linspace(-5, 5, 11, dtype=torch.float64),
                       torch.tensor(bounds, dtype=torch.float64))


@pytest.mark.parametrize("values,bounds,error,problem", [
    (torch.randn(2, 5), torch.randn(3, 2).sort().values, ValueError, "leading dimensions"),
    (torch.randn(5), torch.empty(0), ValueError, "leading dimensions"),
    (torch.randn(5), torch.tensor(0.0), ValueError, "leading dimensions"),
    (np.zeros(5), torch.tensor([0.0]), TypeError, "must be torch tensors"),
])
def test_malformed_boundaries(values, bounds, error, problem):
    with pytest.raises(error, match=problem):
        cluster_labels(values, bounds)


def test_clustering_input():
    with pytest.raises(TypeError, match="values must be a torch tensor"):
        kmeans_1d(np.arange(10.0))
    with pytest.raises(ValueError, match="needs at least 3 values, got 2"):
        split_tensor(torch.randn(2))
    for k in (1, 2.0, True):
        with pytest.raises(ValueError, match="k must be an integer >= 2"):
            split_layer(nn.Linear(4, 4), k)
    with pytest.raises(TypeError, match="split_layer handles Linear and Conv layers"):
        split_layer(nn.Embedding(4, 3))
    with pytest.raises(ValueError, match="fewer than k=3 weights"):
        split_layer(nn.Linear(1, 1))


def test_split_activation_dimension():
    act = SplitActivation(nn.ReLU(), 3, dim=2)
    with pytest.raises(ValueError, match=r"splits dim 2, but the input has 2 dimensions"):
        act(torch.randn(4, 6))
    x = torch.randn(2, 3, 6)
    assert torch.equal(act(x), torch.relu(x))  # valid input still goes through


def test_numpy_integer_group_size():
    weight = torch.randn(3, 256)
    assert torch.equal(fake_quantize_weight(weight, 4, group_size=np.int64(64)),
                       fake_quantize_weight(weight, 4, group_size=64))
