"""The counter-based generator (Philox4x32-10) and the samplers built on it:
known-answer vectors, compiled == NumPy reference bit for bit, thread-count
invariance, statistics, bad input."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import fastgrad
from fastgrad import _kernels
from fastgrad.reference import rbm as reference

DTYPES = [np.float32, np.float64]
UINT64 = st.integers(0, 2 ** 64 - 1)

# Random123's kat_vectors for philox4x32 with 10 rounds:
# (counter words, key words) -> output words.
KAT = [
    ((0, 0, 0, 0), (0, 0),
     (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2,
     (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
     (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.fixture
def threads():
    """Restore the thread count after a test changes it."""
    saved = fastgrad.get_num_threads()
    yield fastgrad.set_num_threads
    fastgrad.set_num_threads(saved)


@pytest.mark.parametrize("counter, key, expected", KAT)
def test_reference_philox_known_answers(counter, key, expected):
    words = reference.philox4x32_10(counter, key)
    assert tuple(int(word) for word in words) == expected


def test_compiled_philox_known_answer():
    # Element 4 b + w of uniform_fill is word w at counter (b, 0, counter);
    # the uniforms keep the top 24 bits of each word.
    out = _kernels.uniform_fill(np.empty(4), 0, 0)
    expected = np.array(KAT[0][2]) >> 8
    assert np.array_equal(out * 2 ** 24, expected)


def test_reference_philox_is_vectorised():
    counters = np.arange(10, dtype=np.uint64)
    words = reference.philox4x32_10((counters, 7, 8, 9), (1, 2))
    for i in range(10):
        single = reference.philox4x32_10((i, 7, 8, 9), (1, 2))
        assert all(words[w][i] == single[w] for w in range(4))


@given(n=st.integers(0, 3000), seed=UINT64, counter=UINT64,
       dtype=st.sampled_from(DTYPES))
def test_uniform_fill_matches_reference(n, seed, counter, dtype):
    got = _kernels.uniform_fill(np.empty(n, dtype), seed, counter)
    want = reference.uniform_fill(np.empty(n, dtype), seed, counter)
    assert np.array_equal(got, want)


@given(shape=st.lists(st.integers(0, 7), min_size=0, max_size=4),
       fraction=st.floats(0, 1), seed=UINT64, counter=UINT64,
       dtype=st.sampled_from(DTYPES))
def test_dropout_mask_matches_reference(shape, fraction, seed, counter,
                                        dtype):
    shape = tuple(shape)
    got = _kernels.dropout_mask(np.empty(shape, dtype), fraction, seed,
                                counter)
    want = reference.dropout_mask(np.empty(shape, dtype), fraction, seed,
                                  counter)
    assert got.shape == shape and np.array_equal(got, want)
    uniforms = _kernels.uniform_fill(np.empty(shape, dtype), seed, counter)
    assert np.array_equal(got, (uniforms >= fraction).astype(dtype))


def test_float32_and_float64_see_the_same_numbers():
    single = _kernels.uniform_fill(np.empty(5000, np.float32), 3, 4)
    double = _kernels.uniform_fill(np.empty(5000, np.float64), 3, 4)
    assert np.array_equal(single.astype(np.float64), double)


@pytest.mark.parametrize("dtype", DTYPES)
def test_thread_count_does_not_change_the_numbers(threads, dtype):
    n = 1 << 20  # large enough to run in parallel
    results = []
    for n_threads in (1, 2):
        threads(n_threads)
        results.append((_kernels.uniform_fill(np.empty(n, dtype), 9, 1),
                        _kernels.dropout_mask(np.empty(n, dtype), 0.3, 9, 1)))
    assert np.array_equal(results[0][0], results[1][0])
    assert np.array_equal(results[0][1], results[1][1])


def test_uniform_statistics():
    n = 1 << 20
    u = _kernels.uniform_fill(np.empty(n), 2024, 0)
    assert u.min() >= 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < 5 * np.sqrt(1 / 12 / n)
    counts = np.bincount((u * 64).astype(int), minlength=64)
    chi2 = ((counts - n / 64) ** 2 / (n / 64)).sum()
    assert chi2 < 120  # 63 degrees of freedom: p ~ 5e-5
    # Neighbours (same Philox block and across blocks) are uncorrelated.
    for lag in (1, 2, 3, 4, 5):
        corr = np.corrcoef(u[:-lag], u[lag:])[0, 1]
        assert abs(corr) < 5 / np.sqrt(n)


def test_streams_differ_by_seed_and_counter():
    base = _kernels.uniform_fill(np.empty(1000), 1, 1)
    for seed, counter in ((2, 1), (1, 2), (1 + 2 ** 32, 1), (1, 1 + 2 ** 32)):
        other = _kernels.uniform_fill(np.empty(1000), seed, counter)
        assert np.mean(base == other) < 0.01


def test_dropout_fraction_statistics():
    n = 1 << 18
    for fraction in (0.0, 0.1, 0.5, 0.9, 1.0):
        mask = _kernels.dropout_mask(np.empty(n, np.float32), fraction, 5, 6)
        kept = mask.mean()
        assert abs(kept - (1 - fraction)) <= 5 * np.sqrt(0.25 / n)
        assert set(np.unique(mask)) <= {0.0, 1.0}


def test_any_shape_same_stream():
    flat = _kernels.uniform_fill(np.empty(60), 11, 12)
    shaped = _kernels.uniform_fill(np.empty((3, 4, 5)), 11, 12)
    assert np.array_equal(flat.reshape(3, 4, 5), shaped)


@pytest.mark.parametrize("kernel, extra", [
    (_kernels.uniform_fill, ()),
    (_kernels.dropout_mask, (0.5,)),
])
def test_bad_input_raises(kernel, extra):
    good = np.empty(8)
    name = kernel.__name__
    with pytest.raises(TypeError, match=name):
        kernel(np.empty(8, np.int32), *extra, 0, 0)
    with pytest.raises(TypeError, match=name):
        kernel([0.0] * 8, *extra, 0, 0)
    with pytest.raises(ValueError, match="C-contiguous"):
        kernel(np.empty((4, 4))[:, ::2], *extra, 0, 0)
    readonly = np.empty(8)
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        kernel(readonly, *extra, 0, 0)
    for seed, counter in ((-1, 0), (2 ** 64, 0), (0, -1), (0, 2 ** 64)):
        with pytest.raises(ValueError, match=name):
            kernel(good, *extra, seed, counter)
    with pytest.raises(TypeError, match="seed"):
        kernel(good, *extra, 1.5, 0)


def test_dropout_bad_fraction():
    for fraction in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="fraction"):
            _kernels.dropout_mask(np.empty(4), fraction, 0, 0)
    with pytest.raises(TypeError, match="fraction"):
        _kernels.dropout_mask(np.empty(4), "0.5", 0, 0)
