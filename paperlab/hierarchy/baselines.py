"""The peers, behind the same estimator interface: Paris (scikit-network) and Leiden
followed by average linkage ("Leiden then linkage" = bottom-up with Leiden as step 1)."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from paperlab.hierarchy import linkage
from paperlab.hierarchy.estimators import BottomUp, _Hierarchy, as_adjacency


class Paris(_Hierarchy):
    """Paris agglomerative clustering (Bonald et al. 2018) from scikit-network.

    Its dendrogram is over the nodes themselves, so ``labels_`` is ``arange(n)`` and
    ``level(k)`` cuts that node-level tree by height (not with ``cut_straight``).

    scikit-network's default ``reorder=True`` sorts the rows by height but keeps the old
    cluster ids, so a row can use a cluster "before it is formed" (SciPy rejects it; we saw
    this on HSBM graphs of 800 nodes). We ask for the raw merge order and renumber the rows
    ourselves (:func:`~paperlab.hierarchy.linkage.sort_by_height`).
    """

    def fit(self, adjacency: Any) -> Paris:
        from sknetwork.hierarchy import Paris as SknParis

        A = as_adjacency(adjacency)
        raw = np.asarray(SknParis(reorder=False).fit_predict(A), dtype=float)
        self.dendrogram_ = linkage.sort_by_height(raw)
        self.labels_ = np.arange(A.shape[0])
        self.n_clusters_ = A.shape[0]
        return self


def leiden_available() -> bool:
    """Whether the optional ``leidenalg`` and ``igraph`` packages import."""
    try:
        import igraph  # noqa: F401
        import leidenalg  # noqa: F401
    except ImportError:
        return False
    return True


def leiden_partition(adjacency: sp.csr_matrix, seed: int | None = 0) -> np.ndarray:
    """Modularity-maximising Leiden partition (weighted when the matrix is)."""
    import igraph
    import leidenalg

    upper = sp.triu(adjacency, k=1).tocoo()
    graph = igraph.Graph(n=adjacency.shape[0], edges=np.stack([upper.row, upper.col], 1).tolist())
    partition = leidenalg.find_partition(graph, leidenalg.ModularityVertexPartition,
                                         weights=upper.data.tolist(), seed=seed)
    return np.asarray(partition.membership)


def leiden_linkage(random_state: int | None = 0) -> BottomUp:
    """Leiden communities, then the paper's average linkage on densities."""
    return BottomUp(partitioner=lambda A: leiden_partition(A, random_state),
                    random_state=random_state)
