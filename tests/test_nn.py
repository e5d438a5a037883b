"""NN (fastgrad.models.nn) against a NumPy transcription of DeepLearnToolbox's
nnff/nnbp/nnapplygrads, gradient checks, modes, checkpoints and errors."""
import numpy as np
import pytest

import fastgrad
from fastgrad.models import NN

TANH_A, TANH_B = 1.7159, 2.0 / 3.0


# ---------------------------------------------------------------------------
# DeepLearnToolbox, transcribed line by line (bias as column 0 of W)
# ---------------------------------------------------------------------------

class DLTReference:
    """nnff, nnbp and nnapplygrads of DeepLearnToolbox in float64."""

    def __init__(self, net):
        self.W = [np.hstack([b.data[:, None], w.data]).astype(np.float64)
                  for w, b in zip(net.weights, net.biases)]
        self.vW = [np.zeros_like(w) for w in self.W]
        self.p = [np.zeros(n) for n in net.sizes[1:-1]]
        self.act = net.activation
        self.out = net.output
        self.lr = net.learning_rate
        self.momentum = net.momentum
        self.l2 = net.weight_penalty_l2
        self.beta = net.non_sparsity_penalty
        self.rho = net.sparsity_target

    def nnff(self, x, y):
        m = len(x)
        a = [np.hstack([np.ones((m, 1)), x])]
        for i, w in enumerate(self.W[:-1]):
            z = a[-1] @ w.T
            h = 1 / (1 + np.exp(-z)) if self.act == "sigm" else (
                TANH_A * np.tanh(TANH_B * z) if self.act == "tanh_opt"
                else np.maximum(z, 0))
            if self.beta > 0:
                self.p[i] = 0.99 * self.p[i] + 0.01 * h.mean(axis=0)
            a.append(np.hstack([np.ones((m, 1)), h]))
        z = a[-1] @ self.W[-1].T
        if self.out == "sigm":
            out = 1 / (1 + np.exp(-z))
        elif self.out == "linear":
            out = z
        else:
            e = np.exp(z - z.max(axis=1, keepdims=True))
            out = e / e.sum(axis=1, keepdims=True)
        a.append(out)
        self.a, self.e = a, y - out
        if self.out == "softmax":
            self.L = -np.sum(y * np.log(out)) / m
        else:
            self.L = 0.5 * np.sum(self.e ** 2) / m

    def nnbp(self):
        a, n = self.a, len(self.a)
        d = [None] * n
        d[-1] = (-self.e * a[-1] * (1 - a[-1]) if self.out == "sigm"
                 else -self.e)
        for i in range(n - 2, 0, -1):
            if self.act == "sigm":
                d_act = a[i] * (1 - a[i])
            elif self.act == "tanh_opt":
                d_act = TANH_A * TANH_B * (1 - a[i] ** 2 / TANH_A ** 2)
            else:
                d_act = (a[i] > 0).astype(float)
            sparsity = 0
            if self.beta > 0:
                p = self.p[i - 1]
                term = self.beta * (-self.rho / p + (1 - self.rho) / (1 - p))
                sparsity = np.hstack([np.zeros((len(a[i]), 1)),
                                      np.tile(term, (len(a[i]), 1))])
            upper = d[i + 1] if i + 1 == n - 1 else d[i + 1][:, 1:]
            d[i] = (upper @ self.W[i] + sparsity) * d_act
        self.dW = []
        for i in range(n - 1):
            upper = d[i + 1] if i + 1 == n - 1 else d[i + 1][:, 1:]
            self.dW.append(upper.T @ a[i] / len(upper))

    def nnapplygrads(self):
        for i, w in enumerate(self.W):
            dW = self.dW[i]
            if self.l2 > 0:
                dW = dW + self.l2 * np.hstack([np.zeros((len(w), 1)),
                                               w[:, 1:]])
            dW = self.lr * dW
            if self.momentum > 0:
                self.vW[i] = self.momentum * self.vW[i] + dW
                dW = self.vW[i]
            self.W[i] = w - dW


def _problem(sizes, n=7, seed=1, output="sigm"):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, sizes[0]))
    if output == "softmax":
        y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], n)]
    elif output == "sigm":
        y = rng.random((n, sizes[-1]))
    else:
        y = rng.standard_normal((n, sizes[-1]))
    return x, y


def _full_weights(net):
    return [np.hstack([b.data[:, None], w.data])
            for w, b in zip(net.weights, net.biases)]


PARITY_CASES = [
    dict(),
    dict(output="softmax"),
    dict(output="linear", learning_rate=0.1),
    dict(activation="sigm", learning_rate=1, weight_penalty_l2=1e-2),
    dict(activation="relu", output="softmax", learning_rate=0.1,
         momentum=0.9),
    dict(activation="sigm", non_sparsity_penalty=0.1, sparsity_target=0.1),
    dict(momentum=0.0, weight_penalty_l2=1e-3),
]


@pytest.mark.parametrize("options", PARITY_CASES)
def test_training_steps_match_deeplearntoolbox(options):
    sizes = [5, 4, 3, 2]
    net = NN(sizes, seed=0, dtype="float64", **options)
    reference = DLTReference(net)
    for step in range(4):
        x, y = _problem(sizes, seed=step, output=net.output)
        loss = net.train_step(x, y)
        reference.nnff(x, y)
        reference.nnbp()
        reference.nnapplygrads()
        if options.get("non_sparsity_penalty", 0) == 0:
            assert loss == pytest.approx(reference.L, rel=1e-12)
        for ours, theirs in zip(_full_weights(net), reference.W):
            np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)
    for ours, theirs in zip(net.running_means, reference.p):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_initialisation_follows_nnsetup():
    net = NN([300, 200, 10], seed=3)
    for w, b, (n_in, n_out) in zip(net.weights, net.biases,
                                   [(300, 200), (200, 10)]):
        bound = 4 * np.sqrt(6 / (n_in + n_out))
        assert w.shape == (n_out, n_in) and b.shape == (n_out,)
        assert w.dtype == np.float32 and w.requires_grad and b.requires_grad
        both = np.concatenate([w.data.ravel(), b.data])
        assert np.all(np.abs(both) <= bound)
        # uniform on [-bound, bound]: variance bound^2 / 3
        assert np.var(both) == pytest.approx(bound ** 2 / 3, rel=0.05)
    again = NN([300, 200, 10], seed=3)
    assert all(np.array_equal(a.data, b.data)
               for a, b in zip(net.parameters(), again.parameters()))


def _gradcheck_model(net, x, y):
    counter = net.sampler.counter

    def loss(*params):
        net.sampler.counter = counter  # the same dropout/noise masks
        return net.loss(x, y, update_statistics=False)

    assert fastgrad.gradcheck(loss, net.parameters(), eps=1e-6, atol=1e-7,
                              rtol=1e-5)


# DeepLearnToolbox's test_nn_gradients_are_numerically_correct: every
# output x hidden activation x dropout, on a [5, 3, 4, 2] network; plus
# relu, denoising and the sparsity term.
GRADCHECK_CASES = [
    dict(output=output, activation=activation, dropout_fraction=dropout)
    for output in ("sigm", "linear", "softmax")
    for activation in ("sigm", "tanh_opt")
    for dropout in (0.0, 0.5)
] + [
    dict(output="linear", activation="relu"),
    dict(activation="sigm", non_sparsity_penalty=0.3, sparsity_target=0.2,
         dropout_fraction=0.2, input_zero_masked_fraction=0.3),
]


@pytest.mark.parametrize("options", GRADCHECK_CASES)
def test_gradcheck_in_training_mode(options):
    sizes = [5, 3, 4, 2]
    net = NN(sizes, seed=2, dtype="float64", **options)
    x, y = _problem(sizes, n=10, output=net.output)
    if net.non_sparsity_penalty > 0:
        net.running_means = [np.full(n, 0.3) for n in sizes[1:-1]]
    _gradcheck_model(net, x, y)


def test_gradcheck_in_test_mode():
    sizes = [4, 6, 3]
    net = NN(sizes, seed=5, dtype="float64", output="softmax",
             dropout_fraction=0.5).eval()
    x, y = _problem(sizes, output="softmax")
    _gradcheck_model(net, x, y)


def test_sparsity_term_is_kl_at_the_running_mean():
    sizes = [4, 3, 2]
    net = NN(sizes, seed=0, dtype="float64", activation="sigm",
             non_sparsity_penalty=0.5, sparsity_target=0.1)
    x, y = _problem(sizes)
    p = np.array([0.2, 0.05, 0.5])
    net.running_means = [p.copy()]
    with_term = float(net.loss(x, y, update_statistics=False).data)
    hidden_mean = 1 / (1 + np.exp(-(x @ net.weights[0].data.T
                                    + net.biases[0].data)))
    hidden_mean = hidden_mean.mean(axis=0)
    rho, beta = 0.1, 0.5
    kl = np.sum(rho * np.log(rho / p) + (1 - rho) * np.log((1 - rho)
                                                           / (1 - p)))
    slope = -rho / p + (1 - rho) / (1 - p)
    net.eval()
    data_loss = float(net.loss(x, y).data)
    assert with_term == pytest.approx(
        data_loss + beta * (kl + slope @ (hidden_mean - p)), rel=1e-12)


def test_dropout_masks_in_training_and_scales_at_test():
    sizes = [3, 2000, 2]
    net = NN(sizes, seed=0, dtype="float64", dropout_fraction=0.3)
    x = np.ones((1, 3))
    from fastgrad import ops
    hidden = ops.linear(x, net.weights[0], net.biases[0], "tanh_opt").data
    net.train()
    _, (masked,) = net._layers(net._as_input(x), True)
    kept = masked.data != 0
    assert kept.mean() == pytest.approx(0.7, abs=0.04)
    np.testing.assert_array_equal(masked.data[kept], hidden[kept])
    net.eval()
    _, (scaled,) = net._layers(net._as_input(x), False)
    np.testing.assert_allclose(scaled.data, 0.7 * hidden, rtol=1e-15)
    # test mode draws no masks: two predictions agree
    assert np.array_equal(net.predict_proba(x), net.predict_proba(x))


def test_input_masking_touches_inputs_only():
    net = NN([1000, 3, 2], seed=1, dtype="float64",
             input_zero_masked_fraction=0.4, learning_rate=1e-3)
    x = np.ones((2, 1000))
    from fastgrad import ops
    masked = ops.dropout(fastgrad.tensor(x), 0.4, fastgrad.CounterRNG(0))
    assert (masked.data == 0).mean() == pytest.approx(0.4, abs=0.05)
    # no hidden dropout: in test mode the network is deterministic
    net.eval()
    assert np.array_equal(net.predict_proba(x), net.predict_proba(x))


def test_biases_have_no_weight_decay():
    net = NN([3, 2, 2], seed=0, dtype="float64", weight_penalty_l2=0.5,
             momentum=0.0, learning_rate=0.1)
    groups = net._ensure_optimizer().param_groups
    assert groups[0]["weight_decay"] == 0.5
    assert groups[1]["weight_decay"] == 0.0
    assert all(p is q for p, q in zip(groups[1]["params"], net.biases))


def test_fit_predict_error_and_history():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((3, 8)) * 3
    labels = rng.integers(0, 3, 300)
    x = centres[labels] + rng.standard_normal((300, 8))
    net = NN([8, 10, 3], output="softmax", seed=0, learning_rate=0.5,
             scaling_learning_rate=0.5)
    lines = []
    net.fit(x, labels, epochs=3, batch_size=32, validation=(x[:50],
            labels[:50]), progress=lines.append)
    assert len(lines) == 4 and "learning rate 0.5" in lines[0]
    assert net.current_learning_rate == pytest.approx(0.5 * 0.5 ** 3)
    history = net.history
    assert len(history["batch_loss"]) == 3 * 10  # last batch of 12 kept
    for key in ("loss", "train_loss", "train_error", "val_loss",
                "val_error", "seconds"):
        assert len(history[key]) == 3, key
    assert net.predict(x).shape == (300,)
    proba = net.predict_proba(x)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    error = net.error(x, labels)
    assert error == net.error(x, np.eye(3)[labels]) < 0.1
    assert history["train_error"][-1] == pytest.approx(error)
    assert net.training


def test_plot_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    x, y = _problem([4, 3, 2], n=20, output="softmax")
    net = NN([4, 3, 2], output="softmax", seed=0)
    path = tmp_path / "history.png"
    net.fit(x, y, epochs=2, batch_size=5, validation=(x, y), progress=False,
            plot=path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    quick = NN([4, 3, 2], output="linear", seed=0)
    quick.fit(x, y, epochs=2, batch_size=5, progress=False,
              evaluate_train=False, plot=tmp_path / "quick.png")
    assert np.all(np.isnan(quick.history["train_loss"]))
    assert (tmp_path / "quick.png").read_bytes()[:4] == b"\x89PNG"


def test_plot_without_matplotlib_says_how_to_install(tmp_path, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    net = NN([4, 3, 2], seed=0)
    x, y = _problem([4, 3, 2], n=10)
    net.fit(x, y, epochs=1, batch_size=5, progress=False)
    with pytest.raises(ImportError, match=r"fastgrad\[bench\]"):
        net.plot(tmp_path / "x.png")


@pytest.mark.parametrize("bad, match", [
    (dict(sizes=[3]), "sizes"),
    (dict(activation="tanh"), "activation"),
    (dict(output="relu"), "output"),
    (dict(learning_rate=0), "learning_rate"),
    (dict(momentum=1.0), "momentum"),
    (dict(dropout_fraction=1.0), "dropout_fraction"),
    (dict(input_zero_masked_fraction=-0.1), "input_zero_masked_fraction"),
    (dict(sparsity_target=0), "sparsity_target"),
    (dict(non_sparsity_penalty=0.1), "activation='sigm'"),
    (dict(weight_penalty_l2=-1), "weight_penalty_l2"),
])
def test_bad_hyper_parameters_raise(bad, match):
    options = dict(sizes=[3, 2])
    options.update(bad)
    with pytest.raises(ValueError, match=match):
        NN(**options)


def test_bad_data_raises():
    net = NN([4, 3, 2], seed=0)
    with pytest.raises(ValueError, match=r"input of shape \(5, 3\)"):
        net.fit(np.zeros((5, 3)), np.zeros((5, 2)), progress=False)
    with pytest.raises(ValueError, match="targets of shape"):
        net.fit(np.zeros((5, 4)), np.zeros((5, 3)), progress=False)
    with pytest.raises(ValueError, match="labels must lie"):
        net.fit(np.zeros((5, 4)), np.array([0, 1, 2, 0, 1]), progress=False)
    with pytest.raises(TypeError, match="dtype"):
        NN([2, 2], dtype="int32")


def test_float32_by_default_and_float64_on_request():
    x, y = _problem([4, 3, 2], n=10)
    for dtype in ("float32", "float64"):
        net = NN([4, 3, 2], seed=0, dtype=dtype)
        net.fit(x, y, epochs=1, batch_size=5, progress=False)
        assert all(p.dtype == dtype for p in net.parameters())
        assert net.predict_proba(x).dtype == dtype


# ---------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------

def _resume_problem():
    rng = np.random.default_rng(4)
    x = rng.random((60, 6))
    labels = rng.integers(0, 3, 60)
    return x, labels


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_resumed_training_is_bit_identical(tmp_path, dtype):
    x, labels = _resume_problem()
    options = dict(activation="sigm", output="softmax", dropout_fraction=0.3,
                   input_zero_masked_fraction=0.2, non_sparsity_penalty=0.01,
                   scaling_learning_rate=0.9, weight_penalty_l2=1e-3,
                   learning_rate=0.5, dtype=dtype)
    whole = NN([6, 5, 4, 3], seed=7, **options)
    whole.fit(x, labels, epochs=4, batch_size=7, progress=False)

    first = NN([6, 5, 4, 3], seed=7, **options)
    first.fit(x, labels, epochs=2, batch_size=7, progress=False)
    path = tmp_path / "nn.npz"
    first.save(path)
    np.load(path, allow_pickle=False).close()  # a plain, pickle-free .npz
    resumed = NN([6, 5, 4, 3], seed=123, **options).load(path)
    assert resumed.epochs_trained == 2
    resumed.fit(x, labels, epochs=2, batch_size=7, progress=False)
    for a, b in zip(whole.parameters(), resumed.parameters()):
        assert np.array_equal(a.data, b.data)
    for a, b in zip(whole.running_means, resumed.running_means):
        assert np.array_equal(a, b)
    assert whole.history["batch_loss"] == resumed.history["batch_loss"]
    assert whole.current_learning_rate == resumed.current_learning_rate


def test_checkpoint_before_training_restores_parameters(tmp_path):
    source = NN([4, 3, 2], seed=1)
    path = tmp_path / "fresh.npz"
    source.save(path)
    target = NN([4, 3, 2], seed=2).load(path)
    for a, b in zip(source.parameters(), target.parameters()):
        assert np.array_equal(a.data, b.data)
    x, y = _problem([4, 3, 2], n=10)
    source.fit(x, y, epochs=2, batch_size=3, progress=False)
    target.fit(x, y, epochs=2, batch_size=3, progress=False)
    for a, b in zip(source.parameters(), target.parameters()):
        assert np.array_equal(a.data, b.data)


def test_mismatched_or_corrupt_checkpoint_leaves_model_untouched(tmp_path):
    from fastgrad.io import CheckpointError
    path = tmp_path / "nn.npz"
    NN([4, 3, 2], seed=1).save(path)
    for other in (NN([4, 5, 2], seed=0), NN([4, 3, 2], seed=0,
                                            dtype="float64"),
                  NN([4, 3, 2], seed=0, output="softmax")):
        before = [p.data.copy() for p in other.parameters()]
        with pytest.raises(CheckpointError):
            other.load(path)
        assert all(np.array_equal(a, p.data)
                   for a, p in zip(before, other.parameters()))
    data = path.read_bytes()
    broken = tmp_path / "broken.npz"
    broken.write_bytes(data[: len(data) // 2])
    net = NN([4, 3, 2], seed=0)
    before = [p.data.copy() for p in net.parameters()]
    with pytest.raises(CheckpointError):
        net.load(broken)
    assert all(np.array_equal(a, p.data)
               for a, p in zip(before, net.parameters()))


def test_changed_fields_apply_at_the_next_fit():
    x, y = _problem([4, 3, 2], n=10)
    net = NN([4, 3, 2], seed=0, learning_rate=1.0)
    net.fit(x, y, epochs=1, batch_size=5, progress=False)
    net.learning_rate, net.weight_penalty_l2 = 0.25, 0.01
    net.fit(x, y, epochs=1, batch_size=5, progress=False)
    groups = net.optimizer.param_groups
    assert groups[0]["lr"] == groups[1]["lr"] == 0.25
    assert (groups[0]["weight_decay"], groups[1]["weight_decay"]) == (0.01,
                                                                       0.0)
