"""The softmax claim's verdicts on made-up summaries, on both sides of each threshold."""

import pytest

from paperlab.core.claims import judge, verdicts
from paperlab.softmax import SYSTEM

KEY = "ratio_two_pass_vs_best_three_pass"


@pytest.mark.parametrize("ratio, expected", [
    (1.28, "reproduced"), (1.19, "reproduced"), (1.37, "reproduced"), (1.17, "direction"),
    (1.5, "direction"), (1.01, "direction"), (1.0, "not reproduced"), (0.9, "not reproduced"),
])
def test_two_pass_vs_three_pass(ratio, expected):
    assert verdicts(SYSTEM.claims, {KEY: ratio, "backend": "c-avx512f"}) == {
        "two_pass_vs_three_pass": expected}


def test_quick_reaches_the_papers_size():
    (j,) = judge(SYSTEM.claims, {KEY: 1.25, "backend": "c-avx2-fma"}, quick=True)
    assert j.verdict == "reproduced" and j.ours == "1.25x (c-avx2-fma)"


def test_numpy_fallback_and_missing_keys_are_not_measured():
    (j,) = judge(SYSTEM.claims, {KEY: 1.25, "backend": "numpy-fallback"}, quick=False)
    assert j.verdict == "not measured" and "C kernels" in j.reason
    assert verdicts(SYSTEM.claims, {KEY: 1.25}) == {"two_pass_vs_three_pass": "not measured"}
