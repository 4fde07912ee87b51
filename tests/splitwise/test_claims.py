"""The splitwise claims' verdicts on made-up summaries, on both sides of each threshold."""

import pytest

from paperlab.core.claims import verdicts
from paperlab.splitwise import SYSTEM

RATIO = "throughput_ratio_best_splitwise_vs_baseline_h100"
COST = "cost_ratio_cheapest_splitwise_vs_baseline_h100_at_equal_rate"


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
