"""Splitwise (Patel et al., ISCA 2024): phase-split LLM serving, as a cluster simulator.

Public API::

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

from paperlab.core.registry import Option, System
from paperlab.splitwise.cluster import (
    Design,
    baseline_design,
    build_cluster,
    design_by_name,
    roofline_models,
    simulate_design,
    splitwise_design,
)
from paperlab.splitwise.hardware import (
    BLOOM_176B,
    DGX_A100,
    DGX_H100,
    DGX_H100_PCAP,
    ETHERNET,
    INFINIBAND,
    LLAMA2_70B,
    LLM,
    Link,
    MachineSKU,
)
from paperlab.splitwise.metrics import SLO_LIMITS, latency_summary, slo_report, slowdowns
from paperlab.splitwise.perf_model import (
    IterationModel,
    PerfDatabase,
    PiecewiseLinear,
    ProfiledModel,
    RooflineModel,
)
from paperlab.splitwise.provisioning import (
    SearchSpace,
    baseline_for_budget,
    best_design,
    budget_splits,
    cheapest_design,
    cheapest_for_rate,
    evaluate,
    max_rate,
)
from paperlab.splitwise.simulator import (
    ChunkedPrefillMachine,
    Machine,
    MachineConfig,
    MixedPoolScheduler,
    SimResult,
    TokenJSQScheduler,
    simulate,
)
from paperlab.splitwise.trace import (
    Trace,
    TraceError,
    poisson_trace,
    read_azure_csv,
    read_reference_csv,
)

SYSTEM = System(
    name="splitwise",
    paper="Splitwise: Efficient Generative LLM Inference Using Phase Splitting, ISCA 2024",
    claim="Splitting prompt and token phases onto separate machines gives 1.4x throughput at "
          "20% lower cost, or 2.35x throughput at the same cost and power",
    run="paperlab.splitwise.experiment:run",
    bench="paperlab.splitwise.experiment:bench",
    options=(
        Option("reference", Path,
               "bench: a checkout of github.com/Mutinifni/splitwise-sim to run beside ours "
               "(or $PAPERLAB_SPLITWISE_REFERENCE)"),
        Option("reference_python", str,
               "bench: interpreter with the reference's requirements "
               "(or $PAPERLAB_SPLITWISE_REFERENCE_PYTHON; default python)"),
        Option("ray_address", str,
               "run: Ray cluster for the provisioning search "
               "(or $PAPERLAB_SPLITWISE_RAY_ADDRESS; default local processes)"),
    ),
)

__all__ = [
    "BLOOM_176B", "DGX_A100", "DGX_H100", "DGX_H100_PCAP", "ETHERNET", "INFINIBAND",
    "LLAMA2_70B", "LLM", "SLO_LIMITS", "SYSTEM", "ChunkedPrefillMachine", "Design",
    "IterationModel", "Link", "Machine", "MachineConfig", "MachineSKU", "MixedPoolScheduler",
    "PerfDatabase", "PiecewiseLinear", "ProfiledModel", "RooflineModel", "SearchSpace",
    "SimResult", "TokenJSQScheduler", "Trace", "TraceError", "baseline_design",
    "baseline_for_budget", "best_design", "budget_splits", "build_cluster", "cheapest_design",
    "cheapest_for_rate",
    "design_by_name", "evaluate", "latency_summary", "max_rate", "poisson_trace",
    "read_azure_csv", "read_reference_csv", "roofline_models", "simulate", "simulate_design",
    "slo_report", "slowdowns", "splitwise_design",
]
