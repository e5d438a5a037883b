"""Stacked autoencoders (SAE) and the convolutional autoencoder (CAE):
gradient checks, DeepLearnToolbox semantics, checkpoints and errors."""
import numpy as np
import pytest

import fastgrad
from fastgrad.models import CAE, NN, SAE
from fastgrad.models.cae import max_block_mask


# ---------------------------------------------------------------------------
# SAE
# ---------------------------------------------------------------------------

def _blobs(n=120, d=12, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((n, d)) < rng.random(d)).astype(np.float32)


def test_sae_builds_one_autoencoder_per_layer():
    sae = SAE([12, 8, 5], seed=0, activation="sigm", learning_rate=1,
              input_zero_masked_fraction=0.5)
    assert [ae.sizes for ae in sae.autoencoders] == [[12, 8, 12], [8, 5, 8]]
    assert all(ae.activation == "sigm" and ae.output == "sigm"
               and ae.input_zero_masked_fraction == 0.5
               for ae in sae.autoencoders)
    # the autoencoders draw different initial weights
    assert not np.array_equal(sae.autoencoders[0].weights[0].data[:5, :8],
                              sae.autoencoders[1].weights[0].data[:5, :8])


def test_sae_trains_greedily_and_initialises_a_network():
    x = _blobs()
    sae = SAE([12, 8, 5], seed=1, activation="sigm", learning_rate=1,
              input_zero_masked_fraction=0.3)
    first_loss = sae.autoencoders[0].evaluate(x, x)[0]
    sae.fit(x, epochs=5, batch_size=10, progress=False)
    assert sae.autoencoders[0].evaluate(x, x)[0] < first_loss
    # the second autoencoder was trained on the first one's codes
    codes = sae.autoencoders[0].hidden_activations(x)[0]
    assert len(sae.autoencoders[1].history["loss"]) == 5
    np.testing.assert_array_equal(sae.encode(x), sae.autoencoders[1]
                                  .hidden_activations(codes)[0])
    net = sae.to_nn(3, learning_rate=0.5)
    assert isinstance(net, NN) and net.sizes == [12, 8, 5, 3]
    assert net.activation == "sigm" and net.learning_rate == 0.5
    for i, ae in enumerate(sae.autoencoders):
        np.testing.assert_array_equal(net.weights[i].data, ae.weights[0].data)
        np.testing.assert_array_equal(net.biases[i].data, ae.biases[0].data)
    # the copies are the network's own: training it leaves the SAE alone
    before = sae.autoencoders[0].weights[0].data.copy()
    net.fit(x, np.arange(len(x)) % 3, epochs=1, batch_size=10,
            progress=False)
    np.testing.assert_array_equal(sae.autoencoders[0].weights[0].data, before)
    assert SAE([12, 8, 5], seed=1).to_nn(3).weights[-1].data.shape == (3, 5)


def test_sae_is_reproducible_from_its_seed():
    x = _blobs()
    runs = []
    for _ in range(2):
        sae = SAE([12, 6], seed=3, input_zero_masked_fraction=0.5,
                  activation="sigm", learning_rate=1)
        sae.fit(x, epochs=2, batch_size=10, progress=False)
        runs.append(sae.to_nn(2).weights[1].data.copy())
        runs.append(sae.autoencoders[0].weights[0].data.copy())
    assert np.array_equal(runs[0], runs[2]) and np.array_equal(runs[1],
                                                                runs[3])


def test_sae_autoencoder_gradcheck_with_input_masking():
    x = _blobs(n=6, d=5).astype(np.float64)
    sae = SAE([5, 4], seed=0, dtype="float64", activation="sigm",
              input_zero_masked_fraction=0.4)
    ae = sae.autoencoders[0]
    counter = ae.sampler.counter

    def loss(*params):
        ae.sampler.counter = counter
        return ae.loss(x, x)

    assert fastgrad.gradcheck(loss, ae.parameters())


def test_sae_bad_sizes_raise():
    with pytest.raises(ValueError, match="sizes"):
        SAE([10])


# ---------------------------------------------------------------------------
# CAE
# ---------------------------------------------------------------------------

def test_max_block_mask_keeps_the_first_maximum_of_each_block():
    rng = np.random.default_rng(0)
    values = rng.integers(0, 4, (2, 3, 6, 4)).astype(np.float64)
    mask = max_block_mask(values, 2)
    for index in np.ndindex(2, 3, 3, 2):
        n, m, i, j = index
        block = values[n, m, 2 * i:2 * i + 2, 2 * j:2 * j + 2]
        expected = np.zeros(4)
        expected[np.argmax(block.ravel())] = 1
        np.testing.assert_array_equal(
            mask[n, m, 2 * i:2 * i + 2, 2 * j:2 * j + 2].ravel(), expected)


def test_cae_shapes_follow_caeup_and_caedown():
    cae = CAE(input_maps=1, output_maps=4, kernel_size=5, scale=2, seed=0)
    x = np.random.default_rng(0).random((3, 28, 28)).astype(np.float32)
    assert cae.encode(x).shape == (3, 4, 32, 32)
    assert cae.reconstruct(x).shape == (3, 1, 28, 28)
    pooled = cae.encode(x).reshape(3, 4, 16, 2, 16, 2)
    # max3d: exactly one non-zero per 2x2 block (sigmoid outputs are > 0)
    assert np.all((pooled != 0).sum(axis=(3, 5)) == 1)
    assert cae.input_kernels.shape == (4, 1, 5, 5)
    assert cae.output_kernels.shape == (1, 4, 5, 5)


@pytest.mark.parametrize("noise, scale", [(0.0, 2), (0.3, 2), (0.2, 1)])
def test_cae_gradcheck(noise, scale):
    rng = np.random.default_rng(1)
    x = rng.random((2, 2, 6, 6))
    cae = CAE(input_maps=2, output_maps=3, kernel_size=3, scale=scale,
              noise=noise, seed=4, dtype="float64")
    for p in cae.parameters():  # non-zero biases, larger kernels
        p.data[...] = rng.standard_normal(p.shape)
    counter = cae.sampler.counter

    def loss(*params):
        cae.sampler.counter = counter
        return cae.loss(x)

    assert fastgrad.gradcheck(loss, cae.parameters())


def test_cae_learns_to_reconstruct():
    rng = np.random.default_rng(0)
    x = (rng.random((40, 1, 8, 8)) < 0.3).astype(np.float32)
    cae = CAE(output_maps=4, kernel_size=3, scale=2, seed=0,
              learning_rate=0.01)
    before = cae.evaluate(x)
    cae.fit(x, rounds=300, batch_size=2, progress=False)
    assert len(cae.history["loss"]) == 300
    assert cae.evaluate(x) < 0.5 * before


def test_cae_resumed_training_is_bit_identical(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.random((20, 1, 6, 6))
    options = dict(output_maps=2, kernel_size=3, noise=0.2, seed=5,
                   learning_rate=0.01)
    whole = CAE(**options).fit(x, rounds=20, batch_size=3, progress=False)
    half = CAE(**options).fit(x, rounds=10, batch_size=3, progress=False)
    half.save(tmp_path / "cae.npz")
    resumed = CAE(**dict(options, seed=9)).load(tmp_path / "cae.npz")
    resumed.fit(x, rounds=10, batch_size=3, progress=False)
    for a, b in zip(whole.parameters(), resumed.parameters()):
        assert np.array_equal(a.data, b.data)
    assert whole.history["loss"] == resumed.history["loss"]
    from fastgrad.io import CheckpointError
    with pytest.raises(CheckpointError, match="output_maps"):
        CAE(output_maps=3, kernel_size=3).load(tmp_path / "cae.npz")


@pytest.mark.parametrize("bad, match", [
    (dict(output_maps=0), "output_maps"),
    (dict(noise=1.0), "noise"),
    (dict(learning_rate=-1), "learning_rate"),
    (dict(momentum=1.5), "momentum"),
])
def test_cae_bad_hyper_parameters_raise(bad, match):
    with pytest.raises(ValueError, match=match):
        CAE(**bad)


def test_cae_bad_images_raise():
    cae = CAE(input_maps=1, kernel_size=5, scale=2)
    with pytest.raises(ValueError, match="not divisible by scale 2"):
        cae.reconstruct(np.zeros((1, 1, 27, 27)))
    with pytest.raises(ValueError, match="expected"):
        cae.reconstruct(np.zeros((1, 2, 28, 28)))


def test_sae_resumed_training_is_bit_identical(tmp_path):
    x = _blobs()
    options = dict(activation="sigm", learning_rate=1,
                   input_zero_masked_fraction=0.5)
    whole = SAE([12, 8, 5], seed=2, **options)
    whole.fit(x, epochs=2, batch_size=10, progress=False)
    half = SAE([12, 8, 5], seed=2, **options)
    half.autoencoders[0].fit(x, x, epochs=1, batch_size=10, progress=False)
    half.save(tmp_path / "sae.npz")
    resumed = SAE([12, 8, 5], seed=99, **options).load(tmp_path / "sae.npz")
    resumed.autoencoders[0].fit(x, x, epochs=1, batch_size=10,
                                progress=False)
    codes = resumed.autoencoders[0].hidden_activations(x)[0]
    resumed.autoencoders[1].fit(codes, codes, epochs=2, batch_size=10,
                                progress=False)
    for a, b in zip(whole.autoencoders, resumed.autoencoders):
        for p, q in zip(a.parameters(), b.parameters()):
            assert np.array_equal(p.data, q.data)
    assert np.array_equal(whole.to_nn(3).weights[-1].data,
                          resumed.to_nn(3).weights[-1].data)
    from fastgrad.io import CheckpointError
    with pytest.raises(CheckpointError, match="sizes"):
        SAE([12, 6, 5]).load(tmp_path / "sae.npz")
