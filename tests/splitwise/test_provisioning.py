"""Designs' cost and power, budget splits, the max-rate search and its monotonicity."""

from __future__ import annotations

import pytest

from paperlab.splitwise import (
    DGX_H100,
    SearchSpace,
    baseline_design,
    baseline_for_budget,
    budget_splits,
    cheapest_design,
    cheapest_for_rate,
    evaluate,
    max_rate,
    splitwise_design,
)
from paperlab.splitwise.provisioning import _max_rate_job, parallel_map

ISO_POWER = 40 * DGX_H100.power


def test_paper_iso_power_configs_fit_the_budget():
    paper = [baseline_design("A100", 70), baseline_design("H100", 40),
             splitwise_design("AA", 55, 15), splitwise_design("HH", 35, 5),
             splitwise_design("HA", 35, 8), splitwise_design("HHcap", 35, 7)]
    for d in paper:
        assert 0.97 * ISO_POWER <= d.power <= ISO_POWER + 1e-9, d.label
    assert baseline_for_budget("A100", ISO_POWER).n_prompt == 70
    assert splitwise_design("HA", 35, 8).cost == pytest.approx(35 * 4.76 + 8 * 2.21)
    assert splitwise_design("HHcap", 1, 1).power == pytest.approx(44 + 44 * 0.7)


@pytest.mark.parametrize("kind,by", [("HA", "power"), ("HH", "cost"), ("AA", "power")])
def test_budget_splits_fit_and_are_maximal(kind, by):
    budget = 500.0
    splits = budget_splits(kind, budget, by)
    assert splits
    for d in splits:
        spent = getattr(d, by)
        unit = getattr(d.token_sku, by)
        assert spent <= budget + 1e-9 and spent + unit > budget  # no room for one more
    with pytest.raises(ValueError, match="by 'power' or 'cost'"):
        budget_splits(kind, budget, "weight")


SPACE = SearchSpace(rates=(1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 10.0, 12.0), duration_s=40.0, seed=0)


def test_adding_machines_never_lowers_the_max_rate(db, azure_code):
    rates = [max_rate(baseline_design("H100", n), azure_code, db, SPACE)[0]
             for n in (1, 2, 3, 5)]
    assert rates == sorted(rates) and rates[-1] > rates[1] > 0
    split = [max_rate(splitwise_design("HH", p, t), azure_code, db, SPACE)[0]
             for p, t in ((1, 1), (2, 1), (3, 2))]
    assert split == sorted(split)


def test_parallel_search_equals_serial_and_cheapest(db, azure_code):
    designs = [baseline_design("H100", 1), baseline_design("H100", 3)]
    jobs = [(d, azure_code, db, SPACE) for d in designs]
    serial = parallel_map(_max_rate_job, jobs, workers=1)
    par = parallel_map(_max_rate_job, jobs, workers=2)
    assert [r for _, r, _ in serial] == [r for _, r, _ in par]
    target = serial[1][1]  # what 3 machines sustain
    best, evals = cheapest_design([baseline_design("H100", n) for n in (4, 1, 3, 2)], target,
                                  azure_code, db, SPACE, workers=1)
    passing = sorted(e.design.n_prompt for e in evals if e.slo_met)
    assert best is not None and best.n_prompt == passing[0] <= 3
    assert all(not e.slo_met for e in evals if e.design.n_prompt < best.n_prompt)
    assert cheapest_for_rate("Baseline-H100", target, 4 * 4.76, azure_code, db, SPACE) == best
    split = cheapest_for_rate("HH", target, 4 * 4.76, azure_code, db, SPACE, workers=1)
    assert split is None or (split.cost <= 4 * 4.76 and evaluate(
        split, target, azure_code, db, SPACE).slo_met)


def test_search_space_validation():
    with pytest.raises(ValueError, match="ascending"):
        SearchSpace(rates=(3.0, 2.0))


def test_overload_guard_never_changes_the_answer(db, azure_code):
    """Abandoning hopeless runs gives the same max rate as simulating them to the end."""
    d = splitwise_design("HH", 2, 1)
    rates = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
    guarded = max_rate(d, azure_code, db, SearchSpace(rates, 30.0, 0, give_up_s=5.0))
    full = max_rate(d, azure_code, db, SearchSpace(rates, 30.0, 0, give_up_s=0.0))
    assert guarded[0] == full[0]
    # on a hopeless rate the guard fires: requests are left unfinished and the SLOs fail
    ev = evaluate(d, 64.0, azure_code, db, SearchSpace(rates, 30.0, 0, give_up_s=5.0))
    assert ev.metrics["completed"] < ev.metrics["requests"] and not ev.slo_met
