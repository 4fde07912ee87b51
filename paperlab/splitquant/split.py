"""SplitQuant layer splitting: one layer becomes k clustered layers whose outputs are summed.

The paper's pre-processing step, before any quantiser runs:

1. cluster the weights of a Linear layer (the whole matrix) or of a Conv layer (each output
   kernel separately) with 1-D k-means, k = 3;
2. sorted centres c1 < c2 < c3 give boundaries b1 = (c1+c2)/2, b2 = (c2+c3)/2;
3. the *lower* copy keeps w <= b1, the *middle* copy b1 < w < b2, the *upper* copy w >= b2
   (zeros elsewhere); the bias is clustered and split the same way;
4. the layer is replaced by ``lower(x) + middle(x) + upper(x)``, equal to the original in
   exact arithmetic (float32 differs only by summation rounding).

Each copy now spans a narrower value range, so a per-row quantiser gives it a finer step.
Everything here is pure PyTorch/NumPy: no I/O, no printing.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from paperlab.splitquant.quantize import check_module

# Layers whose weight is clustered and split. Conv layers are clustered per output kernel.
SPLITTABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
# Element-wise activations the optional activation split may wrap (chunking commutes with them).
ELEMENTWISE_ACTIVATIONS = (
    nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.LeakyReLU, nn.ELU, nn.Hardswish,
    nn.Mish,
)


# --------------------------------------------------------------------------- 1-D k-means


def _lloyd_sorted(xs: np.ndarray, prefix: np.ndarray, prefix_sq: np.ndarray,
                  centres: np.ndarray, max_iter: int) -> tuple[np.ndarray, float]:
    """Lloyd iterations on sorted 1-D data; returns (sorted centres, inertia).

    In 1-D every cluster of a k-means partition is a contiguous run of the sorted data, so an
    iteration is k binary searches plus prefix-sum look-ups: O(k log n), not O(k n).
    """
    cuts = None
    for _ in range(max_iter):
        centres = np.sort(centres)
        bounds = (centres[:-1] + centres[1:]) / 2
        new_cuts = np.concatenate(([0], np.searchsorted(xs, bounds, side="right"), [len(xs)]))
        if cuts is not None and np.array_equal(new_cuts, cuts):
            break
        cuts = new_cuts
        counts = np.diff(cuts)
        sums = prefix[cuts[1:]] - prefix[cuts[:-1]]
        # An empty cluster keeps its old centre (the next iteration may refill it).
        centres = np.where(counts > 0, sums / np.maximum(counts, 1), centres)
    counts = np.diff(cuts)
    sums = prefix[cuts[1:]] - prefix[cuts[:-1]]
    sq = prefix_sq[cuts[1:]] - prefix_sq[cuts[:-1]]
    inertia = float(np.sum(sq - sums**2 / np.maximum(counts, 1)))
    return np.sort(centres), inertia


def _kmeans_pp_init(xs: np.ndarray, k: int, rng: np.random.Generator,
                    max_points: int = 4096) -> np.ndarray:
    """k-means++ seeding (D^2 sampling) on 1-D data, from a random subsample of ``max_points``
    when the data are larger (seeding only picks starting points; Lloyd then uses all data).
    """
    if len(xs) > max_points:
        xs = xs[rng.choice(len(xs), max_points, replace=False)]
    centres = [xs[rng.integers(len(xs))]]
    dist = (xs - centres[0]) ** 2
    for _ in range(1, k):
        total = dist.sum()
        pick = rng.integers(len(xs)) if total <= 0 else rng.choice(len(xs), p=dist / total)
        centres.append(xs[pick])
        dist = np.minimum(dist, (xs - xs[pick]) ** 2)
    return np.array(centres)


def kmeans_1d(values: torch.Tensor, k: int = 3, seed: int = 0, n_init: int = 10,
              max_iter: int = 300) -> torch.Tensor:
    """Deterministic 1-D k-means of all entries of ``values``.

    Runs Lloyd's algorithm from a quantile initialisation and ``n_init - 1`` seeded k-means++
    initialisations and keeps the lowest inertia (the reference code used an unseeded
    scikit-learn ``KMeans``; this is the same objective, reproducible).

    Args:
        values: any-shaped float tensor with at least ``k`` finite entries.
        k: number of clusters (>= 2).
        seed: seed of the k-means++ restarts.
        n_init: number of initialisations (>= 1).
        max_iter: Lloyd iterations per initialisation.

    Returns:
        float64 tensor of shape ``(k,)``: the sorted cluster centres. With fewer than ``k``
        distinct values the distinct values are returned, the largest repeated.
    """
    _check_k(k)
    if not isinstance(values, torch.Tensor):
        raise TypeError(f"values must be a torch tensor, got {type(values).__name__}")
    if n_init < 1 or max_iter < 1:
        raise ValueError(f"n_init and max_iter must be >= 1, got {n_init}, {max_iter}")
    xs = np.sort(values.detach().reshape(-1).to(torch.float64).cpu().numpy())
    if xs.size < k:
        raise ValueError(f"k-means with k={k} needs at least {k} values, got {xs.size}")
    if not np.isfinite(xs).all():
        raise ValueError("k-means input contains NaN or infinite values")
    distinct = xs[np.concatenate(([True], np.diff(xs) > 0))]
    if distinct.size <= k:
        padded = np.concatenate((distinct, np.full(k - distinct.size, distinct[-1])))
        return torch.from_numpy(padded)
    prefix = np.concatenate(([0.0], np.cumsum(xs)))
    prefix_sq = np.concatenate(([0.0], np.cumsum(xs**2)))
    rng = np.random.default_rng(seed)
    inits = [np.quantile(xs, (np.arange(k) + 0.5) / k)]
    inits += [_kmeans_pp_init(xs, k, rng) for _ in range(n_init - 1)]
    best_centres, best_inertia = None, np.inf
    for init in inits:
        centres, inertia = _lloyd_sorted(xs, prefix, prefix_sq, init.astype(np.float64), max_iter)
        if inertia < best_inertia:
            best_centres, best_inertia = centres, inertia
    return torch.from_numpy(best_centres)


def cluster_boundaries(values: torch.Tensor, k: int = 3, seed: int = 0) -> torch.Tensor:
    """Midpoints of the sorted k-means centres, ``b_j = (c_j + c_{j+1}) / 2``; shape ``(k-1,)``."""
    centres = kmeans_1d(values, k, seed)
    return ((centres[:-1] + centres[1:]) / 2).to(values.dtype)


def cluster_labels(values: torch.Tensor, boundaries: torch.Tensor) -> torch.Tensor:
    """Cluster index of each entry (0 = lower ... k-1 = upper), the paper's split rule.

    ``values`` has shape ``(..., m)`` and ``boundaries`` shape ``(..., k-1)`` with the same
    leading dimensions (one set of boundaries per leading index, e.g. per conv kernel).
    Lower is ``w <= b1``, upper is ``w >= b_{k-1}`` (unless already lower), the rest falls
    between; every entry gets exactly one label, even when boundaries coincide.
    """
    if not isinstance(values, torch.Tensor) or not isinstance(boundaries, torch.Tensor):
        raise TypeError("values and boundaries must be torch tensors")
    if boundaries.dim() < 1 or boundaries.shape[-1] < 1 or (
            boundaries.dim() > 1 and boundaries.shape[:-1] != values.shape[:-1]):
        raise ValueError(f"boundaries must be (k-1,) or (..., k-1) with the leading dimensions "
                         f"of values {tuple(values.shape)}, k >= 2; got {tuple(boundaries.shape)}")
    if not (torch.isfinite(values).all() and torch.isfinite(boundaries).all()):
        raise ValueError("values and boundaries must be finite (found NaN or inf)")
    if bool((boundaries.diff(dim=-1) < 0).any()):
        raise ValueError("boundaries must be sorted in increasing order along the last dimension")
    labels = torch.searchsorted(boundaries.contiguous(), values.contiguous(), right=False)
    top = boundaries.shape[-1]
    upper = (values >= boundaries[..., -1:]) & (labels > 0)
    return torch.where(upper, torch.full_like(labels, top), labels)


def split_tensor(values: torch.Tensor, k: int = 3, seed: int = 0,
                 per_row: bool = False) -> torch.Tensor:
    """Split ``values`` into ``k`` disjoint cluster pieces that sum to it.

    Args:
        values: float tensor (a weight or bias) with at least ``k`` entries (per row when
            ``per_row``).
        k: number of clusters.
        seed: k-means seed.
        per_row: cluster each slice ``values[i]`` on its own (conv output kernels).

    Returns:
        tensor of shape ``(k, *values.shape)``; piece ``j`` holds the entries of cluster ``j``
        (sorted from lowest to highest centre) and zeros elsewhere.
    """
    _check_k(k)
    rows = values.detach().reshape(values.shape[0] if per_row else 1, -1)
    bounds = torch.stack([cluster_boundaries(row, k, seed) for row in rows])
    labels = cluster_labels(rows, bounds).reshape(values.shape)
    ids = torch.arange(k, device=values.device).reshape(-1, *([1] * values.dim()))
    return torch.where(labels.unsqueeze(0) == ids, values.detach().unsqueeze(0),
                       torch.zeros((), dtype=values.dtype, device=values.device))


# --------------------------------------------------------------------------- modules


class SplitLayer(nn.Module):
    """``k`` copies of one layer, each holding one weight cluster; the outputs are summed.

    Attributes:
        clusters: ``nn.ModuleList`` of the copies, lower cluster first. They are ordinary
            ``nn.Linear``/``nn.ConvNd`` modules, so any quantiser that handles those (e.g.
            optimum-quanto) quantises each copy with its own scales.
    """

    def __init__(self, clusters: list[nn.Module]) -> None:
        super().__init__()
        if len(clusters) < 2:
            raise ValueError(f"a SplitLayer needs at least 2 clusters, got {len(clusters)}")
        self.clusters = nn.ModuleList(clusters)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.clusters[0](x)
        for layer in self.clusters[1:]:
            out = out + layer(x)
        return out


class SplitActivation(nn.Module):
    """Apply an element-wise activation to ``k`` chunks of the input along ``dim`` and concatenate.

    Exactly equal to the activation itself; it only lets an activation quantiser use a
    separate scale per chunk (the paper's optional activation split).
    """

    def __init__(self, activation: nn.Module, k: int = 3, dim: int = 1) -> None:
        super().__init__()
        _check_k(k)
        self.chunks = nn.ModuleList(copy.deepcopy(activation) for _ in range(k))
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not -x.dim() <= self.dim < x.dim():
            raise ValueError(f"SplitActivation splits dim {self.dim}, but the input has "
                             f"{x.dim()} dimensions {tuple(x.shape)}")
        parts = torch.tensor_split(x, len(self.chunks), dim=self.dim)
        return torch.cat([act(p) for act, p in zip(self.chunks, parts, strict=True)], dim=self.dim)


# --------------------------------------------------------------------------- model surgery


def _check_k(k: int) -> None:
    if not isinstance(k, int) or isinstance(k, bool) or k < 2:
        raise ValueError(f"k must be an integer >= 2 (the paper uses 3), got {k!r}")


def _is_quantized(module: nn.Module) -> bool:
    weight = getattr(module, "weight", None)
    plain = weight is None or type(weight) in (torch.Tensor, nn.Parameter)
    return not plain or getattr(module, "weight_qtype", None) is not None


def _check_float_model(model: nn.Module) -> None:
    """Splitting works on a float model, before any quantiser (clear error otherwise)."""
    check_module(model)
    for name, module in model.named_modules():
        if _is_quantized(module):
            raise TypeError(f"layer '{name}' ({type(module).__name__}) is already quantised; "
                            "split_model must run before the quantiser")
        weight = getattr(module, "weight", None)
        if isinstance(weight, torch.Tensor) and not weight.is_floating_point():
            raise TypeError(f"layer '{name}' has a {weight.dtype} weight; split_model needs a "
                            "floating-point model (split before quantising)")
    for name, param in model.named_parameters():
        if not param.is_floating_point():
            raise TypeError(f"parameter '{name}' has dtype {param.dtype}; split_model needs a "
                            "floating-point model (split before quantising)")
        if not torch.isfinite(param).all():
            raise ValueError(f"parameter '{name}' contains NaN or infinite values")


def _out_projections(model: nn.Module) -> set[int]:
    """ids of ``nn.MultiheadAttention.out_proj`` layers: MHA reads their weight directly."""
    return {id(m.out_proj) for m in model.modules() if isinstance(m, nn.MultiheadAttention)}


def skip_reason(module: nn.Module, k: int = 3,
                out_projections: set[int] | None = None) -> str | None:
    """Why ``module`` is not split (``None`` when it is split). The spec's skip rules."""
    if not hasattr(module, "weight") or module.weight is None:
        return "no weight"
    name = type(module).__name__
    if "Norm" in name:
        return "normalisation layer"
    if "Embedding" in name:
        return "embedding"
    if out_projections and id(module) in out_projections:
        return "multi-head-attention out-projection"
    if not isinstance(module, SPLITTABLE):
        return f"unsupported layer type {name}"
    conv = isinstance(module, nn.modules.conv._ConvNd)
    if (module.weight[0].numel() if conv else module.weight.numel()) < k:
        return f"fewer than k={k} weights to cluster"
    return None


def _leaves(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    for name, module in model.named_modules():
        if name and not list(module.children()):
            yield name, module


def splittable_layers(model: nn.Module, k: int = 3) -> list[str]:
    """Names of the leaf layers :func:`split_model` would split."""
    _check_k(k)
    check_module(model)
    outs = _out_projections(model)
    return [name for name, m in _leaves(model) if skip_reason(m, k, outs) is None]


def split_layer(layer: nn.Module, k: int = 3, seed: int = 0, split_bias: bool = True) -> SplitLayer:
    """Split one Linear/Conv layer into a :class:`SplitLayer` of ``k`` clustered copies.

    The whole weight matrix is clustered for a Linear layer, each output kernel separately
    for a Conv layer. The bias is clustered on its own (``split_bias``); otherwise, or when
    it has fewer than ``k`` entries, it stays whole in the middle copy.

    Raises:
        ValueError: ``k < 2``, or the layer has fewer than ``k`` weights (per kernel for conv).
        TypeError: the layer is not a float Linear/Conv, or is already quantised.
    """
    _check_k(k)
    if not isinstance(layer, SPLITTABLE):
        raise TypeError(f"split_layer handles Linear and Conv layers, got {type(layer).__name__}")
    _check_float_model(layer)
    reason = skip_reason(layer, k)
    if reason is not None:
        raise ValueError(f"cannot split {type(layer).__name__} with weight shape "
                         f"{tuple(layer.weight.shape)}: {reason}")
    per_kernel = isinstance(layer, nn.modules.conv._ConvNd)
    weights = split_tensor(layer.weight, k, seed, per_row=per_kernel)
    bias = layer.bias
    if bias is not None and split_bias and bias.numel() >= k:
        biases = split_tensor(bias, k, seed)
    elif bias is not None:
        biases = torch.zeros((k, *bias.shape), dtype=bias.dtype, device=bias.device)
        biases[k // 2] = bias.detach()
    copies = []
    for j in range(k):
        piece = copy.deepcopy(layer)
        with torch.no_grad():
            piece.weight.copy_(weights[j])
            if bias is not None:
                piece.bias.copy_(biases[j])
        copies.append(piece)
    return SplitLayer(copies)


def _set_child(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, new)


def split_model(model: nn.Module, k: int = 3, seed: int = 0, split_bias: bool = True,
                split_activations: bool = False, inplace: bool = False) -> nn.Module:
    """SplitQuant pre-processing: replace every eligible layer by ``k`` clustered copies.

    Eligible: leaf Linear/Conv1d/2d/3d layers, except normalisation layers, embeddings, the
    ``nn.MultiheadAttention`` out-projection (MHA uses its weight without calling it) and
    layers with fewer than ``k`` weights (per kernel for conv). Unlike the reference code, a
    layer whose bias is all zeros is split too.

    Args:
        model: a floating-point model, not yet quantised.
        k: clusters per layer (the paper: 3 = lower, middle, upper).
        seed: seed of the k-means restarts (the result is deterministic given it).
        split_bias: cluster and split the bias as well (the paper does).
        split_activations: also wrap element-wise activation modules in
            :class:`SplitActivation` (off in the paper's experiments).
        inplace: modify ``model`` itself instead of a deep copy.

    Returns:
        the split model; it computes the same function as ``model`` (up to float rounding).

    Raises:
        ValueError: ``k < 2`` or NaN/inf parameters.
        TypeError: integer or already-quantised layers.
    """
    _check_k(k)
    _check_float_model(model)
    out = model if inplace else copy.deepcopy(model)
    outs = _out_projections(out)
    for name, module in list(_leaves(out)):
        if skip_reason(module, k, outs) is None:
            _set_child(out, name, split_layer(module, k, seed, split_bias))
        elif split_activations and isinstance(module, ELEMENTWISE_ACTIVATIONS):
            _set_child(out, name, SplitActivation(module, k))
    return out


def effective_weight(layer: nn.Module) -> torch.Tensor:
    """The float weight a layer computes with (a quantised weight is dequantised)."""
    weight = layer.weight
    if type(weight) in (torch.Tensor, nn.Parameter):
        return weight.detach()
    return weight.dequantize().detach()  # optimum-quanto QTensor


def _plain_layer(layer: nn.Module, weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Module:
    """A plain ``nn.Linear``/``nn.ConvNd`` with ``layer``'s shape and the given parameters."""
    if isinstance(layer, nn.Linear):
        new = nn.Linear(layer.in_features, layer.out_features, bias=bias is not None)
    else:
        conv = next(c for c in (nn.Conv1d, nn.Conv2d, nn.Conv3d) if isinstance(layer, c))
        new = conv(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
                   layer.padding, layer.dilation, layer.groups, bias is not None,
                   layer.padding_mode)
    new = new.to(device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        new.weight.copy_(weight)
        if bias is not None:
            new.bias.copy_(bias)
    return new


def merge_split_layers(model: nn.Module, inplace: bool = False) -> nn.Module:
    """Fold every :class:`SplitLayer` back into one float layer (the deployment form).

    After quantisation each copy holds its own dequantised weight; their sum is one float
    matrix, so the merged model computes the same function as the split one with one matmul
    per layer instead of ``k`` (it gives up the low-bit storage of the copies).
    """
    check_module(model)
    out = model if inplace else copy.deepcopy(model)
    for name, module in list(out.named_modules()):
        if isinstance(module, SplitLayer):
            first = module.clusters[0]
            weight = sum(effective_weight(c) for c in module.clusters)
            biases = [c.bias.detach() for c in module.clusters if c.bias is not None]
            bias = sum(biases) if biases else None
            _set_child(out, name, _plain_layer(first, weight, bias))
    return out
