"""The engine: Tensor construction, backward, graph freeing, no_grad."""
import gc

import numpy as np
import pytest

import fastgrad
from fastgrad import ops


def test_defaults_and_dtypes():
    assert fastgrad.tensor([1.0, 2.0]).dtype == np.float32
    assert fastgrad.tensor(np.zeros(2)).dtype == np.float64
    assert fastgrad.tensor([1, 2]).dtype == np.int64
    assert fastgrad.tensor(np.zeros(2, np.float16)).dtype == np.float32
    x = fastgrad.tensor(np.arange(6.0).reshape(2, 3).T)
    assert x.data.flags.c_contiguous and x.shape == (3, 2) and x.ndim == 2
    with pytest.raises(TypeError, match="unsupported data of dtype"):
        fastgrad.tensor(np.array(["a"]))


def test_tensor_copies_its_data():
    array = np.zeros(3, np.float32)
    x = fastgrad.tensor(array)
    x.data[0] = 1
    assert array[0] == 0


def test_python_scalars_do_not_upcast_and_arrays_promote():
    x = fastgrad.tensor(np.ones(3, np.float32), requires_grad=True)
    assert (x * 2.5).dtype == np.float32
    assert (1.5 - x).dtype == np.float32
    assert (x / np.float64(2)).dtype == np.float32
    y = fastgrad.tensor(np.ones(3, np.float64), requires_grad=True)
    z = x * y
    assert z.dtype == np.float64
    z.sum().backward()
    assert x.grad.dtype == np.float32 and y.grad.dtype == np.float64


def test_gradients_accumulate_and_broadcasting_is_undone():
    w = fastgrad.tensor(np.ones((1, 3)), requires_grad=True)
    x = fastgrad.tensor(np.arange(6.0).reshape(2, 3))
    (x * w).sum().backward()
    np.testing.assert_array_equal(w.grad, [[3.0, 5.0, 7.0]])
    (x * w).sum().backward()
    np.testing.assert_array_equal(w.grad, [[6.0, 10.0, 14.0]])


def test_a_tensor_used_twice_gets_both_contributions():
    x = fastgrad.tensor(np.array([2.0]), requires_grad=True)
    y = x * x + x
    y.backward(np.array([1.0]))
    np.testing.assert_array_equal(x.grad, [5.0])


def test_non_scalar_root_needs_a_gradient():
    x = fastgrad.tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"shape \(3,\).*explicit gradient"):
        (x * 2).backward()
    with pytest.raises(ValueError, match="gradient of shape"):
        (x * 2).backward(np.ones(4))


def test_freed_graph_raises_and_retain_graph_keeps_it():
    x = fastgrad.tensor(np.ones(2), requires_grad=True)
    y = (x.exp() * 3).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad, 2 * 3 * np.e)
    with pytest.raises(RuntimeError, match="freed"):
        y.backward()


def test_backward_without_requires_grad_raises():
    with pytest.raises(RuntimeError, match="does not require gradients"):
        fastgrad.tensor(np.ones(2)).sum().backward()


def test_no_grad_records_nothing_and_detach_cuts_history():
    x = fastgrad.tensor(np.ones(2), requires_grad=True)
    with fastgrad.no_grad():
        y = x * 2
    assert not y.requires_grad and y.is_leaf
    z = (x * 2).detach()
    assert z.is_leaf and not z.requires_grad
    assert fastgrad.is_grad_enabled()

    @fastgrad.no_grad()
    def double(v):
        return v * 2
    assert not double(x).requires_grad


def test_comparisons_have_no_gradient():
    x = fastgrad.tensor(np.array([1.0, -1.0]), requires_grad=True)
    mask = x > 0
    assert mask.dtype == bool and not mask.requires_grad
    np.testing.assert_array_equal(mask.numpy(), [True, False])
    assert {x: 1}[x] == 1  # still hashable


def test_repr_and_array_protocol():
    x = fastgrad.tensor([[1.0, 2.0]], requires_grad=True)
    assert repr(x) == "tensor([[1., 2.]], dtype=float32, requires_grad=True)"
    assert "op=Mul" in repr(x * 2)
    np.testing.assert_array_equal(np.asarray(x), [[1.0, 2.0]])
    assert x.sum().item() == 3.0 and len(x) == 1


def test_methods_match_the_ops():
    x = fastgrad.tensor(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(x.T.numpy(), x.numpy().T)
    np.testing.assert_array_equal(x.reshape(3, 2).numpy(),
                                  x.numpy().reshape(3, 2))
    np.testing.assert_array_equal(x.mean(axis=0).numpy(), [1.5, 2.5, 3.5])
    np.testing.assert_array_equal(x.max(axis=1, keepdims=True).numpy(),
                                  [[2.0], [5.0]])
    np.testing.assert_array_equal((x @ x.T).numpy(), x.numpy() @ x.numpy().T)
    np.testing.assert_array_equal((-x).numpy(), -x.numpy())
    np.testing.assert_array_equal((x ** 2).numpy(), x.numpy() ** 2)


def test_training_steps_create_no_reference_cycles():
    rng = np.random.default_rng(0)
    w = fastgrad.tensor(rng.standard_normal((5, 4)), requires_grad=True)
    x = fastgrad.tensor(rng.standard_normal((8, 4)))
    gc.collect()
    gc.disable()
    try:
        for _ in range(50):
            loss = ops.softmax_cross_entropy(ops.linear(x, w, activation="tanh"),
                                             np.arange(8) % 5)
            loss.backward()
            w.data -= 0.1 * w.grad
            w.grad = None
        del loss
        assert gc.collect() == 0
    finally:
        gc.enable()


@pytest.mark.parametrize("shape", [(500, 784), (3,), (2, 3, 4)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_aligned_copies_to_a_cache_line_boundary(shape, dtype):
    from fastgrad.tensor import aligned
    array = np.arange(np.prod(shape), dtype=dtype).reshape(shape)
    out = aligned(array)
    assert out.ctypes.data % 64 == 0
    assert out.flags.c_contiguous and out.flags.writeable
    assert out.dtype == array.dtype and np.array_equal(out, array)
    out[...] = 0  # a copy: the original is untouched
    assert array.ravel()[-1] == np.prod(shape) - 1
