"""The spectral step's eigensolvers on float32 products: against dense references, and with a
number of products with the adjacency that does not grow with the graph."""

import numpy as np
import pytest
from scipy.optimize import brentq

from paperlab.hierarchy import spectral
from paperlab.hierarchy.hsbm import HSBM


def _cosines(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Cosines of the principal angles between the spans of the columns of X and Y."""
    bases = [np.linalg.qr(M)[0] for M in (X, Y)]
    return np.linalg.svd(bases[0].T @ bases[1], compute_uv=False)


def test_single_precision_copies_only_the_weights():
    A = HSBM(depth=2, branching=2, n0=80, a=(2, 10, 40), seed=5).adjacency
    single = spectral.single_precision(A)
    assert single.dtype == np.float32 and A.dtype == np.float64
    assert np.shares_memory(single.indices, A.indices)
    assert np.shares_memory(single.indptr, A.indptr)
    assert spectral.single_precision(single) is single
    X = np.random.default_rng(0).standard_normal((A.shape[0], 3))
    assert np.allclose(spectral.times(single, X), A @ X, rtol=1e-5, atol=1e-5)


def test_leading_eigenvectors_match_a_dense_reference():
    """Lanczos on the float32 operator L_tau (at r_c, K = 8, the benchmark's HSBM shape) gives
    the dense eigenvalues and spans the dense leading eigenvectors."""
    A = HSBM(3, 2, 60, (20, 40, 80, 240), seed=0, regime="bounded").adjacency
    r = spectral.critical_r(A)
    L, _ = spectral.regularized_laplacian(spectral.single_precision(A), r * r - 1.0)
    values, vectors = spectral._largest(L, 8)
    scale = 1.0 / np.sqrt(np.asarray(A.sum(axis=1)).ravel() + r * r - 1.0)
    dense_values, dense_vectors = np.linalg.eigh(scale[:, None] * A.toarray() * scale)
    assert values == pytest.approx(dense_values[::-1][:8], rel=1e-5)
    assert _cosines(vectors, dense_vectors[:, -8:]).min() > 1 - 1e-8


def test_adaptive_subspace_matches_a_dense_reference():
    """The span of the adaptive null vectors is the span of the dense H_r null vectors at the
    dense crossings."""
    A = HSBM(depth=2, branching=2, n0=80, a=(2, 10, 40), seed=5).adjacency
    r_c = spectral.critical_r(A)
    radii, X = spectral.adaptive_crossings(A, 4)
    reference = []
    for p in (1, 2, 3):
        def smallest(r: float, p: int = p) -> float:
            return np.linalg.eigvalsh(spectral.bethe_hessian(A, r).toarray())[p]

        r = brentq(smallest, 1.0 + 1e-9, r_c, xtol=1e-12)
        assert radii[p - 1] == pytest.approx(r, rel=1e-5)
        reference.append(np.linalg.eigh(spectral.bethe_hessian(A, r).toarray())[1][:, p])
    assert _cosines(X, np.stack(reference, axis=1)).min() > 1 - 1e-6


def test_products_with_the_adjacency_do_not_grow_with_the_graph(monkeypatch):
    """Columns multiplied by the adjacency (Lanczos and the shared subspace together) on two
    bounded-degree HSBMs 4x apart: a count of work, not a timing."""
    original = spectral.times
    counts = []
    for n0 in (500, 2000):
        used = [0]

        def counted(adjacency, X, used=used):
            used[0] += 1 if X.ndim == 1 else X.shape[1]
            return original(adjacency, X)

        monkeypatch.setattr(spectral, "times", counted)
        A = HSBM(3, 2, n0, (20, 40, 80, 240), seed=0, regime="bounded").adjacency
        spectral.adaptive_crossings(A, 8)
        counts.append(used[0])
    assert 0 < counts[1] <= 1.1 * counts[0]
