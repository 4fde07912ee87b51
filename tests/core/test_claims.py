import math

import pytest

from paperlab.core.claims import (
    Bound,
    Claim,
    NotMeasured,
    Threshold,
    Verdict,
    count,
    difference,
    fraction,
    interval_of,
    judge,
    ratio,
    value,
)
from paperlab.core.registry import System

R, D, N, M = (Verdict.REPRODUCED, Verdict.DIRECTION, Verdict.NOT_REPRODUCED,
              Verdict.NOT_MEASURED)
W = Verdict.WITHIN_NOISE

SPEEDUP = Claim("speedup", "ours is 2x faster", "2.0x",
                Threshold(value("speedup", "x"), paper=2.0, tolerance=0.2, null=1.0))
LOSS = Claim("loss", "ours has lower loss", "0.8 -> 0.6",
             Threshold(ratio("loss_ours", "loss_base"), paper=0.75, tolerance=0.05, null=1.0,
                       better="lower"))


def one(claim, summary, quick=False):
    (j,) = judge([claim], summary, quick)
    return j


@pytest.mark.parametrize("speedup, expected", [
    (2.0, R), (1.81, R), (2.19, R), (1.79, D), (2.21, D), (1.01, D), (1.0, N), (0.5, N),
])
def test_threshold_higher_on_both_sides_of_each_edge(speedup, expected):
    assert one(SPEEDUP, {"speedup": speedup}).verdict is expected


@pytest.mark.parametrize("ours, expected", [
    (0.6, R), (0.57, R), (0.63, R), (0.55, D), (0.65, D), (0.79, D), (0.8, N), (1.0, N),
])
def test_threshold_lower_ratio(ours, expected):
    assert one(LOSS, {"loss_ours": ours, "loss_base": 0.8}).verdict is expected  # paper 0.75


def test_tolerance_edges_survive_rounding():
    rule = Threshold(value("x"), paper=0.8, tolerance=0.1, null=1.0, better="lower")
    assert [rule({"x": v}) for v in (0.7, 0.9, 0.69, 0.91)] == [R, R, D, D]


def test_at_least_counts_beating_the_paper_as_reproduced():
    rule = Threshold(value("x"), paper=40, tolerance=5, null=1, at_least=True)
    assert [rule({"x": v}) for v in (300, 35, 34.9, 1.5, 0.9)] == [R, R, D, D, N]
    low = Threshold(value("x"), paper=0.2, tolerance=0.05, null=1, better="lower", at_least=True)
    assert [low({"x": v}) for v in (0.01, 0.25, 0.26, 1.0)] == [R, R, D, N]


@pytest.mark.parametrize("summary", [{}, {"speedup": None}, {"speedup": math.nan},
                                     {"other": 2.0}])
def test_missing_key_is_not_measured_never_reproduced(summary):
    j = one(SPEEDUP, summary)
    assert j.verdict is M and "speedup" in j.reason and j.ours == "-"


def test_non_number_is_not_measured():
    j = one(SPEEDUP, {"speedup": "fast"})
    assert j.verdict is M and "str" in j.reason


def test_no_summary_is_not_measured():
    assert one(SPEEDUP, None).verdict is M


def test_quick_is_capped_at_direction_unless_quick_is_the_papers_size():
    assert one(SPEEDUP, {"speedup": 2.0}, quick=True).verdict is D
    assert "quick" in one(SPEEDUP, {"speedup": 2.0}, quick=True).reason
    assert one(SPEEDUP, {"speedup": 0.5}, quick=True).verdict is N
    paper_size = Claim("s", "t", "2x", SPEEDUP.rule, quick_is_paper_size=True)
    assert one(paper_size, {"speedup": 2.0}, quick=True).verdict is R


def test_claim_not_measured_at_quick_size():
    full_only = Claim("s", "t", "2x", SPEEDUP.rule, quick=False)
    j = one(full_only, {"speedup": 2.0}, quick=True)
    assert j.verdict is M and "quick size" in j.reason
    assert one(full_only, {"speedup": 2.0}).verdict is R


def test_plain_predicate_rule_and_its_keys():
    def rule(s):
        return R if s["won"] and s["margin"] > 1 else N

    claim = Claim("p", "wins", "wins by > 1", rule, keys=("won", "margin"))
    assert one(claim, {"won": True, "margin": 2}).verdict is R
    assert one(claim, {"won": True}).verdict is M  # missing key: never asked
    assert one(claim, {"won": True, "margin": 2}).ours == "won = yes; margin = 2"
    with pytest.raises(ValueError, match="keys"):
        Claim("p", "wins", "x", rule)


def test_rule_raising_not_measured_is_not_measured():
    def rule(s):
        raise NotMeasured("only one data set")

    j = one(Claim("p", "t", "x", rule, keys=("a",)), {"a": 1})
    assert j.verdict is M and j.reason == "only one data set"


def test_measures_show_our_figure():
    assert one(SPEEDUP, {"speedup": 2.5}).ours == "2.5x"
    assert one(LOSS, {"loss_ours": 0.6, "loss_base": 0.8}).ours == "0.6 / 0.8 = 0.75"
    gain = Threshold(difference("a", "b", " pts"), paper=3, tolerance=1, null=0)
    assert gain.measure({"a": 90, "b": 85.5}) == 4.5
    assert gain.measure.show({"a": 90, "b": 85.5}, 4.5) == "90 - 85.5 = +4.5 pts"
    wins = count("wins", of="4 pairs")
    assert wins({"wins": ["a", "b"]}) == 2
    assert wins.show({"wins": ["a", "b"]}, 2) == "2 of 4 pairs (a, b)"
    with pytest.raises(NotMeasured):
        wins({"wins": 3})
    with pytest.raises(NotMeasured, match="is 0"):
        ratio("a", "b")({"a": 1, "b": 0})


def test_describe_says_the_rule():
    assert SPEEDUP.how == "reproduced if within ±0.2 of 2; direction if > 1"
    low = Threshold(value("x"), paper=0.2, tolerance=0.05, null=1, better="lower", at_least=True)
    assert low.describe() == "reproduced if <= 0.25; direction if < 1"


def test_bad_declarations_are_rejected():
    with pytest.raises(ValueError, match="null"):
        Threshold(value("x"), paper=0.5, tolerance=0.1, null=1.0)  # paper below null, "higher"
    with pytest.raises(ValueError, match="better"):
        Threshold(value("x"), paper=2, tolerance=0.1, null=1.0, better="up")
    with pytest.raises(ValueError, match="tolerance"):
        Threshold(value("x"), paper=2, tolerance=-1, null=1.0)
    with pytest.raises(TypeError, match="callable"):
        Claim("a", "b", "c", rule=3, keys=("x",))
    with pytest.raises(ValueError, match="paper"):
        Claim("a", "b", "", SPEEDUP.rule)
    with pytest.raises(TypeError, match="Claim"):
        judge(["speedup"], {}, quick=False)


def test_system_validates_its_claims():
    with pytest.raises(TypeError, match="claims must be Claim"):
        System("s", "p", "c", run="m:f", claims=("x",))
    with pytest.raises(ValueError, match="repeat"):
        System("s", "p", "c", run="m:f", claims=(SPEEDUP, SPEEDUP))
    assert System("s", "p", "c", run="m:f", claims=(SPEEDUP, LOSS)).claims[1] is LOSS


@pytest.mark.parametrize("v, above, inclusive, expected", [
    (0.1, True, False, R), (0.0, True, False, N), (0.0, True, True, R), (-0.1, True, True, N),
    (-0.1, False, False, R), (0.0, False, False, N), (0.0, False, True, R), (0.1, False, True, N),
])
def test_bound_is_an_ordering_without_direction(v, above, inclusive, expected):
    rule = Bound(value("x"), limit=0.0, above=above, inclusive=inclusive)
    assert rule({"x": v}) is expected
    assert Claim("b", "t", "p", rule).how.startswith("reproduced if " + (">" if above else "<"))


def test_fraction_of_pairs_won():
    share = fraction("won", "datasets", per=2)
    s = {"won": ["a/GCN", "b/SAGE", "b/GCN"], "datasets": ["a", "b"]}
    assert share(s) == 0.75
    assert share.show(s, 0.75) == "3 of 4 = 0.75 (a/GCN, b/SAGE, b/GCN)"
    for bad in ({"won": [], "datasets": []}, {"won": "a", "datasets": ["a"]}, {"won": []}):
        with pytest.raises(NotMeasured):
            share(bad)
    with pytest.raises(ValueError, match="per"):
        fraction("a", "b", per=0)


# ---------------------------------------------------------------------------------------------
# Noise: a figure with an interval


def ci(lo, hi):
    return {"lo": lo, "hi": hi, "level": 0.95, "method": "test"}


GAIN = Threshold(difference("a", "b", ci="gain_ci"), paper=2.0, tolerance=0.5, null=0.0)


@pytest.mark.parametrize("lo, hi, expected", [
    (-0.1, 0.3, W),    # holds null
    (0.0, 0.3, W),     # null on the edge: not distinguishable
    (-0.3, 0.0, W),
    (0.01, 0.3, D),    # clear of null, short of the paper's band [1.5, 2.5]
    (0.01, 1.49, D),
    (0.01, 1.5, R),    # reaches the band's edge
    (1.0, 3.0, R),     # holds the whole band
    (2.5, 4.0, R),     # touches the band from above
    (2.51, 4.0, D),    # past it: same side, different size
    (-0.3, -0.01, N),  # clear of null on the wrong side
])
def test_threshold_with_interval_on_both_sides_of_each_edge(lo, hi, expected):
    # The point (a - b = 0.1) is the same throughout: the interval decides.
    assert GAIN({"a": 0.6, "b": 0.5, "gain_ci": ci(lo, hi)}) is expected


def test_threshold_point_within_tolerance_but_noisy_is_within_noise():
    assert GAIN({"a": 2.5, "b": 0.5, "gain_ci": ci(-1.0, 5.0)}) is W
    assert GAIN({"a": 2.5, "b": 0.5}) is R  # the same point without an interval


def test_threshold_with_interval_lower_and_at_least():
    low = Threshold(value("r", ci="r_ci"), paper=0.7, tolerance=0.05, null=1.0, better="lower")
    assert [low({"r": 0.8, "r_ci": ci(*c)}) for c in
            ((0.9, 1.1), (0.9, 1.0), (0.75, 0.99), (0.76, 0.99), (0.5, 0.6), (1.01, 1.2))] == [
        W, W, R, D, D, N]
    most = Threshold(value("s", ci="s_ci"), paper=40, tolerance=5, null=1, at_least=True)
    assert [most({"s": 50, "s_ci": ci(*c)}) for c in
            ((200, 300), (10, 35), (10, 34.9), (0.5, 1.5), (0.2, 0.9))] == [R, R, D, W, N]


@pytest.mark.parametrize("lo, hi, above, inclusive, expected", [
    (0.01, 1.0, True, False, R), (0.0, 1.0, True, False, W), (-1.0, 0.0, True, True, W),
    (-1.0, -0.01, True, False, N), (-1.0, -0.01, False, False, R), (0.01, 1.0, False, True, N),
    (-0.5, 0.5, False, False, W),
])
def test_bound_with_interval(lo, hi, above, inclusive, expected):
    rule = Bound(value("x", ci="x_ci"), limit=0.0, above=above, inclusive=inclusive)
    # The point is on the other side from the interval's verdict in half of these: ignored.
    assert rule({"x": 0.3 if expected is N else -0.3, "x_ci": ci(lo, hi)}) is expected
    assert "within noise" in rule.describe()


def test_judgement_shows_the_interval_or_says_there_is_none():
    claim = Claim("g", "gain", "+2", GAIN)
    j = one(claim, {"a": 3.0, "b": 1.0, "gain_ci": ci(1.2, 2.8)})
    assert j.verdict is R and j.reason == "" and j.interval.lo == 1.2
    assert "95% CI [1.2, 2.8], test" in j.ours
    j = one(claim, {"a": 3.0, "b": 1.0})  # an older run without the interval
    assert j.verdict is R and j.reason == "no interval: one run, no paired test"
    j = one(claim, {"a": 3.0, "b": 1.0}, quick=True)
    assert j.verdict is D and j.reason == "held, but at the quick size; no interval: one run, " \
        "no paired test"
    exact = Claim("f", "flops", "37%", Threshold(value("f", exact=True), paper=0.37,
                                                   tolerance=0.05, null=0.0))
    assert exact.exact and one(exact, {"f": 0.36}).reason == ""
    j = one(claim, {"a": 3.0, "b": 1.0, "gain_ci": ci(-0.5, 0.5)}, quick=True)
    assert j.verdict is W and j.reason == ""  # within noise is never capped or upgraded


def test_plain_predicate_claim_may_declare_its_interval():
    def rule(s):
        return W if interval_of(s, "x_ci").holds(0.0) else R
    claim = Claim("p", "t", "p", rule, keys=("x",), ci="x_ci")
    j = one(claim, {"x": 1.0, "x_ci": ci(-1, 2)})
    assert j.verdict is W and "[-1, 2]" in j.ours


@pytest.mark.parametrize("bad", [[0, 1], {"lo": 0}, {"lo": "a", "hi": 1}, {"lo": 2, "hi": 1},
                                 {"lo": 0, "hi": float("inf")}, {"lo": 0, "hi": 1, "level": 2}])
def test_malformed_interval_is_not_measured(bad):
    with pytest.raises(NotMeasured):
        interval_of({"k": bad}, "k")
    claim = Claim("g", "gain", "+2", GAIN)
    assert one(claim, {"a": 3.0, "b": 1.0, "gain_ci": bad}).verdict is M
    assert interval_of({}, "k") is None


def test_a_measure_is_exact_or_has_an_interval_not_both():
    with pytest.raises(ValueError, match="either exact"):
        value("x", ci="x_ci", exact=True)
    with pytest.raises(ValueError, match="either exact"):
        Claim("p", "t", "p", lambda s: R, keys=("x",), ci="x_ci", exact=True)
