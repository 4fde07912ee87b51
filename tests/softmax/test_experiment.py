"""The experiment's pieces on tiny sizes: every contender computes softmax, rows are sane."""

from __future__ import annotations

import numpy as np
import pytest

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


def test_sweep_point_rows():
    cfg = experiment.ReproConfig(log2_sizes=(10,), batched=(), repeats=2, min_elements=4096)
    rows = experiment._sweep_point(1, 1024, np.random.default_rng(0), cfg)
    methods = [r["method"] for r in rows]
    assert methods[:4] == ["two_pass", "three_pass_recompute", "three_pass_reload", "online"]
    assert experiment.READ_PASS in methods and "torch.softmax (out=)" in methods
    for r in rows:
        assert r["shape"] == "1x2^10" and r["elements"] == 1024
        assert r["ms_cpu"] >= 0 and r["ms_wall"] > 0 and r["gbps"] > 0
    read = next(r for r in rows if r["method"] == experiment.READ_PASS)
    assert read["fraction_of_read_bw"] == pytest.approx(1.0)


def test_configs_cover_the_issue_sizes():
    for cfg in (experiment.ReproConfig.quick(), experiment.ReproConfig.full()):
        assert cfg.log2_sizes[0] == 10 and cfg.log2_sizes[-1] == 26 and cfg.batched
    for cfg in (experiment.BenchConfig.quick(), experiment.BenchConfig.full()):
        assert all(r * n == 1 << 26 for r, n in cfg.shapes) and cfg.threads == (1, 2)
