"""Provisioning search: the highest SLO-meeting request rate of a design, the best
prompt:token split under a power or cost budget, and the cheapest design for a target rate.

Every configuration is one simulation of a seeded Poisson trace at rate R whose sizes are
resampled from a source trace (the Azure code or conversation trace). Configurations run in
parallel through :func:`paperlab.core.jobs.job_map`: local processes, or a Ray cluster when an
address is given; with a ``sweep`` name each finished search is kept on disk and a rerun
resumes from them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from paperlab.core.jobs import Codec, Job, job_map
from paperlab.splitwise.cluster import Design, baseline_design, simulate_design, splitwise_design
from paperlab.splitwise.hardware import BLOOM_176B, DGX_A100, INFINIBAND
from paperlab.splitwise.metrics import latency_summary, slo_report
from paperlab.splitwise.perf_model import PerfDatabase
from paperlab.splitwise.trace import Trace, poisson_trace


@dataclass(frozen=True)
class SearchSpace:
    """How a design's throughput is measured.

    Attributes:
        rates: candidate request rates (req/s), ascending; the search bisects over them
            assuming that a design meeting the SLOs at R also meets them below R.
        duration_s: length of each generated trace.
        seed: trace seed (the same trace per rate for every design).
        give_up_s: abandon a run once this many seconds of arrivals are outstanding
            (0 = never).
    """

    rates: tuple[float, ...] = tuple(float(r) for r in range(5, 301, 5))
    duration_s: float = 120.0
    seed: int = 0
    give_up_s: float = 40.0

    def __post_init__(self) -> None:
        if not self.rates or any(b <= a for a, b in zip(self.rates, self.rates[1:], strict=False)):
            raise ValueError("rates must be a non-empty ascending sequence")
        if not all(math.isfinite(r) and r > 0 for r in self.rates):
            raise ValueError(f"rates must be positive finite requests per second, got "
                             f"{self.rates}")
        if not (math.isfinite(self.duration_s) and self.duration_s > 0):
            raise ValueError(f"duration_s must be a positive finite number of seconds, got "
                             f"{self.duration_s}")
        if not (math.isfinite(self.give_up_s) and self.give_up_s >= 0):
            raise ValueError(f"give_up_s must be >= 0 seconds (0 = never), got {self.give_up_s}")


@dataclass
class Evaluation:
    """One simulated (design, rate): latency summary + SLO report."""

    design: Design
    rate: float
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def slo_met(self) -> bool:
        return bool(self.metrics.get("slo_met", False))


def evaluate(design: Design, rate: float, source: Trace, perf: PerfDatabase,
             space: SearchSpace) -> Evaluation:
    """Simulate ``design`` at ``rate`` and check the nine SLOs.

    A run is abandoned (and fails the SLOs) once ``space.give_up_s`` seconds' worth of
    arrivals are waiting or running at once: by Little's law the mean E2E is then about
    ``give_up_s``, several times what the E2E SLOs allow for these traces.
    """
    trace = poisson_trace(source, rate, space.duration_s, seed=space.seed)
    cap = int(rate * space.give_up_s) + 100 if space.give_up_s else None
    res = simulate_design(design, trace, perf, BLOOM_176B, INFINIBAND, max_outstanding=cap)
    alone = perf.model(BLOOM_176B.name, DGX_A100.hardware, 8)
    m = latency_summary(res)
    m.update(slo_report(res, alone))
    m["peak_memory_frac"] = float((res.machine_peak_memory / res.machine_max_memory).max())
    return Evaluation(design, rate, m)


def max_rate(design: Design, source: Trace, perf: PerfDatabase,
             space: SearchSpace) -> tuple[float, list[Evaluation]]:
    """Highest rate in ``space.rates`` meeting all SLOs (0.0 if none), by bisection.

    Returns the rate and every evaluation made (for latency-vs-rate plots).
    """
    lo, hi = -1, len(space.rates)  # rates[lo] passes (virtual), rates[hi] fails (virtual)
    evals = []
    while hi - lo > 1:
        mid = (lo + hi) // 2
        ev = evaluate(design, space.rates[mid], source, perf, space)
        evals.append(ev)
        if ev.slo_met:
            lo = mid
        else:
            hi = mid
    return (space.rates[lo] if lo >= 0 else 0.0), evals


def _max_rate_job(args: tuple) -> tuple[Design, float, list[Evaluation]]:
    design, source, perf, space = args
    rate, evals = max_rate(design, source, perf, space)
    return design, rate, evals


def _evaluate_job(args: tuple) -> Evaluation:
    return evaluate(*args)


# How each job's result is kept on disk: only numbers; the designs come from the job itself.
_CODECS: dict[Callable[[Any], Any], Codec] = {
    _max_rate_job: Codec(
        lambda out: {"rate": out[1], "evals": [[e.rate, e.metrics] for e in out[2]]},
        lambda job, v: (job[0], v["rate"], [Evaluation(job[0], r, m) for r, m in v["evals"]])),
    _evaluate_job: Codec(lambda ev: {"rate": ev.rate, "metrics": ev.metrics},
                         lambda job, v: Evaluation(job[0], v["rate"], v["metrics"])),
}


def _key(item: tuple) -> tuple:
    """What decides a job's result: its designs, rates, source trace and search space, and the
    profiled rows of the performance database (not its lazily built interpolators)."""
    return tuple(x._rows if isinstance(x, PerfDatabase) else x for x in item)


class _OneArg:
    """``fn(config, seed)`` for the job map, from a one-argument ``fn(item)``."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    def __call__(self, item: Any, seed: int) -> Any:
        return self.fn(item)


def parallel_map(fn: Callable[[Any], Any], items: Sequence[Any], workers: int = 2,
                 ray_address: str | None = None, description: str | None = None,
                 sweep: str | None = None, fresh: bool = False) -> list[Any]:
    """``[fn(x) for x in items]`` on local processes, or on Ray at ``ray_address``.

    ``workers <= 1`` runs in this process (no pickling; easiest to debug). With a
    ``description`` a progress bar counts finished items. With ``sweep`` (a name such as
    ``"splitwise.iso_power"``) each finished item is kept on disk, keyed by its content, and
    a rerun computes only the rest (``fresh``: recompute all); only the job functions of this
    module can be stored.
    """
    codec = _CODECS.get(fn)
    if sweep is not None and codec is None:
        raise ValueError(f"{getattr(fn, '__name__', fn)} results cannot be stored; "
                         "call it without sweep")
    jobs = [Job(item, 0, _label(item), key=_key(item) if isinstance(item, tuple) else None)
            for item in items]
    return job_map(_OneArg(fn), jobs, sweep=sweep, fresh=fresh, workers=workers,
                   ray_address=ray_address, codec=codec if sweep else None,
                   description=description)


def _label(item: Any) -> str:
    """A job's name in errors: the designs and rate it is about."""
    parts = item if isinstance(item, tuple) else (item,)
    named = [p.label for p in parts if isinstance(p, Design)]
    named += [f"{len(p)} designs from {p[0].label}" for p in parts
              if isinstance(p, list) and p and isinstance(p[0], Design)]
    named += [f"{p:g} req/s" for p in parts if isinstance(p, float)]
    return ", ".join(named) or type(item).__name__


def _check_budget(budget: float, by: str) -> None:
    if by not in ("power", "cost"):
        raise ValueError(f"budget must be by 'power' or 'cost', got {by!r}")
    if not (math.isfinite(budget) and budget > 0):
        raise ValueError(f"budget must be a positive finite {by}, got {budget}")


def budget_splits(kind: str, budget: float, by: str = "power", step: int = 1,
                  min_machines: int = 1) -> list[Design]:
    """All prompt:token splits of Splitwise-``kind`` that fit ``budget`` (``by`` power or cost),
    spending as much of it on token machines as fits for each prompt count (every ``step``)."""
    _check_budget(budget, by)
    if step < 1 or min_machines < 1:
        raise ValueError(f"step and min_machines must be >= 1, got {step}, {min_machines}")
    probe = splitwise_design(kind, 1, 1)
    p_unit = getattr(probe.prompt_sku, by)
    t_unit = getattr(probe.token_sku, by)
    designs = []
    for n_p in range(min_machines, math.floor(budget / p_unit + 1e-9) + 1, step):
        n_t = int(math.floor((budget - n_p * p_unit) / t_unit + 1e-9))
        if n_t >= min_machines:
            designs.append(splitwise_design(kind, n_p, n_t))
    return designs


def baseline_for_budget(hardware: str, budget: float, by: str = "power") -> Design:
    """Baseline-``hardware`` with as many machines as ``budget`` allows."""
    _check_budget(budget, by)
    probe = baseline_design(hardware, 1)
    n = int(math.floor(budget / getattr(probe.prompt_sku, by) + 1e-9))
    return baseline_design(hardware, n)


@dataclass
class SearchResult:
    """Max rates of candidate designs (``rates[label]``), the best one, every evaluation."""

    best: Design
    best_rate: float
    rates: dict[str, float]
    designs: dict[str, Design]
    evaluations: list[Evaluation]


def best_design(candidates: Iterable[Design], source: Trace, perf: PerfDatabase,
                space: SearchSpace, workers: int = 2, ray_address: str | None = None,
                sweep: str | None = None, fresh: bool = False) -> SearchResult:
    """The candidate with the highest SLO-meeting rate (ties: the cheaper one).

    ``workers``, ``ray_address``, ``sweep`` and ``fresh`` are :func:`parallel_map`'s."""
    candidates = list(candidates)
    if not candidates:
        raise ValueError("no candidate designs (budget too small for one machine of each kind?)")
    out = parallel_map(_max_rate_job, [(d, source, perf, space) for d in candidates], workers,
                       ray_address, sweep=sweep, fresh=fresh)
    rates = {d.label: r for d, r, _ in out}
    evals = [e for _, _, es in out for e in es]
    best, best_r = max(((d, r) for d, r, _ in out), key=lambda dr: (dr[1], -dr[0].cost))
    return SearchResult(best, best_r, rates, {d.label: d for d in candidates}, evals)


def _fewest_passing(designs: Sequence[Design], target_rate: float, source: Trace,
                    perf: PerfDatabase, space: SearchSpace) -> Design | None:
    """The first of ``designs`` (ordered by growing capacity) meeting the SLOs at
    ``target_rate``, by bisection (assumes more machines never hurt)."""
    lo, hi = -1, len(designs)  # designs[lo] fails (virtual), designs[hi] passes (virtual)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if evaluate(designs[mid], target_rate, source, perf, space).slo_met:
            hi = mid
        else:
            lo = mid
    return designs[hi] if hi < len(designs) else None


def _fewest_passing_job(args: tuple) -> Design | None:
    return _fewest_passing(*args)


_CODECS[_fewest_passing_job] = Codec(
    lambda d: None if d is None else [d.n_prompt, d.n_token],
    lambda job, v: None if v is None else next(
        d for d in job[0] if [d.n_prompt, d.n_token] == v))


def cheapest_for_rate(kind: str, target_rate: float, max_cost: float, source: Trace,
                      perf: PerfDatabase, space: SearchSpace, prompt_step: int = 1,
                      workers: int = 2, ray_address: str | None = None,
                      sweep: str | None = None, fresh: bool = False) -> Design | None:
    """Cheapest design of ``kind`` ("Baseline-A100", "Baseline-H100" or a Splitwise kind
    "AA"/"HH"/"HA"/"HHcap") costing at most ``max_cost`` that meets the SLOs at
    ``target_rate``: for a baseline the fewest machines, for Splitwise the fewest token
    machines for every prompt count (every ``prompt_step``), each found by bisection."""
    if kind.startswith("Baseline-"):
        hw = kind.split("-", 1)[1]
        n_max = math.floor(max_cost / baseline_design(hw, 1).cost + 1e-9)
        return _fewest_passing([baseline_design(hw, n) for n in range(1, n_max + 1)],
                               target_rate, source, perf, space)
    probe = splitwise_design(kind, 1, 1)
    pc, tc = probe.prompt_sku.cost, probe.token_sku.cost
    jobs = []
    for p in range(1, math.floor(max_cost / pc + 1e-9) + 1, prompt_step):
        t_max = math.floor((max_cost - p * pc) / tc + 1e-9)
        if t_max >= 1:
            jobs.append(([splitwise_design(kind, p, t) for t in range(1, t_max + 1)],
                         target_rate, source, perf, space))
    found = [d for d in parallel_map(_fewest_passing_job, jobs, workers, ray_address,
                                     description=f"cheapest Splitwise-{kind}", sweep=sweep,
                                     fresh=fresh) if d]
    return min(found, key=lambda d: (d.cost, d.num_machines)) if found else None


def cheapest_design(candidates: Iterable[Design], target_rate: float, source: Trace,
                    perf: PerfDatabase, space: SearchSpace, workers: int = 2,
                    ray_address: str | None = None, sweep: str | None = None,
                    fresh: bool = False) -> tuple[Design | None, list[Evaluation]]:
    """The cheapest candidate that meets all SLOs at ``target_rate`` (None if none does)."""
    candidates = sorted(candidates, key=lambda d: (d.cost, d.power, d.num_machines))
    evals = parallel_map(_evaluate_job, [(d, target_rate, source, perf, space)
                                         for d in candidates], workers, ray_address,
                         sweep=sweep, fresh=fresh)
    ok = [e.design for e in evals if e.slo_met]
    return (ok[0] if ok else None), evals
