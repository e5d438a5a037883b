"""Fused softmax + cross-entropy kernels against their NumPy references."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import fastgrad
from fastgrad import _kernels, ops, reference

DTYPES = [np.float32, np.float64]
TOL = {np.float32: 2e-6, np.float64: 1e-13}


def problem(seed, batch, classes, dtype, scale=3.0):
    rng = np.random.default_rng(seed)
    logits = (scale * rng.standard_normal((batch, classes))).astype(dtype)
    labels = rng.integers(0, classes, size=batch).astype(np.int64)
    target = rng.dirichlet(np.ones(classes), size=batch).astype(dtype)
    return logits, labels, target


shapes = st.tuples(st.integers(0, 70), st.sampled_from([1, 2, 3, 10, 13]))


@given(shape=shapes, seed=st.integers(0, 2**31), dense=st.booleans(),
       dtype=st.sampled_from(DTYPES))
def test_forward_and_backward_match_reference(shape, seed, dense, dtype):
    batch, classes = shape
    logits, labels, target = problem(seed, batch, classes, dtype)
    y = target if dense else labels
    name = "softmax_xent_dense" if dense else "softmax_xent"
    probs, probs_ref = np.empty_like(logits), np.empty_like(logits)
    loss = getattr(_kernels, name + "_forward")(logits, y, probs)
    loss_ref = getattr(reference, name + "_forward")(logits, y, probs_ref)
    tol = TOL[dtype]
    assert loss == pytest.approx(loss_ref, rel=tol * 10, abs=tol * 10)
    np.testing.assert_allclose(probs, probs_ref, rtol=tol * 10, atol=tol)
    scale = 0.7 / max(batch, 1)
    grad, grad_ref = np.empty_like(probs), np.empty_like(probs)
    getattr(_kernels, name + "_backward")(probs, y, scale, grad)
    getattr(reference, name + "_backward")(probs, y, scale, grad_ref)
    np.testing.assert_allclose(grad, grad_ref, rtol=tol * 10, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dense", [False, True])
def test_one_and_two_threads_are_bitwise_equal(dtype, dense):
    logits, labels, target = problem(1, 5000, 10, dtype)
    y = target if dense else labels
    name = "softmax_xent_dense" if dense else "softmax_xent"
    results = []
    saved = fastgrad.get_num_threads()
    try:
        for n_threads in (1, 2):
            fastgrad.set_num_threads(n_threads)
            probs, grad = np.empty_like(logits), np.empty_like(logits)
            loss = getattr(_kernels, name + "_forward")(logits, y, probs)
            getattr(_kernels, name + "_backward")(probs, y, 1e-3, grad)
            results.append((loss, probs, grad))
    finally:
        fastgrad.set_num_threads(saved)
    assert results[0][0] == results[1][0]
    assert np.array_equal(results[0][1], results[1][1])
    assert np.array_equal(results[0][2], results[1][2])


def test_extreme_logits_stay_finite():
    logits = np.array([[1e4, -1e4, 0.0], [-50.0, -50.0, -50.0]], np.float32)
    probs = np.empty_like(logits)
    loss = _kernels.softmax_xent_forward(logits, np.array([0, 2]), probs)
    assert np.isfinite(loss) and np.isfinite(probs).all()
    assert loss == pytest.approx(np.log(3) / 2, rel=1e-5)


def test_bad_inputs_raise():
    logits = np.zeros((3, 4), np.float32)
    probs = np.empty_like(logits)
    with pytest.raises(ValueError, match=r"softmax_xent_forward: 1 label"):
        _kernels.softmax_xent_forward(logits, np.array([0, 4, 1]), probs)
    with pytest.raises(ValueError, match="softmax_xent_forward: 1 label"):
        _kernels.softmax_xent_forward(logits, np.array([0, -1, 1]), probs)
    with pytest.raises(TypeError, match="labels must be int64"):
        _kernels.softmax_xent_forward(logits, np.array([0, 1, 1], np.int32),
                                      probs)
    with pytest.raises(ValueError, match="labels of shape"):
        _kernels.softmax_xent_forward(logits, np.array([0, 1]), probs)
    with pytest.raises(TypeError, match="probs has dtype float64"):
        _kernels.softmax_xent_forward(logits, np.array([0, 1, 1]),
                                      np.empty((3, 4)))
    with pytest.raises(ValueError, match="overlaps"):
        _kernels.softmax_xent_forward(logits, np.array([0, 1, 1]), logits)
    with pytest.raises(ValueError, match="C-contiguous"):
        _kernels.softmax_xent_dense_forward(logits, np.zeros((4, 3),
                                                             np.float32).T,
                                            probs)
    with pytest.raises(ValueError, match="no classes"):
        _kernels.softmax_xent_forward(np.zeros((2, 0), np.float32),
                                      np.array([0, 0]),
                                      np.zeros((2, 0), np.float32))


@pytest.mark.parametrize("dtype", DTYPES)
def test_op_uses_the_kernel_and_matches_numpy(dtype):
    logits, labels, target = problem(3, 7, 5, dtype)
    z = fastgrad.tensor(logits, requires_grad=True)
    loss = ops.softmax_cross_entropy(z, labels)
    assert loss.dtype == dtype
    loss.backward()
    shifted = logits - logits.max(1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(1, keepdims=True)
    expected = -np.log(probs[np.arange(7), labels]).mean()
    assert loss.item() == pytest.approx(expected, rel=TOL[dtype] * 10)
    one_hot = np.eye(5, dtype=dtype)[labels]
    np.testing.assert_allclose(z.grad, (probs - one_hot) / 7,
                               rtol=1e-5, atol=TOL[dtype])
