"""Deep belief network: a stack of binary RBMs trained greedily, layer by
layer (Hinton, Osindero & Teh 2006), as DeepLearnToolbox's dbnsetup /
dbntrain / dbnunfoldtonn.

    dbn = DBN([784, 100, 100], learning_rate=1, momentum=0, seed=0)
    dbn.train(x, epochs=1, batch_size=100)     # x (n, 784) in [0, 1]
    net = dbn.to_nn(10, activation="sigm")     # NN([784, 100, 100, 10])
"""
import numpy as np

from fastgrad import io
from fastgrad.models.rbm import RBM, check_binary_input

__all__ = ["DBN"]


class DBN:
    """Stacked RBMs: sizes = [n_visible, hidden_1, ..., hidden_L].

    rbms[i] is an RBM(sizes[i], sizes[i + 1]) with the given
    hyper-parameters (see RBM). RBM i is seeded with seed + i, so one seed
    gives the whole run. train() fits rbms[0] on x, then each next RBM on
    the previous one's hidden probabilities (rbmup), as dbntrain.
    """

    def __init__(self, sizes, learning_rate=1.0, momentum=0.0,
                 weight_decay=0.0, k=1, persistent=False, init="zeros",
                 dtype=np.float32, seed=None):
        sizes = list(sizes)
        if len(sizes) < 2 or any(
                isinstance(s, bool) or not isinstance(s, (int, np.integer))
                or s < 1 for s in sizes):
            raise ValueError(f"DBN: sizes must list at least 2 positive "
                             f"integer layer widths, got {sizes}")
        if seed is None:
            seed = int(np.random.default_rng().integers(2 ** 62))
        self.sizes = [int(s) for s in sizes]
        self.seed = int(seed)
        self.dtype = np.dtype(dtype)
        self.rbms = [RBM(n_in, n_out, learning_rate=learning_rate,
                         momentum=momentum, weight_decay=weight_decay, k=k,
                         persistent=persistent, init=init, dtype=dtype,
                         seed=self.seed + i)
                     for i, (n_in, n_out) in enumerate(zip(self.sizes[:-1],
                                                           self.sizes[1:]))]

    def __repr__(self):
        return f"DBN({self.sizes}, {self.rbms[0]!r} ...)"

    def train(self, x, epochs=1, batch_size=100, progress=False):
        """dbntrain: each RBM in turn for `epochs` epochs on the hidden
        probabilities of the one below. x: (n, sizes[0]) in [0, 1].
        Returns the reconstruction-error history of each RBM."""
        x = check_binary_input("DBN.train", x, self.sizes[0], self.dtype)
        histories = []
        for i, rbm in enumerate(self.rbms):
            if i > 0:
                x = self.rbms[i - 1].transform(x)
            if progress:
                print(f"RBM {i + 1}/{len(self.rbms)} "
                      f"({rbm.n_visible}-{rbm.n_hidden})")
            histories.append(rbm.train(x, epochs=epochs,
                                       batch_size=batch_size,
                                       progress=progress))
        return histories

    def transform(self, x):
        """Top-layer hidden probabilities (n, sizes[-1]) (rbmup through the
        stack)."""
        x = check_binary_input("DBN.transform", x, self.sizes[0], self.dtype)
        for rbm in self.rbms:
            x = rbm.transform(x)
        return x

    def to_nn(self, n_outputs=None, **nn_kwargs):
        """dbnunfoldtonn: a fastgrad.models.nn.NN of sizes + [n_outputs]
        (or sizes when n_outputs is None) whose first layers hold copies of
        the RBMs' weights W and hidden biases c; the output layer keeps
        nnsetup's random initialisation. nn_kwargs go to NN (activation,
        output, learning_rate, momentum, seed (default: this DBN's seed),
        ...); the dtype is the DBN's."""
        from fastgrad.models.nn import NN
        sizes = list(self.sizes)
        if n_outputs is not None:
            if isinstance(n_outputs, bool) or not isinstance(
                    n_outputs, (int, np.integer)) or n_outputs < 1:
                raise ValueError(f"DBN.to_nn: n_outputs must be a positive "
                                 f"integer, got {n_outputs!r}")
            sizes.append(int(n_outputs))
        nn_kwargs.setdefault("seed", self.seed)
        nn_kwargs.setdefault("dtype", self.dtype.name)
        net = NN(sizes, **nn_kwargs)
        for i, rbm in enumerate(self.rbms):
            if net.weights[i].shape != rbm.weight.shape:
                raise ValueError(f"DBN.to_nn: NN layer {i} weight "
                                 f"{net.weights[i].shape} does not match "
                                 f"RBM {rbm.weight.shape}")
            net.weights[i].data[...] = rbm.weight.data
            net.biases[i].data[...] = rbm.hid_bias.data
        return net

    # -- checkpoints --------------------------------------------------------
    def save(self, path):
        """Write all RBMs to one checkpoint (atomic, pickle-free .npz)."""
        io.save_checkpoint(
            path, {str(i): rbm.state_arrays()
                   for i, rbm in enumerate(self.rbms)},
            meta={"class": "DBN", "sizes": self.sizes, "seed": self.seed,
                  "dtype": self.dtype.name})

    def load(self, path):
        """Restore a checkpoint of a DBN of the same sizes and dtype."""
        arrays, meta = io.load_checkpoint(path)
        if meta.get("class") != "DBN" or meta.get("sizes") != self.sizes:
            raise io.CheckpointError(
                f"DBN.load: {path} holds {meta.get('class')} of sizes "
                f"{meta.get('sizes')}, expected DBN {self.sizes}")
        # Validate every layer into fresh RBMs before touching this DBN.
        loaded = []
        for i, rbm in enumerate(self.rbms):
            prefix = f"{i}/"
            layer = {name[len(prefix):]: value
                     for name, value in arrays.items()
                     if name.startswith(prefix)}
            fresh = RBM(rbm.n_visible, rbm.n_hidden, dtype=self.dtype,
                        seed=rbm.seed)
            fresh._restore(path, layer, {"seed": rbm.seed})
            loaded.append(fresh)
        for rbm, fresh in zip(self.rbms, loaded):
            rbm._restore(path, io.flatten(fresh.state_arrays()),
                         {"seed": fresh.seed})
