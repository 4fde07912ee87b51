"""The alp claims' verdicts on made-up summaries, on both sides of each (sign) threshold."""

import pytest

from paperlab.alp import SYSTEM
from paperlab.core.claims import judge, verdicts

KEYS = {"alp_beats_none": "mean_gain_alp_vs_none_pts",
        "alp_beats_eda": "mean_gain_alp_vs_eda_pts",
        "augmentation_split": "split_strategy_gain_pts"}


@pytest.mark.parametrize("claim", sorted(KEYS))
@pytest.mark.parametrize("gain, expected", [
    (2.5, "reproduced"), (0.01, "reproduced"), (0.0, "not reproduced"),
    (-0.01, "not reproduced"), (-2.2, "not reproduced"),
])
def test_each_claim_is_the_sign_of_its_gain(claim, gain, expected):
    summary = dict.fromkeys(KEYS.values(), 1.0) | {KEYS[claim]: gain}
    assert verdicts(SYSTEM.claims, summary)[claim] == expected


def test_missing_keys_and_the_quick_size():
    assert set(verdicts(SYSTEM.claims, {}).values()) == {"not measured"}
    summary = dict.fromkeys(KEYS.values(), 1.0)
    assert set(verdicts(SYSTEM.claims, summary, True).values()) == {"direction"}
    assert verdicts(SYSTEM.claims, summary | {KEYS["alp_beats_eda"]: -1.0},
                    True)["alp_beats_eda"] == "not reproduced"


def ci(lo, hi):
    return {"lo": lo, "hi": hi, "level": 0.95,
            "method": "t over 20 paired (data set, k, seed) differences"}


@pytest.mark.parametrize("claim", sorted(KEYS))
@pytest.mark.parametrize("gain, interval, expected", [
    (1.9, ci(0.4, 3.4), "reproduced"),  # the whole interval above 0
    (0.5, ci(-1.0, 2.0), "within noise"),  # holds 0
    (-0.17, ci(-2.9, 2.6), "within noise"),
    (0.3, ci(0.0, 0.6), "within noise"),  # touches 0
    (-2.2, ci(-3.5, -0.9), "not reproduced"),  # the whole interval below 0
])
def test_each_claim_is_judged_on_its_interval(claim, gain, interval, expected):
    summary = dict.fromkeys(KEYS.values(), 1.0) | {KEYS[claim]: gain,
                                                     f"{KEYS[claim]}_ci95": interval}
    (j,) = [j for j in judge(SYSTEM.claims, summary, False) if j.claim.id == claim]
    assert j.verdict == expected and j.interval is not None and "no interval" not in j.reason
    quick = verdicts(SYSTEM.claims, summary, True)[claim]
    assert quick == ("direction" if expected == "reproduced" else expected)
