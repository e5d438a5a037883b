"""DeepLearnToolbox's convolutional network (cnnsetup, cnnff/cnnbp,
cnntrain, cnntest) on fastgrad's Tensor ops and autodiff.

    from fastgrad.models.cnn import CNN
    net = CNN(layers=[{"type": "i"},
                      {"type": "c", "output_maps": 6, "kernel_size": 5},
                      {"type": "s", "scale": 2},
                      {"type": "c", "output_maps": 12, "kernel_size": 5},
                      {"type": "s", "scale": 2}],
              n_outputs=10, seed=0)
    net.train(x_train, y_train, epochs=1, batch_size=50, alpha=1.0)
    error = net.error(x_test, y_test)

Layers, as in DeepLearnToolbox:
- {"type": "i"}: the input, (N, H, W) images (or (N, C, H, W) with
  "input_maps": C); input_shape gives (H, W).
- {"type": "c", "output_maps": M, "kernel_size": K}: a 'valid' K x K
  convolution of all input maps plus a per-map bias, then the activation
  ("sigm" as in DeepLearnToolbox, or "relu").
- {"type": "s", "scale": S}: mean pooling over S x S blocks (no parameters;
  DeepLearnToolbox allocates a bias here but never uses it).
Then every map is flattened into one feature vector and a fully-connected
output layer gives n_outputs values: output="sigm" is DeepLearnToolbox's
sigmoid output with loss 0.5 * sum(e^2) / batch (cnnff/cnnbp);
output="softmax" gives softmax with mean cross-entropy.

Initialisation is cnnsetup's: convolution kernels uniform
(rand - 0.5) * 2 * sqrt(6 / ((input_maps + output_maps) * K^2)), output
weights (rand - 0.5) * 2 * sqrt(6 / (n_outputs + n_features)), biases 0,
all drawn from the model's NumPy Generator (seeded by `seed`).

Two differences from the MATLAB code, neither visible in results:
- DeepLearnToolbox's convn is a true convolution (the kernel is flipped);
  fastgrad's conv2d is a cross-correlation (PyTorch's convention). With
  learned, randomly initialised kernels this is only a relabelling of the
  kernel entries.
- Features are flattened map by map in row-major (C) order instead of
  MATLAB's column-major order: a fixed permutation of the output weights'
  columns.

Batch normalisation (not in DeepLearnToolbox; Ioffe & Szegedy 2015):
batch_norm=True normalises every map of each convolution layer over the
batch and the map's positions (a fastgrad.models.layers.BatchNorm between
the convolution and its activation); ghost_batch_size=g uses ghost batches
of g samples in training (Hoffer et al. 2017). train()/train_step() run in
training mode (batch statistics), predict()/error() always in evaluation
mode (running statistics); eval() switches forward() to evaluation mode.
The running statistics are saved in the checkpoints.

Gradients come from autodiff (Tensor.backward), not a hand-written
backprop; the update is plain SGD, w <- w - alpha * dL/dw (cnnapplygrads),
through fastgrad.optim.SGD.
"""
import numpy as np

from fastgrad import io, ops, optim
from fastgrad.models.layers import BatchNorm
from fastgrad.tensor import Tensor, no_grad

__all__ = ["CNN"]

ACTIVATIONS = {"sigm": "sigmoid", "sigmoid": "sigmoid", "relu": "relu"}
OUTPUTS = ("sigm", "softmax")


def _layer_value(index, layer, key, aliases=()):
    for name in (key,) + tuple(aliases):
        if name in layer:
            value = layer[name]
            if (isinstance(value, bool)
                    or not isinstance(value, (int, np.integer))
                    or value < 1):
                raise ValueError(f"CNN: layer {index} ({layer['type']!r}): "
                                 f"{name} must be an int >= 1, got {value!r}")
            return int(value)
    raise ValueError(f"CNN: layer {index} ({layer['type']!r}) needs {key!r}")


class CNN:
    """A DeepLearnToolbox-style CNN (see the module docstring).

    Parameters
    ----------
    layers : list of dicts, the first {"type": "i"}, then "c" and "s"
        layers (keys "output_maps"/"outputmaps", "kernel_size"/"kernelsize",
        "scale").
    n_outputs : int, the size of the output layer (classes).
    input_shape : (H, W) of the input maps (default (28, 28), MNIST).
    activation : "sigm" (DeepLearnToolbox) or "relu", for the maps of the
        convolution layers.
    output : "sigm" (with 0.5 * sum(e^2) / batch) or "softmax" (with
        cross-entropy).
    dtype : "float32" (default) or "float64".
    seed : seed of the NumPy Generator used for initialisation and for the
        shuffling in train().
    batch_norm : a BatchNorm per convolution layer, before the activation.
    ghost_batch_size : its ghost batch size in training (None: the batch).

    Attributes
    ----------
    params : list of Tensors (requires_grad=True): per convolution layer
        weight (M, C, K, K) and bias (M,) (and, with batch_norm, the
        BatchNorm scale and shift (M,)), then the output weight
        (n_outputs, n_features) and bias (n_outputs,).
    norms : {layer index: BatchNorm} of the convolution layers.
    training : True in training mode (see eval()).
    losses : list of float, the loss of every training batch so far.
    rng : numpy.random.Generator.
    """

    def __init__(self, layers, n_outputs, input_shape=(28, 28),
                 activation="sigm", output="sigm", dtype="float32",
                 seed=None, batch_norm=False, ghost_batch_size=None):
        if activation not in ACTIVATIONS:
            raise ValueError(f"CNN: activation must be one of "
                             f"{sorted(ACTIVATIONS)}, got {activation!r}")
        if output not in OUTPUTS:
            raise ValueError(f"CNN: output must be one of {OUTPUTS}, got "
                             f"{output!r}")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"CNN: dtype must be float32 or float64, got "
                            f"{self.dtype}")
        if not layers or layers[0].get("type") != "i":
            raise ValueError("CNN: the first layer must be {'type': 'i'}")
        self.layer_specs = [dict(layer) for layer in layers]
        self.n_outputs = int(n_outputs)
        self.input_shape = tuple(int(size) for size in input_shape)
        self.activation = activation
        self.output = output
        self.seed = seed
        self.batch_norm = bool(batch_norm)
        self.ghost_batch_size = ghost_batch_size
        self.training = True
        self.rng = np.random.default_rng(seed)
        self.losses = []
        self._optimizer = None
        self._build()

    # ----------------------------------------------------------- cnnsetup
    def _build(self):
        """Parameter shapes and cnnsetup's initialisation."""
        maps = self.input_maps = int(self.layer_specs[0].get("input_maps", 1))
        height, width = self.input_shape
        self.layers = []   # ("c", weight, bias) or ("s", scale)
        self.params = []
        self.norms = {}
        for index, layer in enumerate(self.layer_specs[1:], start=1):
            kind = layer.get("type")
            if kind == "c":
                out_maps = _layer_value(index, layer, "output_maps",
                                        ("outputmaps",))
                size = _layer_value(index, layer, "kernel_size",
                                    ("kernelsize",))
                height, width = height - size + 1, width - size + 1
                if height < 1 or width < 1:
                    raise ValueError(f"CNN: layer {index}: kernel {size}x"
                                     f"{size} is larger than its input maps")
                bound = np.sqrt(6.0 / ((maps + out_maps) * size * size))
                weight = self._uniform((out_maps, maps, size, size), bound)
                bias = Tensor(np.zeros(out_maps, self.dtype),
                              requires_grad=True)
                self.layers.append(("c", weight, bias))
                self.params += [weight, bias]
                if self.batch_norm:
                    norm = BatchNorm(out_maps,
                                     ghost_batch_size=self.ghost_batch_size,
                                     dtype=self.dtype)
                    self.norms[len(self.layers) - 1] = norm
                    self.params += norm.parameters()
                maps = out_maps
            elif kind == "s":
                scale = _layer_value(index, layer, "scale")
                if height % scale or width % scale:
                    raise ValueError(f"CNN: layer {index}: maps of "
                                     f"{height}x{width} are not divisible by "
                                     f"the scale {scale}")
                height, width = height // scale, width // scale
                self.layers.append(("s", scale))
            else:
                raise ValueError(f"CNN: layer {index}: unknown type "
                                 f"{kind!r} (expected 'c' or 's')")
        self.n_features = maps * height * width
        bound = np.sqrt(6.0 / (self.n_outputs + self.n_features))
        self.output_weight = self._uniform((self.n_outputs, self.n_features),
                                           bound)
        self.output_bias = Tensor(np.zeros(self.n_outputs, self.dtype),
                                  requires_grad=True)
        self.params += [self.output_weight, self.output_bias]

    def _uniform(self, shape, bound):
        values = (self.rng.random(shape) - 0.5) * 2 * bound
        return Tensor(values.astype(self.dtype), requires_grad=True)

    # ------------------------------------------------------------- cnnff
    def _images(self, x):
        """x as a C-contiguous (N, C, H, W) array of the model's dtype."""
        x = np.asarray(x)
        height, width = self.input_shape
        if x.ndim == 2 and x.shape[1] == self.input_maps * height * width:
            x = x.reshape(len(x), self.input_maps, height, width)
        elif x.ndim == 3 and self.input_maps == 1:
            x = x.reshape(len(x), 1, *x.shape[1:])
        if x.ndim != 4 or x.shape[1:] != (self.input_maps, height, width):
            raise ValueError(f"CNN: inputs of shape {x.shape} do not match "
                             f"input maps {self.input_maps} of "
                             f"{height}x{width}")
        return np.ascontiguousarray(x, dtype=self.dtype)

    def forward(self, x):
        """cnnff: the Tensor of outputs (N, n_outputs), sigmoid values for
        output="sigm", logits for output="softmax". x: images as an array
        ((N, H, W), (N, C, H, W) or (N, C*H*W)) or an (N, C, H, W)
        Tensor."""
        maps = x if isinstance(x, Tensor) else Tensor(self._images(x))
        activation = ACTIVATIONS[self.activation]
        pooled = False  # the previous convolution did this subsampling
        for index, layer in enumerate(self.layers):
            following = self.layers[index + 1:index + 2]
            if layer[0] == "c" and index in self.norms:
                maps = self.norms[index].train(self.training)(
                    ops.conv2d(maps, layer[1], layer[2]))
                maps = getattr(ops, activation)(maps)
            elif layer[0] == "c":
                # a subsampling layer right after is fused into the op
                pooled = bool(following) and following[0][0] == "s"
                maps = ops.conv2d(maps, layer[1], layer[2],
                                  activation=activation,
                                  pool=following[0][1] if pooled else 1)
            elif pooled:
                pooled = False
            else:
                maps = ops.subsample(maps, layer[1])
        features = ops.reshape(maps, maps.shape[0], self.n_features)
        return ops.linear(features, self.output_weight, self.output_bias,
                          activation="sigmoid" if self.output == "sigm"
                          else "none")

    def loss(self, x, y):
        """The training loss Tensor on a batch: 0.5 * sum(e^2) / batch
        (output="sigm", y one-hot (N, n_outputs)) or mean cross-entropy
        (output="softmax", y integer labels (N,) or one-hot)."""
        out = self.forward(x)
        if self.output == "sigm":
            return ops.mse_loss(out, self._targets(y, len(out.data)),
                                reduction="dlt")
        y = np.asarray(y)
        if y.dtype.kind not in "iu":
            y = np.ascontiguousarray(y, dtype=self.dtype)
        return ops.softmax_cross_entropy(out, y)

    def _targets(self, y, n):
        """One-hot float targets (n, n_outputs) from labels or one-hot."""
        y = np.asarray(y)
        if y.dtype.kind in "iu" and y.ndim == 1:
            targets = np.zeros((len(y), self.n_outputs), self.dtype)
            targets[np.arange(len(y)), y] = 1
            y = targets
        if y.shape != (n, self.n_outputs):
            raise ValueError(f"CNN: targets of shape {y.shape}, expected "
                             f"({n}, {self.n_outputs}) or ({n},) labels")
        return np.ascontiguousarray(y, dtype=self.dtype)

    # ---------------------------------------------------------- cnntrain
    def train(self, x, y, epochs=1, batch_size=50, alpha=1.0,
              progress=None):
        """cnntrain: `epochs` passes of plain SGD (learning rate `alpha`) over
        mini-batches of `batch_size`, reshuffled every epoch with the model's
        Generator (DeepLearnToolbox's randperm). x: (N, H, W) or (N, C, H, W)
        images; y: one-hot (N, n_outputs) or integer labels (N,).
        DeepLearnToolbox requires N to be a multiple of batch_size; here the
        last N % batch_size samples of each permutation are left out.
        progress: optional callable(epoch, mean_loss) after each epoch.
        Returns the list of per-batch losses of this call."""
        images = self._images(x)
        n = len(images)
        if self.output == "sigm":
            targets = self._targets(y, n)
        else:
            targets = np.asarray(y)
            if targets.dtype.kind not in "iu":
                targets = self._targets(targets, n)
        if len(targets) != n:
            raise ValueError(f"CNN.train: {n} images but {len(targets)} "
                             f"targets")
        if isinstance(batch_size, bool) or int(batch_size) != batch_size \
                or not 1 <= batch_size <= n:
            raise ValueError(f"CNN.train: batch_size must be an int in "
                             f"[1, {n}], got {batch_size!r}")
        batch_size = int(batch_size)
        losses = []
        for epoch in range(int(epochs)):
            order = self.rng.permutation(n)
            first = len(losses)
            for start in range(0, n - batch_size + 1, batch_size):
                index = order[start:start + batch_size]
                losses.append(self.train_step(images[index], targets[index],
                                              alpha))
            if progress is not None:
                progress(epoch, float(np.mean(losses[first:])))
        self.losses += losses
        return losses

    def train_step(self, x, y, alpha=1.0):
        """One plain SGD step (cnnff, cnnbp, cnnapplygrads) on the batch
        (x, y) with learning rate alpha, in training mode; returns the
        loss (float)."""
        self.training = True
        if self._optimizer is None:
            self._optimizer = optim.SGD(self.params, lr=alpha)
        self._optimizer.param_groups[0]["lr"] = alpha
        self._optimizer.zero_grad()
        loss = self.loss(x, y)
        loss.backward()
        self._optimizer.step()
        return float(loss.data)

    def eval(self):
        """Evaluation mode for forward()/loss() (BatchNorm's running
        statistics); train() and train_step() switch back to training."""
        self.training = False
        return self

    # ----------------------------------------------------------- cnntest
    def predict(self, x, batch_size=1000):
        """Outputs (N, n_outputs): sigmoid values, or softmax probabilities
        for output="softmax"."""
        images = self._images(x)
        outputs = []
        was_training, self.training = self.training, False
        try:
            with no_grad():
                for start in range(0, len(images), batch_size):
                    out = self.forward(images[start:start + batch_size])
                    if self.output == "softmax":
                        out = ops.softmax(out, axis=1)
                    outputs.append(out.data)
        finally:
            self.training = was_training
        if not outputs:
            return np.zeros((0, self.n_outputs), self.dtype)
        return np.concatenate(outputs)

    def error(self, x, y):
        """cnntest: the fraction of samples whose largest output is not the
        target class. y: one-hot (N, n_outputs) or integer labels (N,)."""
        y = np.asarray(y)
        labels = y if y.ndim == 1 else y.argmax(axis=1)
        predicted = self.predict(x).argmax(axis=1)
        return float(np.mean(predicted != labels)) if len(labels) else 0.0

    # -------------------------------------------------------- checkpoints
    def _state_arrays(self):
        arrays = {}
        for index, layer in enumerate(self.layers):
            if layer[0] == "c":
                arrays[f"layers/{index}/weight"] = layer[1].data
                arrays[f"layers/{index}/bias"] = layer[2].data
            if index in self.norms:
                norm = self.norms[index]
                arrays[f"layers/{index}/bn_weight"] = norm.weight.data
                arrays[f"layers/{index}/bn_bias"] = norm.bias.data
                arrays[f"layers/{index}/bn_running_mean"] = norm.running_mean
                arrays[f"layers/{index}/bn_running_var"] = norm.running_var
        arrays["output/weight"] = self.output_weight.data
        arrays["output/bias"] = self.output_bias.data
        return arrays

    def _meta(self):
        return {"class": "CNN", "layers": self.layer_specs,
                "n_outputs": self.n_outputs,
                "input_shape": list(self.input_shape),
                "activation": self.activation, "output": self.output,
                "dtype": self.dtype.name,
                **({"batch_norm": True,
                    "ghost_batch_size": self.ghost_batch_size}
                   if self.batch_norm else {})}

    def save(self, path):
        """Write parameters, the Generator state and the configuration to
        an .npz checkpoint (atomically, without pickle)."""
        arrays = dict(self._state_arrays())
        arrays["rng"] = io.generator_state(self.rng)
        arrays["losses"] = np.asarray(self.losses, dtype=np.float64)
        io.save_checkpoint(path, arrays, meta=self._meta())

    def load(self, path):
        """Restore a checkpoint written by save() of a CNN with the same
        configuration; a mismatched or corrupt file raises
        fastgrad.io.CheckpointError and leaves the model untouched."""
        current = self._state_arrays()
        expected = io.describe(current)
        expected["rng"] = (None, None)
        expected["losses"] = (None, np.float64)
        arrays, meta = io.load_checkpoint(path, expected=expected)
        if meta != self._meta():
            raise io.CheckpointError(f"{path}: saved for a CNN configured "
                                     f"as {meta}, this one is "
                                     f"{self._meta()}")
        saved_rng = io.restore_generator(arrays.pop("rng"))
        losses = [float(v) for v in arrays.pop("losses")]
        for name, value in arrays.items():
            current[name][...] = value
        io.restore_generator(saved_rng, self.rng)
        self.losses = losses
        return self

    @classmethod
    def from_checkpoint(cls, path):
        """A new CNN built from the configuration stored in a checkpoint,
        with its parameters loaded."""
        _, meta = io.load_checkpoint(path)
        if meta.get("class") != "CNN":
            raise io.CheckpointError(f"{path}: not a CNN checkpoint "
                                     f"(class {meta.get('class')!r})")
        net = cls(layers=meta["layers"], n_outputs=meta["n_outputs"],
                  input_shape=meta["input_shape"],
                  activation=meta["activation"], output=meta["output"],
                  dtype=meta["dtype"],
                  batch_norm=meta.get("batch_norm", False),
                  ghost_batch_size=meta.get("ghost_batch_size"))
        return net.load(path)
