"""The pitome claims' verdicts on made-up summaries, on both sides of each threshold, with and
without the figures' intervals."""

import pytest

from paperlab.core.claims import judge, verdicts
from paperlab.pitome import SYSTEM

GAP_CI, SPEED_CI = "acc_pitome_minus_tome_at_matched_flops_ci95", "throughput_ratio_at_0.9_ci95"


def summary(saved=0.5, gap=0.021, speed=1.5, **intervals):
    """A run's summary; ``intervals`` maps a summary key to its ``(lo, hi)``."""
    out = {"flops_reduction_at_0.9": saved, "acc_tome_at_matched_flops": 0.5,
           "acc_pitome_at_0.9": 0.5 + gap, "throughput_ratio_at_0.9": speed}
    out.update({key: {"lo": lo, "hi": hi, "level": 0.95, "method": "made up"}
                for key, (lo, hi) in intervals.items()})
    return out


def judged(quick=False, **kwargs):
    return verdicts(SYSTEM.claims, summary(**kwargs), quick)


@pytest.mark.parametrize("saved, expected", [
    (0.5, "reproduced"), (0.41, "reproduced"), (0.59, "reproduced"), (0.257, "direction"),
    (0.65, "direction"), (0.0, "not reproduced"),
])
def test_flops_saved(saved, expected):
    assert judged(saved=saved)["flops_saved"] == expected


def test_flops_saved_is_an_exact_count():
    flops = next(j for j in judge(SYSTEM.claims, summary(), False) if j.claim.id == "flops_saved")
    assert flops.claim.exact and flops.reason == ""


@pytest.mark.parametrize("gap, expected", [
    (0.021, "reproduced"), (0.012, "reproduced"), (0.03, "reproduced"), (0.005, "direction"),
    (0.0, "not reproduced"), (-0.004, "not reproduced"),
])
def test_beats_tome_without_an_interval(gap, expected):
    assert judged(gap=gap)["beats_tome"] == expected


@pytest.mark.parametrize("lo, hi, expected", [
    (-0.01, 0.03, "within noise"),  # holds 0: the quick size's 1,000 images cannot tell
    (-0.004, 0.0, "within noise"),
    (0.005, 0.015, "reproduced"),  # reaches the paper's 0.021 ± 0.01
    (0.025, 0.05, "reproduced"),
    (0.001, 0.009, "direction"),  # clear of 0, short of the paper's band
    (0.032, 0.05, "direction"),  # clear of 0, beyond the paper's band
    (-0.03, -0.001, "not reproduced"),
])
def test_beats_tome_is_judged_on_the_paired_interval(lo, hi, expected):
    # the point (+2.1 pts, the paper's) is the same throughout: the interval decides
    assert judged(**{GAP_CI: (lo, hi)})["beats_tome"] == expected


@pytest.mark.parametrize("speed, expected", [
    (1.2, "reproduced"), (1.0, "not reproduced"), (0.83, "not reproduced"),
])
def test_faster_without_an_interval(speed, expected):
    assert judged(speed=speed)["faster"] == expected


@pytest.mark.parametrize("lo, hi, expected", [
    (0.9, 1.1, "within noise"), (1.0, 1.3, "within noise"), (1.02, 1.3, "reproduced"),
    (0.6, 0.95, "not reproduced"),
])
def test_faster_is_judged_on_the_timing_interval(lo, hi, expected):
    assert judged(speed=1.05, **{SPEED_CI: (lo, hi)})["faster"] == expected


def test_the_judgement_shows_the_interval_or_says_there_is_none():
    with_ci = {j.claim.id: j for j in judge(SYSTEM.claims, summary(**{GAP_CI: (0.01, 0.03)}),
                                            False)}
    assert with_ci["beats_tome"].interval.lo == 0.01 and with_ci["beats_tome"].reason == ""
    assert "95% CI [0.01, 0.03]" in with_ci["beats_tome"].ours
    assert with_ci["faster"].reason == "no interval: one run, no paired test"


def test_missing_keys_and_the_quick_size():
    assert set(verdicts(SYSTEM.claims, {}).values()) == {"not measured"}
    vision = ("flops_saved", "beats_tome", "faster")
    assert {judged(quick=True)[c] for c in vision} == {"direction"}
    noisy = judged(quick=True, **{GAP_CI: (-0.01, 0.03), SPEED_CI: (0.9, 1.6)})
    assert noisy["beats_tome"] == noisy["faster"] == "within noise"


def text_summary(gap, ci=None, saved=0.5, name="sst2"):
    out = {f"text_{name}_acc_pitome": 0.8 + gap, f"text_{name}_acc_tome_matched": 0.8,
           "text_sst2_flops_reduction": saved}
    if ci is not None:
        out[f"text_{name}_acc_pitome_minus_tome_matched_ci95"] = {
            "lo": ci[0], "hi": ci[1], "level": 0.95, "method": "made up"}
    return out


@pytest.mark.parametrize("name", ["sst2", "rotten_tomatoes"])
@pytest.mark.parametrize("gap, ci, expected", [
    (0.01, (0.002, 0.02), "reproduced"),
    (0.01, (-0.002, 0.02), "within noise"),
    (-0.01, (-0.02, 0.0), "within noise"),
    (-0.01, (-0.02, -0.001), "not reproduced"),
    (0.01, None, "reproduced"),  # an older record without the interval: the point decides
])
def test_text_beats_tome(name, gap, ci, expected):
    got = verdicts(SYSTEM.claims, text_summary(gap, ci, name=name))
    assert got[f"text_beats_tome_{name}"] == expected


@pytest.mark.parametrize("saved, expected", [
    (0.5, "reproduced"), (0.39, "direction"), (0.61, "direction"), (0.0, "not reproduced")])
def test_text_flops_saved(saved, expected):
    assert verdicts(SYSTEM.claims, text_summary(0.0, saved=saved))["text_flops_saved"] == expected


def test_text_claims_are_not_measured_without_the_text_section():
    got = verdicts(SYSTEM.claims, summary())
    assert {got[c] for c in ("text_beats_tome_sst2", "text_beats_tome_rotten_tomatoes",
                             "text_flops_saved")} == {"not measured"}
