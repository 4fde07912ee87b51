"""Cluster designs (the paper's six and any other mix) and one call to simulate a design.

A :class:`Design` is colocated (``token_sku is None``: every machine runs prompts and decodes,
requests are placed by token join-shortest-queue) or phase-split (prompt machines, token
machines, the mixed-pool scheduler and KV transfers over ``link``).

Example:
    >>> db = PerfDatabase.from_csv("perf_model.csv")
    >>> d = splitwise_design("HA", n_prompt=35, n_token=8)
    >>> res = simulate_design(d, trace, db)
    >>> summarize(res)["ttft_p50_s"]
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from numbers import Integral
from pathlib import Path

from paperlab.splitwise.hardware import (
    BLOOM_176B,
    DGX_A100,
    DGX_H100,
    DGX_H100_PCAP,
    INFINIBAND,
    LLM,
    Link,
    MachineSKU,
)
from paperlab.splitwise.perf_model import IterationModel, PerfDatabase, RooflineModel
from paperlab.splitwise.simulator import (
    ChunkedPrefillMachine,
    Machine,
    MachineConfig,
    MixedPoolScheduler,
    SimResult,
    TokenJSQScheduler,
    simulate,
)
from paperlab.splitwise.trace import Trace

DEFAULT_CONFIG = MachineConfig()
SPLIT_SKUS = {"AA": (DGX_A100, DGX_A100), "HH": (DGX_H100, DGX_H100),
              "HA": (DGX_H100, DGX_A100), "HHcap": (DGX_H100, DGX_H100_PCAP)}


@dataclass(frozen=True)
class Design:
    """A cluster: ``n_prompt`` machines of ``prompt_sku`` and ``n_token`` of ``token_sku``.

    For a colocated design ``token_sku`` is None and ``n_prompt`` counts all machines.
    ``chunk_size`` (colocated only) switches the machines to chunked prefill.
    """

    name: str
    prompt_sku: MachineSKU
    n_prompt: int
    token_sku: MachineSKU | None = None
    n_token: int = 0
    chunk_size: int | None = None

    def __post_init__(self) -> None:
        for name in ("n_prompt", "n_token"):
            value = getattr(self, name)
            if not isinstance(value, Integral) or isinstance(value, bool):
                raise ValueError(f"{self.name}: {name} must be a whole number of machines, "
                                 f"got {value!r}")
        if self.token_sku is None and self.n_token != 0:
            raise ValueError(f"{self.name}: a colocated design has no token machines (n_token "
                             f"must be 0, got {self.n_token}); give token_sku for a split one")
        if self.chunk_size is not None and self.chunk_size < 1:
            raise ValueError(f"{self.name}: chunk_size must be a positive token count or None, "
                             f"got {self.chunk_size}")
        if self.n_prompt < 1:
            raise ValueError(f"{self.name}: needs at least one prompt machine, got "
                             f"{self.n_prompt}")
        if self.token_sku is not None and self.n_token < 1:
            raise ValueError(f"{self.name}: a split design needs at least one token machine")
        if self.token_sku is not None and self.chunk_size is not None:
            raise ValueError("chunked prefill is a colocated design; drop token_sku")

    @property
    def split(self) -> bool:
        return self.token_sku is not None

    @property
    def num_machines(self) -> int:
        return self.n_prompt + self.n_token

    @property
    def cost(self) -> float:
        """Relative cost (sum of per-machine costs)."""
        return self.n_prompt * self.prompt_sku.cost + \
            (self.n_token * self.token_sku.cost if self.split else 0.0)

    @property
    def power(self) -> float:
        """Relative provisioned power (sum of per-machine power)."""
        return self.n_prompt * self.prompt_sku.power + \
            (self.n_token * self.token_sku.power if self.split else 0.0)

    @property
    def label(self) -> str:
        if self.split:
            return f"{self.name} ({self.n_prompt}P/{self.n_token}T)"
        return f"{self.name} ({self.n_prompt})"

    def with_counts(self, n_prompt: int, n_token: int = 0) -> Design:
        return replace(self, n_prompt=n_prompt, n_token=n_token)


def baseline_design(hardware: str, n: int, chunk_size: int | None = None) -> Design:
    """Baseline-A100 / Baseline-H100 (``hardware`` "A100" or "H100"), colocated."""
    skus = {"A100": DGX_A100, "H100": DGX_H100}
    if hardware not in skus:
        raise ValueError(f"unknown baseline hardware {hardware!r}; choose from {list(skus)}")
    sku = skus[hardware]
    name = f"Baseline-{hardware}" + (f"-chunked{chunk_size}" if chunk_size else "")
    return Design(name, sku, n, chunk_size=chunk_size)


def splitwise_design(kind: str, n_prompt: int, n_token: int) -> Design:
    """Splitwise-AA / -HH / -HA / -HHcap with the given machine counts."""
    if kind not in SPLIT_SKUS:
        raise ValueError(f"unknown Splitwise design {kind!r}; choose from {list(SPLIT_SKUS)}")
    p, t = SPLIT_SKUS[kind]
    return Design(f"Splitwise-{kind}", p, n_prompt, t, n_token)


def design_by_name(name: str, n_prompt: int, n_token: int = 0) -> Design:
    """``Baseline-A100``, ``Baseline-H100`` or ``Splitwise-{AA,HH,HA,HHcap}``."""
    if not name.startswith(("Baseline-", "Splitwise-")):
        raise ValueError(f"unknown design {name!r}: expected Baseline-A100, Baseline-H100 or "
                         f"Splitwise-{{{','.join(SPLIT_SKUS)}}}")
    if name.startswith("Baseline-"):
        return baseline_design(name.split("-", 1)[1], n_prompt)
    return splitwise_design(name.split("-", 1)[1], n_prompt, n_token)


def roofline_models(model: LLM = BLOOM_176B, **kwargs) -> dict[str, RooflineModel]:
    """Analytic iteration models for every SKU (hardware key -> model), for designs whose
    hardware was never profiled; ``kwargs`` go to :class:`RooflineModel` (mfu, mbu, ...)."""
    out = {}
    for sku in (DGX_A100, DGX_H100):
        out[sku.hardware] = RooflineModel(
            params=model.params, weight_bytes=model.weight_bytes,
            kv_bytes_per_token=model.kv_bytes_per_token, flops=sku.gpus * sku.peak_flops,
            mem_bw=sku.gpus * sku.mem_bw, **kwargs)
    # a 70% power cap slows compute-bound prefill (the profile's pcap rows: prompt x1.3)
    h = out[DGX_H100.hardware]
    out[DGX_H100_PCAP.hardware] = replace(h, flops=h.flops / 1.3)
    return out


def build_cluster(design: Design, perf: PerfDatabase | dict[str, IterationModel],
                  model: LLM = BLOOM_176B, config: MachineConfig = DEFAULT_CONFIG,
                  tensor_parallel: int = 8, prompt_max_pending_tokens: int = 8192):
    """Fresh machines and scheduler for one simulation.

    ``perf`` is a profile database (looked up by each SKU's hardware key) or a dict from
    hardware key to an :class:`IterationModel` (e.g. a RooflineModel for unprofiled hardware).
    Machine order follows the reference's start states (token machines first when prompt and
    token hardware differ), which only matters for tie-breaking.
    """
    if not isinstance(perf, PerfDatabase | dict):
        raise TypeError(f"perf must be a PerfDatabase or a dict of IterationModels, got "
                        f"{type(perf).__name__}")

    def perf_for(sku: MachineSKU) -> IterationModel:
        if isinstance(perf, PerfDatabase):
            return perf.model(model.name, sku.hardware, tensor_parallel)
        if sku.hardware not in perf:
            raise KeyError(f"no performance model for {sku.hardware}; given {sorted(perf)}")
        return perf[sku.hardware]

    if not design.split:
        cls = ChunkedPrefillMachine if design.chunk_size else Machine
        cfg = replace(config, chunk_size=design.chunk_size)
        pm = perf_for(design.prompt_sku)
        machines = [cls(i, design.prompt_sku, model, pm, cfg) for i in range(design.n_prompt)]
        return machines, TokenJSQScheduler(machines)
    pp, tp = perf_for(design.prompt_sku), perf_for(design.token_sku)
    hetero = design.prompt_sku != design.token_sku
    order = ("token", "prompt") if hetero else ("prompt", "token")
    machines: list[Machine] = []
    for tag in order:
        sku, pm, n = ((design.prompt_sku, pp, design.n_prompt) if tag == "prompt"
                      else (design.token_sku, tp, design.n_token))
        machines += [Machine(len(machines) + i, sku, model, pm, config, tag) for i in range(n)]
    sched = MixedPoolScheduler([m for m in machines if m.tag == "prompt"],
                               [m for m in machines if m.tag == "token"],
                               prompt_max_pending_tokens)
    return machines, sched


def simulate_design(design: Design, trace: Trace, perf: PerfDatabase | dict,
                    model: LLM = BLOOM_176B, link: Link = INFINIBAND,
                    config: MachineConfig = DEFAULT_CONFIG,
                    max_outstanding: int | None = None,
                    out: str | Path | None = None) -> SimResult:
    """Simulate ``trace`` on a fresh cluster of ``design`` (see :func:`simulate`; ``out``, a
    new folder, streams the per-request results there instead of keeping them in memory)."""
    machines, sched = build_cluster(design, perf, model, config)
    return simulate(trace, machines, sched, model, link, max_outstanding=max_outstanding,
                    out=out)
