"""MLP 784-100-10 training step: samples/s against batch size.

The workload: tanh_opt hidden layer, softmax cross-entropy (mean over the
batch), SGD with momentum 0.5 and weight decay 1e-4, float32 by default; one
step = forward, backward and update. fastgrad runs it through its own
autodiff (ops.linear with the fused tanh_opt epilogue, ops.softmax_cross_
entropy, Tensor.backward) and its own optimiser (fastgrad.optim.SGD);
`--compare numpy,torch` adds the hand-written NumPy MLP and PyTorch eager
(bench/peers.py) side by side in the same run, in turn A B A B.
"""
import numpy as np

from bench import common, peers

NAME = "mlp"
DEFAULT_BATCH_SIZES = common.powers_of_two(1, 2048)
QUICK_BATCH_SIZES = [1, 16, 256]
SIZES = (784, 100, 10)
LEARNING_RATE = 0.05
MOMENTUM = 0.5
WEIGHT_DECAY = 1e-4
#: Distinct mini-batches cycled through during timing.
MAX_BATCHES = 32


def fastgrad_missing():
    """None when fastgrad's autodiff core and optimiser are importable, else
    a message saying what is missing."""
    import fastgrad
    missing = []
    if not hasattr(fastgrad, "tensor"):
        missing.append("fastgrad.tensor")
    try:
        from fastgrad import ops
        for name in ("linear", "softmax_cross_entropy"):
            if not hasattr(ops, name):
                missing.append(f"fastgrad.ops.{name}")
    except ImportError:
        missing.append("fastgrad.ops")
    try:
        from fastgrad.optim import SGD  # noqa: F401
    except ImportError:
        missing.append("fastgrad.optim.SGD")
    if missing:
        return "fastgrad is missing " + ", ".join(missing)
    return None


class FastgradMLP:
    """The MLP through fastgrad's autodiff and optimiser.

    params: [(weight (out, in), bias (out,)), ...] as from peers.init_params
    (copied). step(x (B, 784) ndarray or Tensor, labels (B,) int64) runs one
    training step and returns the loss Tensor. make_optimizer(parameters),
    when given, builds the optimiser instead of the default SGD."""

    def __init__(self, params, lr=LEARNING_RATE, momentum=MOMENTUM,
                 weight_decay=WEIGHT_DECAY, make_optimizer=None):
        import fastgrad
        from fastgrad import ops
        from fastgrad.optim import SGD
        self.fastgrad, self.ops = fastgrad, ops
        (w1, b1), (w2, b2) = params
        self.w1 = fastgrad.tensor(w1.copy(), requires_grad=True)
        self.b1 = fastgrad.tensor(b1.copy(), requires_grad=True)
        self.w2 = fastgrad.tensor(w2.copy(), requires_grad=True)
        self.b2 = fastgrad.tensor(b2.copy(), requires_grad=True)
        self.parameters = [self.w1, self.b1, self.w2, self.b2]
        if make_optimizer is not None:
            self.optimizer = make_optimizer(self.parameters)
        else:
            self.optimizer = SGD(self.parameters, lr=lr, momentum=momentum,
                                 weight_decay=weight_decay)

    def loss(self, x, labels):
        ops = self.ops
        hidden = ops.linear(x, self.w1, self.b1, activation="tanh_opt")
        logits = ops.linear(hidden, self.w2, self.b2)
        return ops.softmax_cross_entropy(logits, labels)

    def step(self, x, labels, batch_size=None):
        """One update; batch_size is passed to optimizer.step (needed by
        the batch-size-aware learning-rate rules)."""
        loss = self.loss(x, labels)
        self.optimizer.zero_grad()
        loss.backward()
        if batch_size is None:
            self.optimizer.step()
        else:
            self.optimizer.step(batch_size=batch_size)
        return loss

    def gradients(self, x, labels):
        """[gradient ndarray per parameter] of the mean loss on (x, labels),
        without updating."""
        for param in self.parameters:
            param.grad = None
        self.loss(x, labels).backward()
        grads = [param.grad.copy() for param in self.parameters]
        for param in self.parameters:
            param.grad = None
        return grads

    def predict(self, x):
        with self.fastgrad.no_grad():
            hidden = self.ops.linear(x, self.w1, self.b1,
                                     activation="tanh_opt")
            logits = self.ops.linear(hidden, self.w2, self.b2)
        return logits.numpy().argmax(axis=1)

    def accuracy(self, x, labels, chunk=2048):
        hits = 0
        for start in range(0, len(x), chunk):
            hits += int((self.predict(x[start:start + chunk])
                         == labels[start:start + chunk]).sum())
        return hits / len(x)


def make_impls(cfg, batch_size, data, torch, fastgrad_ok):
    """[common.Impl] for one batch size: fastgrad, then the peers asked for."""
    dtype = np.dtype(cfg.dtype)
    params = peers.init_params(SIZES, dtype, seed=cfg.seed)
    prepared = common.batches(data.x_train.astype(dtype, copy=False),
                              data.y_train, batch_size, MAX_BATCHES,
                              seed=cfg.seed)
    impls = []
    if fastgrad_ok:
        model = FastgradMLP(params)
        impls.append(common.cycling_impl(
            "fastgrad", model.step,
            [(model.fastgrad.tensor(x), y) for x, y in prepared]))
    if "numpy" in cfg.compare:
        numpy_model = peers.NumpyMLP(params, LEARNING_RATE, MOMENTUM,
                                     WEIGHT_DECAY)
        impls.append(common.cycling_impl("numpy", numpy_model.step,
                                         prepared))
    if torch is not None:
        torch_model = peers.TorchMLP(params, LEARNING_RATE, MOMENTUM,
                                     WEIGHT_DECAY)
        impls.append(common.cycling_impl(
            "torch", torch_model.step,
            [torch_model.to_torch(x, y) for x, y in prepared]))
    return impls


def run(cfg):
    progress = cfg.progress
    batch_sizes = cfg.batch_sizes or (QUICK_BATCH_SIZES if cfg.quick
                                      else DEFAULT_BATCH_SIZES)
    data = common.get_dataset(cfg)
    print(f"MLP {'-'.join(map(str, SIZES))} on {data.describe()}")
    missing = fastgrad_missing()
    if missing:
        print(f"note: {missing}; the fastgrad MLP is skipped")
    torch = None
    if "torch" in cfg.compare:
        torch = peers.torch_available()
        if torch is None:
            print("note: PyTorch is not installed; --compare torch skipped")
    if "sklearn" in cfg.compare:
        print("note: scikit-learn has no comparable MLP training step "
              "(MLPClassifier has no tanh_opt or weight decay per step); "
              "skipped")
    rows = []
    for n_threads in cfg.threads:
        with common.threads(n_threads):
            for batch_size in batch_sizes:
                impls = make_impls(cfg, batch_size, data, torch, not missing)
                if not impls:
                    print("nothing to time (fastgrad unavailable, no peers)")
                    return rows
                progress(f"mlp: {n_threads} thread(s), batch {batch_size} "
                         f"({', '.join(i.name for i in impls)})")
                timings = common.time_alternating(impls, quick=cfg.quick)
                for impl in impls:
                    rows.append(common.throughput_row(
                        NAME, impl.name, batch_size, cfg.dtype, n_threads,
                        timings[impl.name], data=data.name))
    common.add_speedups(rows)
    frameworks = [f for f in ("fastgrad", "numpy", "torch")
                  if any(r["framework"] == f for r in rows)]
    for framework in frameworks:
        common.print_table(
            f"MLP {'-'.join(map(str, SIZES))} training step, {framework}, "
            f"{cfg.dtype} ({data.name})",
            [r for r in rows if r["framework"] == framework],
            common.THROUGHPUT_COLUMNS)
    if len(frameworks) > 1:
        common.print_table(
            "MLP side by side (samples/s; ratio = fastgrad / peer, "
            "same run)", common.pivot_frameworks(rows, frameworks),
            common.side_by_side_columns(frameworks))
    return rows
