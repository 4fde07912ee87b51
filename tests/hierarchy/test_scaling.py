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
