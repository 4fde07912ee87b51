"""Splitwise (Patel et al., ISCA 2024): phase-split LLM serving, as a cluster simulator.

Public API (each name imported on first use)::

    from paperlab.splitwise import (PerfDatabase, read_reference_csv, read_azure_csv,
                                    poisson_trace, splitwise_design, baseline_design,
                                    simulate_design, latency_summary, slo_report)
    db = PerfDatabase.from_csv("perf_model.csv")
    trace = poisson_trace(read_azure_csv("AzureLLMInferenceTrace_code.csv"), rate=70,
                          duration_s=120, seed=0)
    res = simulate_design(splitwise_design("HA", n_prompt=35, n_token=8), trace, db)
    latency_summary(res)["ttft_p99_s"], slo_report(res, db.model("bloom-176b", "a100-80gb", 8))
"""

from pathlib import Path

from paperlab.core.claims import Claim, Threshold, value
from paperlab.core.lazy import lazy_exports
from paperlab.core.registry import Option, System, Tool

_RATIO = "throughput_ratio_best_splitwise_vs_baseline_h100_trace_mean"
_COST = "cost_ratio_cheapest_splitwise_vs_baseline_h100_at_equal_rate_trace_mean"
_CLAIMS = (
    Claim("iso_power_throughput",
          "At equal power, the best Splitwise cluster serves more requests/s within the SLOs "
          "than Baseline-H100 (code trace)",
          paper="2.35x (40 DGX-H100s of power)",
          rule=Threshold(value(_RATIO, "x", ci=f"{_RATIO}_ci95"), paper=2.35, tolerance=0.25,
                         null=1.0),
          how="the max-rate ratio of the two designs the search chose, averaged over fresh "
              "seeded Poisson traces (not the one they were chosen on; the simulation is "
              "deterministic, the trace is not), with a t interval over those trace seeds: "
              "within noise if it holds 1, reproduced if it reaches 2.35 ± 0.25, else "
              "direction above 1"),
    Claim("iso_rate_cost",
          "At Baseline-H100's rate, the cheapest Splitwise cluster costs less",
          paper="0.8x the cost (at 1.4x the throughput)",
          rule=Threshold(value(_COST, "x", ci=f"{_COST}_ci95"), paper=0.8, tolerance=0.1,
                         null=1.0, better="lower"),
          how="mean over seeded Poisson traces of the cheapest clusters' cost ratio at "
              "Baseline-H100's rate on each trace, with a t interval over trace seeds: within "
              "noise if it holds 1, reproduced if it reaches 0.8 ± 0.1, else direction below "
              "1"),
)

SYSTEM = System(
    name="splitwise",
    paper="Splitwise: Efficient Generative LLM Inference Using Phase Splitting, ISCA 2024",
    claim="Splitting prompt and token phases onto separate machines gives 1.4x throughput at "
          "20% lower cost, or 2.35x throughput at the same cost and power",
    run="paperlab.splitwise.experiment:run",
    bench="paperlab.splitwise.experiment:bench",
    claims=_CLAIMS,
    options=(
        Option("reference", Path,
               "bench: a checkout of github.com/Mutinifni/splitwise-sim to run beside ours "
               "(or $PAPERLAB_SPLITWISE_REFERENCE)", metavar="PATH"),
        Option("reference_python", str,
               "bench: interpreter with the reference's requirements "
               "(or $PAPERLAB_SPLITWISE_REFERENCE_PYTHON; default python)", metavar="PYTHON"),
        Option("requests", int,
               "bench: requests of the big Poisson trace, simulated with per-request results "
               "streamed to disk (default 1,000,000; --quick 200,000), e.g. 10000000",
               min=1000, max=10**9, metavar="N"),
    ),
    tools=(Tool("simulate", "your request trace (or a Poisson one) on cluster designs: "
                "per-request latencies, TTFT/TBT/E2E percentiles, SLOs, power, cost",
                "paperlab.splitwise.cli:simulate"),
           Tool("provision", "the best Baseline and Splitwise clusters under a power budget "
                "for your trace's token sizes, and the cost-vs-throughput Pareto plot",
                "paperlab.splitwise.cli:provision")),
)

_EXPORTS = {
    **dict.fromkeys((
        "Design", "baseline_design", "build_cluster", "design_by_name", "roofline_models",
        "simulate_design", "splitwise_design"),
        "paperlab.splitwise.cluster"),
    **dict.fromkeys((
        "BLOOM_176B", "DGX_A100", "DGX_H100", "DGX_H100_PCAP", "ETHERNET", "INFINIBAND",
        "LLAMA2_70B", "LLM", "Link", "MachineSKU"),
        "paperlab.splitwise.hardware"),
    **dict.fromkeys((
        "SLO_LIMITS", "latency_summary", "slo_report", "slowdowns"),
        "paperlab.splitwise.metrics"),
    **dict.fromkeys((
        "IterationModel", "PerfDatabase", "PiecewiseLinear", "ProfiledModel", "RooflineModel"),
        "paperlab.splitwise.perf_model"),
    **dict.fromkeys((
        "SearchSpace", "baseline_for_budget", "best_design", "budget_splits", "cheapest_design",
        "cheapest_for_rate", "evaluate", "max_rate"),
        "paperlab.splitwise.provisioning"),
    **dict.fromkeys((
        "ChunkedPrefillMachine", "Machine", "MachineConfig", "MixedPoolScheduler", "SimResult",
        "TokenJSQScheduler", "read_results", "simulate"),
        "paperlab.splitwise.simulator"),
    **dict.fromkeys((
        "Trace", "TraceError", "poisson_trace", "read_azure_csv", "read_reference_csv",
        "read_trace_csv"),
        "paperlab.splitwise.trace"),
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = ["SYSTEM", *_EXPORTS]
