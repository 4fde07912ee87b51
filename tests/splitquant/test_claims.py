"""The splitquant claims' verdicts on made-up summaries, on both sides of each threshold, with
and without the 95 % intervals the run writes (older summaries have none)."""

import pytest

from paperlab.core.claims import judge, verdicts
from paperlab.splitquant import SYSTEM

GOOD = {"int2_gain_pts_spam": 3.3, "int2_gain_pts_emotion": 2.1, "fp32_acc_spam": 0.98,
        "int2_acc_spam": 0.90, "int2_split_acc_spam": 0.975}


def judged(quick=False, **changes):
    return verdicts(SYSTEM.claims, {**GOOD, **changes}, quick)


def ci(lo, hi):
    return {"lo": lo, "hi": hi, "level": 0.95, "method": "made up"}


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


@pytest.mark.parametrize("claim, key, paper", [("int2_gain_spam", "int2_gain_pts_spam", 3.3),
                                               ("int2_gain_emotion", "int2_gain_pts_emotion",
                                                2.1)])
@pytest.mark.parametrize("gain, lo, hi, expected", [
    (8.8, 6.0, 11.5, "direction"),  # clear of 0, short of the paper's band
    (5.0, 0.5, 9.5, "reproduced"),  # point outside the band, interval reaches it
    (1.5, -0.5, 3.5, "within noise"),  # holds 0: noise, whatever the point
    (0.0, 0.0, 0.0, "within noise"),  # no discordant example: no effect
    (-4.0, -6.0, -2.0, "not reproduced"),
])
def test_int2_gains_judged_on_their_interval(claim, key, paper, gain, lo, hi, expected):
    summary = {**GOOD, key: gain, f"{key}_ci95": ci(lo, hi)}
    assert verdicts(SYSTEM.claims, summary)[claim] == expected
    judgement = next(j for j in judge(SYSTEM.claims, summary, quick=False)
                     if j.claim.id == claim)
    assert judgement.interval.lo == lo and "no interval" not in judgement.reason


@pytest.mark.parametrize("split, expected", [
    (0.98, "reproduced"), (0.971, "reproduced"), (0.969, "direction"), (0.901, "direction"),
    (0.90, "not reproduced"), (0.85, "not reproduced"),
])
def test_int2_near_fp32(split, expected):
    assert judged(int2_split_acc_spam=split)["int2_near_fp32"] == expected


@pytest.mark.parametrize("gap_ci, gain_ci, expected", [
    ((0.2, 1.5), (5.0, 10.0), "reproduced"),  # the gap's interval reaches 1 pt
    ((1.0, 3.0), (-1.0, 1.0), "reproduced"),  # within a point, gain or not
    ((1.5, 3.0), (5.0, 10.0), "direction"),  # over a point, clearly above plain INT2
    ((1.5, 3.0), (-0.5, 4.0), "within noise"),  # over a point; gain holds 0
    ((6.0, 9.0), (-4.0, -1.0), "not reproduced"),  # below plain INT2
])
def test_int2_near_fp32_judged_on_its_intervals(gap_ci, gain_ci, expected):
    # The points (gap 2.5 pts, gain +7.5) are the same in every case: the intervals decide.
    summary = {**GOOD, "int2_split_acc_spam": 0.955, "int2_gain_pts_spam": 7.5,
               "int2_split_gap_pts_spam": 2.5, "int2_split_gap_pts_spam_ci95": ci(*gap_ci),
               "int2_gain_pts_spam_ci95": ci(*gain_ci)}
    assert verdicts(SYSTEM.claims, summary)["int2_near_fp32"] == expected


def test_missing_keys_and_the_quick_size():
    assert judged(fp32_acc_spam=None)["int2_near_fp32"] == "not measured"
    assert set(verdicts(SYSTEM.claims, {}).values()) == {"not measured"}
    assert set(judged(quick=True).values()) == {"direction"}
    assert all("no interval" in j.reason for j in judge(SYSTEM.claims, GOOD, quick=False))
