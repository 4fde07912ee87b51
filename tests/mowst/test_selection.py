"""Selection from the starting point: no training loop ends below the state it started from.

Every loop validates its starting state before the first step and returns it when no step
beats it; a mixture built on a trained GNN starts as that GNN (the gate starts nearly closed).
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch

from paperlab.mowst import (
    GCN,
    MLP,
    Mowst,
    NodeTask,
    TrainConfig,
    train_expert,
    train_mowst,
    train_mowst_star,
)
from paperlab.mowst.training import expected_score, score
from tests.mowst.conftest import make_task

# A learning rate this large wrecks a trained model in one step: nothing after it beats the start.
WRECK = TrainConfig(lr=1.0, max_epochs=20, patience=5, max_rounds=2, round_patience=2,
                    warmup=False)


def _snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def _unchanged(model: torch.nn.Module, before: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


@pytest.fixture(scope="module")
def solved() -> tuple[NodeTask, GCN]:
    """A GCN at 100% validation accuracy: no state can beat it."""
    torch.manual_seed(0)
    task = make_task(feature_signal=1.5)
    gnn = GCN(16, 16, 3)
    report = train_expert(gnn, task, TrainConfig(max_epochs=100, patience=30))
    assert report.best_val == 1.0
    return task, gnn


def _val(model: Mowst, task: NodeTask, expected: bool) -> float:
    model.eval()
    with torch.no_grad():
        out = model(task.x, task.adj)
    if expected:
        return expected_score(out, task.y, task.val_idx, task.metric)
    return score(Mowst.mixture_proba(out)[task.val_idx], task.y[task.val_idx], task.metric)


def test_an_expert_at_its_optimum_comes_back_unchanged(solved) -> None:
    task, trained = solved
    gnn = copy.deepcopy(trained)
    before = _snapshot(gnn)
    report = train_expert(gnn, task, WRECK)
    assert report.epochs == WRECK.patience  # it stepped, and no step was kept
    assert report.best_val == 1.0  # a later state that only ties the start is not taken
    assert _unchanged(gnn, before)


@pytest.mark.parametrize("trainer", [train_mowst, train_mowst_star])
def test_a_mixture_at_its_optimum_comes_back_unchanged(solved, trainer) -> None:
    # A closed gate (C ~ 2e-9) makes the mixture the solved GNN: validation 1.0 for the
    # expected random gating as for the mixture of probabilities.
    task, trained = solved
    torch.manual_seed(1)
    model = Mowst(MLP(16, 16, 3), copy.deepcopy(trained), 3, gate_output_bias=-20.0)
    assert _val(model, task, expected=trainer is train_mowst) == 1.0
    before = _snapshot(model)
    report = trainer(model, task, WRECK, strong_pretrained=True)
    assert report.epochs > 0 and report.best_val == 1.0
    assert _unchanged(model, before)


def test_the_old_open_gate_starts_the_mixture_below_its_gnn(solved) -> None:
    # Why the gate starts closed: with the earlier output bias -2 (C ~ 0.12) an untrained MLP
    # takes 12% of Mowst's random-gating draws, and the starting mixture is far below the GNN.
    task, trained = solved
    torch.manual_seed(1)
    opened = Mowst(MLP(16, 16, 3), copy.deepcopy(trained), 3, gate_output_bias=-2.0)
    assert _val(opened, task, expected=True) < 0.95


def test_mowst_star_from_a_pretrained_gnn_scores_at_least_the_gnn_on_validation() -> None:
    # A noisier graph (GCN ~0.85 on validation): with the earlier training (open gate, no
    # start candidate, no warm-up) Mowst* ended at 0.84 here, below the GNN it started from.
    torch.manual_seed(0)
    task = make_task(n=300, feature_signal=0.3)
    gnn = GCN(16, 16, 3)
    gnn_val = train_expert(gnn, task, TrainConfig(max_epochs=100, patience=30)).best_val
    assert gnn_val < 0.95  # room for the mixture to help or hurt
    torch.manual_seed(1)
    model = Mowst(MLP(16, 16, 3), copy.deepcopy(gnn), 3)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
        report = train_mowst_star(model, task, TrainConfig(max_epochs=60, patience=15),
                                  strong_pretrained=True)
    assert report.warmup is not None and report.warmup.epochs > 0
    assert report.best_val >= gnn_val
    assert _val(model, task, expected=False) == pytest.approx(report.best_val)


def test_mowst_from_a_pretrained_gnn_ends_at_or_above_its_starting_mixture() -> None:
    torch.manual_seed(0)
    task = make_task(n=300, feature_signal=0.3)
    gnn = GCN(16, 16, 3)
    gnn_val = train_expert(gnn, task, TrainConfig(max_epochs=100, patience=30)).best_val
    torch.manual_seed(1)
    model = Mowst(MLP(16, 16, 3), copy.deepcopy(gnn), 3)
    start = _val(model, task, expected=True)
    assert start == pytest.approx(gnn_val, abs=0.01)  # the nearly closed gate
    report = train_mowst(model, task, TrainConfig(max_epochs=60, patience=15, max_rounds=2,
                                                  round_patience=1), strong_pretrained=True)
    assert report.best_val >= start
    assert _val(model, task, expected=True) == pytest.approx(report.best_val)


def test_mowst_star_warm_up_trains_the_mlp_and_freezes_the_gnn(monkeypatch) -> None:
    # The earlier open gate (C ~ 0.12 for the untrained MLP) leaves the warm-up something to fix.
    import paperlab.mowst.training as training

    torch.manual_seed(0)
    task = make_task(n=300, feature_signal=0.3)
    gnn = GCN(16, 16, 3)
    train_expert(gnn, task, TrainConfig(max_epochs=100, patience=30))
    torch.manual_seed(1)
    model = Mowst(MLP(16, 16, 3), copy.deepcopy(gnn), 3, gate_output_bias=-2.0)
    weak_before, strong_before = _snapshot(model.weak), _snapshot(model.strong)
    after_fit = []
    real_fit = training._fit

    def fit_and_look(step, validate, module, cfg, report):
        best = real_fit(step, validate, module, cfg, report)
        after_fit.append((_unchanged(model.weak, weak_before),
                          _unchanged(model.strong, strong_before)))
        return best

    monkeypatch.setattr(training, "_fit", fit_and_look)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
        train_mowst_star(model, task, TrainConfig(max_epochs=60, patience=15),
                         strong_pretrained=True)
    assert len(after_fit) == 2  # the warm-up, then the joint phase
    assert after_fit[0] == (False, True)  # the warm-up moved the MLP, not the GNN
