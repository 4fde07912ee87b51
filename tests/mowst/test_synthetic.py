"""The contextual SBM generator: realised statistics, the feature signal, determinism, bad input."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from paperlab.core.seed import torch_threads
from paperlab.mowst.experts import MLP, STRONG_EXPERTS
from paperlab.mowst.mowst import Mowst, check_graph
from paperlab.mowst.synthetic import CSBM, CSBMGraph, contextual_sbm, edge_homophily
from paperlab.mowst.training import NodeTask, TrainConfig, train_expert, train_mowst

N = 4000


@pytest.fixture(scope="module")
def graph() -> CSBMGraph:
    return contextual_sbm(N, seed=3)


def _centroid_distances(graph: CSBMGraph, x: torch.Tensor) -> torch.Tensor:
    """``[N, C]`` distances to the class means of ``x`` fitted on the training nodes."""
    train = graph.split(0)[0]
    means = torch.stack([x[train][graph.y[train] == c].mean(0)
                         for c in range(graph.num_classes)])
    return torch.cdist(x, means)


def _centroid_probe(graph: CSBMGraph, x: torch.Tensor) -> torch.Tensor:
    """Nearest class mean fitted on the training nodes: ``[N]`` bool, right or wrong per node."""
    return _centroid_distances(graph, x).argmin(1) == graph.y


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
    right = _centroid_probe(graph, graph.x)
    easy, hard = graph.easy, ~graph.easy
    assert float(right[easy].float().mean()) > 0.95  # chance is 0.2
    on_hard = float(right[hard].float().mean())
    assert 0.2 < on_hard < 0.6
    # the neighbours' mean feature carries the class where a node's own does not
    degree = graph.adj_t.crow_indices().diff().clamp_min(1).unsqueeze(1)
    neighbours = (graph.adj_t @ graph.x) / degree
    assert float(_centroid_probe(graph, neighbours)[hard].float().mean()) > on_hard + 0.1


def test_a_feature_only_classifier_is_confident_on_the_easy_nodes_and_right_there(graph):
    """What Mowst's gate needs: the confidence of a classifier that reads a node's own features
    singles out the easy nodes. (Easy and hard nodes differ in their signal, not their noise:
    with a noise mixture the hard nodes' long feature vectors made the confident predictions
    the wrong ones.)"""
    norm = graph.x.norm(dim=1)
    assert float(norm[~graph.easy].median() / norm[graph.easy].median()) < 1.1
    gap = _centroid_distances(graph, graph.x).sort(dim=1).values
    margin = gap[:, 1] - gap[:, 0]  # how far the nearest class mean beats the runner-up
    confident = margin >= margin.quantile(0.6)  # the 40% most confident nodes
    assert float(graph.easy[confident].float().mean()) > 0.95
    assert float(_centroid_probe(graph, graph.x)[confident].float().mean()) > 0.95


def test_a_graph_without_signal_gives_chance():
    g = contextual_sbm(2000, CSBM(easy_share=0.0, hard_signal=0.0), seed=0)
    assert not bool(g.easy.any())
    assert float(_centroid_probe(g, g.x)[g.split(0)[2]].float().mean()) < 0.3


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
    ({"hard_signal": -1.0}, ValueError, "hard_signal must be >= 0"),
    ({"noise": 0.0}, ValueError, "noise must be > 0"),
    ({"train_share": 0.0}, ValueError, r"train_share must be in \(0, 1\)"),
    ({"train_share": 0.6, "val_share": 0.4}, ValueError, "train_share \\+ val_share must be < 1"),
    ({"num_classes": 2.0}, TypeError, "num_classes must be an integer"),
    ({"homophily": "high"}, TypeError, "homophily must be a real number"),
    ({"easy_signal": True}, TypeError, "easy_signal must be a real number"),
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


def test_mowst_routes_the_easy_nodes_to_the_mlp_without_losing_accuracy():
    """A small graph of the bench's generator: Mowst on a trained GCN sends a large share of
    the test nodes, nearly all of them easy, to the MLP and scores within a point of the GCN.
    (Mean degree 10 and a 30% training split keep it small and fast: with 10% of 2,000 nodes
    for training the MLP memorises its 200 nodes and the share sent to it varied from 8% to
    46% over three seeds; with 30%, 37-50%.)"""
    g = contextual_sbm(2000, CSBM(mean_degree=10, train_share=0.3, val_share=0.2), seed=0)
    train, val, test = g.split(0)
    task = NodeTask(g.x, g.adj_t, g.y, train, val, test, g.num_classes)
    cfg = TrainConfig(max_epochs=100, patience=20, max_rounds=2, round_patience=1)
    torch.manual_seed(0)
    gcn = STRONG_EXPERTS["gcn"](g.x.size(1), 64, g.num_classes)
    with torch_threads(1):
        train_expert(gcn, task, cfg)
        model = Mowst(MLP(g.x.size(1), 64, g.num_classes), copy.deepcopy(gcn), g.num_classes)
        train_mowst(model, task, cfg, strong_pretrained=True)
        routed = model.routed_predict(g.x, g.adj_t, nodes=test,
                                      generator=torch.Generator().manual_seed(0))
    assert float(routed.to_weak.float().mean()) > 0.3  # half the nodes are easy
    assert float(g.easy[test][routed.to_weak].float().mean()) > 0.9
    gcn.eval()
    with torch.no_grad():
        gcn_acc = float((gcn(g.x, g.adj_t)[test].argmax(1) == g.y[test]).float().mean())
    mowst_acc = float((routed.proba.argmax(1) == g.y[test]).float().mean())
    assert mowst_acc > gcn_acc - 0.01
