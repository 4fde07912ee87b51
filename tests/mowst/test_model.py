"""Dispersion, confidence gate, mixture identities, routed inference and checkpoints."""

from __future__ import annotations

import io

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from paperlab.mowst import (
    GAT,
    GCN,
    GIN,
    MLP,
    ConfidenceGate,
    GraphSAGE,
    Mowst,
    MowstOutput,
    dispersion,
    dispersion_entropy,
    dispersion_variance,
    mowst_loss,
    mowst_star_loss,
    random_gating_scores,
    receptive_field,
)
from paperlab.mowst.experts import as_adj_t, gcn_adjacency, row_block
from tests.mowst.conftest import make_task


def _mowst(task, strong=GCN, **kw) -> Mowst:
    f, c = task.x.size(1), task.num_classes
    return Mowst(MLP(f, 16, c), strong(f, 16, c), c, **kw)


def _force_confidence(model: Mowst, value: float) -> None:
    """Make the gate output a constant (0 or 1) by a huge bias on its last layer."""
    with torch.no_grad():
        for w in model.gate.weights:
            w.fill_(-50.0 if model.gate.monotone else 0.0)
        model.gate.biases[-1].fill_(50.0 if value == 1 else -50.0)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 9), st.integers(0, 10_000))
def test_dispersion_in_unit_interval_with_known_extremes(n: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    proba = torch.softmax(3 * torch.randn(16, n, generator=g), -1)
    for d in (dispersion_variance(proba), dispersion_entropy(proba)):
        assert (d >= -1e-6).all() and (d <= 1 + 1e-6).all()
    uniform, onehot = torch.full((1, n), 1.0 / n), torch.eye(n)[:1]
    assert dispersion(uniform).abs().max() < 1e-6
    assert torch.allclose(dispersion(onehot), torch.ones(1, 2), atol=1e-5)


def test_dispersion_has_a_finite_gradient_at_a_one_hot_prediction() -> None:
    proba = torch.tensor([[1.0, 0.0, 0.0]], requires_grad=True)
    dispersion(proba).sum().backward()
    assert torch.isfinite(proba.grad).all()


def test_dispersion_grows_as_prediction_sharpens_towards_one_class() -> None:
    t = torch.linspace(0, 1, 21)[:, None]
    n = 5
    proba = (1 - t) * torch.full((1, n), 1.0 / n) + t * torch.eye(n)[:1]
    d = dispersion(proba)
    assert (d[1:] > d[:-1]).all()


def test_unknown_dispersion_is_rejected(task) -> None:
    with pytest.raises(ValueError, match="dispersion"):
        _mowst(task, dispersion="max")


@pytest.mark.parametrize("kind", ["variance", "entropy", "variance+entropy"])
def test_confidence_in_unit_interval_and_monotone_in_dispersion(kind: str) -> None:
    torch.manual_seed(0)
    k = 2 if kind == "variance+entropy" else 1
    gate = ConfidenceGate(k, hidden_channels=8)
    with torch.no_grad():  # random, large weights: monotonicity must hold for any parameters
        for w in gate.weights:
            w.normal_(0, 3)
    grid = torch.linspace(0, 1, 101)[:, None].expand(-1, k)
    c = gate(grid)
    assert (c >= 0).all() and (c <= 1).all()
    assert (c[1:] >= c[:-1] - 1e-7).all()
    # each coordinate separately, with the other one held fixed
    if k == 2:
        for col in range(2):
            d = torch.full((101, 2), 0.3)
            d[:, col] = torch.linspace(0, 1, 101)
            c = gate(d)
            assert (c[1:] >= c[:-1] - 1e-7).all()


def test_unconstrained_gate_can_decrease() -> None:
    gate = ConfidenceGate(1, hidden_channels=1, num_layers=1, monotone=False)
    with torch.no_grad():
        gate.weights[0].fill_(-5.0)
    c = gate(torch.linspace(0, 1, 5)[:, None])
    assert (c[1:] < c[:-1]).all()


@pytest.mark.parametrize("value", [0, 1])
def test_mixture_equals_mlp_when_c_is_1_and_gnn_when_c_is_0(task, value: int) -> None:
    model = _mowst(task).eval()
    _force_confidence(model, value)
    out = model(task.x, task.adj)
    assert torch.allclose(out.confidence, torch.full_like(out.confidence, float(value)))
    expert = out.weak_logits if value == 1 else out.strong_logits
    p = torch.softmax(expert, -1)
    assert torch.allclose(Mowst.mixture_proba(out), p, atol=1e-6)
    ce = torch.nn.functional.cross_entropy(expert, task.y)
    assert torch.allclose(mowst_loss(out, task.y), ce, atol=1e-5)
    assert torch.allclose(mowst_star_loss(out, task.y), ce, atol=1e-5)
    scores = random_gating_scores(out, task.y, task.test_idx, "accuracy", draws=5)
    expected = float((p[task.test_idx].argmax(-1) == task.y[task.test_idx]).float().mean())
    assert scores == pytest.approx([expected] * 5)
    routed = model.routed_predict(task.x, task.adj)
    assert torch.allclose(routed.proba, p, atol=1e-5)
    assert routed.nodes_computed == (0 if value == 1 else task.x.size(0))


def test_mowst_star_mixes_probabilities_not_logits(task) -> None:
    model = _mowst(task).eval()
    out = model(task.x, task.adj)
    mix = Mowst.mixture_proba(out)
    assert torch.allclose(mix.sum(-1), torch.ones(len(mix)), atol=1e-6)
    c = out.confidence[:, None]
    assert torch.allclose(mix, c * out.weak_logits.softmax(-1)
                          + (1 - c) * out.strong_logits.softmax(-1))


@pytest.mark.parametrize("strong", [GCN, GraphSAGE, GAT, GIN])
@pytest.mark.parametrize("csr", [True, False])
def test_routed_inference_matches_the_full_graph_gnn(strong, csr: bool) -> None:
    task = make_task(n=150, csr=csr)
    torch.manual_seed(1)
    model = _mowst(task, strong=strong).eval()
    to_weak = torch.rand(150) < 0.7
    routed = model.routed_predict(task.x, task.adj, to_weak=to_weak)
    with torch.no_grad():
        full = torch.softmax(model.strong(task.x, task.adj), -1)
        weak = torch.softmax(model.weak(task.x), -1)
    assert torch.allclose(routed.proba[~to_weak], full[~to_weak], atol=1e-5)
    assert torch.allclose(routed.proba[to_weak], weak[to_weak], atol=1e-6)
    assert 0 < routed.nodes_computed <= 150
    assert 0 < routed.messages_computed <= routed.messages_full


def test_receptive_field_of_a_path_graph() -> None:
    n = 10
    line = torch.stack([torch.arange(n - 1), torch.arange(1, n)])
    edge_index = torch.cat([line, line.flip(0)], 1)
    nodes, sub, pos, kept = receptive_field(edge_index, torch.tensor([0]), hops=2, num_nodes=n)
    assert nodes.tolist() == [0, 1, 2]  # two hops from node 0
    assert kept == 3  # edges into nodes 0 and 1: 1->0, 0->1, 2->1
    assert nodes[pos].tolist() == [0] and sub.max() < 3


def test_gcn_normalising_once_equals_pyg_per_layer_gcnconv(task) -> None:
    from torch_geometric.nn import GCNConv

    torch.manual_seed(0)
    ours = GCN(task.x.size(1), 16, task.num_classes).eval()
    convs = [GCNConv(task.x.size(1), 16), GCNConv(16, task.num_classes)]
    for conv, mine in zip(convs, ours.convs, strict=True):
        conv.load_state_dict(mine.state_dict())
    with torch.no_grad():
        h = torch.relu(ours.norms[0](convs[0](task.x, task.adj)))
        reference = convs[1](h, task.adj)
        assert torch.allclose(ours(task.x, task.adj), reference, atol=1e-5)


def test_row_block_keeps_the_rows_edges_over_sorted_sources() -> None:
    n = 10
    line = torch.stack([torch.arange(n - 1), torch.arange(1, n)])
    adj_t = as_adj_t(torch.cat([line, line.flip(0)], 1), n)
    block, sources = row_block(adj_t, torch.tensor([0, 4]))
    assert sources.tolist() == [0, 1, 3, 4, 5]
    assert block.to_dense().tolist() == [[0, 1, 0, 0, 0],   # 1 -> 0
                                         [0, 0, 1, 0, 1]]   # 3 -> 4, 5 -> 4
    full, every = row_block(adj_t, torch.arange(n))
    assert full is adj_t and every.tolist() == list(range(n))


@pytest.mark.parametrize("m", [1, 3, 40, 150])  # few rows sort their ids, many mark flags
def test_row_block_equals_dense_slicing(task, m: int) -> None:
    adj_t = gcn_adjacency(task.adj, 200)
    rows = torch.randperm(200, generator=torch.Generator().manual_seed(m))[:m].sort().values
    block, sources = row_block(adj_t, rows)
    dense = adj_t.to_dense()
    expected = torch.unique(torch.cat([rows, dense[rows].nonzero()[:, 1]]))
    assert torch.equal(sources, expected)
    assert torch.equal(block.to_dense(), dense[rows][:, sources])


def test_gcn_adjacency_matches_pyg_gcn_norm(task) -> None:
    from torch_geometric.nn.conv.gcn_conv import gcn_norm

    reference, _ = gcn_norm(task.adj, None, task.x.size(0))
    assert torch.allclose(gcn_adjacency(task.adj, task.x.size(0)).to_dense(), reference.to_dense())


@pytest.mark.parametrize("strong", [GCN, GraphSAGE])
def test_forward_at_reads_only_the_layers_receptive_field(strong) -> None:
    n = 10
    line = torch.stack([torch.arange(n - 1), torch.arange(1, n)])
    adj = as_adj_t(torch.cat([line, line.flip(0)], 1), n)
    x = torch.randn(n, 4)
    gnn = strong(4, 8, 3).eval()  # two layers: node 0 depends on nodes 0, 1, 2 only
    with torch.no_grad():
        local = gnn.forward_at(x, adj, torch.tensor([0]))
        assert torch.allclose(local.logits, gnn(x, adj)[:1], atol=1e-5)
    assert local.nodes_read == 3
    # last layer: edges into node 0 (1->0); first layer: edges into 0 and 1 (1->0, 0->1, 2->1);
    # GCN's A + I adds a self-loop to each of those rows (1 + 2 more)
    self_loops = n if strong is GCN else 0
    assert local.messages == (1 + 3) + (3 if strong is GCN else 0)
    assert local.messages_full == 2 * (2 * (n - 1) + self_loops)


def test_forward_at_rejects_bad_node_ids(task) -> None:
    gnn = GCN(task.x.size(1), 8, task.num_classes).eval()
    with pytest.raises(ValueError, match="200 nodes"):
        gnn.forward_at(task.x, task.adj, torch.tensor([0, 200]))
    with pytest.raises(ValueError, match="1-D"):
        gnn.forward_at(task.x, task.adj, torch.zeros(2, 2, dtype=torch.long))


@pytest.mark.parametrize("strong", [GCN, GAT])
def test_query_nodes_with_a_prepared_graph_match_the_whole_graph_answer(strong) -> None:
    # Online serving: a few query nodes at a time, the adjacency normalised once (GCN) or given
    # its self-loops once (GAT); answers equal the whole-graph routed prediction at those nodes.
    task = make_task(n=150)
    torch.manual_seed(2)
    model = _mowst(task, strong=strong).eval()
    to_weak = torch.rand(150) < 0.5
    whole = model.routed_predict(task.x, task.adj, to_weak=to_weak)
    ready = model.strong.prepare(task.adj, 150)
    queries = torch.tensor([7, 3, 120, 3, 64])
    for prepared, adj in ((False, task.adj), (True, ready)):
        routed = model.routed_predict(task.x, adj, nodes=queries, to_weak=to_weak[queries],
                                      prepared=prepared)
        assert torch.allclose(routed.proba, whole.proba[queries], atol=1e-5)
    one = model.routed_predict(task.x, ready, nodes=torch.tensor([7]), prepared=True,
                               generator=torch.Generator().manual_seed(0))
    assert one.proba.shape == (1, 3) and one.to_weak.shape == (1,)


def test_query_nodes_are_validated(task) -> None:
    model = _mowst(task).eval()
    with pytest.raises(ValueError, match="200 nodes"):
        model.routed_predict(task.x, task.adj, nodes=torch.tensor([5, 200]))
    with pytest.raises(ValueError, match="1-D"):
        model.routed_predict(task.x, task.adj, nodes=torch.tensor([[1.0]]))
    with pytest.raises(ValueError, match=r"to_weak must be \[2\]"):
        model.routed_predict(task.x, task.adj, nodes=torch.tensor([1, 2]),
                             to_weak=torch.ones(200, dtype=torch.bool))


def test_routing_far_from_seeds_saves_messages() -> None:
    task = make_task(n=150)
    model = _mowst(task, strong=GraphSAGE).eval()
    to_weak = torch.ones(150, dtype=torch.bool)
    to_weak[0] = False
    routed = model.routed_predict(task.x, task.adj, to_weak=to_weak)
    assert routed.messages_saved > 0 and routed.nodes_computed < 150


def test_routed_inference_needs_hops_for_a_foreign_strong_expert(task) -> None:
    class Foreign(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(task.x.size(1), task.num_classes)

        def forward(self, x, adj):
            return self.lin(x)

    model = Mowst(MLP(task.x.size(1), 8, task.num_classes), Foreign(), task.num_classes)
    with pytest.raises(ValueError, match="hops"):
        model.routed_predict(task.x, task.adj)
    with pytest.raises(ValueError, match="prepared=True needs"):
        model.routed_predict(task.x, task.adj, hops=1, prepared=True)
    assert model.routed_predict(task.x, task.adj, hops=1).proba.shape == (200, 3)


def test_checkpoint_holds_the_gate(task) -> None:
    model = _mowst(task, gate_uses_features=True, num_features=task.x.size(1)).eval()
    with torch.no_grad():
        model.gate.biases[-1].fill_(1.7)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    assert any(k.startswith("gate.") for k in model.state_dict())
    restored = _mowst(task, gate_uses_features=True, num_features=task.x.size(1)).eval()
    buf.seek(0)
    restored.load_state_dict(torch.load(buf, weights_only=True))
    a, b = model(task.x, task.adj), restored(task.x, task.adj)
    for u, v in zip(a, b, strict=True):
        assert torch.equal(u, v)
    assert isinstance(a, MowstOutput)


def test_gate_with_features_needs_their_size(task) -> None:
    with pytest.raises(ValueError, match="num_features"):
        _mowst(task, gate_uses_features=True)
