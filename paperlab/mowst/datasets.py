"""Loaders for the staged node-classification graphs, with their shipped or seeded splits.

Every loader returns a :class:`Graph` (features, labels, undirected CSR adjacency, splits).
PyG ``InMemoryDataset`` classes write ``processed/`` next to ``raw/``, so the read-only staged
folder is first copied to the cache with :func:`paperlab.core.data.writable_copy`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch_geometric.datasets import (
    Actor,
    HeterophilousGraphDataset,
    LINKXDataset,
    Planetoid,
    WebKB,
)
from torch_geometric.utils import coalesce, remove_self_loops, to_torch_csr_tensor, to_undirected

from paperlab.core.data import writable_copy

HOW_TO_GET = "The graphs are read in their original files from <data root>/graphs/."


@dataclass
class Graph:
    """One data set: ``x [N, F]``, ``y [N]`` (-1 = unlabelled), CSR ``adj_t [N, N]`` (undirected).

    ``splits`` is a list of ``(train_idx, val_idx, test_idx)``; :meth:`split` picks one per seed.
    """

    name: str
    x: Tensor
    y: Tensor
    adj_t: Tensor
    num_classes: int
    splits: list[tuple[Tensor, Tensor, Tensor]]
    metric: str
    homophilous: bool
    split_source: str

    @property
    def num_nodes(self) -> int:
        return self.x.size(0)

    @property
    def num_edges(self) -> int:
        """Directed edge count (each undirected edge counted twice)."""
        return int(self.adj_t.values().numel())

    def split(self, seed: int) -> tuple[Tensor, Tensor, Tensor]:
        """Split ``seed mod len(splits)``: shipped split i for seed i, as in the benchmarks."""
        return self.splits[seed % len(self.splits)]

    def describe(self) -> dict[str, object]:
        train, val, test = self.splits[0]
        return {"name": self.name, "nodes": self.num_nodes, "edges": self.num_edges,
                "features": self.x.size(1), "classes": self.num_classes, "metric": self.metric,
                "splits": f"{len(self.splits)} x {len(train)}/{len(val)}/{len(test)} "
                          f"({self.split_source})"}


def _build(name: str, x: Tensor, y: Tensor, edge_index: Tensor, splits: list, metric: str,
           homophilous: bool, split_source: str) -> Graph:
    n = x.size(0)
    edge_index, _ = remove_self_loops(to_undirected(edge_index, num_nodes=n))
    edge_index = coalesce(edge_index, num_nodes=n)
    adj_t = to_torch_csr_tensor(edge_index.flip(0), size=(n, n))
    num_classes = int(y.max()) + 1
    return Graph(name, x.float(), y.long(), adj_t, num_classes, splits, metric, homophilous,
                 split_source)


def _mask_splits(train: Tensor, val: Tensor, test: Tensor) -> list[tuple[Tensor, Tensor, Tensor]]:
    """Boolean masks ``[N]`` or ``[N, k]`` -> k index splits."""
    if train.dim() == 1:
        train, val, test = train[:, None], val[:, None], test[:, None]
    return [tuple(m[:, i].nonzero().squeeze(-1) for m in (train, val, test))
            for i in range(train.size(1))]


def random_splits(y: Tensor, num_splits: int = 10, seed: int = 0,
                  fractions: tuple[float, float] = (0.5, 0.25)) -> list[tuple[Tensor, ...]]:
    """Seeded 50/25/25 splits of the labelled nodes (``y >= 0``), as LINKX does for Facebook100."""
    labelled = (y >= 0).nonzero().squeeze(-1)
    gen = torch.Generator().manual_seed(seed)
    n_train = int(fractions[0] * len(labelled))
    n_val = int(fractions[1] * len(labelled))
    splits = []
    for _ in range(num_splits):
        perm = labelled[torch.randperm(len(labelled), generator=gen)]
        splits.append((perm[:n_train], perm[n_train:n_train + n_val], perm[n_train + n_val:]))
    return splits


def _pyg(root: Path, folder: str, make: Callable[[str], object]) -> object:
    """Copy ``root/folder`` to the cache (one copy per source path) and load it there."""
    tag = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:8]
    return make(str(writable_copy(root / folder, f"mowst-{folder}-{tag}")))[0]


def _masked(name: str, folder: str, make: Callable[[str], object], metric: str,
            homophilous: bool, split_source: str) -> Callable[[Path], Graph]:
    """A loader for a PyG data set that ships its splits as ``train/val/test_mask``."""
    def load(root: Path) -> Graph:
        d = _pyg(root, folder, make)
        return _build(name, d.x, d.y, d.edge_index,
                      _mask_splits(d.train_mask, d.val_mask, d.test_mask), metric, homophilous,
                      split_source)
    return load


def _planetoid(name: str) -> Callable[[Path], Graph]:
    return _masked(name.lower(), "planetoid", lambda r: Planetoid(r, name), "accuracy", True,
                   "Planetoid public split")


def _geom_gcn(name: str) -> Callable[[Path], Graph]:
    if name == "actor":
        return _masked(name, "actor", Actor, "accuracy", False, "Geom-GCN 60/20/20")
    return _masked(name, "webkb", lambda r: WebKB(r, name.capitalize()), "accuracy", False,
                   "Geom-GCN 60/20/20")


def _heterophilous(name: str) -> Callable[[Path], Graph]:
    return _masked(name, "heterophilous",
                   lambda r: HeterophilousGraphDataset(r, name.capitalize()), "roc_auc", False,
                   "Platonov et al. 50/25/25")


def _filtered(name: str) -> Callable[[Path], Graph]:
    def load(root: Path) -> Graph:
        path = root / "heterophilous_filtered" / f"{name}_filtered.npz"
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: torch.from_numpy(z[k]) for k in
                      ("node_features", "node_labels", "edges", "train_masks", "val_masks",
                       "test_masks")}
        edges = arrays["edges"]
        if edges.dim() != 2 or edges.size(1) != 2:
            raise ValueError(f"{path}: 'edges' must be [E, 2], got {tuple(edges.shape)}")
        splits = _mask_splits(arrays["train_masks"].T, arrays["val_masks"].T,
                              arrays["test_masks"].T)
        return _build(f"{name}_filtered", arrays["node_features"], arrays["node_labels"],
                      edges.T.contiguous(), splits, "accuracy", False, "Platonov et al. 48/32/20")
    return load


def _facebook100(name: str) -> Callable[[Path], Graph]:
    def load(root: Path) -> Graph:
        d = _pyg(root, "linkx", lambda r: LINKXDataset(r, name))
        return _build(name, d.x, d.y, d.edge_index, random_splits(d.y), "accuracy", False,
                      "seeded 50/25/25 of labelled")
    return load


# name -> (folder under <data root>/graphs, loader)
LOADERS: dict[str, tuple[str, Callable[[Path], Graph]]] = {
    "cora": ("planetoid/Cora", _planetoid("Cora")),
    "citeseer": ("planetoid/CiteSeer", _planetoid("CiteSeer")),
    "cornell": ("webkb/cornell", _geom_gcn("cornell")),
    "texas": ("webkb/texas", _geom_gcn("texas")),
    "wisconsin": ("webkb/wisconsin", _geom_gcn("wisconsin")),
    "actor": ("actor", _geom_gcn("actor")),
    "minesweeper": ("heterophilous/minesweeper", _heterophilous("minesweeper")),
    "tolokers": ("heterophilous/tolokers", _heterophilous("tolokers")),
    "chameleon_filtered": ("heterophilous_filtered/chameleon_filtered.npz", _filtered("chameleon")),
    "squirrel_filtered": ("heterophilous_filtered/squirrel_filtered.npz", _filtered("squirrel")),
    "amherst41": ("linkx/amherst41", _facebook100("amherst41")),
    "reed98": ("linkx/reed98", _facebook100("reed98")),
    "cornell5": ("linkx/cornell5", _facebook100("cornell5")),
}


def locate(name: str, require: Callable[[str, str], Path]) -> Path:
    """The file or folder data set ``name`` (a key of :data:`LOADERS`) is read from.

    ``require(relpath, how_to_get)`` resolves a path under the data root and raises a clear
    error naming every place looked (pass ``RunContext.require``).
    """
    if name not in LOADERS:
        raise KeyError(f"unknown data set '{name}'; known: {', '.join(LOADERS)}")
    return require(f"graphs/{LOADERS[name][0]}", HOW_TO_GET)


def load(name: str, require: Callable[[str, str], Path]) -> Graph:
    """Load data set ``name`` (a key of :data:`LOADERS`); ``require`` as in :func:`locate`."""
    path = locate(name, require)
    relpath, loader = LOADERS[name]
    root = path.parents[len(Path(relpath).parts) - 1]
    return loader(root)
