"""The hierarchy claims' verdicts on made-up summaries, on both sides of each threshold."""

import pytest

from paperlab.core.claims import judge, verdicts
from paperlab.core.stats import interval
from paperlab.hierarchy import SYSTEM


def judged(levels=(2,), agreement=0.95, bottom_up=0, top_down=4, quick=False):
    summary = {"levels_where_bottom_up_beats_top_down": list(levels),
               "theory_agreement": agreement,
               "inversions_bottom_up_real": {"high_school": bottom_up, "power_grid": 0},
               "inversions_top_down_real": {"high_school": top_down, "power_grid": 0}}
    return verdicts(SYSTEM.claims, summary, quick)


@pytest.mark.parametrize("levels, expected", [((1, 2, 3), "reproduced"), ((2,), "reproduced"),
                                              ((), "not reproduced")])
def test_bottom_up_beats_top_down_by_the_sweep_without_a_separating_cell(levels, expected):
    assert judged(levels=levels)["bottom_up_beats_top_down"] == expected


SEPARATION = {"separation_cell": "a=(40, 41, 45, 100), level 1", "separation_largest_n": 6400}


@pytest.mark.parametrize("levels, gap, expected", [
    ((), 1.0, "reproduced"),  # the quick sweep (N = 800) wins no level; the cell decides
    ((), 0.25, "reproduced"), ((1, 2, 3), 0.01, "reproduced"),
    ((1, 2, 3), 0.0, "not reproduced"),  # a sweep win does not outvote the separating cell
    ((2,), -0.5, "not reproduced"), ((), 0.0, "not reproduced"),
])
def test_bottom_up_beats_top_down_is_judged_in_the_separating_cell(levels, gap, expected):
    summary = {"levels_where_bottom_up_beats_top_down": list(levels),
               "separation_gap_at_largest_n": gap, **SEPARATION}
    (got,) = [j for j in judge(SYSTEM.claims, summary, quick=False)
              if j.claim.id == "bottom_up_beats_top_down"]
    assert got.verdict == expected
    assert got.ours.startswith(f"a=(40, 41, 45, 100), level 1 at N = 6,400: exact-recovery "
                               f"gap {gap:+.2f}")
    assert f"sweep: {len(levels)} of 3 levels" in got.ours
    quick = verdicts(SYSTEM.claims, summary, quick=True)["bottom_up_beats_top_down"]
    assert quick == ("direction" if expected == "reproduced" else expected)


def test_bottom_up_beats_top_down_without_its_keys():
    assert verdicts(SYSTEM.claims, {"separation_gap_at_largest_n": 1.0})[
        "bottom_up_beats_top_down"] == "not measured"  # the sweep's key is always written
    bad = {"levels_where_bottom_up_beats_top_down": [], "separation_gap_at_largest_n": "x"}
    assert verdicts(SYSTEM.claims, bad)["bottom_up_beats_top_down"] == "not measured"


@pytest.mark.parametrize("agreement, expected", [
    (1.0, "reproduced"), (0.9, "reproduced"), (0.89, "direction"), (0.51, "direction"),
    (0.5, "not reproduced"), (0.2, "not reproduced"),
])
def test_theory_agreement(agreement, expected):
    assert judged(agreement=agreement)["theory_agreement"] == expected


@pytest.mark.parametrize("bottom_up, top_down, expected", [
    (0, 4, "reproduced"), (0, 0, "direction"), (1, 4, "not reproduced"),
])
def test_inversions(bottom_up, top_down, expected):
    assert judged(bottom_up=bottom_up, top_down=top_down)["no_inversions"] == expected
    # the same real networks at every size: a quick run may reproduce this one
    assert judged(bottom_up=bottom_up, top_down=top_down, quick=True)["no_inversions"] == (
        expected)


def test_missing_or_malformed_keys_and_the_quick_size():
    got = verdicts(SYSTEM.claims, {"inversions_bottom_up_real": {}, "inversions_top_down_real":
                                   {"x": 1}})
    assert set(got.values()) == {"not measured"}
    quick = judged(quick=True)
    assert quick["bottom_up_beats_top_down"] == quick["theory_agreement"] == "direction"


@pytest.mark.parametrize("gap, expected", [
    (1.0, "reproduced"), (0.9, "reproduced"), (0.85, "direction"), (0.25, "direction"),
    (0.0, "not reproduced"), (-0.2, "not reproduced"),
])
def test_separation_with_n(gap, expected):
    got = verdicts(SYSTEM.claims, {"separation_gap_at_largest_n": gap})["separation_with_n"]
    assert got == expected
    assert verdicts(SYSTEM.claims, {})["separation_with_n"] == "not measured"


def _one(claim_id, summary, quick=False):
    (got,) = [j for j in judge(SYSTEM.claims, summary, quick) if j.claim.id == claim_id]
    return got


@pytest.mark.parametrize("gap, lo, hi, expected", [
    (1.0, -0.42, 1.0, "within noise"),  # 3 of 3 graphs: too few for a paired test
    (1.0, 0.2, 1.0, "reproduced"), (0.0, 0.0, 0.0, "within noise"),
    (-1.0, -1.0, -0.1, "not reproduced"),
])
def test_bottom_up_beats_top_down_on_the_gaps_paired_interval(gap, lo, hi, expected):
    summary = {"levels_where_bottom_up_beats_top_down": [1], "separation_gap_at_largest_n": gap,
               "separation_gap_at_largest_n_ci95": interval(lo, hi, "exact paired"),
               **SEPARATION}
    got = _one("bottom_up_beats_top_down", summary)
    assert got.verdict == expected and got.interval is not None and "no interval" not in got.reason
    quick = _one("bottom_up_beats_top_down", summary, quick=True).verdict
    assert quick == ("direction" if expected == "reproduced" else expected)


@pytest.mark.parametrize("gap, lo, hi, expected", [
    (1.0, -0.42, 1.0, "within noise"), (1.0, 0.51, 1.0, "reproduced"),
    (0.8, 0.6, 0.89, "direction"), (-0.5, -0.9, -0.1, "not reproduced"),
])
def test_separation_with_n_on_its_paired_interval(gap, lo, hi, expected):
    summary = {"separation_gap_at_largest_n": gap,
               "separation_gap_at_largest_n_ci95": interval(lo, hi, "exact paired")}
    assert _one("separation_with_n", summary).verdict == expected


@pytest.mark.parametrize("agreement, lo, hi, expected", [
    (0.95, 0.85, 1.0, "reproduced"), (0.79, 0.58, 0.93, "reproduced"),
    (0.75, 0.6, 0.85, "direction"), (0.6, 0.4, 0.8, "within noise"),
    (0.3, 0.1, 0.45, "not reproduced"),
])
def test_theory_agreement_on_its_clopper_pearson_interval(agreement, lo, hi, expected):
    summary = {"theory_agreement": agreement,
               "theory_agreement_ci95": interval(lo, hi, "Clopper-Pearson")}
    got = _one("theory_agreement", summary)
    assert got.verdict == expected and "95% CI" in got.ours


def test_inversion_counts_are_exact_and_the_others_say_when_they_lack_an_interval():
    summary = {"levels_where_bottom_up_beats_top_down": [1], "theory_agreement": 0.9,
               "separation_gap_at_largest_n": 1.0,
               "inversions_bottom_up_real": {"high_school": 0},
               "inversions_top_down_real": {"high_school": 3}}
    reasons = {j.claim.id: j.reason for j in judge(SYSTEM.claims, summary, quick=False)}
    assert reasons["no_inversions"] == ""
    assert all("no interval" in reasons[c] for c in ("bottom_up_beats_top_down",
                                                      "theory_agreement", "separation_with_n"))
