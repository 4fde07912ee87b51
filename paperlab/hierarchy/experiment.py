"""Reproduction and benchmark for "When Does Bottom-up Beat Top-down in Hierarchical
Community Detection?" (Dreveton, Kuroda, Grossglauser & Thiran).

``run``: the (a1, a2) sweep of the paper's Fig. 2 (binary HSBM of depth 3, a0 = 40,
a3 = 100): exact recovery per level for bottom-up, top-down, Paris and Leiden + linkage,
compared with the Chernoff-Hellinger thresholds; then the real networks (high school,
power grid) with dendrograms and inversion counts.
``bench``: time and peak memory against N for both algorithms and Paris, in one run.
"""

from __future__ import annotations

import json
import resource
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from paperlab.core import plots, stats
from paperlab.core.config import resolve_config
from paperlab.core.jobs import Job, job_map, run_options
from paperlab.core.progress import track
from paperlab.core.results import Result, RunContext, atomic_write_text
from paperlab.core.seed import derive_seed
from paperlab.core.timing import peak_memory
from paperlab.hierarchy import baselines, datasets, linkage, metrics
from paperlab.hierarchy.estimators import BottomUp, TopDown
from paperlab.hierarchy.hsbm import HSBM
from paperlab.hierarchy.theory import chernoff_hellinger, top_down_split_errors

HOW_TO_GET = ("The 2013 high-school contact network and the UCTE power grid are read from "
              "<data root>/graphs/hsbm/.")


# The real networks of the paper's Section 6, by the name their results carry.
REAL_NETWORKS: dict[str, Callable[[Path], datasets.Network]] = {
    "high_school_2013": lambda root: datasets.load_high_school(root / "highschool2013"),
    "power_grid_ucte": lambda root: datasets.load_power_grid(root / "powergrid"),
}


@dataclass(frozen=True)
class SweepConfig:
    """The synthetic sweep: ``a = (a0, a1, a2, a3)`` for every ``a0 < a1 < a2 < a3`` on the grid."""

    a1_values: tuple[int, ...]
    a2_values: tuple[int, ...]
    n0: int = 200
    repetitions: int = 5
    a0: float = 40.0
    a3: float = 100.0
    depth: int = 3
    branching: int = 2

    def cells(self) -> list[tuple[int, int]]:
        return [(a1, a2) for a1 in self.a1_values for a2 in self.a2_values
                if self.a0 < a1 < a2 < self.a3]


@dataclass(frozen=True)
class BenchConfig:
    """Scaling benchmark on a bounded-degree binary HSBM of depth 3 (mean degree ~60).

    With ``scaling_sizes`` the benchmark is instead bottom-up's stage-by-stage scaling
    (seconds per stage, peak memory, leaf accuracy) at those N, one graph each
    (``paperlab bench hierarchy --scaling-sizes 100000,300000,1000000``)."""

    sizes: tuple[int, ...]
    repeats: int = 1
    a: tuple[float, ...] = (20.0, 40.0, 80.0, 240.0)
    paris_max_n: int = 100000  # Paris grows ~N^1.4 here (30 s at 3x10^4 nodes, quiet machine)
    scaling_sizes: tuple[int, ...] = ()


@dataclass(frozen=True)
class ScalingConfig:
    """Exact recovery per level against N in cells where the Chernoff-Hellinger criteria say
    bottom-up recovers a level and top-down does not (binary HSBM of depth 3). Graph ``g`` of
    size ``n0`` is drawn once and fitted by both algorithms."""

    cells: tuple[tuple[float, ...], ...]
    n0_values: tuple[int, ...]
    graphs: tuple[int, ...]  # graphs per size, one entry per n0


@dataclass(frozen=True)
class Config:
    """``run``'s sweep, its separation-against-N part, and ``bench``'s scaling sizes."""

    sweep: SweepConfig
    bench: BenchConfig
    scaling: ScalingConfig | None = None  # None: no separation-against-N part
    networks: tuple[str, ...] = tuple(REAL_NETWORKS)  # the real-data part (names below)

    def __post_init__(self) -> None:
        unknown = [n for n in self.networks if n not in REAL_NETWORKS]
        if unknown:
            raise ValueError(f"unknown networks {unknown}; known: {sorted(REAL_NETWORKS)}")

    def with_options(self, options: Mapping[str, Any]) -> Config:
        """``scaling_sizes`` (the system's ``--scaling-sizes``) makes ``bench`` measure
        bottom-up's stages at those N instead of the comparison with the other methods."""
        sizes = options.get("scaling_sizes")
        if not sizes:
            return self
        return replace(self, bench=replace(self.bench, scaling_sizes=tuple(int(n) for n in sizes)))

    @classmethod
    def quick(cls) -> Config:
        # a1 = 42 sits where theory says top-down's first split fails but bottom-up works.
        return cls(SweepConfig(a1_values=(42, 45, 60), a2_values=(50, 70, 90), n0=100,
                               repetitions=2),
                   BenchConfig(sizes=(1000, 3000, 10000), repeats=2, paris_max_n=10000),
                   # the cell where the criteria separate most, at the largest N that fits
                   # the quick budget (~30 s of CPU; N = 25,600 takes ~50 s per graph)
                   ScalingConfig(cells=((40, 41, 45, 100),), n0_values=(200, 800),
                                 graphs=(3, 3)))

    @classmethod
    def full(cls) -> Config:
        # The paper's n0 = 200 (N = 1600); a 10-step grid keeps it to ~15 minutes of CPU.
        return cls(SweepConfig(a1_values=(42, 45, 55, 65, 75, 85),
                               a2_values=(50, 60, 70, 80, 90), n0=200, repetitions=3),
                   BenchConfig(sizes=(1000, 3000, 10000, 30000, 100000), repeats=1),
                   ScalingConfig(cells=((40, 41, 45, 100), (40, 42, 50, 100), (40, 50, 60, 100)),
                                 n0_values=(200, 800, 3200, 12800), graphs=(5, 4, 3, 2)))


def _methods(seed: int) -> dict[str, Callable[[], Any]]:
    """The four contenders of the paper's figures, freshly configured."""
    methods: dict[str, Callable[[], Any]] = {
        "bottom_up": lambda: BottomUp(random_state=seed),
        "top_down": lambda: TopDown(random_state=seed),
        "paris": lambda: baselines.Paris(),
    }
    if baselines.leiden_available():
        methods["leiden_linkage"] = lambda: baselines.leiden_linkage(seed)
    return methods


def _score(model: HSBM, est: Any) -> dict[str, Any]:
    """Per-level accuracy / exact recovery / AMI, tree recovery and cluster count of a fit."""
    out: dict[str, Any] = {"n_clusters": est.n_clusters_}
    for level in range(1, model.depth + 1):
        k = model.branching**level
        # A method that found fewer than k clusters cannot recover level l: score its
        # coarsest-possible answer (k capped), which then is necessarily inexact.
        pred = est.level(min(k, est.n_clusters_))
        out[f"accuracy_l{level}"] = metrics.accuracy(model.labels[level], pred)
        out[f"ami_l{level}"] = metrics.ami(model.labels[level], pred)
    K = model.branching**model.depth
    leaf, small = linkage.top_tree(est.dendrogram_, min(K, est.n_clusters_))
    corr = metrics.tree_correlation(model.labels[-1], model.lca_depth, leaf[est.labels_], small)
    out["tree_recovered"] = bool(np.nan_to_num(corr) >= 0.9999)
    return out


def _fit_sample(job: tuple[SweepConfig, int, int, int, bool], seed: int) -> list[dict[str, Any]]:
    """One job of the sweep: graph ``rep`` of cell ``(a1, a2)`` and every method's fit on it.

    ``job`` is ``(config, a1, a2, rep, leiden_available)``; the last only keys stored results
    (Leiden adds a method where it is installed).
    """
    config, a1, a2, rep, _ = job
    sample_seed = seed * 1000 + rep
    model = HSBM(config.depth, config.branching, config.n0, (config.a0, a1, a2, config.a3),
                 seed=sample_seed)
    records = []
    for name, make in _methods(sample_seed).items():
        start = time.perf_counter()
        est = make().fit(model.adjacency)
        records.append({"a1": a1, "a2": a2, "rep": rep, "method": name,
                        "seconds": time.perf_counter() - start, **_score(model, est)})
    return records


def _sweep(config: SweepConfig, seed: int,
           options: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """One record per (cell, repetition, method).

    Each (cell, repetition) is a job of :func:`paperlab.core.jobs.job_map`: finished ones are
    kept on disk, so an interrupted sweep resumes; ``options`` (``ctx.options``) may ask for
    ``workers``, a ``ray_address`` or ``fresh`` (default: in this process, resuming).
    """
    leiden = baselines.leiden_available()
    jobs = [Job((config, a1, a2, rep, leiden), seed, f"a1={a1} a2={a2} rep={rep}")
            for a1, a2 in config.cells() for rep in range(config.repetitions)]
    per_job = job_map(_fit_sample, jobs, sweep="hierarchy.sweep", description="HSBM sweep",
                      **run_options(options or {}))
    return [record for records in per_job for record in records]


def summarise_sweep(config: SweepConfig, records: list[dict[str, Any]],
                     ) -> tuple[list[dict[str, Any]], dict[str, Any], dict[tuple, float]]:
    """Rows per (method, level), the summary keys, and exact-recovery rate per cell."""
    levels = range(1, config.depth + 1)
    methods = list(dict.fromkeys(r["method"] for r in records))
    rate: dict[tuple, float] = {}
    for (a1, a2) in config.cells():
        for m in methods:
            mine = [r for r in records if (r["a1"], r["a2"], r["method"]) == (a1, a2, m)]
            for level in levels:
                rate[(a1, a2, m, level)] = float(np.mean([r[f"accuracy_l{level}"] == 1.0
                                                          for r in mine]))
    rows = []
    for m in methods:
        mine = [r for r in records if r["method"] == m]
        for level in levels:
            rows.append({
                "method": m, "setting": f"HSBM sweep, level {level}",
                "exact_recovery": float(np.mean([rate[(a1, a2, m, level)]
                                                 for a1, a2 in config.cells()])),
                "accuracy": float(np.mean([r[f"accuracy_l{level}"] for r in mine])),
                "ami": float(np.mean([r[f"ami_l{level}"] for r in mine])),
                "tree_recovery": float(np.mean([r["tree_recovered"] for r in mine])),
                "n_clusters": float(np.mean([r["n_clusters"] for r in mine])),
                "seconds_per_fit": float(np.mean([r["seconds"] for r in mine])),
            })
    by = {(r["method"], r["setting"]): r for r in rows}
    beats = [level for level in levels
             if by[("bottom_up", f"HSBM sweep, level {level}")]["exact_recovery"]
             > by[("top_down", f"HSBM sweep, level {level}")]["exact_recovery"]]
    agree, total = 0, 0
    for a1, a2 in config.cells():
        theory = chernoff_hellinger((config.a0, a1, a2, config.a3), config.branching)
        for algorithm in ("bottom_up", "top_down"):
            predicted = theory.recoverable(algorithm)
            for level in levels:
                observed = rate[(a1, a2, algorithm, level)] >= 0.5
                agree += int(observed == bool(predicted[level - 1]))
                total += 1
    summary = {"levels_where_bottom_up_beats_top_down": beats,
               "theory_agreement": agree / total if total else float("nan"),
               # each (cell, level, algorithm) compared is one trial that agrees or not
               "theory_agreement_ci95": _agreement_interval(agree, total)}
    return rows, summary, rate


def _agreement_interval(agree: int, total: int) -> dict[str, Any] | None:
    """Clopper-Pearson interval of ``agree`` of ``total`` predictions (None if there are none)."""
    if not total:
        return None
    ci = stats.proportion_interval(agree, total)
    ci["method"] = f"Clopper-Pearson, {total} predictions (cell x level x algorithm)"
    return ci


def _plot_sweep(ctx: RunContext, config: SweepConfig, rate: dict[tuple, float],
                methods: list[str]) -> None:
    """Exact-recovery share per cell as colour, with its count k/n written in the cell: a
    heat map has no room for error bars, and n graphs per cell is the binomial noise."""
    levels = range(1, config.depth + 1)
    n = config.repetitions
    cp = stats.proportion_interval(n, n)
    fig, axes = plots.figure(len(levels), len(methods), size=2.4,
                             title=f"Exact recovery per level (colour; k/{n} graphs exact, "
                             f"so {n}/{n} has a 95% interval of [{cp['lo']:.2f}, 1]); "
                             "Chernoff-Hellinger theory: + recoverable, x not")
    axes = np.atleast_2d(axes)
    a1s, a2s = list(config.a1_values), list(config.a2_values)
    for row, level in enumerate(levels):
        for col, m in enumerate(methods):
            grid = np.full((len(a1s), len(a2s)), np.nan)
            for (a1, a2) in config.cells():
                grid[a1s.index(a1), a2s.index(a2)] = rate[(a1, a2, m, level)]
            ax = axes[row, col]
            ax.imshow(grid, origin="lower", vmin=0, vmax=1, cmap="viridis", aspect="auto")
            for (a1, a2) in config.cells():
                text = f"{round(rate[(a1, a2, m, level)] * n)}/{n}"
                if m in ("bottom_up", "top_down"):
                    ok = chernoff_hellinger((config.a0, a1, a2, config.a3),
                                            config.branching).recoverable(m)[level - 1]
                    text = f"{'+' if ok else 'x'} {text}"
                ax.text(a2s.index(a2), a1s.index(a1), text, ha="center", va="center",
                        color="red", fontsize=6)
            ax.set_xticks(range(len(a2s)), [str(v) for v in a2s], fontsize=5)
            ax.set_yticks(range(len(a1s)), [str(v) for v in a1s], fontsize=5)
            ax.set_title(f"{m}, level {level}", fontsize=7)
            ax.set_xlabel("a2", fontsize=6)
            ax.set_ylabel("a1", fontsize=6)
            ax.grid(False)
    fig.tight_layout()
    plots.save(fig, ctx.plot_path("sweep"))


def _real(ctx: RunContext, root: Path, seed: int, names: tuple[str, ...],
          ) -> tuple[list[dict[str, Any]], dict[str, Any], dict]:
    """High school and power grid: levels vs truth where there is one, inversions, plots."""
    networks = [REAL_NETWORKS[name](root) for name in names]
    rows, fitted, info = [], {}, {}
    for net in networks:
        info[net.name] = {"nodes": net.adjacency.shape[0], "edges": net.adjacency.nnz // 2,
                          "dropped_nodes": net.dropped, "truth": list(net.levels)}
        for name, make in _methods(seed).items():
            start = time.perf_counter()
            est = make().fit(net.adjacency)
            row = {"method": name, "setting": net.name, "n_clusters": est.n_clusters_,
                   "inversions": metrics.count_inversions(est.dendrogram_),
                   "seconds_per_fit": time.perf_counter() - start}
            for level_name, truth in net.levels.items():
                pred = est.level(min(len(np.unique(truth)), est.n_clusters_))
                row[f"accuracy_{level_name}"] = metrics.accuracy(truth, pred)
                row[f"ami_{level_name}"] = metrics.ami(truth, pred)
            rows.append(row)
            fitted[(net.name, name)] = est
    _plot_dendrograms(ctx, networks, fitted)
    summary = {f"inversions_{m}_real": {net.name: metrics.count_inversions(
        fitted[(net.name, m)].dendrogram_) for net in networks} for m in ("top_down", "bottom_up")}
    return rows, summary, info


def _plot_dendrograms(ctx: RunContext, networks: list, fitted: dict) -> None:
    fig, axes = plots.figure(len(networks), 2, title="Dendrograms over the detected "
                             "communities (height = -log10 of the merge's edge density)", size=3.0)
    axes = np.asarray(axes).reshape(len(networks), 2)  # one network: matplotlib squeezes a row
    for row, net in enumerate(networks):
        for col, m in enumerate(("bottom_up", "top_down")):
            est, ax = fitted[(net.name, m)], axes[row, col]
            linkage.draw(est.dendrogram_, ax, labels=False)
            ax.set_title(f"{net.name}: {m} ({est.n_clusters_} leaves, "
                         f"{metrics.count_inversions(est.dendrogram_)} inversions)", fontsize=7)
    plots.save(fig, ctx.plot_path("dendrograms"))


def _scaling(config: ScalingConfig, seed: int) -> list[dict[str, Any]]:
    """One record per (cell, N, graph): per-level accuracy of bottom-up and top-down."""
    jobs = [(a, n0, g) for n0, graphs in zip(config.n0_values, config.graphs, strict=True)
            for g in range(graphs) for a in config.cells]
    records = []
    for a, n0, g in track(jobs, "separation vs N", total=len(jobs)):
        sample_seed = derive_seed(seed, "scaling", str(a), str(n0), str(g))
        model = HSBM(3, 2, n0, a, seed=sample_seed)
        record: dict[str, Any] = {"a": list(a), "N": int(model.n_nodes), "graph": g,
                                  "edges": int(model.adjacency.nnz // 2)}
        for name, est in (("bottom_up", BottomUp(random_state=sample_seed)),
                          ("top_down", TopDown(random_state=sample_seed))):
            start = time.process_time()
            est.fit(model.adjacency)
            record[f"{name}_cpu_s"] = time.process_time() - start
            record[f"{name}_n_clusters"] = int(est.n_clusters_)
            record[name] = [float(metrics.accuracy(model.labels[level],
                                                   est.level(min(2**level, est.n_clusters_))))
                            for level in (1, 2, 3)]
        records.append(record)
        del model
    return records


def separating_levels(a: tuple[float, ...]) -> list[int]:
    """Levels (1-based) that the criteria give to bottom-up and deny to top-down."""
    theory = chernoff_hellinger(a)
    split = theory.recoverable("bottom_up") & ~theory.recoverable("top_down")
    return [int(level) + 1 for level in np.flatnonzero(split)]


def summarise_scaling(config: ScalingConfig, records: list[dict[str, Any]],
                      ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows per (cell, N, separating level): exact-recovery rates, their gap with its exact
    paired 95 % interval over the graphs (``gap_lo``, ``gap_hi``), and the top-down split's
    expected misplaced nodes at that N (``theory.top_down_split_errors``). The summary's gap
    (and ``separation_gap_at_largest_n_ci95``) is the first cell's first separating level at
    its largest N."""
    rows = []
    for a in config.cells:
        for level in separating_levels(a):
            for n0 in config.n0_values:
                mine = [r for r in records if r["a"] == list(a) and r["N"] == 8 * n0]
                if not mine:
                    continue
                hit = {m: np.array([r[m][level - 1] == 1.0 for r in mine])
                       for m in ("bottom_up", "top_down")}
                exact = {m: float(h.mean()) for m, h in hit.items()}
                # both algorithms fit the same graphs: an exact paired (McNemar) interval
                gap_ci = stats.paired_difference_interval(hit["bottom_up"], hit["top_down"])
                errors = top_down_split_errors(a, n0, level - 1)
                rows.append({"method": "bottom-up minus top-down",
                             "setting": f"a={tuple(int(v) for v in a)}, level {level}",
                             "a": list(a), "level": level, "N": 8 * n0, "graphs": len(mine),
                             "exact_bottom_up": exact["bottom_up"],
                             "exact_top_down": exact["top_down"],
                             "gap": exact["bottom_up"] - exact["top_down"],
                             "gap_lo": gap_ci["lo"], "gap_hi": gap_ci["hi"],
                             "top_down_split_errors": errors,
                             "top_down_exact_if_split_optimal": float(np.exp(-errors))})
    first = [r for r in rows if r["a"] == list(config.cells[0])]
    if not first:
        return rows, {"separation_gap_at_largest_n": None}
    level = first[0]["level"]
    last = max((r for r in first if r["level"] == level), key=lambda r: r["N"])
    return rows, {"separation_gap_at_largest_n": last["gap"],
                  "separation_gap_at_largest_n_ci95": stats.interval(
                      last["gap_lo"], last["gap_hi"],
                      f"exact paired (McNemar), {last['graphs']} graphs"),
                  "separation_largest_n": last["N"],
                  "separation_cell": f"a={tuple(int(v) for v in last['a'])}, level {level}"}


def _plot_scaling(ctx: RunContext, rows: list[dict[str, Any]]) -> None:
    """Exact recovery against N with 95 % intervals over the graphs: above, Clopper-Pearson
    for each algorithm's share; below, the exact paired interval of their gap (both fit the
    same graphs)."""
    first = {}  # each cell's first separating level (a failed first split fails the rest)
    for r in rows:
        first.setdefault(tuple(r["a"]), r["setting"])
    settings = list(first.values())
    fig, axes = plots.figure(2, len(settings), size=3.0,
                             title="Exact recovery at the level theory separates, against N "
                                   "(95% intervals over the graphs)")
    axes = np.asarray(axes).reshape(2, len(settings))
    for col, setting in enumerate(settings):
        mine = [r for r in rows if r["setting"] == setting]
        n = [r["N"] for r in mine]
        top, bottom = axes[0, col], axes[1, col]
        for ax in (top, bottom):
            ax.set_xscale("log")
            ax.set_xticks(n, [f"{v:,}" for v in n], minor=False)
            ax.set_xticks([], minor=True)
            ax.set_xlim(min(n) / 1.5, max(n) * 1.5)
            ax.set_xlabel("N")
        top.set_ylim(-0.05, 1.05)
        for key, marker, label, shift in (("exact_bottom_up", "o", "bottom-up", 0.97),
                                          ("exact_top_down", "s", "top-down", 1.03)):
            cis = [stats.proportion_interval(round(r[key] * r["graphs"]), r["graphs"])
                   for r in mine]  # shifted apart on the log axis so the bars do not overlap
            plots.errorbars(top, [v * shift for v in n], [r[key] for r in mine], cis,
                            marker=marker, label=label)
        top.plot(n, [r["top_down_exact_if_split_optimal"] for r in mine], "--", color="grey",
                 label="top-down, optimal split (theory)")
        top.set_title(setting, fontsize=8)
        bottom.set_ylim(-1.05, 1.05)
        bottom.axhline(0.0, color="k", linewidth=0.5)
        plots.errorbars(bottom, n, [r["gap"] for r in mine],
                        [stats.interval(r["gap_lo"], r["gap_hi"], "paired") for r in mine],
                        marker="^", color="k")
    axes[0, 0].set_ylabel("share of graphs recovered exactly")
    axes[1, 0].set_ylabel("gap: bottom-up minus top-down")
    plots.legend_outside(axes[0, -1], fontsize=6)
    plots.save(fig, ctx.plot_path("separation"))


def run(ctx: RunContext, config: Config | None = None) -> Result:
    """The paper's sweep and real-data comparison (see the module docstring)."""
    root = ctx.require("graphs/hsbm", HOW_TO_GET)  # fail before minutes of simulation
    full = resolve_config(ctx, Config, config)
    config = full.sweep
    records = _sweep(config, ctx.seed, ctx.options)
    rows, summary, rate = summarise_sweep(config, records)
    methods = list(dict.fromkeys(r["method"] for r in records))
    _plot_sweep(ctx, config, rate, methods)
    detail = ctx.out_dir / f"{ctx.system}_sweep.json"
    atomic_write_text(detail, json.dumps({"config": asdict(config), "records": records}) + "\n")
    real_rows, real_summary, real_info = _real(ctx, root, ctx.seed, full.networks)
    summary.update(real_summary)
    scaling_rows: list[dict[str, Any]] = []
    if full.scaling is not None:
        scaling_records = _scaling(full.scaling, ctx.seed)
        scaling_rows, scaling_summary = summarise_scaling(full.scaling, scaling_records)
        summary.update(scaling_summary)
        if scaling_rows:
            _plot_scaling(ctx, scaling_rows)
        atomic_write_text(ctx.out_dir / f"{ctx.system}_separation.json",
                          json.dumps({"config": asdict(full.scaling),
                                      "records": scaling_records}) + "\n")
    notes = [
        f"Sweep: {len(config.cells())} (a1, a2) cells x {config.repetitions} graphs, n0 = "
        f"{config.n0} (N = {config.n0 * config.branching**config.depth}); per-sample records "
        f"in {detail.name}.",
        "exact_recovery = share of (cell, graph) fits with accuracy 1 at that level, averaged "
        "over cells; K is estimated (Bethe-Hessian) by bottom-up and found by the stopping "
        "rule by top-down.",
        "theory_agreement: cells x levels x {bottom-up, top-down} where 'recovered in >= half "
        "the graphs' equals the Chernoff-Hellinger prediction (asymptotic, so finite-N cells "
        "near the boundary can disagree).",
    ]
    if full.scaling is not None:
        notes.append("separation_gap_at_largest_n: share of graphs bottom-up recovers exactly "
                     "minus top-down's, at the first cell's first level that the criteria give "
                     "to bottom-up only, at its largest N; every fit in "
                     f"{ctx.system}_separation.json.")
    if not baselines.leiden_available():
        notes.append("leidenalg/igraph not installed: Leiden + linkage skipped.")
    return Result(results=rows + real_rows + scaling_rows, summary=summary,
                  data={"synthetic": {"model": "binary HSBM, depth 3", **asdict(config)},
                        "real": real_info}, notes=notes)


def _stage_scaling(ctx: RunContext, config: BenchConfig) -> Result:
    """Bottom-up (given K = 8) at each of ``config.scaling_sizes``: seconds per stage, peak
    memory and leaf accuracy on one bounded-degree HSBM per N, and the log-log slope of the
    time against N."""
    rows, intervals = [], []
    for N in track(config.scaling_sizes, "scaling sizes", total=len(config.scaling_sizes)):
        start = time.perf_counter()
        model, generate_extra = peak_memory(
            lambda N=N: HSBM(3, 2, N // 8, config.a, seed=ctx.seed, regime="bounded"))
        generate_s = time.perf_counter() - start
        A = model.adjacency
        start_cpu = time.process_time()
        est, fit_extra = peak_memory(
            lambda A=A: BottomUp(n_clusters=8, random_state=ctx.seed).fit(A))
        cpu = time.process_time() - start_cpu
        correct = int(round(metrics.accuracy(model.labels[3], est.labels_) * model.n_nodes))
        ci = stats.proportion_interval(correct, model.n_nodes)
        ci["method"] = (f"Clopper-Pearson over the {model.n_nodes:,} nodes of one graph "
                        "(nodes share the graph, so it is narrower than over graphs)")
        rows.append({
            "method": "bottom_up (K = 8)", "N": model.n_nodes, "edges": A.nnz // 2,
            "seconds_generate": generate_s,
            **{f"seconds_{stage}": s for stage, s in est.timings_.items()},
            "seconds_fit": sum(est.timings_.values()), "cpu_seconds_fit": cpu,
            "graph_MB": (A.data.nbytes + A.indices.nbytes + A.indptr.nbytes) / 2**20,
            "generate_peak_extra_MB": generate_extra / 2**20,
            "fit_peak_extra_MB": fit_extra / 2**20,
            "process_peak_rss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "leaf_accuracy": correct / model.n_nodes, "leaf_accuracy_lo": ci["lo"],
            "leaf_accuracy_hi": ci["hi"], "misplaced_nodes": model.n_nodes - correct})
        intervals.append(ci)
        del model, A, est
    sizes = [r["N"] for r in rows]
    fit_s = [r["seconds_fit"] for r in rows]
    total_s = [r["seconds_fit"] + r["seconds_generate"] for r in rows]

    def slope(seconds: list[float]) -> float | None:
        return float(np.polyfit(np.log(sizes), np.log(seconds), 1)[0]) if len(rows) > 1 else None

    last = rows[-1]
    summary = {"scaling_sizes": sizes,
               "scaling_exponent_fit": slope(fit_s), "scaling_exponent_total": slope(total_s),
               "largest_N": last["N"], "edges_at_largest_N": last["edges"],
               "fit_seconds_at_largest_N": fit_s[-1], "total_seconds_at_largest_N": total_s[-1],
               "process_peak_rss_MB": max(r["process_peak_rss_MB"] for r in rows),
               "leaf_accuracy_at_largest_N": last["leaf_accuracy"],
               "leaf_accuracy_at_largest_N_ci95": intervals[-1]}
    stages = ["seconds_generate", *(k for k in last if k.startswith("seconds_")
                                    and k not in ("seconds_generate", "seconds_fit"))]
    fig, (ax_t, ax_m) = plots.figure(1, 2, title="Bottom-up (K = 8) on a bounded-degree HSBM "
                                     "(mean degree ~60): stages against N")
    for key in (*stages, "seconds_fit"):
        ax_t.loglog(sizes, [max(r[key], 1e-3) for r in rows], "o-", label=key[len("seconds_"):])
    ax_m.loglog(sizes, [r["process_peak_rss_MB"] for r in rows], "o-", label="process peak RSS")
    ax_m.loglog(sizes, [r["graph_MB"] for r in rows], "s--", label="adjacency (CSR)")
    ax_t.set(xlabel="N", ylabel="seconds")
    ax_m.set(xlabel="N", ylabel="MB")
    plots.legend_outside(ax_t, fontsize=6)
    plots.legend_outside(ax_m, fontsize=6)
    plots.save(fig, ctx.plot_path("bench_scaling"))
    return Result(results=rows, summary=summary,
                  data={"model": "binary HSBM depth 3, p_t = a_t / N", "a": list(config.a)},
                  notes=["One graph per N, sizes in one run, in increasing order. seconds_* are "
                         "wall seconds of each stage (BottomUp.timings_; generate = drawing the "
                         "HSBM); cpu_seconds_fit is the process's CPU time of the fit.",
                         "scaling_exponent_*: least-squares slope of log seconds against log N "
                         "over the sizes given (fit alone; total = generate + fit).",
                         "process_peak_rss_MB: the process's peak resident memory so far "
                         "(getrusage), so at the largest N it bounds everything that size "
                         "needed; *_peak_extra_MB: the rise of the peak RSS during the stage."])


def bench(ctx: RunContext, config: Config | None = None) -> Result:
    """Seconds and peak extra memory of each method against N, measured in one run; with
    ``scaling_sizes``, bottom-up's stages against N instead (:class:`BenchConfig`)."""
    config = resolve_config(ctx, Config, config).bench
    if config.scaling_sizes:
        return _stage_scaling(ctx, config)
    contenders = {
        "bottom_up": lambda: BottomUp(n_clusters=8, random_state=ctx.seed),
        "bottom_up_estimated_K": lambda: BottomUp(random_state=ctx.seed),
        "top_down": lambda: TopDown(random_state=ctx.seed),
        "paris": lambda: baselines.Paris(),
    }
    rows = []
    for N in track(config.sizes, "bench sizes", total=len(config.sizes)):
        model = HSBM(3, 2, N // 8, config.a, seed=ctx.seed, regime="bounded")
        running = {name: make for name, make in contenders.items()
                   if name != "paris" or N <= config.paris_max_n}
        times: dict[str, list[float]] = {name: [] for name in running}
        cpu: dict[str, list[float]] = {name: [] for name in running}
        memory: dict[str, int] = {}
        accuracy: dict[str, float] = {}
        for _ in range(config.repeats):  # round-robin: a slow spell hits everyone alike
            for name, make in running.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                est, extra = peak_memory(lambda make=make, A=model.adjacency: make().fit(A))
                times[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
                memory[name] = max(memory.get(name, 0), extra)
                leaf = est.level(min(8, est.n_clusters_))
                accuracy[name] = metrics.accuracy(model.labels[3], leaf)
        paris = float(np.median(times["paris"])) if "paris" in times else None
        for name in running:
            median = float(np.median(times[name]))
            rows.append({"method": name, "N": model.n_nodes, "edges": model.adjacency.nnz // 2,
                         "seconds": median, "cpu_seconds": float(np.median(cpu[name])),
                         "seconds_per_1k_nodes": 1000 * median / model.n_nodes,
                         "peak_extra_MB": memory[name] / 2**20,
                         "speedup_vs_paris": paris / median if paris else None,
                         "leaf_accuracy": accuracy[name]})
    largest = max(r["N"] for r in rows)
    at = {r["method"]: r for r in rows if r["N"] == largest}
    with_paris = max(r["N"] for r in rows if r["method"] == "paris")
    vs = {r["method"]: r["speedup_vs_paris"] for r in rows if r["N"] == with_paris}
    fig, (ax_t, ax_m) = plots.figure(1, 2, title="Scaling on a bounded-degree HSBM "
                                     "(mean degree ~60)")
    for name in contenders:
        mine = [r for r in rows if r["method"] == name]
        ax_t.loglog([r["N"] for r in mine], [r["seconds"] for r in mine], "o-", label=name)
        ax_m.loglog([r["N"] for r in mine], [max(r["peak_extra_MB"], 1e-2) for r in mine], "o-",
                    label=name)
    ax_t.set_xlabel("N")
    ax_t.set_ylabel("seconds")
    ax_m.set_xlabel("N")
    ax_m.set_ylabel("peak extra MB")
    plots.legend_outside(ax_m)
    plots.save(fig, ctx.plot_path("bench"))
    summary = {"largest_N": largest,
               "bottom_up_seconds_at_largest_N": at["bottom_up"]["seconds"],
               "bottom_up_cpu_seconds_at_largest_N": at["bottom_up"]["cpu_seconds"],
               "bottom_up_within_60s": at["bottom_up"]["seconds"] <= 60,
               "largest_N_with_paris": with_paris,
               "bottom_up_speedup_vs_paris": vs["bottom_up"],
               "top_down_speedup_vs_paris": vs["top_down"]}
    return Result(results=rows, summary=summary,
                  data={"model": "binary HSBM depth 3, p_t = a_t / N", **asdict(config)},
                  notes=["bottom_up is given K = 8; bottom_up_estimated_K also estimates K "
                         "(the first bulk Bethe-Hessian eigenvalue converges slowly).",
                         f"Paris runs up to N = {config.paris_max_n} only; speed-ups vs Paris "
                         "are at the largest N it ran.",
                         "Times are medians over round-robin repeats on a shared 2-core "
                         "machine; compare the ratios, not the absolute seconds. cpu_seconds "
                         "(process CPU time) is what the fit cost, whatever the load.",
                         "peak_extra_MB is the rise of the process's peak RSS: freed pages "
                         "that are still resident get reused unseen, so small values are "
                         "lower bounds; input validation (A - A^T) sets the floor."])
