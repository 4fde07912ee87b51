"""A contextual stochastic block model (CSBM) at the scale Mowst's cost argument is about.

Nodes fall into ``num_classes`` balanced communities. Edges are drawn without an ``N x N``
matrix: each of the ``N * mean_degree / 2`` undirected edges picks a source uniformly, then a
target uniformly among the source's community with probability ``homophily`` and among the
other communities otherwise (a planted-partition SBM with a fixed edge count), so the edge
homophily is ``homophily`` in expectation and the degrees are about Poisson(``mean_degree``).
Self-loops and repeated pairs are dropped (a fraction ~ ``mean_degree * num_classes / N`` of
the edges, noticeable only on tiny graphs); :func:`edge_homophily` and
:attr:`CSBMGraph.mean_degree` give the realised values.

Features are Gaussian around a scaled community mean: ``x_v = s_v mu_{y_v} + noise * eps_v``
with ``mu_c ~ N(0, I / F)`` (norm about 1, two means about sqrt(2) apart) and
``eps_v ~ N(0, I_F)``. The per-node signal ``s_v`` is drawn from a two-point mixture:
``easy_signal`` for a share ``easy_share`` of the nodes (their own features give the class
away: an MLP is enough), ``hard_signal`` for the rest (the class needs the neighbours: the
GNN's nodes). A node's Bayes margin against another class is ``0.71 s_v / noise`` standard
deviations: with the defaults 3.5 for an easy node (1.0 / 0.2), 0.35 for a hard one (0.1 / 0.2).

The nodes differ in their *signal*, not their noise, so that an MLP's confidence tells them
apart: that is what Mowst's gate reads. A mixture of noise scales with the same margins (easy
nodes 0.2, hard ones 2.0) makes the hard nodes' features 9x longer (norm ~20 against ~2.2); an
MLP's logits grow with them and it is most confident where it is most often wrong. On 2x10^4
nodes (seed 0, 16,000 test nodes, 95% Clopper-Pearson intervals) the trained MLP's predictions
with top probability > 0.9 were then 12% of the test nodes, all of them hard and 36.9% [34.8,
39.1] right, and Mowst-GCN's gate, monotone in the MLP's dispersion, shut on the easy nodes
(mean C 0.002 there, 0.7% of the nodes above 0.5). With the signal mixture the norms are alike
(about 2.2 easy, 2.0 hard) and on the same graph the MLP's predictions with top probability
> 0.5 (32% of the test nodes) were 99.9% easy nodes and 99.9% right. There, with the defaults,
the MLP was right on 99.7% [99.5, 99.8] of the easy nodes and 31.7% [30.7, 32.8] of the hard
ones, a GCN on 98.6% [98.3, 98.8] and 91.6% [90.9, 92.2], GraphSAGE on 99.7% [99.5, 99.8] and
83.7% [82.8, 84.5]; Mowst trained on each (``paperlab bench mowst``'s training) gave the easy
nodes a mean confidence of 0.77 (GCN) / 0.73 (SAGE) and the hard ones 0.008 / 0.006, 39% / 37%
of the nodes above C = 0.5, and scored 95.3% [95.0, 95.6] / 92.0% [91.5, 92.4] against the
GNN's 95.1% [94.7, 95.4] / 91.7% [91.3, 92.1] (within noise).

Everything is drawn from one seeded NumPy generator, features in float32 and in row blocks,
so the memory stays at a few arrays of the edge count besides the graph itself (the process
peaked at 2.3 GB resident generating 10^6 nodes of mean degree 20, torch included).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from paperlab.core import checks
from paperlab.mowst.datasets import Graph, random_splits

_BLOCK = 1 << 16  # rows (or edges) drawn per block: bounds the temporaries, fixes the stream


@dataclass(frozen=True)
class CSBM:
    """The generator's settings (defaults: the scale benchmark's graph, minus its size).

    Attributes:
        num_classes: communities = classes (>= 2, default 5).
        num_features: F (>= 1, default 100).
        mean_degree: expected degree before duplicates are dropped (> 0, default 20).
        homophily: share of edges inside a community in expectation, in [0, 1] (default 0.5;
            ``1 / num_classes`` is a graph whose edges ignore the classes).
        easy_share: share of nodes whose features carry the strong signal, in [0, 1] (0.5).
        easy_signal: scale of the class mean in those nodes' features (>= 0, default 1.0).
        hard_signal: scale of the class mean in the others' features (>= 0, default 0.1).
        noise: per-feature noise std of every node (> 0, default 0.2).
        train_share: share of nodes in the training split (default 0.1).
        val_share: share in the validation split (default 0.1); the rest is the test split.
        num_splits: seeded random splits (default 1; split i for seed i).
    """

    num_classes: int = 5
    num_features: int = 100
    mean_degree: float = 20.0
    homophily: float = 0.5
    easy_share: float = 0.5
    easy_signal: float = 1.0
    hard_signal: float = 0.1
    noise: float = 0.2
    train_share: float = 0.1
    val_share: float = 0.1
    num_splits: int = 1

    def __post_init__(self) -> None:
        checks.integer(self.num_classes, "num_classes", low=2)
        checks.integer(self.num_features, "num_features", low=1)
        checks.integer(self.num_splits, "num_splits", low=1)
        checks.real(self.mean_degree, "mean_degree", low=0, low_open=True)
        for name in ("homophily", "easy_share"):
            checks.real(getattr(self, name), name, low=0, high=1)
        for name in ("easy_signal", "hard_signal"):
            checks.real(getattr(self, name), name, low=0)
        checks.real(self.noise, "noise", low=0, low_open=True)
        checks.real(self.train_share, "train_share", low=0, high=1, low_open=True,
                    high_open=True)
        checks.real(self.val_share, "val_share", low=0, high=1, low_open=True, high_open=True)
        if self.train_share + self.val_share >= 1:
            raise ValueError(f"train_share + val_share must be < 1 (the rest is the test "
                             f"split), got {self.train_share} + {self.val_share}")


@dataclass
class CSBMGraph(Graph):
    """A generated :class:`~paperlab.mowst.datasets.Graph` with what made it.

    Attributes:
        easy: ``[N]`` bool, the nodes drawn with the small feature noise.
        spec: the :class:`CSBM` settings.
        seed: the generator's seed.
        generation_s: wall seconds the generation took.
    """

    easy: Tensor
    spec: CSBM
    seed: int
    generation_s: float

    @property
    def mean_degree(self) -> float:
        """Realised mean degree (directed entries of the symmetric adjacency per node)."""
        return self.num_edges / self.num_nodes

    def describe(self) -> dict[str, object]:
        """The data set's row in the record: sizes, settings, realised degree and homophily."""
        return {**super().describe(), "generator": "contextual SBM", "seed": self.seed,
                "mean_degree": round(self.mean_degree, 3),
                "edge_homophily": round(edge_homophily(self.adj_t, self.y), 4),
                "easy_share": round(float(self.easy.float().mean()), 4),
                "settings": {k: getattr(self.spec, k) for k in self.spec.__dataclass_fields__},
                "generation_s": round(self.generation_s, 2)}


def edge_homophily(adj_t: Tensor, y: Tensor) -> float:
    """Share of the stored entries of a CSR ``adj_t [N, N]`` that join two nodes of one class
    (``y [N]``); for a symmetric adjacency, the share of undirected edges."""
    crow, col = adj_t.crow_indices(), adj_t.col_indices()
    if col.numel() == 0:
        raise ValueError("edge homophily of a graph without edges is undefined")
    row = torch.repeat_interleave(torch.arange(crow.numel() - 1), crow.diff())
    return float((y[row] == y[col]).double().mean())


def _edges(rng: np.random.Generator, y: np.ndarray, spec: CSBM, n: int) -> tuple[np.ndarray,
                                                                                  np.ndarray]:
    """``(source, target)`` of the undirected edges, self-loops dropped (duplicates kept)."""
    k = spec.num_classes
    members = np.argsort(y, kind="stable")  # node ids grouped by class
    sizes = np.bincount(y, minlength=k)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    m = int(round(n * spec.mean_degree / 2))
    src, dst = np.empty(m, np.int64), np.empty(m, np.int64)
    for lo in range(0, m, _BLOCK):
        c = min(_BLOCK, m - lo)
        u = rng.integers(0, n, c)
        inside = rng.random(c) < spec.homophily
        cls = np.where(inside, y[u], (y[u] + rng.integers(1, k, c)) % k)
        src[lo:lo + c] = u
        dst[lo:lo + c] = members[starts[cls] + rng.integers(0, sizes[cls])]
    loop = src == dst
    return src[~loop], dst[~loop]


def _symmetric_csr(src: np.ndarray, dst: np.ndarray, n: int) -> Tensor:
    """The CSR ``adj_t [N, N]`` (weights 1) of undirected pairs, repeats merged: O(E log E)."""
    keys = np.concatenate([src * n + dst, dst * n + src])
    del src, dst
    keys = np.unique(keys)  # sorted: row-major order of (row, col)
    rows, cols = np.divmod(keys, n)
    del keys
    crow = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=crow[1:])
    del rows
    return torch.sparse_csr_tensor(torch.from_numpy(crow), torch.from_numpy(cols),
                                   torch.ones(cols.size, dtype=torch.float32), (n, n))


def _features(rng: np.random.Generator, y: np.ndarray, signal: np.ndarray, noise: float,
              num_features: int, num_classes: int) -> Tensor:
    """``x [N, F]`` float32: the class mean scaled by ``signal [N]`` plus Gaussian noise of std
    ``noise``, drawn row block by row block (no ``[N, F]`` temporary besides ``x`` itself)."""
    n = y.size
    means = (rng.standard_normal((num_classes, num_features)) / np.sqrt(num_features)
             ).astype(np.float32)
    x = np.empty((n, num_features), np.float32)
    for lo in range(0, n, _BLOCK):
        hi = min(n, lo + _BLOCK)
        block = rng.standard_normal((hi - lo, num_features), dtype=np.float32)
        block *= noise
        block += signal[lo:hi, None] * means[y[lo:hi]]
        x[lo:hi] = block
    return torch.from_numpy(x)


def contextual_sbm(num_nodes: int, spec: CSBM | None = None, seed: int = 0) -> CSBMGraph:
    """Generate a :class:`CSBM` graph with ``num_nodes`` nodes (see the module docstring).

    Args:
        num_nodes: N, at least ``num_classes * 4`` (every class needs a few nodes for the
            splits) and more than ``mean_degree``.
        spec: the settings (default :class:`CSBM()`: 5 classes, 100 features, mean degree 20,
            homophily 0.5, half the nodes easy for an MLP).
        seed: seeds the one NumPy generator every draw comes from (>= 0); the same seed and
            settings give the same graph, bit for bit.

    Returns:
        A :class:`CSBMGraph`: ``x [N, F]`` float32, ``y [N]`` int64, symmetric CSR ``adj_t``
        without self-loops, ``spec.num_splits`` random splits, accuracy as the metric, the
        ``easy`` mask and the generation time.
    """
    spec = spec or CSBM()
    if not isinstance(spec, CSBM):
        raise TypeError(f"spec must be a CSBM, got {type(spec).__name__}")
    seed = checks.integer(seed, "seed", low=0)
    n = checks.integer(num_nodes, "num_nodes", low=4 * spec.num_classes)
    if spec.mean_degree >= n - 1:
        raise ValueError(f"mean_degree must be below num_nodes - 1 = {n - 1}, got "
                         f"{spec.mean_degree}")
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % spec.num_classes)  # balanced, every class non-empty
    easy = rng.random(n) < spec.easy_share
    signal = np.where(easy, spec.easy_signal, spec.hard_signal).astype(np.float32)
    adj_t = _symmetric_csr(*_edges(rng, y, spec, n), n)
    x = _features(rng, y, signal, np.float32(spec.noise), spec.num_features, spec.num_classes)
    labels = torch.from_numpy(y.astype(np.int64))
    splits = random_splits(labels, spec.num_splits, seed,
                           fractions=(spec.train_share, spec.val_share))
    return CSBMGraph(f"csbm-{n}", x, labels, adj_t, spec.num_classes, splits, "accuracy",
                     spec.homophily > 1 / spec.num_classes, f"seeded random "
                     f"{spec.train_share:g}/{spec.val_share:g}/rest", torch.from_numpy(easy),
                     spec, seed, time.perf_counter() - start)
