import pytest

from paperlab.core.data import DataNotFoundError
from paperlab.core.results import RunContext
from paperlab.hierarchy.experiment import (
    BenchConfig,
    Config,
    SweepConfig,
    bench,
    run,
    summarise_sweep,
)
from paperlab.hierarchy.theory import chernoff_hellinger


def _records(config, exact):
    """Fabricated fits: ``exact(method, a1, a2, level)`` says which are exact."""
    out = []
    for a1, a2 in config.cells():
        for method in ("bottom_up", "top_down"):
            row = {"a1": a1, "a2": a2, "rep": 0, "method": method, "seconds": 0.0,
                   "n_clusters": 8, "tree_recovered": True}
            for level in (1, 2, 3):
                ok = exact(method, a1, a2, level)
                row[f"accuracy_l{level}"] = 1.0 if ok else 0.9
                row[f"ami_l{level}"] = 1.0 if ok else 0.5
            out.append(row)
    return out


def test_summary_agrees_fully_with_a_theory_following_fit():
    config = SweepConfig(a1_values=(42, 45, 60), a2_values=(50, 70, 90), repetitions=1)

    def theory(method, a1, a2, level):
        return bool(chernoff_hellinger((40, a1, a2, 100)).recoverable(method)[level - 1])

    rows, summary, _ = summarise_sweep(config, _records(config, theory))
    assert summary["theory_agreement"] == 1.0
    ci = summary["theory_agreement_ci95"]
    assert ci["lo"] < 1.0 == ci["hi"] and "Clopper-Pearson" in ci["method"]
    # (42, 50) is the one cell where theory gives bottom-up levels top-down cannot reach
    assert summary["levels_where_bottom_up_beats_top_down"] == [1, 2, 3]
    assert {r["method"] for r in rows} == {"bottom_up", "top_down"}


def test_summary_counts_disagreement():
    config = SweepConfig(a1_values=(45,), a2_values=(50,), repetitions=1)
    rows, summary, _ = summarise_sweep(config, _records(config, lambda *_: True))
    # theory at (45, 50): bottom-up 1,1,1; top-down 1,0,0 -> 2 of 6 predictions wrong
    assert summary["theory_agreement"] == pytest.approx(4 / 6)
    ci = summary["theory_agreement_ci95"]  # Clopper-Pearson for 4 of 6 trials
    assert ci["lo"] == pytest.approx(0.2228, abs=1e-3) and ci["hi"] == pytest.approx(0.9567,
                                                                                      abs=1e-3)
    assert summary["levels_where_bottom_up_beats_top_down"] == []


TINY = Config(SweepConfig(a1_values=(60,), a2_values=(90,), n0=100, repetitions=1),
              BenchConfig(sizes=(300, 400), paris_max_n=300))


def test_bench_at_toy_size(tmp_path):
    result = bench(RunContext("hierarchy", quick=False, seed=0, out_dir=tmp_path), TINY)
    sizes = {(r["method"], r["N"]) for r in result.results}
    assert ("paris", 296) in sizes and ("paris", 400) not in sizes  # paris_max_n holds
    assert {("bottom_up", 400), ("top_down", 400)} <= sizes
    assert result.summary["largest_N"] == 400 and result.summary["largest_N_with_paris"] == 296
    at_296 = {r["method"]: r for r in result.results if r["N"] == 296}
    assert result.summary["bottom_up_speedup_vs_paris"] == pytest.approx(
        at_296["paris"]["seconds"] / at_296["bottom_up"]["seconds"])
    assert (tmp_path / "hierarchy_bench.png").exists()



def test_run_at_toy_size(tmp_path):
    """run end to end through its Config: a one-cell sweep and the small real network."""
    tiny = Config(SweepConfig(a1_values=(60,), a2_values=(90,), n0=100, repetitions=1),
                  BenchConfig(sizes=(300,)), networks=("high_school_2013",))
    try:
        result = run(RunContext("hierarchy", quick=False, seed=0, out_dir=tmp_path), tiny)
    except DataNotFoundError:
        pytest.skip("hierarchy data not staged")
    methods = {r["method"] for r in result.results if r.get("setting") == "high_school_2013"}
    assert {"bottom_up", "top_down", "paris"} <= methods
    assert set(result.summary["inversions_bottom_up_real"]) == {"high_school_2013"}
    assert result.summary["inversions_bottom_up_real"]["high_school_2013"] == 0
    assert "separation_gap_at_largest_n" not in result.summary  # scaling=None: not run
    assert (tmp_path / "hierarchy_sweep.json").exists()


def test_config_rejects_an_unknown_network():
    with pytest.raises(ValueError, match="unknown networks"):
        Config(SweepConfig(a1_values=(60,), a2_values=(90,)), BenchConfig(sizes=(300,)),
               networks=("karate",))


def test_bench_with_scaling_sizes_times_the_stages(tmp_path):
    from dataclasses import replace

    cfg = replace(TINY, bench=replace(TINY.bench, scaling_sizes=(400, 800)))
    result = bench(RunContext("hierarchy", quick=False, seed=0, out_dir=tmp_path), cfg)
    assert [r["N"] for r in result.results] == [400, 800]
    for r in result.results:
        stages = {f"seconds_{s}" for s in ("generate", "validate", "spectral", "kmeans",
                                            "linkage")}
        assert stages <= set(r) and all(r[k] >= 0 for k in stages)
        assert r["seconds_fit"] == pytest.approx(sum(r[k] for k in stages
                                                     if k != "seconds_generate"))
        assert 0 <= r["leaf_accuracy_lo"] <= r["leaf_accuracy"] <= r["leaf_accuracy_hi"] <= 1
        assert r["misplaced_nodes"] == round((1 - r["leaf_accuracy"]) * r["N"])
        assert r["process_peak_rss_MB"] > r["graph_MB"] > 0
    summary = result.summary
    assert summary["largest_N"] == 800 and summary["scaling_sizes"] == [400, 800]
    assert isinstance(summary["scaling_exponent_fit"], float)
    ci = summary["leaf_accuracy_at_largest_N_ci95"]
    assert ci["lo"] <= summary["leaf_accuracy_at_largest_N"] <= ci["hi"]
    assert "one graph" in ci["method"]
    assert (tmp_path / "hierarchy_bench_scaling.png").exists()
    one = replace(TINY, bench=replace(TINY.bench, scaling_sizes=(400,)))
    summary = bench(RunContext("hierarchy", quick=False, out_dir=tmp_path), one).summary
    assert summary["scaling_exponent_fit"] is None  # no slope from one size


def test_scaling_sizes_option_parses_and_reaches_the_bench_config(tmp_path):
    from paperlab import cli
    from paperlab.core.config import resolve_config
    from paperlab.hierarchy import SYSTEM

    option = next(o for o in SYSTEM.options if o.name == "scaling_sizes")
    assert option.parse("300000,100000") == (100000, 300000)
    for bad in ("x", "100", "400,400", "400,,800", "1e5", "-400", "200000000", "4.5e3"):
        with pytest.raises(ValueError):
            option.parse(bad)
    ctx = RunContext("hierarchy", quick=True, out_dir=tmp_path,
                     options={"scaling_sizes": (400, 800), "workers": 2})
    cfg = resolve_config(ctx, Config)
    assert cfg.bench.scaling_sizes == (400, 800) and cfg.sweep == Config.quick().sweep
    ctx = RunContext("hierarchy", quick=True, out_dir=tmp_path, options={"workers": 2})
    assert resolve_config(ctx, Config) == Config.quick()  # off unless asked for
    with pytest.raises(SystemExit) as exit_:
        cli.main(["bench", "hierarchy", "--scaling-sizes", "100,x", "--out", str(tmp_path)])
    assert exit_.value.code == 2
