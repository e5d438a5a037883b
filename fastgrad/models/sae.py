"""Stacked (denoising) autoencoders as DeepLearnToolbox's saesetup and
saetrain, and the network they initialise (test_example_SAE).

SAE([784, 100, 50]) holds one autoencoder NN([784, 100, 784]) and one
NN([100, 50, 100]); fit() trains them greedily, each on the hidden
activations of the one before (test mode: no input masking, no dropout
masks), reconstructing its own input with the toolbox's 0.5 * sum(e^2) /
batch loss. to_nn() builds an NN whose first layers are the encoders.
"""
import numpy as np

from fastgrad.models.nn import NN, _progress_printer

__all__ = ["SAE"]

CHECKPOINT_KIND = "fastgrad.models.SAE"


class SAE:
    """Stacked autoencoders (saesetup).

    sizes: [n_inputs, hidden_1, hidden_2, ...]; autoencoder i is
        NN([sizes[i], sizes[i+1], sizes[i]], **options).
    seed: one integer seeds every autoencoder and to_nn() (None: fresh).
    options: NN hyper-parameters given to every autoencoder (DeepLearnToolbox
        sets sae.ae{i}.<field>; here pass activation='sigm',
        learning_rate=1, input_zero_masked_fraction=0.5, ... or change
        self.autoencoders[i] before fit()).
    """

    def __init__(self, sizes, seed=None, dtype="float32", **options):
        sizes = [int(size) for size in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"SAE: sizes must list at least 2 layer widths "
                             f">= 1, got {sizes}")
        self.sizes = sizes
        self.dtype = np.dtype(dtype)
        children = np.random.SeedSequence(seed).spawn(len(sizes))
        self.nn_seed = _int_seed(children[-1])  # to_nn's default seed
        self.autoencoders = [
            NN([n_in, n_hidden, n_in], seed=_int_seed(child), dtype=dtype,
               **options)
            for n_in, n_hidden, child in zip(sizes[:-1], sizes[1:],
                                             children)]

    def fit(self, x, epochs=1, batch_size=100, progress=True,
            evaluate_train=False):
        """saetrain: train each autoencoder on the codes of the one below.
        x: (n_samples, sizes[0]). Each autoencoder's history keeps its
        mini-batch losses; evaluate_train=True adds the full-batch
        reconstruction loss after every epoch (an extra forward pass).
        Returns self."""
        say = _progress_printer(progress)
        codes = np.asarray(x)
        for i, autoencoder in enumerate(self.autoencoders):
            say(f"Training AE {i + 1}/{len(self.autoencoders)}")
            autoencoder.fit(codes, codes, epochs=epochs,
                            batch_size=batch_size, progress=progress,
                            evaluate_train=evaluate_train)
            codes = autoencoder.hidden_activations(codes)[0]
        return self

    def encode(self, x):
        """The codes of the last autoencoder, (n, sizes[-1])."""
        codes = np.asarray(x)
        for autoencoder in self.autoencoders:
            codes = autoencoder.hidden_activations(codes)[0]
        return codes

    def to_nn(self, output_size, seed=None, **options):
        """An NN(sizes + [output_size]) whose layer i starts from the encoder
        of autoencoder i (weights and bias; DeepLearnToolbox's nn.W{i} =
        sae.ae{i}.W{1}); the output layer is initialised as nnsetup.
        options: NN hyper-parameters (activation defaults to the
        autoencoders'); seed defaults to one derived from the SAE's."""
        options.setdefault("activation", self.autoencoders[0].activation)
        options.setdefault("dtype", self.dtype)
        if seed is None:
            seed = self.nn_seed
        net = NN(self.sizes + [int(output_size)], seed=seed, **options)
        for i, autoencoder in enumerate(self.autoencoders):
            net.weights[i].data[...] = autoencoder.weights[0].data
            net.biases[i].data[...] = autoencoder.biases[0].data
        return net

    def save(self, path):
        """One checkpoint (fastgrad.io) of every autoencoder: parameters,
        optimiser and RNG states, histories; see NN.save."""
        from fastgrad import io
        arrays, metas = {}, []
        for i, autoencoder in enumerate(self.autoencoders):
            arrays[f"ae{i}"], meta = autoencoder._checkpoint()
            metas.append(meta)
        io.save_checkpoint(path, arrays, meta={
            "kind": CHECKPOINT_KIND, "sizes": self.sizes,
            "nn_seed": self.nn_seed, "autoencoders": metas})

    def load(self, path):
        """Restore a checkpoint of an SAE of the same sizes; every
        autoencoder is validated before any is changed (a bad file raises
        fastgrad.io.CheckpointError). Returns self."""
        from fastgrad import io
        arrays, meta = io.load_checkpoint(path)
        if meta.get("kind") != CHECKPOINT_KIND:
            raise io.CheckpointError(f"{path}: not a {CHECKPOINT_KIND} "
                                     f"checkpoint (kind {meta.get('kind')!r})")
        if meta.get("sizes") != self.sizes or len(
                meta.get("autoencoders", ())) != len(self.autoencoders):
            raise io.CheckpointError(f"{path}: checkpoint of an SAE of sizes "
                                     f"{meta.get('sizes')}, this one has "
                                     f"{self.sizes}")
        appliers = []
        for i, (autoencoder, ae_meta) in enumerate(
                zip(self.autoencoders, meta["autoencoders"])):
            prefix = f"ae{i}/"
            own = {name[len(prefix):]: value for name, value in arrays.items()
                   if name.startswith(prefix)}
            appliers.append(autoencoder._prepare_restore(path, own, ae_meta))
        for apply in appliers:
            apply()
        self.nn_seed = int(meta["nn_seed"])
        return self

    def __repr__(self):
        return f"SAE(sizes={self.sizes}, dtype={self.dtype.name})"


def _int_seed(sequence):
    return int(sequence.generate_state(1, np.uint64)[0])
