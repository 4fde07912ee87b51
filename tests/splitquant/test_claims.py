"""The splitquant claims' verdicts on made-up summaries, on both sides of each threshold."""

import pytest

from paperlab.core.claims import verdicts
from paperlab.splitquant import SYSTEM

GOOD = {"int2_gain_pts_spam": 3.3, "int2_gain_pts_emotion": 2.1, "fp32_acc_spam": 0.98,
        "int2_acc_spam": 0.90, "int2_split_acc_spam": 0.975}


def judged(quick=False, **changes):
    return verdicts(SYSTEM.claims, {**GOOD, **changes}, quick)


@pytest.mark.parametrize("key, claim, paper", [("int2_gain_pts_spam", "int2_gain_spam", 3.3),
                                               ("int2_gain_pts_emotion", "int2_gain_emotion",
                                                2.1)])
@pytest.mark.parametrize("offset, expected", [
    (0.0, "reproduced"), (0.99, "reproduced"), (-0.99, "reproduced"), (1.01, "direction"),
    (40.0, "direction"), (-1.01, "direction"),
])
def test_int2_gains_near_the_paper(key, claim, paper, offset, expected):
    assert judged(**{key: paper + offset})[claim] == expected


@pytest.mark.parametrize("gain, expected", [(0.01, "direction"), (0.0, "not reproduced"),
                                            (-5.0, "not reproduced")])
def test_int2_gain_sign(gain, expected):
    assert judged(int2_gain_pts_spam=gain)["int2_gain_spam"] == expected
    assert judged(int2_gain_pts_emotion=gain)["int2_gain_emotion"] == expected


@pytest.mark.parametrize("split, expected", [
    (0.98, "reproduced"), (0.971, "reproduced"), (0.969, "direction"), (0.901, "direction"),
    (0.90, "not reproduced"), (0.85, "not reproduced"),
])
def test_int2_near_fp32(split, expected):
    assert judged(int2_split_acc_spam=split)["int2_near_fp32"] == expected


def test_missing_keys_and_the_quick_size():
    assert judged(fp32_acc_spam=None)["int2_near_fp32"] == "not measured"
    assert set(verdicts(SYSTEM.claims, {}).values()) == {"not measured"}
    assert set(judged(quick=True).values()) == {"direction"}
