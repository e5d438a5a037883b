"""Layer objects shared by the models.

BatchNorm: (ghost) batch normalisation with learnable scale and shift and
running statistics for evaluation (Ioffe & Szegedy 2015; ghost batches:
Hoffer, Hubara & Soudry 2017, "Train longer, generalize better").
"""
import numpy as np

from fastgrad import ops
from fastgrad.tensor import Tensor


class BatchNorm:
    """Batch normalisation over the channels of (N, C) or (N, C, H, W).

    In a fully connected net it sits after the affine map, before the
    activation (x @ W.T + b -> BatchNorm -> f); in a convolutional net it
    normalises each feature map over the batch and the map's positions.

    Training mode (the default, `train()`): each channel is normalised with
    the mean and biased variance of the batch, or of each ghost batch of
    `ghost_batch_size` consecutive samples when given (the last ghost batch
    of a batch that does not divide evenly is normalised on its own as a
    smaller ghost batch); a (ghost) batch with a single value per channel
    raises ValueError. The running statistics are updated in place:
        running_mean := (1 - momentum) * running_mean + momentum * mean_B
        running_var  := (1 - momentum) * running_var + momentum * var_B
    with mean_B the batch mean and var_B the unbiased (m / (m - 1))
    variance of the batch, or the size-weighted mean of the ghost batches'
    unbiased variances (PyTorch's convention, momentum 0.1 by default).
    Evaluation mode (`eval()`): the running statistics, whatever the batch.

    weight (C,) starts at 1 and bias (C,) at 0, both Tensors with
    requires_grad; running_mean (C,) starts at 0 and running_var (C,) at 1,
    plain arrays (buffers, saved by state_dict, not trained).
    """

    def __init__(self, n_channels, momentum=0.1, eps=1e-5,
                 ghost_batch_size=None, dtype=np.float32):
        if not isinstance(n_channels, (int, np.integer)) or n_channels < 1:
            raise ValueError(f"BatchNorm: n_channels must be an int >= 1, "
                             f"got {n_channels!r}")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"BatchNorm: momentum must be in [0, 1], "
                             f"got {momentum}")
        if not eps > 0.0:
            raise ValueError(f"BatchNorm: eps must be > 0, got {eps}")
        if ghost_batch_size is not None and (
                not isinstance(ghost_batch_size, (int, np.integer))
                or ghost_batch_size < 1):
            raise ValueError(f"BatchNorm: ghost_batch_size must be None or "
                             f"an int >= 1, got {ghost_batch_size!r}")
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"BatchNorm: dtype must be float32 or float64, "
                            f"got {dtype}")
        self.n_channels = int(n_channels)
        self.momentum = float(momentum)
        self.eps = float(eps)
        self.ghost_batch_size = (None if ghost_batch_size is None
                                 else int(ghost_batch_size))
        self.weight = Tensor(np.ones(n_channels, dtype), requires_grad=True)
        self.bias = Tensor(np.zeros(n_channels, dtype), requires_grad=True)
        self.running_mean = np.zeros(n_channels, dtype)
        self.running_var = np.ones(n_channels, dtype)
        self.n_batches_tracked = 0
        self.training = True

    def __call__(self, x):
        """Normalise x (N, C) or (N, C, H, W); returns a Tensor of x's
        shape."""
        if self.training:
            self.n_batches_tracked += 1
        return ops.batch_norm(x, self.weight, self.bias, self.running_mean,
                              self.running_var, self.training,
                              self.momentum, self.eps, self.ghost_batch_size)

    def train(self, mode=True):
        """Training mode (batch statistics) when mode, else evaluation."""
        self.training = bool(mode)
        return self

    def eval(self):
        """Evaluation mode: normalise with the running statistics."""
        return self.train(False)

    def parameters(self):
        """The trainable Tensors: [weight, bias]."""
        return [self.weight, self.bias]

    def state_dict(self):
        """Copies of everything a checkpoint needs: weight, bias,
        running_mean, running_var (arrays) and n_batches_tracked."""
        return {"weight": self.weight.data.copy(),
                "bias": self.bias.data.copy(),
                "running_mean": self.running_mean.copy(),
                "running_var": self.running_var.copy(),
                "n_batches_tracked": np.asarray(self.n_batches_tracked)}

    def load_state_dict(self, state):
        """Restore from state_dict() output (arrays of shape (C,), copied
        into the existing buffers and parameters)."""
        missing = {"weight", "bias", "running_mean", "running_var"} - set(state)
        if missing:
            raise KeyError(f"BatchNorm.load_state_dict: missing "
                           f"{sorted(missing)}")
        for name in ("weight", "bias", "running_mean", "running_var"):
            value = np.asarray(state[name])
            if value.shape != (self.n_channels,):
                raise ValueError(f"BatchNorm.load_state_dict: {name} has "
                                 f"shape {value.shape}, expected "
                                 f"({self.n_channels},)")
            if name == "running_var" and np.any(value < 0):
                raise ValueError("BatchNorm.load_state_dict: running_var "
                                 "has negative entries")
        self.weight.data[...] = state["weight"]
        self.bias.data[...] = state["bias"]
        self.running_mean[...] = state["running_mean"]
        self.running_var[...] = state["running_var"]
        self.n_batches_tracked = int(state.get("n_batches_tracked", 0))

    def __repr__(self):
        ghost = ("" if self.ghost_batch_size is None
                 else f", ghost_batch_size={self.ghost_batch_size}")
        return (f"BatchNorm({self.n_channels}, momentum={self.momentum}, "
                f"eps={self.eps}{ghost}, "
                f"{'training' if self.training else 'eval'})")
