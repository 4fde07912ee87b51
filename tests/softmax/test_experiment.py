"""The experiment's pieces on tiny sizes: every contender computes softmax, rows are sane."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from paperlab.core.results import RunContext
from paperlab.core.seed import torch_threads
from paperlab.softmax import experiment
from tests.softmax.reference import assert_close, reference


@pytest.mark.parametrize("threads", [1, 2])
def test_every_bench_contender_computes_softmax(threads):
    x = np.random.default_rng(0).standard_normal((3, 500)).astype(np.float32)
    expected = reference(x)
    names = list(experiment._bench_contenders(x, np.empty_like(x), threads))
    assert len(names) == (8 if threads == 1 else 6)
    for name in names:
        y = np.empty_like(x)  # a fresh output per contender, so none passes on another's
        result = experiment._bench_contenders(x, y, threads)[name]()
        assert_close(y if result is None else np.asarray(result), expected)
        assert name.endswith(f"[{threads}t]")


TINY = experiment.Config(
    experiment.SweepConfig(log2_sizes=(10, 12), batched=((4, 1024),), repeats=2,
                           min_elements=4096),
    experiment.BenchConfig(shapes=((1, 4096), (4, 1024)), repeats=1))


def test_run_at_toy_size(tmp_path):
    with torch_threads(2):  # run pins one thread, then gives this count back
        result = experiment.run(RunContext("softmax", quick=False, out_dir=tmp_path), TINY)
        assert torch.get_num_threads() == 2
    rows = result.results
    assert {r["shape"] for r in rows} == {"1x2^10", "1x2^12", "4x1024"}
    methods = [r["method"] for r in rows if r["shape"] == "1x2^10"]
    assert methods[:4] == ["two_pass", "three_pass_recompute", "three_pass_reload", "online"]
    assert experiment.READ_PASS in methods and "torch.softmax (out=)" in methods
    read = next(r for r in rows if r["method"] == experiment.READ_PASS)
    assert read["fraction_of_read_bw"] == pytest.approx(1.0)
    two = next(r for r in rows if r["shape"] == "1x2^12" and r["method"] == "two_pass")
    online = next(r for r in rows if r["shape"] == "1x2^12" and r["method"] == "online")
    assert result.summary["size"] == "1x2^12"
    assert result.summary["ratio_two_pass_vs_online"] == pytest.approx(
        online["ms_cpu"] / two["ms_cpu"])
    assert len(two["ms_cpu_repeats"]) == 2 and two["ms_cpu"] == pytest.approx(
        np.median(two["ms_cpu_repeats"]))
    ci = result.summary["ratio_two_pass_vs_best_three_pass_ci95"]
    assert ci["lo"] <= result.summary["ratio_two_pass_vs_best_three_pass"] <= ci["hi"]
    assert ci["level"] == 0.95 and "2 and 2 repeats" in ci["method"]
    assert (tmp_path / "softmax_throughput.png").exists()


def test_one_round_has_no_interval():
    rows = [{"shape": "1x2^10", "method": m, "ms_cpu": t, "ms_cpu_repeats": [t]}
            for m, t in (("two_pass", 1.0), ("three_pass_recompute", 1.2),
                         ("three_pass_reload", 1.3))]
    assert experiment.best_three_pass_interval(rows, "1x2^10") is None
    for r in rows:
        r["ms_cpu_repeats"] = [r["ms_cpu"], 1.1 * r["ms_cpu"]]
    ci = experiment.best_three_pass_interval(rows, "1x2^10")
    # recompute (the faster three-pass) over two-pass: medians 1.26 / 1.05 = 1.2; the
    # resampled medians stay within each side's rounds, so at most 1.32 / 1.0 (reload: 1.43)
    assert ci["lo"] <= 1.2 <= ci["hi"] <= 1.32 + 1e-9


def test_bench_at_toy_size(tmp_path):
    with torch_threads(2):  # the torch contenders set 1 and 2 threads; the count comes back
        result = experiment.bench(RunContext("softmax", quick=False, out_dir=tmp_path), TINY)
        assert torch.get_num_threads() == 2
    assert set(result.summary) == {"backend", "1x4096", "4x1024"}
    assert {r["method"] for r in result.results} >= {"two_pass [1t]", "two_pass [2t]",
                                                     "scipy.special.softmax [1t]"}


def test_configs_cover_the_issue_sizes():
    for cfg in (experiment.Config.quick(), experiment.Config.full()):
        assert cfg.sweep.log2_sizes[0] == 10 and cfg.sweep.log2_sizes[-1] == 26
        assert cfg.sweep.batched
        assert all(r * n == 1 << 26 for r, n in cfg.bench.shapes) and cfg.bench.threads == (1, 2)
