"""Latency percentiles, the nine slowdown SLOs, and throughput of a simulated run.

SLOs follow the reference's ``notebooks/plots.ipynb``: each request's TTFT, TBT and E2E are
divided by what the same request would take alone on a DGX-A100 running BLOOM-176B at TP8,
where (a reference quirk, kept for compatibility) both the alone TTFT and the alone TBT are the
profiled predictors evaluated at x = prompt size, and alone E2E = TTFT + TBT·(tokens−1).
A design meets the SLOs when every slowdown percentile is strictly below its limit.
"""

from __future__ import annotations

import numpy as np

from paperlab.splitwise.perf_model import IterationModel
from paperlab.splitwise.simulator import SimResult

PERCENTILES = (50, 90, 95, 99, 99.9)
SLO_LIMITS = {  # (metric, percentile) -> slowdown limit
    ("ttft", 50): 2.0, ("ttft", 90): 3.0, ("ttft", 99): 6.0,
    ("tbt", 50): 1.25, ("tbt", 90): 1.5, ("tbt", 99): 5.0,
    ("e2e", 50): 1.25, ("e2e", 90): 1.5, ("e2e", 99): 5.0,
}


def _pct_name(q: float) -> str:
    return f"p{q:g}".replace(".", "_")


def latency_summary(res: SimResult) -> dict[str, float]:
    """Mean and p50/p90/p95/p99/p99.9 of TTFT, TBT, E2E (seconds), completion and throughput.

    Throughput is completed requests per second of simulated time from the first arrival to
    the last completion. The requests may come in any order (a result streamed to disk is in
    completion order): percentiles are exact either way, means equal up to float rounding.
    """
    done = np.isfinite(res.e2e_s)
    out: dict[str, float] = {"requests": len(res.e2e_s), "completed": int(done.sum())}
    if not done.any():
        return out
    for name, x in (("ttft", res.ttft_s[done]), ("tbt", res.tbt_s[done]),
                    ("e2e", res.e2e_s[done])):
        out[f"{name}_mean_s"] = float(x.mean())
        for q, v in zip(PERCENTILES, np.percentile(x, PERCENTILES), strict=True):
            out[f"{name}_{_pct_name(q)}_s"] = float(v)
    span = float(np.max(res.arrival_s[done] + res.e2e_s[done]) - np.min(res.arrival_s))
    out["throughput_rps"] = float(done.sum() / span) if span > 0 else float("nan")
    out["kv_transfer_mean_s"] = float(res.kv_transfer_s[done].mean())
    return out


def slowdowns(res: SimResult, alone: IterationModel) -> dict[str, np.ndarray]:
    """Per-request TTFT/TBT/E2E slowdowns against ``alone`` (the DGX-A100 profile)."""
    done = np.isfinite(res.e2e_s)
    prompts = res.prompt_tokens[done]
    base_ttft = np.array([alone.prompt_time(int(p)) for p in prompts])
    base_tbt = np.array([alone.token_time(int(p)) for p in prompts])
    base_e2e = base_ttft + base_tbt * (res.output_tokens[done] - 1)
    return {"ttft": res.ttft_s[done] / base_ttft, "tbt": res.tbt_s[done] / base_tbt,
            "e2e": res.e2e_s[done] / base_e2e}


def slo_report(res: SimResult, alone: IterationModel) -> dict[str, float | bool]:
    """The nine slowdown percentiles, ``slo_met`` (all nine strictly under their limits and
    every request completed) and ``slo_worst`` (largest slowdown / limit ratio)."""
    out: dict[str, float | bool] = {}
    if res.completed < len(res.e2e_s):
        out["slo_met"], out["slo_worst"] = False, float("inf")
        return out
    s = slowdowns(res, alone)
    worst = 0.0
    for (metric, q), limit in SLO_LIMITS.items():
        v = float(np.percentile(s[metric], q))
        out[f"{metric}_slowdown_p{q}"] = v
        worst = max(worst, v / limit)
    out["slo_met"] = worst < 1.0
    out["slo_worst"] = worst
    return out
