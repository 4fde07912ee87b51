"""Weight-only quantisers: the paper's scheme as plain fake-quant, and an optimum-quanto adapter.

The paper quantises with optimum-quanto ``quantize(model, weights=qint{2,4,8},
activations=None); freeze(model)``. Its weight scheme, which :func:`fake_quantize_weight`
implements in a few readable lines (and the tests check against quanto itself):

* INT8: symmetric per output row, ``scale = absmax / 127``, ``q = clamp(round(w / scale),
  -128, 127)``, ``w_hat = q * scale``.
* INT4 / INT2: affine min-max per output row, in groups of 128 inputs when a row is longer
  than 128 (quanto shrinks the group by 32 until it divides the row, down to 32),
  ``scale = (max - min) / (2^b - 1)``, float ``shift = -min``,
  ``q = clamp(round((w + shift) / scale), 0, 2^b - 1)``, ``w_hat = q * scale - shift``.

Biases, embeddings and normalisation layers stay float; activations are not quantised.
"""

from __future__ import annotations

import copy
import importlib.util
from numbers import Integral

import torch
from torch import nn

SUPPORTED_BITS = (2, 4, 8)
# Layers whose weights are quantised (quanto: Linear and Conv2d; other convs alike here).
QUANTISED_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_SCALE_BYTES = 4  # float32 scale (and shift) per row or group


def _check_bits(bits: int) -> None:
    if bits not in SUPPORTED_BITS or isinstance(bits, bool):
        raise ValueError(f"bits must be one of {SUPPORTED_BITS}, got {bits!r}")


def _check_group_size(group_size: int) -> None:
    if not isinstance(group_size, Integral) or isinstance(group_size, bool) or group_size < 1:
        raise ValueError(f"group_size must be a positive integer, got {group_size!r}")


def check_module(model: object) -> None:
    """``TypeError`` unless ``model`` is a ``torch.nn.Module``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected a torch.nn.Module, got {type(model).__name__}")


def group_size_for(row_length: int, group_size: int = 128) -> int | None:
    """Inputs per INT2/INT4 quantisation group for a row of ``row_length`` (quanto's rule).

    ``None`` means one group per row: rows no longer than ``group_size``, or rows that no
    group size in ``group_size, group_size - 32, ..., 32`` divides.
    """
    _check_group_size(group_size)
    if row_length < 1:
        raise ValueError(f"row_length must be >= 1, got {row_length}")
    if row_length <= group_size:
        return None
    size = group_size
    while row_length % size != 0 and size > 32:
        size -= 32
    return size if row_length % size == 0 else None


def fake_quantize_weight(weight: torch.Tensor, bits: int, group_size: int = 128) -> torch.Tensor:
    """Quantise then dequantise a weight with the paper's scheme (see the module docstring).

    Args:
        weight: float tensor ``(out_features, ...)``; each slice ``weight[i]`` is one row.
        bits: 8 (symmetric per row) or 4 / 2 (affine min-max per row-group).
        group_size: INT2/INT4 group length before quanto's divisor adjustment.

    Returns:
        the dequantised weight, same shape and dtype. A row (group) of equal values is
        reproduced exactly, e.g. an all-zero row of a split copy.
    """
    _check_bits(bits)
    _check_group_size(group_size)
    if not isinstance(weight, torch.Tensor) or not weight.is_floating_point():
        raise TypeError(f"weight must be a float tensor, got {type(weight).__name__} "
                        f"{getattr(weight, 'dtype', '')}")
    if weight.dim() < 2 or weight.numel() == 0:
        raise ValueError(f"weight must have shape (out_features, ...) with no empty dimension, "
                         f"got {tuple(weight.shape)}")
    if not torch.isfinite(weight).all():
        raise ValueError("weight contains NaN or infinite values")
    w = weight.detach()
    rows = w.reshape(w.shape[0], -1)
    if bits == 8:
        scale = rows.abs().amax(dim=1, keepdim=True) / 127
        safe = torch.where(scale > 0, scale, torch.ones_like(scale))
        return (torch.clamp(torch.round(rows / safe), -128, 127) * scale).reshape(w.shape)
    size = group_size_for(rows.shape[1], group_size)
    groups = rows.reshape(-1, size) if size else rows
    low = groups.amin(dim=1, keepdim=True)
    scale = (groups.amax(dim=1, keepdim=True) - low) / (2**bits - 1)
    shift = -low
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    codes = torch.clamp(torch.round((groups + shift) / safe), 0, 2**bits - 1)
    return (codes * scale - shift).reshape(w.shape)


def _quantised_layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, QUANTISED_LAYERS)]


def quantize_model(model: nn.Module, bits: int, group_size: int = 128, inplace: bool = False,
                   keep_zeros: bool = False) -> nn.Module:
    """Weight-only fake quantisation of every Linear/Conv layer (split copies included).

    Returns a model whose layer weights are replaced by their dequantised values, so it runs
    in float and shows exactly the accuracy the low-bit weights give.

    ``keep_zeros`` (not in the paper) keeps weights that are exactly zero at zero. The affine
    INT2/INT4 grid does not contain 0 in general, so the zeros a split copy holds for the
    other clusters' positions are otherwise quantised to a small non-zero level.
    """
    _check_bits(bits)
    _check_group_size(group_size)
    check_module(model)
    out = model if inplace else copy.deepcopy(model)
    for layer in _quantised_layers(out):
        with torch.no_grad():
            quantised = fake_quantize_weight(layer.weight, bits, group_size)
            if keep_zeros:
                quantised = torch.where(layer.weight == 0, torch.zeros_like(quantised), quantised)
            layer.weight.copy_(quantised)
    return out


def weight_storage_bytes(model: nn.Module, bits: int | None = None, group_size: int = 128) -> int:
    """Bytes to store ``model`` with its Linear/Conv weights at ``bits`` (``None``: all float).

    Quantised weights count ``bits`` per weight plus one float32 scale per row (INT8) or a
    float32 scale and shift per group (INT4/INT2); every other parameter and buffer counts
    at its own dtype. A split model pays for the codes and scales of each copy.
    """
    if bits is not None:
        _check_bits(bits)
    _check_group_size(group_size)
    check_module(model)
    quantised = {id(layer.weight) for layer in _quantised_layers(model)} if bits else set()
    total = sum(b.numel() * b.element_size() for b in model.buffers())
    for param in model.parameters():
        if id(param) not in quantised:
            total += param.numel() * param.element_size()
            continue
        rows, row_length = param.shape[0], param[0].numel()
        if bits == 8:
            scales = rows
        else:
            size = group_size_for(row_length, group_size) or row_length
            scales = 2 * rows * (row_length // size)
        total += (param.numel() * bits + 7) // 8 + scales * _SCALE_BYTES
    return total


def quanto_available() -> bool:
    """Whether optimum-quanto (the paper's quantiser) can be imported."""
    return importlib.util.find_spec("optimum") is not None and \
        importlib.util.find_spec("optimum.quanto") is not None


def quanto_quantize(model: nn.Module, bits: int, inplace: bool = False) -> nn.Module:
    """The paper's backend: optimum-quanto weight-only ``qint{bits}``, then ``freeze``.

    Raises:
        ImportError: optimum-quanto is not installed (``pip install optimum-quanto``).
    """
    _check_bits(bits)
    check_module(model)
    if not quanto_available():
        raise ImportError("optimum-quanto is not installed: pip install optimum-quanto")
    from optimum.quanto import freeze, qint2, qint4, qint8, quantize

    out = model if inplace else copy.deepcopy(model)
    quantize(out, weights={2: qint2, 4: qint4, 8: qint8}[bits], activations=None)
    freeze(out)
    return out
