"""Batch normalisation and ghost batch normalisation: kernels against their
NumPy references, determinism across thread counts, gradients through the
batch statistics, running statistics, evaluation mode, the BatchNorm layer
and the errors."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import fastgrad
from fastgrad import _kernels, ops, reference
from fastgrad.models.layers import BatchNorm

DTYPES = [np.float32, np.float64]
TOL = {np.float32: 2e-5, np.float64: 1e-10}
BN_KERNELS = ["bn_forward_train", "bn_forward_eval", "bn_backward_train",
              "bn_backward_eval"]


def n_groups(n_samples, ghost):
    return 1 if ghost == 0 or ghost >= n_samples else -(-n_samples // ghost)


def close(actual, expected, dtype):
    """Max error relative to the array's scale (values of a group with a
    small variance are large, so a per-element rtol would be too strict)."""
    expected = np.asarray(expected, np.float64)
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    error = float(np.max(np.abs(np.asarray(actual, np.float64) - expected),
                         initial=0.0))
    assert error <= TOL[dtype] * scale, (error, scale)


@st.composite
def bn_case(draw, min_values=2):
    """(shape, ghost, dtype): a 2-D or 4-D input, a ghost size (0 = whole
    batch) such that every ghost batch has >= min_values values a channel."""
    four_d = draw(st.booleans())
    if four_d:
        shape = (draw(st.integers(1, 9)), draw(st.integers(1, 5)),
                 draw(st.integers(1, 5)), draw(st.integers(1, 7)))
    else:
        shape = (draw(st.integers(2, 67)), draw(st.integers(1, 71)))
    spatial = shape[2] * shape[3] if four_d else 1
    ghost = draw(st.sampled_from([0, 1, 2, 3, 5, 8, 32]))
    n = shape[0]
    last = n - (n_groups(n, ghost) - 1) * (n if ghost == 0 else ghost)
    if last * spatial < min_values:
        ghost = 0
        if n * spatial < min_values:
            shape = (2,) + shape[1:]
    return shape, ghost, draw(st.sampled_from(DTYPES))


def make_inputs(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    channels = shape[1]
    x = (rng.standard_normal(shape) * 3 + rng.uniform(-5, 5, channels)
         .reshape((1, channels) + (1,) * (len(shape) - 2))).astype(dtype)
    weight = rng.uniform(0.5, 2, channels).astype(dtype)
    bias = rng.standard_normal(channels).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    return x, weight, bias, dy


def run_train(module, x, weight, bias, dy, ghost, momentum=0.1, eps=1e-5):
    """Forward and backward of `module` (the kernels or the references)."""
    dtype, channels = x.dtype, x.shape[1]
    groups = n_groups(x.shape[0], ghost)
    out = np.empty_like(x)
    mean = np.empty((groups, channels), dtype)
    invstd = np.empty((groups, channels), dtype)
    running_mean = np.linspace(-1, 1, channels).astype(dtype)
    running_var = np.linspace(0.5, 2, channels).astype(dtype)
    module.bn_forward_train(x, weight, bias, out, mean, invstd, running_mean,
                            running_var, ghost, momentum, eps)
    dx, dweight, dbias = (np.empty_like(x), np.empty_like(weight),
                          np.empty_like(weight))
    module.bn_backward_train(x, dy, weight, mean, invstd, dx, dweight, dbias,
                             ghost)
    return out, mean, invstd, running_mean, running_var, dx, dweight, dbias


def run_eval(module, x, weight, bias, dy, eps=1e-5):
    channels = x.shape[1]
    running_mean = np.linspace(-1, 1, channels).astype(x.dtype)
    running_var = np.linspace(0.5, 2, channels).astype(x.dtype)
    out = np.empty_like(x)
    module.bn_forward_eval(x, weight, bias, running_mean, running_var, out,
                           eps)
    dx, dweight, dbias = (np.empty_like(x), np.empty_like(weight),
                          np.empty_like(weight))
    module.bn_backward_eval(x, dy, weight, running_mean, running_var, dx,
                            dweight, dbias, eps)
    return out, dx, dweight, dbias


# -- kernels against references ---------------------------------------------

def test_kernels_have_references_of_the_same_signature():
    import inspect
    for name in BN_KERNELS:
        assert name in _kernels.KERNELS
        assert name in reference.__all__ if hasattr(reference, "__all__") \
            else hasattr(reference, name)
        kernel = inspect.signature(getattr(_kernels, name))
        ref = inspect.signature(getattr(reference, name))
        assert list(kernel.parameters) == list(ref.parameters), name


@given(bn_case())
def test_train_kernels_match_reference(case):
    shape, ghost, dtype = case
    inputs = make_inputs(shape, dtype)
    for got, want in zip(run_train(_kernels, *inputs, ghost),
                         run_train(reference, *inputs, ghost)):
        assert got.dtype == dtype
        close(got, want, dtype)


@given(bn_case(min_values=0))
def test_eval_kernels_match_reference(case):
    shape, _, dtype = case
    inputs = make_inputs(shape, dtype)
    for got, want in zip(run_eval(_kernels, *inputs),
                         run_eval(reference, *inputs)):
        close(got, want, dtype)


def test_eval_kernels_with_an_empty_batch():
    x, weight, bias, dy = make_inputs((0, 3), np.float64)
    out, dx, dweight, dbias = run_eval(_kernels, x, weight, bias, dy)
    assert out.shape == (0, 3) and dx.shape == (0, 3)
    assert np.array_equal(dweight, np.zeros(3))
    assert np.array_equal(dbias, np.zeros(3))


@pytest.mark.parametrize("dtype", DTYPES)
def test_one_pass_statistics_survive_a_large_offset(dtype):
    """Shifted sums: a mean of 1e4 (float32) or 1e8 (float64) with a unit
    spread keeps the variance accurate (a naive sum of squares loses it)."""
    offset = 1e4 if dtype == np.float32 else 1e8
    rng = np.random.default_rng(1)
    x = (offset + rng.standard_normal((4096, 3))).astype(dtype)
    inputs = (x, np.ones(3, dtype), np.zeros(3, dtype), np.zeros_like(x))
    _, mean, invstd, *_ = run_train(_kernels, *inputs, 0)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(mean[0], x64.mean(axis=0), rtol=1e-7)
    np.testing.assert_allclose(invstd[0], 1 / np.sqrt(x64.var(axis=0)
                                                      + 1e-5), rtol=1e-5)


# -- determinism -------------------------------------------------------------

@pytest.fixture
def threads():
    previous = fastgrad.get_num_threads()
    yield
    fastgrad.set_num_threads(previous)


@pytest.mark.parametrize("shape,ghost", [
    ((256, 130), 0), ((300, 129), 32), ((259, 200), 8),
    ((16, 5, 12, 12), 0), ((33, 7, 9, 11), 4), ((3, 2, 150, 160), 2)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_one_and_two_threads_bitwise_equal(threads, shape, ghost, dtype):
    inputs = make_inputs(shape, dtype, seed=3)
    results = []
    for n_threads in (1, 2):
        fastgrad.set_num_threads(n_threads)
        results.append(run_train(_kernels, *inputs, ghost)
                       + run_eval(_kernels, *inputs))
    for one, two in zip(*results):
        assert np.array_equal(one, two)


# -- gradients ---------------------------------------------------------------

GRAD_CASES = [((6, 4), None), ((8, 3), 3), ((10, 2), 4), ((5, 3, 4, 4), None),
              ((5, 2, 3, 3), 2), ((7, 2, 2, 3), 4), ((1, 3, 2, 2), None)]


@pytest.mark.parametrize("shape,ghost", GRAD_CASES)
def test_gradcheck_training(shape, ghost):
    """float64 central differences through the batch statistics; tanh after
    the op so the upstream gradient of the normalised values is not a
    constant per channel (whose VJP would be zero)."""
    rng = np.random.default_rng(4)
    channels = shape[1]
    x = fastgrad.tensor(rng.standard_normal(shape) * 2 + 1, np.float64,
                        requires_grad=True)
    weight = fastgrad.tensor(rng.uniform(0.5, 2, channels), np.float64,
                             requires_grad=True)
    bias = fastgrad.tensor(rng.standard_normal(channels), np.float64,
                           requires_grad=True)

    def forward(x, weight, bias):
        return ops.tanh(ops.batch_norm(x, weight, bias, None, None, True,
                                       ghost_batch_size=ghost))
    # One call per group of same-shaped inputs (gradcheck compares inputs
    # with ==, which needs broadcastable shapes).
    assert fastgrad.gradcheck(lambda x: forward(x, weight, bias), [x])
    assert fastgrad.gradcheck(lambda w, b: forward(x, w, b), [weight, bias])


@pytest.mark.parametrize("shape", [(6, 4), (3, 2, 3, 3)])
def test_gradcheck_without_affine_and_in_evaluation(shape):
    rng = np.random.default_rng(5)
    channels = shape[1]
    x = fastgrad.tensor(rng.standard_normal(shape), np.float64,
                        requires_grad=True)
    weight = fastgrad.tensor(rng.uniform(0.5, 2, channels), np.float64,
                             requires_grad=True)
    bias = fastgrad.tensor(rng.standard_normal(channels), np.float64,
                           requires_grad=True)
    running_mean = rng.standard_normal(channels)
    running_var = rng.uniform(0.5, 2, channels)
    assert fastgrad.gradcheck(
        lambda x: ops.tanh(ops.batch_norm(x, None, None, None, None, True)),
        [x])
    evaluate = lambda x, w, b: ops.tanh(ops.batch_norm(  # noqa: E731
        x, w, b, running_mean, running_var, False))
    assert fastgrad.gradcheck(lambda x: evaluate(x, weight, bias), [x])
    assert fastgrad.gradcheck(lambda w, b: evaluate(x, w, b), [weight, bias])


def test_gradient_goes_through_the_statistics():
    """The normalised output of each channel has zero mean, so a constant
    upstream gradient per channel must give dx = 0 (it would not if the
    statistics were treated as constants)."""
    rng = np.random.default_rng(6)
    x = fastgrad.tensor(rng.standard_normal((8, 3)), np.float64,
                        requires_grad=True)
    y = ops.batch_norm(x, None, None, None, None, True, ghost_batch_size=4)
    y.backward(np.tile([1.0, -2.0, 3.0], (8, 1)))
    np.testing.assert_allclose(x.grad, 0, atol=1e-12)


def test_two_sample_batch_passes_no_gradient_to_its_input():
    """With m = 2 values per channel the normalised output is +-1 whatever
    x is (when var >> eps), so dx is 0: layers below a BatchNorm trained at
    batch size 2 do not learn (what bench/suites/bn.py shows)."""
    rng = np.random.default_rng(13)
    x = fastgrad.tensor(rng.standard_normal((2, 5)) * 10, np.float64,
                        requires_grad=True)
    y = ops.batch_norm(x, None, None, None, None, True)
    np.testing.assert_allclose(np.abs(y.data), 1, rtol=1e-4)
    y.backward(rng.standard_normal((2, 5)))
    np.testing.assert_allclose(x.grad, 0, atol=1e-6)


# -- running statistics and evaluation --------------------------------------

@pytest.mark.parametrize("ghost", [None, 4, 3])
@pytest.mark.parametrize("dtype", DTYPES)
def test_running_statistics_over_several_steps(ghost, dtype):
    """running := (1 - momentum) running + momentum * stat, with the batch
    mean and the (size-weighted mean over ghost batches of the) unbiased
    variance, against plain NumPy over 6 steps of different batches."""
    rng = np.random.default_rng(7)
    layer = BatchNorm(5, momentum=0.2, ghost_batch_size=ghost, dtype=dtype)
    mean, var = np.zeros(5), np.ones(5)
    for step, size in enumerate([8, 11, 12, 14, 18, 20]):
        batch = rng.standard_normal((size, 5)) * (step + 1) + step
        layer(fastgrad.tensor(batch, dtype))
        batch = batch.astype(dtype).astype(np.float64)
        size = ghost or len(batch)
        chunks = [batch[i:i + size] for i in range(0, len(batch), size)]
        batch_var = sum(len(c) * c.var(axis=0, ddof=1) for c in chunks)
        mean = 0.8 * mean + 0.2 * batch.mean(axis=0)
        var = 0.8 * var + 0.2 * batch_var / len(batch)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(layer.running_mean, mean, rtol=rtol)
    np.testing.assert_allclose(layer.running_var, var, rtol=rtol)
    assert layer.n_batches_tracked == 6


def test_running_statistics_of_maps_use_all_positions():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((4, 3, 5, 5))
    running_mean, running_var = np.zeros(3), np.ones(3)
    ops.batch_norm(x, None, None, running_mean, running_var, True,
                   momentum=1.0)
    per_map = x.transpose(1, 0, 2, 3).reshape(3, -1)
    np.testing.assert_allclose(running_mean, per_map.mean(axis=1))
    np.testing.assert_allclose(running_var, per_map.var(axis=1, ddof=1))


@pytest.mark.parametrize("shape", [(6, 3), (2, 3, 4, 4)])
def test_evaluation_uses_running_statistics(shape):
    rng = np.random.default_rng(9)
    layer = BatchNorm(3, dtype=np.float64)
    layer.running_mean[...] = [0.5, -1.0, 2.0]
    layer.running_var[...] = [4.0, 0.25, 1.0]
    layer.weight.data[...] = [1.0, 2.0, -1.0]
    layer.bias.data[...] = [0.0, 1.0, 3.0]
    layer.eval()
    x = rng.standard_normal(shape)
    y = layer(fastgrad.tensor(x, np.float64)).data
    view = (1, 3) + (1,) * (len(shape) - 2)
    expected = ((x - layer.running_mean.reshape(view))
                / np.sqrt(layer.running_var.reshape(view) + layer.eps)
                * layer.weight.data.reshape(view)
                + layer.bias.data.reshape(view))
    np.testing.assert_allclose(y, expected, rtol=1e-12)
    # running statistics unchanged, one sample is normalised on its own
    np.testing.assert_array_equal(layer.running_mean, [0.5, -1.0, 2.0])
    single = layer(fastgrad.tensor(x[:1], np.float64)).data
    np.testing.assert_allclose(single, y[:1], rtol=1e-12)


def test_ghost_batches_are_normalised_separately():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((10, 2)) + np.arange(10)[:, None]
    y = ops.batch_norm(x, None, None, None, None, True,
                       ghost_batch_size=4).data
    for rows in (slice(0, 4), slice(4, 8), slice(8, 10)):  # last: 2 samples
        chunk = x[rows]
        expected = (chunk - chunk.mean(0)) / np.sqrt(chunk.var(0) + 1e-5)
        np.testing.assert_allclose(y[rows], expected, rtol=1e-10)


def test_constant_channel_gives_bias_not_nan():
    x = np.full((5, 2), 3.0, np.float32)
    y = ops.batch_norm(x, np.ones(2, np.float32), np.array([1.0, -1.0],
                       np.float32), None, None, True).data
    np.testing.assert_array_equal(y, np.tile([1.0, -1.0], (5, 1)))


# -- errors ------------------------------------------------------------------

@pytest.mark.parametrize("shape,ghost", [((1, 4), None), ((1, 3, 1, 1), None),
                                         ((9, 4), 4), ((5, 3), 2)])
def test_single_value_per_channel_raises_in_training(shape, ghost):
    x = np.ones(shape, np.float32)
    with pytest.raises(ValueError, match="single value|1 value"):
        ops.batch_norm(x, None, None, None, None, True,
                       ghost_batch_size=ghost)
    layer = BatchNorm(shape[1], ghost_batch_size=ghost)
    with pytest.raises(ValueError, match="undefined"):
        layer(fastgrad.tensor(x))
    assert np.isfinite(layer.eval()(fastgrad.tensor(x)).data).all()


def test_batch_of_one_with_maps_is_defined():
    """(1, C, H, W) has H*W values per channel: the variance exists."""
    x = np.random.default_rng(11).standard_normal((1, 2, 3, 3))
    y = ops.batch_norm(x, None, None, None, None, True).data
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)


def test_bad_arguments_of_the_op():
    x = np.ones((4, 3), np.float32)
    cases = [
        (dict(x=np.ones((4, 3, 2), np.float32)), ValueError, "(N, C)"),
        (dict(weight=np.ones(2, np.float32)), ValueError, "weight"),
        (dict(running_mean=np.zeros(4)), ValueError, "running_mean"),
        (dict(ghost_batch_size=0), ValueError, "ghost_batch_size"),
        (dict(ghost_batch_size=2.5), ValueError, "ghost_batch_size"),
        (dict(momentum=1.5), ValueError, "momentum"),
        (dict(eps=0.0), ValueError, "eps"),
        (dict(training=False), ValueError, "running_mean"),
        (dict(x=np.ones((4, 3), np.int64)), TypeError, "float"),
    ]
    for change, error, message in cases:
        arguments = dict(x=x, weight=None, bias=None, running_mean=None,
                         running_var=None, training=True)
        arguments.update(change)
        with pytest.raises(error, match=message.replace("(", r"\(")
                           .replace(")", r"\)")):
            ops.batch_norm(**arguments)


def test_bad_arguments_of_the_kernels():
    x, weight, bias, dy = make_inputs((6, 4), np.float64)
    out, stats = np.empty_like(x), np.empty((1, 4))
    stats2, rm, rv = np.empty((1, 4)), np.zeros(4), np.ones(4)

    def train(**change):
        arguments = dict(x=x, weight=weight, bias=bias, out=out, mean=stats,
                         invstd=stats2, running_mean=rm, running_var=rv,
                         ghost_batch_size=0, momentum=0.1, eps=1e-5)
        arguments.update(change)
        return _kernels.bn_forward_train(*arguments.values())

    with pytest.raises(TypeError, match="bn_forward_train: x must be float"):
        train(x=x.astype(np.int32))
    with pytest.raises(TypeError, match="weight has dtype float64"):
        train(x=x.astype(np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        train(x=np.asfortranarray(x))
    with pytest.raises(ValueError, match=r"bn_forward_train: x must be"):
        train(x=x[:, :, None])
    with pytest.raises(ValueError, match="weight has shape"):
        train(weight=np.ones(5))
    with pytest.raises(ValueError, match="mean has shape"):
        train(ghost_batch_size=2)  # needs (3, 4) statistics
    with pytest.raises(ValueError, match="overlaps"):
        train(out=x)
    with pytest.raises(ValueError, match="overlaps"):
        train(invstd=stats)
    with pytest.raises(ValueError, match="both running_mean"):
        train(running_var=None)
    with pytest.raises(ValueError, match="read-only"):
        frozen = np.empty_like(x)
        frozen.flags.writeable = False
        train(out=frozen)
    with pytest.raises(TypeError, match="numpy.ndarray"):
        train(x=x.tolist())
    with pytest.raises(ValueError, match="more than one value"):
        train(x=x[:1], out=out[:1])
    dx, dweight, dbias = np.empty_like(x), np.empty(4), np.empty(4)
    with pytest.raises(ValueError, match="overlaps"):
        _kernels.bn_backward_train(x, dy, weight, stats, stats2, dy, dweight,
                                   dbias, 0)
    with pytest.raises(ValueError, match="dy has shape"):
        _kernels.bn_backward_train(x, dy[:3], weight, stats, stats2, dx,
                                   dweight, dbias, 0)
    with pytest.raises(ValueError, match="negative"):
        _kernels.bn_forward_eval(x, weight, bias, rm, -rv, out, 1e-5)
    with pytest.raises(ValueError, match="overlaps"):
        _kernels.bn_backward_eval(x, dy, weight, rm, rv, dx, dweight,
                                  dweight, 1e-5)


# -- the layer ---------------------------------------------------------------

def test_layer_trains_and_its_state_round_trips():
    rng = np.random.default_rng(12)
    layer = BatchNorm(4, momentum=0.3, ghost_batch_size=4)
    for _ in range(3):
        x = fastgrad.tensor(rng.standard_normal((8, 4, 3, 3)) * 2 + 1)
        loss = ops.sum(ops.tanh(layer(x)))
        loss.backward()
    assert all(p.grad is not None and p.grad.shape == (4,)
               for p in layer.parameters())
    layer.weight.data[...] += 0.5
    state = layer.state_dict()
    restored = BatchNorm(4).eval()
    restored.load_state_dict(state)
    x = fastgrad.tensor(rng.standard_normal((5, 4, 3, 3)))
    layer.eval()
    np.testing.assert_array_equal(restored(x).data, layer(x).data)
    assert restored.n_batches_tracked == 3
    state["running_var"] = -state["running_var"]
    with pytest.raises(ValueError, match="negative"):
        restored.load_state_dict(state)
    with pytest.raises(ValueError, match="shape"):
        BatchNorm(3).load_state_dict(layer.state_dict())


def test_layer_mode_switches_and_arguments():
    layer = BatchNorm(2)
    assert layer.training and not layer.eval().training
    assert layer.train().training
    for bad in (dict(n_channels=0), dict(momentum=-0.1), dict(eps=0),
                dict(ghost_batch_size=0), dict(dtype=np.int32)):
        arguments = dict(n_channels=2)
        arguments.update(bad)
        with pytest.raises((ValueError, TypeError)):
            BatchNorm(**arguments)


# -- the models --------------------------------------------------------------

def test_nn_with_batch_norm_modes_and_checkpoint(tmp_path):
    from fastgrad import io
    from fastgrad.models.nn import NN
    rng = np.random.default_rng(14)
    x = rng.standard_normal((60, 6))
    labels = (x[:, 0] > 0).astype(np.int64)
    net = NN([6, 5, 4, 2], activation="relu", output="softmax",
             learning_rate=0.1, seed=0, batch_norm=True, ghost_batch_size=5)
    assert len(net.norms) == 2 and len(net.parameters()) == 6 + 4
    net.fit(x, labels, epochs=2, batch_size=20, progress=False)
    assert all(norm.n_batches_tracked == 6 for norm in net.norms)
    assert not np.array_equal(net.norms[0].running_var, np.ones(5))
    assert net.norms[0].weight.grad is not None
    # evaluation uses the running statistics: a row alone = a row in a batch
    probs = net.predict_proba(x)
    np.testing.assert_allclose(net.predict_proba(x[3:4]), probs[3:4],
                               rtol=1e-5)
    path = tmp_path / "nn.npz"
    net.save(path)
    restored = NN([6, 5, 4, 2], activation="relu", output="softmax", seed=1,
                  batch_norm=True).load(path)
    assert restored.ghost_batch_size == 5
    np.testing.assert_array_equal(restored.predict_proba(x), probs)
    np.testing.assert_array_equal(restored.norms[1].running_mean,
                                  net.norms[1].running_mean)
    with pytest.raises(io.CheckpointError, match="batch_norm"):
        NN([6, 5, 4, 2], activation="relu", output="softmax").load(path)


def test_cnn_with_batch_norm_modes_and_checkpoint(tmp_path):
    from fastgrad.models.cnn import CNN
    rng = np.random.default_rng(15)
    images = rng.random((24, 8, 8))
    labels = (images.mean(axis=(1, 2)) > 0.5).astype(np.int64)
    layers = [{"type": "i"}, {"type": "c", "output_maps": 3,
                              "kernel_size": 3},
              {"type": "s", "scale": 2}]
    net = CNN(layers, 2, input_shape=(8, 8), output="softmax", seed=0,
              batch_norm=True, ghost_batch_size=4)
    net.train(images, labels, epochs=1, batch_size=8, alpha=0.1)
    norm = net.norms[0]
    assert norm.n_batches_tracked == 3 and norm.weight.grad is not None
    outputs = net.predict(images)
    np.testing.assert_allclose(net.predict(images[:1]), outputs[:1],
                               rtol=1e-5)
    assert net.training  # predict() restores the mode
    path = tmp_path / "cnn.npz"
    net.save(path)
    restored = CNN.from_checkpoint(path)
    assert restored.batch_norm and restored.ghost_batch_size == 4
    np.testing.assert_array_equal(restored.predict(images), outputs)
    np.testing.assert_array_equal(restored.norms[0].running_var,
                                  norm.running_var)
    net.eval()  # forward() in evaluation mode: rows are independent
    np.testing.assert_allclose(net.forward(images[:5]).data,
                               net.forward(images).data[:5], rtol=1e-5)
