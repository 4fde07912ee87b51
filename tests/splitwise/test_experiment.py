"""run and bench end to end at a toy size (staged Splitwise data), through their Config."""

from __future__ import annotations

import pytest

from paperlab.core.data import DataNotFoundError
from paperlab.core.results import RunContext
from paperlab.splitwise.cluster import splitwise_design
from paperlab.splitwise.experiment import BenchConfig, Config, bench, run

TINY = Config(budget_h100=2, traces=("code",), duration_s=10.0, rates=(1.0, 2.0, 4.0, 8.0),
              split_step=1, refine=False, curve_points=2, workers=1, ray_address=None,
              bench=BenchConfig(big_requests=500, repeats=1,
                                designs=(splitwise_design("HA", 35, 8),)),
              reference=None)


def _call(entry, tmp_path):
    try:
        return entry(RunContext("splitwise", quick=False, seed=0, out_dir=tmp_path), TINY)
    except DataNotFoundError:
        pytest.skip("Splitwise data not staged")


def test_run_at_toy_size(tmp_path):
    result = _call(run, tmp_path)
    designs = {r["design"] for r in result.results}
    assert {"Baseline-A100", "Baseline-H100", "Splitwise-HA"} <= designs
    h100 = next(r for r in result.results if r["design"] == "Baseline-H100")
    assert result.summary["max_rate_baseline_h100"] == h100["max_rate_rps"]
    assert result.summary["reference_compat_max_abs_err_s"] < 1e-6
    assert (tmp_path / "splitwise_latency_vs_rate_code.png").exists()


def test_headline_ratios_are_measured_on_further_trace_seeds(tmp_path):
    from dataclasses import replace

    # big enough that Splitwise and Baseline-H100 both meet the SLOs on every trace seed
    cfg = replace(TINY, budget_h100=4, duration_s=20.0, rates=(2.0, 4.0, 6.0, 8.0),
                  trace_seeds=4)
    try:
        summary = run(RunContext("splitwise", quick=False, seed=0, out_dir=tmp_path), cfg).summary
    except DataNotFoundError:
        pytest.skip("Splitwise data not staged")
    for key, fresh_only in (("throughput_ratio_best_splitwise_vs_baseline_h100", True),
                            ("cost_ratio_cheapest_splitwise_vs_baseline_h100_at_equal_rate",
                             False)):
        by_seed = summary[f"{key}_by_trace_seed"]
        assert len(by_seed) == 4 and by_seed[0] == summary[key]  # the first is the search's
        mean, ci = summary[f"{key}_trace_mean"], summary[f"{key}_trace_mean_ci95"]
        averaged = by_seed[1:] if fresh_only else by_seed
        assert mean == pytest.approx(sum(averaged) / len(averaged))
        assert ci["lo"] <= mean <= ci["hi"] and f"t over {len(averaged)} " in ci["method"]


def test_bench_without_reference(tmp_path):
    result = _call(bench, tmp_path)
    assert result.summary["big_trace_requests"] == pytest.approx(500, rel=0.3)
    assert not any(k.startswith("speedup_vs_reference") for k in result.summary)
    assert any("reference not run" in note for note in result.notes)


def test_bench_streams_the_big_trace_and_checks_it_against_memory(tmp_path):
    """A big trace longer than the check: the check trace runs in memory and streamed (equal
    request by request), the big one streamed only; no streamed file is left behind."""
    from dataclasses import replace

    cfg = replace(TINY, bench=replace(TINY.bench, big_requests=3000, check_requests=1000))
    try:
        result = bench(RunContext("splitwise", quick=False, seed=0, out_dir=tmp_path), cfg)
    except DataNotFoundError:
        pytest.skip("Splitwise data not staged")
    s = result.summary
    assert s["streamed_equals_in_memory"] is True and s["streamed_summary_max_rel_diff"] < 1e-12
    assert s["check_trace_requests"] == pytest.approx(1000, rel=0.2)
    assert s["big_trace_requests"] == pytest.approx(3000, rel=0.2)
    assert s["big_trace_latency"]["ttft_p50_s"] <= s["big_trace_latency"]["ttft_p99_s"]
    ways = [(r["method"].split(", ")[-1], r["trace"]) for r in result.results
            if r["trace"].startswith("poisson70_")]
    check, big = (f"poisson70_{s[k]}" for k in ("check_trace_requests", "big_trace_requests"))
    assert ways == [("in memory", check), ("streamed to disk", check), ("streamed to disk", big)]
    assert not any(tmp_path.iterdir())  # the streamed files were temporary


def test_requests_option_sets_the_big_trace(tmp_path):
    from paperlab import cli
    from paperlab.core.config import resolve_config

    ctx = RunContext("splitwise", quick=True, out_dir=tmp_path,
                     options={"requests": 10_000_000, "reference": tmp_path, "workers": 1})
    cfg = resolve_config(ctx, Config)
    assert cfg.bench.big_requests == 10_000_000 and cfg.reference == tmp_path
    assert cfg.workers == 1 and cfg.bench.designs == Config.quick().bench.designs
    for bad in ("10", "x", "1e7"):
        with pytest.raises(SystemExit) as exit_:
            cli.main(["bench", "splitwise", "--requests", bad, "--out", str(tmp_path)])
        assert exit_.value.code == 2


def test_options_fill_the_config(tmp_path, monkeypatch):
    from paperlab.core.config import resolve_config

    monkeypatch.delenv("PAPERLAB_SPLITWISE_REFERENCE", raising=False)
    ctx = RunContext("splitwise", quick=True, out_dir=tmp_path,
                     options={"reference": tmp_path, "ray_address": None})
    cfg = resolve_config(ctx, Config)
    assert cfg.reference == tmp_path and cfg.bench == Config.quick().bench
    monkeypatch.setenv("PAPERLAB_SPLITWISE_REFERENCE", "/from/env")
    assert Config.quick().reference == "/from/env"  # the flag's fallback


def test_run_without_reference_outputs_skips_the_check_with_a_note(tmp_path):
    """The anchor runs are splitwise-sim's outputs (not downloadable): a fetched data root lacks
    them, and run must still work, saying the reference check was skipped."""
    import shutil

    from paperlab.core.data import data_root

    staged = data_root() / "splitwise"
    if not staged.is_dir():
        pytest.skip("Splitwise data not staged")
    root = tmp_path / "data"
    for part in ("splitwise_sim", "azure_llm_2023"):
        shutil.copytree(staged / part, root / "splitwise" / part)
    ctx = RunContext("splitwise", quick=False, seed=0, out_dir=tmp_path, data_root=root)
    result = run(ctx, TINY)
    assert "reference_compat_max_abs_err_s" not in result.summary
    assert any("reference check skipped" in note and "anchor_runs" in note
               for note in result.notes)
