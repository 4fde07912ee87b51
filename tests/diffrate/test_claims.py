"""The diffrate claims' verdicts on made-up summaries, on both sides of each threshold, with and
without the figures' intervals."""

import pytest

from paperlab.core.claims import judge, verdicts
from paperlab.diffrate import SYSTEM

DROP_CI, UNIFORM_CI = "acc_diffrate_mid_minus_full_ci95", "acc_diffrate_mid_minus_uniform_ci95"
SPEED_CI = "throughput_ratio_mid_ci95"


def summary(drop=-0.002, vs_uniform=0.01, saved=0.37, speed=1.2, **intervals):
    """A run's summary; ``intervals`` maps a summary key to its ``(lo, hi)``."""
    out = {"acc_full": 0.5, "acc_diffrate_mid": 0.5 + drop,
           "acc_uniform_same_flops": 0.5 + drop - vs_uniform, "flops_reduction_mid": saved,
           "throughput_ratio_mid": speed}
    out.update({key: {"lo": lo, "hi": hi, "level": 0.95, "method": "made up"}
                for key, (lo, hi) in intervals.items()})
    return out


def judged(quick=False, **kwargs):
    return verdicts(SYSTEM.claims, summary(**kwargs), quick)


@pytest.mark.parametrize("drop, expected", [
    (0.0, "reproduced"), (-0.009, "reproduced"), (-0.011, "not reproduced"),
    (-0.0149, "not reproduced"),
])
def test_small_drop_without_an_interval(drop, expected):
    assert judged(drop=drop)["small_drop_mid"] == expected


@pytest.mark.parametrize("lo, hi, expected", [
    (-0.02, 0.0, "within noise"),  # holds the -1 point bound
    (-0.01, 0.01, "within noise"),
    (-0.008, 0.004, "reproduced"),
    (-0.03, -0.012, "not reproduced"),
])
def test_small_drop_is_judged_on_the_paired_interval(lo, hi, expected):
    # the point (-0.2 pts) is the same throughout: the interval decides
    assert judged(**{DROP_CI: (lo, hi)})["small_drop_mid"] == expected


@pytest.mark.parametrize("vs_uniform, expected", [
    (0.02, "reproduced"), (0.0, "reproduced"), (-0.01, "not reproduced"),
])
def test_beats_uniform_without_an_interval(vs_uniform, expected):
    assert judged(vs_uniform=vs_uniform)["beats_uniform"] == expected


@pytest.mark.parametrize("lo, hi, expected", [
    (-0.01, 0.01, "within noise"), (0.0, 0.0, "within noise"), (0.005, 0.03, "reproduced"),
    (-0.03, -0.005, "not reproduced"),
])
def test_beats_uniform_is_judged_on_the_paired_interval(lo, hi, expected):
    assert judged(**{UNIFORM_CI: (lo, hi)})["beats_uniform"] == expected


@pytest.mark.parametrize("saved, expected", [
    (0.37, "reproduced"), (0.33, "reproduced"), (0.41, "reproduced"), (0.3, "direction"),
    (0.6, "direction"), (0.0, "not reproduced"),
])
def test_flops_reduction(saved, expected):
    assert judged(saved=saved)["flops_reduction_mid"] == expected


def test_flops_reduction_is_an_exact_count():
    j = next(j for j in judge(SYSTEM.claims, summary(), False)
             if j.claim.id == "flops_reduction_mid")
    assert j.claim.exact and j.reason == ""


@pytest.mark.parametrize("speed, expected", [(1.17, "reproduced"), (1.0, "not reproduced"),
                                              (0.57, "not reproduced")])
def test_throughput_without_an_interval(speed, expected):
    assert judged(speed=speed)["throughput_mid"] == expected


@pytest.mark.parametrize("lo, hi, expected", [
    (0.9, 1.3, "within noise"), (1.05, 1.3, "reproduced"), (0.5, 0.95, "not reproduced"),
])
def test_throughput_is_judged_on_the_timing_interval(lo, hi, expected):
    assert judged(speed=1.1, **{SPEED_CI: (lo, hi)})["throughput_mid"] == expected


VISION = ("small_drop_mid", "beats_uniform", "flops_reduction_mid", "throughput_mid")


def test_missing_keys_and_the_quick_size():
    assert set(verdicts(SYSTEM.claims, {}).values()) == {"not measured"}
    assert {judged(quick=True)[c] for c in VISION} == {"direction"}
    noisy = judged(quick=True, **{DROP_CI: (-0.03, 0.02), UNIFORM_CI: (-0.02, 0.03),
                                  SPEED_CI: (0.8, 1.5)})
    assert {c: noisy[c] for c in VISION} == {
        "small_drop_mid": "within noise", "beats_uniform": "within noise",
        "flops_reduction_mid": "direction", "throughput_mid": "within noise"}


# --- the text part (ours: no paper reports DiffRate on text) -----------------------------------

TOME_CI, TEXT_UNIFORM_CI = ("text_acc_diffrate_minus_tome_ci95",
                            "text_acc_diffrate_minus_uniform_ci95")


def text_summary(vs_tome=0.01, vs_uniform=0.01, saved=0.54, **intervals):
    out = {"text_acc_diffrate": 0.8, "text_acc_tome": 0.8 - vs_tome,
           "text_acc_uniform": 0.8 - vs_uniform, "text_flops_reduction": saved}
    out.update({key: {"lo": lo, "hi": hi, "level": 0.95, "method": "made up"}
                for key, (lo, hi) in intervals.items()})
    return out


def text_judged(quick=False, **kwargs):
    return verdicts(SYSTEM.claims, text_summary(**kwargs), quick)


@pytest.mark.parametrize("claim, kwarg", [("text_beats_tome", "vs_tome"),
                                          ("text_beats_uniform", "vs_uniform")])
@pytest.mark.parametrize("gap, expected", [(0.02, "reproduced"), (0.0, "reproduced"),
                                           (-0.001, "not reproduced")])
def test_text_orderings_without_an_interval(claim, kwarg, gap, expected):
    assert text_judged(**{kwarg: gap})[claim] == expected


@pytest.mark.parametrize("claim, key", [("text_beats_tome", TOME_CI),
                                        ("text_beats_uniform", TEXT_UNIFORM_CI)])
@pytest.mark.parametrize("lo, hi, expected", [
    (-0.02, 0.03, "within noise"), (0.0, 0.02, "within noise"), (0.001, 0.03, "reproduced"),
    (-0.05, -0.002, "not reproduced"),
])
def test_text_orderings_are_judged_on_their_intervals(claim, key, lo, hi, expected):
    # the point (+1 pt) is the same throughout: the interval decides
    assert text_judged(**{key: (lo, hi)})[claim] == expected


@pytest.mark.parametrize("saved, expected", [
    (0.54, "reproduced"), (0.515, "reproduced"), (0.565, "reproduced"), (0.5, "direction"),
    (0.6, "direction"), (0.0, "not reproduced"),
])
def test_text_flops_on_target(saved, expected):
    assert text_judged(saved=saved)["text_flops_on_target"] == expected


def test_text_claims_missing_and_quick():
    judged = verdicts(SYSTEM.claims, summary())  # a vision-only run
    assert {judged[c] for c in ("text_beats_tome", "text_beats_uniform",
                                "text_flops_on_target")} == {"not measured"}
    quick = text_judged(quick=True, **{TOME_CI: (-0.03, 0.02)})
    assert quick["text_beats_tome"] == "within noise"
    assert quick["text_beats_uniform"] == quick["text_flops_on_target"] == "direction"
