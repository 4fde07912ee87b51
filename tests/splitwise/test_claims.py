"""The splitwise claims' verdicts on made-up summaries, on both sides of each threshold."""

import pytest

from paperlab.core.claims import judge, verdicts
from paperlab.core.stats import interval
from paperlab.splitwise import SYSTEM

RATIO = "throughput_ratio_best_splitwise_vs_baseline_h100_trace_mean"
COST = "cost_ratio_cheapest_splitwise_vs_baseline_h100_at_equal_rate_trace_mean"


@pytest.mark.parametrize("ratio, expected", [
    (2.35, "reproduced"), (2.11, "reproduced"), (2.59, "reproduced"), (2.09, "direction"),
    (3.0, "direction"), (1.01, "direction"), (1.0, "not reproduced"), (0.8, "not reproduced"),
])
def test_iso_power_throughput(ratio, expected):
    assert verdicts(SYSTEM.claims, {RATIO: ratio, COST: 0.8})["iso_power_throughput"] == expected


@pytest.mark.parametrize("cost, expected", [
    (0.8, "reproduced"), (0.7, "reproduced"), (0.9, "reproduced"), (0.69, "direction"),
    (0.58, "direction"), (0.99, "direction"), (1.0, "not reproduced"), (1.2, "not reproduced"),
])
def test_iso_rate_cost(cost, expected):
    assert verdicts(SYSTEM.claims, {RATIO: 2.35, COST: cost})["iso_rate_cost"] == expected


def test_missing_keys_and_the_quick_size():
    assert set(verdicts(SYSTEM.claims, {}).values()) == {"not measured"}
    # the quick size is a quarter of the paper's power budget: never more than direction
    assert set(verdicts(SYSTEM.claims, {RATIO: 2.35, COST: 0.8}, quick=True).values()) == {
        "direction"}


def _judged(key, point, lo, hi, quick=False):
    summary = {RATIO: 2.0, COST: 0.8, key: point,
               f"{key}_ci95": interval(lo, hi, "t over trace seeds")}
    return {j.claim.id: j for j in judge(SYSTEM.claims, summary, quick)}


@pytest.mark.parametrize("point, lo, hi, expected", [
    (2.3, 2.0, 2.6, "reproduced"), (1.63, 1.46, 1.8, "direction"), (2.0, 1.8, 2.2, "reproduced"),
    (1.2, 0.8, 1.6, "within noise"), (0.7, 0.5, 0.9, "not reproduced"),
])
def test_iso_power_throughput_on_its_trace_seed_interval(point, lo, hi, expected):
    j = _judged(RATIO, point, lo, hi)["iso_power_throughput"]
    assert j.verdict == expected and "trace seeds" in j.ours and "no interval" not in j.reason


@pytest.mark.parametrize("point, lo, hi, expected", [
    (0.75, 0.7, 0.8, "reproduced"), (0.6, 0.5, 0.69, "direction"),
    (0.9, 0.75, 1.05, "within noise"), (1.2, 1.1, 1.3, "not reproduced"),
])
def test_iso_rate_cost_on_its_trace_seed_interval(point, lo, hi, expected):
    assert _judged(COST, point, lo, hi)["iso_rate_cost"].verdict == expected
    quick = _judged(COST, point, lo, hi, quick=True)["iso_rate_cost"].verdict
    assert quick == ("direction" if expected == "reproduced" else expected)


def test_one_trace_seed_has_no_interval_and_says_so():
    judged = {j.claim.id: j for j in judge(SYSTEM.claims, {RATIO: 2.0, COST: 0.8}, False)}
    assert all("no interval" in j.reason for j in judged.values())
