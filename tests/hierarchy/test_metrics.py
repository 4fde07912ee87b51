import numpy as np
import pytest
from scipy.cluster.hierarchy import fcluster, is_valid_linkage, linkage

from paperlab.hierarchy import linkage as L
from paperlab.hierarchy.metrics import accuracy, ami, exact_recovery, tree_correlation


def test_accuracy_is_permutation_invariant_and_hungarian():
    true = np.array([0, 0, 1, 1, 2, 2])
    assert accuracy(true, np.array([2, 2, 0, 0, 1, 1])) == 1.0
    assert exact_recovery(true, (true + 1) % 3)
    # best matching 0->0, 1->1 leaves one of six nodes wrong (greedy would do the same here,
    # so add a case where greedy fails): rows 0/1 both prefer column 0.
    assert accuracy(true, np.array([0, 0, 1, 1, 2, 0])) == pytest.approx(5 / 6)
    t = np.array([0] * 3 + [1] * 2)
    p = np.array([0, 0, 1, 0, 0])
    assert accuracy(t, p) == pytest.approx(3 / 5)
    assert not exact_recovery(t, p)
    with pytest.raises(ValueError, match="differ in length"):
        accuracy(t, p[:3])


def test_ami_extremes():
    true = np.repeat([0, 1, 2], 20)
    assert ami(true, true) == pytest.approx(1.0)
    assert abs(ami(true, np.tile([0, 1, 2], 20))) < 0.05


def test_count_inversions_on_handmade_trees():
    monotone = np.array([[0, 1, 0.1, 2], [2, 3, 0.2, 2], [4, 5, 0.5, 4]])
    assert L.count_inversions(monotone) == 0
    # the root merge is lower than both merges below it: one inverted merge
    inverted = np.array([[0, 1, 0.6, 2], [2, 3, 0.2, 2], [4, 5, 0.5, 4]])
    assert L.count_inversions(inverted) == 1


def test_cut_matches_scipy_on_monotone_trees():
    X = np.random.default_rng(0).normal(size=(40, 3))
    Z = linkage(X, "average")
    for k in (1, 2, 3, 7, 40):
        ours, theirs = L.cut(Z, k), fcluster(Z, k, "maxclust")
        assert len(np.unique(ours)) == k
        assert accuracy(theirs, ours) == 1.0
    with pytest.raises(ValueError):
        L.cut(Z, 41)


def test_sort_by_height_repairs_row_order():
    X = np.random.default_rng(1).normal(size=(25, 2))
    Z = linkage(X, "average")
    shuffled = L.sort_by_height(Z[::1])
    assert is_valid_linkage(shuffled)
    assert np.allclose(shuffled, Z)  # already sorted: unchanged


def test_top_tree_and_lca_depths():
    Z = np.array([[0, 1, 0.1, 2], [2, 3, 0.2, 2], [4, 5, 0.5, 4]])
    labels, small = L.top_tree(Z, 2)
    assert labels.tolist() == [0, 0, 1, 1]
    assert small.tolist() == [[0, 1, 0.5, 2]]
    assert L.lca_depths(Z).tolist() == [[2, 1, 0, 0], [1, 2, 0, 0], [0, 0, 2, 1],
                                       [0, 0, 1, 2]]


def test_tree_correlation_detects_a_wrong_tree():
    true_leaf = np.repeat(np.arange(4), 5)
    true_lca = np.array([[2, 1, 0, 0], [1, 2, 0, 0], [0, 0, 2, 1], [0, 0, 1, 2]])
    right = np.array([[0, 1, 0.1, 2], [2, 3, 0.2, 2], [4, 5, 0.5, 4]])
    wrong = np.array([[0, 2, 0.1, 2], [1, 3, 0.2, 2], [4, 5, 0.5, 4]])
    assert tree_correlation(true_leaf, true_lca, true_leaf, right) == pytest.approx(1.0)
    assert tree_correlation(true_leaf, true_lca, true_leaf, wrong) < 0.9
