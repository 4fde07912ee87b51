"""The diffrate claims' verdicts on made-up summaries, on both sides of each threshold."""

import pytest

from paperlab.core.claims import verdicts
from paperlab.diffrate import SYSTEM


def judged(drop=-0.002, vs_uniform=0.01, saved=0.37, speed=1.2, quick=False):
    summary = {"acc_full": 0.5, "acc_diffrate_mid": 0.5 + drop,
               "acc_uniform_same_flops": 0.5 + drop - vs_uniform, "flops_reduction_mid": saved,
               "throughput_ratio_mid": speed}
    return verdicts(SYSTEM.claims, summary, quick)


@pytest.mark.parametrize("drop, expected", [
    (0.0, "reproduced"), (-0.009, "reproduced"), (-0.011, "not reproduced"),
    (-0.0149, "not reproduced"),
])
def test_small_drop(drop, expected):
    assert judged(drop=drop)["small_drop_mid"] == expected


@pytest.mark.parametrize("vs_uniform, expected", [
    (0.02, "reproduced"), (0.0, "reproduced"), (-0.01, "not reproduced"),
])
def test_beats_uniform(vs_uniform, expected):
    assert judged(vs_uniform=vs_uniform)["beats_uniform"] == expected


@pytest.mark.parametrize("saved, expected", [
    (0.37, "reproduced"), (0.33, "reproduced"), (0.41, "reproduced"), (0.3, "direction"),
    (0.6, "direction"), (0.0, "not reproduced"),
])
def test_flops_reduction(saved, expected):
    assert judged(saved=saved)["flops_reduction_mid"] == expected


@pytest.mark.parametrize("speed, expected", [(1.17, "reproduced"), (1.0, "not reproduced"),
                                              (0.57, "not reproduced")])
def test_throughput(speed, expected):
    assert judged(speed=speed)["throughput_mid"] == expected


def test_missing_keys_and_the_quick_size():
    assert set(verdicts(SYSTEM.claims, {}).values()) == {"not measured"}
    assert set(judged(quick=True).values()) == {"direction"}
