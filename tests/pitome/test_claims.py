"""The pitome claims' verdicts on made-up summaries, on both sides of each threshold."""

import pytest

from paperlab.core.claims import verdicts
from paperlab.pitome import SYSTEM


def judged(saved=0.5, gap=0.021, speed=1.5, quick=False):
    summary = {"flops_reduction_at_0.9": saved, "acc_tome_at_matched_flops": 0.5,
               "acc_pitome_at_0.9": 0.5 + gap, "throughput_ratio_at_0.9": speed}
    return verdicts(SYSTEM.claims, summary, quick)


@pytest.mark.parametrize("saved, expected", [
    (0.5, "reproduced"), (0.41, "reproduced"), (0.59, "reproduced"), (0.257, "direction"),
    (0.65, "direction"), (0.0, "not reproduced"),
])
def test_flops_saved(saved, expected):
    assert judged(saved=saved)["flops_saved"] == expected


@pytest.mark.parametrize("gap, expected", [
    (0.021, "reproduced"), (0.012, "reproduced"), (0.03, "reproduced"), (0.005, "direction"),
    (0.0, "not reproduced"), (-0.004, "not reproduced"),
])
def test_beats_tome(gap, expected):
    assert judged(gap=gap)["beats_tome"] == expected


@pytest.mark.parametrize("speed, expected", [
    (1.2, "reproduced"), (1.0, "not reproduced"), (0.83, "not reproduced"),
])
def test_faster(speed, expected):
    assert judged(speed=speed)["faster"] == expected


def test_missing_keys_and_the_quick_size():
    assert set(verdicts(SYSTEM.claims, {}).values()) == {"not measured"}
    assert set(judged(quick=True).values()) == {"direction"}
