"""The mowst claims' verdicts on made-up summaries, on both sides of each threshold."""

import pytest

from paperlab.core.claims import judge, verdicts
from paperlab.core.stats import interval
from paperlab.mowst import SYSTEM

DATASETS = ["a", "b", "c", "d", "e"]  # 10 data-set/backbone pairs
PAIRS = [f"{d}/{g}" for d in DATASETS for g in ("GCN", "SAGE")]


def judged(won=10, gain=1.0, train=1.5, routed=0.9, quick=False):
    summary = {"datasets": DATASETS, "mowst_beats_both_experts": PAIRS[:won],
               "mean_gain_over_gnn_pts": gain, "train_time_ratio_vs_gnn": train,
               "routed_inference_time_ratio_vs_gnn": routed}
    return verdicts(SYSTEM.claims, summary, quick)


@pytest.mark.parametrize("won, expected", [
    (10, "reproduced"), (9, "reproduced"), (8, "direction"), (6, "direction"),
    (5, "not reproduced"), (0, "not reproduced"),
])
def test_beats_both_experts_share_of_pairs(won, expected):
    assert judged(won=won)["beats_both_experts"] == expected


@pytest.mark.parametrize("gain, expected", [(0.1, "reproduced"), (0.0, "not reproduced"),
                                            (-2.0, "not reproduced")])
def test_gain_over_gnn(gain, expected):
    assert judged(gain=gain)["gain_over_gnn"] == expected


@pytest.mark.parametrize("train, routed, expected", [
    (2.0, 1.0, "reproduced"), (1.2, 0.5, "reproduced"), (2.01, 1.01, "not reproduced"),
    (3.2, 1.6, "not reproduced"),
])
def test_costs(train, routed, expected):
    got = judged(train=train, routed=routed)
    assert got["training_cost"] == got["inference_cost"] == expected


def test_missing_keys_and_the_quick_size():
    assert set(verdicts(SYSTEM.claims, {"datasets": DATASETS}).values()) == {"not measured"}
    assert set(judged(quick=True).values()) == {"direction"}


def judged_with(key, lo, hi, quick=False, **figures):
    """The verdict of the claim whose figure is ``key``, given its interval [lo, hi]."""
    summary = {"datasets": DATASETS, "mowst_beats_both_experts": PAIRS[:8],
               "mean_gain_over_gnn_pts": 1.0, "train_time_ratio_vs_gnn": 1.5,
               "routed_inference_time_ratio_vs_gnn": 0.9, **figures,
               f"{key}_ci95": interval(lo, hi, "t over seeds")}
    claim = next(c for c in SYSTEM.claims if c.ci == f"{key}_ci95")
    (j,) = judge([claim], summary, quick)
    return j


@pytest.mark.parametrize("held, lost, expected", [
    (10, 0, "reproduced"), (6, 1, "reproduced"),  # [0.6, 0.9] reaches the paper's band
    (6, 2, "direction"), (5, 0, "within noise"), (0, 0, "within noise"),
    (0, 6, "not reproduced"), (4, 5, "within noise"), (3, 6, "not reproduced"),
])
def test_beats_both_experts_is_judged_on_the_pairs_the_seeds_resolve(held, lost, expected):
    # the share's interval: pairs held (>= both experts beyond the seeds' noise) to not lost
    j = judged_with("mowst_beats_both_experts", held / 10, (10 - lost) / 10,
                    mowst_beats_both_experts=PAIRS[:held])
    assert j.verdict == expected and j.interval is not None


@pytest.mark.parametrize("key, lo, hi, expected", [
    ("mean_gain_over_gnn_pts", 0.2, 1.5, "reproduced"),
    ("mean_gain_over_gnn_pts", -0.3, 1.5, "within noise"),
    ("mean_gain_over_gnn_pts", -1.5, -0.2, "not reproduced"),
    ("train_time_ratio_vs_gnn", 1.2, 1.9, "reproduced"),
    ("train_time_ratio_vs_gnn", 1.2, 2.4, "within noise"),
    ("train_time_ratio_vs_gnn", 2.1, 3.4, "not reproduced"),
    ("routed_inference_time_ratio_vs_gnn", 0.6, 0.95, "reproduced"),
    ("routed_inference_time_ratio_vs_gnn", 0.8, 1.2, "within noise"),
    ("routed_inference_time_ratio_vs_gnn", 1.3, 2.1, "not reproduced"),
])
def test_the_gain_and_costs_are_judged_on_their_intervals(key, lo, hi, expected):
    j = judged_with(key, lo, hi)
    assert j.verdict == expected and "no interval" not in j.reason


def test_noise_is_not_capped_but_a_resolved_claim_is_at_the_quick_size():
    assert judged_with("mean_gain_over_gnn_pts", -0.3, 1.5, quick=True).verdict == "within noise"
    assert judged_with("mean_gain_over_gnn_pts", 0.2, 1.5, quick=True).verdict == "direction"


def test_without_an_interval_the_judgement_says_so():
    (j, *_) = judge(SYSTEM.claims, {"datasets": DATASETS, "mowst_beats_both_experts": PAIRS,
                                    "mean_gain_over_gnn_pts": 1.0,
                                    "train_time_ratio_vs_gnn": 1.5,
                                    "routed_inference_time_ratio_vs_gnn": 0.9,
                                    "mowst_beats_both_experts_ci95": None}, False)
    assert j.verdict == "reproduced" and "no interval" in j.reason
