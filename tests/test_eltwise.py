"""The fused activation kernels against their NumPy reference."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import fastgrad
from fastgrad import _kernels, reference

ACTIVATIONS = ["none", "sigmoid", "tanh", "tanh_opt", "relu"]
TOLERANCE = {np.float32: 2e-6, np.float64: 1e-14}


def with_threads(n_threads, function, *args):
    previous = fastgrad.get_num_threads()
    fastgrad.set_num_threads(n_threads)
    try:
        return function(*args)
    finally:
        fastgrad.set_num_threads(previous)


@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=70),
       dtype=st.sampled_from([np.float32, np.float64]),
       activation=st.sampled_from(ACTIVATIONS),
       seed=st.integers(0, 2 ** 32 - 1), large=st.booleans())
def test_activations_match_reference(shape, dtype, activation, seed, large):
    if large:  # big enough to run on two threads
        shape = (300, 700)
    rng = np.random.default_rng(seed)
    x = (3 * rng.standard_normal(shape)).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)

    def forward():
        return _kernels.act_forward(x, np.empty_like(x), activation)

    def backward(y):
        return _kernels.act_backward(y, dy, np.empty_like(x), activation)

    y1, y2 = with_threads(1, forward), with_threads(2, forward)
    assert np.array_equal(y1, y2)
    expected = reference.act_forward(x, np.empty_like(x), activation)
    np.testing.assert_allclose(y1, expected, rtol=TOLERANCE[dtype],
                               atol=TOLERANCE[dtype])
    dx1, dx2 = with_threads(1, backward, y1), with_threads(2, backward, y1)
    assert np.array_equal(dx1, dx2)
    expected = reference.act_backward(y1, dy, np.empty_like(x), activation)
    np.testing.assert_allclose(dx1, expected, rtol=TOLERANCE[dtype],
                               atol=TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "tanh_opt"])
def test_nan_stays_nan_in_every_path(dtype, activation):
    # 37 elements: the AVX2 body and the scalar tail; the GEMM epilogue and
    # the linear layer use the same vector code.
    x = np.linspace(-3, 3, 37).astype(dtype)
    x[[0, 9, 36]] = np.nan
    out = _kernels.act_forward(x, np.empty_like(x), activation)
    assert np.array_equal(np.isnan(out), np.isnan(x))
    # Through the fused epilogue: the NaN comes in with the bias.
    rows = np.ones((20, 5), dtype)
    lin = _kernels.linear_forward(rows, np.ones((37, 5), dtype), x,
                                  np.empty((20, 37), dtype), activation)
    assert np.array_equal(np.isnan(lin), np.isnan(x)[None, :].repeat(20, 0))


def test_bad_inputs_raise_clear_errors():
    x = np.zeros((4, 4), np.float32)
    with pytest.raises(ValueError, match="act_forward: x must be C-contiguous"):
        _kernels.act_forward(x.T, np.empty_like(x), "tanh")
    with pytest.raises(ValueError, match="overlaps input x"):
        _kernels.act_forward(x, x, "tanh")
    with pytest.raises(TypeError, match="out has dtype float64"):
        _kernels.act_forward(x, np.empty((4, 4)), "tanh")
    with pytest.raises(ValueError, match=r"out has shape \(4, 3\)"):
        _kernels.act_forward(x, np.empty((4, 3), np.float32), "tanh")
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        _kernels.act_forward(x, np.empty_like(x), "swish")
    with pytest.raises(TypeError, match="float32 or float64, got int64"):
        _kernels.act_backward(np.zeros(3, np.int64), np.zeros(3), np.zeros(3),
                              "relu")
    readonly = np.empty_like(x)
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        _kernels.act_forward(x, readonly, "tanh")
