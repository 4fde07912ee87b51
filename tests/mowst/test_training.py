"""Training behaviour, metrics, bad input and the data loaders."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import torch

from paperlab.core.data import DataNotFoundError, require
from paperlab.mowst import (
    GCN,
    MLP,
    Mowst,
    NodeTask,
    TrainConfig,
    check_graph,
    evaluate,
    gate_collapsed,
    roc_auc,
    train_expert,
    train_mowst,
    train_mowst_star,
)
from paperlab.mowst.datasets import load, random_splits
from tests.mowst.conftest import make_task

FAST = TrainConfig(max_epochs=60, patience=15, max_rounds=3, round_patience=1)


def test_roc_auc_matches_pairwise_count() -> None:
    g = torch.Generator().manual_seed(0)
    score = torch.randint(0, 5, (40,), generator=g).float()  # many ties
    y = torch.randint(0, 2, (40,), generator=g)
    pos, neg = score[y == 1], score[y == 0]
    pairs = [(1.0 if p > q else 0.5 if p == q else 0.0) for p, q in itertools.product(pos, neg)]
    assert roc_auc(score, y) == pytest.approx(np.mean(pairs))
    with pytest.raises(ValueError, match="both classes"):
        roc_auc(score, torch.zeros(40, dtype=torch.long))


def test_mowst_beats_its_weak_expert_on_an_easy_homophilous_graph() -> None:
    torch.manual_seed(0)
    task = make_task(n=240, feature_signal=0.7)
    mlp = MLP(16, 16, 3)
    train_expert(mlp, task, FAST, uses_graph=False)
    mlp_acc = float((mlp(task.x)[task.test_idx].argmax(-1) == task.y[task.test_idx]).float().mean())
    model = Mowst(MLP(16, 16, 3), GCN(16, 16, 3), 3)
    report = train_mowst(model, task, FAST)
    scores = evaluate(model, task, task.test_idx, draws=20)
    assert report.pretrain is not None and report.pretrain.epochs > 0
    assert not report.gate_collapsed
    assert scores["strong"] > 0.9  # the graph alone nearly solves this task
    assert scores["random"] > mlp_acc + 0.1
    assert report.kept_turns >= 1 and report.best_val == max(report.history)


def test_gate_collapse_without_pretraining_is_detected_and_reported() -> None:
    # Strong, high-dimensional features: the MLP fits the training nodes almost at once, the gate
    # learns to trust it everywhere, and the untrained GNN never gets a share of the loss.
    torch.manual_seed(0)
    task = make_task(n=200, num_features=64, feature_signal=3.0)
    model = Mowst(MLP(64, 32, 3), GCN(64, 32, 3), 3)
    with pytest.warns(UserWarning, match="collapsed"):
        report = train_mowst_star(model, task, FAST, pretrain_strong=False)
    assert report.gate_collapsed and report.mean_train_confidence >= 0.95
    assert report.pretrain is None
    assert gate_collapsed(torch.full((5,), 0.99)) and not gate_collapsed(torch.full((5,), 0.5))


def test_high_confidence_over_a_pretrained_gnn_is_reported_not_flagged() -> None:
    # The collapse set-up, but the caller says the GNN was trained beforehand: a high confidence
    # is then the gate's verdict (the WebKB case), so it is reported and not flagged.
    torch.manual_seed(0)
    task = make_task(n=200, num_features=64, feature_signal=3.0)
    model = Mowst(MLP(64, 32, 3), GCN(64, 32, 3), 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
        report = train_mowst_star(model, task, FAST, strong_pretrained=True)
    assert report.pretrain is None and report.mean_train_confidence >= 0.95
    assert not report.gate_collapsed


def test_pretrained_mowst_star_does_not_collapse() -> None:
    torch.manual_seed(0)
    task = make_task(n=200, feature_signal=0.5)
    model = Mowst(MLP(16, 16, 3), GCN(16, 16, 3), 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # a collapse warning would fail the test
        warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
        report = train_mowst_star(model, task, FAST)
    assert not report.gate_collapsed


def test_turn_patience_bounds_the_turns_and_the_reference_default_runs_them_out(task) -> None:
    # patience >= max_epochs: with the reference setting every turn runs all max_epochs epochs;
    # a turn patience of 1 stops a turn at its first epoch without a new best.
    cfg = TrainConfig(max_epochs=40, patience=40, max_rounds=1, round_patience=1)
    reports = {}
    for turn_patience in (None, 1):
        torch.manual_seed(0)
        model = Mowst(MLP(16, 16, 3), GCN(16, 16, 3), 3)
        cfg_t = TrainConfig(**{**cfg.__dict__, "turn_patience": turn_patience})
        reports[turn_patience] = train_mowst(model, task, cfg_t, strong_pretrained=True)
    assert reports[None].epochs == 2 * 40
    assert reports[1].epochs < 40


def test_each_side_keeps_one_optimiser_across_its_turns(task, monkeypatch) -> None:
    # As in the reference code: Adam's moments carry over from one turn to the next.
    import paperlab.mowst.training as training

    made = []
    real = training._adam
    monkeypatch.setattr(training, "_adam", lambda params, cfg: made.append(1) or real(params, cfg))
    cfg = TrainConfig(max_epochs=3, patience=1, max_rounds=3, round_patience=3)
    report = train_mowst(Mowst(MLP(16, 16, 3), GCN(16, 16, 3), 3), task, cfg,
                         strong_pretrained=True)
    assert report.rounds == 3 and len(made) == 2


@pytest.mark.parametrize("field, value", [("patience", 0), ("max_epochs", 0),
                                          ("turn_patience", 0), ("max_rounds", -1)])
def test_train_config_rejects_limits_below_one(field: str, value: int) -> None:
    with pytest.raises(ValueError, match=f"{field} must be >= 1"):
        TrainConfig(**{field: value})


def test_train_config_rejects_a_non_positive_strong_learning_rate_scale() -> None:
    with pytest.raises(ValueError, match="strong_lr_scale must be > 0"):
        TrainConfig(strong_lr_scale=0.0)


def _bad(task: NodeTask, **change) -> dict:
    fields = dict(x=task.x, adj=task.adj, y=task.y, train_idx=task.train_idx,
                  val_idx=task.val_idx, test_idx=task.test_idx, num_classes=task.num_classes)
    fields.update(change)
    return fields


@pytest.mark.parametrize("change, message", [
    (lambda t: dict(y=t.y[:-3]), "labels y must be"),
    (lambda t: dict(x=torch.zeros(0, 16), adj=torch.zeros(2, 0, dtype=torch.long),
                    y=torch.zeros(0, dtype=torch.long)), "empty graph"),
    (lambda t: dict(y=torch.where(t.y == 0, 7, t.y)), r"labels of train_idx must lie in \[0, 3\)"),
    (lambda t: dict(adj=torch.tensor([[0, 1], [1, 999]])), "edge_index has node ids"),
    (lambda t: dict(x=torch.where(t.x > 2, float("nan"), t.x)), "finite"),
    (lambda t: dict(x=t.x[:, 0]), r"x must be \[num_nodes, num_features\]"),
    (lambda t: dict(train_idx=torch.tensor([500])), "train_idx has node ids outside"),
    (lambda t: dict(val_idx=torch.tensor([], dtype=torch.long)), "val_idx is empty"),
])
def test_bad_input_is_rejected_with_a_clear_message(task, change, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        NodeTask(**_bad(task, **change(task)))


def test_check_graph_rejects_a_csr_of_the_wrong_size_and_bad_labels(task) -> None:
    small = torch.eye(3).to_sparse_csr()
    with pytest.raises(ValueError, match="adj_t must be"):
        check_graph(task.x, small)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        check_graph(task.x, task.adj, task.y, num_classes=2)


def test_roc_auc_task_must_be_binary(task) -> None:
    with pytest.raises(ValueError, match="binary"):
        NodeTask(**_bad(task), metric="roc_auc")


def test_random_splits_are_disjoint_seeded_50_25_25_of_labelled() -> None:
    y = torch.tensor([0, 1, -1] * 40)
    splits = random_splits(y, num_splits=3, seed=1)
    assert len(splits) == 3
    for train, val, test in splits:
        ids = torch.cat([train, val, test])
        assert len(ids) == len(set(ids.tolist())) == 80 and (y[ids] >= 0).all()
        assert (len(train), len(val), len(test)) == (40, 20, 20)
    again = random_splits(y, num_splits=3, seed=1)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(splits, again, strict=True))


def test_filtered_npz_loader_symmetrises_edges_and_uses_split_i(tmp_path) -> None:
    folder = tmp_path / "graphs" / "heterophilous_filtered"
    folder.mkdir(parents=True)
    masks = np.zeros((10, 4), dtype=bool)
    masks[:, 0] = True
    np.savez(folder / "chameleon_filtered.npz", node_features=np.eye(4, dtype=np.float32),
             node_labels=np.array([0, 1, 2, 1]), edges=np.array([[0, 1], [1, 2], [2, 3]]),
             train_masks=masks, val_masks=np.roll(masks, 1, 1), test_masks=np.roll(masks, 2, 1))
    graph = load("chameleon_filtered", lambda rel, how: require(rel, how, root=tmp_path))
    assert graph.num_nodes == 4 and graph.num_edges == 6 and graph.num_classes == 3
    dense = graph.adj_t.to_dense()
    assert torch.equal(dense, dense.T)
    assert [s.tolist() for s in graph.split(3)] == [[0], [1], [2]]


def test_missing_data_names_where_it_looked(tmp_path) -> None:
    with pytest.raises(DataNotFoundError, match="graphs/planetoid/Cora"):
        load("cora", lambda rel, how: require(rel, how, root=tmp_path))
    with pytest.raises(KeyError, match="unknown data set"):
        load("pubmed", lambda rel, how: require(rel, how, root=tmp_path))
