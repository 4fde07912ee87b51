"""The zloss claims' verdicts on made-up summaries, on both sides of each threshold."""

import pytest

from paperlab.core.claims import judge, verdicts
from paperlab.zloss import SYSTEM


def judged(speedup=300.0, z=0.33, softmax=0.32, quick=False):
    summary = {"speedup_vs_softmax_at_793k": speedup, "top10_acc_zloss": z,
               "top10_acc_softmax": softmax}
    return verdicts(SYSTEM.claims, summary, quick)


@pytest.mark.parametrize("speedup, expected", [
    (343.0, "reproduced"), (40.0, "reproduced"), (39.9, "direction"), (1.01, "direction"),
    (1.0, "not reproduced"), (0.5, "not reproduced"),
])
def test_output_layer_speedup_at_least_the_papers(speedup, expected):
    assert judged(speedup=speedup)["output_layer_speedup"] == expected
    # the quick sweep times the paper's D too
    assert judged(speedup=speedup, quick=True)["output_layer_speedup"] == expected


@pytest.mark.parametrize("z, expected", [(0.321, "reproduced"), (0.32, "not reproduced"),
                                         (0.318, "not reproduced")])
def test_topk_ordering(z, expected):
    assert judged(z=z)["topk_vs_softmax"] == expected


def test_missing_keys_and_the_quick_size():
    assert judged(quick=True)["topk_vs_softmax"] == "direction"
    # a sweep that stops short of D = 793,471 writes no speedup_vs_softmax_at_793k
    assert verdicts(SYSTEM.claims, {"top10_acc_zloss": 0.3, "top10_acc_softmax": 0.2})[
        "output_layer_speedup"] == "not measured"


@pytest.mark.parametrize("zloss, expected", [
    (0.380, "reproduced"), (0.361, "reproduced"), (0.360, "not reproduced"),
    (0.326, "not reproduced"),
])
def test_topk_at_equal_time(zloss, expected):
    summary = {"top10_zloss_at_softmax_time": zloss, "top10_softmax_curve_end": 0.360}
    assert verdicts(SYSTEM.claims, summary)["topk_at_equal_time"] == expected
    assert verdicts(SYSTEM.claims, summary, True)["topk_at_equal_time"] in (
        "direction", "not reproduced")
    assert verdicts(SYSTEM.claims, {})["topk_at_equal_time"] == "not measured"


def ci(lo, hi, method="exact paired (McNemar), 300 discordant of 3000 examples"):
    return {"lo": lo, "hi": hi, "level": 0.95, "method": method}


@pytest.mark.parametrize("speedup, interval, expected", [
    (261.0, ci(250.0, 270.0, "bootstrap of medians"), "reproduced"),
    (38.0, ci(35.0, 41.0, "bootstrap of medians"), "reproduced"),  # reaches 40
    (30.0, ci(28.0, 33.0, "bootstrap of medians"), "direction"),  # faster, short of 40x
    (1.05, ci(0.9, 1.2, "bootstrap of medians"), "within noise"),  # holds 1
    (0.8, ci(0.7, 0.9, "bootstrap of medians"), "not reproduced"),
])
def test_output_layer_speedup_on_its_interval(speedup, interval, expected):
    summary = {"speedup_vs_softmax_at_793k": speedup, "speedup_vs_softmax_at_793k_ci95": interval}
    for quick in (False, True):  # the quick sweep times the paper's D
        (j,) = [j for j in judge(SYSTEM.claims, summary, quick)
                if j.claim.id == "output_layer_speedup"]
        assert j.verdict == expected and "no interval" not in j.reason


@pytest.mark.parametrize("z, interval, expected", [
    (0.340, ci(0.008, 0.032), "reproduced"),  # the whole interval above 0
    (0.318, ci(-0.035, -0.008), "not reproduced"),  # the whole interval below 0
    (0.325, ci(-0.010, 0.020), "within noise"),  # holds 0
    (0.320, ci(0.0, 0.0), "within noise"),  # identical predictions on every example
])
def test_topk_ordering_on_its_paired_interval(z, interval, expected):
    summary = {"top10_acc_zloss": z, "top10_acc_softmax": 0.32,
               "top10_zloss_minus_softmax_ci95": interval}
    (j,) = [j for j in judge(SYSTEM.claims, summary, False) if j.claim.id == "topk_vs_softmax"]
    assert j.verdict == expected and j.interval is not None
    quick = verdicts(SYSTEM.claims, summary, True)["topk_vs_softmax"]
    assert quick == ("direction" if expected == "reproduced" else expected)


@pytest.mark.parametrize("zloss, interval, expected", [
    (0.359, ci(0.016, 0.042), "reproduced"),
    (0.345, ci(-0.031, 0.017), "within noise"),  # the quick run's 0.345 vs 0.352
    (0.317, ci(-0.020, -0.006), "not reproduced"),
])
def test_topk_at_equal_time_on_its_paired_interval(zloss, interval, expected):
    summary = {"top10_zloss_at_softmax_time": zloss, "top10_softmax_curve_end": 0.330,
               "top10_zloss_at_softmax_time_minus_softmax_ci95": interval}
    assert verdicts(SYSTEM.claims, summary)["topk_at_equal_time"] == expected


def test_a_claim_without_its_interval_says_so():
    (j,) = [j for j in judge(SYSTEM.claims, {"top10_acc_zloss": 0.33, "top10_acc_softmax": 0.32},
                             False) if j.claim.id == "topk_vs_softmax"]
    assert j.verdict == "reproduced" and "no interval" in j.reason
