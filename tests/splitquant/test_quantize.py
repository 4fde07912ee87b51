"""The paper's weight quantiser: error bounds, exact cases, sizes, quanto agreement, bad input."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from paperlab.splitquant import (
    fake_quantize_weight,
    group_size_for,
    quantize_model,
    quanto_available,
    quanto_quantize,
    split_model,
    weight_storage_bytes,
)
from paperlab.splitquant import quantize as quantize_module

needs_quanto = pytest.mark.skipif(not quanto_available(), reason="optimum-quanto not installed")


@pytest.mark.parametrize(("length", "expected"),
                         [(27, None), (128, None), (256, 128), (384, 128), (1536, 128),
                          (160, 32), (192, 96), (130, None)])
def test_group_size_rule(length: int, expected: int | None) -> None:
    assert group_size_for(length) == expected


def test_int8_round_trip_error_is_at_most_half_a_step_per_row() -> None:
    w = torch.randn(32, 200, generator=torch.Generator().manual_seed(0))
    err = (fake_quantize_weight(w, 8) - w).abs()
    step = w.abs().amax(1, keepdim=True) / 127
    assert (err <= step / 2 + 1e-7).all()
    # symmetric: the largest magnitude of each row is exact
    rows = torch.arange(32)
    top = w.abs().argmax(1)
    assert torch.allclose(fake_quantize_weight(w, 8)[rows, top], w[rows, top], atol=1e-7)


@pytest.mark.parametrize("bits", [2, 4])
def test_affine_round_trip_error_is_at_most_half_a_step_per_group(bits: int) -> None:
    w = torch.randn(8, 384, generator=torch.Generator().manual_seed(bits)) * 3
    q = fake_quantize_weight(w, bits)
    groups, q_groups = w.reshape(-1, 128), q.reshape(-1, 128)
    step = (groups.amax(1, keepdim=True) - groups.amin(1, keepdim=True)) / (2**bits - 1)
    assert ((q_groups - groups).abs() <= step / 2 + 1e-6).all()
    # each group has at most 2^bits levels and keeps its minimum exactly
    assert all(len(torch.unique(g)) <= 2**bits for g in q_groups)
    assert torch.allclose(q_groups.amin(1), groups.amin(1), atol=1e-6)


def test_groups_follow_rows_not_columns() -> None:
    w = torch.zeros(2, 256)
    w[0, :128] = torch.linspace(-1, 1, 128)
    # the second group of row 0 and all of row 1 are constant: reproduced exactly
    q = fake_quantize_weight(w, 2)
    assert torch.equal(q[0, 128:], w[0, 128:]) and torch.equal(q[1], w[1])


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_constant_and_zero_rows_are_exact(bits: int) -> None:
    w = torch.stack([torch.zeros(50), torch.full((50,), -0.3)])
    assert torch.allclose(fake_quantize_weight(w, bits), w, atol=1e-7)
    assert torch.isfinite(fake_quantize_weight(w, bits)).all()


def test_conv_weights_use_one_row_per_output_kernel() -> None:
    w = torch.randn(4, 3, 3, 3)
    w[2] *= 1000
    q = fake_quantize_weight(w, 2)
    # a huge kernel does not coarsen the others' steps
    assert (q[0] - w[0]).abs().max() <= (w[0].max() - w[0].min()) / 6 + 1e-6


def test_quantize_model_touches_only_linear_and_conv_weights() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(10, 16), nn.Linear(16, 16), nn.LayerNorm(16))
    out = quantize_model(model, 2)
    assert torch.equal(out[0].weight, model[0].weight)
    assert torch.equal(out[2].weight, model[2].weight)
    assert torch.equal(out[1].bias, model[1].bias)
    assert not torch.equal(out[1].weight, model[1].weight)
    assert len(torch.unique(out[1].weight[0])) <= 4


def test_storage_bytes() -> None:
    model = nn.Linear(256, 4)
    assert weight_storage_bytes(model) == (256 * 4 + 4) * 4
    # INT2: 2 bits/weight + (scale, shift) float32 per 128-group; bias float32
    assert weight_storage_bytes(model, 2) == 256 * 4 * 2 // 8 + 4 * 2 * 2 * 4 + 4 * 4
    # INT8: 1 byte/weight + one float32 scale per row
    assert weight_storage_bytes(model, 8) == 256 * 4 + 4 * 4 + 4 * 4
    split = split_model(nn.Sequential(model))
    assert weight_storage_bytes(split, 2) == 3 * weight_storage_bytes(model, 2)


@needs_quanto
@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("shape", [(384, 48), (100, 7), (16, 8, 3)])
def test_agrees_with_optimum_quanto(bits: int, shape: tuple[int, ...]) -> None:
    torch.manual_seed(bits)
    layer = nn.Linear(*shape) if len(shape) == 2 else nn.Conv2d(*shape)
    for p in layer.parameters():
        nn.init.normal_(p)
    model = split_model(nn.Sequential(layer))  # copies with zero-filled rows and groups too
    ours = quantize_model(model, bits)
    theirs = quanto_quantize(model, bits)
    for a, b in zip(ours[0].clusters, theirs[0].clusters, strict=True):
        assert torch.allclose(a.weight, b.weight.dequantize(), atol=1e-6, rtol=0)


def test_quanto_adapter_explains_a_missing_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(quantize_module, "quanto_available", lambda: False)
    with pytest.raises(ImportError, match="pip install optimum-quanto"):
        quantize_module.quanto_quantize(nn.Linear(4, 4), 4)


@pytest.mark.parametrize("bits", [1, 3, 16, None])
def test_bad_bits(bits) -> None:
    with pytest.raises(ValueError, match="bits must be one of"):
        fake_quantize_weight(torch.randn(4, 4), bits)


def test_bad_weights() -> None:
    with pytest.raises(ValueError, match="NaN"):
        fake_quantize_weight(torch.tensor([[1.0, float("nan")]]), 4)
    with pytest.raises(TypeError, match="float tensor"):
        fake_quantize_weight(torch.ones(3, 3, dtype=torch.int32), 4)
    with pytest.raises(ValueError, match="out_features"):
        fake_quantize_weight(torch.ones(5), 4)


def test_keep_zeros_leaves_exact_zeros_at_zero() -> None:
    w = torch.randn(6, 256, generator=torch.Generator().manual_seed(5))
    w[w.abs() < 0.5] = 0  # like a split copy: the other clusters' positions are zero
    model = nn.Sequential(nn.Linear(256, 6))
    with torch.no_grad():
        model[0].weight.copy_(w)
    plain = quantize_model(model, 2)[0].weight
    kept = quantize_model(model, 2, keep_zeros=True)[0].weight
    assert (plain[w == 0] != 0).any()  # the affine grid has no exact zero here
    assert (kept[w == 0] == 0).all() and torch.equal(kept[w != 0], plain[w != 0])
