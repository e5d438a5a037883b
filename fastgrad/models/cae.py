"""Convolutional autoencoder as DeepLearnToolbox's caesetup/caetrain (one
layer of its scae), on fastgrad's conv2d and autodiff.

Forward (caeup, caedown), for x (N, C, H, W):
    hidden  = sigm(conv2d(x_masked, input_kernels, hidden_biases, 'full'))
              (N, M, H + k - 1, W + k - 1)
    pooled  = hidden * [hidden is the maximum of its scale x scale block]
              (max3d: the block maxima stay where they are, all else is 0)
    output  = sigm(conv2d(pooled, output_kernels, output_biases, 'valid'))
              (N, C, H, W)
    loss    = 0.5 * sum((output - x)^2) / N           (caebp)

What fastgrad decided:
- Cross-correlation instead of MATLAB's convn (a flipped kernel: the same
  family of models). Kernels start Glorot-uniform, +-sqrt(6 / (fan_in +
  fan_out)) with fan_in = C k^2 and fan_out = M k^2; biases start at 0
  (as caesetup's b and c).
- The toolbox updates with stochastic diagonal Levenberg-Marquardt
  (caesdlm: per-weight rates alpha / (mu + diag. Hessian)); fastgrad uses
  SGD with DeepLearnToolbox's momentum convention (optim.SGD,
  momentum_convention="dlt", momentum_correction=False). The default
  learning rate 0.003 is chosen for that (measured on mnist10k, batch 1,
  momentum 0.9: 0.01 and above drive the output units into saturation at
  0 within the first rounds; 0.001 trains more slowly).
- The toolbox's loss is never checked against its gradient (its
  caenumgradcheck call is commented out); here the loss is an autodiff
  graph and tests/test_sae_cae.py checks its gradient in float64.
- max3d's maximum mask is computed from the forward values (NumPy glue) and
  enters as a constant factor: its derivative is exactly that mask almost
  everywhere. Ties are broken towards the first element of a block.
"""
import numpy as np

import fastgrad
from fastgrad import ops
from fastgrad.models.nn import (_check_kind, _check_layout,
                                _progress_printer, _seed_pair, decode_tree,
                                encode_tree)
from fastgrad.rng import CounterRNG
from fastgrad.tensor import Tensor, no_grad

__all__ = ["CAE"]

CHECKPOINT_KIND = "fastgrad.models.CAE"


def max_block_mask(values, scale):
    """1 where values (N, M, H, W) holds the maximum of its scale x scale
    block (the first one on ties), else 0; H and W divisible by scale."""
    n, m, h, w = values.shape
    blocks = values.reshape(n, m, h // scale, scale, w // scale, scale)
    blocks = blocks.transpose(0, 1, 2, 4, 3, 5).reshape(
        n, m, h // scale, w // scale, scale * scale)
    winners = blocks.argmax(axis=-1)
    mask = np.zeros(blocks.shape, dtype=values.dtype)
    np.put_along_axis(mask, winners[..., None], 1, axis=-1)
    mask = mask.reshape(n, m, h // scale, w // scale, scale, scale)
    return np.ascontiguousarray(mask.transpose(0, 1, 2, 4, 3, 5)
                                .reshape(n, m, h, w))


class CAE:
    """A convolutional (denoising) autoencoder (caesetup).

    input_maps: C, channels of the images (1 for MNIST).
    output_maps: M, hidden feature maps (DeepLearnToolbox's outputmaps).
    kernel_size: k, square kernels of encoder and decoder (inputkernel and
        outputkernel [1 k k]).
    scale: max-pooling block (scale [1 s s]); (H + k - 1) must be divisible
        by it.
    noise: fraction of input values zeroed in training (cae.noise).
    learning_rate, momentum: SGD with the toolbox's momentum convention.
    Parameters (Tensors): input_kernels (M, C, k, k), hidden_biases (M,),
    output_kernels (C, M, k, k), output_biases (C,).
    """

    def __init__(self, input_maps=1, output_maps=10, kernel_size=5, scale=2,
                 noise=0.0, learning_rate=0.003, momentum=0.9, seed=None,
                 dtype="float32"):
        self.input_maps, self.output_maps = int(input_maps), int(output_maps)
        self.kernel_size, self.scale = int(kernel_size), int(scale)
        if min(self.input_maps, self.output_maps, self.kernel_size,
               self.scale) < 1:
            raise ValueError(f"CAE: input_maps, output_maps, kernel_size and "
                             f"scale must be >= 1, got {self.input_maps}, "
                             f"{self.output_maps}, {self.kernel_size}, "
                             f"{self.scale}")
        if not 0.0 <= float(noise) < 1.0:
            raise ValueError(f"CAE: noise must be in [0, 1), got {noise}")
        if not float(learning_rate) > 0:
            raise ValueError(f"CAE: learning_rate must be > 0, got "
                             f"{learning_rate}")
        if not 0.0 <= float(momentum) < 1.0:
            raise ValueError(f"CAE: momentum must be in [0, 1), got "
                             f"{momentum}")
        self.noise = float(noise)
        self.learning_rate = float(learning_rate)
        self.momentum = float(momentum)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"CAE: dtype must be float32 or float64, got "
                            f"{self.dtype}")
        self.rng, sampler_seed = _seed_pair(seed)
        self.sampler = CounterRNG(sampler_seed)
        c, m, k = self.input_maps, self.output_maps, self.kernel_size
        bound = np.sqrt(6.0 / ((c + m) * k * k))

        def uniform(shape):
            values = (self.rng.random(shape) - 0.5) * 2 * bound
            return fastgrad.tensor(values, dtype=self.dtype,
                                   requires_grad=True)

        def zeros(size):
            return fastgrad.tensor(np.zeros(size), dtype=self.dtype,
                                   requires_grad=True)

        self.input_kernels = uniform((m, c, k, k))
        self.hidden_biases = zeros(m)
        self.output_kernels = uniform((c, m, k, k))
        self.output_biases = zeros(c)
        self.training = True
        self.optimizer = None
        self.rounds_trained = 0
        self.history = {"loss": []}  # cae.rL: the loss of every round

    def config(self):
        return {"input_maps": self.input_maps,
                "output_maps": self.output_maps,
                "kernel_size": self.kernel_size, "scale": self.scale,
                "noise": self.noise, "learning_rate": self.learning_rate,
                "momentum": self.momentum, "dtype": self.dtype.name}

    def parameters(self):
        return [self.input_kernels, self.hidden_biases, self.output_kernels,
                self.output_biases]

    def train(self, mode=True):
        self.training = bool(mode)
        return self

    def eval(self):
        return self.train(False)

    def __repr__(self):
        return (f"CAE(input_maps={self.input_maps}, output_maps="
                f"{self.output_maps}, kernel_size={self.kernel_size}, "
                f"scale={self.scale})")

    # -- forward -----------------------------------------------------------
    def _as_images(self, x):
        x = np.asarray(x.data if isinstance(x, Tensor) else x)
        if x.ndim == 3 and self.input_maps == 1:
            x = x[:, None]
        if x.ndim != 4 or x.shape[1] != self.input_maps:
            raise ValueError(f"CAE: images of shape {x.shape}, expected "
                             f"(N, {self.input_maps}, H, W)")
        hidden_h = x.shape[2] + self.kernel_size - 1
        hidden_w = x.shape[3] + self.kernel_size - 1
        if hidden_h % self.scale or hidden_w % self.scale:
            raise ValueError(
                f"CAE: hidden maps of {hidden_h}x{hidden_w} (images "
                f"{x.shape[2]}x{x.shape[3]} + kernel {self.kernel_size} - 1)"
                f" are not divisible by scale {self.scale}")
        return Tensor(x, dtype=self.dtype)

    def _forward(self, x, training):
        """(output, pooled hidden) Tensors for images x (Tensor)."""
        if training and self.noise > 0:
            x = ops.dropout(x, self.noise, self.sampler, training=True)
        hidden = ops.sigmoid(ops.conv2d(x, self.input_kernels,
                                        self.hidden_biases, padding="full"))
        if self.scale > 1:
            mask = max_block_mask(hidden.data, self.scale)
            hidden = ops.mul(hidden, Tensor(mask))
        output = ops.sigmoid(ops.conv2d(hidden, self.output_kernels,
                                        self.output_biases, padding="valid"))
        return output, hidden

    def loss(self, x, target=None):
        """0.5 * sum((reconstruction - target)^2) / N as a 0-d Tensor, in
        the current mode; target defaults to x (auto-encoding)."""
        x = self._as_images(x)
        target = x if target is None else self._as_images(target)
        output, _ = self._forward(x, self.training)
        return ops.mse_loss(output, target, reduction="dlt")

    def reconstruct(self, x):
        """Test-mode reconstructions (N, C, H, W)."""
        with no_grad():
            return self._forward(self._as_images(x), False)[0].data

    def encode(self, x):
        """Test-mode max-pooled hidden maps (N, M, H + k - 1, W + k - 1)."""
        with no_grad():
            return self._forward(self._as_images(x), False)[1].data

    def evaluate(self, x):
        """Mean reconstruction loss 0.5 * sum(e^2) / N on x, test mode."""
        with no_grad():
            x = self._as_images(x)
            output, _ = self._forward(x, False)
            return float(ops.mse_loss(output, x, reduction="dlt").data)

    # -- training ----------------------------------------------------------
    def _make_optimizer(self):
        from fastgrad import optim
        return optim.SGD(self.parameters(), lr=self.learning_rate,
                         momentum=self.momentum, momentum_convention="dlt",
                         momentum_correction=False)

    def fit(self, x, rounds=1000, batch_size=1, progress=True):
        """caetrain: `rounds` updates, each on a block of batch_size
        consecutive images at a random offset, reconstructing the clean
        images from the (noise-masked) input. x (N, C, H, W) or (N, H, W).
        Appends each round's loss to history["loss"]; returns self."""
        images = np.ascontiguousarray(self._as_images(x).data)
        rounds, batch_size = int(rounds), int(batch_size)
        if rounds < 0 or not 1 <= batch_size <= len(images):
            raise ValueError(f"CAE.fit: rounds must be >= 0 and batch_size in "
                             f"[1, {len(images)}], got {rounds} and "
                             f"{batch_size}")
        say = _progress_printer(progress)
        if self.optimizer is None:
            self.optimizer = self._make_optimizer()
        self.training = True
        report = max(1, rounds // 10)
        for round_ in range(rounds):
            start = int(self.rng.integers(0, len(images) - batch_size + 1))
            batch = images[start:start + batch_size]
            for p in self.parameters():
                p.grad = None
            loss = self.loss(batch)
            loss.backward()
            self.optimizer.step()
            self.history["loss"].append(float(loss.data))
            self.rounds_trained += 1
            if (round_ + 1) % report == 0:
                recent = self.history["loss"][-report:]
                say(f"round {self.rounds_trained}: mean loss of the last "
                    f"{len(recent)} rounds {np.mean(recent):.5f}")
        return self

    # -- checkpoints -------------------------------------------------------
    def _state_arrays(self):
        return {"input_kernels": self.input_kernels.data,
                "hidden_biases": self.hidden_biases.data,
                "output_kernels": self.output_kernels.data,
                "output_biases": self.output_biases.data}

    def save(self, path):
        """Checkpoint parameters, optimiser state, RNG states and history
        (fastgrad.io; resumed training continues bit-identically)."""
        from fastgrad import io
        arrays = self._state_arrays()
        arrays["history_loss"] = np.asarray(self.history["loss"],
                                            dtype=np.float64)
        arrays["numpy_rng"] = io.generator_state(self.rng)
        optimizer_arrays = {}
        tree = (None if self.optimizer is None else
                encode_tree(self.optimizer.state_dict(), optimizer_arrays))
        arrays["optimizer"] = optimizer_arrays
        io.save_checkpoint(path, arrays, meta={
            "kind": CHECKPOINT_KIND, "config": self.config(),
            "rounds_trained": self.rounds_trained,
            "sampler": self.sampler.state_dict(), "optimizer": tree})

    def load(self, path):
        """Restore a checkpoint of a CAE of the same shape and dtype; a bad
        file raises fastgrad.io.CheckpointError, leaving the model as it
        was. Returns self."""
        from fastgrad import io
        arrays, meta = io.load_checkpoint(path)
        config = _check_kind(path, meta, CHECKPOINT_KIND)
        mine = self.config()
        structural = ("input_maps", "output_maps", "kernel_size", "scale",
                      "dtype")
        differ = [f"{key}: file {config.get(key)!r}, model {mine[key]!r}"
                  for key in structural if config.get(key) != mine[key]]
        if differ:
            raise io.CheckpointError(f"{path}: checkpoint of another CAE: "
                                     + "; ".join(differ))
        try:
            own = {name: arrays[name] for name in self._state_arrays()}
            _check_layout(path, own, io.describe(self._state_arrays()))
            history = arrays["history_loss"].tolist()
            rng = io.restore_generator(arrays["numpy_rng"])
            sampler = CounterRNG(meta["sampler"]["seed"],
                                 meta["sampler"]["counter"])
            optimizer = None
            if meta.get("optimizer") is not None:
                state = decode_tree(meta["optimizer"], {
                    name[len("optimizer/"):]: value
                    for name, value in arrays.items()
                    if name.startswith("optimizer/")})
                optimizer = self._make_optimizer()
                optimizer.load_state_dict(state)
        except io.CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise io.CheckpointError(f"{path}: invalid CAE checkpoint "
                                     f"({type(err).__name__}: {err})"
                                     ) from None
        for name, value in own.items():
            getattr(self, name).data[...] = value
        for key in ("noise", "learning_rate", "momentum"):
            setattr(self, key, float(config[key]))
        self.history = {"loss": history}
        self.rng, self.sampler = rng, sampler
        self.rounds_trained = int(meta["rounds_trained"])
        self.optimizer = optimizer
        return self
