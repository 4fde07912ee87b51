"""Malformed graphs at Mowst's public entry points raise ValueError/TypeError naming the problem.

Before these checks an edge id past the node count reached torch's unchecked sparse CSR
kernels (heap corruption: the process aborted with "double free or corruption"), and a
negative id wrapped around to the last nodes and gave a silently wrong prediction. Also: a
float label vector or float split ids passed ``NodeTask``, ``roc_auc`` scored labels of 2 as
positives (a wrong AUC), ``evaluate`` and the losses raised torch's IndexError on ids or
labels out of range, and experts with different class counts were only caught downstream.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from paperlab.mowst import (
    GAT,
    GCN,
    GIN,
    MLP,
    GraphSAGE,
    Mowst,
    NodeTask,
    as_adj_t,
    check_graph,
    dispersion,
    evaluate,
    mowst_loss,
    mowst_star_loss,
    receptive_field,
    roc_auc,
    row_block,
)

N, F, C = 12, 5, 3
FAST = settings(max_examples=15, deadline=None, derandomize=True)
BAD_IDS = st.one_of(st.integers(N, 10 * N), st.integers(-5 * N, -1))  # outside [0, N)
EACH = settings(max_examples=4, deadline=None, derandomize=True)  # per parametrized entry


def _graph(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ring = torch.arange(N)
    edge_index = torch.cat([torch.stack([ring, (ring + 1) % N]),
                            torch.randint(0, N, (2, 20), generator=g)], 1)
    return torch.randn(N, F, generator=g), edge_index


X, EDGES = _graph()
STRONG = {"gcn": GCN, "sage": GraphSAGE, "gat": GAT, "gin": GIN}
torch.manual_seed(0)
GNNS = {name: make(F, 8, C).eval() for name, make in STRONG.items()}
MODEL = Mowst(MLP(F, 8, C), GCN(F, 8, C), C).eval()


class _SubgraphOnly(torch.nn.Module):
    """A strong expert without ``forward_at``: routed inference takes the receptive-field path."""

    receptive_hops = 2

    def __init__(self) -> None:
        super().__init__()
        self.gnn = GraphSAGE(F, 8, C)

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        return self.gnn(x, adj)


SUBGRAPH_MODEL = Mowst(MLP(F, 8, C), _SubgraphOnly(), C).eval()

ENTRY_POINTS = {  # name -> f(x, adj): every public way a graph gets in
    "Mowst.forward": lambda x, adj: MODEL(x, adj),
    "Mowst.routed_predict": lambda x, adj: MODEL.routed_predict(x, adj),
    "routed_predict(nodes)": lambda x, adj: MODEL.routed_predict(x, adj, nodes=torch.tensor([0])),
    "routed_predict(subgraph)": lambda x, adj: SUBGRAPH_MODEL.routed_predict(x, adj),
    **{f"{name}.forward": gnn for name, gnn in GNNS.items()},
    "GNN.forward_at": lambda x, adj: GNNS["gcn"].forward_at(x, adj, torch.tensor([1])),
    "GNN.prepare": lambda x, adj: GNNS["gat"].prepare(adj, x.size(0)),
    "as_adj_t": lambda x, adj: as_adj_t(adj, x.size(0)),
    "receptive_field": lambda x, adj: receptive_field(adj, torch.tensor([0]), 2, x.size(0)),
    "check_graph": check_graph,
}
GRAPH_ENTRY_POINTS = [k for k in ENTRY_POINTS if k != "check_graph"]


def _csr(edge_index: torch.Tensor, n: int = N) -> torch.Tensor:
    return as_adj_t(edge_index, n)


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
@EACH
@given(position=st.integers(0, EDGES.size(1) - 1), row=st.integers(0, 1), bad=BAD_IDS)
def test_edge_ids_outside_the_graph(entry, position, row, bad):
    adj = EDGES.clone()
    adj[row, position] = bad
    with pytest.raises(ValueError, match=rf"edge_index has node ids in .* graph has {N} nodes"):
        ENTRY_POINTS[entry](X, adj)


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
@EACH
@given(position=st.integers(0, EDGES.size(1) - 1),
       bad=BAD_IDS)
def test_csr_column_ids_outside_the_graph(entry, position, bad):
    good = _csr(EDGES)
    col = good.col_indices().clone()
    col[position % col.numel()] = bad  # the CSR merged duplicate edges: fewer entries
    adj = torch.sparse_csr_tensor(good.crow_indices(), col, good.values(), (N, N))
    with pytest.raises(ValueError, match=rf"adj_t has column ids in .* graph has {N} nodes"):
        ENTRY_POINTS[entry](X, adj)


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_csr_of_the_wrong_size_or_broken_row_pointers(entry):
    with pytest.raises(ValueError, match=rf"adj_t must be \[{N}, {N}\]"):
        ENTRY_POINTS[entry](X, _csr(EDGES, N + 3))
    good = _csr(EDGES)
    crow = good.crow_indices().clone()
    crow[-1] += 4  # claims entries that are not stored
    broken = torch.sparse_csr_tensor(crow, good.col_indices(), good.values(), (N, N),
                                     check_invariants=False)
    with pytest.raises(ValueError, match="inconsistent row pointers"):
        ENTRY_POINTS[entry](X, broken)


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
@pytest.mark.parametrize("adj,problem", [
    (EDGES.float(), "edge_index must be an integer"),
    (EDGES[:1], "edge_index must be an integer"),
    (torch.zeros(3, 4, dtype=torch.long), "edge_index must be an integer"),
    (EDGES.bool(), "edge_index must be an integer"),
])
def test_malformed_edge_index(entry, adj, problem):
    with pytest.raises(ValueError, match=problem):
        ENTRY_POINTS[entry](X, adj)


@pytest.mark.parametrize("entry", GRAPH_ENTRY_POINTS)
def test_adjacency_that_is_not_a_tensor(entry):
    with pytest.raises(TypeError, match="adj must be a torch"):
        ENTRY_POINTS[entry](X, EDGES.tolist())


FEATURE_ENTRY_POINTS = [k for k in ENTRY_POINTS
                        if k not in ("GNN.prepare", "as_adj_t", "receptive_field")]


@pytest.mark.parametrize("entry", FEATURE_ENTRY_POINTS)
@EACH
@given(i=st.integers(0, N - 1),
       j=st.integers(0, F - 1), value=st.sampled_from([float("nan"), float("inf"), -float("inf")]))
def test_non_finite_features(entry, i, j, value):
    x = X.clone()
    x[i, j] = value
    with pytest.raises(ValueError, match="x must be a finite floating-point tensor"):
        ENTRY_POINTS[entry](x, EDGES)


@pytest.mark.parametrize("entry", FEATURE_ENTRY_POINTS)
@pytest.mark.parametrize("x,problem", [
    (X[0], r"x must be (a float )?\[num_nodes, "),
    (X.long(), "(x must be a finite floating-point|x must be a float)"),
    (X[:0], "(empty graph: x has 0 nodes|x must be a float|graph has 0 nodes)"),
])
def test_malformed_features(entry, x, problem):
    with pytest.raises(ValueError, match=problem):
        ENTRY_POINTS[entry](x, EDGES)


@pytest.mark.parametrize("entry", [k for k in FEATURE_ENTRY_POINTS if k != "check_graph"])
def test_features_of_the_wrong_width(entry):  # check_graph alone does not know the width
    with pytest.raises(ValueError, match=rf"x must be a float \[num_nodes, {F}\]"):
        ENTRY_POINTS[entry](X[:, :F - 1], EDGES)


def test_mlp_rejects_features_of_the_wrong_size():
    mlp = MLP(F, 8, C)
    with pytest.raises(ValueError, match=rf"x must be a float \[num_nodes, {F}\]"):
        mlp(torch.randn(4, F + 2))
    with pytest.raises(TypeError, match="x must be a torch tensor"):
        mlp(X.numpy())


@FAST
@given(nodes=st.lists(st.integers(-3 * N, 3 * N), min_size=1, max_size=5).filter(
    lambda ids: min(ids) < 0 or max(ids) >= N))
def test_query_and_seed_ids_outside_the_graph(nodes):
    ids = torch.tensor(nodes)
    adj_t = GNNS["sage"].prepare(EDGES, N)
    calls = [lambda: MODEL.routed_predict(X, EDGES, nodes=ids),
             lambda: GNNS["sage"].forward_at(X, adj_t, ids, prepared=True),
             lambda: receptive_field(EDGES, ids, 2, N),
             lambda: row_block(adj_t, ids.sort().values)]
    for call in calls:
        with pytest.raises(ValueError, match=rf"has ids in .* graph has {N} nodes"):
            call()


def test_routing_options():
    with pytest.raises(ValueError, match="hops must be >= 1"):
        SUBGRAPH_MODEL.routed_predict(X, EDGES, hops=0)
    with pytest.raises(ValueError, match="hops must be >= 1"):
        receptive_field(EDGES, torch.tensor([0]), 0, N)
    with pytest.raises(ValueError, match=rf"to_weak must be \[{N}\] bools"):
        MODEL.routed_predict(X, EDGES, to_weak=torch.ones(N, dtype=torch.long))
    with pytest.raises(ValueError, match="prepared=True needs a strong expert with forward_at"):
        SUBGRAPH_MODEL.routed_predict(X, _csr(EDGES), prepared=True)
    # prepared graphs skip the O(E) id scan but not the shape check
    with pytest.raises(ValueError, match=rf"adj_t must be \[{N}, {N}\]"):
        MODEL.routed_predict(X, GNNS["gcn"].prepare(EDGES % (N - 1), N - 1), prepared=True)


def test_valid_input_still_works():
    """The checks accept what they should: both graph formats, an edgeless graph."""
    for adj in (EDGES, _csr(EDGES), EDGES[:, :0]):
        out = MODEL.routed_predict(X, adj)
        assert out.proba.shape == (N, C) and torch.isfinite(out.proba).all()
        assert MODEL(X, adj).weak_logits.shape == (N, C)


def _task_fields() -> dict:
    y = torch.arange(N) % C
    return {"x": X, "adj": EDGES, "y": y, "train_idx": torch.arange(0, 6),
            "val_idx": torch.arange(6, 9), "test_idx": torch.arange(9, N), "num_classes": C}


@pytest.mark.parametrize("change,problem", [
    ({"y": (torch.arange(N) % C).float()}, "labels y must be integer class ids"),
    ({"y": torch.zeros(N - 1, dtype=torch.long)}, rf"labels y must be \[{N}\]"),
    ({"train_idx": torch.tensor([0.0, 1.0])}, "train_idx is malformed.*must be a 1-D tensor"),
    ({"val_idx": torch.tensor([[6, 7]])}, "val_idx is malformed.*must be a 1-D tensor"),
    ({"test_idx": torch.tensor([9, N + 4])}, rf"test_idx has node ids outside .* {N} nodes"),
    ({"train_idx": torch.tensor([], dtype=torch.long)}, "train_idx is empty"),
    ({"y": torch.arange(N) % C + 5}, rf"labels of train_idx must lie in \[0, {C}\)"),
    ({"metric": "f1"}, "metric must be one of"),
    ({"metric": "roc_auc"}, r"roc_auc needs a binary task"),
])
def test_node_task(change, problem):
    with pytest.raises(ValueError, match=problem):
        NodeTask(**{**_task_fields(), **change})


def test_evaluation_and_losses():
    task = NodeTask(**_task_fields())
    with pytest.raises(ValueError, match=rf"nodes has ids in .* graph has {N} nodes"):
        evaluate(MODEL, task, torch.tensor([0, N]))
    with pytest.raises(ValueError, match="evaluate needs nodes to score and draws >= 1"):
        evaluate(MODEL, task, torch.tensor([], dtype=torch.long))
    with pytest.raises(ValueError, match="evaluate needs nodes to score and draws >= 1"):
        evaluate(MODEL, task, task.test_idx, draws=0)
    out = MODEL(X, EDGES)
    for loss in (mowst_loss, mowst_star_loss):
        with pytest.raises(ValueError, match=rf"labels must lie in \[0, {C}\)"):
            loss(out, task.y + C)
        with pytest.raises(ValueError, match=rf"labels y must be \[{N}\] integer class ids"):
            loss(out, task.y[:3])
        with pytest.raises(ValueError, match=rf"labels y must be \[{N}\] integer class ids"):
            loss(out, task.y.float())


@pytest.mark.parametrize("score,y,problem", [
    (torch.rand(3), torch.tensor([0, 1]), r"score and y must both be \[n\]"),
    (torch.tensor([float("nan"), 0.5, 0.2]), torch.tensor([0, 1, 1]), "must be finite"),
    (torch.rand(3), torch.tensor([0, 1, 2]), r"binary labels y in \{0, 1\}"),
    (torch.rand(3), torch.tensor([1, 1, 1]), "needs both classes"),
])
def test_roc_auc(score, y, problem):
    with pytest.raises(ValueError, match=problem):
        roc_auc(score, y)


def test_expert_and_gate_shapes():
    with pytest.raises(ValueError, match=r"both experts must give \[12, 3\] logits"):
        Mowst(MLP(F, 8, C), GCN(F, 8, C + 1), C)(X, EDGES)
    with pytest.raises(ValueError, match=r"disp must be \[N, 2\] dispersion features"):
        MODEL.gate(torch.rand(4, 1))
    for proba in (torch.ones(4, 1), torch.full((4,), 0.25)):
        with pytest.raises(ValueError, match=r"proba must be \[N, n\] class probabilities"):
            dispersion(proba)
    with pytest.raises(TypeError, match="x must be a torch tensor, got ndarray"):
        check_graph(X.numpy(), EDGES)
