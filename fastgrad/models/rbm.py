"""Binary restricted Boltzmann machine trained by contrastive divergence.

DeepLearnToolbox's rbmtrain (CD-1) is the default, step for step:
    v1 = batch
    h1 = sigmrnd(c' + v1 W')          sampled hidden units
    v2 = sigmrnd(b' + h1 W)           sampled reconstruction
    h2 = sigm(c' + v2 W')             hidden probabilities
    vW = momentum vW + alpha (h1' v1 - h2' v2) / batch
    vb = momentum vb + alpha sum(v1 - v2) / batch
    vc = momentum vc + alpha sum(h1 - h2) / batch
    W += vW, b += vb, c += vc
    err = sum((v1 - v2)^2) / batch
plus, as options, CD-k (k Gibbs steps), persistent CD (Tieleman 2008: the
negative chain carries over between updates) and L2 weight decay
(lr * weight_decay * W is subtracted from vW; biases are not decayed).

The Gibbs chain and the update are two fused compiled kernels reached
through fastgrad.sampling (rbm_gibbs, rbm_cd_update); Bernoulli samples
come from Philox keyed by (seed, update counter, row, unit), so a run is
reproducible from its seed whatever the thread count.
"""
import numpy as np

from fastgrad import io, ops, sampling
from fastgrad.rng import CounterRNG
from fastgrad.tensor import Tensor, aligned, no_grad

__all__ = ["RBM", "check_binary_input"]

_INITS = ("zeros", "normal")


def check_binary_input(name, x, n_visible, dtype):
    """`x` as a C-contiguous (n, n_visible) array of `dtype` with values in
    [0, 1] (binary, or probabilities as in DeepLearnToolbox's scaled
    pixels); raise ValueError/TypeError naming `name` otherwise."""
    data = x.data if isinstance(x, Tensor) else x
    data = np.asarray(data)
    if data.dtype.kind not in "fiub":
        raise TypeError(f"{name}: input must be numeric, got dtype "
                        f"{data.dtype}")
    if data.ndim != 2:
        raise ValueError(f"{name}: input must be 2-D (n_samples, "
                         f"{n_visible}), got shape {data.shape}")
    if data.shape[1] != n_visible:
        raise ValueError(f"{name}: input has {data.shape[1]} columns but the "
                         f"RBM has {n_visible} visible units (shape "
                         f"{data.shape})")
    data = np.ascontiguousarray(data, dtype=dtype)
    if data.size:
        low, high = data.min(), data.max()
        if not (low >= 0 and high <= 1):  # also catches NaN
            raise ValueError(f"{name}: binary visible units need values in "
                             f"[0, 1], got min {low} and max {high} (scale "
                             "pixels by 1/255)")
    return data


class RBM:
    """A binary-binary RBM: n_visible visible and n_hidden hidden units.

    Parameters (Tensors, no gradient needed): weight (n_hidden, n_visible)
    (DeepLearnToolbox's W), vis_bias (n_visible,) (b), hid_bias (n_hidden,)
    (c); the momentum buffers weight_velocity, vis_velocity, hid_velocity
    (ndarrays of the same shapes).

    learning_rate (DeepLearnToolbox's alpha) and momentum default to the
    values of test_example_DBN (1 and 0). k: Gibbs steps per update (CD-k);
    persistent=True for persistent CD. init: 'zeros' (DeepLearnToolbox's
    dbnsetup) or 'normal' (N(0, 0.01^2), Hinton's practical guide).
    seed: one integer for the whole run (shuffling uses a NumPy Generator
    seeded with it, the Gibbs samplers a CounterRNG keyed by it); None
    draws one. errors: mean reconstruction error of each epoch of train().
    """

    def __init__(self, n_visible, n_hidden, learning_rate=1.0, momentum=0.0,
                 weight_decay=0.0, k=1, persistent=False, init="zeros",
                 dtype=np.float32, seed=None):
        for name, value in (("n_visible", n_visible),
                            ("n_hidden", n_hidden), ("k", k)):
            if isinstance(value, bool) or not isinstance(
                    value, (int, np.integer)) or value < 1:
                raise ValueError(f"RBM: {name} must be a positive integer, "
                                 f"got {value!r}")
        for name, value in (("learning_rate", learning_rate),
                            ("momentum", momentum),
                            ("weight_decay", weight_decay)):
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"RBM: {name} must be a finite number >= 0,"
                                 f" got {value!r}")
        if init not in _INITS:
            raise ValueError(f"RBM: init must be one of {_INITS}, got "
                             f"{init!r}")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"RBM: dtype must be float32 or float64, got "
                            f"{self.dtype}")
        if seed is None:
            seed = int(np.random.default_rng().integers(2 ** 63))
        self.n_visible, self.n_hidden = int(n_visible), int(n_hidden)
        self.learning_rate, self.momentum = float(learning_rate), float(
            momentum)
        self.weight_decay, self.k = float(weight_decay), int(k)
        self.persistent, self.seed = bool(persistent), int(seed)
        self.generator = np.random.default_rng(self.seed)
        self.sampler = CounterRNG(self.seed)
        shape = (self.n_hidden, self.n_visible)
        if init == "zeros":
            weight = np.zeros(shape, self.dtype)
        else:
            weight = (0.01 * self.generator.standard_normal(shape)).astype(
                self.dtype)
        self.weight = Tensor(aligned(weight))
        self.vis_bias = Tensor(np.zeros(self.n_visible, self.dtype))
        self.hid_bias = Tensor(np.zeros(self.n_hidden, self.dtype))
        self.weight_velocity = aligned(np.zeros(shape, self.dtype))
        self.vis_velocity = np.zeros(self.n_visible, self.dtype)
        self.hid_velocity = np.zeros(self.n_hidden, self.dtype)
        self.chain = None  # persistent CD: the negative chain's visibles
        self.errors = []

    def __repr__(self):
        mode = "PCD" if self.persistent else "CD"
        return (f"RBM({self.n_visible}, {self.n_hidden}, {mode}-{self.k}, "
                f"learning_rate={self.learning_rate}, momentum="
                f"{self.momentum}, weight_decay={self.weight_decay}, "
                f"dtype={self.dtype.name})")

    # -- training ---------------------------------------------------------
    def _check(self, name, x):
        return check_binary_input(f"RBM.{name}", x, self.n_visible,
                                  self.dtype)

    def _params(self):
        return self.weight, self.vis_bias, self.hid_bias

    def step(self, batch):
        """One CD-k (or PCD-k) update on `batch` (n, n_visible) in [0, 1].
        Returns the reconstruction error sum((v1 - v2)^2) / n, with v2 the
        sampled one-step reconstruction (the chain end for CD-k)."""
        batch = self._check("step", batch)
        return self._step(batch)

    def _step(self, batch):
        n = batch.shape[0]
        if n == 0:
            raise ValueError("RBM.step: empty batch")
        if not self.persistent:
            chain = sampling.rbm_gibbs(batch, *self._params(), self.k,
                                       self.sampler.take())
            negative_v, negative_h = chain.vk_samples, chain.hk_probs
        else:
            data = sampling.rbm_gibbs(batch, *self._params(), 1,
                                      self.sampler.take())
            if self.chain is None or self.chain.shape[0] < n:
                self._start_chain(n)
            chain = sampling.rbm_gibbs(self.chain[:n], *self._params(),
                                       self.k, self.sampler.take())
            self.chain[:n] = chain.vk_samples
            negative_v, negative_h = chain.vk_samples, chain.hk_probs
            reconstruction = data.vk_samples
        squares = sampling.rbm_cd_update(
            batch, chain.h0_samples if not self.persistent
            else data.h0_samples, negative_v, negative_h, *self._params(),
            (self.weight_velocity, self.vis_velocity, self.hid_velocity),
            self.learning_rate, self.momentum, self.weight_decay)
        if self.persistent:  # the error of the data's own reconstruction
            difference = batch - reconstruction
            squares = np.einsum("ij,ij->", difference, difference,
                                dtype=np.float64)
        return float(squares) / n

    def _start_chain(self, n):
        """Persistent chains start from uniform random binary visibles."""
        start = sampling.uniform((n, self.n_visible), self.sampler,
                                 self.dtype)
        self.chain = (start < 0.5).astype(self.dtype)

    def train(self, x, epochs=1, batch_size=100, progress=False):
        """rbmtrain: `epochs` passes over x (n, n_visible), values in
        [0, 1], in mini-batches of `batch_size` rows of a fresh random
        permutation per epoch (the last batch is smaller when batch_size
        does not divide n). Appends and returns the mean reconstruction
        error of each epoch."""
        x = self._check("train", x)
        n = x.shape[0]
        if n == 0:
            raise ValueError("RBM.train: no training samples")
        for name, value in (("epochs", epochs), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(
                    value, (int, np.integer)) or value < 1:
                raise ValueError(f"RBM.train: {name} must be a positive "
                                 f"integer, got {value!r}")
        n_batches = -(-n // batch_size)
        history = []
        for epoch in range(epochs):
            order = self.generator.permutation(n)
            total = 0.0
            for b in range(n_batches):
                rows = order[b * batch_size:(b + 1) * batch_size]
                total += self._step(x[rows])
            history.append(total / n_batches)
            if progress:
                print(f"epoch {epoch + 1}/{epochs}. Average reconstruction "
                      f"error is: {history[-1]:.4f}")
        self.errors.extend(history)
        return history

    # -- inference ----------------------------------------------------------
    def transform(self, v):
        """rbmup: hidden probabilities sigmoid(v W^T + c), (n, n_hidden)."""
        v = self._check("transform", v)
        with no_grad():
            return ops.linear(v, self.weight, self.hid_bias,
                              activation="sigmoid").data

    def reconstruct(self, v):
        """Mean-field reconstruction sigmoid(sigmoid(v W^T + c) W + b)."""
        hidden = self.transform(v)
        with no_grad():
            return ops.sigmoid(ops.matmul(hidden, self.weight)
                               + self.vis_bias).data

    def free_energy(self, v):
        """F(v) = -v.b - sum_j log(1 + exp(c_j + W_j.v)), (n,) float64;
        p(v) is proportional to exp(-F(v))."""
        v = self._check("free_energy", v)
        with no_grad():
            pre = ops.linear(v, self.weight, self.hid_bias).data
        linear_term = v.astype(np.float64) @ self.vis_bias.data.astype(
            np.float64)
        return -linear_term - np.logaddexp(0.0, pre.astype(np.float64)).sum(1)

    def sample(self, n, steps=1000, start=None):
        """n visible samples after `steps` Gibbs steps, each chain started
        from `start` (n, n_visible) or from uniform random bits. Returns
        binary (n, n_visible) of the model dtype."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or \
                n < 0:
            raise ValueError(f"RBM.sample: n must be an integer >= 0, got "
                             f"{n!r}")
        if isinstance(steps, bool) or not isinstance(
                steps, (int, np.integer)) or steps < 1:
            raise ValueError(f"RBM.sample: steps must be a positive integer,"
                             f" got {steps!r}")
        if start is None:
            start = (sampling.uniform((n, self.n_visible), self.sampler,
                                 self.dtype) < 0.5).astype(self.dtype)
        else:
            start = self._check("sample", start)
            if start.shape[0] != n:
                raise ValueError(f"RBM.sample: start has {start.shape[0]} "
                                 f"rows, expected n = {n}")
        chain = sampling.rbm_gibbs(start, *self._params(), int(steps),
                              self.sampler.take())
        return chain.vk_samples

    def log_partition(self):
        """Exact log Z by summing over the 2^n_hidden hidden states (float64;
        for n_hidden <= 20): Z = sum_h exp(c.h) prod_i (1 + exp(b_i +
        (W^T h)_i))."""
        if self.n_hidden > 20:
            raise ValueError(f"RBM.log_partition: 2^{self.n_hidden} hidden "
                             "states are too many to enumerate (max 20)")
        states = ((np.arange(2 ** self.n_hidden)[:, None]
                   >> np.arange(self.n_hidden)) & 1).astype(np.float64)
        weight = self.weight.data.astype(np.float64)
        terms = states @ self.hid_bias.data.astype(np.float64) + np.logaddexp(
            0.0, states @ weight + self.vis_bias.data).sum(1)
        top = terms.max()
        return float(top + np.log(np.exp(terms - top).sum()))

    def log_likelihood(self, v):
        """Mean exact log p(v) over the rows of v (small n_hidden only)."""
        return float(np.mean(-self.free_energy(v)) - self.log_partition())

    # -- checkpoints --------------------------------------------------------
    def state_arrays(self):
        """name -> ndarray of everything a resumed run needs."""
        chain = self.chain if self.chain is not None else np.zeros(
            (0, self.n_visible), self.dtype)
        return {"weight": self.weight.data, "vis_bias": self.vis_bias.data,
                "hid_bias": self.hid_bias.data,
                "weight_velocity": self.weight_velocity,
                "vis_velocity": self.vis_velocity,
                "hid_velocity": self.hid_velocity,
                "chain": chain,
                "errors": np.asarray(self.errors, np.float64),
                "sampler_counter": np.asarray(self.sampler.counter,
                                              np.uint64),
                "generator": io.generator_state(self.generator)}

    def _meta(self):
        return {"class": "RBM", "n_visible": self.n_visible,
                "n_hidden": self.n_hidden, "seed": self.seed,
                "dtype": self.dtype.name}

    def save(self, path):
        """Write a checkpoint (atomic, pickle-free .npz)."""
        io.save_checkpoint(path, self.state_arrays(), meta=self._meta())

    def load(self, path):
        """Restore a checkpoint of an RBM of the same sizes and dtype; a
        mismatched or corrupt file raises and leaves this RBM untouched."""
        arrays, meta = io.load_checkpoint(path)
        self._restore(path, arrays, meta)

    def _restore(self, path, arrays, meta):
        """Validate `arrays` (flat names of state_arrays) then assign."""
        current = io.flatten(self.state_arrays())
        problems = [f"missing {name!r}" for name in sorted(
            set(current) - set(arrays))]
        problems += [f"unexpected {name!r}" for name in sorted(
            set(arrays) - set(current))]
        for name in sorted(set(current) & set(arrays)):
            want, got = np.asarray(current[name]), np.asarray(arrays[name])
            same_shape = got.shape == want.shape or name in ("chain",
                                                             "errors")
            same_dtype = got.dtype == want.dtype or (
                want.dtype.kind in "US" and got.dtype.kind == want.dtype.kind)
            if not (same_shape and same_dtype):
                problems.append(f"{name!r} is {got.shape} {got.dtype}, "
                                f"expected {want.shape} {want.dtype}")
        chain = np.asarray(arrays.get("chain", np.zeros((0, 0))))
        if chain.ndim != 2 or chain.shape[1] != self.n_visible:
            problems.append(f"'chain' is {chain.shape}, expected (n, "
                            f"{self.n_visible})")
        if problems:
            raise io.CheckpointError(f"RBM.load: {path} does not fit "
                                     f"{self!r}: " + "; ".join(problems))
        generator = io.restore_generator(arrays["generator"])
        for name in ("weight", "vis_bias", "hid_bias", "weight_velocity",
                     "vis_velocity", "hid_velocity"):
            current[name][...] = arrays[name]
        self.chain = chain.copy() if chain.shape[0] else None
        self.errors = [float(e) for e in arrays["errors"]]
        self.seed = int(meta.get("seed", self.seed))
        self.sampler = CounterRNG(self.seed, int(arrays["sampler_counter"]))
        self.generator = generator
