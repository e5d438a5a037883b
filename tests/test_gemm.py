"""GEMM and the fused linear layer against NumPy.

Errors are bounded element by element with the classic dot-product bound
|fl(A B) - A B| <= gamma_k |A| |B| (Higham, Accuracy and Stability of
Numerical Algorithms, eq. 3.13), against a float64 product, so float32
tolerances scale with K.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, strategies as st

import fastgrad
from fastgrad import _kernels, reference

DTYPES = [np.float32, np.float64]
ACTIVATIONS = ["none", "sigmoid", "tanh", "tanh_opt", "relu"]
# Sizes around the micro-tiles (6 x 16, 6 x 8, 4 x 8), primes, 1 and 0.
SIZES = st.sampled_from([0, 1, 2, 3, 5, 6, 7, 8, 12, 13, 16, 17, 31, 33, 47,
                         64, 97])


@pytest.fixture
def threads():
    """Restore the thread count after a test changes it."""
    saved = fastgrad.get_num_threads()
    yield
    fastgrad.set_num_threads(saved)


def operands(rng, m, n, k, trans_a, trans_b, dtype):
    a = rng.uniform(-1, 1, (k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.uniform(-1, 1, (n, k) if trans_b else (k, n)).astype(dtype)
    c = rng.uniform(-1, 1, (m, n)).astype(dtype)
    return a, b, c


def assert_gemm_close(out, a, b, c_old, trans_a, trans_b, alpha, beta):
    """out == alpha op(a) op(b) + beta c_old within the rounding bound."""
    op_a = (a.T if trans_a else a).astype(np.float64)
    op_b = (b.T if trans_b else b).astype(np.float64)
    exact = alpha * (op_a @ op_b)
    bound = abs(alpha) * (np.abs(op_a) @ np.abs(op_b))
    if beta != 0:
        exact = exact + beta * c_old.astype(np.float64)
        bound = bound + abs(beta) * np.abs(c_old.astype(np.float64))
    k = op_a.shape[1]
    eps = np.finfo(out.dtype).eps
    tol = 2 * (k + 2) * eps * bound + np.finfo(out.dtype).tiny
    assert out.shape == exact.shape
    assert np.all(np.abs(out - exact) <= tol), np.max(np.abs(out - exact))


@given(m=SIZES, n=SIZES, k=SIZES, trans_a=st.booleans(),
       trans_b=st.booleans(), dtype=st.sampled_from(DTYPES),
       alpha=st.sampled_from([1.0, -0.5, 2.0, 0.0]),
       beta=st.sampled_from([0.0, 1.0, -1.5]), seed=st.integers(0, 2**31))
def test_gemm_matches_numpy(m, n, k, trans_a, trans_b, dtype, alpha, beta,
                            seed):
    rng = np.random.default_rng(seed)
    a, b, c = operands(rng, m, n, k, trans_a, trans_b, dtype)
    c_old = c.copy()
    out = _kernels.gemm(a, b, c, trans_a, trans_b, alpha, beta)
    assert out is c
    assert_gemm_close(out, a, b, c_old, trans_a, trans_b, alpha, beta)
    expected = reference.gemm(a, b, c_old.copy(), trans_a, trans_b, alpha,
                              beta)
    assert_gemm_close(expected, a, b, c_old, trans_a, trans_b, alpha, beta)


# Shapes that cross the cache blocks (AVX2: mc 144, kc 256; AVX-512: mc 288,
# kc 128), pick each path (packed, direct, dot) with ragged edges and k
# tails, and the MLP shapes of the benchmark.
BLOCK_SHAPES = [(150, 300, 70), (1, 784, 100), (100, 784, 100),
                (784, 1, 100), (784, 8, 100), (8, 100, 784), (3, 600, 4100),
                (290, 520, 33), (40, 389, 50), (20, 1000, 7), (50, 263, 40),
                (1200, 170, 21), (260, 784, 100)]


@pytest.mark.parametrize("m,k,n", BLOCK_SHAPES)
@pytest.mark.parametrize("trans_a,trans_b", [(0, 0), (0, 1), (1, 0), (1, 1)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_block_boundaries(m, k, n, trans_a, trans_b, dtype):
    rng = np.random.default_rng(m * 7 + n)
    a, b, c = operands(rng, m, n, k, trans_a, trans_b, dtype)
    c_old = c.copy()
    _kernels.gemm(a, b, c, trans_a, trans_b, 0.75, 0.5)
    assert_gemm_close(c, a, b, c_old, trans_a, trans_b, 0.75, 0.5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [0, 1, 300])
def test_beta_zero_ignores_nan_in_c(dtype, k):
    rng = np.random.default_rng(k)
    a, b, _ = operands(rng, 13, 37, k, False, False, dtype)
    c = np.full((13, 37), np.nan, dtype)
    _kernels.gemm(a, b, c, alpha=1.0, beta=0.0)
    assert np.all(np.isfinite(c))
    assert_gemm_close(c, a, b, c, False, False, 1.0, 0.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_size_dimensions(dtype):
    for m, n, k in [(0, 5, 3), (4, 0, 3), (0, 0, 0)]:
        c = np.ones((m, n), dtype)
        out = _kernels.gemm(np.ones((m, k), dtype), np.ones((k, n), dtype),
                            c, beta=2.0)
        assert out is c and out.shape == (m, n)
    # k == 0: c := beta * c, zeros when beta == 0 (even over NaN).
    c = np.full((3, 4), 2.0, dtype)
    _kernels.gemm(np.ones((3, 0), dtype), np.ones((0, 4), dtype), c,
                  beta=1.5)
    assert np.array_equal(c, np.full((3, 4), 3.0, dtype))
    c[...] = np.nan
    _kernels.gemm(np.ones((3, 0), dtype), np.ones((0, 4), dtype), c)
    assert np.array_equal(c, np.zeros((3, 4), dtype))
    ref = reference.gemm(np.ones((3, 0), dtype), np.ones((0, 4), dtype),
                         np.full((3, 4), np.nan, dtype))
    assert np.array_equal(ref, c)


@given(m=st.integers(1, 200), n=st.integers(1, 200), k=st.integers(1, 300),
       trans_a=st.booleans(), trans_b=st.booleans(),
       dtype=st.sampled_from(DTYPES), beta=st.sampled_from([0.0, 0.5]),
       seed=st.integers(0, 2**31))
def test_one_and_two_threads_bitwise_equal(m, n, k, trans_a, trans_b, dtype,
                                           beta, seed):
    rng = np.random.default_rng(seed)
    a, b, c = operands(rng, m, n, k, trans_a, trans_b, dtype)
    saved = fastgrad.get_num_threads()
    try:
        results = []
        for n_threads in (1, 2):
            fastgrad.set_num_threads(n_threads)
            results.append(_kernels.gemm(a, b, c.copy(), trans_a, trans_b,
                                         1.25, beta))
    finally:
        fastgrad.set_num_threads(saved)
    assert np.array_equal(results[0], results[1])


@pytest.mark.parametrize("dtype", DTYPES)
def test_large_one_and_two_threads_bitwise_equal(dtype, threads):
    rng = np.random.default_rng(3)
    # The last two: a vector times a matrix large enough to be split
    # across threads.
    for m, k, n, trans_a, trans_b in [(500, 700, 300, 0, 1),
                                      (97, 1000, 4200, 1, 0),
                                      (1, 1000, 600, 0, 1),
                                      (1, 700, 1001, 0, 0)]:
        a, b, _ = operands(rng, m, n, k, trans_a, trans_b, dtype)
        results = []
        for n_threads in (1, 2):
            fastgrad.set_num_threads(n_threads)
            results.append(_kernels.gemm(a, b, np.empty((m, n), dtype),
                                         trans_a, trans_b))
        assert np.array_equal(results[0], results[1])


def at_offset(values, offset):
    """A copy of values whose data starts `offset` bytes past a 64-byte
    boundary (a cache line)."""
    raw = np.empty(values.nbytes + 128, np.uint8)
    start = (-raw.ctypes.data) % 64 + offset
    out = raw[start:start + values.nbytes].view(values.dtype)
    out = out.reshape(values.shape)
    out[...] = values
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,k,n,trans_b", [(1, 784, 100, 1), (3, 48, 7, 1),
                                           (2, 20, 5, 1), (1, 100, 784, 0),
                                           (1, 9, 70, 0), (1, 5, 3, 0)])
def test_bits_do_not_depend_on_where_b_lies(dtype, m, k, n, trans_b):
    """The small-problem kernels start their loads of B on vector
    boundaries, wherever B lies; each element must keep its bits."""
    rng = np.random.default_rng(m * k + n)
    a, b, c = operands(rng, m, n, k, 0, trans_b, dtype)
    first = None
    for offset in range(0, 64, np.dtype(dtype).itemsize):
        out = _kernels.gemm(at_offset(a, 8), at_offset(b, offset), c.copy(),
                            False, trans_b, 1.5, 0.5)
        if first is None:
            assert_gemm_close(out, a, b, c, 0, trans_b, 1.5, 0.5)
            first = out
        assert np.array_equal(out, first), offset


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch,n_in,n_out", [(1, 784, 100), (37, 50, 17),
                                              (100, 300, 10), (5, 1, 3)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_forward(activation, dtype, batch, n_in, n_out, with_bias):
    rng = np.random.default_rng(batch + n_in)
    x = rng.uniform(-1, 1, (batch, n_in)).astype(dtype)
    weight = rng.uniform(-1, 1, (n_out, n_in)).astype(dtype)
    bias = rng.uniform(-1, 1, n_out).astype(dtype) if with_bias else None
    out = np.full((batch, n_out), np.nan, dtype)
    assert _kernels.linear_forward(x, weight, bias, out, activation) is out
    expected = reference.linear_forward(x, weight, bias,
                                        np.empty_like(out), activation)
    tol = 4 * (n_in + 2) * np.finfo(dtype).eps * (n_in + 1)
    np.testing.assert_allclose(out, expected, rtol=0, atol=tol)
    # The fused epilogue equals act_forward applied to the pre-activation.
    pre = _kernels.linear_forward(x, weight, bias, np.empty_like(out),
                                  "none")
    after = _kernels.act_forward(pre, np.empty_like(pre), activation)
    assert np.array_equal(out, after)


def test_linear_forward_threads_bitwise_equal(threads):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((256, 784)).astype(np.float32)
    weight = rng.standard_normal((100, 784)).astype(np.float32)
    bias = rng.standard_normal(100).astype(np.float32)
    results = []
    for n_threads in (1, 2):
        fastgrad.set_num_threads(n_threads)
        results.append(_kernels.linear_forward(
            x, weight, bias, np.empty((256, 100), np.float32), "sigmoid"))
    assert np.array_equal(results[0], results[1])


def test_bad_inputs_raise_clear_errors():
    a = np.ones((3, 4), np.float32)
    b = np.ones((4, 5), np.float32)
    c = np.ones((3, 5), np.float32)
    with pytest.raises(ValueError, match=r"gemm: a must be 2-D"):
        _kernels.gemm(np.ones(3, np.float32), b, c)
    with pytest.raises(ValueError, match=r"gemm: inner dimensions differ.*"
                                         r"\(3, 4\).*\(5, 5\)"):
        _kernels.gemm(a, np.ones((5, 5), np.float32), c)
    with pytest.raises(ValueError, match=r"gemm: c has shape \(3, 4\), "
                                         r"expected \(3, 5\)"):
        _kernels.gemm(a, b, np.ones((3, 4), np.float32))
    with pytest.raises(TypeError, match=r"gemm: b has dtype float64"):
        _kernels.gemm(a, b.astype(np.float64), c)
    with pytest.raises(TypeError, match=r"gemm: a must be float32 or float64"):
        _kernels.gemm(a.astype(np.int64), b, c)
    with pytest.raises(TypeError, match=r"gemm: a must be a numpy.ndarray"):
        _kernels.gemm([[1.0]], b, c)
    with pytest.raises(ValueError, match=r"gemm: output c is read-only"):
        readonly = c.copy()
        readonly.flags.writeable = False
        _kernels.gemm(a, b, readonly)
    square = np.ones((4, 4), np.float32)
    with pytest.raises(ValueError, match=r"gemm: output c overlaps input a"):
        _kernels.gemm(square, np.ones((4, 4), np.float32), square)
    big = np.ones((8, 4), np.float32)
    with pytest.raises(ValueError, match=r"gemm: output c overlaps input b"):
        _kernels.gemm(np.ones((4, 4), np.float32), big[:4], big[2:6])


def test_strided_and_transposed_views_are_rejected():
    """The wrapper is strict; the op layer makes contiguous copies."""
    base = np.ones((6, 8), np.float64)
    c = np.ones((6, 6), np.float64)
    with pytest.raises(ValueError, match=r"gemm: b must be C-contiguous"):
        _kernels.gemm(base, base.T, c)   # use trans_b=True instead
    with pytest.raises(ValueError, match=r"gemm: a must be C-contiguous"):
        _kernels.gemm(base[:, ::2], np.ones((4, 6)), c)
    with pytest.raises(ValueError, match=r"gemm: c must be C-contiguous"):
        _kernels.gemm(base, np.ones((8, 3)), np.ones((6, 6))[:, ::2])
    # The same product through the flags and through copies of the views.
    view_a = np.arange(48.0).reshape(8, 6)[::2, 1:5]
    out = _kernels.gemm(np.ascontiguousarray(view_a), base[:4].copy(),
                        np.empty((4, 8)))
    np.testing.assert_allclose(out, view_a @ base[:4])
    out = _kernels.gemm(base, base, np.empty((6, 6)), trans_b=True)
    np.testing.assert_allclose(out, base @ base.T)


def test_linear_forward_bad_inputs():
    x = np.ones((2, 3), np.float32)
    weight = np.ones((4, 3), np.float32)
    out = np.ones((2, 4), np.float32)
    with pytest.raises(ValueError,
                       match=r"linear_forward: unknown activation"):
        _kernels.linear_forward(x, weight, None, out, "softplus")
    with pytest.raises(ValueError, match=r"linear_forward: weight has shape "
                                         r"\(3, 4\)"):
        _kernels.linear_forward(x, np.ones((3, 4), np.float32), None, out,
                                "none")
    with pytest.raises(ValueError, match=r"linear_forward: bias has shape"):
        _kernels.linear_forward(x, weight, np.ones(3, np.float32), out, "relu")
    with pytest.raises(TypeError, match=r"linear_forward: bias has dtype"):
        _kernels.linear_forward(x, weight, np.ones(4), out, "relu")
    with pytest.raises(ValueError, match=r"linear_forward: out has shape"):
        _kernels.linear_forward(x, weight, None, np.ones((4, 2), np.float32),
                                "none")
    both = np.ones(12, np.float32)
    with pytest.raises(ValueError,
                       match=r"linear_forward: output out overlaps "
                             r"input bias"):
        _kernels.linear_forward(x, weight, both[:4], both[:8].reshape(2, 4),
                                "none")


@pytest.mark.skipif(_kernels.gemm_simd_width() != 512,
                    reason="the AVX2 paths run in the main tests here")
def test_avx2_paths_on_an_avx512_machine():
    """With FASTGRAD_NO_AVX512=1 the AVX2 kernels run (and pass the same
    tests) on a machine that would take the AVX-512 ones."""
    env = dict(os.environ, FASTGRAD_NO_AVX512="1")
    # From the folder holding the fastgrad under test (site-packages after
    # pip install): `python -c` and `-m` import from their working folder.
    cwd = Path(fastgrad.__file__).resolve().parents[1]
    width = subprocess.run(
        [sys.executable, "-c",
         "from fastgrad import _kernels; print(_kernels.gemm_simd_width())"],
        env=env, cwd=cwd, capture_output=True, text=True, check=True)
    assert width.stdout.strip() == "256"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
         str(Path(__file__).resolve()), "-k", "not avx2_paths_on"],
        env=env, cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
