"""Finite-size errors of a top-down split (theory.top_down_split_errors)."""

import numpy as np
import pytest

from paperlab.hierarchy.hsbm import HSBM
from paperlab.hierarchy.theory import chernoff_hellinger, top_down_split_errors


@pytest.mark.parametrize("t", [0, 1])
def test_split_errors_match_simulated_graphs(t):
    """The expected count equals the share of nodes, in sampled graphs, whose edges into a
    sibling subtree outnumber those into their own child subtree (ties count half)."""
    a, n0, graphs = (4.0, 6.0, 9.0, 30.0), 50, 40
    errors = []
    for seed in range(graphs):
        model = HSBM(3, 2, n0, a, seed=seed, regime="bounded")
        A, child, parent = model.adjacency, model.labels[t + 1], model.labels[t]
        own = np.asarray(A.multiply(child[:, None] == child[None, :]).sum(1)).ravel()
        both = np.asarray(A.multiply(parent[:, None] == parent[None, :]).sum(1)).ravel()
        sibling = both - own
        errors.append(np.sum(sibling > own) + 0.5 * np.sum(sibling == own))
    expected = top_down_split_errors(a, n0, t, regime="bounded")
    assert expected > 5  # the comparison is not trivially zero against zero
    assert np.mean(errors) == pytest.approx(expected, rel=0.1)


def test_errors_grow_with_n_below_the_threshold_and_shrink_above():
    below, above = (40, 41, 45, 100), (20, 22, 30, 100)
    assert chernoff_hellinger(below).top_down[0] < 1 < chernoff_hellinger(above).top_down[0]
    sizes = [3200, 51200, 819200, 13107200]
    grow = [top_down_split_errors(below, n0, 0) for n0 in sizes]
    shrink = [top_down_split_errors(above, n0, 0) for n0 in sizes]
    assert np.all(np.diff(grow) > 0) and np.all(np.diff(shrink) < 0)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="0 <= t < d"):
        top_down_split_errors((40, 50, 60, 100), 200, 3)
    with pytest.raises(ValueError, match="regime"):
        top_down_split_errors((40, 50, 60, 100), 200, 0, regime="dense")
    with pytest.raises(ValueError, match="exceed 1"):
        top_down_split_errors((40, 50, 60, 100), 2, 0)


def test_separating_levels_follow_the_criteria():
    from paperlab.hierarchy.experiment import separating_levels

    assert separating_levels((40, 41, 45, 100)) == [1, 2, 3]  # TD_0 < 1 < CH_t for all t
    assert separating_levels((40, 50, 60, 100)) == [2]  # the spec's example
    assert separating_levels((20, 22, 30, 100)) == []  # both recover everything


def test_summary_gap_is_taken_at_the_largest_n_of_the_first_cell():
    from paperlab.hierarchy.experiment import ScalingConfig, summarise_scaling

    cfg = ScalingConfig(cells=((40, 41, 45, 100), (40, 50, 60, 100)), n0_values=(200, 800),
                        graphs=(2, 2))

    def rec(a, n0, bu, td):
        return {"a": list(a), "N": 8 * n0, "bottom_up": [bu] * 3, "top_down": [td] * 3}

    records = [rec((40, 41, 45, 100), 200, 1.0, 1.0), rec((40, 41, 45, 100), 200, 1.0, 0.99),
               rec((40, 41, 45, 100), 800, 1.0, 0.99), rec((40, 41, 45, 100), 800, 0.98, 0.99),
               rec((40, 50, 60, 100), 200, 1.0, 1.0)]
    rows, summary = summarise_scaling(cfg, records)
    assert summary["separation_gap_at_largest_n"] == 0.5  # 1/2 - 0/2 at N = 6400, level 1
    assert summary["separation_largest_n"] == 6400
    # 1 discordant graph of 2, for bottom-up: the exact paired interval holds 0
    ci = summary["separation_gap_at_largest_n_ci95"]
    assert ci["lo"] < 0 <= 0.5 <= ci["hi"] and "2 graphs" in ci["method"]
    assert all(r["gap_lo"] <= r["gap"] <= r["gap_hi"] for r in rows)
    first = [r for r in rows if r["level"] == 1 and r["a"] == [40, 41, 45, 100]]
    assert [r["gap"] for r in first] == [0.5, 0.5]
    assert all(0 < r["top_down_exact_if_split_optimal"] < 1 for r in rows)
    assert {r["level"] for r in rows if r["a"] == [40, 50, 60, 100]} == {2}


def test_scaling_fits_both_algorithms_on_the_same_graphs():
    from paperlab.hierarchy.experiment import ScalingConfig, _scaling

    cfg = ScalingConfig(cells=((20, 21, 25, 60),), n0_values=(50,), graphs=(2,))
    records = _scaling(cfg, seed=0)
    assert [r["graph"] for r in records] == [0, 1] and records[0]["N"] == 400
    assert records[0]["edges"] != records[1]["edges"]  # two different graphs
    for r in records:
        assert len(r["bottom_up"]) == len(r["top_down"]) == 3
        assert all(0 <= v <= 1 for v in r["bottom_up"] + r["top_down"])
