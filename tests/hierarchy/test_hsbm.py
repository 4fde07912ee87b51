import numpy as np
import pytest

from paperlab.hierarchy.hsbm import HSBM, _sample_block, lca_depth_from_groups


def test_labels_are_nested_and_sized():
    model = HSBM(depth=3, branching=2, n0=20, a=(1, 2, 4, 8), seed=0)
    assert model.labels.shape == (4, 160)
    for level in range(1, 4):
        assert len(np.unique(model.labels[level])) == 2**level
        assert np.all(np.bincount(model.labels[level]) == 160 // 2**level)
        # every level-l group sits inside one level-(l-1) group
        for group in np.unique(model.labels[level]):
            assert len(np.unique(model.labels[level - 1][model.labels[level] == group])) == 1


def test_adjacency_is_simple_symmetric_and_binary():
    A = HSBM(depth=2, branching=3, n0=30, a=(2, 8, 25), seed=1).adjacency
    assert (A != A.T).nnz == 0
    assert A.diagonal().sum() == 0
    assert set(np.unique(A.data)) == {1.0}


def test_edge_density_per_lca_depth_matches_probabilities():
    model = HSBM(depth=2, branching=2, n0=300, a=(10, 30, 90), seed=2)
    A, leaf = model.adjacency, model.labels[-1]
    for c in range(4):
        for c2 in range(4):
            block = A[leaf == c][:, leaf == c2]
            pairs = 300 * 299 if c == c2 else 300 * 300
            p = model.probabilities[c, c2]
            expected_sd = np.sqrt(p * (1 - p) / pairs)
            assert abs(block.sum() / pairs - p) < 5 * expected_sd + 1e-12


def test_triangle_sampler_covers_every_pair_exactly_once():
    rng = np.random.default_rng(0)
    for n in (2, 3, 7, 50):
        i, j = _sample_block(rng, np.arange(n), None, 1.0)
        assert sorted(zip(i.tolist(), j.tolist(), strict=True)) == [
            (a, b) for a in range(n) for b in range(a + 1, n)]


def test_unbalanced_tree_from_group_matrix():
    groups = np.array([[0, 0], [0, 1], [1, 2], [1, 2]])  # last two share both ancestors
    assert lca_depth_from_groups(groups).tolist() == [[2, 1, 0, 0], [1, 2, 0, 0],
                                                      [0, 0, 2, 2], [0, 0, 2, 2]]
    model = HSBM.from_group_matrix(groups, sizes=[10, 20, 5, 5], a=(1, 2, 3), seed=0)
    assert model.n_nodes == 40
    assert len(np.unique(model.labels[1])) == 2 and len(np.unique(model.labels[2])) == 3


def test_bounded_regime_scales_as_a_over_n():
    model = HSBM(depth=1, branching=2, n0=500, a=(2, 8), seed=0, regime="bounded")
    assert np.allclose(np.diag(model.probabilities), 8 / 1000)


@pytest.mark.parametrize("kwargs", [dict(a=(1, 2)), dict(a=(-1, 2, 3, 4)), dict(n0=0),
                                    dict(a=(1, 2, 3, 1e9)), dict(regime="dense")])
def test_bad_parameters_raise(kwargs):
    with pytest.raises(ValueError):
        HSBM(**{"depth": 3, "branching": 2, "n0": 10, "a": (1, 2, 3, 4), **kwargs})


@pytest.mark.parametrize("kwargs", [dict(depth=3, branching=2, n0=60, a=(0.5, 4, 12, 35)),
                                    dict(depth=2, branching=3, n0=30, a=(2, 8, 25)),
                                    dict(depth=3, branching=2, n0=250, a=(20, 40, 80, 240),
                                         regime="bounded")])
def test_adjacency_is_the_upper_triangle_draws_made_symmetric(kwargs):
    """The compact assembly (32-bit indices, byte weights, both directions at once) gives the
    graph of the plain one: each block's draws, in order, as an upper triangle plus its
    transpose."""
    import scipy.sparse as sp

    model = HSBM(seed=7, **kwargs)
    rng = np.random.default_rng(7)
    K, n0 = len(model.probabilities), kwargs["n0"]
    members = [np.arange(c * n0, (c + 1) * n0) for c in range(K)]
    rows, cols = [], []
    for c in range(K):
        for c2 in range(c, K):
            i, j = _sample_block(rng, members[c], None if c2 == c else members[c2],
                                 model.probabilities[c, c2])
            rows.append(i)
            cols.append(j)
    N = K * n0
    upper = sp.coo_matrix((np.ones(sum(map(len, rows))), (np.concatenate(rows),
                                                           np.concatenate(cols))), shape=(N, N))
    plain = (upper + upper.T).tocsr()
    A = model.adjacency
    assert A.dtype == np.float64 and A.has_canonical_format
    assert np.array_equal(A.indptr, plain.indptr) and np.array_equal(A.indices, plain.indices)
    assert np.array_equal(A.data, plain.data)
