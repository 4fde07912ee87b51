"""Spectral clustering with the Bethe-Hessian, and the regularised spectral bipartition.

Bethe-Hessian (Saade, Krzakala & Zdeborová 2014): ``H_r = (r^2 - 1) I + D - r A``. At
``r_c = sqrt(sum d^2 / sum d - 1)`` its negative eigenvalues count the detectable
communities; with ``r = "adaptive"`` each informative eigenvector ``p`` is taken at the
smallest ``r_p > 1`` where the ``p``-th smallest eigenvalue of ``H_r`` crosses zero (the
per-eigenvector tuning of Dall'Amico et al. 2021 used by the paper's code).

All eigenproblems are sparse (ARPACK ``eigsh``) and posed on the regularised Laplacian
``L_tau`` that is congruent to ``H_r`` (see :func:`regularized_laplacian`), so graphs with
10^5 nodes fit.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from sklearn.cluster import KMeans


def bethe_hessian(adjacency: sp.csr_matrix, r: float) -> sp.csr_matrix:
    """``H_r = (r^2 - 1) I + D - r A`` for a symmetric ``(n, n)`` adjacency (weights allowed)."""
    degrees = np.asarray(adjacency.sum(axis=1)).ravel()
    return (sp.diags(r * r - 1.0 + degrees) - r * adjacency).tocsr()


def critical_r(adjacency: sp.csr_matrix) -> float:
    """``r_c = sqrt(sum d^2 / sum d - 1)``, the usual Bethe-Hessian radius (at least 1).

    The paper's code uses ``sqrt(sum d^2 / (sum d - 1))`` instead; the two agree to
    ``O(1 / mean degree)``, and this one is the non-backtracking spectral radius estimate.
    """
    degrees = np.asarray(adjacency.sum(axis=1)).ravel()
    total = degrees.sum()
    if total <= 0:
        return 1.0
    return float(np.sqrt(max((degrees**2).sum() / total - 1.0, 1.0)))


def regularized_laplacian(adjacency: sp.csr_matrix, tau: float) -> tuple[sp.csr_matrix,
                                                                           np.ndarray]:
    """``(L_tau = D_tau^{-1/2} A D_tau^{-1/2}, D_tau^{-1/2})`` with ``D_tau = D + tau I``.

    ``H_r = D_tau^{1/2} (I - r L_tau) D_tau^{1/2}`` for ``tau = r^2 - 1``: by Sylvester's law
    of inertia ``H_r`` has as many negative eigenvalues as ``L_tau`` has above ``1/r``, and
    ``H_r x = 0`` exactly when ``x = D_tau^{-1/2} y`` with ``L_tau y = y / r``. Working with
    ``L_tau``, whose wanted eigenvalues are its largest and well separated, is what makes
    ARPACK fast (the bottom of ``H_r`` sits next to its dense bulk).
    """
    degrees = np.asarray(adjacency.sum(axis=1)).ravel()
    scale = 1.0 / np.sqrt(np.maximum(degrees + tau, 1e-300))
    L = adjacency.tocsr(copy=True)
    rows = np.repeat(np.arange(L.shape[0]), np.diff(L.indptr))
    L.data *= scale[rows] * scale[L.indices]
    return L, scale


def _start_vector(n: int) -> np.ndarray:
    """A fixed pseudo-random Lanczos start: ARPACK's own is random per call, which made
    repeated runs with one seed differ (e.g. 7 vs 8 inversions on the power grid)."""
    return np.random.default_rng(0).standard_normal(n)


def _largest(matrix: sp.spmatrix, k: int, v0: np.ndarray | None = None, tol: float = 1e-6,
             ) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest (algebraic) eigenpairs of a symmetric matrix, descending."""
    n = matrix.shape[0]
    if n <= max(64, 3 * k + 2):  # ARPACK needs k < n; tiny problems are cheaper dense
        values, vectors = np.linalg.eigh(matrix.toarray())
        return values[::-1][:k], vectors[:, ::-1][:, :k]
    if v0 is None:
        v0 = _start_vector(n)
    values, vectors = spla.eigsh(matrix, k=k, which="LA", v0=v0, tol=tol, maxiter=max(1000, n))
    order = np.argsort(values)[::-1]
    return values[order], vectors[:, order]


def count_negative_eigenvalues(adjacency: sp.csr_matrix, r: float | None = None,
                               max_count: int = 64) -> int:
    """Number of negative eigenvalues of ``H_r`` (``r_c`` by default), capped at ``max_count``.

    Counted as the eigenvalues of ``L_{r^2-1}`` above ``1/r`` (same number, see
    :func:`regularized_laplacian`). The first eigenvalue below the threshold sits at the
    edge of the bulk, where Lanczos converges slowly, so the number asked for grows by half
    each round (not doubling) to keep few bulk eigenvalues in any request.
    """
    n = adjacency.shape[0]
    r = critical_r(adjacency) if r is None else r
    L, _ = regularized_laplacian(adjacency, r * r - 1.0)
    k = min(4, n - 1, max_count)
    while True:
        values, _ = _largest(L, max(k, 1), tol=1e-4)
        above = int((values > 1.0 / r).sum())
        if above < k or k >= min(max_count, n - 1):
            return min(above, max_count)
        k = min(k + max(1, k // 2), max_count, n - 1)


def _zero_crossing(adjacency: sp.csr_matrix, p: int, r_high: float, tol: float = 1e-4,
                   max_steps: int = 40) -> tuple[float, np.ndarray]:
    """Smallest ``r`` in ``(1, r_high]`` where the ``p``-th smallest eigenvalue of ``H_r``
    (0-based) is zero, and its eigenvector ``x`` there.

    Equivalently ``f(r) = l_p(L_{r^2-1}) - 1/r = 0`` with ``l_p`` the ``p``-th largest
    eigenvalue; ``f > 0`` at ``r_high`` for an informative ``p`` and ``f <= 0`` near 1.
    Step: hold ``x = D_tau^{-1/2} y`` fixed; ``x^T H_r x = r^2 - 1 + x^T D x - r x^T A x``
    (unit ``x``) is a quadratic in ``r`` whose smaller root is the next guess (exact at the
    crossing; converges in 2-4 steps). Kept inside a bracket from the sign of ``f``.
    """
    degrees = np.asarray(adjacency.sum(axis=1)).ravel()
    low, high = 1.0, r_high
    r, vector = r_high, None
    for _ in range(max_steps):
        L, scale = regularized_laplacian(adjacency, r * r - 1.0)
        values, vectors = _largest(L, p + 1, v0=vector)
        vector = vectors.sum(axis=1)
        x = scale * vectors[:, p]
        x /= np.linalg.norm(x)
        if values[p] > 1.0 / r:
            high = r
        else:
            low = r
        b, c = x @ (adjacency @ x), x @ (degrees * x) - 1.0
        discriminant = b * b - 4.0 * c
        step = 0.5 * (b - np.sqrt(discriminant)) if discriminant >= 0 else -1.0
        if not low < step < high:
            step = 0.5 * (low + high)
        if abs(step - r) < tol * r or high - low < tol * r:
            return r, x
        r = step
    return r, x


def bethe_hessian_embedding(adjacency: sp.csr_matrix, n_clusters: int,
                            r: str | float = "adaptive") -> np.ndarray:
    """``(n, n_clusters)`` embedding: Bethe-Hessian eigenvectors, rows scaled to unit norm.

    ``r="adaptive"``: eigenvectors ``2..K``, each the null vector of ``H_{r_p}`` at its own
    zero crossing ``r_p`` (the first one, near-constant, carries no community information
    and is dropped, as in the paper's code). ``r="critical"`` or a float: the ``K`` leading
    eigenvectors of ``L_{r^2-1}`` mapped back by ``D_tau^{-1/2}`` (they span the negative
    eigenspace of ``H_r`` up to the congruence; one eigenproblem instead of ``K``).
    """
    if r == "adaptive":
        r_c = critical_r(adjacency)
        columns = [_zero_crossing(adjacency, p, r_c)[1] for p in range(1, n_clusters)]
        X = np.stack(columns, axis=1) if columns else np.ones((adjacency.shape[0], 1))
    else:
        radius = critical_r(adjacency) if r == "critical" else float(r)
        L, scale = regularized_laplacian(adjacency, radius * radius - 1.0)
        X = scale[:, None] * _largest(L, n_clusters)[1]
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.where(norms > 0, norms, 1.0)


def kmeans_labels(X: np.ndarray, n_clusters: int, seed: int | None) -> np.ndarray:
    """k-means labels (10 restarts) of the rows of ``X``."""
    return KMeans(n_clusters=n_clusters, n_init=10, random_state=seed).fit_predict(X)


def regularized_bipartition(adjacency: sp.csr_matrix, tau: float = 0.1,
                            seed: int | None = None) -> np.ndarray:
    """Two-way regularised spectral clustering (Amini et al. 2013; Joseph & Yu 2016).

    ``A_tau = A + tau * dbar / n * 1 1^T`` (kept implicit: a sparse matrix plus a rank-one
    term), the two bottom eigenvectors of ``I - D_tau^{-1/2} A_tau D_tau^{-1/2}`` (= the two
    top ones of the normalised ``A_tau``), then 2-means. Returns 0/1 labels of length n.
    """
    n = adjacency.shape[0]
    degrees = np.asarray(adjacency.sum(axis=1)).ravel()
    shift = tau * degrees.mean()
    scale = 1.0 / np.sqrt(degrees + shift)

    def normalized(x: np.ndarray) -> np.ndarray:
        y = scale[:, None] * x.reshape(n, -1)
        y = adjacency @ y + (shift / n) * y.sum(axis=0, keepdims=True)
        return (scale[:, None] * y).reshape(x.shape)

    if n <= 64:
        dense = normalized(np.eye(n))
        vectors = np.linalg.eigh(dense)[1][:, -2:]
    else:
        operator = spla.LinearOperator((n, n), matvec=normalized, matmat=normalized,
                                       dtype=float)
        vectors = spla.eigsh(operator, k=2, which="LA", v0=_start_vector(n), tol=1e-6,
                             maxiter=max(1000, n))[1]
    return kmeans_labels(vectors, 2, seed)
