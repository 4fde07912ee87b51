"""Reproduction and benchmark for Splitwise.

``run``: the paper's iso-power comparison. For each trace (code; conversation too in full
mode), every design gets the same power budget (``budget_h100`` DGX-H100s' worth); each
Splitwise design's prompt:token split is searched; the throughput of a configuration is the
highest Poisson request rate meeting all nine SLOs. Also: a chunked-prefill colocated
baseline, the cheapest design at Baseline-H100's throughput (cost at equal throughput), the
reference-compatibility error on the staged reference outputs, and two plots. The traces are
seeded Poisson draws, so the two headline ratios are also measured on ``trace_seeds - 1``
further trace seeds and reported as a mean over trace seeds with a t interval: the throughput
ratio of the two designs the first seed's search chose, on the further (fresh) traces only,
since the first trace is the one they were chosen on; the cost ratio by its whole search
(the cheapest clusters at Baseline-H100's rate on that trace), on every trace seed.

``bench``: our wall time against the reference simulator (when a checkout is given through
``paperlab bench splitwise --reference PATH`` or ``PAPERLAB_SPLITWISE_REFERENCE``)
on rr_code_70_2min with the same cluster, percentile agreement, simulated requests per second,
peak memory, and a 1M-request trace.
"""

from __future__ import annotations

import csv
import math
import os
import resource
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from paperlab.core import plots, stats, timing
from paperlab.core.config import resolve_config
from paperlab.core.results import Result, RunContext
from paperlab.splitwise.cluster import Design, baseline_design, simulate_design, splitwise_design
from paperlab.splitwise.hardware import DGX_H100
from paperlab.splitwise.metrics import latency_summary
from paperlab.splitwise.perf_model import PerfDatabase
from paperlab.splitwise.provisioning import (
    Evaluation,
    SearchSpace,
    _evaluate_job,
    _max_rate_job,
    baseline_for_budget,
    budget_splits,
    cheapest_for_rate,
    parallel_map,
)
from paperlab.splitwise.simulator import OUTCOMES, SimResult
from paperlab.splitwise.trace import Trace, poisson_trace, read_azure_csv, read_reference_csv

DATA = "splitwise"
HOW = ("The Azure LLM inference trace 2023 (github.com/Azure/AzurePublicDataset) and "
       "perf_model.csv/test_trace.csv of github.com/Mutinifni/splitwise-sim are read from "
       "<data root>/splitwise/.")
KINDS = ("AA", "HH", "HA", "HHcap")
# paper iso-power configurations (40 DGX-H100s of power), from the reference's plots notebook
PAPER_ISO_POWER = {
    "code": {"Baseline-A100": "70", "Baseline-H100": "40", "Splitwise-AA": "55P/15T",
             "Splitwise-HH": "35P/5T", "Splitwise-HA": "35P/8T", "Splitwise-HHcap": "35P/7T"},
    "conv": {"Baseline-A100": "70", "Baseline-H100": "40", "Splitwise-AA": "45P/25T",
             "Splitwise-HH": "25P/15T", "Splitwise-HA": "25P/26T", "Splitwise-HHcap": "25P/21T"},
}
ANCHORS = (  # (design, reference output file) on test_trace.csv
    (baseline_design("H100", 1), "test_trace__baseline_h100x1__detailed.csv"),
    (splitwise_design("HA", 1, 1), "test_trace__splitwise_ha_1h100p_1a100t__detailed.csv"),
)


@dataclass(frozen=True)
class BenchConfig:
    """Sizes of the benchmark.

    Attributes:
        big_requests: requests of the big Poisson trace (70 req/s, the code trace's sizes) on
            Splitwise-HA 35P/8T, simulated with its per-request results streamed to disk
            (``paperlab bench splitwise --requests N``).
        repeats: timing repeats of the comparison on rr_code_70_2min.
        designs: the designs of that comparison.
        check_requests: the streamed and the in-memory simulation are compared request by
            request on a trace of ``min(big_requests, check_requests)`` requests (the big
            trace itself when it is no longer).
    """

    big_requests: int
    repeats: int
    designs: tuple[Design, ...]
    check_requests: int = 1_000_000



def _env(name: str) -> str | None:
    return os.environ.get(name) or None


@dataclass(frozen=True)
class Config:
    """Sizes of the reproduction and the benchmark, and where the peers are.

    Attributes:
        budget_h100: power budget in DGX-H100 machines (paper: 40).
        traces: Azure traces to use ("code", "conv").
        duration_s: length of each generated Poisson trace.
        rates: candidate request rates (req/s) for the max-rate search.
        split_step: step over the number of prompt machines in the split search.
        refine: after the coarse split search, also try every prompt count near the best.
        curve_points: rates per design on the latency-vs-rate plot.
        trace_seeds: Poisson trace seeds the headline ratios are measured on (the run's
            seed and the next ones; see the module docstring); the throughput ratio gets a t
            interval from 3, the cost ratio from 2.
        chunk_size: chunk of the chunked-prefill baseline (tokens).
        workers: local processes for configurations in parallel.
        ray_address: Ray cluster for the search (``--ray-address``, else
            ``$PAPERLAB_SPLITWISE_RAY_ADDRESS``; None: local processes).
        bench: the benchmark's sizes.
        reference: splitwise-sim checkout the benchmark runs beside ours (``--reference``,
            else ``$PAPERLAB_SPLITWISE_REFERENCE``; None: ours alone).
        reference_python: the interpreter for it (``--reference-python``, else
            ``$PAPERLAB_SPLITWISE_REFERENCE_PYTHON``, else ``python``).
    """

    budget_h100: int
    traces: tuple[str, ...]
    duration_s: float
    rates: tuple[float, ...]
    split_step: int
    refine: bool
    curve_points: int = 6
    trace_seeds: int = 5
    chunk_size: int = 512
    workers: int = 2
    ray_address: str | None = field(
        default_factory=lambda: _env("PAPERLAB_SPLITWISE_RAY_ADDRESS"))
    bench: BenchConfig = field(default_factory=lambda: BenchConfig(
        big_requests=1_000_000, repeats=3,
        designs=(splitwise_design("HA", 35, 8), baseline_design("A100", 70))))
    reference: str | Path | None = field(
        default_factory=lambda: _env("PAPERLAB_SPLITWISE_REFERENCE"))
    reference_python: str = field(
        default_factory=lambda: _env("PAPERLAB_SPLITWISE_REFERENCE_PYTHON") or "python")

    def with_options(self, options: Mapping[str, Any]) -> Config:
        """Each option named as a field replaces it; ``requests`` (``--requests``) sets the
        benchmark's big-trace length."""
        names = {f.name for f in fields(self)}
        cfg = replace(self, **{k: v for k, v in options.items() if k in names})
        if options.get("requests"):
            cfg = replace(cfg, bench=replace(cfg.bench, big_requests=int(options["requests"])))
        return cfg

    @classmethod
    def quick(cls) -> Config:
        return cls(budget_h100=10, traces=("code",), duration_s=60.0,
                   rates=tuple(float(r) for r in range(2, 81, 2)), split_step=2, refine=False,
                   curve_points=5, trace_seeds=4,  # ~1 s of CPU per extra seed
                   bench=BenchConfig(big_requests=200_000, repeats=1,
                                     designs=(splitwise_design("HA", 35, 8),)))

    @classmethod
    def full(cls) -> Config:
        return cls(budget_h100=40, traces=("code", "conv"), duration_s=120.0,
                   rates=tuple(float(r) for r in range(5, 301, 5)), split_step=5, refine=True)


def _load(ctx: RunContext) -> tuple[PerfDatabase, dict[str, Trace], dict]:
    root = ctx.require(DATA, HOW)
    perf_path = root / "splitwise_sim" / "perf_model.csv"
    db = PerfDatabase.from_csv(perf_path)
    traces = {k: read_azure_csv(root / "azure_llm_2023" / f"AzureLLMInferenceTrace_{k}.csv")
              for k in ("code", "conv")}
    data = {"perf_model": str(perf_path), "perf_keys": len(db.keys()),
            **{f"azure_{k}": {"path": str(root / 'azure_llm_2023'), "rows": len(t),
                              "prompt_mean": float(t.prompt_tokens.mean()),
                              "output_mean": float(t.output_tokens.mean())}
               for k, t in traces.items()}}
    return db, traces, data


def reference_compat_error(root, db: PerfDatabase) -> float:
    """Largest |ours - reference| over per-request TTFT, E2E and token-start gap (which is
    the KV-transfer time when nothing queues) on test_trace.csv, in seconds."""
    trace = read_reference_csv(root / "splitwise_sim" / "test_trace.csv")
    worst = 0.0
    for design, fname in ANCHORS:
        res = simulate_design(design, trace, db)
        with open(root / "anchor_runs" / fname, newline="") as f:
            rows = {int(r["request_ids"]): r for r in csv.DictReader(f)}
        pos = {int(rid): i for i, rid in enumerate(trace.request_id)}
        for rid, r in rows.items():
            i = pos[rid]
            for ours, col in ((res.ttft_s[i], "ttft_times"), (res.e2e_s[i], "response_times"),
                              (res.token_start_gap_s[i], "nth_token_overheads")):
                worst = max(worst, abs(float(ours) - float(r[col])))
    return worst


def iso_power_candidates(budget: float, step: int, chunk: int | None) -> list[Design]:
    """The designs the iso-power search tries under a power ``budget`` (the paper's relative
    units, e.g. ``40 * DGX_H100.power``): Baseline-A100 and -H100 with as many machines as fit,
    Baseline-H100 with chunked prefill of ``chunk`` tokens (None: left out), and every
    Splitwise split (every ``step`` prompt machines)."""
    out = [baseline_for_budget("A100", budget), baseline_for_budget("H100", budget)]
    if chunk is not None:
        out.append(baseline_design("H100", out[1].n_prompt, chunk_size=chunk))
    for kind in KINDS:
        out += budget_splits(kind, budget, "power", step)
    return out


def _refinements(best: Design, budget: float, step: int) -> list[Design]:
    """Every split with a prompt count within ``step`` of the best coarse one."""
    near = {d.n_prompt: d for d in budget_splits(best.name.split("-", 1)[1], budget, "power")}
    return [near[n] for n in range(best.n_prompt - step + 1, best.n_prompt + step)
            if n in near and n != best.n_prompt]


def iso_power_search(source: Trace, db: PerfDatabase, budget: float, space: SearchSpace, *,
                     step: int, refine: bool, chunk: int | None, workers: int,
                     ray_address: str | None, what: str
                     ) -> tuple[dict[str, tuple[Design, float]], dict, list[Evaluation]]:
    """Best configuration and max rate per design kind under the power ``budget``.

    Every design of :func:`iso_power_candidates` gets its highest SLO-meeting rate (sizes of
    ``source`` resampled into ``space``'s Poisson traces) on the job map (``workers`` local
    processes, or Ray at ``ray_address``); with ``refine``, every prompt count within ``step``
    of each kind's best is tried too. ``what`` names the source in the progress bars.

    Returns:
        (design name -> (best design, its max rate), label -> (design, max rate) for every
        design searched, every evaluation made).
    """
    cands = iso_power_candidates(budget, step, chunk)
    jobs = [(d, source, db, space) for d in cands]
    out = parallel_map(_max_rate_job, jobs, workers, ray_address,
                       description=f"iso-power search, {what}")
    all_rates = {d.label: (d, r) for d, r, _ in out}
    evals = [e for _, _, es in out for e in es]
    best: dict[str, tuple[Design, float]] = {}
    for d, r in all_rates.values():
        if d.name not in best or (r, -d.cost) > (best[d.name][1], -best[d.name][0].cost):
            best[d.name] = (d, r)
    if refine:
        more = [x for k, (d, _) in best.items() if d.split
                for x in _refinements(d, budget, step) if x.label not in all_rates]
        out2 = parallel_map(_max_rate_job, [(d, source, db, space) for d in more], workers,
                            ray_address, description="refining the best splits")
        for d, r, es in out2:
            all_rates[d.label] = (d, r)
            evals += es
            if (r, -d.cost) > (best[d.name][1], -best[d.name][0].cost):
                best[d.name] = (d, r)
    return best, all_rates, evals


def _cheapest_at(target: float, max_cost: float, source: Trace, db: PerfDatabase,
                 cfg: Config, space: SearchSpace) -> dict[str, Design | None]:
    """Cheapest Baseline-H100, Splitwise-HH and Splitwise-HA meeting the SLOs at ``target``
    req/s, costing at most ``max_cost``."""
    return {name: cheapest_for_rate(kind, target, max_cost, source, db, space,
                                    prompt_step=cfg.split_step, workers=cfg.workers,
                                    ray_address=cfg.ray_address)
            for name, kind in (("Baseline-H100", "Baseline-H100"), ("Splitwise-HH", "HH"),
                               ("Splitwise-HA", "HA"))}


def _cost_ratio(cheapest: dict[str, Design | None]) -> float:
    """Cost of the cheapest Splitwise design over the cheapest Baseline-H100's (NaN if either
    is missing)."""
    split = [d for k, d in cheapest.items() if k.startswith("Splitwise") and d]
    base = cheapest["Baseline-H100"]
    return min(d.cost for d in split) / base.cost if base and split else math.nan


def _other_trace_seeds(space: SearchSpace, cfg: Config) -> list[SearchSpace]:
    """The search space on each further trace seed (the run's seed + 1, + 2, ...)."""
    return [replace(space, seed=space.seed + i) for i in range(1, cfg.trace_seeds)]


def _rates_on(designs: tuple[Design, Design], source: Trace, db: PerfDatabase, cfg: Config,
              spaces: list[SearchSpace]) -> list[tuple[float, float]]:
    """Max SLO-meeting rate of both ``designs`` on each of ``spaces``' traces (req/s)."""
    jobs = [(d, source, db, sp) for sp in spaces for d in designs]
    out = parallel_map(_max_rate_job, jobs, cfg.workers, cfg.ray_address,
                       description="the chosen designs on further trace seeds")
    return [(out[i][1], out[i + 1][1]) for i in range(0, len(out), 2)]


def _trace_mean(per_seed: list[float], what: str) -> tuple[float, dict | None]:
    """Mean over trace seeds and its t interval (NaN and None when a seed has no figure; no
    interval for one seed); ``what`` names the seeds in the interval's method."""
    if any(math.isnan(v) for v in per_seed):
        return math.nan, None
    ci = stats.mean_interval(per_seed)
    if ci is not None:
        ci["method"] = f"t over {len(per_seed)} {what}"
    return float(np.mean(per_seed)), ci


def _latency_curves(best: dict[str, tuple[Design, float]], source: Trace, db: PerfDatabase,
                    cfg: Config, space: SearchSpace) -> list[Evaluation]:
    top = max(r for _, r in best.values()) or cfg.rates[len(cfg.rates) // 2]
    rates = sorted({float(x) for x in np.linspace(top / cfg.curve_points, top * 1.2,
                                                  cfg.curve_points).round(1)})
    jobs = [(d, r, source, db, space) for d, _ in best.values() for r in rates]
    return parallel_map(_evaluate_job, jobs, cfg.workers, cfg.ray_address,
                        description="latency vs rate")


def _plot_latency(curves: list[Evaluation], path, title: str) -> None:
    fig, axes = plots.figure(1, 2, title=title)
    by: dict[str, list[Evaluation]] = {}
    for e in curves:
        by.setdefault(e.design.label, []).append(e)
    for label, es in by.items():
        es.sort(key=lambda e: e.rate)
        x = [e.rate for e in es]
        axes[0].plot(x, [e.metrics.get("ttft_p99_s", np.nan) for e in es], marker="o",
                     label=label)
        axes[1].plot(x, [e.metrics.get("e2e_p50_s", np.nan) for e in es], marker="o",
                     label=label)
    from matplotlib.ticker import LogLocator, ScalarFormatter

    axes[0].set(xlabel="request rate (req/s)", ylabel="TTFT p99 (s)", yscale="log")
    axes[1].set(xlabel="request rate (req/s)", ylabel="E2E p50 (s)", yscale="log")
    for ax in axes:  # plain numbers on the log axes
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.yaxis.set_minor_formatter(ScalarFormatter(useOffset=False))
        ax.yaxis.set_minor_locator(LogLocator(subs=()))
    plots.legend_outside(axes[1], fontsize=6)
    plots.save(fig, path)


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (cost, rate) points with a rate above 0 that no other point matches in rate at the
    same or a lower cost, by growing cost (costs equal to 9 decimals are the same: 6 x 4.76
    and 5 x 4.76 + 4.76 differ in the last bit)."""
    front, best_r = [], 0.0
    for c, r in sorted(points, key=lambda p: (round(p[0], 9), -p[1])):
        if r > best_r:
            front.append((c, r))
            best_r = r
    return front


def plot_pareto(all_rates: dict, path, title: str) -> Path:
    """Cost vs max rate of every searched design (``label -> (design, rate)``) and the
    Pareto front; returns the file written."""
    fig, ax = plots.figure(1, 1, title=title, size=4.5)
    pts: dict[str, list[tuple[float, float]]] = {}
    for d, r in all_rates.values():
        pts.setdefault(d.name, []).append((d.cost, r))
    for name, xy in pts.items():
        ax.scatter([c for c, _ in xy], [r for _, r in xy], label=name, s=14)
    front = pareto_front([(c, r) for xy in pts.values() for c, r in xy])
    ax.step([c for c, _ in front], [r for _, r in front], where="post", color="k", lw=1,
            label="Pareto front")
    ax.set(xlabel="cluster cost (relative)", ylabel="max SLO-meeting rate (req/s)")
    plots.legend_outside(ax, fontsize=6)
    return plots.save(fig, path)


def run(ctx: RunContext, config: Config | None = None) -> Result:
    """The iso-power comparison, cost at equal throughput, reference compatibility."""
    cfg = resolve_config(ctx, Config, config)
    db, sources, data = _load(ctx)
    root = ctx.require(DATA, HOW)
    rows: list[dict] = []
    summary: dict = {}
    notes: list[str] = []
    for tname in cfg.traces:
        space = SearchSpace(rates=cfg.rates, duration_s=cfg.duration_s, seed=ctx.seed)
        best, all_rates, _ = iso_power_search(
            sources[tname], db, cfg.budget_h100 * DGX_H100.power, space, step=cfg.split_step,
            refine=cfg.refine, chunk=cfg.chunk_size, workers=cfg.workers,
            ray_address=cfg.ray_address, what=f"{tname} trace")
        h100 = best["Baseline-H100"]
        for name, (d, r) in best.items():
            base = h100[1] if h100[1] > 0 else float("nan")
            rows.append({"method": d.label, "trace": tname, "design": name,
                         "power": round(d.power, 1), "cost": round(d.cost, 2),
                         "max_rate_rps": r, "throughput_vs_baseline_h100": r / base,
                         "paper_config_at_40_h100": PAPER_ISO_POWER[tname].get(name, "-")})
        sfx = "" if tname == "code" else f"_{tname}"
        for name, (_, r) in best.items():
            summary[f"max_rate_{name.lower().replace('-', '_')}{sfx}"] = r
        split_best = max((v for k, v in best.items() if k.startswith("Splitwise")),
                         key=lambda dr: dr[1])
        summary[f"best_splitwise{sfx}"] = split_best[0].label
        summary[f"throughput_ratio_best_splitwise_vs_baseline_h100{sfx}"] = (
            split_best[1] / h100[1] if h100[1] > 0 else float("nan"))
        others = _other_trace_seeds(space, cfg)
        rates = [(split_best[1], h100[1])] + _rates_on((split_best[0], h100[0]), sources[tname],
                                                       db, cfg, others)
        by_seed = [r_split / r_h100 if r_h100 > 0 else math.nan for r_split, r_h100 in rates]
        key = f"throughput_ratio_best_splitwise_vs_baseline_h100_trace_mean{sfx}"
        summary[f"throughput_ratio_best_splitwise_vs_baseline_h100_by_trace_seed{sfx}"] = by_seed
        # the further traces only: the first is the one the two designs were chosen on
        summary[key], summary[f"{key}_ci95"] = _trace_mean(
            by_seed[1:] or by_seed, "fresh trace seeds, the chosen designs")
        curves = _latency_curves(best, sources[tname], db, cfg, space)
        _plot_latency(curves, ctx.plot_path(f"latency_vs_rate_{tname}"),
                      f"{tname} trace, iso-power ({cfg.budget_h100} DGX-H100 power)")
        plot_pareto(all_rates, ctx.plot_path(f"pareto_{tname}"),
                     f"{tname} trace: cost vs throughput (all configurations searched)")
        if tname == "code" and h100[1] > 0:
            cheapest = _cheapest_at(h100[1], h100[0].cost, sources[tname], db, cfg, space)
            ratio = _cost_ratio(cheapest)
            if not math.isnan(ratio):
                key = "cost_ratio_cheapest_splitwise_vs_baseline_h100_at_equal_rate"
                summary[key] = ratio
                summary["cheapest_at_equal_rate"] = {k: (v.label if v else None)
                                                     for k, v in cheapest.items()}
                # each further trace seed: the cheapest clusters at Baseline-H100's rate there
                by_seed = [ratio] + [
                    _cost_ratio(_cheapest_at(r_h100, h100[0].cost, sources[tname], db, cfg, sp))
                    if r_h100 > 0 else math.nan for (_, r_h100), sp in zip(rates[1:], others,
                                                                           strict=True)]
                summary[f"{key}_by_trace_seed"] = by_seed
                summary[f"{key}_trace_mean"], summary[f"{key}_trace_mean_ci95"] = _trace_mean(
                    by_seed, "trace seeds")
    if all((root / "anchor_runs" / fname).is_file() for _, fname in ANCHORS):
        summary["reference_compat_max_abs_err_s"] = reference_compat_error(root, db)
    else:  # outputs of the reference simulator: not downloadable (see `paperlab data fetch`)
        notes.append(f"reference check skipped: no splitwise-sim outputs in "
                     f"{root / 'anchor_runs'} (not downloadable; `paperlab data verify "
                     "splitwise` says how to make them)")
    notes.append(f"iso-power budget = {cfg.budget_h100} DGX-H100s of power (paper: 40); "
                 f"traces of {cfg.duration_s:.0f} s per rate, seed {ctx.seed}; max rate on a "
                 f"{cfg.rates[1] - cfg.rates[0]:g} req/s grid by bisection")
    notes.append(f"headline ratios on {cfg.trace_seeds} trace seeds from {ctx.seed} "
                 "(*_by_trace_seed; *_trace_mean with a t interval): throughput of the designs "
                 "chosen on the first trace, averaged over the others; cost re-searched on each")
    notes.append("SLOs as the reference notebook: slowdown vs BLOOM-176B alone on DGX-A100 "
                 "with TBT baseline = token predictor at x = prompt size (reference quirk)")
    if ctx.quick:
        notes.append("quick mode: budget scaled down 4x, 60 s traces, prompt-count step 2; "
                     "run without --quick for the paper's 40-H100 budget and both traces")
    return Result(results=rows, summary=summary, data=data, notes=notes)


def _agreement(ours, ref) -> dict[str, float]:
    """Relative difference of TTFT/TBT/E2E p50/p90/p99 and the per-request max abs diff."""
    out = {}
    idx = ref.request_id
    o_tbt = (ours.e2e_s - ours.ttft_s)[idx] / ours.output_tokens[idx]
    r_tbt = (ref.e2e_s - ref.ttft_s) / ours.output_tokens[idx]
    worst = 0.0
    for name, a, b in (("ttft", ours.ttft_s[idx], ref.ttft_s), ("tbt", o_tbt, r_tbt),
                       ("e2e", ours.e2e_s[idx], ref.e2e_s)):
        for q in (50, 90, 99):
            pa, pb = np.percentile(a, q), np.percentile(b, q)
            worst = max(worst, abs(pa - pb) / pb)
        out[f"max_abs_diff_{name}_s"] = float(np.max(np.abs(a - b)))
    out["max_rel_diff_percentiles"] = float(worst)
    return out


def _measured(fn: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
    """``fn()`` and its wall seconds, CPU seconds and peak extra memory (MB)."""
    cpu, wall = time.process_time(), time.perf_counter()
    out, peak = timing.peak_memory(fn)
    return out, {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu,
                 "peak_memory_mb": peak / 2**20}


def _streamed_equals(memory: SimResult, streamed: SimResult) -> bool:
    """Every per-request field of the streamed result, put back in trace order, equals the
    in-memory one exactly (NaN where NaN), and so do the machine statistics."""
    ordered = streamed.in_trace_order()
    return (all(np.array_equal(getattr(memory, f), getattr(ordered, f), equal_nan=True)
                for f in OUTCOMES)
            and all(np.array_equal(getattr(memory, f), getattr(streamed, f))
                    for f in ("machine_peak_memory", "machine_max_memory", "machine_busy_s"))
            and memory.end_time_s == streamed.end_time_s)


def _big_trace(ctx: RunContext, cfg: BenchConfig, source: Trace, db: PerfDatabase,
               ) -> tuple[list[dict], dict, list[str]]:
    """The big Poisson trace (70 req/s, the code trace's sizes) on Splitwise-HA 35P/8T,
    streamed to disk, and the request-by-request check of streaming against memory."""
    design = splitwise_design("HA", 35, 8)
    n_check = min(cfg.big_requests, cfg.check_requests)
    rows, summary = [], {}
    keys = ("ttft_p50_s", "ttft_p99_s", "tbt_p50_s", "tbt_p99_s", "e2e_p50_s", "e2e_p99_s")
    ctx.out_dir.mkdir(parents=True, exist_ok=True)  # the streamed files go beside the results
    with tempfile.TemporaryDirectory(dir=ctx.out_dir, prefix=".splitwise_requests_") as tmp:
        start = time.perf_counter()
        check = poisson_trace(source, 70.0, n_check / 70.0, seed=ctx.seed)
        generate_s = time.perf_counter() - start
        name = f"poisson70_{len(check)}"
        memory, t_mem = _measured(lambda c=check: simulate_design(design, c, db))
        streamed, t_file = _measured(lambda c=check: simulate_design(design, c, db,
                                                                     out=Path(tmp) / "check"))
        lat_mem, lat_file = latency_summary(memory), latency_summary(streamed)
        for how, t, lat in (("in memory", t_mem, lat_mem), ("streamed to disk", t_file, lat_file)):
            rows.append({"method": f"ours: {design.label}, {how}", "trace": name, **t,
                         "sim_requests_per_s": len(check) / t["wall_s"],
                         "completed": lat["completed"], **{k: lat.get(k) for k in keys}})
        summary.update({
            "check_trace_requests": len(check),
            "streamed_equals_in_memory": _streamed_equals(memory, streamed),
            "streamed_summary_max_rel_diff": max(
                abs(lat_mem[k] - lat_file[k]) / max(abs(lat_mem[k]), 1e-300) for k in lat_mem),
            "check_in_memory_cpu_s": t_mem["cpu_s"], "check_streamed_cpu_s": t_file["cpu_s"]})
        del memory, streamed, check
        big_name = name
        if cfg.big_requests > n_check:

            def streamed_run() -> tuple[dict, float]:
                """Trace, simulation to disk, summary from the files (the trace is dropped
                before the summary): what a user of a 10^7-request trace needs at once."""
                start = time.perf_counter()
                big = poisson_trace(source, 70.0, cfg.big_requests / 70.0, seed=ctx.seed)
                seconds = time.perf_counter() - start
                result = simulate_design(design, big, db, out=Path(tmp) / "big")
                del big
                return latency_summary(result), seconds

            (lat, generate_s), t_big = _measured(streamed_run)
            big_name = f"poisson70_{lat['requests']}"
            rows.append({"method": f"ours: {design.label}, streamed to disk", "trace": big_name,
                         **t_big, "generate_s": generate_s,
                         "sim_requests_per_s": lat["requests"] / (t_big["wall_s"] - generate_s),
                         "completed": lat["completed"], **{k: lat.get(k) for k in keys}})
        else:
            lat, t_big = lat_file, t_file
        files = sum(f.stat().st_size for f in Path(tmp).rglob("*.npy"))
    summary.update({
        "big_trace_requests": int(lat["requests"]), "big_trace_wall_s": t_big["wall_s"],
        "big_trace_cpu_s": t_big["cpu_s"], "big_trace_generate_s": generate_s,
        "big_trace_peak_memory_mb": t_big["peak_memory_mb"],
        "big_trace_requests_per_cpu_s": lat["requests"] / t_big["cpu_s"],
        "big_trace_latency": {k: v for k, v in lat.items() if k.endswith("_s")},
        "process_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
    notes = [f"{big_name} (Splitwise-HA 35P/8T): per-request results streamed to .npy files "
             f"({files / 2**20:.0f} MB written in chunks of 65,536 requests, deleted after), "
             "latencies computed from the files: percentiles exact, means to float rounding. "
             "Its wall/cpu/peak memory cover drawing the trace (generate_s of it), simulating "
             "and the summary; peak_memory_mb is the rise of the peak RSS over the process's "
             "(process_peak_rss_mb is the process's own peak).",
             f"streamed_equals_in_memory: the streamed and in-memory simulations of "
             f"{summary['check_trace_requests']:,} requests agree exactly, request by request "
             "(after putting the streamed rows back in trace order) and in the machine "
             "statistics; streamed_summary_max_rel_diff is the largest relative difference of "
             "their latency summaries (means differ in summation order only)."]
    return rows, summary, notes


def bench(ctx: RunContext, config: Config | None = None) -> Result:
    """Our simulator's speed, memory and agreement against the reference (when given)."""
    from paperlab.splitwise.peer import run_reference

    full = resolve_config(ctx, Config, config)
    cfg, ref_path, ref_python = full.bench, full.reference, full.reference_python
    db, sources, data = _load(ctx)
    root = ctx.require(DATA, HOW)
    trace_path = root / "generated_traces" / "rr_code_70_2min.csv"
    trace = read_reference_csv(trace_path)
    data["bench_trace"] = {"path": str(trace_path), "requests": len(trace)}
    rows, summary, notes = [], {}, []
    for design in cfg.designs:
        ours_res, peak = timing.peak_memory(lambda d=design: simulate_design(d, trace, db))
        cpu0 = time.process_time()
        contenders = {"ours": lambda d=design: simulate_design(d, trace, db)}
        peer: dict = {}
        if ref_path:
            contenders["reference"] = lambda d=design, store=peer: store.__setitem__(
                "run", run_reference(ref_path, d, trace, ref_python))
        t = timing.compare(contenders, warmup=0, repeats=cfg.repeats)
        cpu = (time.process_time() - cpu0) / cfg.repeats
        row = {"method": f"ours: {design.label}", "trace": "rr_code_70_2min",
               "wall_s": t["ours"].median, "sim_requests_per_s": len(trace) / t["ours"].median,
               "peak_memory_mb": peak / 2**20, "completed": ours_res.completed}
        lat = latency_summary(ours_res)
        row.update({k: lat[k] for k in ("ttft_p50_s", "ttft_p99_s", "e2e_p50_s", "e2e_p99_s")})
        rows.append(row)
        if ref_path:
            ref = peer["run"]
            agree = _agreement(ours_res, ref)
            speedup = t["reference"].median / t["ours"].median
            rows.append({"method": f"reference: {design.label}", "trace": "rr_code_70_2min",
                         "wall_s": t["reference"].median,
                         "sim_requests_per_s": len(trace) / t["reference"].median,
                         "completed": len(ref.request_id)})
            key = design.name.lower().replace("-", "_")
            summary[f"speedup_vs_reference_{key}"] = speedup
            summary[f"percentile_max_rel_diff_{key}"] = agree["max_rel_diff_percentiles"]
            summary[f"per_request_max_abs_diff_s_{key}"] = max(
                v for k, v in agree.items() if k.startswith("max_abs"))
        else:
            summary.setdefault("ours_cpu_s_per_run", cpu)
    if not ref_path:
        notes.append("reference not run: give 'paperlab bench splitwise --reference "
                     "<splitwise-sim checkout> [--reference-python PY]' (or set "
                     "PAPERLAB_SPLITWISE_REFERENCE)")
    big_rows, big_summary, big_notes = _big_trace(ctx, cfg, sources["code"], db)
    rows += big_rows
    summary.update(big_summary)
    notes += big_notes
    notes.append("wall times on a shared 2-core machine are noisy; cpu_s is this process's CPU "
                 "time (less sensitive to other load)")
    return Result(results=rows, summary=summary, data=data, notes=notes)
