"""Spectral clustering with the Bethe-Hessian, and the regularised spectral bipartition.

Bethe-Hessian (Saade, Krzakala & Zdeborová 2014): ``H_r = (r^2 - 1) I + D - r A``. At
``r_c = sqrt(sum d^2 / sum d - 1)`` its negative eigenvalues count the detectable
communities; with ``r = "adaptive"`` each informative eigenvector ``p`` is taken at the
smallest ``r_p > 1`` where the ``p``-th smallest eigenvalue of ``H_r`` crosses zero (the
per-eigenvector tuning of Dall'Amico et al. 2021 used by the paper's code).

Every eigenproblem is posed on the regularised Laplacian ``L_tau`` that is congruent to
``H_r`` (see :func:`regularized_laplacian`), applied as an operator: two diagonal scalings
around ``A``, so nothing the size of the graph is copied per radius. The adaptive radii of all
eigenvectors are found together in one subspace that grows by their residuals
(:func:`adaptive_crossings`): one sparse eigensolve at ``r_c`` and a few block products
with ``A``, instead of several eigensolves per eigenvector, so that a graph with 10^6 nodes
and 3 x 10^7 edges takes about a minute.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch
from sklearn.cluster import KMeans

from paperlab.core import checks

log = logging.getLogger(__name__)


def _degrees(adjacency: sp.spmatrix) -> np.ndarray:
    """``(n,)`` weighted degrees (row sums)."""
    return np.asarray(adjacency.sum(axis=1)).ravel()


def bethe_hessian(adjacency: sp.csr_matrix, r: float) -> sp.csr_matrix:
    """``H_r = (r^2 - 1) I + D - r A`` for a symmetric ``(n, n)`` adjacency (weights allowed)."""
    return (sp.diags(r * r - 1.0 + _degrees(adjacency)) - r * adjacency).tocsr()


def critical_r(adjacency: sp.csr_matrix) -> float:
    """``r_c = sqrt(sum d^2 / sum d - 1)``, the usual Bethe-Hessian radius (at least 1).

    The paper's code uses ``sqrt(sum d^2 / (sum d - 1))`` instead; the two agree to
    ``O(1 / mean degree)``, and this one is the non-backtracking spectral radius estimate.
    """
    degrees = _degrees(adjacency)
    total = degrees.sum()
    if total <= 0:
        return 1.0
    return float(np.sqrt(max((degrees**2).sum() / total - 1.0, 1.0)))


def single_precision(adjacency: sp.csr_matrix) -> sp.csr_matrix:
    """``adjacency`` with float32 weights, sharing its index arrays (float32 input as is).

    Every product with the adjacency (:func:`times`) is made in this precision. The number of
    products the adaptive embedding needs does not grow with the graph (118 columns at 10^5
    nodes, 119 at 3 x 10^5 on the benchmark's HSBM: one Lanczos solve of 54-55 products, then
    64 columns in blocks), but their cost per stored entry does: each entry gathers one row of
    the dense operand at a random place, and once those rows outgrow the core's cache the
    gathers miss it. In float64 a product cost 1.8 ns per entry at 10^5 nodes and 3.3 at 3 x
    10^5; in float32, which halves the bytes streamed and the span gathered from, 1.2 and 1.3
    (one busy core); at 10^6 nodes (6 x 10^7 entries: 480 MB of indices and weights, the size
    of this machine's last-level cache) 3.4 with SciPy's kernel and 2.2 with PyTorch's,
    streamed from memory, against ~1.1 while the matrix stays in cache. A looser Lanczos
    tolerance saves under 10 % of the products, and a block-Krylov start (8 columns, 6-10
    steps, restarted to the leading Ritz vectors) in place of the Lanczos solve needed no
    single-vector products but more columns, and was no faster at 10^6 nodes (26.5 against 25.5
    CPU seconds), so neither is used. The accuracy asked (eigen-residuals of 1e-5 relative,
    Lanczos at 1e-6) is far above float32 rounding.
    """
    if adjacency.dtype == np.float32:
        return adjacency
    return sp.csr_matrix((adjacency.data.astype(np.float32), adjacency.indices,
                          adjacency.indptr), shape=adjacency.shape)


def times(adjacency: sp.csr_matrix, X: np.ndarray) -> np.ndarray:
    """``adjacency @ X`` for a vector or an ``(n, k)`` block, in ``adjacency``'s precision,
    the block in row-major order (each stored entry then gathers one contiguous row).

    A float32 matrix with 32-bit indices (:func:`single_precision`'s copy, up to 2^31 stored
    entries) is multiplied by PyTorch's CSR kernel on the same arrays (no copy): on the
    benchmark's HSBM with 10^6 nodes and 6 x 10^7 stored entries it took 130 ms per vector
    against SciPy's 212, and 328 ms per 8-column block against 547 (one thread); at 10^5
    nodes 4.0 against 4.7 ms and 13.5 against 30.8.
    """
    X = np.asarray(X, dtype=adjacency.dtype, order="C")
    if adjacency.dtype != np.float32 or not (adjacency.indices.dtype == adjacency.indptr.dtype
                                             == np.int32):
        return adjacency @ X
    with warnings.catch_warnings():  # "sparse CSR support is in beta": the product is plain
        warnings.simplefilter("ignore", UserWarning)
        matrix = torch.sparse_csr_tensor(torch.from_numpy(adjacency.indptr),
                                         torch.from_numpy(adjacency.indices),
                                         torch.from_numpy(adjacency.data),
                                         size=adjacency.shape)
        return (matrix @ torch.from_numpy(X)).numpy()


def regularized_laplacian(adjacency: sp.csr_matrix, tau: float,
                          degrees: np.ndarray | None = None,
                          ) -> tuple[spla.LinearOperator, np.ndarray]:
    """``(L_tau = D_tau^{-1/2} A D_tau^{-1/2}, D_tau^{-1/2})`` with ``D_tau = D + tau I``.

    ``L_tau`` is an ``(n, n)`` operator (vectors or ``(n, k)`` blocks) that scales, multiplies
    by ``adjacency`` (:func:`times`, so in float32 when given :func:`single_precision`'s
    copy) and scales again; the second item is the ``(n,)`` diagonal of ``D_tau^{-1/2}``.
    ``degrees`` (the row sums) may be passed when already known.

    ``H_r = D_tau^{1/2} (I - r L_tau) D_tau^{1/2}`` for ``tau = r^2 - 1``: by Sylvester's law
    of inertia ``H_r`` has as many negative eigenvalues as ``L_tau`` has above ``1/r``, and
    ``H_r x = 0`` exactly when ``x = D_tau^{-1/2} y`` with ``L_tau y = y / r``. Working with
    ``L_tau``, whose wanted eigenvalues are its largest and well separated, is what makes
    Lanczos fast (the bottom of ``H_r`` sits next to its dense bulk).
    """
    if degrees is None:
        degrees = _degrees(adjacency)
    scale = 1.0 / np.sqrt(np.maximum(degrees + tau, 1e-300))

    def apply(x: np.ndarray) -> np.ndarray:
        s = scale if x.ndim == 1 else scale[:, None]
        return s * times(adjacency, s * x)

    n = adjacency.shape[0]
    return spla.LinearOperator((n, n), matvec=apply, matmat=apply, dtype=np.float64), scale


def _start_vector(n: int) -> np.ndarray:
    """A fixed pseudo-random Lanczos start: ARPACK's own is random per call, which made
    repeated runs with one seed differ (e.g. 7 vs 8 inversions on the power grid)."""
    return np.random.default_rng(0).standard_normal(n)


def _largest(matrix: sp.spmatrix | spla.LinearOperator, k: int, v0: np.ndarray | None = None,
             tol: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest (algebraic) eigenpairs of a symmetric matrix or operator, descending."""
    n = matrix.shape[0]
    if n <= max(64, 3 * k + 2):  # ARPACK needs k < n; tiny problems are cheaper dense
        dense = matrix @ np.eye(n)
        values, vectors = np.linalg.eigh((dense + dense.T) / 2)
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
    L, _ = regularized_laplacian(single_precision(adjacency), r * r - 1.0)
    k = min(4, n - 1, max_count)
    while True:
        values, _ = _largest(L, max(k, 1), tol=1e-4)
        above = int((values > 1.0 / r).sum())
        if above < k or k >= min(max_count, n - 1):
            return min(above, max_count)
        k = min(k + max(1, k // 2), max_count, n - 1)


class _Subspace:
    """Orthonormal columns ``V`` (``(n, m)``, node space) with ``A V`` and the projections
    ``V^T A V``, ``V^T D V``, in arrays allocated once for ``capacity`` columns.

    ``A V`` is computed and kept in float32 (``adjacency`` is :func:`single_precision`'s
    copy): it enters residuals, whose wanted size (1e-5 relative) is far above float32
    rounding, and the projections, which are accumulated in float64.
    """

    def __init__(self, adjacency: sp.csr_matrix, degrees: np.ndarray, capacity: int) -> None:
        n = adjacency.shape[0]
        self.adjacency, self.degrees = adjacency, degrees
        self._V = np.empty((n, capacity), order="F")
        self._AV = np.empty((n, capacity), dtype=np.float32, order="F")
        self.m = 0
        self.Ga = np.zeros((0, 0))
        self.Gd = np.zeros((0, 0))

    @property
    def V(self) -> np.ndarray:
        return self._V[:, :self.m]

    @property
    def AV(self) -> np.ndarray:
        return self._AV[:, :self.m]

    @property
    def room(self) -> int:
        return self._V.shape[1] - self.m

    def extend(self, T: np.ndarray) -> int:
        """Append the directions of ``T``'s columns (``(n, t)``) that the span lacks, largest
        first, as many as there is room for; return how many were added."""
        before = np.linalg.norm(T, axis=0)
        scale = float(before.max(initial=0.0))
        V = self.V
        T = T - V @ (V.T @ T)
        # A second Gram-Schmidt pass only where the first cancelled more than 1 - 1/sqrt(2)
        # of a column (Kahan and Parlett's "twice is enough"): the residuals the iteration adds
        # are nearly orthogonal to the span already (the first pass keeps > 99 % of their norm,
        # a second changes them by ~1e-17 on the benchmark's HSBM), and each pass reads V twice.
        if T.size and (np.linalg.norm(T, axis=0) < before / np.sqrt(2.0)).any():
            T = T - V @ (V.T @ T)
        if scale == 0.0 or not T.size:
            return 0
        # Orthonormal directions by the eigenvectors of T^T T, twice (a Householder QR of the
        # tall block made ~7 % of the spectral step at 10^6 nodes). The Gram matrix resolves
        # singular values down to ~1e-8 of the largest: smaller ones are in the span already.
        w, U = np.linalg.eigh(T.T @ T)
        s = np.sqrt(np.maximum(w[::-1], 0.0))
        k = min(int((s > max(1e-10 * scale, 1e-7 * s[0])).sum()), self.room)
        if k == 0:
            return 0
        T = T @ (U[:, ::-1][:, :k] / s[:k])
        w, U = np.linalg.eigh(T.T @ T)
        T = T @ ((U / np.sqrt(w)) @ U.T)  # the small factor first: one pass over T
        AT = times(self.adjacency, T)
        DT = self.degrees[:, None] * T
        VA, VD = np.hsplit(V.T @ np.hstack([AT, DT]), 2)  # one pass over V for both
        self.Ga = np.block([[self.Ga, VA], [VA.T, T.T @ AT]])
        self.Gd = np.block([[self.Gd, VD], [VD.T, T.T @ DT]])
        self.Ga = (self.Ga + self.Ga.T) / 2
        self.Gd = (self.Gd + self.Gd.T) / 2
        m = self.m
        self._V[:, m:m + k] = T
        self._AV[:, m:m + k] = AT
        self.m += k
        return k

    def ritz(self, r: float, p: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``p + 1`` largest Ritz pairs of ``L_{r^2-1}`` in the span, descending:
        values ``(p + 1,)`` and coefficients ``(m, p + 1)`` of ``x = V c`` with
        ``x^T (D + tau) x = 1`` (so ``y = D_tau^{1/2} x`` is a unit vector)."""
        m = self.m
        values, C = sla.eigh(self.Ga, self.Gd + (r * r - 1.0) * np.eye(m),
                             subset_by_index=[m - 1 - p, m - 1])
        return values[::-1], C[:, ::-1]


def _radius_step(r: float, above: bool, x_A_x: float, x_D_x: float, low: float, high: float,
                 ) -> tuple[float, float, float]:
    """One step of the search for the radius where the ``p``-th eigenvalue of ``L_{r^2-1}``
    meets ``1/r``: ``(next r, low, high)``.

    ``above`` says whether it lies above ``1/r`` at ``r`` (then the crossing is below ``r``);
    ``x_A_x``, ``x_D_x`` are ``x^T A x`` and ``x^T D x`` of its unit eigenvector ``x`` in node
    space. Holding ``x`` fixed, ``x^T H_r x = r^2 - 1 + x^T D x - r x^T A x`` is a quadratic in
    ``r`` whose smaller root is the next guess (exact at the crossing; 2-4 steps), kept inside
    the bracket ``(low, high)`` (bisection when it leaves it).
    """
    if above:
        high = r
    else:
        low = r
    discriminant = x_A_x * x_A_x - 4.0 * (x_D_x - 1.0)
    step = 0.5 * (x_A_x - np.sqrt(discriminant)) if discriminant >= 0 else -1.0
    if not low < step < high:
        step = 0.5 * (low + high)
    return step, low, high


def _projected_crossing(space: _Subspace, p: int, r: float, r_high: float, tol: float = 1e-10,
                        max_steps: int = 60) -> tuple[float, np.ndarray, np.ndarray]:
    """``(r, values, C)``: the radius in ``(1, r_high]`` where the ``p``-th Ritz value of
    ``L_{r^2-1}`` in the span equals ``1/r`` (``r_high`` when it stays below), from the guess
    ``r``, and the ``p + 1`` largest Ritz pairs there (as :meth:`_Subspace.ritz`).

    The search (:func:`_radius_step`) runs in the span of the ``p + 5`` leading Ritz vectors
    at the guess: one eigensolve of the projection, then ``(p + 5)``-sized ones. That is
    exact when the guess is, and good near it: the guesses are the previous iteration's radii.
    """
    _, Z = space.ritz(r, min(p + 4, space.m - 1))
    Ga, Gd, G = (Z.T @ M @ Z for M in (space.Ga, space.Gd, np.eye(space.m)))
    Ga, Gd, G = (Ga + Ga.T) / 2, (Gd + Gd.T) / 2, (G + G.T) / 2
    low, high = 1.0, r_high
    for _ in range(max_steps):
        values, C = sla.eigh(Ga, Gd + (r * r - 1.0) * G)
        values, C = values[::-1], C[:, ::-1]
        c = C[:, p]
        norm = c @ G @ c
        step, low, high = _radius_step(r, values[p] > 1.0 / r, c @ Ga @ c / norm,
                                       c @ Gd @ c / norm, low, high)
        if abs(step - r) < tol * r or high - low < tol * r:
            break
        r = step
    return r, values[:p + 1], Z @ C[:, :p + 1]


def _lanczos_crossing(adjacency: sp.csr_matrix, degrees: np.ndarray, p: int, r: float,
                      r_high: float, v0: np.ndarray, tol: float = 1e-5, max_steps: int = 40,
                      ) -> tuple[float, np.ndarray]:
    """``(r, x)``: the crossing of ``p`` (as :func:`adaptive_crossings`) by a Lanczos solve of
    ``L_{r^2-1}``'s ``p + 1`` largest eigenpairs at every step of :func:`_radius_step`, from
    the guess ``r`` and start vector ``v0``; stops when a step moves ``r`` by less than
    ``tol`` (relative)."""
    low, high = 1.0, r_high
    for _ in range(max_steps):
        L, scale = regularized_laplacian(adjacency, r * r - 1.0, degrees)
        values, vectors = _largest(L, p + 1, v0=v0)
        v0 = vectors.sum(axis=1)
        x = scale * vectors[:, p]
        x /= np.linalg.norm(x)
        step, low, high = _radius_step(r, values[p] > 1.0 / r, x @ times(adjacency, x),
                                       x @ (degrees * x), low, high)
        if abs(step - r) < tol * r or high - low < tol * r:
            break
        r = step
    return r, x


def adaptive_crossings(adjacency: sp.csr_matrix, n_vectors: int, tol: float = 1e-5,
                       max_basis: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Radii ``r_p`` and null vectors ``x_p`` of ``H_{r_p}`` for ``p = 1 .. n_vectors - 1``.

    ``r_p`` is the radius in ``(1, r_c]`` where the ``p``-th smallest eigenvalue of ``H_r``
    (0-based) is zero, i.e. where the ``p``-th largest eigenvalue of ``L_{r^2-1}`` equals
    ``1/r``; ``r_c`` (:func:`critical_r`) where it stays positive (an uninformative ``p``).

    All ``p`` share one subspace (a Davidson iteration): it starts as the ``n_vectors``
    leading eigenvectors of ``L_{r_c^2-1}`` (one Lanczos solve), each ``p`` finds its
    crossing and Ritz vector inside it, and the residuals of those not yet converged
    (relative eigen-residual in ``L``'s terms above ``tol``, Lanczos's own test) are added,
    scaled by ``D_tau^{-1}``. When the subspace is full (``max_basis`` columns, by default
    ``max(10 n_vectors, 40)``: it takes ``12 n max_basis`` bytes) or stops growing, the ``p``
    left over are finished one by one with Lanczos solves started from their Ritz values
    and vectors (``max_basis = n_vectors``: all of them, the per-eigenvector method).

    Returns:
        ``(r, X)``: ``(n_vectors - 1,)`` radii and ``(n, n_vectors - 1)`` unit columns.
    """
    n = adjacency.shape[0]
    n_vectors = checks.integer(n_vectors, "n_vectors", low=2, high=n)
    if max_basis is None:
        max_basis = max(10 * n_vectors, 40)
    max_basis = checks.integer(max_basis, "max_basis", low=n_vectors)
    degrees = _degrees(adjacency)
    r_high = critical_r(adjacency)
    adjacency = single_precision(adjacency)
    P = n_vectors - 1
    capacity = min(n, max_basis)
    space = _Subspace(adjacency, degrees, capacity)
    if capacity == n:  # a small graph: the whole space, every crossing exact at once
        space.extend(np.eye(n))
    else:
        L, scale = regularized_laplacian(adjacency, r_high * r_high - 1.0, degrees)
        space.extend(scale[:, None] * _largest(L, n_vectors)[1])
    r = np.full(P, r_high)
    X = np.zeros((n, P))
    done = np.zeros(P, dtype=bool)
    while True:
        todo = np.flatnonzero(~done)
        found = [_projected_crossing(space, p + 1, r[p], r_high) for p in todo]
        r[todo] = [radius for radius, _, _ in found]
        mu = np.array([values[-1] for _, values, _ in found])
        C = np.stack([ritz[:, -1] for _, _, ritz in found], axis=1)
        X[:, todo] = space.V @ C
        shift = degrees[:, None] + (r[todo] ** 2 - 1.0)[None, :]
        R = (space.AV @ C.astype(np.float32)) - shift * X[:, todo] * mu
        residual = np.linalg.norm(R / np.sqrt(shift), axis=0) / np.maximum(np.abs(mu), 1e-12)
        ok = residual <= tol
        done[todo[ok]] = True
        if done.all() or (~ok).sum() > space.room or not space.extend(R[:, ~ok] / shift[:, ~ok]):
            break
    if not done.all():
        log.info("adaptive Bethe-Hessian: %d of %d crossings left to Lanczos solves (subspace "
                 "of %d columns, residuals up to %.2g)", int((~done).sum()), P, space.m,
                 residual.max())
    for i, p in enumerate(todo):
        if not done[p]:  # start: the Ritz vectors above and at p, in L's coordinates
            v0 = np.sqrt(shift[:, i]) * (space.V @ found[i][2].sum(axis=1))
            r[p], X[:, p] = _lanczos_crossing(adjacency, degrees, p + 1, r[p], r_high, v0)
    return r, X / np.linalg.norm(X, axis=0)


def bethe_hessian_embedding(adjacency: sp.csr_matrix, n_clusters: int,
                            r: str | float = "adaptive") -> np.ndarray:
    """``(n, n_clusters)`` embedding: Bethe-Hessian eigenvectors, rows scaled to unit norm.

    ``r="adaptive"``: eigenvectors ``2..K``, each the null vector of ``H_{r_p}`` at its own
    zero crossing ``r_p`` (:func:`adaptive_crossings`; the first one, near-constant, carries
    no community information and is dropped, as in the paper's code), so ``n_clusters - 1``
    columns (one column of ones for ``n_clusters = 1``). ``r="critical"`` or a float: the
    ``K`` leading eigenvectors of ``L_{r^2-1}`` mapped back by ``D_tau^{-1/2}`` (they span the
    negative eigenspace of ``H_r`` up to the congruence; one eigenproblem instead of ``K``).
    """
    if r == "adaptive":
        X = (adaptive_crossings(adjacency, n_clusters)[1] if n_clusters > 1
             else np.ones((adjacency.shape[0], 1)))
    else:
        radius = critical_r(adjacency) if r == "critical" else float(r)
        L, scale = regularized_laplacian(single_precision(adjacency), radius * radius - 1.0)
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
