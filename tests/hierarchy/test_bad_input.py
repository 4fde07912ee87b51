"""Bad input at the hierarchy system's public entry points raises ValueError/TypeError naming it.

Before these checks: a NaN or negative Bethe-Hessian radius ``r`` or regularisation ``tau``
ended in an ARPACK error; ``max_clusters=0`` silently gave one cluster; a linkage matrix with
a child id past the end raised IndexError and one of the wrong shape or with NaN heights gave
``count_inversions == 0``; NaN labels scored an accuracy; empty label arrays failed inside
numpy (``ami`` returned 1.0); NaN connection constants gave NaN thresholds; a partitioner
returning the wrong number of labels failed in a sparse matmul.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from paperlab.hierarchy.estimators import BottomUp, TopDown, as_adjacency
from paperlab.hierarchy.hsbm import HSBM
from paperlab.hierarchy.metrics import (
    accuracy,
    ami,
    count_inversions,
    exact_recovery,
    tree_correlation,
)
from paperlab.hierarchy.theory import chernoff_hellinger

FAST = settings(max_examples=20, deadline=None, derandomize=True)
GRAPH = HSBM(depth=2, branching=2, n0=15, a=(2, 6, 12), seed=0).adjacency
# a valid dendrogram over 4 leaves: (0,1) -> 4, (2,3) -> 5, (4,5) -> 6
Z = np.array([[0, 1, 0.2, 2], [2, 3, 0.3, 2], [4, 5, 0.9, 4]], dtype=float)
LABEL_METRICS = {"accuracy": accuracy, "ami": ami, "exact_recovery": exact_recovery}


@FAST
@given(row=st.integers(0, 2), col=st.integers(0, 1),
       bad=st.one_of(st.integers(7, 50), st.sampled_from([-1, 0.5, 6])))
def test_linkage_with_impossible_cluster_ids(row, col, bad):
    z = Z.copy()
    z[row, col] = bad
    if row == 2 and bad in (4, 5) or (row, col, bad) in ((0, 1, 1), (0, 0, 0)):
        return  # unchanged or still valid
    with pytest.raises(ValueError, match="linkage matrix"):
        count_inversions(z)
    with pytest.raises(ValueError, match="linkage matrix"):
        tree_correlation(np.arange(4), np.eye(4, dtype=int), np.arange(4), z)


@pytest.mark.parametrize("z,problem", [
    (Z[:, :3], r"shape \(m - 1, 4\)"),
    (Z.ravel(), r"shape \(m - 1, 4\)"),
    (np.where(Z == 0.3, np.nan, Z), "NaN or infinite"),
    (np.array([[0, 0, 0.1, 2]]), "two distinct clusters"),
    (np.array([[0, 1, 0.1, 2], [0, 2, 0.2, 3]]), "no earlier row merged"),
    (np.array([["a", "b", "c", "d"]]), "must hold numbers"),
])
def test_malformed_linkage(z, problem):
    with pytest.raises(ValueError, match=problem):
        count_inversions(z)


@FAST
@given(name=st.sampled_from(sorted(LABEL_METRICS)), n=st.integers(1, 8), extra=st.integers(1, 3))
def test_labels_of_different_lengths(name, n, extra):
    with pytest.raises(ValueError, match="label arrays differ in length"):
        LABEL_METRICS[name](np.zeros(n, int), np.zeros(n + extra, int))


@pytest.mark.parametrize("name", sorted(LABEL_METRICS))
@pytest.mark.parametrize("true,problem", [
    (np.array([]), "true is empty"),
    (np.array([0.0, np.nan, 1.0]), "true has NaN or infinite labels"),
    (np.zeros((3, 1), int), "true must be a 1-D array of labels"),
])
def test_malformed_labels(name, true, problem):
    pred = np.zeros(true.shape[0] if true.ndim else 0, int)
    with pytest.raises(ValueError, match=problem):
        LABEL_METRICS[name](true, pred)


def test_tree_correlation_leaf_ids():
    with pytest.raises(ValueError, match=r"pred_leaf must be integer community ids in \[0, 4\)"):
        tree_correlation(np.arange(4), np.eye(4, dtype=int), np.array([0, 1, 2, 9]), Z)
    with pytest.raises(ValueError, match=r"true_leaf must be integer community ids in \[0, 4\)"):
        tree_correlation(np.array([0, 1, 2, 4]), np.eye(4, dtype=int), np.arange(4), Z)
    with pytest.raises(ValueError, match="true_lca must be a square"):
        tree_correlation(np.arange(4), np.zeros((4, 3), int), np.arange(4), Z)


@pytest.mark.parametrize("graph,error,problem", [
    (np.array([["0", "1"], ["1", "0"]]), TypeError, "must hold real edge weights"),
    (np.array([[0, 1j], [1j, 0]]), TypeError, "must hold real edge weights"),
    ([[0, 1], [1, 0]], TypeError, "expected a SciPy sparse matrix"),
    (np.zeros(4), ValueError, "adjacency must be square"),
    (np.array([[0, np.nan], [np.nan, 0]]), ValueError, "NaN or infinite weights"),
    (np.array([[0, -1.0], [-1.0, 0]]), ValueError, "negative weights"),
    (np.array([[0, 1.0], [0, 0]]), ValueError, "not symmetric"),
    (sp.eye(3).tocsr(), ValueError, "no edges"),
    (sp.block_diag([np.ones((2, 2)), np.ones((2, 2))]).tocsr(), ValueError, "disconnected"),
])
def test_malformed_graphs(graph, error, problem):
    with pytest.raises(error, match=problem):
        as_adjacency(graph)
    with pytest.raises(error, match=problem):
        BottomUp(n_clusters=2).fit(graph)


@pytest.mark.parametrize("estimator,problem", [
    (BottomUp(n_clusters=0), "n_clusters must be an integer >= 1"),
    (BottomUp(n_clusters=2.5), "n_clusters must be an integer >= 1"),
    (BottomUp(n_clusters=10_000), "need 1 <= n_clusters <= 60"),
    (BottomUp(max_clusters=0), "max_clusters must be an integer >= 1"),
    (BottomUp(n_clusters=2, r=float("nan")), "r must be 'adaptive', 'critical' or a positive"),
    (BottomUp(n_clusters=2, r=-1.0), "r must be 'adaptive', 'critical' or a positive"),
    (BottomUp(n_clusters=2, r="steep"), "r must be 'adaptive', 'critical' or a positive"),
    (BottomUp(n_clusters=2, edge_split=1.5), r"edge_split must be in \(0, 1\)"),
    (BottomUp(partitioner=lambda a: np.zeros(3, int)), "one finite label per node"),
    (BottomUp(partitioner=lambda a: np.full(a.shape[0], np.nan)), "one finite label per node"),
    (TopDown(tau=float("nan")), "tau must be a finite regularisation >= 0"),
    (TopDown(tau=-0.5), "tau must be a finite regularisation >= 0"),
    (TopDown(max_clusters=0), "max_clusters must be an integer >= 1"),
    (TopDown(min_size=0), "min_size must be an integer >= 1"),
])
def test_estimator_options(estimator, problem):
    with pytest.raises(ValueError, match=problem):
        estimator.fit(GRAPH)


def test_level_of_a_fitted_tree():
    with pytest.raises(RuntimeError, match="not fitted"):
        BottomUp(n_clusters=2).level(1)
    est = BottomUp(n_clusters=4, random_state=0).fit(GRAPH)
    for k in (0, 5, 2.5):
        with pytest.raises(ValueError, match=r"need 1 <= k <= 4"):
            est.level(k)
    assert len(np.unique(est.level(2))) == 2


@FAST
@given(a=st.lists(st.one_of(st.floats(0, 50), st.sampled_from([float("nan"), float("inf")])),
                  min_size=2, max_size=4).filter(lambda a: not np.isfinite(a).all()))
def test_non_finite_connection_constants(a):
    with pytest.raises(ValueError, match="a must be a 1-D sequence of finite numbers"):
        chernoff_hellinger(a)
    with pytest.raises(ValueError, match="a must be a 1-D sequence of finite numbers"):
        HSBM(depth=len(a) - 1, n0=5, a=a)


@pytest.mark.parametrize("make,problem", [
    (lambda: chernoff_hellinger([1, 2], branching=2.5), "branching >= 2"),
    (lambda: chernoff_hellinger([[1, 2], [3, 4]]), "a must be a 1-D sequence"),
    (lambda: chernoff_hellinger(["x", 2]), "a must be a sequence of numbers"),
    (lambda: chernoff_hellinger([1, 2]).recoverable("sideways"), "'bottom_up' or 'top_down'"),
    (lambda: HSBM(depth=1.5, n0=10, a=(1, 3)), "need depth >= 1"),
    (lambda: HSBM(depth=1, n0=10.5, a=(1, 3)), "need depth >= 1"),
    (lambda: HSBM(depth=1, n0=10, a=(1, 2, 3)), "a must hold 2 non-negative constants"),
    (lambda: HSBM.from_group_matrix(np.array([[0], [1]]), [5, 2.5], (1, 3)),
     "community sizes must be integers"),
    (lambda: HSBM.from_group_matrix(np.array([[0], [1]]), [5, 0], (1, 3)),
     "every community needs at least one node"),
])
def test_theory_and_generator_parameters(make, problem):
    with pytest.raises(ValueError, match=problem):
        make()


def test_numpy_integers_are_counts():
    assert chernoff_hellinger([1, 2], branching=np.int64(2)).bottom_up.shape == (1,)
    assert HSBM(depth=np.int64(1), n0=np.int64(5), a=(1, 3), seed=0).n_nodes == 10
