"""Bottom-up and top-down hierarchical community detection (scikit-learn style).

``BottomUp`` (the paper's Algorithm): cluster the nodes into the finest communities with
Bethe-Hessian spectral clustering, then merge them by average linkage on edge densities.
``TopDown``: split recursively in two with regularised spectral clustering while the
sub-graph's Bethe-Hessian still shows two communities; merge heights are computed after the
fact, which is how inversions appear.

Both take a SciPy sparse matrix, a dense array or a NetworkX graph (rows in ``G.nodes``
order; edge attribute ``weight`` when present) and expose

- ``labels_``: ``(n,)`` leaf community of every node (``0..n_clusters_-1``);
- ``dendrogram_``: ``(n_clusters_ - 1, 4)`` SciPy linkage matrix over those communities
  (``scipy.cluster.hierarchy.dendrogram(est.dendrogram_)`` draws it);
- ``level(k)``: ``(n,)`` node labels of the partition into ``k`` clusters.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order, connected_components

from paperlab.hierarchy import linkage, spectral

Partitioner = Callable[[sp.csr_matrix], np.ndarray]


def as_adjacency(graph: Any) -> sp.csr_matrix:
    """Validate a graph and return its ``(n, n)`` CSR adjacency (float64, no self-loops).

    A float64 CSR matrix that is already canonical (sorted, no duplicates), without
    self-loops or stored zeros, comes back sharing its arrays (a large graph is not copied);
    anything else is converted into new arrays. The input is never modified.

    Raises:
        TypeError: not a matrix or a NetworkX graph.
        ValueError: not square, empty, non-finite, negative or non-symmetric weights, or
            disconnected (these methods assume one connected graph; use
            :func:`largest_component` first).
    """
    if hasattr(graph, "nodes") and hasattr(graph, "edges"):
        import networkx as nx

        if graph.is_directed():
            raise ValueError("graph is directed; pass an undirected graph")
        matrix = nx.to_scipy_sparse_array(graph, nodelist=list(graph.nodes), weight="weight",
                                          format="csr")
    elif sp.issparse(graph) or isinstance(graph, np.ndarray):
        matrix = graph
    else:
        raise TypeError(f"expected a SciPy sparse matrix, a NumPy array or a NetworkX graph, "
                        f"got {type(graph).__name__}")
    if matrix.dtype.kind not in "biuf":
        raise TypeError(f"adjacency must hold real edge weights, got dtype {matrix.dtype}")
    A = sp.csr_matrix(matrix, dtype=np.float64)  # may share the caller's arrays: never edited
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"adjacency must be square, got shape {A.shape}")
    if A.shape[0] < 2:
        raise ValueError(f"graph has {A.shape[0]} node(s); need at least 2")
    if not np.all(np.isfinite(A.data)):
        raise ValueError("adjacency has NaN or infinite weights")
    if np.any(A.data < 0):
        raise ValueError(f"adjacency has negative weights (min {A.data.min():.3g}); "
                         "weights must be >= 0")
    if not A.has_canonical_format:  # sorted, without duplicates: what _check_symmetric compares
        A = A.copy()
        A.sum_duplicates()
    _check_symmetric(A)
    if A.diagonal().any():
        A = (A - sp.diags(A.diagonal())).tocsr()
    if not A.data.all():  # stored zeros (or the self-loops just removed)
        A = A.copy()
        A.eliminate_zeros()
    if A.nnz == 0:
        raise ValueError("graph has no edges")
    reached = breadth_first_order(A, 0, directed=True, return_predecessors=False)
    if len(reached) < A.shape[0]:  # A is symmetric: out-edges from node 0 reach its component
        n_components, _ = connected_components(A, directed=False)
        raise ValueError(f"graph is disconnected ({n_components} connected components); "
                         "run on each component, e.g. largest_component(adjacency)")
    return A


def _check_symmetric(A: sp.csr_matrix) -> None:
    """``ValueError`` unless the canonical CSR ``A`` equals its transpose up to ``1e-10`` of
    its largest weight. One transposed copy, compared array by array; the full difference
    ``|A - A^T|`` is formed only when the sparsity patterns differ."""
    T = A.T.tocsr()  # the transpose comes out with sorted indices
    tolerance = 1e-10 * max(1.0, float(np.abs(A.data).max(initial=0.0)))
    if np.array_equal(A.indptr, T.indptr) and np.array_equal(A.indices, T.indices):
        worst = float(np.abs(A.data - T.data).max(initial=0.0))
    else:
        asymmetry = abs(A - T)
        worst = float(asymmetry.max()) if asymmetry.nnz else 0.0
    if worst > tolerance:
        raise ValueError(f"adjacency is not symmetric (max |A - A^T| = {worst:.3g}); "
                         "pass an undirected graph")


def largest_component(adjacency: sp.spmatrix) -> np.ndarray:
    """Indices of the nodes of the largest connected component."""
    _, component = connected_components(adjacency, directed=False)
    return np.flatnonzero(component == np.bincount(component).argmax())


def _check_count(name: str, value: int, low: int = 1) -> None:
    """``ValueError`` unless ``value`` is an integer >= ``low`` (a count of clusters, nodes)."""
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def _check_n_clusters(n_clusters: int | None, n: int) -> None:
    if n_clusters is not None:
        _check_count("n_clusters", n_clusters)
    if n_clusters is not None and not 1 <= n_clusters <= n:
        raise ValueError(f"n_clusters={n_clusters} but the graph has {n} nodes; "
                         f"need 1 <= n_clusters <= {n}")


def block_counts(adjacency: sp.csr_matrix, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(edge weight between every pair of clusters, cluster sizes)``; the diagonal holds
    twice a cluster's internal weight (each edge seen from both ends)."""
    m = int(labels.max()) + 1
    membership = sp.csr_matrix((np.ones(len(labels)), (np.arange(len(labels)), labels)),
                               shape=(len(labels), m))
    # A @ M first: a CSR product with no transposed copy of the (large) adjacency
    return (membership.T @ (adjacency @ membership)).toarray(), np.bincount(labels, minlength=m)


def average_linkage(edges: np.ndarray, sizes: np.ndarray, max_weight: float = 1.0) -> np.ndarray:
    """Average linkage on densities: merge the pair with the largest ``e(A,B)/(|A||B|)``.

    Merging adds edge counts and sizes, so a merged density is a size-weighted mean of the
    two it replaces and heights ``1 - density / max_weight`` never decrease (no inversion).
    Returns the ``(m - 1, 4)`` SciPy linkage matrix over the ``m`` clusters.
    """
    m = len(sizes)
    edges = np.array(edges, dtype=float, copy=True)
    sizes = np.asarray(sizes, dtype=float)
    ids = list(range(m))  # linkage id of the cluster in each slot
    alive = np.ones(m, dtype=bool)
    leaves = np.ones(m)
    Z = np.zeros((max(m - 1, 0), 4))
    for t in range(m - 1):
        density = edges / np.outer(sizes, sizes)
        density[~alive, :] = density[:, ~alive] = -np.inf
        np.fill_diagonal(density, -np.inf)
        i, j = np.unravel_index(np.argmax(density), density.shape)
        i, j = min(i, j), max(i, j)
        Z[t] = [min(ids[i], ids[j]), max(ids[i], ids[j]),
                max(1.0 - density[i, j] / max_weight, 0.0), leaves[i] + leaves[j]]
        # Slot i becomes the union; slot j dies.
        edges[i, :] += edges[j, :]
        edges[:, i] += edges[:, j]
        sizes[i] += sizes[j]
        leaves[i] += leaves[j]
        alive[j] = False
        ids[i] = m + t
    return Z


class _Hierarchy:
    """What both estimators share: the ``level(k)`` cut and the fitted-state check."""

    labels_: np.ndarray
    dendrogram_: np.ndarray
    n_clusters_: int

    def level(self, k: int) -> np.ndarray:
        """``(n,)`` node labels of the partition into ``k`` clusters (``1 <= k <= n_clusters_``)."""
        if not hasattr(self, "labels_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit(adjacency) first")
        if not isinstance(k, int | np.integer) or not 1 <= k <= self.n_clusters_:
            raise ValueError(f"level({k}): the tree has {self.n_clusters_} leaf communities; "
                             f"need 1 <= k <= {self.n_clusters_}")
        return linkage.cut(self.dendrogram_, k)[self.labels_]


class BottomUp(_Hierarchy):
    """Bottom-up hierarchical community detection (spectral clustering, then linkage).

    Args:
        n_clusters: number of finest communities ``K``; ``None`` estimates it as the number
            of negative eigenvalues of the Bethe-Hessian at ``r_c`` (capped at
            ``max_clusters``).
        r: Bethe-Hessian radius: ``"adaptive"`` (per-eigenvector, the paper's), ``"critical"``
            (``r_c``) or a float.
        edge_split: ``None``, or the probability ``q`` (e.g. 0.9) that an edge goes to the
            graph used for clustering; the other edges alone give the linkage densities
            (the paper's variant for the bounded-degree regime).
        partitioner: replaces the spectral step: a function ``adjacency -> labels`` (e.g.
            Leiden), in which case ``n_clusters`` is whatever it returns.
        max_clusters: cap on the estimated ``K``.
        random_state: seed of k-means and of the edge split.

    Attributes:
        labels_, dendrogram_, n_clusters_: see the module docstring.
        timings_: wall seconds of the last fit by stage: ``validate`` (input checks and the
            edge split), ``spectral`` (estimating ``K`` and the Bethe-Hessian embedding) and
            ``kmeans``, or ``partition`` (the given partitioner), then ``linkage`` (edge
            counts between communities and average linkage).
    """

    def __init__(self, n_clusters: int | None = None, r: str | float = "adaptive",
                 edge_split: float | None = None, partitioner: Partitioner | None = None,
                 max_clusters: int = 64, random_state: int | None = None) -> None:
        self.n_clusters = n_clusters
        self.r = r
        self.edge_split = edge_split
        self.partitioner = partitioner
        self.max_clusters = max_clusters
        self.random_state = random_state

    def fit(self, adjacency: Any) -> BottomUp:
        """Cluster the nodes of ``adjacency`` and build the dendrogram; returns ``self``."""
        timings: dict[str, float] = {}
        start = time.perf_counter()

        def lap(stage: str) -> None:
            nonlocal start
            now = time.perf_counter()
            timings[stage], start = now - start, now

        A = as_adjacency(adjacency)
        _check_n_clusters(self.n_clusters, A.shape[0])
        _check_count("max_clusters", self.max_clusters)
        if self.edge_split is not None and not 0 < self.edge_split < 1:
            raise ValueError(f"edge_split must be in (0, 1), got {self.edge_split}")
        if self.r not in ("adaptive", "critical") and not (
                isinstance(self.r, int | float) and np.isfinite(self.r) and self.r > 0):
            raise ValueError(f"r must be 'adaptive', 'critical' or a positive finite radius, "
                             f"got {self.r!r}")
        cluster_graph, linkage_graph = A, A
        if self.edge_split is not None:
            cluster_graph, linkage_graph = split_edges(A, self.edge_split, self.random_state)
        lap("validate")
        if self.partitioner is not None:
            found = np.asarray(self.partitioner(cluster_graph))
            if found.shape != (A.shape[0],) or (found.dtype.kind == "f"
                                                 and not np.isfinite(found).all()):
                raise ValueError(f"the partitioner must return one finite label per node, "
                                 f"shape ({A.shape[0]},); got {found.dtype} {found.shape}")
            labels = np.unique(found, return_inverse=True)[1]
            lap("partition")
        else:
            K = self.n_clusters or max(1, spectral.count_negative_eigenvalues(
                cluster_graph, max_count=self.max_clusters))
            labels = np.zeros(A.shape[0], dtype=np.int64)
            X = spectral.bethe_hessian_embedding(cluster_graph, K, self.r) if K > 1 else None
            lap("spectral")
            if X is not None:
                labels = spectral.kmeans_labels(X, K, self.random_state)
            lap("kmeans")
        # k-means may leave a cluster empty: renumber to 0..K'-1.
        _, self.labels_ = np.unique(labels.ravel(), return_inverse=True)
        self.n_clusters_ = int(self.labels_.max()) + 1
        edges, sizes = block_counts(linkage_graph, self.labels_)
        self.dendrogram_ = average_linkage(edges, sizes, linkage_graph.data.max())
        lap("linkage")
        self.timings_ = timings
        return self


def split_edges(adjacency: sp.csr_matrix, q: float,
                seed: int | None) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Each undirected edge goes to the first graph with probability ``q``, else the second."""
    upper = sp.triu(adjacency, k=1).tocoo()
    keep = np.random.default_rng(seed).random(upper.nnz) < q

    def graph(mask: np.ndarray) -> sp.csr_matrix:
        part = sp.coo_matrix((upper.data[mask], (upper.row[mask], upper.col[mask])),
                             shape=adjacency.shape)
        return (part + part.T).tocsr()

    return graph(keep), graph(~keep)


class TopDown(_Hierarchy):
    """Top-down (divisive) hierarchical community detection.

    Splits a cluster in two with regularised spectral clustering (``tau``) while the
    Bethe-Hessian of its sub-graph, at ``r = sqrt(sum d^2 / sum d - 1)`` of that sub-graph,
    has at least two negative eigenvalues (and it has at least ``min_size`` nodes); at most
    ``max_clusters`` leaves. Afterwards each split gets the height ``1 - e(L, R)/(|L||R|)``,
    which need not grow up the tree (inversions).

    Args:
        tau: regularisation of ``A + tau * dbar / n * 1 1^T``.
        min_size: clusters smaller than this are not split.
        max_clusters: stop after this many leaves.
        random_state: seed of the 2-means.
    """

    def __init__(self, tau: float = 0.1, min_size: int = 4, max_clusters: int = 64,
                 random_state: int | None = None) -> None:
        self.tau = tau
        self.min_size = min_size
        self.max_clusters = max_clusters
        self.random_state = random_state

    def _splits(self, A: sp.csr_matrix, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The two halves of ``nodes``, or ``None`` when the stopping rule says stop."""
        if len(nodes) < max(self.min_size, 2):
            return None
        sub = A[nodes][:, nodes].tocsr()
        if sub.nnz == 0 or spectral.count_negative_eigenvalues(sub, max_count=2) < 2:
            return None
        side = spectral.regularized_bipartition(sub, self.tau, self.random_state)
        if side.min() == side.max():
            return None
        return nodes[side == 0], nodes[side == 1]

    def fit(self, adjacency: Any) -> TopDown:
        """Split ``adjacency`` recursively and build the dendrogram; returns ``self``."""
        A = as_adjacency(adjacency)
        _check_count("max_clusters", self.max_clusters)
        _check_count("min_size", self.min_size)
        if not (isinstance(self.tau, int | float) and np.isfinite(self.tau) and self.tau >= 0):
            raise ValueError(f"tau must be a finite regularisation >= 0, got {self.tau!r}")
        # Breadth-first: level l of the recursion is the first 2^l - 1 splits, so cutting the
        # dendrogram at k clusters gives the first k - 1 splits (see linkage.cut).
        clusters = [np.arange(A.shape[0])]
        splits: list[tuple[int, int, int]] = []  # (parent, left, right) cluster indices
        queue = [0]
        while queue and len(clusters) < self.max_clusters:
            parent = queue.pop(0)
            halves = self._splits(A, clusters[parent])
            if halves is None:
                continue
            splits.append((parent, len(clusters), len(clusters) + 1))
            clusters.extend(halves)
            queue.extend([len(clusters) - 2, len(clusters) - 1])
        self._build_tree(A, clusters, splits)
        return self

    def _build_tree(self, A: sp.csr_matrix, clusters: list[np.ndarray],
                    splits: list[tuple[int, int, int]]) -> None:
        split_parents = {p for p, _, _ in splits}
        leaves = [c for c in range(len(clusters)) if c not in split_parents]
        linkage_id = {c: i for i, c in enumerate(leaves)}
        self.labels_ = np.empty(A.shape[0], dtype=np.int64)
        for c in leaves:
            self.labels_[clusters[c]] = linkage_id[c]
        self.n_clusters_ = len(leaves)
        max_weight = A.data.max()
        rows = []
        for t, (parent, left, right) in enumerate(reversed(splits)):
            linkage_id[parent] = self.n_clusters_ + t
            between = A[clusters[left]][:, clusters[right]].sum()
            density = between / (len(clusters[left]) * len(clusters[right]))
            a, b = sorted((linkage_id[left], linkage_id[right]))
            rows.append([a, b, max(1.0 - density / max_weight, 0.0), 0.0])
        Z = np.array(rows, dtype=float).reshape(-1, 4)
        Z[:, 3] = linkage.cluster_sizes(Z)[self.n_clusters_:]
        self.dendrogram_ = Z
