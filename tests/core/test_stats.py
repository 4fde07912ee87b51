"""The intervals the claims are judged on: agreement with slow references and textbook cases."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
from scipy.stats import binomtest

from paperlab.core import results, stats


def test_proportion_interval_is_clopper_pearson():
    ci = stats.proportion_interval(7, 20)
    ref = binomtest(7, 20).proportion_ci(confidence_level=0.95, method="exact")
    assert ci["lo"] == pytest.approx(ref.low) and ci["hi"] == pytest.approx(ref.high)
    assert stats.proportion_interval(0, 10)["lo"] == 0.0
    assert stats.proportion_interval(10, 10)["hi"] == 1.0
    with pytest.raises(ValueError):
        stats.proportion_interval(11, 10)


def test_paired_difference_interval_agrees_with_mcnemar():
    rng = np.random.default_rng(0)
    for _ in range(50):
        n = int(rng.integers(20, 300))
        a = rng.random(n) < rng.uniform(0.3, 0.9)
        b = np.where(rng.random(n) < 0.8, a, rng.random(n) < 0.5)
        ci = stats.paired_difference_interval(a, b)
        diff = a.mean() - b.mean()
        assert ci["lo"] - 1e-12 <= diff <= ci["hi"] + 1e-12
        p = stats.mcnemar(a, b)["p"]
        # The exact test and the exact interval are different constructions; they agree
        # except at the edge of significance.
        if p < 0.03:
            assert not ci["lo"] <= 0.0 <= ci["hi"]
        if p > 0.07:
            assert ci["lo"] <= 0.0 <= ci["hi"]


def test_paired_difference_interval_edges():
    a = np.array([True] * 10)
    assert stats.paired_difference_interval(a, a)["lo"] == 0.0  # no discordant pair
    # 3 of 1,000 examples apart, all one way: the README's PiToMe/ToMe example is within noise.
    b = a.copy()
    b[:3] = False
    big_a, big_b = np.concatenate([a, np.zeros(990, bool)]), np.concatenate([b, np.zeros(990,
                                                                                           bool)])
    ci = stats.paired_difference_interval(big_a, big_b, scale=100)
    assert ci["lo"] < 0.0 < ci["hi"] and "3 discordant of 1000" in ci["method"]
    many = stats.paired_difference_interval(np.ones(40, bool), np.zeros(40, bool))
    assert many["lo"] == pytest.approx(2 * 0.025 ** (1 / 40) - 1) and many["hi"] == 1.0


def test_mean_interval_is_student_t():
    ci = stats.mean_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    half = 2.7764451 * np.std([1, 2, 3, 4, 5], ddof=1) / np.sqrt(5)  # t(0.975, 4)
    assert ci["lo"] == pytest.approx(3 - half) and ci["hi"] == pytest.approx(3 + half)
    assert stats.mean_interval([1.0]) is None
    with pytest.raises(ValueError, match="NaN"):
        stats.mean_interval([1.0, float("nan")])


def test_bootstrap_interval_is_seeded_and_covers_the_mean():
    x = np.random.default_rng(1).normal(0.5, 1.0, 400)
    a = stats.bootstrap_interval(np.mean, x, seed=3)
    assert a == stats.bootstrap_interval(np.mean, x, seed=3)
    assert a["lo"] < x.mean() < a["hi"]
    assert a["hi"] - a["lo"] == pytest.approx(2 * 1.96 / 20, rel=0.2)
    with pytest.raises(ValueError, match="paired"):
        stats.bootstrap_interval(np.mean, x, x[:10])


def test_ratio_interval_of_timings():
    rng = np.random.default_rng(2)
    fast, slow = 1.0 + 0.01 * rng.random(15), 2.0 + 0.02 * rng.random(15)
    ci = stats.ratio_interval(slow, fast)
    assert 1.9 < ci["lo"] <= ci["hi"] < 2.1
    with pytest.raises(ValueError):
        stats.ratio_interval([1.0], [1.0, 2.0])
    with pytest.raises(ValueError):
        stats.ratio_interval([1.0, 0.0], [1.0, 2.0])


def test_interval_checks_its_ends():
    with pytest.raises(ValueError):
        stats.interval(2.0, 1.0, "x")
    with pytest.raises(ValueError):
        stats.interval(0.0, float("nan"), "x")


def test_results_files_get_the_users_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = results.atomic_write_text(tmp_path / "a.json", "{}")
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        os.umask(0o002)
        path = results.atomic_write_text(tmp_path / "b.md", "x")
        assert stat.S_IMODE(path.stat().st_mode) == 0o664
    finally:
        os.umask(old)


def test_errorbars_widen_the_axis_to_hold_every_interval():
    from paperlab.core import plots

    fig, ax = plots.figure()
    ax.plot([0, 1], [0.282, 0.285])
    ax.set_ylim(0.281, 0.286)  # the narrow axis that made noise look like a trend
    plots.errorbars(ax, [0, 1], [0.282, 0.285],
                    [stats.proportion_interval(282, 1000), None], label="x")
    lo, hi = ax.get_ylim()
    ci = stats.proportion_interval(282, 1000)
    assert lo <= ci["lo"] and hi >= ci["hi"]
    legend = plots.legend_outside(ax)
    assert legend.get_bbox_to_anchor() is not None
    with pytest.raises(ValueError, match="one length"):
        plots.errorbars(ax, [0], [1, 2], [None])
    fig.clf()


def test_crossed_bootstrap_resamples_examples_and_heads():
    rng = np.random.default_rng(0)
    one = rng.random((60, 1)) < 0.7
    # Identical heads: resampling them changes nothing, so only the examples' noise is left.
    same = stats.crossed_bootstrap_interval(np.mean, np.repeat(one, 3, 1))
    alone = stats.crossed_bootstrap_interval(np.mean, one)
    assert (same["lo"], same["hi"]) == (alone["lo"], alone["hi"])
    assert alone["lo"] < one.mean() < alone["hi"] and "3 trained models" in same["method"]
    # Heads that disagree on every example: the heads' spread is the whole interval.
    split_heads = np.stack([np.ones(60, bool), np.zeros(60, bool)], 1)
    spread = stats.crossed_bootstrap_interval(np.mean, split_heads)
    assert (spread["lo"], spread["hi"]) == (0.0, 1.0)
    gain = stats.crossed_bootstrap_interval(lambda a, b: 100 * (a.mean() - b.mean()), one, one)
    assert (gain["lo"], gain["hi"]) == (0.0, 0.0)
    with pytest.raises(ValueError, match="expected"):
        stats.crossed_bootstrap_interval(lambda a, b: 0.0, one, np.repeat(one, 2, 1))
