"""The zloss claims' verdicts on made-up summaries, on both sides of each threshold."""

import pytest

from paperlab.core.claims import verdicts
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
