"""Agreement with a float64 reference: every algorithm, instruction set, dtype and layout."""

from __future__ import annotations

import numpy as np
import pytest

from paperlab.softmax import ALGORITHMS, combine_partial_sums, log_softmax, softmax, twopass
from tests.softmax.reference import assert_close, reference

F32_TINY = float(np.finfo(np.float32).smallest_subnormal)


def adversarial_rows() -> np.ndarray:
    """Rows that break naive or careless kernels, padded with -inf (which must give 0)."""
    rng = np.random.default_rng(1)
    n = 77  # odd: exercises vector bodies and scalar tails
    rows = [
        rng.uniform(-1e4, 1e4, n),  # +-1e4: exp overflows without max or extended exponent
        np.full(n, 1e4),  # all equal and large
        np.full(n, -1e4),
        np.full(n, 3.0),
        np.r_[0.0, -95.0, -100.0, -103.0, rng.normal(-120, 5, n - 4)],  # denormal outputs
        np.r_[np.inf, rng.normal(size=n - 1)],  # +inf: NaN row, as torch and scipy
        np.r_[np.nan, rng.normal(size=n - 1)],  # NaN propagates to the row
        np.r_[rng.normal(size=n - 1), np.nan],  # ... also from the scalar tail
        np.full(n, -np.inf),  # nothing to normalise: NaN row
        np.r_[-np.inf, 5.0, np.full(n - 2, -np.inf)],  # one finite element: exactly 1
        np.r_[8e5, rng.normal(size=n - 1)],  # beyond the two-pass exponent limit
        np.r_[-3e38, -3.0e38 * 0.9999, rng.uniform(-3e38, -1e38, n - 2)],  # huge negative
        np.r_[3e38, 2.9e38, rng.normal(size=n - 2)],  # huge positive, finite
        rng.normal(0, 30, n),
    ]
    return np.array(rows, dtype=np.float32)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_random_rows_match_reference(isa, algorithm):
    rng = np.random.default_rng(0)
    for n in (1, 2, 15, 16, 17, 100, 4099, 20000):  # around vector widths and BLOCK
        x = (rng.standard_normal((3, n)) * rng.choice([1, 10, 50])).astype(np.float32)
        assert_close(softmax(x, algorithm=algorithm, threads=1), reference(x))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("log", [False, True])
def test_adversarial_rows(isa, algorithm, log):
    x = adversarial_rows()
    fn = log_softmax if log else softmax
    assert_close(fn(x, algorithm=algorithm, threads=1), reference(x, log=log), x, log=log)


def test_named_edge_cases(isa):
    x = adversarial_rows()
    y = softmax(x, threads=1)
    np.testing.assert_allclose(y[1], 1 / 77, rtol=1e-6)
    assert 0 < y[4, 1] < np.finfo(np.float32).tiny  # a denormal, not flushed to zero
    assert np.isnan(y[5]).all() and np.isnan(y[6]).all() and np.isnan(y[8]).all()
    assert y[9, 1] == 1.0 and np.all(y[9, [0, 2, 3]] == 0.0)
    assert y[10, 0] == 1.0


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_float64_path(algorithm):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 1001)) * 20
    assert_close(softmax(x, algorithm=algorithm, threads=1), reference(x), rtol=1e-12)
    x_adv = adversarial_rows().astype(np.float64)
    assert_close(softmax(x_adv, algorithm=algorithm), reference(x_adv), rtol=1e-12)
    assert softmax(x_adv).dtype == np.float64


@pytest.mark.parametrize("n", [0, 1])
def test_lengths_zero_and_one(n):
    x = np.zeros((3, n), np.float32)
    y = softmax(x)
    assert y.shape == (3, n)
    np.testing.assert_array_equal(y, np.ones((3, n), np.float32))
    assert np.isnan(softmax(np.array([np.nan], np.float32))).all()
    assert softmax(np.zeros((0, 5), np.float32)).shape == (0, 5)


def test_strided_and_transposed_inputs():
    rng = np.random.default_rng(3)
    base = rng.standard_normal((40, 90)).astype(np.float32)
    cases = [
        (base[:, ::3], -1),  # non-unit stride along the axis
        (base[::2, 5:70], -1),  # row stride != row length
        (base[::-1], -1),  # negative row stride
        (base.T, 0),
        (base, 0),  # softmax down the columns of a C-ordered array
        (np.asfortranarray(base), 1),
        (rng.standard_normal((3, 4, 50)).astype(np.float32).transpose(2, 0, 1), 1),
    ]
    for x, axis in cases:
        for algorithm in ALGORITHMS:
            y = softmax(x, axis=axis, algorithm=algorithm)
            assert_close(y, reference(x, axis=axis))


def test_threads_split_rows_and_long_rows():
    rng = np.random.default_rng(4)
    many = rng.standard_normal((37, 3000)).astype(np.float32) * 5
    long_row = (rng.standard_normal((2, 300_001)) * 5).astype(np.float32)
    for algorithm in ALGORITHMS:
        for threads in (2, 3):
            assert_close(softmax(many, algorithm=algorithm, threads=threads), reference(many))
            assert_close(softmax(long_row, algorithm=algorithm, threads=threads),
                         reference(long_row))
            assert_close(log_softmax(long_row, algorithm=algorithm, threads=threads),
                         reference(long_row, log=True), long_row, log=True)


def test_split_row_edge_cases():
    """A split row still sees NaN in any block, and the extreme-value route."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 100_000)).astype(np.float32)
    for value in (np.nan, np.inf, 9e5, -np.inf):
        x2 = x.copy()
        x2[0, 77_777] = value
        assert_close(softmax(x2, threads=3), reference(x2))
    allneg = np.full((1, 100_000), -np.inf, np.float32)
    assert np.isnan(softmax(allneg, threads=2)).all()


def test_combined_partial_sums_equal_the_whole(isa):
    if twopass._C is None:
        pytest.skip("C extension not built")
    rng = np.random.default_rng(6)
    x = (rng.standard_normal(50_000) * 40).astype(np.float32)
    parts = [twopass._C.extexp_sum(x[a:a + 7000]) for a in range(0, x.size, 7000)]
    value, exponent = combine_partial_sums(parts)
    whole = twopass._C.extexp_sum(x)
    true_log_sum = np.log(np.exp(x.astype(np.float64) - x.max()).sum()) + x.max()
    for v, e in ((value, exponent), whole):
        assert abs(np.log(v) + e * np.log(2) - true_log_sum) < 1e-6
    assert 0.5 <= whole[0] and whole[1] == exponent


def test_long_row_sum_keeps_float32_accuracy():
    """Blocked summation: 2^22 terms with random mantissas still sum to 1e-5 (a single
    float32 accumulator per lane would drift by ~1e-4 here)."""
    x = np.random.default_rng(7).uniform(0, 1, (1, 1 << 22)).astype(np.float32)
    ref = reference(x)
    for algorithm in ALGORITHMS:
        assert_close(softmax(x, algorithm=algorithm, threads=1), ref, rtol=2e-6)
