"""Convolution and subsampling kernels against their NumPy references.

Each kernel is compared with fastgrad.reference for shapes drawn by
hypothesis (size 1, primes, zero batch/channels), in float32 and float64,
with an error bound scaled by the sum of |terms| (the same kernel run on
absolute values); results must be bitwise equal for 1 and 2 threads; bad
input must raise a clear error.
"""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import fastgrad
from fastgrad import _kernels as K
from fastgrad import reference as R

DTYPES = [np.float32, np.float64]
TOLERANCE = {np.float32: 2e-6, np.float64: 1e-14}
CONV_KERNELS = ["conv2d_forward", "conv2d_backward_input",
                "conv2d_backward_weight", "conv2d_backward_bias",
                "meanpool_forward", "meanpool_backward",
                "maxpool2x2_forward", "maxpool2x2_backward"]


@pytest.fixture
def threads():
    """Restore the thread count after a test that changes it."""
    saved = fastgrad.get_num_threads()
    yield
    fastgrad.set_num_threads(saved)


def _random(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def _assert_close(got, want, bound, dtype):
    """|got - want| <= tol * bound elementwise (bound = sum of |terms|)."""
    assert got.dtype == dtype
    limit = TOLERANCE[dtype] * (bound + 1.0) * 8
    assert np.all(np.abs(got.astype(np.float64) - want) <= limit), (
        np.max(np.abs(got.astype(np.float64) - want) - limit))


@st.composite
def conv_shapes(draw):
    """(n, c, h, w, m, kh, kw, pad_h, pad_w) with the kernel fitting the
    padded input."""
    n = draw(st.sampled_from([0, 1, 2, 3, 5, 7]))
    c = draw(st.sampled_from([0, 1, 2, 3, 6]))
    m = draw(st.sampled_from([1, 2, 3, 5, 6, 12]))
    kh = draw(st.integers(1, 5))
    kw = draw(st.integers(1, 5))
    pad_h = draw(st.integers(0, kh))
    pad_w = draw(st.integers(0, kw))
    h = draw(st.integers(max(1, kh - 2 * pad_h), 17))
    w = draw(st.integers(max(1, kw - 2 * pad_w), 29))
    return n, c, h, w, m, kh, kw, pad_h, pad_w


def _conv_problem(shape, dtype, seed):
    n, c, h, w, m, kh, kw, pad_h, pad_w = shape
    rng = np.random.default_rng(seed)
    oh, ow = h + 2 * pad_h - kh + 1, w + 2 * pad_w - kw + 1
    x = _random(rng, (n, c, h, w), dtype)
    weight = _random(rng, (m, c, kh, kw), dtype)
    bias = _random(rng, (m,), dtype)
    dy = _random(rng, (n, m, oh, ow), dtype)
    return x, weight, bias, dy


def _run_conv(module, name, x, weight, bias, dy, pad_h, pad_w, dtype=None):
    """Run kernel `name` of `module` (fastgrad._kernels or the reference) on
    fresh outputs; the reference runs in float64."""
    dtype = dtype or x.dtype
    x, weight, dy = (a.astype(dtype) for a in (x, weight, dy))
    bias = None if bias is None else bias.astype(dtype)
    if name == "conv2d_forward":
        out = np.empty(dy.shape, dtype)
        return module.conv2d_forward(x, weight, bias, out, pad_h, pad_w)
    if name == "conv2d_backward_input":
        dx = np.empty(x.shape, dtype)
        return module.conv2d_backward_input(dy, weight, dx, pad_h, pad_w)
    if name == "conv2d_backward_weight":
        dweight = np.empty(weight.shape, dtype)
        return module.conv2d_backward_weight(x, dy, dweight, pad_h, pad_w)
    dbias = np.empty(bias.shape, dtype)
    return module.conv2d_backward_bias(dy, dbias)


CONV_NAMES = ["conv2d_forward", "conv2d_backward_input",
              "conv2d_backward_weight", "conv2d_backward_bias"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", CONV_NAMES)
@given(shape=conv_shapes(), seed=st.integers(0, 2**31 - 1),
       use_bias=st.booleans())
def test_conv_matches_reference(name, dtype, shape, seed, use_bias):
    x, weight, bias, dy = _conv_problem(shape, dtype, seed)
    if not use_bias:
        bias = None if name == "conv2d_forward" else bias
    pad_h, pad_w = shape[-2:]
    got = _run_conv(K, name, x, weight, bias, dy, pad_h, pad_w)
    want = _run_conv(R, name, x, weight, bias, dy, pad_h, pad_w, np.float64)
    bound = _run_conv(R, name, np.abs(x), np.abs(weight),
                      None if bias is None else np.abs(bias), np.abs(dy),
                      pad_h, pad_w, np.float64)
    _assert_close(got, want, bound, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", CONV_NAMES)
@pytest.mark.parametrize("shape", [
    (50, 1, 28, 28, 6, 5, 5, 0, 0),    # DeepLearnToolbox CNN, first layer
    (50, 6, 12, 12, 12, 5, 5, 0, 0),   # second layer
    (1, 8, 40, 40, 12, 5, 5, 2, 2),    # batch 1: maps split over threads
    (3, 6, 30, 29, 7, 3, 4, 2, 3),     # padded, odd map count, split maps
    (13, 2, 19, 21, 5, 5, 5, 4, 4),    # full padding
])
def test_conv_threads_bitwise_equal(threads, name, dtype, shape):
    x, weight, bias, dy = _conv_problem(shape, dtype, 7)
    pad_h, pad_w = shape[-2:]
    results = []
    for n_threads in (1, 2):
        fastgrad.set_num_threads(n_threads)
        results.append(_run_conv(K, name, x, weight, bias, dy, pad_h, pad_w))
    assert np.array_equal(results[0], results[1])
    want = _run_conv(R, name, x, weight, bias, dy, pad_h, pad_w, np.float64)
    bound = _run_conv(R, name, np.abs(x), np.abs(weight), np.abs(bias),
                      np.abs(dy), pad_h, pad_w, np.float64)
    _assert_close(results[0], want, bound, dtype)


@st.composite
def pool_shapes(draw, divisible=True):
    n = draw(st.sampled_from([0, 1, 2, 3, 5]))
    c = draw(st.sampled_from([0, 1, 2, 3, 7]))
    scale = draw(st.sampled_from([1, 2, 3, 4]))
    h = scale * draw(st.integers(0 if n else 1, 7))
    w = scale * draw(st.integers(1, 9))
    return n, c, h, w, scale


@pytest.mark.parametrize("dtype", DTYPES)
@given(shape=pool_shapes(), seed=st.integers(0, 2**31 - 1))
def test_meanpool_matches_reference(dtype, shape, seed):
    n, c, h, w, scale = shape
    rng = np.random.default_rng(seed)
    x = _random(rng, (n, c, h, w), dtype)
    dy = _random(rng, (n, c, h // scale, w // scale), dtype)
    out = K.meanpool_forward(x, np.empty(dy.shape, dtype), scale)
    want = R.meanpool_forward(x, np.empty(dy.shape), scale)
    bound = R.meanpool_forward(np.abs(x), np.empty(dy.shape), scale)
    _assert_close(out, want, bound, dtype)
    dx = K.meanpool_backward(dy, np.empty(x.shape, dtype), scale)
    want = R.meanpool_backward(dy, np.empty(x.shape), scale)
    _assert_close(dx, want, np.abs(want), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["none", "sigmoid", "tanh",
                                        "tanh_opt", "relu"])
@given(shape=pool_shapes(), seed=st.integers(0, 2**31 - 1))
def test_meanpool_backward_with_activation(dtype, activation, shape, seed):
    """dx = spread(dy) / s^2 * act'(y): the backward of act(conv) + pool."""
    n, c, h, w, scale = shape
    rng = np.random.default_rng(seed)
    y = R.act_forward(_random(rng, (n, c, h, w), dtype),
                      np.empty((n, c, h, w), dtype), activation)
    dy = _random(rng, (n, c, h // scale, w // scale), dtype)
    dx = K.meanpool_backward(dy, np.empty(y.shape, dtype), scale, y,
                             activation)
    want = R.meanpool_backward(dy, np.empty(y.shape), scale, y, activation)
    _assert_close(dx, want, np.abs(want), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@given(n=st.sampled_from([0, 1, 2, 3]), c=st.sampled_from([1, 2, 5]),
       h=st.integers(1, 13), w=st.integers(1, 13),
       seed=st.integers(0, 2**31 - 1), ties=st.booleans())
def test_maxpool_matches_reference(dtype, n, c, h, w, seed, ties):
    rng = np.random.default_rng(seed)
    if ties:   # few distinct values: many ties, first max must win
        x = rng.integers(-2, 2, (n, c, h, w)).astype(dtype)
    else:
        x = _random(rng, (n, c, h, w), dtype)
    shape = (n, c, h // 2, w // 2)
    out, argmax = K.maxpool2x2_forward(
        x, np.empty(shape, dtype), np.empty(shape, np.int64))
    want_out, want_argmax = R.maxpool2x2_forward(
        x, np.empty(shape, dtype), np.empty(shape, np.int64))
    assert np.array_equal(out, want_out)
    assert np.array_equal(argmax, want_argmax)
    dy = _random(rng, shape, dtype)
    dx = K.maxpool2x2_backward(dy, argmax, np.full(x.shape, 7.0, dtype))
    want_dx = R.maxpool2x2_backward(dy, argmax, np.empty(x.shape, dtype))
    assert np.array_equal(dx, want_dx)


@pytest.mark.parametrize("dtype", DTYPES)
def test_pools_threads_bitwise_equal(threads, dtype):
    rng = np.random.default_rng(3)
    x = _random(rng, (128, 6, 24, 24), dtype)   # large enough for 2
    dy = _random(rng, (128, 6, 12, 12), dtype)  # threads
    results = []
    for n_threads in (1, 2):
        fastgrad.set_num_threads(n_threads)
        out = K.meanpool_forward(x, np.empty(dy.shape, dtype), 2)
        dx = K.meanpool_backward(dy, np.empty(x.shape, dtype), 2)
        fused = K.meanpool_backward(dy, np.empty(x.shape, dtype), 2, x,
                                    "tanh")
        mout, argmax = K.maxpool2x2_forward(
            x, np.empty(dy.shape, dtype), np.empty(dy.shape, np.int64))
        mdx = K.maxpool2x2_backward(dy, argmax, np.empty(x.shape, dtype))
        results.append((out, dx, fused, mout, argmax, mdx))
    for first, second in zip(*results):
        assert np.array_equal(first, second)


def test_kernels_have_references():
    from fastgrad.reference import conv as conv_reference
    for name in CONV_KERNELS:
        assert name in K.KERNELS
        assert name in conv_reference.__all__
        assert callable(getattr(R, name))


# ---------------------------------------------------------------- bad input

def _conv_arrays(dtype=np.float32):
    x = np.zeros((2, 3, 8, 8), dtype)
    weight = np.zeros((4, 3, 5, 5), dtype)
    bias = np.zeros(4, dtype)
    out = np.zeros((2, 4, 4, 4), dtype)
    return x, weight, bias, out


def test_conv_kernel_larger_than_input():
    x, _, bias, _ = _conv_arrays()
    weight = np.zeros((4, 3, 9, 3), np.float32)
    with pytest.raises(ValueError, match=r"conv2d_forward: kernel 9x3"):
        K.conv2d_forward(x, weight, bias, np.zeros((2, 4, 1, 6), np.float32),
                         0, 0)
    with pytest.raises(ValueError, match=r"kernel 9x3.*larger"):
        K.conv2d_backward_weight(x, np.zeros((2, 4, 1, 6), np.float32),
                                 weight, 0, 0)
    with pytest.raises(ValueError, match=r"kernel 9x3.*larger"):
        K.conv2d_backward_input(np.zeros((2, 4, 1, 6), np.float32), weight,
                                x.copy(), 0, 0)
    # With padding 1 the 9x3 kernel fits a 10x10 padded input.
    K.conv2d_forward(x, weight, bias, np.zeros((2, 4, 2, 8), np.float32),
                     1, 1)


def test_conv_channel_mismatch():
    x, _, bias, out = _conv_arrays()
    weight = np.zeros((4, 2, 5, 5), np.float32)
    with pytest.raises(ValueError, match="channel mismatch"):
        K.conv2d_forward(x, weight, bias, out, 0, 0)
    with pytest.raises(ValueError, match="channel mismatch"):
        K.conv2d_backward_input(out, weight, x.copy(), 0, 0)
    with pytest.raises(ValueError, match="channel mismatch"):
        K.conv2d_backward_weight(x, out, weight, 0, 0)


def test_conv_wrong_shapes_and_types():
    x, weight, bias, out = _conv_arrays()
    with pytest.raises(ValueError, match=r"out has shape \(2, 4, 5, 4\)"):
        K.conv2d_forward(x, weight, bias, np.zeros((2, 4, 5, 4), np.float32),
                         0, 0)
    with pytest.raises(ValueError, match="bias has shape"):
        K.conv2d_forward(x, weight, np.zeros(3, np.float32), out, 0, 0)
    with pytest.raises(TypeError, match="weight has dtype float64"):
        K.conv2d_forward(x, weight.astype(np.float64), bias, out, 0, 0)
    with pytest.raises(TypeError, match="float32 or float64"):
        K.conv2d_forward(x.astype(np.int32), weight, bias, out, 0, 0)
    with pytest.raises(ValueError, match="C-contiguous"):
        K.conv2d_forward(np.asfortranarray(x), weight, bias, out, 0, 0)
    with pytest.raises(ValueError, match="must be 4-D"):
        K.conv2d_forward(x[0], weight, bias, out, 0, 0)
    with pytest.raises(ValueError, match="pad_h must be >= 0"):
        K.conv2d_forward(x, weight, bias, out, -1, 0)
    with pytest.raises(TypeError, match="pad_w must be an int"):
        K.conv2d_forward(x, weight, bias, out, 0, 1.5)
    with pytest.raises(ValueError, match="overlaps input"):
        K.conv2d_backward_bias(out, out[0, 0, 0])
    with pytest.raises(ValueError, match="read-only"):
        out.flags.writeable = False
        K.conv2d_forward(x, weight, bias, out, 0, 0)
    with pytest.raises(ValueError, match=r"dy has shape"):
        K.conv2d_backward_weight(x, np.zeros((2, 4, 3, 4), np.float32),
                                 weight.copy(), 0, 0)


def test_conv_output_aliasing_input_raises():
    x = np.zeros((1, 1, 5, 5), np.float32)
    weight = np.zeros((1, 1, 1, 1), np.float32)
    with pytest.raises(ValueError, match="overlaps input x"):
        K.conv2d_forward(x, weight, None, x, 0, 0)


def test_pool_bad_input():
    x = np.zeros((2, 3, 7, 8), np.float32)
    with pytest.raises(ValueError, match="divisible by the scale 2"):
        K.meanpool_forward(x, np.zeros((2, 3, 3, 4), np.float32), 2)
    with pytest.raises(ValueError, match="divisible by the scale 2"):
        K.meanpool_backward(np.zeros((2, 3, 3, 4), np.float32), x, 2)
    with pytest.raises(ValueError, match="scale must be >= 1"):
        K.meanpool_forward(x, x.copy(), 0)
    y, dy = np.zeros((2, 3, 8, 8), np.float32), np.zeros((2, 3, 4, 4),
                                                         np.float32)
    with pytest.raises(ValueError, match="y.*shape"):
        K.meanpool_backward(dy, y.copy(), 2, y[:, :, :6], "sigmoid")
    with pytest.raises(TypeError, match="y"):
        K.meanpool_backward(dy, y.copy(), 2, y.astype(np.float64), "sigmoid")
    with pytest.raises(ValueError, match="activation"):
        K.meanpool_backward(dy, y.copy(), 2, y, "swish")
    with pytest.raises(ValueError, match="dx"):
        K.meanpool_backward(dy, y, 2, y, "sigmoid")   # dx aliases y
    with pytest.raises(TypeError, match="argmax must be int64"):
        K.maxpool2x2_forward(x, np.zeros((2, 3, 3, 4), np.float32),
                             np.zeros((2, 3, 3, 4), np.int32))
    with pytest.raises(ValueError, match="outside its plane"):
        K.maxpool2x2_backward(np.zeros((2, 3, 3, 4), np.float32),
                              np.full((2, 3, 3, 4), 56, np.int64), x)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["sigmoid", "relu", "tanh",
                                        "tanh_opt"])
@given(shape=conv_shapes(), seed=st.integers(0, 2**31 - 1))
def test_conv_forward_fused_activation(dtype, activation, shape, seed):
    x, weight, bias, dy = _conv_problem(shape, dtype, seed)
    pad_h, pad_w = shape[-2:]
    got = K.conv2d_forward(x, weight, bias, np.empty(dy.shape, dtype),
                           pad_h, pad_w, activation)
    want = R.conv2d_forward(x, weight, bias, np.empty(dy.shape), pad_h,
                            pad_w, activation)
    bound = _run_conv(R, "conv2d_forward", np.abs(x), np.abs(weight),
                      np.abs(bias), np.abs(dy), pad_h, pad_w, np.float64)
    if activation == "tanh_opt":
        bound = bound * 1.7159
    _assert_close(got, want, bound, dtype)


def test_conv_forward_activation_extremes():
    """The vectorised float32 sigmoid saturates cleanly (no NaN/inf)."""
    x = np.array([-1e30, -200, -88, -20, 0, 20, 88, 200, 1e30],
                 np.float32).reshape(1, 1, 1, 9)
    weight = np.ones((1, 1, 1, 1), np.float32)
    out = K.conv2d_forward(x, weight, None, np.empty_like(x), 0, 0,
                           "sigmoid")
    want = 1 / (1 + np.exp(-x.astype(np.float64)))
    assert np.all(np.isfinite(out))
    assert np.allclose(out, want, rtol=1e-6, atol=1e-30)
    with pytest.raises(ValueError, match="unknown activation"):
        K.conv2d_forward(x, weight, None, np.empty_like(x), 0, 0, "gelu")
