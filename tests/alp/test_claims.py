"""The alp claims' verdicts on made-up summaries, on both sides of each (sign) threshold."""

import pytest

from paperlab.alp import SYSTEM
from paperlab.core.claims import verdicts

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
