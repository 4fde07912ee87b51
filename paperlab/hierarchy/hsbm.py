"""The hierarchical stochastic block model (HSBM) of Dreveton et al.

Leaf communities sit at the leaves of a tree; two nodes connect independently with a
probability ``p_t`` set by the depth ``t`` of the lowest common ancestor (LCA) of their
communities (``t = depth`` when they share a community). In the paper's regime
``p_t = a_t log N / N``; in the bounded-degree regime ``p_t = a_t / N`` (expected degrees
stay constant as ``N`` grows).

The tree is given by a *group matrix*: row ``c`` holds the ancestors of leaf community
``c`` at levels ``1..L`` (any integer ids, nested). Two communities' LCA depth is the
number of leading columns on which their rows agree. A complete ``k``-ary tree is the
special case built by :class:`HSBM` itself; :meth:`HSBM.from_group_matrix` takes any
(unbalanced) tree and community sizes.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

import numpy as np
import scipy.sparse as sp

from paperlab.hierarchy.theory import check_constants


def lca_depth_from_groups(group_matrix: np.ndarray) -> np.ndarray:
    """``(K, K)`` LCA depths of leaf communities: leading columns on which two rows agree."""
    group_matrix = np.asarray(group_matrix)
    K, L = group_matrix.shape
    agree = np.ones((K, K), dtype=bool)
    depth = np.zeros((K, K), dtype=np.int64)
    for level in range(L):
        column = group_matrix[:, level]
        agree &= column[:, None] == column[None, :]
        depth += agree
    return depth


def complete_tree_groups(depth: int, branching: int) -> np.ndarray:
    """Group matrix ``(branching**depth, depth)`` of a complete ``branching``-ary tree."""
    leaves = np.arange(branching**depth)
    return np.stack([leaves // branching ** (depth - level) for level in range(1, depth + 1)],
                    axis=1)


def _sample_block(rng: np.random.Generator, rows: np.ndarray, cols: np.ndarray | None,
                  p: float) -> tuple[np.ndarray, np.ndarray]:
    """Edges of one block, each present independently with probability ``p``.

    ``cols is None`` means the diagonal block of ``rows`` (pairs ``i < j``). The number of
    edges is drawn first (binomial), then that many distinct pairs uniformly: exact, and
    O(edges) instead of O(pairs), which is what lets N = 10^5 fit in memory.
    """
    n = len(rows)
    pairs = n * (n - 1) // 2 if cols is None else n * len(cols)
    count = rng.binomial(pairs, p) if pairs else 0
    if count == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    flat = rng.choice(pairs, size=count, replace=False)
    if cols is not None:
        return rows[flat // len(cols)], cols[flat % len(cols)]
    # Index k of the strict upper triangle, row-major: row i holds n-1-i entries.
    i = (n - 2 - np.floor(np.sqrt(-8.0 * flat + 4.0 * n * (n - 1) - 7) / 2.0 - 0.5)).astype(
        np.int64)
    j = flat + i + 1 - n * (n - 1) // 2 + (n - i) * ((n - i) - 1) // 2
    return rows[i], rows[j]


class HSBM:
    """A hierarchical SBM on a complete ``branching``-ary tree of ``depth`` levels.

    Args:
        depth: number of levels ``d`` below the root (``K = branching**depth`` communities).
        branching: children per internal node (2 = binary, 3 = ternary).
        n0: nodes per leaf community (``N = K * n0``).
        a: ``d + 1`` connection constants ``a_0 < ... < a_d``; ``a_t`` applies to pairs
            whose LCA is at depth ``t`` (``a_d``: same community).
        seed: seed of the sampler (``None``: fresh entropy).
        regime: ``"log"`` for ``p_t = a_t log N / N`` (the paper's), ``"bounded"`` for
            ``p_t = a_t / N`` (bounded expected degree).

    Attributes:
        adjacency: ``(N, N)`` symmetric CSR matrix of 0/1 floats, no self-loops.
        labels: ``(d + 1, N)`` int array; ``labels[l]`` is each node's community at level
            ``l`` (``labels[0]`` all zeros, ``labels[d]`` the leaf communities).
        lca_depth: ``(K, K)`` LCA depth of each pair of leaf communities.
        probabilities: ``(K, K)`` edge probability between leaf communities.
    """

    def __init__(self, depth: int = 3, branching: int = 2, n0: int = 200,
                 a: Sequence[float] = (40, 50, 60, 100), seed: int | None = None,
                 regime: str = "log") -> None:
        if not all(isinstance(v, Integral) and not isinstance(v, bool)
                   for v in (depth, branching, n0)) or depth < 1 or branching < 2 or n0 < 1:
            raise ValueError(f"need depth >= 1, branching >= 2, n0 >= 1; got depth={depth}, "
                             f"branching={branching}, n0={n0}")
        groups = complete_tree_groups(depth, branching)
        self._build(groups, np.full(len(groups), n0), a, seed, regime)
        self.depth, self.branching = depth, branching

    @classmethod
    def from_group_matrix(cls, group_matrix: np.ndarray, sizes: Sequence[int],
                          a: Sequence[float], seed: int | None = None,
                          regime: str = "log") -> HSBM:
        """An HSBM on any tree (e.g. unbalanced): ``group_matrix`` is ``(K, L)``, ``sizes``
        the ``K`` community sizes, ``a`` the ``L + 1`` constants by LCA depth."""
        group_matrix = np.asarray(group_matrix)
        if group_matrix.ndim != 2 or len(group_matrix) != len(sizes):
            raise ValueError(f"group_matrix must be (K, L) with K = len(sizes) = {len(sizes)}; "
                             f"got shape {group_matrix.shape}")
        model = cls.__new__(cls)
        model._build(group_matrix, np.asarray(sizes), a, seed, regime)
        model.depth, model.branching = group_matrix.shape[1], None
        return model

    def _build(self, groups: np.ndarray, sizes: np.ndarray, a: Sequence[float],
               seed: int | None, regime: str) -> None:
        a = check_constants(a)
        L = groups.shape[1]
        if a.shape != (L + 1,) or np.any(a < 0):
            raise ValueError(f"a must hold {L + 1} non-negative constants; got {a.tolist()}")
        if sizes.dtype.kind not in "iu":
            raise ValueError(f"community sizes must be integers, got {sizes.dtype}")
        if np.any(sizes < 1):
            raise ValueError("every community needs at least one node")
        N = int(sizes.sum())
        scale = {"log": np.log(N) / N, "bounded": 1.0 / N}.get(regime)
        if scale is None:
            raise ValueError(f"regime must be 'log' or 'bounded', got {regime!r}")
        self.a, self.regime, self.group_matrix = a, regime, groups
        self.lca_depth = lca_depth_from_groups(groups)
        self.probabilities = a[self.lca_depth] * scale
        if self.probabilities.max() > 1:
            raise ValueError(f"edge probability {self.probabilities.max():.3g} > 1: "
                             "a is too large for this N")
        leaf = np.repeat(np.arange(len(sizes)), sizes)
        # Level-l label = id of the community's first l ancestors (prefix of its row).
        self.labels = np.zeros((L + 1, N), dtype=np.int64)
        for level in range(1, L + 1):
            _, prefix_id = np.unique(groups[:, :level], axis=0, return_inverse=True)
            self.labels[level] = prefix_id.ravel()[leaf]
        self.adjacency = self._sample(sizes, np.random.default_rng(seed))

    def _sample(self, sizes: np.ndarray, rng: np.random.Generator) -> sp.csr_matrix:
        """The adjacency: each block's edges (upper triangle), then both directions at once
        into CSR. Indices are 32-bit where they fit and the 0/1 weights are built as bytes,
        made float64 only at the end: 10^6 nodes and 3 x 10^7 edges peak near 1.5 GB."""
        starts = np.concatenate([[0], np.cumsum(sizes)])
        N = int(starts[-1])
        index = np.int32 if N < 2**31 else np.int64
        members = [np.arange(starts[c], starts[c + 1], dtype=index) for c in range(len(sizes))]
        rows, cols = [], []
        for c in range(len(sizes)):
            for c2 in range(c, len(sizes)):
                i, j = _sample_block(rng, members[c], None if c2 == c else members[c2],
                                     self.probabilities[c, c2])
                rows.append(i.astype(index, copy=False))
                cols.append(j.astype(index, copy=False))
        i, j = np.concatenate(rows), np.concatenate(cols)
        del rows, cols
        both = (np.concatenate([i, j]), np.concatenate([j, i]))
        del i, j
        # no pair repeats (blocks are disjoint, each drawn without replacement, i < j)
        pattern = sp.csr_matrix((np.ones(len(both[0]), dtype=np.int8), both), shape=(N, N))
        del both
        pattern.sort_indices()
        return sp.csr_matrix((pattern.data.astype(np.float64), pattern.indices, pattern.indptr),
                             shape=(N, N))

    @property
    def n_nodes(self) -> int:
        return self.labels.shape[1]
