"""The mowst claims' verdicts on made-up summaries, on both sides of each threshold."""

import pytest

from paperlab.core.claims import verdicts
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
