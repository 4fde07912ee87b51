"""How well a hierarchy matches the truth: per-level accuracy and AMI, exact recovery,
tree recovery (LCA-depth correlation) and dendrogram inversions."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_mutual_info_score

from paperlab.hierarchy.linkage import check_linkage, count_inversions, lca_depths

__all__ = ["accuracy", "ami", "exact_recovery", "tree_correlation", "count_inversions"]


def _check_labels(**labels: np.ndarray) -> list[np.ndarray]:
    """The label arrays as 1-D arrays of one common, non-zero length, without NaN."""
    out = []
    for name, values in labels.items():
        values = np.asarray(values)
        if values.ndim != 1:
            raise ValueError(f"{name} must be a 1-D array of labels, got shape {values.shape}")
        if values.size == 0:
            raise ValueError(f"{name} is empty: no nodes to compare")
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            raise ValueError(f"{name} has NaN or infinite labels")
        out.append(values)
    if len({v.shape for v in out}) > 1:
        raise ValueError("label arrays differ in length: "
                         + " vs ".join(f"{name} {v.shape}" for name, v in zip(labels, out,
                                                                              strict=True)))
    return out


def _contingency(true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    true, pred = _check_labels(true=true, pred=pred)
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
    return float(adjusted_mutual_info_score(*_check_labels(true=true, pred=pred)))


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
    true_leaf, pred_leaf = _check_labels(true_leaf=true_leaf, pred_leaf=pred_leaf)
    true_lca = np.asarray(true_lca)
    pred_dendrogram = check_linkage(np.asarray(pred_dendrogram).reshape(-1, 4)
                                    if np.size(pred_dendrogram) == 0 else pred_dendrogram)
    for name, leaf, size in (("true_leaf", true_leaf, len(true_lca)),
                             ("pred_leaf", pred_leaf, len(pred_dendrogram) + 1)):
        if leaf.dtype.kind not in "iu" or leaf.min() < 0 or leaf.max() >= size:
            raise ValueError(f"{name} must be integer community ids in [0, {size}), got "
                             f"{leaf.dtype} values in [{leaf.min()}, {leaf.max()}]")
    if true_lca.ndim != 2 or true_lca.shape[0] != true_lca.shape[1]:
        raise ValueError(f"true_lca must be a square (K, K) array, got shape {true_lca.shape}")
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
