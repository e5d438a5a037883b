"""Feed-forward neural network with DeepLearnToolbox's semantics (nnsetup,
nnff, nnbp, nnapplygrads, nntrain, nntest), trained by fastgrad's autodiff
and fastgrad.optim.SGD.

What is DeepLearnToolbox's and what fastgrad decided:

- Initialisation (nnsetup): W = (rand(n_out, n_in + 1) - 0.5) * 2 * 4 *
  sqrt(6 / (n_in + n_out)). DeepLearnToolbox keeps the bias as column 0 of
  W; fastgrad keeps it apart (`biases[i]`, shape (n_out,)) but draws it in
  the same (n_out, n_in + 1) matrix, so the bias has the toolbox's
  distribution: biases[i] = column 0, weights[i] = columns 1..n_in.
- Update (nnapplygrads): v := momentum * v + lr * (dW + l2 * W); W := W - v
  (DeepLearnToolbox's momentum convention: SGD(momentum_convention="dlt",
  momentum_correction=False)),
  with L2 on the weights only (biases are a parameter group without decay).
  After each epoch lr := lr * scaling_learning_rate (nntrain); the momentum
  buffer is not rescaled (as in the toolbox).
- Loss (nnff): 0.5 * sum(e^2) / batch for 'sigm' and 'linear' outputs,
  -sum(y log p) / batch for 'softmax'.
- Dropout (nnff, nnbp): in training each hidden activation is kept with
  probability 1 - dropout_fraction (mask from fastgrad's counter-based
  sampler) and not rescaled; at test time hidden activations are multiplied
  by 1 - dropout_fraction.
- Denoising (nntrain): in training each input value is zeroed with
  probability input_zero_masked_fraction; never the hidden layers.
- Sparsity (nnff, nnbp; 'sigm' hidden layers only): a running mean
  activation p := 0.99 p + 0.01 mean_batch(a) per hidden layer, updated in
  each training forward before the loss (the toolbox's order). The toolbox
  adds beta * (-rho / p + (1 - rho) / (1 - p)) to the backpropagated error
  but keeps it out of its loss, so its gradient check could not pass.
  fastgrad adds to the loss the term
      beta * sum_j [KL(rho || p_j) + KL'(p_j) * (mean_batch(a_j) - p_j)]
  with p held constant: its value is the KL sparsity penalty at the running
  mean and its gradient is exactly the toolbox's. A gradient check freezes p
  (loss(..., update_statistics=False)) as it freezes the dropout masks.

Parameters are Tensors: weights[i] (sizes[i+1], sizes[i]) and biases[i]
(sizes[i+1],). Each layer is one fused ops.linear (GEMM + bias +
activation).
"""
import sys
import time

import numpy as np

import fastgrad
from fastgrad import ops
from fastgrad.rng import CounterRNG
from fastgrad.tensor import Tensor, no_grad

__all__ = ["NN"]

# DeepLearnToolbox name -> activation name of ops.linear
HIDDEN_ACTIVATIONS = {"sigm": "sigmoid", "tanh_opt": "tanh_opt",
                      "relu": "relu"}
OUTPUT_ACTIVATIONS = {"sigm": "sigmoid", "softmax": "none",
                      "linear": "none"}
_RUNNING_MEAN_DECAY = 0.99  # nnff: p = 0.99 * p + 0.01 * mean(a)
_P_CLIP = 1e-6              # keeps KL'(p) finite when a unit never fires

CHECKPOINT_KIND = "fastgrad.models.NN"


def _check_fraction(name, value):
    value = float(value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"NN: {name} must be in [0, 1), got {value}")
    return value


def _seed_pair(seed):
    """(NumPy Generator for initialisation and shuffling, CounterRNG seed
    for the compiled dropout samplers), both from one seed (None: fresh
    entropy)."""
    sequence = np.random.SeedSequence(seed)
    numpy_sequence, sampler_sequence = sequence.spawn(2)
    sampler_seed = int(sampler_sequence.generate_state(1, np.uint64)[0])
    return np.random.default_rng(numpy_sequence), sampler_seed


class NN:
    """A DeepLearnToolbox feed-forward network (nnsetup).

    sizes: layer widths [n_inputs, hidden..., n_outputs] (at least 2).
    activation: hidden units, 'tanh_opt' (1.7159 tanh(2x/3)), 'sigm' or
        'relu'.
    output: 'sigm', 'softmax' or 'linear'.
    learning_rate, momentum, scaling_learning_rate, weight_penalty_l2,
    non_sparsity_penalty, sparsity_target, input_zero_masked_fraction,
    dropout_fraction: DeepLearnToolbox's learningRate, momentum,
        scaling_learningRate, weightPenaltyL2, nonSparsityPenalty,
        sparsityTarget, inputZeroMaskedFraction, dropoutFraction with the
        toolbox's defaults (see the module docstring for the semantics).
    seed: one integer gives the same initialisation, shuffling and masks
        (None: fresh entropy).
    dtype: "float32" (default) or "float64".

    Hyper-parameters are attributes; like the toolbox's fields they may be
    changed after construction or between fit() calls: learning_rate,
    momentum and weight_penalty_l2 go to the optimiser (self.optimizer, a
    fastgrad.optim.SGD made by the first fit()) when the next fit() starts;
    its momentum buffers carry over, as the toolbox's nn.vW.
    """

    def __init__(self, sizes, activation="tanh_opt", output="sigm",
                 learning_rate=2.0, momentum=0.5, scaling_learning_rate=1.0,
                 weight_penalty_l2=0.0, non_sparsity_penalty=0.0,
                 sparsity_target=0.05, input_zero_masked_fraction=0.0,
                 dropout_fraction=0.0, seed=None, dtype="float32"):
        sizes = [int(size) for size in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"NN: sizes must list at least 2 layer widths "
                             f">= 1, got {sizes}")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"NN: dtype must be float32 or float64, got "
                            f"{self.dtype}")
        self.sizes = sizes
        self.activation = activation
        self.output = output
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.scaling_learning_rate = scaling_learning_rate
        self.weight_penalty_l2 = weight_penalty_l2
        self.non_sparsity_penalty = non_sparsity_penalty
        self.sparsity_target = sparsity_target
        self.input_zero_masked_fraction = input_zero_masked_fraction
        self.dropout_fraction = dropout_fraction
        self.seed = seed
        self._validate()

        self.rng, sampler_seed = _seed_pair(seed)
        self.sampler = CounterRNG(sampler_seed)
        self.weights, self.biases = [], []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            # nnsetup draws the bias as column 0 of the same matrix
            scale = 2 * 4 * np.sqrt(6 / (n_in + n_out))
            full = (self.rng.random((n_out, n_in + 1)) - 0.5) * scale
            self.biases.append(fastgrad.tensor(full[:, 0], dtype=self.dtype,
                                               requires_grad=True))
            self.weights.append(fastgrad.tensor(full[:, 1:], dtype=self.dtype,
                                                requires_grad=True))
        # DeepLearnToolbox's nn.p: running mean activation per hidden layer
        self.running_means = [np.zeros(size, dtype=self.dtype)
                              for size in sizes[1:-1]]
        self.training = True
        self.optimizer = None
        self._optimizer_hyper = None
        self.epochs_trained = 0
        self.history = self._empty_history()

    # -- configuration -------------------------------------------------------
    def _validate(self):
        if self.activation not in HIDDEN_ACTIVATIONS:
            raise ValueError(f"NN: activation must be one of "
                             f"{sorted(HIDDEN_ACTIVATIONS)}, got "
                             f"{self.activation!r}")
        if self.output not in OUTPUT_ACTIVATIONS:
            raise ValueError(f"NN: output must be one of "
                             f"{sorted(OUTPUT_ACTIVATIONS)}, got "
                             f"{self.output!r}")
        if not float(self.learning_rate) > 0:
            raise ValueError(f"NN: learning_rate must be > 0, got "
                             f"{self.learning_rate}")
        if not 0.0 <= float(self.momentum) < 1.0:
            raise ValueError(f"NN: momentum must be in [0, 1), got "
                             f"{self.momentum}")
        if not float(self.scaling_learning_rate) > 0:
            raise ValueError(f"NN: scaling_learning_rate must be > 0, got "
                             f"{self.scaling_learning_rate}")
        if not float(self.weight_penalty_l2) >= 0:
            raise ValueError(f"NN: weight_penalty_l2 must be >= 0, got "
                             f"{self.weight_penalty_l2}")
        if not float(self.non_sparsity_penalty) >= 0:
            raise ValueError(f"NN: non_sparsity_penalty must be >= 0, got "
                             f"{self.non_sparsity_penalty}")
        if not 0.0 < float(self.sparsity_target) < 1.0:
            raise ValueError(f"NN: sparsity_target must be in (0, 1), got "
                             f"{self.sparsity_target}")
        if self.non_sparsity_penalty > 0 and self.activation != "sigm":
            raise ValueError(
                f"NN: non_sparsity_penalty needs activation='sigm' (mean "
                f"activations in (0, 1) for the KL penalty), got "
                f"activation={self.activation!r}")
        _check_fraction("input_zero_masked_fraction",
                        self.input_zero_masked_fraction)
        _check_fraction("dropout_fraction", self.dropout_fraction)

    def config(self):
        """The constructor arguments (JSON-able), without the seed."""
        return {"sizes": list(self.sizes), "activation": self.activation,
                "output": self.output,
                "learning_rate": float(self.learning_rate),
                "momentum": float(self.momentum),
                "scaling_learning_rate": float(self.scaling_learning_rate),
                "weight_penalty_l2": float(self.weight_penalty_l2),
                "non_sparsity_penalty": float(self.non_sparsity_penalty),
                "sparsity_target": float(self.sparsity_target),
                "input_zero_masked_fraction":
                    float(self.input_zero_masked_fraction),
                "dropout_fraction": float(self.dropout_fraction),
                "dtype": self.dtype.name}

    def parameters(self):
        """[weights[0], biases[0], weights[1], ...] (Tensors)."""
        return [p for pair in zip(self.weights, self.biases) for p in pair]

    def train(self, mode=True):
        """Training mode (dropout masks, input masking, running means)."""
        self.training = bool(mode)
        return self

    def eval(self):
        """Test mode (nntest): no masks, dropout scaling by 1 - fraction."""
        return self.train(False)

    def __repr__(self):
        return (f"NN(sizes={self.sizes}, activation={self.activation!r}, "
                f"output={self.output!r}, dtype={self.dtype.name})")

    # -- forward and loss --------------------------------------------------
    def _as_input(self, x):
        x = x.data if isinstance(x, Tensor) else x
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.sizes[0]:
            raise ValueError(f"NN: input of shape {x.shape}, expected "
                             f"(batch, {self.sizes[0]})")
        return Tensor(x, dtype=self.dtype)

    def _as_target(self, y, n_samples):
        """One-hot float targets from integer labels; float targets as
        they are. Returns an array (n_samples, sizes[-1])."""
        y = y.data if isinstance(y, Tensor) else np.asarray(y)
        n_out = self.sizes[-1]
        if y.ndim == 1 and y.dtype.kind in "iu" and self.output != "linear":
            if y.size and (y.min() < 0 or y.max() >= n_out):
                raise ValueError(f"NN: labels must lie in [0, {n_out}), got "
                                 f"[{y.min()}, {y.max()}]")
            one_hot = np.zeros((len(y), n_out), dtype=self.dtype)
            one_hot[np.arange(len(y)), y] = 1
            y = one_hot
        if y.shape != (n_samples, n_out):
            raise ValueError(f"NN: targets of shape {y.shape}, expected "
                             f"({n_samples}, {n_out}) or ({n_samples},) "
                             "integer labels")
        return np.ascontiguousarray(y, dtype=self.dtype)

    def _layers(self, x, training):
        """(output pre-activation for softmax else activation, hidden
        activations); x a Tensor (batch, sizes[0])."""
        hidden_activation = HIDDEN_ACTIVATIONS[self.activation]
        dropout_fraction = float(self.dropout_fraction)
        if training and self.input_zero_masked_fraction > 0:
            x = ops.dropout(x, float(self.input_zero_masked_fraction),
                            self.sampler, training=True)
        hidden = []
        h = x
        last = len(self.weights) - 1
        for i in range(last):
            h = ops.linear(h, self.weights[i], self.biases[i],
                           hidden_activation)
            if dropout_fraction > 0:
                if training:
                    h = ops.dropout(h, dropout_fraction, self.sampler,
                                    training=True)
                else:
                    h = ops.mul(h, 1.0 - dropout_fraction)
            hidden.append(h)
        out = ops.linear(h, self.weights[last], self.biases[last],
                         OUTPUT_ACTIVATIONS[self.output])
        return out, hidden

    def forward(self, x):
        """Output activations (batch, sizes[-1]) as a Tensor, in the current
        mode (softmax probabilities for output='softmax')."""
        out, _ = self._layers(self._as_input(x), self.training)
        return ops.softmax(out, axis=1) if self.output == "softmax" else out

    def _data_loss(self, out, target):
        if self.output == "softmax":
            return ops.softmax_cross_entropy(out, target)
        return ops.mse_loss(out, target, reduction="dlt")

    def _sparsity_loss(self, hidden, update_statistics):
        """beta * sum_j [KL(rho||p_j) + KL'(p_j) (mean(a_j) - p_j)] over the
        hidden layers, p the running means (constants); see the module
        docstring."""
        beta = float(self.non_sparsity_penalty)
        rho = float(self.sparsity_target)
        total = None
        for i, h in enumerate(hidden):
            batch_mean = ops.mean(h, axis=0)
            if update_statistics:
                self.running_means[i] = (
                    _RUNNING_MEAN_DECAY * self.running_means[i]
                    + (1 - _RUNNING_MEAN_DECAY) * batch_mean.data
                ).astype(self.dtype)
            p = np.clip(self.running_means[i].astype(np.float64), _P_CLIP,
                        1 - _P_CLIP)
            slope = beta * (-rho / p + (1 - rho) / (1 - p))
            kl = beta * np.sum(rho * np.log(rho / p)
                               + (1 - rho) * np.log((1 - rho) / (1 - p)))
            constant = kl - float(np.sum(slope * p))  # no BLAS call
            term = ops.add(ops.sum(ops.mul(batch_mean,
                                           slope.astype(self.dtype))),
                           constant)
            total = term if total is None else ops.add(total, term)
        return total

    def loss(self, x, y, update_statistics=True):
        """The training objective on one batch as a 0-d Tensor, in the
        current mode: data loss (nnff's nn.L) plus, in training mode with
        non_sparsity_penalty > 0, the sparsity term (running means updated
        first unless update_statistics=False, which a gradient check uses).
        x (batch, sizes[0]); y (batch, sizes[-1]) or integer labels."""
        x = self._as_input(x)
        target = self._as_target(y, x.shape[0])
        out, hidden = self._layers(x, self.training)
        loss = self._data_loss(out, target)
        if self.training and self.non_sparsity_penalty > 0 and hidden:
            loss = ops.add(loss, self._sparsity_loss(hidden,
                                                     update_statistics))
        return loss

    # -- training ----------------------------------------------------------
    def _hyper(self):
        return (float(self.learning_rate), float(self.momentum),
                float(self.weight_penalty_l2))

    def _make_optimizer(self):
        from fastgrad import optim
        self._optimizer_hyper = self._hyper()
        groups = [{"params": list(self.weights),
                   "weight_decay": float(self.weight_penalty_l2)},
                  {"params": list(self.biases), "weight_decay": 0.0}]
        return optim.SGD(groups, lr=float(self.learning_rate),
                         momentum=float(self.momentum),
                         momentum_convention="dlt",
                         momentum_correction=False)

    def _ensure_optimizer(self):
        self._validate()
        params = self.parameters()
        if self.optimizer is not None:
            held = [p for group in self.optimizer.param_groups
                    for p in group["params"]]
            if len(held) == len(params) and all(
                    a is b for a, b in zip(held, self.weights + self.biases)):
                if self._hyper() != self._optimizer_hyper:
                    # fields changed between fits, as nn.learningRate = ...
                    # between nntrain calls: the next updates use them
                    learning_rate, momentum, l2 = self._hyper()
                    for group in self.optimizer.param_groups:
                        group["lr"] = learning_rate
                        group["momentum"] = momentum
                    self.optimizer.param_groups[0]["weight_decay"] = l2
                    self._optimizer_hyper = self._hyper()
                return self.optimizer
        self.optimizer = self._make_optimizer()
        return self.optimizer

    @property
    def current_learning_rate(self):
        """The learning rate of the next update (after per-epoch scaling)."""
        if self.optimizer is None:
            return float(self.learning_rate)
        return float(self.optimizer.param_groups[0]["lr"])

    def train_step(self, x, y):
        """One update on one batch (nnff, nnbp, nnapplygrads) in training
        mode; returns the batch loss (float). x (batch, sizes[0]), y targets
        (batch, sizes[-1]) of the model's dtype."""
        optimizer = self.optimizer or self._ensure_optimizer()
        self.training = True
        for p in self.weights:
            p.grad = None
        for p in self.biases:
            p.grad = None
        loss = self.loss(x, y)
        loss.backward()
        optimizer.step()
        return float(loss.data)

    @staticmethod
    def _empty_history():
        return {"batch_loss": [], "loss": [], "train_loss": [],
                "train_error": [], "val_loss": [], "val_error": [],
                "seconds": [], "learning_rate": []}

    def fit(self, x, y, epochs=1, batch_size=100, validation=None,
            progress=True, plot=None, shuffle=True, evaluate_train=True):
        """nntrain: `epochs` sweeps of mini-batch SGD over (x, y).

        x: (n_samples, sizes[0]); y: (n_samples, sizes[-1]) targets or
        (n_samples,) integer labels. A last batch smaller than batch_size is
        kept (DeepLearnToolbox asserts that batch_size divides n_samples).
        validation: (val_x, val_y) evaluated after every epoch.
        progress: print one line per epoch (True), or a callable taking the
        line. plot: path of a PNG of loss and error per epoch (needs
        matplotlib). evaluate_train: after every epoch, the full-batch loss
        and error on (x, y) in test mode (nneval; one extra forward pass
        over x per epoch); False leaves history["train_loss"] and
        ["train_error"] at NaN. Appends to self.history; returns self.
        """
        x = np.ascontiguousarray(self._as_input(x).data)
        target = self._as_target(y, x.shape[0])
        n_samples = x.shape[0]
        epochs, batch_size = int(epochs), int(batch_size)
        if epochs < 0 or batch_size < 1:
            raise ValueError(f"NN.fit: epochs must be >= 0 and batch_size "
                             f">= 1, got {epochs} and {batch_size}")
        if n_samples == 0:
            raise ValueError("NN.fit: no training samples")
        if validation is not None:
            val_x, val_y = validation
            val_x = np.ascontiguousarray(self._as_input(val_x).data)
            val_target = self._as_target(val_y, val_x.shape[0])
        say = _progress_printer(progress)
        optimizer = self._ensure_optimizer()
        say(f"NN.fit: {n_samples} samples, batch size {batch_size}, "
            f"{epochs} epochs, learning rate {self.current_learning_rate:g}")
        history = self.history
        for _ in range(epochs):
            start = time.perf_counter()
            order = (self.rng.permutation(n_samples) if shuffle
                     else np.arange(n_samples))
            batch_losses = []
            for first in range(0, n_samples, batch_size):
                index = order[first:first + batch_size]
                batch_losses.append(self.train_step(x[index], target[index]))
            seconds = time.perf_counter() - start
            self.epochs_trained += 1
            history["batch_loss"].extend(batch_losses)
            history["loss"].append(float(np.mean(batch_losses)))
            history["seconds"].append(seconds)
            history["learning_rate"].append(self.current_learning_rate)
            train_loss, train_error = (self.evaluate(x, target)
                                       if evaluate_train else (np.nan, None))
            history["train_loss"].append(train_loss)
            history["train_error"].append(
                np.nan if train_error is None else train_error)
            line = (f"epoch {self.epochs_trained}: {seconds:.3f} s, "
                    f"mini-batch loss {history['loss'][-1]:.5f}")
            if evaluate_train:
                line += f", full-batch train loss {train_loss:.5f}"
            if train_error is not None:
                line += f", train error {train_error:.4f}"
            if validation is not None:
                val_loss, val_error = self.evaluate(val_x, val_target)
                history["val_loss"].append(val_loss)
                history["val_error"].append(
                    np.nan if val_error is None else val_error)
                line += f", val loss {val_loss:.5f}"
                if val_error is not None:
                    line += f", val error {val_error:.4f}"
            say(line)
            if self.scaling_learning_rate != 1:
                for group in optimizer.param_groups:
                    group["lr"] = group["lr"] * float(
                        self.scaling_learning_rate)
        self.train()
        if plot is not None:
            self.plot(plot)
        return self

    # -- evaluation ----------------------------------------------------------
    def predict_proba(self, x):
        """Output activations (n, sizes[-1]) in test mode (nnff with
        nn.testing = 1), as an array; the mode is restored afterwards."""
        was_training = self.training
        self.training = False
        try:
            with no_grad():
                return self.forward(x).data
        finally:
            self.training = was_training

    def hidden_activations(self, x):
        """The hidden layers' activations in test mode, as arrays
        [(n, sizes[1]), ..., (n, sizes[-2])] (saetrain's t.a{2})."""
        was_training = self.training
        self.training = False
        try:
            with no_grad():
                _, hidden = self._layers(self._as_input(x), False)
        finally:
            self.training = was_training
        return [h.data for h in hidden]

    def predict(self, x):
        """nnpredict: the index of the largest output per row, (n,)."""
        return np.argmax(self.predict_proba(x), axis=1)

    def error(self, x, y):
        """nntest: the fraction of rows of x misclassified; y one-hot
        (n, sizes[-1]) or integer labels (n,)."""
        y = np.asarray(y.data if isinstance(y, Tensor) else y)
        labels = y if y.ndim == 1 else np.argmax(y, axis=1)
        if len(labels) != len(x):
            raise ValueError(f"NN.error: {len(x)} inputs but {len(labels)} "
                             "labels")
        if len(labels) == 0:
            raise ValueError("NN.error: no samples")
        return float(np.mean(self.predict(x) != labels))

    def evaluate(self, x, y):
        """nneval: (data loss, error) in test mode; the error is None for
        output='linear'."""
        was_training = self.training
        self.training = False
        try:
            with no_grad():
                x = self._as_input(x)
                target = self._as_target(y, x.shape[0])
                out, _ = self._layers(x, False)
                loss = float(self._data_loss(out, target).data)
        finally:
            self.training = was_training
        if self.output == "linear":
            return loss, None
        wrong = np.argmax(out.data, axis=1) != np.argmax(target, axis=1)
        return loss, float(np.mean(wrong))

    def plot(self, path):
        """Write a PNG of the training (and validation) loss and error per
        epoch (nnupdatefigures) to path."""
        _plot_history(self.history, path)

    # -- checkpoints -------------------------------------------------------
    def _state_arrays(self):
        """The model's own arrays (parameters, running means), nested."""
        return {"weights": {str(i): w.data
                            for i, w in enumerate(self.weights)},
                "biases": {str(i): b.data for i, b in enumerate(self.biases)},
                "running_means": {str(i): p for i, p in
                                  enumerate(self.running_means)}}

    def save(self, path):
        """Write a checkpoint to `path` (fastgrad.io: .npz without pickle,
        written atomically): parameters, running means, optimiser state
        (momentum buffers, current learning rate), the NumPy Generator
        (shuffling) and the sampler counter (masks), history and
        hyper-parameters. Training resumed with load() continues
        bit-identically to an uninterrupted run."""
        from fastgrad import io
        arrays, meta = self._checkpoint()
        io.save_checkpoint(path, arrays, meta=meta)

    def _checkpoint(self):
        """(nested arrays, JSON-able meta) of everything save() writes."""
        from fastgrad import io
        arrays = self._state_arrays()
        arrays["history"] = {key: np.asarray(values, dtype=np.float64)
                             for key, values in self.history.items()}
        arrays["numpy_rng"] = io.generator_state(self.rng)
        optimizer_arrays = {}
        optimizer_tree = (None if self.optimizer is None else
                          encode_tree(self.optimizer.state_dict(),
                                      optimizer_arrays))
        arrays["optimizer"] = optimizer_arrays
        meta = {"kind": CHECKPOINT_KIND, "config": self.config(),
                "epochs_trained": self.epochs_trained,
                "training": self.training,
                "sampler": self.sampler.state_dict(),
                "optimizer": optimizer_tree}
        return arrays, meta

    def load(self, path):
        """Restore a checkpoint written by save() into this model, which must
        have the same sizes, activation, output and dtype. Everything is
        read and validated before the model is touched: a corrupt or
        mismatched file raises fastgrad.io.CheckpointError (a ValueError)
        and leaves the model as it was. Returns self."""
        from fastgrad import io
        arrays, meta = io.load_checkpoint(path)
        self._prepare_restore(path, arrays, meta)()
        return self

    def _prepare_restore(self, path, arrays, meta):
        """Validate a checkpoint's flat arrays and meta against this model
        (raising CheckpointError) and return a function that applies it;
        nothing changes before that function is called."""
        from fastgrad import io
        config = _check_kind(path, meta, CHECKPOINT_KIND)
        mine = self.config()
        differ = [f"{key}: file {config.get(key)!r}, model {mine[key]!r}"
                  for key in ("sizes", "activation", "output", "dtype")
                  if config.get(key) != mine[key]]
        if differ:
            raise io.CheckpointError(f"{path}: checkpoint of another "
                                     "network: " + "; ".join(differ))
        try:
            own = {name: arrays[name] for name in
                   io.flatten(self._state_arrays())}
        except KeyError as missing:
            raise io.CheckpointError(f"{path}: missing key {missing}"
                                     ) from None
        _check_layout(path, own, io.describe(self._state_arrays()))
        try:
            history = {key: arrays[f"history/{key}"].tolist()
                       for key in self._empty_history()}
            rng = io.restore_generator(arrays["numpy_rng"])
            sampler = CounterRNG(meta["sampler"]["seed"],
                                 meta["sampler"]["counter"])
            epochs_trained = int(meta["epochs_trained"])
            hyper = {key: config[key] for key in mine
                     if key not in ("sizes", "activation", "output",
                                    "dtype")}
            optimizer = None
            if meta.get("optimizer") is not None:
                optimizer_arrays = {
                    name[len("optimizer/"):]: value
                    for name, value in arrays.items()
                    if name.startswith("optimizer/")}
                state = decode_tree(meta["optimizer"], optimizer_arrays)
                previous = {key: getattr(self, key) for key in
                            list(hyper) + ["_optimizer_hyper"]}
                try:
                    for key, value in hyper.items():
                        setattr(self, key, value)
                    optimizer = self._make_optimizer()
                finally:
                    for key, value in previous.items():
                        setattr(self, key, value)
                optimizer.load_state_dict(state)
        except io.CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise io.CheckpointError(
                f"{path}: invalid NN checkpoint ({type(err).__name__}: "
                f"{err})") from None
        training = bool(meta.get("training", True))

        def apply():
            # every check passed: only now change the model
            for name, value in own.items():
                group, index = name.split("/")
                if group == "running_means":
                    self.running_means[int(index)] = value.copy()
                else:
                    getattr(self, group)[int(index)].data[...] = value
            for key, value in hyper.items():
                setattr(self, key, value)
            self.history = history
            self.rng = rng
            self.sampler = sampler
            self.epochs_trained = epochs_trained
            self.training = training
            self.optimizer = optimizer
            self._optimizer_hyper = self._hyper()
        return apply


def _check_kind(path, meta, kind):
    from fastgrad import io
    if meta.get("kind") != kind or "config" not in meta:
        raise io.CheckpointError(f"{path}: not a {kind} checkpoint (kind "
                                 f"{meta.get('kind')!r})")
    return meta["config"]


def _check_layout(path, arrays, expected):
    """Raise CheckpointError listing every shape/dtype mismatch."""
    from fastgrad import io
    problems = []
    for name, (shape, dtype) in expected.items():
        found = arrays[name]
        if found.shape != tuple(shape) or found.dtype != dtype:
            problems.append(f"{name}: expected {tuple(shape)} {dtype}, found "
                            f"{found.shape} {found.dtype}")
    if problems:
        raise io.CheckpointError(f"{path}: checkpoint does not match the "
                                 "model:\n  " + "\n  ".join(problems))


def encode_tree(tree, arrays, prefix="a"):
    """A JSON-able copy of a state tree (dicts with any keys, lists, tuples,
    scalars, None, strings, arrays); each array is moved to `arrays` under a
    fresh key and replaced by {"__array__": key}. Inverse: decode_tree."""
    if isinstance(tree, Tensor):
        tree = tree.data
    if isinstance(tree, np.ndarray):
        key = f"{prefix}{len(arrays)}"
        arrays[key] = tree
        return {"__array__": key}
    if isinstance(tree, np.generic):
        return tree.item()
    if isinstance(tree, dict):
        return {"__dict__": [[encode_tree(key, arrays, prefix),
                              encode_tree(value, arrays, prefix)]
                             for key, value in tree.items()]}
    if isinstance(tree, (list, tuple)):
        kind = "__list__" if isinstance(tree, list) else "__tuple__"
        return {kind: [encode_tree(item, arrays, prefix) for item in tree]}
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return tree
    raise TypeError(f"checkpoint: cannot store a {type(tree).__name__} in "
                    "a state tree")


def decode_tree(tree, arrays):
    """Inverse of encode_tree."""
    if isinstance(tree, dict):
        if "__array__" in tree:
            return np.array(arrays[tree["__array__"]])
        if "__dict__" in tree:
            return {_hashable(decode_tree(key, arrays)):
                    decode_tree(value, arrays)
                    for key, value in tree["__dict__"]}
        if "__list__" in tree:
            return [decode_tree(item, arrays) for item in tree["__list__"]]
        if "__tuple__" in tree:
            return tuple(decode_tree(item, arrays)
                         for item in tree["__tuple__"])
        raise ValueError(f"checkpoint: unknown state node {sorted(tree)}")
    return tree


def _hashable(key):
    return tuple(key) if isinstance(key, list) else key


def _progress_printer(progress):
    if callable(progress):
        return progress
    if progress:
        return lambda line: print(line, file=sys.stdout, flush=True)
    return lambda line: None


def _plot_history(history, path):
    """Two panels: loss and error per epoch, training and validation."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install "
                          "'fastgrad[bench]' (or pip install matplotlib)"
                          ) from None
    epochs = np.arange(1, len(history["loss"]) + 1)

    def evaluated(key):
        values = np.asarray(history[key], dtype=np.float64)
        return values if values.size and not np.all(np.isnan(values)) \
            else None

    train_loss, train_label = evaluated("train_loss"), "training"
    if train_loss is None:  # fit(evaluate_train=False)
        train_loss, train_label = history["loss"], "training (mini-batches)"
    panels = [("loss", train_loss, train_label, evaluated("val_loss"))]
    train_error, val_error = evaluated("train_error"), evaluated("val_error")
    if train_error is not None or val_error is not None:
        panels.append(("error", train_error, "training", val_error))
    figure, axes = plt.subplots(1, len(panels),
                                figsize=(5 * len(panels), 4), squeeze=False)
    for axis, (name, train, label, validation) in zip(axes[0], panels):
        if train is not None:
            axis.plot(epochs[-len(train):], train, label=label)
        if validation is not None:
            axis.plot(epochs[-len(validation):], validation,
                      label="validation")
        axis.set_xlabel("epoch")
        axis.set_ylabel(name)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, format="png")
    plt.close(figure)
