"""``paperlab splitwise simulate`` and ``provision``: your own request trace on a cluster.

``simulate`` runs a trace (splitwise-sim's CSV schema, the Azure 2023 trace's, or a seeded
Poisson trace by rate, duration and token sizes) through one or more cluster designs and writes
every request's latencies and a summary per design: TTFT, TBT and E2E at p50/p90/p99, the nine
slowdown SLOs, throughput, power and cost. ``provision`` runs the reproduction's iso-power
search (:func:`paperlab.splitwise.experiment.iso_power_search`) with the token sizes of your
trace under your power budget, on the job map (``--workers``, ``--ray-address``), and writes
every design searched and the cost-vs-throughput Pareto plot.

Power is the paper's provisioned-power scale (per machine: DGX-H100 44, DGX-A100 24.8,
power-capped DGX-H100 30.8) given in kW by pinning a DGX-H100 at its 10.2 kW TDP (the
reference simulator's SKU), so a DGX-A100 counts 5.75 kW. Cost is the paper's relative cost
(per machine: DGX-A100 2.21, DGX-H100 4.76).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from paperlab.core.data import require
from paperlab.core.jobs import JobError
from paperlab.core.progress import track
from paperlab.core.results import (
    _jsonable,  # NaN/inf as null: valid JSON
    atomic_write_text,
    markdown_table,
)
from paperlab.splitwise.cluster import (
    SPLIT_SKUS,
    Design,
    baseline_design,
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
from paperlab.splitwise.perf_model import IterationModel, PerfDatabase
from paperlab.splitwise.provisioning import SearchSpace
from paperlab.splitwise.simulator import SimResult
from paperlab.splitwise.trace import Trace, poisson_trace, read_azure_csv, read_trace_csv

KW_PER_POWER_UNIT = 10.2 / DGX_H100.power  # a DGX-H100 at its 10.2 kW TDP
SKUS = {"A100": DGX_A100, "H100": DGX_H100, "H100cap": DGX_H100_PCAP}
MODELS = {m.name: m for m in (BLOOM_176B, LLAMA2_70B)}
LINKS = {"infiniband": INFINIBAND, "ethernet": ETHERNET}
KV_MODES = ("serialized", "layerwise", "reference_overlap")
PERF_PATH = "splitwise/splitwise_sim/perf_model.csv"
AZURE_PATH = "splitwise/azure_llm_2023/AzureLLMInferenceTrace_{}.csv"
HOW = ("The profile perf_model.csv of github.com/Mutinifni/splitwise-sim and the Azure LLM "
       "inference trace 2023 are read from <data root>/splitwise/ (or give --perf-model PATH).")
DESIGN_FORMS = ("Baseline-A100:N, Baseline-H100:N, Baseline-H100-chunked512:N, "
                "Splitwise-{AA,HH,HA,HHcap}:P:T, or machine counts NxSKU or PxSKU+TxSKU "
                f"(SKU one of {', '.join(SKUS)}; prompt pool + token pool)")
SUMMARY_COLUMNS = ("design", "machines", "power_kw", "cost", "requests", "completed",
                   "ttft_p50_s", "ttft_p90_s", "ttft_p99_s", "tbt_p50_s", "tbt_p90_s",
                   "tbt_p99_s", "e2e_p50_s", "e2e_p90_s", "e2e_p99_s", "slo_met", "slos_met",
                   "throughput_rps")
SIMULATE_EXAMPLE = """example:
  paperlab splitwise simulate --trace requests.csv --design Baseline-H100:4 \\
      --design Splitwise-HA:2:3 --design 3xH100+2xH100cap --out sim/
    requests.csv: splitwise-sim's trace schema, one request per row, a header line with
      request_id,request_type,application_id,arrival_timestamp,batch_size,prompt_size,token_size
      (arrival in seconds, prompt and output tokens; the Azure trace's
      TIMESTAMP,ContextTokens,GeneratedTokens is read too)
    writes sim/requests.csv (every request's TTFT, TBT, E2E, KV transfer, slowdowns) and
      sim/summary.csv (one row per design), and prints the summary table
  paperlab splitwise simulate --rate 20 --duration 60 --sizes code --design Splitwise-HH:3:1
    a seeded Poisson trace at 20 req/s for 60 s, sizes drawn from the Azure code trace
    (--sizes conv, a trace CSV of your own, or fixed sizes PROMPTxOUTPUT such as 1500x20)
"""
PROVISION_EXAMPLE = """example:
  paperlab splitwise provision --trace requests.csv --power-kw 102 --workers 4 --out prov/
    every Baseline and Splitwise design that fits 102 kW (10 DGX-H100s), each one's highest
    request rate meeting all nine SLOs on seeded Poisson traces with requests.csv's token
    sizes; writes prov/designs.csv (every design searched) and prov/pareto.png (cost vs
    throughput, with the Pareto front); --ray-address auto runs the search on a Ray cluster
"""


def power_kw(units: float) -> float:
    """The paper's power units (e.g. ``Design.power``) in kW (see the module docstring)."""
    return units * KW_PER_POWER_UNIT


def _sku(text: str, spec: str) -> MachineSKU:
    by_lower = {k.lower(): v for k, v in SKUS.items()}
    if text.lower() not in by_lower:
        raise ValueError(f"--design {spec!r}: unknown machine {text!r}; expected one of "
                         f"{', '.join(SKUS)}")
    return by_lower[text.lower()]


def _sku_name(sku: MachineSKU) -> str:
    return next(k for k, v in SKUS.items() if v == sku)


def parse_design(spec: str) -> Design:
    """A cluster from its command-line form (see :data:`DESIGN_FORMS`).

    Raises:
        ValueError: naming the form that was expected.
    """
    counts = re.fullmatch(r"(\d+)x(\w+)(?:\+(\d+)x(\w+))?", spec.strip())
    if counts:
        n_p, p_name, n_t, t_name = counts.groups()
        prompt = _sku(p_name, spec)
        if n_t is None:
            if prompt in (DGX_A100, DGX_H100):
                return baseline_design(_sku_name(prompt), int(n_p))
            return Design(f"Colocated-{_sku_name(prompt)}", prompt, int(n_p))
        token = _sku(t_name, spec)
        kind = next((k for k, skus in SPLIT_SKUS.items() if skus == (prompt, token)), None)
        if kind is not None:
            return splitwise_design(kind, int(n_p), int(n_t))
        return Design(f"Split-{_sku_name(prompt)}+{_sku_name(token)}", prompt, int(n_p), token,
                      int(n_t))
    named = re.fullmatch(r"(baseline-(a100|h100)(?:-chunked(\d+))?|splitwise-(\w+))"
                         r":(\d+)(?::(\d+))?", spec.strip(), flags=re.IGNORECASE)
    if named is None:
        raise ValueError(f"--design {spec!r}: expected {DESIGN_FORMS}")
    _, hardware, chunk, kind, n_p, n_t = named.groups()
    if hardware is not None:
        if n_t is not None:
            raise ValueError(f"--design {spec!r}: a baseline takes one machine count, "
                             f"Baseline-{hardware.upper()}:N")
        return baseline_design(hardware.upper(), int(n_p), int(chunk) if chunk else None)
    kinds = {k.lower(): k for k in SPLIT_SKUS}
    if kind.lower() not in kinds:
        raise ValueError(f"--design {spec!r}: unknown Splitwise design {kind!r}; expected one "
                         f"of {', '.join(kinds.values())}")
    if n_t is None:
        raise ValueError(f"--design {spec!r}: a Splitwise design takes prompt and token machine "
                         f"counts, Splitwise-{kinds[kind.lower()]}:P:T")
    return splitwise_design(kinds[kind.lower()], int(n_p), int(n_t))


def _existing(path: Path, what: str) -> Path:
    """``path`` if it is a file, else FileNotFoundError naming ``what``."""
    if not path.is_file():
        raise FileNotFoundError(f"no {what} at {path}" + (" (a folder)" if path.is_dir() else ""))
    return path


def load_perf(path: Path | None, data_root: Path | None) -> tuple[PerfDatabase, Path]:
    """The profile at ``path``, else the data root's ``perf_model.csv``."""
    path = _existing(path, "performance profile") if path else require(PERF_PATH, HOW, data_root)
    try:
        return PerfDatabase.from_csv(path), path
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a UTF-8 text CSV file ({exc.reason} at byte "
                         f"{exc.start})") from None


def check_profiles(db: PerfDatabase, path: Path, model: LLM,
                   needs: Sequence[tuple[MachineSKU, str]]) -> None:
    """ValueError naming the first machine of ``needs`` (machine, what needs it) that the
    profile has no rows of ``model`` at tensor parallel 8 for."""
    profiled = {(m, hw) for m, hw, tp in db.keys() if tp == 8}
    for sku, what in needs:
        if (model.name, sku.hardware) not in profiled:
            raise ValueError(f"{path}: no profile of {model.name} on {sku.hardware} at tensor "
                             f"parallel 8 (needed by {what}); profiled: {sorted(profiled)}")


def _needs(designs: Sequence[Design]) -> list[tuple[MachineSKU, str]]:
    """The machines ``designs`` run on, and DGX-A100 for the SLOs' alone latencies."""
    return [(sku, d.label) for d in designs for sku in (d.prompt_sku, d.token_sku) if sku] + \
        [(DGX_A100, "the SLOs, which compare with a request alone on a DGX-A100")]


def size_source(spec: str, data_root: Path | None) -> Trace:
    """The token sizes a synthetic trace resamples: ``code`` or ``conv`` (the Azure 2023
    traces), fixed ``PROMPTxOUTPUT`` sizes, or a trace CSV."""
    if spec in ("code", "conv"):
        return read_azure_csv(require(AZURE_PATH.format(spec), HOW, data_root))
    fixed = re.fullmatch(r"(\d+)x(\d+)", spec)
    if fixed and not Path(spec).exists():
        prompt, output = (np.array([int(n)]) for n in fixed.groups())
        return Trace(np.zeros(1), prompt, output, np.zeros(1, dtype=np.int64), name=spec)
    return read_trace_csv(_existing(Path(spec), "trace file for --sizes"))


def _slos_met(slo: dict[str, Any]) -> str:
    """How many of the nine SLOs hold (none when requests were left unfinished)."""
    met = sum(slo.get(f"{m}_slowdown_p{q}", math.inf) < limit
              for (m, q), limit in SLO_LIMITS.items())
    return f"{met}/{len(SLO_LIMITS)}"


def _number(x: float) -> str:
    """A CSV cell: 9 significant digits, empty for NaN (a request that did not finish)."""
    return "" if math.isnan(x) else f"{x:.9g}"


def _request_rows(label: str, res: SimResult, alone: IterationModel) -> list[str]:
    """CSV lines, one per request, of one design's run."""
    done = np.isfinite(res.e2e_s)
    slow = {k: np.full(len(done), np.nan) for k in ("ttft", "tbt", "e2e")}
    if done.any():
        for k, v in slowdowns(res, alone).items():
            slow[k][done] = v
    cells = zip(res.request_id.tolist(), res.arrival_s.tolist(), res.prompt_tokens.tolist(),
                res.output_tokens.tolist(), res.ttft_s.tolist(), res.tbt_s.tolist(),
                res.e2e_s.tolist(), res.kv_transfer_s.tolist(), slow["ttft"].tolist(),
                slow["tbt"].tolist(), slow["e2e"].tolist(), strict=True)
    name = _cell(label)
    return [f"{name},{rid},{t!r},{p},{o}," + ",".join(_number(x) for x in rest)
            for rid, t, p, o, *rest in cells]


def simulate_trace(trace: Trace, designs: Sequence[Design], db: PerfDatabase, model: LLM,
                   link: Link, out: Path) -> dict[str, Any]:
    """Simulate ``trace`` on each design; write ``requests.csv`` and ``summary.csv`` into
    ``out``; return the summary (trace, one row per design, the files written)."""
    alone = db.model(model.name, DGX_A100.hardware, 8)
    rows, lines = [], []
    for design in track(designs, f"simulating {len(trace):,} requests"):
        res = simulate_design(design, trace, db, model, link)
        lat, slo = latency_summary(res), slo_report(res, alone)
        row: dict[str, Any] = {"design": design.label, "machines": design.num_machines,
                               "power_kw": round(power_kw(design.power), 2),
                               "cost": round(design.cost, 2), **lat, **slo,
                               "slos_met": _slos_met(slo)}
        rows.append(row)
        lines += _request_rows(design.label, res, alone)
    out.mkdir(parents=True, exist_ok=True)
    requests_path = atomic_write_text(out / "requests.csv", "\n".join([
        "design,request_id,arrival_s,prompt_tokens,output_tokens,ttft_s,tbt_s,e2e_s,"
        "kv_transfer_s,ttft_slowdown,tbt_slowdown,e2e_slowdown", *lines]) + "\n")
    summary_path = _write_csv(out / "summary.csv", rows)
    return {"trace": _describe(trace), "model": model.name, "designs": rows,
            "files": [str(requests_path), str(summary_path)]}


def _write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    """``rows`` as a CSV (the union of their keys as columns), written atomically."""
    keys = list(dict.fromkeys(k for row in rows for k in row))
    return atomic_write_text(path, "\n".join(
        [",".join(keys)] + [",".join(_cell(row.get(k)) for k in keys) for row in rows]) + "\n")


def _cell(value: Any) -> str:
    """A CSV cell: numbers as :func:`_number`, text quoted when it holds a comma."""
    if isinstance(value, float):
        return _number(value)
    text = "" if value is None else str(value)
    return f'"{text}"' if "," in text else text


def _describe(trace: Trace) -> dict[str, Any]:
    """Size, span, mean rate and mean token counts of a trace."""
    span = trace.duration_s
    return {"name": trace.name, "requests": len(trace), "duration_s": span,
            "rate_rps": (len(trace) - 1) / span if span > 0 else math.nan,
            "prompt_tokens_mean": float(trace.prompt_tokens.mean()),
            "output_tokens_mean": float(trace.output_tokens.mean())}


def _trace_line(t: dict[str, Any]) -> str:
    return (f"{t['name']}: {t['requests']:,} requests over {t['duration_s']:.1f} s "
            f"({t['rate_rps']:.3g} req/s), mean {t['prompt_tokens_mean']:.0f} prompt and "
            f"{t['output_tokens_mean']:.0f} output tokens")


def _table(rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> str:
    return markdown_table([{k: row.get(k) for k in keys} for row in rows])


def _common(parser: argparse.ArgumentParser, example: str) -> None:
    parser.epilog = example
    parser.add_argument("--perf-model", type=Path, default=None, metavar="PATH",
                        help="profile CSV in splitwise-sim's perf_model.csv format (default: the "
                        "data root's splitwise/splitwise_sim/perf_model.csv)")
    parser.add_argument("--data-root", type=Path, default=None, metavar="PATH",
                        help="data folder to find the profile and the Azure traces in")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="output folder (default: the trace's name + _splitwise)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def _positive(kind: type) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = kind(text)
        if not (math.isfinite(value) and value > 0):
            raise ValueError(text)
        return value

    parse.__name__ = f"positive {kind.__name__}"
    return parse


def simulate(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """``paperlab splitwise simulate``: adds the arguments, returns the handler."""
    _common(parser, SIMULATE_EXAMPLE)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--trace", type=Path, metavar="FILE",
                        help="request trace CSV (splitwise-sim's schema or the Azure trace's)")
    source.add_argument("--rate", type=_positive(float), metavar="REQ_PER_S",
                        help="instead of --trace: a seeded Poisson trace at this rate")
    parser.add_argument("--duration", type=_positive(float), default=60.0, metavar="S",
                        help="with --rate: seconds of arrivals (default 60)")
    parser.add_argument("--sizes", default="code", metavar="SIZES",
                        help="with --rate: token sizes drawn from 'code' or 'conv' (the Azure "
                        "2023 traces), a trace CSV, or fixed PROMPTxOUTPUT (default code)")
    parser.add_argument("--seed", type=int, default=0, help="with --rate: trace seed")
    parser.add_argument("--design", action="append", required=True, metavar="DESIGN",
                        help=f"a cluster, repeatable: {DESIGN_FORMS}")
    parser.add_argument("--model", choices=sorted(MODELS), default=BLOOM_176B.name,
                        help="the served LLM (default bloom-176b, the paper's)")
    parser.add_argument("--link", choices=sorted(LINKS), default="infiniband",
                        help="KV-cache link of split designs (default infiniband, 200 GiB/s)")
    parser.add_argument("--kv-transfer", choices=KV_MODES, default="serialized",
                        help="KV transfer: after the prompt (serialized, the reference's), "
                        "layer by layer, or the reference's 10x-bandwidth overlap")

    def handle(args: argparse.Namespace) -> int:
        designs = [parse_design(spec) for spec in args.design]
        model = MODELS[args.model]
        db, perf_path = load_perf(args.perf_model, args.data_root)
        check_profiles(db, perf_path, model, _needs(designs))
        if args.trace is not None:
            trace = read_trace_csv(_existing(args.trace, "trace file"))
            out = args.out or args.trace.with_name(args.trace.stem + "_splitwise")
        else:
            trace = poisson_trace(size_source(args.sizes, args.data_root), args.rate,
                                  args.duration, seed=args.seed)
            if len(trace) == 0:
                raise ValueError(f"--rate {args.rate:g} for --duration {args.duration:g} s "
                                 "drew no requests; raise either")
            out = args.out or Path(trace.name + "_splitwise")
        base = LINKS[args.link]
        link = Link(base.bandwidth, base.latency_s, mode=args.kv_transfer)
        summary = simulate_trace(trace, designs, db, model, link, out)
        if args.json:
            print(json.dumps(_jsonable(summary), indent=2))
            return 0
        print(_trace_line(summary["trace"]))
        print(_table(summary["designs"], SUMMARY_COLUMNS), end="")
        for path in summary["files"]:
            print(f"wrote {path}")
        return 0

    return handle


def rate_grid(budget_h100: float) -> tuple[float, ...]:
    """Default candidate rates: up to 7.5 req/s per DGX-H100 of power (the reproduction's
    grids: 80 req/s for 10, 300 for 40), about 60 steps of a 1-2-5 size."""
    top = 7.5 * budget_h100
    exp = math.floor(math.log10(top / 60))
    step = max(m * 10.0**exp for m in (1, 2, 5) if m * 10.0**exp <= top / 60)
    return tuple(round(k * step, 9) for k in range(1, math.floor(top / step + 1e-9) + 1))


def parse_rates(text: str) -> tuple[float, ...]:
    """``START:STOP:STEP`` (inclusive) as candidate rates (argparse's ``type``)."""
    try:
        start, stop, step = (float(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected START:STOP:STEP in req/s, e.g. 2:80:2, got "
                                         f"{text!r}") from None
    if not (0 < start <= stop and step > 0 and math.isfinite(stop)):
        raise argparse.ArgumentTypeError(f"needs 0 < START <= STOP and STEP > 0, got {text!r}")
    n = math.floor((stop - start) / step + 1e-9) + 1
    if n > 10_000:
        raise argparse.ArgumentTypeError(f"{text!r} makes {n:,} rates; at most 10,000")
    return tuple(round(start + k * step, 9) for k in range(n))


def provision_search(source: Trace, db: PerfDatabase, budget: float, rates: tuple[float, ...],
                     duration_s: float, seed: int, step: int, chunk: int | None, workers: int,
                     ray_address: str | None, out: Path) -> dict[str, Any]:
    """The iso-power search over ``budget`` (the paper's power units) with ``source``'s token
    sizes; writes ``designs.csv`` and ``pareto.png`` into ``out``; returns the summary."""
    # the experiment module brings scipy.stats (1.5 s to import): only for this verb
    from paperlab.splitwise.experiment import iso_power_search, pareto_front, plot_pareto

    space = SearchSpace(rates=rates, duration_s=duration_s, seed=seed)
    try:
        best, searched, _ = iso_power_search(source, db, budget, space, step=step,
                                             refine=step > 1, chunk=chunk, workers=workers,
                                             ray_address=ray_address, what=source.name)
    except JobError as exc:  # a bad input fails every job the same way: say it as such
        if isinstance(exc.__cause__, ValueError | TypeError):
            raise ValueError(str(exc)) from None
        raise
    front = set(pareto_front([(d.cost, r) for d, r in searched.values()]))
    trace_rate = _describe(source)["rate_rps"]
    baseline = best["Baseline-H100"][1]
    rows = [{"design": d.label, "kind": d.name, "prompt_machines": d.n_prompt,
             "token_machines": d.n_token, "power_kw": round(power_kw(d.power), 2),
             "cost": round(d.cost, 2), "max_rate_rps": r,
             "vs_baseline_h100": r / baseline if baseline > 0 else math.nan,
             "best_of_kind": best[d.name][0] == d, "pareto": (d.cost, r) in front,
             "at_top_of_grid": r == rates[-1], "serves_trace_rate": r >= trace_rate}
            for d, r in sorted(searched.values(), key=lambda dr: (dr[0].name, dr[0].n_prompt))]
    designs_path = _write_csv(out / "designs.csv", rows)
    plot = plot_pareto(searched, out / "pareto.png",
                       f"{source.name}: cost vs throughput, {power_kw(budget):.1f} kW")
    return {"trace": _describe(source), "power_kw": power_kw(budget),
            "dgx_h100s_of_power": budget / DGX_H100.power,
            "rates_rps": {"from": rates[0], "to": rates[-1], "count": len(rates)},
            "duration_s": duration_s, "seed": seed,
            "best": [row for row in rows if row["best_of_kind"]], "designs": rows,
            "files": [str(designs_path), str(plot)]}


def provision(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """``paperlab splitwise provision``: adds the arguments, returns the handler."""
    _common(parser, PROVISION_EXAMPLE)
    parser.add_argument("--trace", type=Path, required=True, metavar="FILE",
                        help="request trace CSV whose token sizes the searched Poisson traces "
                        "draw from (splitwise-sim's schema or the Azure trace's)")
    budget = parser.add_mutually_exclusive_group(required=True)
    budget.add_argument("--power-kw", type=_positive(float), metavar="KW",
                        help="power budget in kW (a DGX-H100 is 10.2 kW)")
    budget.add_argument("--power-h100", type=_positive(float), metavar="N",
                        help="power budget as N DGX-H100s' worth (the paper's: 40)")
    parser.add_argument("--rates", type=parse_rates, default=None, metavar="START:STOP:STEP",
                        help="candidate request rates, req/s (default: up to 7.5 per DGX-H100 "
                        "of power in about 60 steps)")
    parser.add_argument("--duration", type=_positive(float), default=120.0, metavar="S",
                        help="seconds of each generated trace (default 120, the paper's)")
    parser.add_argument("--seed", type=int, default=0, help="trace seed (default 0)")
    parser.add_argument("--split-step", type=_positive(int), default=1, metavar="N",
                        help="try every N-th prompt machine count, then every count within N "
                        "of each kind's best (default 1: all)")
    parser.add_argument("--chunk-size", type=int, default=512, metavar="TOKENS",
                        help="also search Baseline-H100 with chunked prefill of this many "
                        "tokens (default 512; 0: leave it out)")
    parser.add_argument("--workers", type=_positive(int), default=1, metavar="N",
                        help="local worker processes (default 1: in this process)")
    parser.add_argument("--ray-address", default=None, metavar="ADDR",
                        help="run the search on a Ray cluster (auto, ray://HOST:PORT)")

    def handle(args: argparse.Namespace) -> int:
        budget = (args.power_kw / KW_PER_POWER_UNIT if args.power_kw is not None
                  else args.power_h100 * DGX_H100.power)
        if budget < DGX_H100.power - 1e-9:
            raise ValueError(f"a power budget of {power_kw(budget):.3g} kW is less than one "
                             f"DGX-H100 ({power_kw(DGX_H100.power):.3g} kW), the search's "
                             "reference design")
        if args.chunk_size < 0:
            raise ValueError(f"--chunk-size must be >= 0 tokens, got {args.chunk_size}")
        if args.ray_address and importlib.util.find_spec("ray") is None:
            raise ValueError("--ray-address needs ray: pip install 'ray[default]'")
        source = read_trace_csv(_existing(args.trace, "trace file"))
        db, perf_path = load_perf(args.perf_model, args.data_root)
        check_profiles(db, perf_path, BLOOM_176B,
                       [(sku, "the search") for sku in SKUS.values()])
        rates = args.rates or rate_grid(budget / DGX_H100.power)
        out = args.out or args.trace.with_name(args.trace.stem + "_splitwise")
        summary = provision_search(source, db, budget, rates, args.duration, args.seed,
                                   args.split_step, args.chunk_size or None, args.workers,
                                   args.ray_address, out)
        if args.json:
            print(json.dumps(_jsonable(summary), indent=2))
            return 0
        print(_trace_line(summary["trace"]))
        grid = summary["rates_rps"]
        print(f"budget {summary['power_kw']:.1f} kW ({summary['dgx_h100s_of_power']:.3g} "
              f"DGX-H100s of power); {len(summary['designs'])} designs searched at "
              f"{grid['from']:g}-{grid['to']:g} req/s ({grid['count']} rates), "
              f"{summary['duration_s']:g} s traces; best of each kind:")
        print(_table(summary["best"], ("design", "power_kw", "cost", "max_rate_rps",
                                       "vs_baseline_h100", "pareto")), end="")
        if any(row["at_top_of_grid"] for row in summary["designs"]):
            print(f"note: some designs meet the SLOs at the top rate, {grid['to']:g} req/s; "
                  "raise --rates to find their limit")
        for path in summary["files"]:
            print(f"wrote {path}")
        return 0

    return handle
