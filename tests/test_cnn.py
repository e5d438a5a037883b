"""The DeepLearnToolbox CNN (fastgrad.models.cnn): setup, forward against
NumPy, gradients (float64 gradcheck), training, checkpoints.

The accuracy gate of test_example_CNN (mnist10k, matched, seeds 0-2, mean
test error <= 0.12) runs examples/cnn_ex1.py from tests/test_examples.py;
three 8-epoch trainings take too long for this file's budget."""
import numpy as np
import pytest

import fastgrad
from fastgrad import io, ops
from fastgrad.models.cnn import CNN
from fastgrad.tensor import Tensor

LAYERS = [{"type": "i"},
          {"type": "c", "output_maps": 6, "kernel_size": 5},
          {"type": "s", "scale": 2},
          {"type": "c", "output_maps": 12, "kernel_size": 5},
          {"type": "s", "scale": 2}]
SMALL_LAYERS = [{"type": "i"},
                {"type": "c", "output_maps": 3, "kernel_size": 3},
                {"type": "s", "scale": 2},
                {"type": "c", "output_maps": 4, "kernel_size": 2},
                {"type": "s", "scale": 1}]


def _batch(n, shape=(28, 28), seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    x = rng.random((n,) + shape).astype(dtype)
    labels = rng.integers(0, 10, n)
    return x, labels, np.eye(10, dtype=dtype)[labels]


def test_setup_shapes_and_dlt_initialisation():
    net = CNN(LAYERS, n_outputs=10, seed=0)
    shapes = [p.shape for p in net.params]
    assert shapes == [(6, 1, 5, 5), (6,), (12, 6, 5, 5), (12,), (10, 192),
                      (10,)]
    assert net.n_features == 192
    assert all(p.requires_grad and p.dtype == np.float32 for p in net.params)
    # cnnsetup: uniform in +-sqrt(6 / ((in + out) k^2)), biases 0.
    for weight, bound in ((net.params[0], np.sqrt(6 / (7 * 25))),
                          (net.params[2], np.sqrt(6 / (18 * 25))),
                          (net.params[4], np.sqrt(6 / (10 + 192)))):
        values = weight.data
        assert np.abs(values).max() <= bound
        assert np.abs(values).max() > 0.9 * bound
    for bias in (net.params[1], net.params[3], net.params[5]):
        assert np.all(bias.data == 0)
    same = CNN(LAYERS, n_outputs=10, seed=0)
    assert all(np.array_equal(a.data, b.data)
               for a, b in zip(net.params, same.params))


def test_bad_configurations():
    with pytest.raises(ValueError, match="first layer"):
        CNN(LAYERS[1:], n_outputs=10)
    with pytest.raises(ValueError, match="not divisible by the scale 2"):
        CNN([{"type": "i"}, {"type": "c", "output_maps": 2,
                             "kernel_size": 4}, {"type": "s", "scale": 2}],
            n_outputs=10)
    with pytest.raises(ValueError, match="larger than its input"):
        CNN([{"type": "i"}, {"type": "c", "output_maps": 2,
                             "kernel_size": 29}], n_outputs=10)
    with pytest.raises(ValueError, match="unknown type 'x'"):
        CNN([{"type": "i"}, {"type": "x"}], n_outputs=10)
    with pytest.raises(ValueError, match="kernel_size"):
        CNN([{"type": "i"}, {"type": "c", "output_maps": 2}], n_outputs=10)
    with pytest.raises(ValueError, match="activation"):
        CNN(LAYERS, n_outputs=10, activation="tanh")
    net = CNN(LAYERS, n_outputs=10, seed=0)
    with pytest.raises(ValueError, match="do not match"):
        net.predict(np.zeros((2, 27, 27), np.float32))


def test_forward_matches_numpy_reference():
    """cnnff by hand in NumPy (float64) against the model's forward."""
    net = CNN(LAYERS, n_outputs=10, seed=3, dtype="float64")
    x, _, _ = _batch(4, dtype=np.float64)

    def conv(maps, weight, bias):
        k = weight.shape[-1]
        size = maps.shape[-1] - k + 1
        out = np.zeros((len(maps), len(weight), size, size))
        for p in range(k):
            for q in range(k):
                out += np.einsum("ncij,mc->nmij",
                                 maps[:, :, p:p + size, q:q + size],
                                 weight[:, :, p, q])
        return 1 / (1 + np.exp(-(out + bias[None, :, None, None])))

    def pool(maps):
        n, c, h, w = maps.shape
        return maps.reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))

    w1, b1, w2, b2, wo, bo = (p.data for p in net.params)
    maps = pool(conv(pool(conv(x[:, None], w1, b1)), w2, b2))
    want = 1 / (1 + np.exp(-(maps.reshape(4, -1) @ wo.T + bo)))
    assert np.allclose(net.predict(x), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("activation,output", [("sigm", "sigm"),
                                               ("relu", "softmax"),
                                               ("sigm", "softmax")])
def test_gradcheck_whole_model(activation, output):
    """DeepLearnToolbox's test_cnn gradient check, through autodiff, in
    float64 (every parameter at once, <u, J v> against <J^T u, v>)."""
    net = CNN(SMALL_LAYERS, n_outputs=10, input_shape=(10, 10),
              activation=activation, output=output, dtype="float64", seed=1)
    # Non-zero biases so that the bias gradients are exercised generally.
    rng = np.random.default_rng(5)
    for param in net.params:
        param.data[...] += 0.1 * rng.standard_normal(param.shape)
    x, labels, onehot = _batch(3, shape=(10, 10), seed=2, dtype=np.float64)
    target = onehot if output == "sigm" else labels

    def loss(*params):
        return net.loss(x, target)

    assert fastgrad.gradcheck(loss, net.params, eps=1e-6, atol=1e-8,
                              rtol=1e-5)


def test_gradcheck_conv_and_subsample_ops():
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((2, 3, 9, 8)), requires_grad=True)
    weight = Tensor(rng.standard_normal((4, 3, 3, 2)), requires_grad=True)
    bias = Tensor(rng.standard_normal(4), requires_grad=True)
    for padding in ("valid", "full", 1):
        for activation in ("none", "sigmoid", "tanh"):
            def conv(a, b, c):
                return ops.conv2d(a, b, c, padding=padding,
                                  activation=activation)
            assert fastgrad.gradcheck(conv, [x, weight, bias])
    assert fastgrad.gradcheck(lambda a: ops.subsample(a, 2),
                              [Tensor(rng.standard_normal((2, 3, 4, 6)),
                                      requires_grad=True)])


def test_input_gradient_skipped_for_images():
    """The image needs no gradient: only parameters get one."""
    net = CNN(LAYERS, n_outputs=10, seed=0)
    x, _, y = _batch(5)
    images = Tensor(x.reshape(5, 1, 28, 28))
    net.loss(images, y).backward()
    assert images.grad is None
    assert all(p.grad is not None and p.grad.shape == p.shape
               for p in net.params)


def test_training_lowers_the_loss_and_is_reproducible():
    x, _, y = _batch(200, seed=4)
    runs = []
    for _ in range(2):
        net = CNN(LAYERS, n_outputs=10, seed=7)
        losses = net.train(x, y, epochs=3, batch_size=20, alpha=1.0)
        runs.append((losses, [p.data.copy() for p in net.params]))
    assert len(runs[0][0]) == 30
    assert np.mean(runs[0][0][-10:]) < np.mean(runs[0][0][:10])
    assert runs[0][0] == runs[1][0]
    assert all(np.array_equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))


def test_training_bitwise_equal_for_1_and_2_threads():
    x, _, y = _batch(100, seed=4)
    saved = fastgrad.get_num_threads()
    results = []
    try:
        for n_threads in (1, 2):
            fastgrad.set_num_threads(n_threads)
            net = CNN(LAYERS, n_outputs=10, seed=7)
            net.train(x, y, epochs=1, batch_size=50, alpha=1.0)
            results.append([p.data.copy() for p in net.params])
    finally:
        fastgrad.set_num_threads(saved)
    assert all(np.array_equal(a, b) for a, b in zip(*results))


def test_error_and_predict():
    net = CNN(LAYERS, n_outputs=10, seed=0)
    x, labels, onehot = _batch(30)
    out = net.predict(x, batch_size=7)
    assert out.shape == (30, 10)
    expected = float(np.mean(out.argmax(1) != labels))
    assert net.error(x, labels) == expected
    assert net.error(x, onehot) == expected
    softmax = CNN(LAYERS, n_outputs=10, output="softmax", seed=0)
    assert np.allclose(softmax.predict(x).sum(axis=1), 1, atol=1e-5)


def test_checkpoint_resume_is_bit_identical(tmp_path):
    x, labels, _ = _batch(120, seed=9)
    straight = CNN(LAYERS, n_outputs=10, output="softmax", seed=3)
    straight.train(x, labels, epochs=2, batch_size=40, alpha=0.5)

    first = CNN(LAYERS, n_outputs=10, output="softmax", seed=3)
    first.train(x, labels, epochs=1, batch_size=40, alpha=0.5)
    path = tmp_path / "cnn.npz"
    first.save(path)
    resumed = CNN.from_checkpoint(path)
    resumed.train(x, labels, epochs=1, batch_size=40, alpha=0.5)
    assert all(np.array_equal(a.data, b.data)
               for a, b in zip(straight.params, resumed.params))
    assert resumed.losses == straight.losses


def test_checkpoint_mismatch_leaves_model_untouched(tmp_path):
    path = tmp_path / "small.npz"
    CNN(SMALL_LAYERS, n_outputs=10, input_shape=(10, 10), seed=0).save(path)
    net = CNN(LAYERS, n_outputs=10, seed=1)
    before = [p.data.copy() for p in net.params]
    with pytest.raises(io.CheckpointError):
        net.load(path)
    assert all(np.array_equal(a, p.data) for a, p in zip(before, net.params))
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(path.read_bytes()[:100])
    with pytest.raises(io.CheckpointError):
        net.load(corrupt)
