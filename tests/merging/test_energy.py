"""PiToMe's energy-score rule in the substrate: the plan on a fixed input against the plan
recorded before the rule moved out of paperlab.pitome and against a slow loop, the rule as a
pluggable MergeRule, the layer schedule, clear errors."""

from __future__ import annotations

import math

import pytest
import torch

from paperlab.merging.energy import (
    PiToMeRule,
    bert_rule,
    energy_plan,
    layer_margins,
    layer_protect,
    pitome_plan,
    text_layers,
)
from paperlab.merging.plan import merge_state
from paperlab.merging.vit import apply_rule

# pitome_plan(_fixed_metric(), keep_ratio=0.6, margin=0.3, prefix=1, protect) as
# paperlab.pitome.merge computed it before the move (commit d965a97): (keep, src, dst).
BEFORE_THE_MOVE = {
    True: ([0, 3, 4, 1, 2, 8], [7, 6, 5], [3, 3, 5]),
    False: ([0, 5, 1, 2, 8, 4], [7, 6, 3], [2, 2, 4]),
}


def _fixed_metric() -> torch.Tensor:
    """``(1, 9, 4)``: a class token and 8 patch tokens, no ties in energy or similarity."""
    i = torch.arange(9.0)[:, None]
    c = torch.arange(4.0)[None]
    return torch.sin(1.3 * i * (c + 1) + 0.7 * c)[None]


def _slow_plan(rows: list[list[float]], r: int, margin: float, protect: bool
               ) -> tuple[list[int], set[tuple[int, int]]]:
    """The rule written out with Python loops on one image: ``rows`` are the tokens' features,
    class token first. Returns the kept token ids in output order and the set of
    ``(merged token, token it merges into)``."""
    patches = [[v / math.sqrt(sum(u * u for u in row)) for v in row] for row in rows[1:]]
    t = len(patches)

    def cos(a: int, b: int) -> float:
        return sum(x * y for x, y in zip(patches[a], patches[b], strict=True))

    def elu(v: float) -> float:
        return v if v > 0 else math.exp(v) - 1

    energy = [sum(elu(cos(i, j) - margin) for j in range(t)) / t for i in range(t)]
    ranked = sorted(range(t), key=lambda i: -energy[i])
    mergeable, protected = (ranked[: 2 * r], ranked[2 * r:]) if protect else (ranked, [])
    a_set, b_set = mergeable[0::2], mergeable[1::2]
    partner = {a: max(b_set, key=lambda b, a=a: cos(a, b)) for a in a_set}
    merged = sorted(a_set, key=lambda a: -cos(a, partner[a]))[:r]
    unmerged = sorted(a for a in a_set if a not in merged)
    keep = [0] + [i + 1 for i in protected + unmerged + b_set]
    return keep, {(a + 1, partner[a] + 1) for a in merged}


@pytest.mark.parametrize("protect", [True, False])
def test_plan_on_a_fixed_input_is_unchanged_by_the_move(protect):
    metric = _fixed_metric()
    plan = pitome_plan(metric, 0.6, margin=0.3, protect=protect)  # T = 8 -> r = 3
    keep, src, dst = BEFORE_THE_MOVE[protect]
    assert plan.keep[0].tolist() == keep
    assert plan.src[0].tolist() == src and plan.dst[0].tolist() == dst
    slow_keep, slow_pairs = _slow_plan(metric[0].tolist(), 3, 0.3, protect)
    assert slow_keep == keep
    assert {(s, keep[d]) for s, d in zip(src, dst, strict=True)} == slow_pairs
    again = energy_plan(metric, 3, 0.3, protect=protect)
    assert torch.equal(again.keep, plan.keep) and torch.equal(again.dst, plan.dst)


def test_energy_plan_takes_any_count():
    metric = _fixed_metric()
    assert energy_plan(metric, 0, 0.3) is None
    for r in (1, 2, 4):
        plan = energy_plan(metric, r, 0.3)
        slow_keep, slow_pairs = _slow_plan(metric[0].tolist(), r, 0.3, True)
        assert plan.keep[0].tolist() == slow_keep and plan.num_out == 9 - r
        pairs = {(s, slow_keep[d]) for s, d in zip(plan.src[0].tolist(), plan.dst[0].tolist(),
                                                   strict=True)}
        assert pairs == slow_pairs


def test_rule_plugs_into_the_merging_machinery(tiny_vit):
    rule = PiToMeRule(0.8, layer_margins(4), layer_protect(4))
    apply_rule(tiny_vit, rule, prop_attn=False)
    with torch.no_grad():
        tiny_vit(torch.randn(2, 3, 32, 32))
    assert merge_state(tiny_vit).tokens == [(65, 53), (53, 43), (43, 35), (35, 29)]


def test_layer_schedule_and_errors():
    assert layer_protect(4) == (False, False, True, True)
    assert layer_protect(5) == (False, False, False, True, True)
    assert layer_protect(3, "pure") == (True,) * 3
    with pytest.raises(ValueError, match="schedule must be one of"):
        layer_protect(4, "mae")
    for r in (-1, 5):
        with pytest.raises(ValueError, match=f"cannot merge r={r} of 8 patch tokens"):
            energy_plan(_fixed_metric(), r, 0.3)


def _slow_text_plan(rows: list[list[float]], r: int, margin: float
                    ) -> tuple[list[int], set[tuple[int, int]]]:
    """The reference's text rule with loops: Gaussian energy, A = the top r, B = the next r."""
    patches = [[v / math.sqrt(sum(u * u for u in row)) for v in row] for row in rows[1:]]
    t, sigma = len(patches), 1 - margin

    def cos(a: int, b: int) -> float:
        return sum(x * y for x, y in zip(patches[a], patches[b], strict=True))

    def kernel(v: float) -> float:
        return math.exp(-0.5 * ((1 - v) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))

    energy = [sum(kernel(cos(i, j)) for j in range(t)) / t for i in range(t)]
    ranked = sorted(range(t), key=lambda i: -energy[i])
    a_set, b_set, protected = ranked[:r], ranked[r:2 * r], ranked[2 * r:]
    partner = {a: max(b_set, key=lambda b, a=a: cos(a, b)) for a in a_set}
    keep = [0] + [i + 1 for i in protected + b_set]
    return keep, {(a + 1, partner[a] + 1) for a in a_set}


@pytest.mark.parametrize("r", [1, 2, 3, 4])
def test_text_rule_agrees_with_a_slow_reference(r):
    metric = _fixed_metric()
    plan = energy_plan(metric, r, 0.9, kernel="gaussian", split="halves")
    keep, pairs = _slow_text_plan(metric[0].tolist(), r, 0.9)
    assert plan.keep[0].tolist() == keep
    got = {(int(s), int(plan.keep[0, d])) for s, d in zip(plan.src[0], plan.dst[0], strict=True)}
    assert got == pairs


def test_text_options_are_checked():
    metric = _fixed_metric()
    with pytest.raises(ValueError, match="kernel"):
        energy_plan(metric, 2, 0.3, kernel="cosine")
    with pytest.raises(ValueError, match="split"):
        energy_plan(metric, 2, 0.3, split="random")
    with pytest.raises(ValueError, match="protect"):
        energy_plan(metric, 2, 0.3, protect=False, split="halves")
    with pytest.raises(ValueError, match="margin < 1"):
        energy_plan(metric, 2, 1.0, kernel="gaussian", split="halves")
    assert layer_margins(4, 0.9, drop=0.25) == pytest.approx((0.9, 0.8375, 0.775, 0.7125))
    rule = PiToMeRule(0.5, layer_margins(4), (True,) * 4, merging=text_layers(4, first=1))
    assert rule.schedule(9, 4, 1) == [(9, 5), (5, 5), (5, 5), (5, 5)]
    with pytest.raises(ValueError, match="merging flags"):
        PiToMeRule(0.5, layer_margins(4), (True,) * 4, merging=(True,)).schedule(9, 4, 1)


def test_bert_rule_reference_schedule():
    """The token schedule other methods are matched to on text (ToMe's counts, DiffRate's FLOPs
    target): floor(T - 0.65 T) of the T tokens besides [CLS] merged in the first three layers
    only."""
    rule = bert_rule(6, 0.65)
    assert rule.schedule(26, 6, 1) == [(26, 18), (18, 13), (13, 9), (9, 9), (9, 9), (9, 9)]
