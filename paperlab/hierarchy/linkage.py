"""Dendrograms in SciPy's linkage format, and the operations the paper needs on them.

A linkage matrix ``Z`` over ``m`` leaves has ``m - 1`` rows ``[i, j, height, size]``: row
``t`` merges clusters ``i`` and ``j`` into cluster ``m + t`` (leaves are ``0..m-1``). Here
the leaves are communities, not nodes; ``height = 1 - similarity`` where the similarity of
two clusters is their edge density (scaled so that it is at most 1).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def check_linkage(Z: np.ndarray) -> np.ndarray:
    """``Z`` as a float array, or ``ValueError`` naming what makes it no linkage matrix.

    Needs shape ``(m - 1, 4)``, finite entries, and row ``t`` merging two distinct existing
    clusters (ids below ``m + t``) that no earlier row merged: otherwise the walks below index
    out of bounds or count a broken tree without complaint.
    """
    Z = np.asarray(Z)
    if Z.dtype.kind not in "iuf":
        raise ValueError(f"linkage matrix must hold numbers, got dtype {Z.dtype}")
    Z = Z.astype(float)
    if Z.ndim != 2 or Z.shape[1] != 4:
        raise ValueError(f"linkage matrix must have shape (m - 1, 4), got {Z.shape}")
    if not np.isfinite(Z).all():
        raise ValueError("linkage matrix has NaN or infinite entries")
    m = len(Z) + 1
    ids = Z[:, :2]
    if np.any(ids != np.round(ids)) or np.any(ids < 0):
        raise ValueError("linkage matrix: cluster ids (columns 0, 1) must be integers >= 0")
    used = np.zeros(2 * m - 1, dtype=bool)
    for t, (i, j) in enumerate(ids.astype(np.int64)):
        if i == j or max(i, j) >= m + t or used[i] or used[j]:
            raise ValueError(f"linkage matrix row {t} merges clusters {i} and {j}; with {m} "
                             f"leaves it must merge two distinct clusters with ids below "
                             f"{m + t} that no earlier row merged")
        used[i] = used[j] = True
    return Z


def children(Z: np.ndarray) -> np.ndarray:
    """``(m - 1, 2)`` int ids of the two clusters each row merges."""
    return np.asarray(Z)[:, :2].astype(np.int64)


def _roots(Z: np.ndarray, merges: int) -> np.ndarray:
    """Id of the cluster holding each leaf after the first ``merges`` rows."""
    m = len(Z) + 1
    parent = np.arange(2 * m - 1)
    for t, (i, j) in enumerate(children(Z)[:merges]):
        parent[i] = parent[j] = m + t
    # A parent id is always larger than its child's: resolving from high ids down to low
    # ones gives every node its top ancestor in one pass.
    for node in range(2 * m - 2, -1, -1):
        parent[node] = parent[parent[node]]
    return parent[:m]


def cut(Z: np.ndarray, n_clusters: int) -> np.ndarray:
    """Leaf labels ``0..n_clusters-1`` after undoing the last ``n_clusters - 1`` merges.

    For a monotone dendrogram (average linkage) this is the usual cut at ``n_clusters``
    clusters; for a top-down tree whose rows are in reverse breadth-first order of the
    splits it is the partition after the first ``n_clusters - 1`` splits. It never relies on
    heights, so it is right for dendrograms with inversions too.
    """
    Z = check_linkage(Z)
    m = len(Z) + 1
    if not 1 <= n_clusters <= m:
        raise ValueError(f"cannot cut a dendrogram of {m} leaves into {n_clusters} clusters")
    _, labels = np.unique(_roots(Z, m - n_clusters), return_inverse=True)
    return labels.ravel()


def top_tree(Z: np.ndarray, n_clusters: int) -> tuple[np.ndarray, np.ndarray]:
    """The tree above a cut: ``(leaf -> cut cluster labels, linkage over the cut clusters)``."""
    Z = check_linkage(Z)
    m = len(Z) + 1
    labels = cut(Z, n_clusters)
    new_id = dict(zip(_roots(Z, m - n_clusters).tolist(), labels.tolist(), strict=True))
    rows = []
    for t, (i, j) in enumerate(children(Z)[m - n_clusters:]):
        new_id[2 * m - n_clusters + t] = n_clusters + t
        rows.append([new_id[i], new_id[j], Z[m - n_clusters + t, 2], 0.0])
    small = np.array(rows, dtype=float).reshape(-1, 4)
    small[:, 3] = cluster_sizes(small)[n_clusters:]
    return labels, small


def sort_by_height(Z: np.ndarray) -> np.ndarray:
    """The same tree with its rows in order of height (ties: original order), renumbered.

    Rows are ordered by their *envelope* height, the largest height at or below them, so
    children always come before parents and the result is a valid linkage. For a tree
    without inversions the envelope is the height and the row-order cut (:func:`cut`) is the
    cut by height; rounding-level inversions (Paris has some, ~1e-7 relative) are harmless.
    """
    Z = np.asarray(Z, dtype=float)
    m = len(Z) + 1
    envelope = np.full(2 * m - 1, -np.inf)
    for t, (i, j) in enumerate(children(Z)):
        envelope[m + t] = max(envelope[i], envelope[j], Z[t, 2])
    order = np.lexsort((np.arange(len(Z)), envelope[m:]))
    new_id = np.arange(2 * m - 1)
    new_id[m + order] = m + np.arange(len(Z))
    out = Z[order].copy()
    out[:, :2] = np.sort(new_id[out[:, :2].astype(np.int64)], axis=1)
    return out


def cluster_sizes(Z: np.ndarray) -> np.ndarray:
    """Number of leaves under every cluster id ``0..2m-2``."""
    m = len(Z) + 1
    sizes = np.ones(2 * m - 1)
    for t, (i, j) in enumerate(children(Z)):
        sizes[m + t] = sizes[i] + sizes[j]
    return sizes


def count_inversions(Z: np.ndarray) -> int:
    """Merges lower than some merge below them (density above a descendant merge's).

    Average linkage never has one; a top-down tree whose heights are computed afterwards
    can (the paper's Fig. on real data).
    """
    Z = check_linkage(Z)
    m = len(Z) + 1
    highest_below = np.full(2 * m - 1, -np.inf)  # max height of any merge inside a cluster
    inversions = 0
    for t, (i, j) in enumerate(children(Z)):
        below = max(highest_below[i], highest_below[j])
        inversions += bool(Z[t, 2] < below)
        highest_below[m + t] = max(below, Z[t, 2])
    return inversions


def lca_depths(Z: np.ndarray) -> np.ndarray:
    """``(m, m)`` depth (edges from the root) of the lowest common ancestor of two leaves;
    the diagonal holds each leaf's own depth."""
    Z = check_linkage(Z)
    m = len(Z) + 1
    depth = np.zeros(2 * m - 1, dtype=np.int64)
    for t in range(m - 2, -1, -1):  # parents come after children: walk rows backwards
        i, j = children(Z)[t]
        depth[i] = depth[j] = depth[m + t] + 1
    leaves: list[list[int]] = [[leaf] for leaf in range(m)] + [[] for _ in range(m - 1)]
    result = np.diag(depth[:m]).astype(np.int64)
    for t, (i, j) in enumerate(children(Z)):
        result[np.ix_(leaves[i], leaves[j])] = depth[m + t]
        result[np.ix_(leaves[j], leaves[i])] = depth[m + t]
        leaves[m + t] = leaves[i] + leaves[j]
    return result


def draw(Z: np.ndarray, ax: Any, labels: bool = True) -> None:
    """Draw dendrogram ``Z`` on ``ax`` with height ``-log10`` of the merge's edge density.

    ``1 - density`` crowds every merge of a sparse graph near 1; the log keeps the order of
    the heights (hence the inversions) and spreads them out. Nothing is drawn for a tree with
    one leaf.
    """
    from scipy.cluster.hierarchy import dendrogram

    Z = check_linkage(Z).copy()
    if not len(Z):
        return
    Z[:, 2] = -np.log10(np.maximum(1.0 - Z[:, 2], 1e-12))
    dendrogram(Z, ax=ax, no_labels=not labels, color_threshold=0)
    ax.set_ylabel("-log10 edge density of the merge")
