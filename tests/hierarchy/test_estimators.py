import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.cluster.hierarchy import dendrogram, is_valid_linkage

from paperlab.hierarchy import spectral
from paperlab.hierarchy.baselines import Paris, leiden_available, leiden_linkage
from paperlab.hierarchy.estimators import BottomUp, TopDown, average_linkage
from paperlab.hierarchy.hsbm import HSBM
from paperlab.hierarchy.linkage import count_inversions
from paperlab.hierarchy.metrics import accuracy, tree_correlation


@pytest.fixture(scope="module")
def easy():
    """A binary HSBM of depth 3 far above every threshold (N = 480)."""
    return HSBM(depth=3, branching=2, n0=60, a=(0.5, 4, 12, 35), seed=3)


@pytest.mark.parametrize("make", [lambda: BottomUp(random_state=0),
                                  lambda: BottomUp(r="critical", random_state=0),
                                  lambda: TopDown(random_state=0)])
def test_exact_recovery_on_easy_hsbm(easy, make):
    est = make().fit(easy.adjacency)
    assert est.n_clusters_ == 8
    for level in (1, 2, 3):
        assert accuracy(easy.labels[level], est.level(2**level)) == 1.0
    assert tree_correlation(easy.labels[3], easy.lca_depth, est.labels_,
                            est.dendrogram_) == pytest.approx(1.0)


def test_given_k_and_edge_split_recover(easy):
    est = BottomUp(n_clusters=8, edge_split=0.9, random_state=0).fit(easy.adjacency)
    assert accuracy(easy.labels[3], est.labels_) == 1.0
    assert accuracy(easy.labels[1], est.level(2)) == 1.0


def test_dendrograms_are_valid_for_scipy(easy):
    for est in (BottomUp(random_state=0), TopDown(random_state=0), Paris()):
        est.fit(easy.adjacency)
        assert is_valid_linkage(est.dendrogram_)
        drawn = dendrogram(est.dendrogram_, no_plot=True)
        assert len(drawn["leaves"]) == est.n_clusters_


def test_levels_are_nested_with_k_clusters(easy):
    est = BottomUp(random_state=0).fit(easy.adjacency)
    for k in range(2, est.n_clusters_ + 1):
        fine, coarse = est.level(k), est.level(k - 1)
        assert len(np.unique(fine)) == k
        for group in np.unique(fine):
            assert len(np.unique(coarse[fine == group])) == 1


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 9), st.integers(0, 10_000))
def test_average_linkage_never_inverts(m, seed):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 50, m)
    upper = np.triu(rng.integers(0, 30, (m, m)), 1)
    edges = upper + upper.T + np.diag(rng.integers(0, 60, m))
    Z = average_linkage(edges, sizes, max_weight=1.0 + edges.max())
    assert is_valid_linkage(Z)
    assert count_inversions(Z) == 0
    assert np.all(np.diff(Z[:, 2]) >= -1e-12)


def test_networkx_input_matches_sparse(easy):
    graph = nx.from_scipy_sparse_array(easy.adjacency)
    a = BottomUp(random_state=0).fit(graph)
    b = BottomUp(random_state=0).fit(easy.adjacency)
    assert accuracy(a.labels_, b.labels_) == 1.0


def test_negative_count_equals_dense_bethe_hessian():
    A = HSBM(depth=2, branching=2, n0=80, a=(2, 10, 40), seed=5).adjacency
    for r in (1.5, spectral.critical_r(A), 4.0):
        dense = np.linalg.eigvalsh(spectral.bethe_hessian(A, r).toarray())
        assert spectral.count_negative_eigenvalues(A, r) == int((dense < 0).sum())


def test_adaptive_vectors_are_null_vectors_of_the_bethe_hessian():
    A = HSBM(depth=2, branching=2, n0=80, a=(2, 10, 40), seed=5).adjacency
    r_c = spectral.critical_r(A)
    for p in (1, 2, 3):
        r, x = spectral._zero_crossing(A, p, r_c, tol=1e-8)
        assert 1 < r < r_c
        H = spectral.bethe_hessian(A, r)
        assert np.linalg.norm(H @ x) < 1e-3 * np.linalg.norm(H.toarray(), 2)
        assert np.sort(np.linalg.eigvalsh(H.toarray()))[p] == pytest.approx(0, abs=1e-3)


@pytest.mark.skipif(not leiden_available(), reason="leidenalg not installed")
def test_leiden_then_linkage(easy):
    est = leiden_linkage(0).fit(easy.adjacency)
    assert is_valid_linkage(est.dendrogram_) and count_inversions(est.dendrogram_) == 0
    assert accuracy(easy.labels[1], est.level(2)) == 1.0


def _graph(dense):
    return sp.csr_matrix(np.asarray(dense, dtype=float))


PATH = [[0, 1, 0], [1, 0, 1], [0, 1, 0]]


@pytest.mark.parametrize("est", [BottomUp(), TopDown()])
@pytest.mark.parametrize("graph, message", [
    (_graph([[0, 1, 0], [0, 0, 1], [0, 1, 0]]), "not symmetric"),
    (_graph([[0, -1, 0], [-1, 0, 1], [0, 1, 0]]), "negative"),
    (_graph([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]]), "disconnected"),
    (_graph([[0, np.nan], [np.nan, 0]]), "NaN"),
    (_graph([[0, 1, 0], [1, 0, 1]]), "square"),
    (_graph(np.zeros((3, 3))), "no edges"),
    (_graph([[0]]), "at least 2"),
    (nx.DiGraph([(0, 1)]), "directed"),
])
def test_bad_input_is_rejected(est, graph, message):
    with pytest.raises(ValueError, match=message):
        est.fit(graph)


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_clusters=4 but the graph has 3 nodes"):
        BottomUp(n_clusters=4).fit(_graph(PATH))
    with pytest.raises(TypeError, match="expected a SciPy sparse matrix"):
        BottomUp().fit([[0, 1], [1, 0]])
    with pytest.raises(RuntimeError, match="not fitted"):
        BottomUp().level(2)
    est = BottomUp(n_clusters=2, random_state=0).fit(_graph(PATH))
    with pytest.raises(ValueError, match="need 1 <= k <= 2"):
        est.level(3)
