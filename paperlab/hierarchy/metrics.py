"""How well a hierarchy matches the truth: per-level accuracy and AMI, exact recovery,
tree recovery (LCA-depth correlation) and dendrogram inversions."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_mutual_info_score

from paperlab.hierarchy.linkage import count_inversions, lca_depths

__all__ = ["accuracy", "ami", "exact_recovery", "tree_correlation", "count_inversions"]


def _contingency(true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    true, pred = np.asarray(true).ravel(), np.asarray(pred).ravel()
    if true.shape != pred.shape:
        raise ValueError(f"label arrays differ in length: {true.shape} vs {pred.shape}")
    _, t = np.unique(true, return_inverse=True)
    _, p = np.unique(pred, return_inverse=True)
    table = np.zeros((t.max() + 1, p.max() + 1), dtype=np.int64)
    np.add.at(table, (t, p), 1)
    return table


def accuracy(true: np.ndarray, pred: np.ndarray) -> float:
    """Share of nodes correctly labelled under the best one-to-one matching of clusters
    (Hungarian algorithm); clusters left unmatched count as wrong."""
    table = _contingency(true, pred)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / table.sum())


def ami(true: np.ndarray, pred: np.ndarray) -> float:
    """Adjusted mutual information between two partitions (1 = identical)."""
    return float(adjusted_mutual_info_score(np.asarray(true).ravel(), np.asarray(pred).ravel()))


def exact_recovery(true: np.ndarray, pred: np.ndarray) -> bool:
    """Whether ``pred`` is ``true`` up to a renaming of the clusters."""
    return accuracy(true, pred) == 1.0


def tree_correlation(true_leaf: np.ndarray, true_lca: np.ndarray, pred_leaf: np.ndarray,
                     pred_dendrogram: np.ndarray) -> float:
    """Pearson correlation, over all node pairs ``i != j``, of the true LCA depth of ``i, j``
    and its depth in the estimated tree (the paper counts a tree recovered at >= 0.9999).

    Args:
        true_leaf: ``(n,)`` true leaf community of each node.
        true_lca: ``(K, K)`` LCA depth of true communities (diagonal: their own depth).
        pred_leaf: ``(n,)`` estimated leaf community (``0..m-1``).
        pred_dendrogram: ``(m - 1, 4)`` linkage over the estimated communities.

    Nodes sharing both a true and an estimated community are interchangeable, so the sum
    runs over pairs of those cells (weighted by their pair counts), not over n^2 pairs.
    """
    pred_lca = lca_depths(pred_dendrogram) if len(pred_dendrogram) else np.zeros((1, 1))
    cells, count = np.unique(np.stack([true_leaf, pred_leaf]), axis=1, return_counts=True)
    x = np.asarray(true_lca)[np.ix_(cells[0], cells[0])].astype(float)
    y = pred_lca[np.ix_(cells[1], cells[1])].astype(float)
    w = np.outer(count, count).astype(float)
    w[np.diag_indices_from(w)] -= count  # pairs i != j within a cell
    if w.sum() <= 0:
        return float("nan")
    w /= w.sum()
    dx, dy = x - (w * x).sum(), y - (w * y).sum()
    var_x, var_y = (w * dx * dx).sum(), (w * dy * dy).sum()
    if var_x <= 0 or var_y <= 0:
        return float("nan")
    return float((w * dx * dy).sum() / np.sqrt(var_x * var_y))
