"""Small synthetic graphs for the Mowst tests (fast: a few hundred nodes)."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.utils import to_torch_csr_tensor, to_undirected

from paperlab.mowst import NodeTask


def make_task(n: int = 200, num_classes: int = 3, num_features: int = 16,
              feature_signal: float = 1.0, seed: int = 0, csr: bool = True) -> NodeTask:
    """A homophilous SBM-like graph: edges mostly within a class; features = noisy class code."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, num_classes, (n,), generator=g)
    src = torch.randint(0, n, (12 * n,), generator=g)
    dst = torch.randint(0, n, (12 * n,), generator=g)
    keep = (y[src] == y[dst]) | (torch.rand(12 * n, generator=g) < 0.05)
    edge_index = to_undirected(torch.stack([src[keep], dst[keep]]), num_nodes=n)
    code = torch.nn.functional.one_hot(y, num_features).float()
    x = torch.randn(n, num_features, generator=g) + feature_signal * code
    perm = torch.randperm(n, generator=g)
    adj = to_torch_csr_tensor(edge_index.flip(0), size=(n, n)) if csr else edge_index
    a, b = n // 2, 3 * n // 4
    return NodeTask(x, adj, y, perm[:a], perm[a:b], perm[b:], num_classes)


@pytest.fixture
def task() -> NodeTask:
    return make_task()
