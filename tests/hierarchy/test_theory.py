import numpy as np
import pytest

from paperlab.hierarchy.hsbm import HSBM
from paperlab.hierarchy.theory import chernoff_hellinger


def test_spec_example_values():
    t = chernoff_hellinger((40, 50, 60, 100))
    assert t.bottom_up == pytest.approx([2.08, 1.13, 0.635], abs=0.01)
    assert t.top_down == pytest.approx([1.51, 0.877, 0.635], abs=0.01)
    assert t.recoverable("bottom_up").tolist() == [True, True, False]
    assert t.recoverable("top_down").tolist() == [True, False, False]


@pytest.mark.parametrize("branching, a", [(2, (40, 50, 60, 100)), (3, (10, 50, 60, 130)),
                                          (2, (3, 9, 20, 33, 81))])
def test_bottom_up_divergence_equals_hellinger_of_the_model(branching, a):
    """CH_t from the closed form equals the Hellinger divergence computed pair by pair
    from the HSBM's own probability matrix (scaled back to the a's)."""
    depth = len(a) - 1
    model = HSBM(depth, branching, n0=50, a=a, seed=0, regime="bounded")
    P = model.probabilities * model.n_nodes
    K = len(P)
    expected = np.full(depth, np.inf)
    for c in range(K):
        for c2 in range(K):
            t = model.lca_depth[c, c2]
            if t < depth:
                hellinger = 0.5 * ((np.sqrt(P[c]) - np.sqrt(P[c2])) ** 2).sum() / K
                expected[t] = min(expected[t], hellinger)
    assert chernoff_hellinger(a, branching).bottom_up == pytest.approx(expected)


def test_bottom_up_dominates_top_down_and_equal_constants_block_a_level():
    rng = np.random.default_rng(0)
    for _ in range(50):
        a = np.sort(rng.uniform(1, 200, 4))
        t = chernoff_hellinger(a)
        assert np.all(t.bottom_up >= t.top_down - 1e-9)
        assert np.all(t.recoverable("bottom_up") >= t.recoverable("top_down"))
    assert not chernoff_hellinger((40, 40, 200, 400)).recoverable("bottom_up")[0]


def test_bad_constants():
    with pytest.raises(ValueError):
        chernoff_hellinger((5,))
    with pytest.raises(ValueError):
        chernoff_hellinger((1, -2, 3))
