"""Reproduction and benchmark of Mowst on the staged graphs (``paperlab run|bench mowst``).

For each data set and seed (split i for seed i where splits ship): train the MLP, GCN and
GraphSAGE alone, then Mowst and Mowst* on top of each pre-trained GNN, and score them on the
test split (accuracy, ROC-AUC on minesweeper/tolokers). Ablations: the dispersion, random vs
deterministic inference, and GNN pre-training on/off. Every Mowst is also trained with short
turns (inner patience P/5, :data:`SHORT_TURNS`): what bounding the alternation's cost costs.

The sizes can be narrowed by flags for a partial full run (the command used is recorded in
the README): ``--datasets cora,texas`` (also the graphs ``bench`` uses), ``--seeds 3`` and the
training limits ``--max-epochs``, ``--patience``, ``--max-rounds``, ``--turn-patience``
(``SYSTEM.options``; ``resolve_config`` applies them through ``Config.with_options``).
"""

from __future__ import annotations

import copy
import functools
import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from paperlab.core import data, plots, stats, timing
from paperlab.core.config import resolve_config
from paperlab.core.jobs import Job, job_map, run_options
from paperlab.core.results import Result, RunContext
from paperlab.core.seed import derive_seed, seed_everything, torch_threads
from paperlab.mowst import datasets
from paperlab.mowst.experts import MLP, STRONG_EXPERTS
from paperlab.mowst.mowst import Mowst, MowstOutput
from paperlab.mowst.training import (
    NodeTask,
    TrainConfig,
    evaluate,
    mowst_loss,
    mowst_star_loss,
    score,
    train_expert,
    train_mowst,
    train_mowst_star,
)

BACKBONES = ("gcn", "sage")
ROUTED_SHARES = (0.0, 0.5, 0.8, 0.9, 0.95, 0.99)  # shares of nodes sent to the MLP in the sweep
NAMES = {"gcn": "GCN", "sage": "SAGE"}
SHORT_TURNS = 5  # the short-turn variant runs Mowst's turns with patience P / SHORT_TURNS
QUERIES = 200  # test nodes answered one at a time in the online-serving benchmark


@dataclass(frozen=True)
class Config:
    """Sizes of the reproduction; ``quick()`` finishes in minutes on 2 CPU cores."""

    datasets: tuple[str, ...]
    seeds: int
    ablation_datasets: tuple[str, ...]
    ablation_seeds: int
    train: TrainConfig = field(default_factory=TrainConfig)
    hidden: int = 64
    num_layers: int = 2
    dropout: float = 0.5
    draws: int = 50
    bench_datasets: tuple[str, ...] = ("cora", "amherst41")
    bench_repeats: int = 5

    @classmethod
    def quick(cls) -> Config:
        return cls(datasets=("cora", "chameleon_filtered", "reed98"), seeds=2,
                   ablation_datasets=("cora",), ablation_seeds=1,
                   train=TrainConfig(max_epochs=100, patience=20, max_rounds=2, round_patience=1),
                   bench_datasets=("cora", "reed98"), bench_repeats=3)

    @classmethod
    def full(cls) -> Config:
        return cls(datasets=("cora", "citeseer", "texas", "wisconsin", "actor",
                             "chameleon_filtered", "squirrel_filtered", "minesweeper",
                             "tolokers", "amherst41", "reed98"), seeds=5,
                   ablation_datasets=("cora", "chameleon_filtered", "amherst41"), ablation_seeds=5,
                   train=TrainConfig(max_epochs=500, patience=100, max_rounds=10,
                                     round_patience=2),
                   bench_datasets=("cora", "amherst41", "tolokers"))

    def with_options(self, options: dict[str, Any]) -> Config:
        """Narrow the size by the system's flags (see the module docstring); unset flags keep it."""
        cfg = self
        if options.get("datasets"):
            names = tuple(options["datasets"])
            cfg = replace(cfg, datasets=names, bench_datasets=names,
                          ablation_datasets=tuple(d for d in cfg.ablation_datasets if d in names))
        if options.get("seeds"):
            seeds = int(options["seeds"])
            cfg = replace(cfg, seeds=seeds, ablation_seeds=min(cfg.ablation_seeds, seeds))
        train = {key: int(options[key])
                 for key in ("max_epochs", "patience", "max_rounds", "turn_patience")
                 if options.get(key)}
        return replace(cfg, train=replace(cfg.train, **train)) if train else cfg

    def short_turns(self) -> TrainConfig:
        """The training settings with Mowst's turns cut to patience ``P / SHORT_TURNS``."""
        return replace(self.train, turn_patience=max(1, self.train.patience // SHORT_TURNS))


def _task(graph: datasets.Graph, seed: int) -> NodeTask:
    train, val, test = graph.split(seed)
    return NodeTask(graph.x, graph.adj_t, graph.y, train, val, test, graph.num_classes,
                    graph.metric)


def _mlp(graph: datasets.Graph, cfg: Config) -> MLP:
    return MLP(graph.x.size(1), cfg.hidden, graph.num_classes, cfg.num_layers, cfg.dropout)


def _gnn(backbone: str, graph: datasets.Graph, cfg: Config) -> torch.nn.Module:
    return STRONG_EXPERTS[backbone](graph.x.size(1), cfg.hidden, graph.num_classes,
                                    cfg.num_layers, cfg.dropout)


def _test_score(model: torch.nn.Module, task: NodeTask, uses_graph: bool) -> float:
    model.eval()
    with torch.no_grad():
        logits = model(task.x, task.adj) if uses_graph else model(task.x)
    return score(torch.softmax(logits[task.test_idx], -1), task.y[task.test_idx], task.metric)


def _routed_time_ratio(model: Mowst, task: NodeTask, cfg: Config, **route: Any) -> float:
    """Median time of ``routed_predict(**route)`` over one full-graph GNN forward, interleaved."""
    model.eval()
    with torch.no_grad():
        times = timing.compare({
            "gnn": lambda: model.strong(task.x, task.adj),
            "routed": lambda: model.routed_predict(task.x, task.adj, **route),
        }, warmup=1, repeats=cfg.bench_repeats)
    return times["routed"].median / times["gnn"].median


def _routed_stats(model: Mowst, task: NodeTask, cfg: Config, seed: int) -> dict[str, float]:
    """Share of nodes routed to the MLP, messages saved, routed vs full-GNN inference time."""
    gen = torch.Generator().manual_seed(seed)
    routed = model.routed_predict(task.x, task.adj, generator=gen)
    return {"routed_to_mlp": float(routed.to_weak.float().mean()),
            "messages_saved": routed.messages_saved,
            "routed_time_ratio": _routed_time_ratio(model, task, cfg, generator=gen)}


def _routed_sweep(model: Mowst, task: NodeTask, cfg: Config, seed: int) -> dict[str, float]:
    """Routed / full-GNN inference time when a given share of the nodes (drawn uniformly) goes
    to the MLP: where routing starts to pay on this graph, whatever the gate learned."""
    gen = torch.Generator().manual_seed(seed)
    shares = {f"{s:g}": torch.rand(task.x.size(0), generator=gen) < s for s in ROUTED_SHARES}
    return {share: _routed_time_ratio(model, task, cfg, to_weak=w) for share, w in shares.items()}


def _query_serving(model: Mowst, task: NodeTask, cfg: Config, seed: int) -> dict[str, float]:
    """Online serving: up to ``QUERIES`` test nodes answered one at a time, Mowst routed vs the
    GNN alone (both exact, layer-wise on each node's receptive field, graph prepared once)."""
    model.eval()
    queries = task.test_idx[:QUERIES].split(1)
    ready = model.strong.prepare(task.adj, task.x.size(0))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        share = _mean([float(model.routed_predict(task.x, ready, nodes=q, generator=gen,
                                                  prepared=True).to_weak[0]) for q in queries])
        times = timing.compare({
            "gnn": lambda: [model.strong.forward_at(task.x, ready, q, prepared=True)
                            for q in queries],
            "routed": lambda: [model.routed_predict(task.x, ready, nodes=q, generator=gen,
                                                    prepared=True) for q in queries],
        }, warmup=1, repeats=cfg.bench_repeats)
    return {"query_routed_to_mlp": share,
            "gnn_ms_per_query": 1000 * times["gnn"].median / len(queries),
            "query_routed_inference_ratio": times["routed"].median / times["gnn"].median}


def _run_seed(graph: datasets.Graph, seed: int, cfg: Config, ablate: bool,
              confidences: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """Every method on one split; one record per method with its test score and costs.

    Each method starts from its own seed (:func:`~paperlab.core.seed.derive_seed` of the seed
    and its name), so its result does not depend on which methods ran before it.
    """
    task = _task(graph, seed)
    records = []

    def start(method: str) -> torch.Generator:
        """Seed everything for ``method``; its own generator for the random-gating draws."""
        seed_everything(derive_seed(seed, method))
        return torch.Generator().manual_seed(derive_seed(seed, method, "draws"))

    def add(method: str, value: float, **extra: Any) -> None:
        records.append({"dataset": graph.name, "method": method, "seed": seed, "score": value,
                        **extra})

    start("MLP")
    mlp = _mlp(graph, cfg)
    rep = train_expert(mlp, task, cfg.train, uses_graph=False)
    add("MLP", _test_score(mlp, task, False), ms_per_epoch=rep.ms_per_epoch,
        train_s=rep.seconds)
    for backbone in BACKBONES:
        name = NAMES[backbone]
        start(name)
        gnn = _gnn(backbone, graph, cfg)
        gnn_rep = train_expert(gnn, task, cfg.train)
        add(name, _test_score(gnn, task, True), ms_per_epoch=gnn_rep.ms_per_epoch,
            train_s=gnn_rep.seconds)
        variants: list[tuple[str, str, Callable[..., Any], TrainConfig]] = [
            (f"Mowst-{name}", "variance+entropy", train_mowst, cfg.train),
            (f"Mowst*-{name}", "variance+entropy", train_mowst_star, cfg.train),
            (f"Mowst-{name} (short turns)", "variance+entropy", train_mowst, cfg.short_turns())]
        if ablate and backbone == "gcn":
            variants += [(f"Mowst-{name} (variance only)", "variance", train_mowst, cfg.train),
                         (f"Mowst-{name} (entropy only)", "entropy", train_mowst, cfg.train)]
        for method, disp, trainer, train_cfg in variants:
            # The trained GNN above is the pre-training: Mowst starts from a copy of it.
            gen = start(method)
            model = Mowst(_mlp(graph, cfg), copy.deepcopy(gnn), graph.num_classes, disp)
            rep = trainer(model, task, train_cfg, strong_pretrained=True)
            ev = evaluate(model, task, task.test_idx, cfg.draws, gen)
            extra = {"confidence": ev["confidence"], "train_s": gnn_rep.seconds + rep.seconds,
                     "ms_per_epoch": (gnn_rep.seconds + rep.seconds) * 1000
                     / (gnn_rep.epochs + rep.epochs),
                     "gate_collapsed": rep.gate_collapsed}
            if trainer is train_mowst:
                extra.update(_routed_stats(model, task, cfg, seed))
                add(method, ev["random"], deterministic=ev["deterministic"], **extra)
                if method == f"Mowst-{name}" and f"{graph.name}/{name}" not in confidences:
                    model.eval()
                    with torch.no_grad():
                        out = model(task.x, task.adj)
                    confidences[f"{graph.name}/{name}"] = out.confidence[task.test_idx].numpy()
            else:
                add(method, ev["deterministic"], **extra)
        if ablate and backbone == "gcn":
            gen = start(f"Mowst-{name} (no pre-training)")
            model = Mowst(_mlp(graph, cfg), _gnn(backbone, graph, cfg), graph.num_classes)
            rep = train_mowst(model, task, cfg.train, pretrain_strong=False)
            ev = evaluate(model, task, task.test_idx, cfg.draws, gen)
            add(f"Mowst-{name} (no pre-training)", ev["random"], confidence=ev["confidence"],
                gate_collapsed=rep.gate_collapsed, train_s=rep.seconds,
                ms_per_epoch=rep.ms_per_epoch, deterministic=ev["deterministic"])
    return records


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def _aggregate(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean +- std over seeds per (data set, method); scores in percent."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        groups[(r["dataset"], r["method"])].append(r)
    rows = []
    for (dataset, method), rs in groups.items():
        scores = [100 * r["score"] for r in rs]
        row: dict[str, Any] = {"dataset": dataset, "method": method,
                               "mean": _mean(scores),
                               "std": float(np.std(scores)) if len(scores) > 1 else 0.0,
                               "seeds": len(rs)}
        for key in ("deterministic", "confidence", "routed_to_mlp", "messages_saved",
                    "routed_time_ratio", "ms_per_epoch", "train_s"):
            vals = [r[key] for r in rs if key in r]
            if vals:
                row[key] = 100 * _mean(vals) if key == "deterministic" else _mean(vals)
        collapsed = [r["gate_collapsed"] for r in rs if "gate_collapsed" in r]
        if collapsed:
            row["gate_collapsed"] = f"{sum(collapsed)}/{len(collapsed)}"
        rows.append(row)
    return rows


def _seed_scores(records: list[dict[str, Any]]) -> dict[tuple[str, str], dict[int, float]]:
    """``{(data set, method): {seed: test score in %}}`` from the per-split records."""
    scores: dict[tuple[str, str], dict[int, float]] = defaultdict(dict)
    for r in records:
        scores[(r["dataset"], r["method"])][r["seed"]] = 100 * r["score"]
    return scores


def _seed_geomean(ratios: list[float]) -> tuple[float, dict[str, Any] | None]:
    """Geometric mean of one time ratio per seed, and its t interval over seeds taken on the
    log scale (a ratio's interval stays positive); None for one seed."""
    logs = np.log(ratios)
    ci = stats.mean_interval(logs)
    if ci is not None:
        ci = stats.interval(np.exp(ci["lo"]), np.exp(ci["hi"]),
                            f"t over {len(ratios)} seeds, log scale")
    return float(np.exp(logs.mean())), ci


def _summary(rows: list[dict[str, Any]], names: list[str],
             records: list[dict[str, Any]]) -> dict[str, Any]:
    """The claims' figures and their 95 % intervals (``*_ci95``, None where one seed has none).

    Every method of a data set runs on the same splits (seeds), so Mowst and its experts are
    compared seed by seed: per (data set, backbone) pair, the best Mowst variant (by mean) is
    held against each expert by a t interval over the per-seed score differences. The mean
    gain over the GNN gets a t interval over the (pair, seed) gains; the time ratios are the
    geometric mean over seeds of each seed's median over pairs, with a t interval over seeds
    on the log scale.
    """
    table = {(r["dataset"], r["method"]): r for r in rows}
    scores = _seed_scores(records)
    seeds = sorted(scores[(names[0], "MLP")])
    beats, held, lost, gains, short_changes = [], [], [], [], []
    ratios: dict[str, dict[int, list[float]]] = {k: defaultdict(list)
                                                  for k in ("train", "routed", "short")}
    for d in names:
        mlp = scores[(d, "MLP")]
        for backbone in BACKBONES:
            gnn = NAMES[backbone]
            mowst, short = table[(d, f"Mowst-{gnn}")], table[(d, f"Mowst-{gnn} (short turns)")]
            best = f"Mowst-{gnn}" if mowst["mean"] >= table[(d, f"Mowst*-{gnn}")]["mean"] else (
                f"Mowst*-{gnn}")
            if table[(d, best)]["mean"] >= max(table[(d, "MLP")]["mean"], table[(d, gnn)]["mean"]):
                beats.append(f"{d}/{gnn}")
            ours, theirs = scores[(d, best)], scores[(d, gnn)]
            gains += [ours[s] - theirs[s] for s in seeds]
            against = [stats.mean_interval([ours[s] - expert[s] for s in seeds])
                       for expert in (mlp, theirs)]
            if None not in against:
                if all(ci["lo"] >= 0 for ci in against):
                    held.append(f"{d}/{gnn}")
                elif any(ci["hi"] < 0 for ci in against):
                    lost.append(f"{d}/{gnn}")
            short_changes.append(short["mean"] - mowst["mean"])
            for s in seeds:
                run = {r["method"]: r for r in records if r["dataset"] == d and r["seed"] == s}
                ratios["train"][s].append(run[f"Mowst-{gnn}"]["train_s"] / run[gnn]["train_s"])
                ratios["routed"][s].append(run[f"Mowst-{gnn}"]["routed_time_ratio"])
                ratios["short"][s].append(run[f"Mowst-{gnn} (short turns)"]["train_s"]
                                          / run[gnn]["train_s"])
    pairs = len(names) * len(BACKBONES)
    share_ci = None
    if len(seeds) > 1:  # one seed: no spread to judge a pair by
        share_ci = stats.interval(
            len(held) / pairs, (pairs - len(lost)) / pairs,
            f"{len(held)} of {pairs} pairs >= both experts and {len(lost)} below one, by a t "
            f"interval over {len(seeds)} seeds per pair")
    gain_ci = stats.mean_interval(gains)
    if gain_ci is not None:
        gain_ci["method"] = f"t over {pairs} pairs x {len(seeds)} seeds"
    train, train_ci = _seed_geomean([statistics.median(ratios["train"][s]) for s in seeds])
    routed, routed_ci = _seed_geomean([statistics.median(ratios["routed"][s]) for s in seeds])
    return {"datasets": names,
            "mowst_beats_both_experts": beats,
            "mowst_beats_both_experts_ci95": share_ci,
            "mean_gain_over_gnn_pts": _mean(gains),
            "mean_gain_over_gnn_pts_ci95": gain_ci,
            "train_time_ratio_vs_gnn": train,
            "train_time_ratio_vs_gnn_ci95": train_ci,
            "routed_inference_time_ratio_vs_gnn": routed,
            "routed_inference_time_ratio_vs_gnn_ci95": routed_ci,
            "short_turns_train_time_ratio_vs_gnn":
                _seed_geomean([statistics.median(ratios["short"][s]) for s in seeds])[0],
            "short_turns_mean_score_change_pts": _mean(short_changes)}


def _plot_confidence(confidences: dict[str, np.ndarray], ctx: RunContext) -> None:
    keys = sorted(confidences)
    cols = min(len(keys), 4)
    rows = (len(keys) + cols - 1) // cols
    fig, axes = plots.figure(rows, cols, "Mowst confidence C on test nodes (first seed)", size=2.6)
    axes = np.atleast_1d(axes).ravel()
    for ax, key in zip(axes, keys, strict=False):
        ax.hist(confidences[key], bins=20, range=(0, 1), color="tab:blue")
        ax.set_title(key)
        ax.set_xlabel("confidence C (1 = MLP)")
    for ax in axes[len(keys):]:
        ax.axis("off")
    fig.tight_layout()
    plots.save(fig, ctx.plot_path("confidence"))


def _plot_scores(rows: list[dict[str, Any]], names: list[str], records: list[dict[str, Any]],
                 ctx: RunContext) -> None:
    """Mean test score per data set and method with its 95 % t interval over seeds (no bar
    for one seed): markers, not bars, so that the axis spans the intervals, not 0-100."""
    methods = ["MLP", "GCN", "SAGE", "Mowst-GCN", "Mowst*-GCN", "Mowst-SAGE", "Mowst*-SAGE"]
    table = {(r["dataset"], r["method"]): r for r in rows}
    scores = _seed_scores(records)
    seeds = len(scores[(names[0], "MLP")])
    fig, ax = plots.figure(1, 1, f"Test score (mean over {seeds} seeds, 95% t interval, %)",
                           size=4.5)
    width = 0.8 / len(methods)
    for i, m in enumerate(methods):
        plots.errorbars(ax, np.arange(len(names)) + i * width,
                        [table[(d, m)]["mean"] for d in names],
                        [stats.mean_interval(list(scores[(d, m)].values())) for d in names],
                        label=m, linestyle="none", markersize=4)
    ax.set_xticks(np.arange(len(names)) + 0.4, names, rotation=30, ha="right")
    plots.legend_outside(ax)
    plots.save(fig, ctx.plot_path("scores"))


@dataclass(frozen=True)
class SplitJob:
    """One job of the sweep: every method on one data set's split (the seed is the job's)."""

    dataset: str
    ablate: bool
    cfg: Config
    data_root: str | None = None


@functools.lru_cache(maxsize=1)
def _graph(name: str, data_root: str | None) -> datasets.Graph:
    """The graph a worker process loaded last (jobs come data set by data set)."""
    return datasets.load(name, functools.partial(data.require, root=data_root))


def _split_job(job: SplitJob, seed: int) -> dict[str, Any]:
    """:func:`_run_seed` as a job: its records, the confidences it saw and the data set."""
    graph = _graph(job.dataset, job.data_root)
    confidences: dict[str, np.ndarray] = {}
    with torch_threads(1):  # the machine is shared; small graphs gain nothing from threads
        records = _run_seed(graph, seed, job.cfg, job.ablate, confidences)
    return {"records": records, "confidences": confidences, "described": graph.describe()}


def run(ctx: RunContext, config: Config | None = None) -> Result:
    """Headline comparison: MLP, GCN, SAGE, Mowst and Mowst* on every configured data set.

    Each (data set, seed) is a job of :func:`paperlab.core.jobs.job_map`: ``--workers N``
    trains N splits at once, ``--ray-address`` on a cluster; finished splits are kept on disk,
    so an interrupted run resumes where it stopped (``--fresh`` starts over).
    """
    cfg = resolve_config(ctx, Config, config)
    root = None if ctx.data_root is None else str(ctx.data_root)
    for name in cfg.datasets:  # a missing data set fails here, before any training
        datasets.locate(name, ctx.require)
    jobs = [Job(SplitJob(name, name in cfg.ablation_datasets and s < cfg.ablation_seeds, cfg,
                         root), ctx.seed + s, f"{name} seed={ctx.seed + s}",
                key=(name, name in cfg.ablation_datasets and s < cfg.ablation_seeds, cfg))
            for name in cfg.datasets for s in range(cfg.seeds)]
    done = job_map(_split_job, jobs, sweep="mowst.run", description="mowst: data set x seed",
                   **run_options(ctx.options))
    records = [r for d in done for r in d["records"]]
    confidences: dict[str, np.ndarray] = {}
    for d in done:  # the first seed's, as in the plot's title
        for key, values in d["confidences"].items():
            confidences.setdefault(key, np.asarray(values))
    described = list({d["described"]["name"]: d["described"] for d in done}.values())
    rows = _aggregate(records)
    names = list(cfg.datasets)
    _plot_confidence(confidences, ctx)
    _plot_scores(rows, names, records, ctx)
    notes = [
        "score = test accuracy (%), ROC-AUC (%) on minesweeper/tolokers; Mowst = random gating "
        f"averaged over {cfg.draws} draws, 'deterministic' = argmax(C p + (1-C) p'); "
        "Mowst* = deterministic mixture of probabilities.",
        "Mowst/Mowst* start from a copy of the GNN trained alone (the pre-training); their "
        "train_s includes it. Seeds ctx.seed+i use shipped split i (Planetoid: one split).",
        f"Training: Adam lr {cfg.train.lr}, wd {cfg.train.weight_decay}, <= {cfg.train.max_epochs}"
        f" epochs, patience {cfg.train.patience}; Mowst <= {cfg.train.max_rounds} big epochs, "
        f"turn patience {cfg.train.for_turns().patience} ('short turns': "
        f"{cfg.short_turns().turn_patience}); {cfg.num_layers} layers, width {cfg.hidden}, "
        "1 CPU thread.",
    ]
    return Result(results=rows, summary=_summary(rows, names, records), data=described, notes=notes)


def _epoch_timings(graph: datasets.Graph, cfg: Config, backbone: str) -> dict[str, Any]:
    """Per-epoch training time of the GNN alone vs Mowst's two turns and Mowst*, interleaved."""
    task = _task(graph, 0)
    tr, y = task.train_idx, task.y[task.train_idx]
    model = Mowst(_mlp(graph, cfg), _gnn(backbone, graph, cfg), graph.num_classes)
    gnn_opt = torch.optim.Adam(model.strong.parameters(), lr=cfg.train.lr)
    weak_opt = torch.optim.Adam(list(model.weak.parameters()) + list(model.gate.parameters()))
    all_opt = torch.optim.Adam(model.parameters())
    model.train()
    with torch.no_grad():
        frozen_strong = model.strong(task.x, task.adj)

    def gnn_epoch() -> None:
        gnn_opt.zero_grad()
        torch.nn.functional.cross_entropy(model.strong(task.x, task.adj)[tr], y).backward()
        gnn_opt.step()

    def mowst_epoch() -> None:  # one turn of each kind = two epochs of the alternation
        weak_opt.zero_grad()
        weak_logits = model.weak(task.x)
        out = MowstOutput(weak_logits, frozen_strong, model.confidence(weak_logits, task.x))
        mowst_loss(MowstOutput(*(t[tr] for t in out)), y).backward()
        weak_opt.step()
        gnn_epoch()

    def star_epoch() -> None:
        all_opt.zero_grad()
        out = model(task.x, task.adj)
        mowst_star_loss(MowstOutput(*(t[tr] for t in out)), y).backward()
        all_opt.step()

    times = timing.compare({"gnn": gnn_epoch, "mowst_two_turns": mowst_epoch,
                            "mowst_star": star_epoch}, warmup=1, repeats=cfg.bench_repeats)
    return {k: 1000 * t.median for k, t in times.items()}


def _plot_routed_sweep(rows: list[dict[str, Any]], ctx: RunContext) -> None:
    fig, ax = plots.figure(1, 1, "Routed inference time / full-GNN time", size=4.0)
    for r in rows:
        ratios = [r[f"routed_ratio_at_{share:g}"] for share in ROUTED_SHARES]
        ax.plot(ROUTED_SHARES, ratios, "o-", label=f"{r['dataset']}/{r['backbone']}")
    ax.axhline(1.0, color="k", linestyle="--", linewidth=0.8)
    ax.set_xlabel("share of nodes routed to the MLP")
    ax.set_ylabel("routed / GNN (time)")
    plots.legend_outside(ax, fontsize=7)
    plots.save(fig, ctx.plot_path("routed_inference"))


def _bench_pair(graph: datasets.Graph, backbone: str, cfg: Config, seed: int) -> dict[str, Any]:
    """One bench row: Mowst's training and inference cost against the GNN ``backbone``."""
    seed_everything(seed)
    task = _task(graph, seed)
    gnn = _gnn(backbone, graph, cfg)
    gnn_rep = train_expert(gnn, task, cfg.train)
    model = Mowst(_mlp(graph, cfg), copy.deepcopy(gnn), graph.num_classes)
    rep = train_mowst(model, task, cfg.train, strong_pretrained=True)
    short = Mowst(_mlp(graph, cfg), copy.deepcopy(gnn), graph.num_classes)
    short_rep = train_mowst(short, task, cfg.short_turns(), strong_pretrained=True)
    star = Mowst(_mlp(graph, cfg), copy.deepcopy(gnn), graph.num_classes)
    star_rep = train_mowst_star(star, task, cfg.train, strong_pretrained=True)
    epoch_ms = _epoch_timings(graph, cfg, backbone)
    routed = _routed_stats(model, task, cfg, seed)
    sweep = _routed_sweep(model, task, cfg, seed)
    serving = _query_serving(model, task, cfg, seed)
    paying = [float(share) for share, ratio in sweep.items() if ratio <= 1]
    return {
        "gnn_train_s": gnn_rep.seconds,
        "mowst_train_ratio": (gnn_rep.seconds + rep.seconds) / gnn_rep.seconds,
        "mowst_short_turns_train_ratio":
            (gnn_rep.seconds + short_rep.seconds) / gnn_rep.seconds,
        "mowst_star_train_ratio": (gnn_rep.seconds + star_rep.seconds) / gnn_rep.seconds,
        "gnn_ms_per_epoch": epoch_ms["gnn"],
        "mowst_two_turns_epoch_ratio": epoch_ms["mowst_two_turns"] / epoch_ms["gnn"],
        "mowst_star_epoch_ratio": epoch_ms["mowst_star"] / epoch_ms["gnn"],
        "gnn_val": gnn_rep.best_val, "mowst_val": rep.best_val,
        "mowst_short_turns_val": short_rep.best_val, "mowst_star_val": star_rep.best_val,
        "routed_to_mlp": routed["routed_to_mlp"],
        "messages_saved": routed["messages_saved"],
        "routed_inference_ratio": routed["routed_time_ratio"],
        **{f"routed_ratio_at_{share}": ratio for share, ratio in sweep.items()},
        "break_even_share": min(paying) if paying else None,
        **serving}


def bench(ctx: RunContext, config: Config | None = None) -> Result:
    """Training and inference time of Mowst against the plain GNN on the same graphs."""
    cfg = resolve_config(ctx, Config, config)
    rows, described = [], []
    with torch_threads(1):
        for name in cfg.bench_datasets:
            graph = datasets.load(name, ctx.require)
            described.append(graph.describe())
            rows += [{"dataset": name, "backbone": NAMES[backbone],
                      **_bench_pair(graph, backbone, cfg, ctx.seed)} for backbone in BACKBONES]

    def median(key: str) -> float:
        return statistics.median(r[key] for r in rows)

    summary = {
        "train_time_ratio_vs_gnn": median("mowst_train_ratio"),
        "mowst_star_train_time_ratio_vs_gnn": median("mowst_star_train_ratio"),
        "routed_inference_time_ratio_vs_gnn": median("routed_inference_ratio"),
        "mowst_two_turns_epoch_ratio_vs_gnn": median("mowst_two_turns_epoch_ratio"),
        "short_turns_train_time_ratio_vs_gnn": median("mowst_short_turns_train_ratio"),
        "query_routed_inference_time_ratio_vs_gnn": median("query_routed_inference_ratio"),
        "routed_break_even_share": {f"{r['dataset']}/{r['backbone']}": r["break_even_share"]
                                    for r in rows},
    }
    summary.update({
        "goal_training_le_2x": summary["train_time_ratio_vs_gnn"] <= 2,
        "goal_training_le_2x_short_turns": summary["short_turns_train_time_ratio_vs_gnn"] <= 2,
        "goal_routed_inference_le_1x": summary["routed_inference_time_ratio_vs_gnn"] <= 1,
        "goal_routed_inference_le_1x_per_query":
            summary["query_routed_inference_time_ratio_vs_gnn"] <= 1,
    })
    _plot_routed_sweep(rows, ctx)
    notes = ["Ratios are Mowst time / plain-GNN time measured in the same process "
             "(>1 = Mowst slower). Train ratios are end-to-end with early stopping and include "
             "the GNN pre-training; epoch ratios time single optimiser steps interleaved. "
             f"'short turns' = Mowst with turn patience {cfg.short_turns().turn_patience} "
             f"instead of {cfg.train.for_turns().patience}; *_val = best validation score "
             "(Mowst: expected random-gating accuracy, or the mixture's ROC-AUC).",
             "Routed inference = MLP + gate on all nodes, then the GNN layer by layer on the "
             "receptive field of the nodes drawn for it (exact); compared with one full-graph GNN "
             "forward. routed_ratio_at_S forces a share S of nodes (drawn uniformly) to the "
             "MLP; break_even_share = the smallest share in the sweep where routed <= 1x.",
             f"Per query: the first {QUERIES} test nodes answered one at a time (online "
             "serving), Mowst's routed_predict(nodes=[v]) against the GNN's forward_at([v]), "
             "both exact and on the graph prepared once (GCN's normalisation); the whole-graph "
             "ratios above amortise the GNN over every node, per query nothing is shared."]
    return Result(results=rows, summary=summary, data=described, notes=notes)
