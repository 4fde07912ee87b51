"""Training and evaluation: one expert alone, Mowst (alternating turns), Mowst* (joint).

All training is full-batch on one graph. Model selection is by the validation score (accuracy,
or ROC-AUC for binary tasks that ask for it); every routine restores the best state it saw.
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from scipy.stats import rankdata
from torch import Tensor, nn

from paperlab.mowst.mowst import Mowst, MowstOutput, check_graph, check_node_ids

METRICS = ("accuracy", "roc_auc")


@dataclass
class NodeTask:
    """A node-classification task on one graph.

    Attributes:
        x: node features ``[N, F]`` (float).
        adj: ``edge_index [2, E]`` or CSR ``adj_t [N, N]``.
        y: labels ``[N]`` in ``[0, num_classes)`` (values outside the splits are never read).
        train_idx, val_idx, test_idx: node ids of the splits.
        num_classes: C.
        metric: ``"accuracy"`` or ``"roc_auc"`` (binary only; scores the class-1 probability).
    """

    x: Tensor
    adj: Tensor
    y: Tensor
    train_idx: Tensor
    val_idx: Tensor
    test_idx: Tensor
    num_classes: int
    metric: str = "accuracy"

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got '{self.metric}'")
        if self.metric == "roc_auc" and self.num_classes != 2:
            raise ValueError("roc_auc needs a binary task (num_classes == 2)")
        check_graph(self.x, self.adj, self.y)  # y: [N] integer (range checked per split)
        n = self.x.size(0)
        for name in ("train_idx", "val_idx", "test_idx"):
            idx = getattr(self, name)
            if idx.numel() == 0:
                raise ValueError(f"{name} is empty")
            try:
                check_node_ids(idx, n)
            except ValueError as e:
                what = "has node ids outside" if idx.dim() == 1 and not \
                    torch.is_floating_point(idx) else "is malformed:"
                raise ValueError(f"{name} {what} [0, {n}): {e}") from None
            labels = self.y[idx]
            if int(labels.min()) < 0 or int(labels.max()) >= self.num_classes:
                raise ValueError(f"labels of {name} must lie in [0, {self.num_classes}), got "
                                 f"[{int(labels.min())}, {int(labels.max())}]")


@dataclass
class TrainConfig:
    """Optimisation settings (defaults: the reference recipes' Adam, patience 100 / 10).

    ``max_epochs``/``patience`` bound one expert's training and each inner turn of Mowst;
    ``max_rounds``/``round_patience`` bound Mowst's big epochs (two turns each).
    ``turn_patience`` overrides ``patience`` for Mowst's turns only (``None``: the same, as in
    the reference code). Every turn runs at least its patience in epochs, so Mowst's cost after
    pre-training is about ``2 * rounds * turn_patience`` epochs: a shorter turn patience is the
    knob that bounds it (the benchmark measures what it costs in accuracy).

    Mowst* from a trained GNN (the study docs/studies/mowst-selection.md measures both):
    ``warmup`` (default on) first trains the MLP and the gate on the mixture's loss with
    the GNN frozen, so the joint phase does not start from an untrained MLP;
    ``strong_lr_scale`` multiplies the GNN's learning rate in the joint phase (default 1).
    """

    lr: float = 0.01
    weight_decay: float = 5e-4
    max_epochs: int = 500
    patience: int = 100
    max_rounds: int = 30
    round_patience: int = 10
    turn_patience: int | None = None
    warmup: bool = True
    strong_lr_scale: float = 1.0

    def __post_init__(self) -> None:
        for name in ("max_epochs", "patience", "max_rounds", "round_patience"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.turn_patience is not None and self.turn_patience < 1:
            raise ValueError(f"turn_patience must be >= 1 or None, got {self.turn_patience}")
        if not self.strong_lr_scale > 0:
            raise ValueError(f"strong_lr_scale must be > 0, got {self.strong_lr_scale}")

    def for_turns(self) -> TrainConfig:
        """The settings of one Mowst turn: ``patience`` replaced by ``turn_patience``."""
        if self.turn_patience is None:
            return self
        return replace(self, patience=self.turn_patience)


@dataclass
class TrainReport:
    """What a training run did: optimiser steps, wall seconds, best validation score."""

    epochs: int = 0
    seconds: float = 0.0
    best_val: float = float("-inf")
    history: list[float] = field(default_factory=list)

    @property
    def ms_per_epoch(self) -> float:
        return 1000.0 * self.seconds / max(self.epochs, 1)


def roc_auc(score: Tensor, y: Tensor) -> float:
    """Area under the ROC curve of ``score [n]`` for binary ``y [n]`` (ties get half credit)."""
    if score.dim() != 1 or y.shape != score.shape:
        raise ValueError(f"score and y must both be [n], got {tuple(score.shape)} and "
                         f"{tuple(y.shape)}")
    if not torch.isfinite(score).all():
        raise ValueError("ROC-AUC scores must be finite (found NaN/inf)")
    if bool(((y != 0) & (y != 1)).any()):
        raise ValueError("ROC-AUC needs binary labels y in {0, 1}")
    y_np = y.numpy().astype(bool)
    pos, neg = int(y_np.sum()), int((~y_np).sum())
    if pos == 0 or neg == 0:
        raise ValueError("ROC-AUC needs both classes among the labels")
    ranks = rankdata(score.numpy())
    return float((ranks[y_np].sum() - pos * (pos + 1) / 2) / (pos * neg))


def score(proba: Tensor, y: Tensor, metric: str) -> float:
    """Accuracy of ``argmax proba [n, C]``, or ROC-AUC of ``proba[:, 1]``, against ``y [n]``."""
    if metric == "roc_auc":
        return roc_auc(proba[:, 1], y)
    return float((proba.argmax(-1) == y).float().mean())


def _adam(params: object, cfg: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _fit(step: Callable[[], None], validate: Callable[[], float], module: nn.Module,
         cfg: TrainConfig, report: TrainReport) -> float:
    """Run ``step`` up to ``cfg.max_epochs`` times with early stopping on ``validate``.

    The starting state is the first candidate: it is validated before the first step, and a
    step's state replaces it only with a strictly higher score. Restores ``module`` to the best
    state (the starting one when no step beat it) and returns the best validation score.
    ``report.history`` gets the score after each step.
    """
    start = time.perf_counter()
    module.eval()
    with torch.no_grad():
        best = validate()
    best_state, since = copy.deepcopy(module.state_dict()), 0
    for _ in range(cfg.max_epochs):
        module.train()
        step()
        report.epochs += 1
        module.eval()
        with torch.no_grad():
            val = validate()
        report.history.append(val)
        if val > best:
            best, best_state, since = val, copy.deepcopy(module.state_dict()), 0
        else:
            since += 1
            if since >= cfg.patience:
                break
    report.seconds += time.perf_counter() - start
    module.load_state_dict(best_state)
    module.eval()
    return best


def train_expert(model: nn.Module, task: NodeTask, cfg: TrainConfig | None = None,
                 uses_graph: bool = True) -> TrainReport:
    """Train one expert alone with cross-entropy; ``uses_graph=False`` for an MLP."""
    cfg = cfg or TrainConfig()
    opt = _adam(model.parameters(), cfg)

    def logits() -> Tensor:
        return model(task.x, task.adj) if uses_graph else model(task.x)

    def step() -> None:
        opt.zero_grad()
        nn.functional.cross_entropy(logits()[task.train_idx], task.y[task.train_idx]).backward()
        opt.step()

    def validate() -> float:
        return score(torch.softmax(logits()[task.val_idx], -1), task.y[task.val_idx], task.metric)

    report = TrainReport()
    report.best_val = _fit(step, validate, model, cfg, report)
    return report


def expected_score(out: MowstOutput, y: Tensor, idx: Tensor, metric: str) -> float:
    """Validation score of Mowst without sampling noise.

    Accuracy: ``mean_v [C_v 1(MLP right) + (1 - C_v) 1(GNN right)]``, exactly the mean of the
    random-gating accuracy over draws. ROC-AUC (no closed form): AUC of ``C p + (1 - C) p'``.
    """
    if metric == "roc_auc":
        return score(Mowst.mixture_proba(out)[idx], y[idx], metric)
    c = out.confidence[idx]
    weak_ok = (out.weak_logits[idx].argmax(-1) == y[idx]).float()
    strong_ok = (out.strong_logits[idx].argmax(-1) == y[idx]).float()
    return float((c * weak_ok + (1 - c) * strong_ok).mean())


def random_gating_scores(out: MowstOutput, y: Tensor, idx: Tensor, metric: str,
                         draws: int = 50, generator: torch.Generator | None = None) -> list[float]:
    """Mowst's inference: per draw each node uses the MLP with probability C_v, else the GNN."""
    c = out.confidence[idx]
    weak = torch.softmax(out.weak_logits[idx], -1)
    strong = torch.softmax(out.strong_logits[idx], -1)
    scores = []
    for _ in range(draws):
        to_weak = (torch.rand(c.shape, generator=generator) < c).unsqueeze(-1)
        scores.append(score(torch.where(to_weak, weak, strong), y[idx], metric))
    return scores


@dataclass
class MowstReport(TrainReport):
    """A Mowst/Mowst* training run; ``gate_collapsed`` flags C ~ 1 on the training nodes of a
    mixture whose GNN was never trained alone (see :func:`gate_collapsed`)."""

    pretrain: TrainReport | None = None
    warmup: TrainReport | None = None
    rounds: int = 0
    kept_turns: int = 0
    mean_train_confidence: float = float("nan")
    gate_collapsed: bool = False


def gate_collapsed(confidence: Tensor, threshold: float = 0.95) -> bool:
    """Whether the gate collapsed onto the MLP: mean confidence on training nodes >= threshold.

    Without a pre-trained GNN the MLP fits the training nodes first, the gate learns to trust it
    everywhere and the GNN never gets a gradient -- Mowst then degenerates to the MLP. With a
    pre-trained GNN the same confidence is the gate's verdict (e.g. on WebKB, where the MLP is
    25-30 points better than GCN), so the trainers apply this test only without pre-training.
    """
    return bool(confidence.mean() >= threshold)


def _finish(model: Mowst, task: NodeTask, report: MowstReport,
            strong_trained: bool) -> MowstReport:
    model.eval()
    with torch.no_grad():
        c = model(task.x, task.adj).confidence[task.train_idx]
    report.mean_train_confidence = float(c.mean())
    report.gate_collapsed = not strong_trained and gate_collapsed(c)
    if report.gate_collapsed:
        warnings.warn(f"Mowst gate collapsed onto the MLP (mean training confidence "
                      f"{report.mean_train_confidence:.3f}): the GNN gets almost no share of the "
                      "loss; pre-train it (pretrain_strong=True)",
                      stacklevel=3)
    return report


def _add(report: MowstReport, part: TrainReport) -> TrainReport:
    report.epochs += part.epochs
    report.seconds += part.seconds
    return part


def _pretrain(model: Mowst, task: NodeTask, cfg: TrainConfig, report: MowstReport) -> None:
    report.pretrain = _add(report, train_expert(model.strong, task, cfg))


def train_mowst(model: Mowst, task: NodeTask, cfg: TrainConfig | None = None,
                pretrain_strong: bool = True, strong_pretrained: bool = False) -> MowstReport:
    """Mowst's alternating training.

    Optionally pre-train the GNN alone (default; pass ``strong_pretrained=True`` instead when
    ``model.strong`` was trained beforehand, which skips it), then run big epochs of two turns,
    each with inner early stopping (patience ``cfg.turn_patience``, default ``cfg.patience``):
    (a) MLP + gate with the GNN frozen; (b) GNN with the confidence fixed. The mixture as it is
    passed in is the first candidate (expected random-gating score on validation; with the
    default gate, which starts nearly closed, that is within a fraction of a point of the GNN's
    own score); a turn is kept only if it beats the best validation score so far (else the
    model stays as it was), so the result never scores below its starting point on validation.
    Training stops after ``round_patience`` big epochs without a kept turn. As in the
    reference code, each side keeps one Adam optimiser across its turns (its moment estimates
    are not reset).
    """
    cfg = cfg or TrainConfig()
    check_graph(task.x, task.adj)
    report = MowstReport()
    if pretrain_strong and not strong_pretrained:
        _pretrain(model, task, cfg, report)
    model.eval()
    with torch.no_grad():
        report.best_val = expected_score(model(task.x, task.adj), task.y, task.val_idx,
                                         task.metric)
    turn_cfg = cfg.for_turns()
    weak_opt = _adam(list(model.weak.parameters()) + list(model.gate.parameters()), cfg)
    strong_opt = _adam(model.strong.parameters(), cfg)
    since = 0
    for _ in range(cfg.max_rounds):
        report.rounds += 1
        kept = _weak_turn(model, task, weak_opt, turn_cfg, report)
        kept = _strong_turn(model, task, strong_opt, turn_cfg, report) or kept
        since = 0 if kept else since + 1
        if since >= cfg.round_patience:
            break
    return _finish(model, task, report, pretrain_strong or strong_pretrained)


def _weak_turn(model: Mowst, task: NodeTask, opt: torch.optim.Optimizer, cfg: TrainConfig,
               report: MowstReport) -> bool:
    """Turn (a): MLP + gate learn while the GNN is frozen (its predictions computed once)."""
    x, y, tr = task.x, task.y, task.train_idx
    with torch.no_grad():
        strong_logits = model.strong(x, task.adj)

    def step() -> None:
        opt.zero_grad()
        weak_logits = model.weak(x)
        out = MowstOutput(weak_logits, strong_logits, model.confidence(weak_logits, x))
        mowst_loss(MowstOutput(*(t[tr] for t in out)), y[tr]).backward()
        opt.step()

    def validate() -> float:
        weak_logits = model.weak(x)
        out = MowstOutput(weak_logits, strong_logits, model.confidence(weak_logits, x))
        return expected_score(out, y, task.val_idx, task.metric)

    return _turn(model, step, validate, cfg, report)


def _strong_turn(model: Mowst, task: NodeTask, opt: torch.optim.Optimizer, cfg: TrainConfig,
                 report: MowstReport) -> bool:
    """Turn (b): the GNN learns its share ``(1 - C)`` of the loss with the confidence fixed."""
    x, adj, y, tr = task.x, task.adj, task.y, task.train_idx
    with torch.no_grad():
        weak_logits = model.weak(x)
        c = model.confidence(weak_logits, x)

    def step() -> None:
        opt.zero_grad()
        out = MowstOutput(weak_logits[tr], model.strong(x, adj)[tr], c[tr])
        mowst_loss(out, y[tr]).backward()  # the MLP's term is a constant here
        opt.step()

    def validate() -> float:
        out = MowstOutput(weak_logits, model.strong(x, adj), c)
        return expected_score(out, y, task.val_idx, task.metric)

    return _turn(model, step, validate, cfg, report)


def _turn(model: Mowst, step: Callable[[], None], validate: Callable[[], float],
          cfg: TrainConfig, report: MowstReport) -> bool:
    """One inner turn; kept only if it beats ``report.best_val``.

    The turn starts from the best model so far, whose validation score is ``report.best_val``;
    :func:`_fit` returns that starting state unless a step beats it, so a turn that is not kept
    leaves the model as it was.
    """
    val = _fit(step, validate, model, cfg, report)
    if val > report.best_val:
        report.best_val = val
        report.kept_turns += 1
        return True
    return False


def _check_loss_labels(out: MowstOutput, y: Tensor) -> None:
    """``ValueError`` unless ``y`` holds one integer class id in ``[0, C)`` per row of ``out``."""
    n, num_classes = out.weak_logits.shape
    if y.shape != (n,) or torch.is_floating_point(y):
        raise ValueError(f"labels y must be [{n}] integer class ids (one per row of the "
                         f"logits), got {y.dtype} {tuple(y.shape)}")
    if n and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got "
                         f"[{int(y.min())}, {int(y.max())}]")


def mowst_star_loss(out: MowstOutput, y: Tensor) -> Tensor:
    """Mowst*'s loss: negative log-likelihood of the probability mixture ``C p + (1 - C) p'``."""
    _check_loss_labels(out, y)
    return nn.functional.nll_loss(Mowst.mixture_proba(out).clamp_min(1e-12).log(), y)


def mowst_loss(out: MowstOutput, y: Tensor) -> Tensor:
    """Mowst's loss: ``mean_v [C_v CE(p_v, y_v) + (1 - C_v) CE(p'_v, y_v)]``."""
    _check_loss_labels(out, y)
    c = out.confidence
    weak_ce = nn.functional.cross_entropy(out.weak_logits, y, reduction="none")
    strong_ce = nn.functional.cross_entropy(out.strong_logits, y, reduction="none")
    return (c * weak_ce + (1 - c) * strong_ce).mean()


def train_mowst_star(model: Mowst, task: NodeTask, cfg: TrainConfig | None = None,
                     pretrain_strong: bool = True, strong_pretrained: bool = False) -> MowstReport:
    """Mowst*: optionally pre-train the GNN (``pretrain_strong``, or ``strong_pretrained=True``
    when it was trained beforehand), then train MLP, GNN and gate jointly on
    :func:`mowst_star_loss`; selection by the mixture's validation score.

    With ``cfg.warmup`` (default) a warm-up turn first trains the MLP and the gate with the GNN
    frozen (same loss, early stopping), so the joint phase does not start from an untrained MLP
    whose gradients reach the pre-trained GNN. The joint phase uses one Adam optimiser (the
    GNN's learning rate scaled by ``cfg.strong_lr_scale``) and starts from the state the
    warm-up ends in, which is its first candidate: the result never scores below it on
    validation.

    The mixture is of *probabilities* ``C p + (1 - C) p'``, not logits (the reference code mixes
    logits): training and the deterministic inference then optimise and predict the same
    distribution, and C = 1 / C = 0 reduce it exactly to the MLP / the GNN
    (see :meth:`~paperlab.mowst.mowst.Mowst.mixture_proba`).
    """
    cfg = cfg or TrainConfig()
    check_graph(task.x, task.adj)
    report = MowstReport()
    if pretrain_strong and not strong_pretrained:
        _pretrain(model, task, cfg, report)
    x, adj, y, tr, va = task.x, task.adj, task.y, task.train_idx, task.val_idx

    def validate_on(out: MowstOutput) -> float:
        return score(Mowst.mixture_proba(out)[va], y[va], task.metric)

    if cfg.warmup:
        model.eval()
        with torch.no_grad():
            strong_logits = model.strong(x, adj)
        weak_opt = _adam(list(model.weak.parameters()) + list(model.gate.parameters()), cfg)

        def weak_out() -> MowstOutput:
            weak_logits = model.weak(x)
            return MowstOutput(weak_logits, strong_logits, model.confidence(weak_logits, x))

        def warm_step() -> None:
            weak_opt.zero_grad()
            mowst_star_loss(MowstOutput(*(t[tr] for t in weak_out())), y[tr]).backward()
            weak_opt.step()

        warm = TrainReport()
        warm.best_val = _fit(warm_step, lambda: validate_on(weak_out()), model, cfg, warm)
        report.warmup = _add(report, warm)
    strong_ids = {id(p) for p in model.strong.parameters()}
    opt = torch.optim.Adam(
        [{"params": [p for p in model.parameters() if id(p) not in strong_ids]},
         {"params": list(model.strong.parameters()), "lr": cfg.lr * cfg.strong_lr_scale}],
        lr=cfg.lr, weight_decay=cfg.weight_decay)

    def step() -> None:
        opt.zero_grad()
        mowst_star_loss(MowstOutput(*(t[tr] for t in model(x, adj))), y[tr]).backward()
        opt.step()

    report.best_val = _fit(step, lambda: validate_on(model(x, adj)), model, cfg, report)
    report.rounds = 1
    return _finish(model, task, report, pretrain_strong or strong_pretrained)


def evaluate(model: Mowst, task: NodeTask, idx: Tensor, draws: int = 50,
             generator: torch.Generator | None = None) -> dict[str, float]:
    """Scores of a trained mixture on ``idx``: random gating (mean/std over ``draws``),
    deterministic mixing, each expert alone, and the mean confidence."""
    check_node_ids(idx, task.x.size(0))
    if idx.numel() == 0 or draws < 1:
        raise ValueError(f"evaluate needs nodes to score and draws >= 1, got {idx.numel()} "
                         f"nodes and draws={draws}")
    model.eval()
    with torch.no_grad():
        out = model(task.x, task.adj)
    random_scores = random_gating_scores(out, task.y, idx, task.metric, draws, generator)
    y = task.y[idx]
    return {
        "random": float(np.mean(random_scores)),
        "random_std": float(np.std(random_scores)),
        "deterministic": score(Mowst.mixture_proba(out)[idx], y, task.metric),
        "weak": score(torch.softmax(out.weak_logits[idx], -1), y, task.metric),
        "strong": score(torch.softmax(out.strong_logits[idx], -1), y, task.metric),
        "confidence": float(out.confidence[idx].mean()),
    }
