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
