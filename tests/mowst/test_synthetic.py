"""The contextual SBM generator: realised statistics, the feature signal, determinism, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from paperlab.mowst.mowst import check_graph
from paperlab.mowst.synthetic import CSBM, CSBMGraph, contextual_sbm, edge_homophily

N = 4000


@pytest.fixture(scope="module")
def graph() -> CSBMGraph:
    return contextual_sbm(N, seed=3)


def _centroid_probe(graph: CSBMGraph, x: torch.Tensor, quiet_only: bool = False
                    ) -> torch.Tensor:
    """Nearest class mean fitted on the training nodes (``quiet_only``: on those whose feature
    norm is below the median, which a model sees too): ``[N]`` bool, right or wrong per node."""
    train = graph.split(0)[0]
    if quiet_only:
        norm = x[train].norm(dim=1)
        train = train[norm < norm.median()]
    means = torch.stack([x[train][graph.y[train] == c].mean(0)
                         for c in range(graph.num_classes)])
    return torch.cdist(x, means).argmin(1) == graph.y


def test_degree_homophily_classes_and_splits_are_as_asked(graph):
    assert graph.mean_degree == pytest.approx(20, rel=0.02)
    assert edge_homophily(graph.adj_t, graph.y) == pytest.approx(0.5, abs=0.02)
    counts = torch.bincount(graph.y, minlength=5)
    assert int(counts.max() - counts.min()) <= 1  # balanced classes
    assert float(graph.easy.float().mean()) == pytest.approx(0.5, abs=0.04)
    assert graph.x.dtype == torch.float32 and graph.x.shape == (N, 100)
    train, val, test = graph.split(0)
    assert (len(train), len(val), len(test)) == (400, 400, 3200)
    assert len(torch.cat([train, val, test]).unique()) == N
    described = graph.describe()
    assert described["edge_homophily"] == round(edge_homophily(graph.adj_t, graph.y), 4)
    assert described["nodes"] == N and described["generation_s"] >= 0


def test_the_adjacency_is_a_simple_symmetric_csr(graph):
    check_graph(graph.x, graph.adj_t, graph.y, graph.num_classes)
    dense = graph.adj_t.to_dense()
    assert torch.equal(dense, dense.T)
    assert float(dense.diagonal().abs().sum()) == 0  # no self-loops
    assert set(graph.adj_t.values().unique().tolist()) == {1.0}  # repeats merged, not summed


@pytest.mark.parametrize("homophily", [0.0, 0.2, 1.0])
def test_homophily_follows_the_setting(homophily):
    g = contextual_sbm(2000, CSBM(homophily=homophily, mean_degree=10), seed=1)
    realised = edge_homophily(g.adj_t, g.y)
    if homophily in (0.0, 1.0):  # every edge is drawn across (inside) the classes
        assert realised == homophily
    else:
        assert realised == pytest.approx(homophily, abs=0.02)
    assert g.homophilous == (homophily > 1 / 5)


def test_easy_nodes_are_separable_from_their_features_and_hard_ones_need_the_graph(graph):
    right = _centroid_probe(graph, graph.x, quiet_only=True)
    easy, hard = graph.easy, ~graph.easy
    assert float(right[easy].float().mean()) > 0.95  # chance is 0.2
    on_hard = float(right[hard].float().mean())
    assert 0.2 < on_hard < 0.6
    # the neighbours' mean feature carries the class where a node's own does not
    degree = graph.adj_t.crow_indices().diff().clamp_min(1).unsqueeze(1)
    neighbours = (graph.adj_t @ graph.x) / degree
    assert float(_centroid_probe(graph, neighbours)[hard].float().mean()) > on_hard + 0.1


def test_a_graph_without_signal_gives_chance():
    g = contextual_sbm(2000, CSBM(easy_share=0.0, hard_noise=50.0), seed=0)
    assert not bool(g.easy.any())
    assert float(_centroid_probe(g, g.x, quiet_only=True)[g.split(0)[2]].float().mean()) < 0.3


def test_same_seed_same_graph_other_seed_another():
    a, b = contextual_sbm(500, seed=7), contextual_sbm(500, seed=7)
    for name in ("x", "y", "easy"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    for part in ("crow_indices", "col_indices", "values"):
        assert torch.equal(getattr(a.adj_t, part)(), getattr(b.adj_t, part)())
    assert all(torch.equal(p, q) for p, q in zip(a.split(0), b.split(0), strict=True))
    c = contextual_sbm(500, seed=8)
    assert not torch.equal(a.x, c.x) and not torch.equal(a.y, c.y)


def test_numpy_and_zero_d_scalars_are_accepted():
    g = contextual_sbm(np.int64(200), CSBM(mean_degree=np.float32(4.0)), seed=torch.tensor(2))
    assert g.num_nodes == 200 and g.mean_degree == pytest.approx(4, rel=0.1)


@pytest.mark.parametrize("settings, error, match", [
    ({"num_classes": 1}, ValueError, "num_classes must be >= 2"),
    ({"num_features": 0}, ValueError, "num_features must be >= 1"),
    ({"mean_degree": 0}, ValueError, "mean_degree must be > 0"),
    ({"mean_degree": float("nan")}, ValueError, "mean_degree must be a finite number"),
    ({"homophily": 1.5}, ValueError, r"homophily must be in \[0, 1\]"),
    ({"easy_share": -0.1}, ValueError, r"easy_share must be in \[0, 1\]"),
    ({"hard_noise": -1.0}, ValueError, "hard_noise must be >= 0"),
    ({"train_share": 0.0}, ValueError, r"train_share must be in \(0, 1\)"),
    ({"train_share": 0.6, "val_share": 0.4}, ValueError, "train_share \\+ val_share must be < 1"),
    ({"num_classes": 2.0}, TypeError, "num_classes must be an integer"),
    ({"homophily": "high"}, TypeError, "homophily must be a real number"),
    ({"easy_noise": True}, TypeError, "easy_noise must be a real number"),
])
def test_bad_settings_are_refused_naming_the_setting(settings, error, match):
    with pytest.raises(error, match=match):
        CSBM(**settings)


@pytest.mark.parametrize("args, error, match", [
    ({"num_nodes": 19}, ValueError, "num_nodes must be >= 20"),
    ({"num_nodes": 1000.0}, TypeError, "num_nodes must be an integer"),
    ({"num_nodes": 30, "spec": CSBM(mean_degree=29)}, ValueError,
     "mean_degree must be below num_nodes - 1 = 29"),
    ({"num_nodes": 100, "seed": -1}, ValueError, "seed must be >= 0"),
    ({"num_nodes": 100, "seed": 1.5}, TypeError, "seed must be an integer"),
    ({"num_nodes": 100, "spec": {"homophily": 0.5}}, TypeError, "spec must be a CSBM"),
])
def test_bad_arguments_are_refused(args, error, match):
    with pytest.raises(error, match=match):
        contextual_sbm(**args)
