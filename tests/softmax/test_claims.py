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


def ci(lo, hi):
    return {"lo": lo, "hi": hi, "level": 0.95, "method": "bootstrap of medians"}


@pytest.mark.parametrize("ratio, interval, expected", [
    (1.25, ci(1.20, 1.31), "reproduced"),  # reaches the paper's 1.28 ± 0.1
    (1.17, ci(1.12, 1.19), "reproduced"),  # the point misses the band, the interval does not
    (1.10, ci(1.05, 1.15), "direction"),  # clear of 1, short of the band
    (1.03, ci(0.97, 1.08), "within noise"),  # holds 1: a tie is as likely
    (0.98, ci(0.90, 1.00), "within noise"),
    (0.90, ci(0.85, 0.95), "not reproduced"),  # three-pass is faster, beyond the noise
])
def test_two_pass_is_judged_on_its_interval(ratio, interval, expected):
    summary = {KEY: ratio, f"{KEY}_ci95": interval, "backend": "c-avx512f"}
    (j,) = judge(SYSTEM.claims, summary, quick=True)  # quick is the paper's size here
    assert j.verdict == expected
    assert j.interval is not None and "no interval" not in j.reason
    assert "95% CI" in j.ours


def test_without_its_interval_the_judgement_says_so():
    (j,) = judge(SYSTEM.claims, {KEY: 1.25, "backend": "c-avx512f"}, quick=False)
    assert j.verdict == "reproduced" and "no interval" in j.reason
