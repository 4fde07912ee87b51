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


def _dense_crossing(A, p: int, r_high: float) -> tuple[float, np.ndarray]:
    """The slow reference: the radius where the p-th smallest eigenvalue of the dense H_r is
    zero (Brent on eigvalsh), and that eigenvector."""
    from scipy.optimize import brentq

    def lam(r):
        return np.linalg.eigvalsh(spectral.bethe_hessian(A, r).toarray())[p]

    r = brentq(lam, 1.0 + 1e-9, r_high, xtol=1e-12)
    return r, np.linalg.eigh(spectral.bethe_hessian(A, r).toarray())[1][:, p]


@pytest.mark.parametrize("max_basis", [None, 4], ids=["shared subspace", "Lanczos per vector"])
def test_adaptive_crossings_match_a_dense_reference(max_basis):
    """Both ways to the crossings (the shared Davidson subspace, and Lanczos solves per
    eigenvector, which the subspace falls back to) land on the dense reference."""
    A = HSBM(depth=2, branching=2, n0=80, a=(2, 10, 40), seed=5).adjacency
    r_c = spectral.critical_r(A)
    radii, X = spectral.adaptive_crossings(A, 4, max_basis=max_basis)
    assert np.allclose(np.linalg.norm(X, axis=0), 1.0)
    for p in (1, 2, 3):
        r, x = radii[p - 1], X[:, p - 1]
        r_ref, x_ref = _dense_crossing(A, p, r_c)
        assert 1 < r < r_c
        assert r == pytest.approx(r_ref, rel=1e-4)  # the per-vector method stops at steps of 1e-5
        H = spectral.bethe_hessian(A, r).toarray()
        assert np.linalg.norm(H @ x) < 1e-3 * np.linalg.norm(H, 2)
        assert abs(x @ x_ref) == pytest.approx(1.0, abs=1e-3)


def test_adaptive_crossings_bad_arguments():
    A = HSBM(depth=2, branching=2, n0=80, a=(2, 10, 40), seed=5).adjacency
    with pytest.raises(ValueError, match="max_basis must be >= 4"):
        spectral.adaptive_crossings(A, 4, max_basis=3)
    with pytest.raises(ValueError, match="n_vectors must be"):
        spectral.adaptive_crossings(A, 1)
    with pytest.raises(TypeError, match="max_basis must be"):
        spectral.adaptive_crossings(A, 4, max_basis=2.5)


def test_shared_subspace_embedding_equals_the_per_vector_one():
    """On the benchmark's HSBM (bounded degree, mean ~60), the shared subspace gives the
    embedding of the per-eigenvector Lanczos method: the same span, the same k-means labels
    and leaf accuracy."""
    model = HSBM(3, 2, 500, (20, 40, 80, 240), seed=0, regime="bounded")
    A = model.adjacency
    shared = spectral.adaptive_crossings(A, 8)
    per_vector = spectral.adaptive_crossings(A, 8, max_basis=8)
    assert np.allclose(shared[0], per_vector[0], rtol=1e-4)
    bases = [np.linalg.qr(X)[0] for X in (shared[1], per_vector[1])]
    cosines = np.linalg.svd(bases[0].T @ bases[1], compute_uv=False)  # of the principal angles
    assert cosines.min() > 1 - 1e-6
    labels = [spectral.kmeans_labels(X / np.linalg.norm(X, axis=1, keepdims=True), 8, 0)
              for X in (shared[1], per_vector[1])]
    assert accuracy(labels[0], labels[1]) == 1.0
    assert accuracy(model.labels[3], labels[0]) > 0.99


def test_bottom_up_records_its_stage_times(easy):
    est = BottomUp(n_clusters=8, random_state=0).fit(easy.adjacency)
    assert list(est.timings_) == ["validate", "spectral", "kmeans", "linkage"]
    assert all(t >= 0 for t in est.timings_.values())
    est = BottomUp(partitioner=lambda A: np.arange(A.shape[0]) % 3).fit(easy.adjacency)
    assert list(est.timings_) == ["validate", "partition", "linkage"]


def test_block_counts_match_the_dense_sums(easy):
    from paperlab.hierarchy.estimators import block_counts

    labels = np.random.default_rng(0).integers(0, 5, easy.n_nodes)
    edges, sizes = block_counts(easy.adjacency, labels)
    dense = easy.adjacency.toarray()
    for a in range(5):
        for b in range(5):
            assert edges[a, b] == dense[np.ix_(labels == a, labels == b)].sum()
    assert sizes.tolist() == np.bincount(labels).tolist()


def test_as_adjacency_never_edits_its_input():
    """Self-loops and stored zeros are dropped from a copy; a clean float64 CSR matrix comes
    back sharing its arrays (no copy of a large graph)."""
    from paperlab.hierarchy.estimators import as_adjacency

    # self-loops on nodes 0 and 2, a stored zero for the pair 0-2
    loops = sp.csr_matrix((np.array([2.0, 1, 0, 1, 1, 0, 1, 5]),
                           np.array([0, 1, 2, 0, 2, 0, 1, 2]), np.array([0, 3, 5, 8])),
                          shape=(3, 3))
    before = loops.copy()
    A = as_adjacency(loops)
    assert A.toarray().tolist() == [[0, 1, 0], [1, 0, 1], [0, 1, 0]] and A.nnz == 4
    assert np.array_equal(loops.data, before.data) and np.array_equal(loops.indptr,
                                                                      before.indptr)
    clean = sp.csr_matrix(np.array([[0.0, 1], [1, 0]]))
    assert np.shares_memory(as_adjacency(clean).data, clean.data)


def test_as_adjacency_sums_duplicate_entries_and_tolerates_rounding():
    from paperlab.hierarchy.estimators import as_adjacency

    # edge 0-1 stored as 0.5 + 0.5 one way and 1.0 the other: symmetric once summed
    dup = sp.csr_matrix((np.array([0.5, 0.5, 1.0, 1.0, 1.0]), np.array([1, 1, 0, 2, 1]),
                         np.array([0, 2, 4, 5])), shape=(3, 3))
    assert not dup.has_canonical_format
    A = as_adjacency(dup)
    assert A.toarray().tolist() == [[0, 1, 0], [1, 0, 1], [0, 1, 0]]
    # a 1e-13 weight one way only is rounding, not asymmetry (as before: |A - A^T| <= 1e-10)
    tiny = sp.csr_matrix(np.array([[0, 1, 1e-13], [1, 0, 1], [0, 1, 0]]))
    assert as_adjacency(tiny).nnz == 5


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
