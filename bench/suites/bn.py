"""Batch normalisation vs batch size: test error of the same MLP with and
without BatchNorm (and with ghost batches) after a fixed number of samples.

The question (Ioffe & Szegedy 2015; Hoffer, Hubara & Soudry 2017): batch
normalisation is the one layer whose arithmetic depends on the batch size.
With tiny batches its statistics are noise and accuracy drops; with large
ones, normalising over small "ghost" batches keeps the regularising noise.

Workload: MLP 784-100-100-10 on mnist10k (8,000 train / 2,000 test),
hidden layers x @ W.T + b -> [BatchNorm] -> ReLU, softmax cross-entropy
(mean over the batch), SGD momentum 0.9, no weight decay; learning rate by
the square-root rule lr(B) = base_lr * sqrt(B / base_batch_size)
(cfg.base_lr = 0.05 at cfg.base_batch_size = 32 by default); every run sees
the same number of samples (SAMPLES, in shuffled epochs, full batches only)
and starts from the same weights. Variants: "plain" (no BatchNorm), "bn"
(BatchNorm, batch statistics), "ghost32" (BatchNorm with ghost batches of
32, at the batch sizes above 32). Test error in evaluation mode (running
statistics), mean over SEEDS seeds (data order and initial weights).
"""
import math
import time

import numpy as np

from bench import common

NAME = "bn"
DEFAULT_BATCH_SIZES = [2, 4, 8, 32, 128, 512]
QUICK_BATCH_SIZES = [4, 32, 512]
GHOST_BATCH_SIZE = 32
SIZES = (784, 100, 100, 10)
MOMENTUM = 0.9
#: Samples seen by every run (5 epochs of mnist10k) and in --quick.
SAMPLES, QUICK_SAMPLES = 40000, 8000
SEEDS, QUICK_SEEDS = 2, 1
VARIANTS = ("plain", "bn", "ghost32")

COLUMNS = [("variant", "variant", None), ("batch_size", "batch", None),
           ("lr", "lr", ".4f"), ("steps", "steps", None),
           ("test_error_pct", "test error %", ".2f"),
           ("test_error_min_pct", "min %", ".2f"),
           ("test_error_max_pct", "max %", ".2f"),
           ("train_loss", "last-epoch loss", ".3f"),
           ("samples_per_s", "samples/s", ".0f")]


def fastgrad_missing():
    """None when everything the suite needs is importable and works, else
    a message saying what is missing."""
    try:
        import fastgrad
        from fastgrad import ops
        from fastgrad.models.layers import BatchNorm  # noqa: F401
        x = fastgrad.tensor(np.ones((2, 3), np.float32))
        ops.linear(x, fastgrad.tensor(np.ones((2, 3), np.float32)))
        ops.batch_norm(x, None, None, None, None, True)
    except Exception as error:  # report, do not fail the whole bench run
        return f"{type(error).__name__}: {error}"
    return None


class SqrtRuleSGD:
    """Fallback when fastgrad.optim is not there: SGD with momentum
    (v <- m v + g, w <- w - lr v; PyTorch's convention) and
    lr = base_lr * sqrt(B / base_batch_size)."""

    def __init__(self, params, lr, momentum, base_batch_size):
        self.params, self.lr, self.momentum = params, lr, momentum
        self.base_batch_size = base_batch_size
        self.velocity = [np.zeros_like(p.data) for p in params]

    def zero_grad(self):
        for param in self.params:
            param.grad = None

    def step(self, batch_size):
        lr = self.lr * math.sqrt(batch_size / self.base_batch_size)
        for param, velocity in zip(self.params, self.velocity):
            velocity *= self.momentum
            velocity += param.grad
            param.data -= param.data.dtype.type(lr) * velocity


def make_optimizer(params, base_lr, base_batch_size):
    """fastgrad.optim.SGD with the square-root rule, or the fallback."""
    try:
        from fastgrad.optim import SGD
    except ImportError:
        return SqrtRuleSGD(params, base_lr, MOMENTUM, base_batch_size), False
    return SGD(params, lr=base_lr, momentum=MOMENTUM, lr_scaling="sqrt",
               base_batch_size=base_batch_size), True


class MLP:
    """784-100-100-10 MLP; hidden layers linear -> [BatchNorm] -> ReLU.

    batch_norm: add a BatchNorm after each hidden affine map (the affine
    bias is then dropped: BatchNorm's shift replaces it). Parameters start
    from the given seed (He-uniform weights, zero biases)."""

    def __init__(self, dtype, seed, batch_norm=False, ghost_batch_size=None):
        import fastgrad
        from fastgrad import ops
        from fastgrad.models.layers import BatchNorm
        self.fastgrad, self.ops = fastgrad, ops
        rng = np.random.default_rng(seed)
        self.layers = []
        for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
            bound = math.sqrt(6.0 / fan_in)
            weight = fastgrad.tensor(
                rng.uniform(-bound, bound, (fan_out, fan_in)), dtype,
                requires_grad=True)
            hidden = fan_out != SIZES[-1]
            norm = (BatchNorm(fan_out, ghost_batch_size=ghost_batch_size,
                              dtype=dtype) if batch_norm and hidden else None)
            bias = (None if norm is not None else fastgrad.tensor(
                np.zeros(fan_out), dtype, requires_grad=True))
            self.layers.append((weight, bias, norm))
        self.parameters = []
        for weight, bias, norm in self.layers:
            self.parameters += [weight] + ([bias] if bias is not None else [])
            self.parameters += norm.parameters() if norm is not None else []

    def train(self, mode=True):
        for _, _, norm in self.layers:
            if norm is not None:
                norm.train(mode)

    def logits(self, x):
        ops = self.ops
        for index, (weight, bias, norm) in enumerate(self.layers):
            last = index == len(self.layers) - 1
            if last or norm is None:
                x = ops.linear(x, weight, bias,
                               activation="none" if last else "relu")
            else:
                x = ops.relu(norm(ops.linear(x, weight)))
        return x

    def error(self, x, labels, chunk=1000):
        """Test error (fraction) in evaluation mode."""
        self.train(False)
        wrong = 0
        with self.fastgrad.no_grad():
            for start in range(0, len(x), chunk):
                logits = self.logits(x[start:start + chunk]).numpy()
                wrong += int((logits.argmax(1)
                              != labels[start:start + chunk]).sum())
        self.train(True)
        return wrong / len(x)


def index_stream(n_train, batch_size, samples, seed):
    """Index arrays of `samples // batch_size` full batches, cut from
    consecutive shuffled epochs (so every run sees the same number of
    samples, and no batch is partial)."""
    rng = np.random.default_rng(seed)
    n_steps = samples // batch_size
    epochs = math.ceil(n_steps * batch_size / n_train)
    order = np.concatenate([rng.permutation(n_train) for _ in range(epochs)])
    return order[:n_steps * batch_size].reshape(n_steps, batch_size)


def train_one(data, variant, batch_size, dtype, seed, samples, base_lr,
              base_batch_size):
    """Train one model; returns a dict of its figures."""
    model = MLP(dtype, seed, batch_norm=variant != "plain",
                ghost_batch_size=(GHOST_BATCH_SIZE if variant == "ghost32"
                                  else None))
    optimizer, library_sgd = make_optimizer(model.parameters, base_lr,
                                            base_batch_size)
    x_train = data.x_train.astype(dtype)
    y_train = data.y_train
    batches = index_stream(len(x_train), batch_size, samples, seed)
    steps_per_epoch = max(1, len(x_train) // batch_size)
    losses = []
    start = time.perf_counter()
    for indices in batches:
        x = model.fastgrad.tensor(x_train[indices])
        loss = model.ops.softmax_cross_entropy(model.logits(x),
                                               y_train[indices])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step(batch_size=batch_size)
        losses.append(float(loss.item()))
    seconds = time.perf_counter() - start
    error = model.error(data.x_test.astype(dtype), data.y_test)
    return {"test_error": error, "seconds": seconds,
            "train_loss": float(np.mean(losses[-steps_per_epoch:])),
            "finite": bool(np.isfinite(losses).all()),
            "optimizer": "fastgrad.optim.SGD" if library_sgd
            else "local SqrtRuleSGD"}


def run(cfg):
    progress = cfg.progress
    batch_sizes = cfg.batch_sizes or (QUICK_BATCH_SIZES if cfg.quick
                                      else DEFAULT_BATCH_SIZES)
    samples = QUICK_SAMPLES if cfg.quick else SAMPLES
    n_seeds = QUICK_SEEDS if cfg.quick else SEEDS
    base_lr = getattr(cfg, "base_lr", 0.05)
    base_batch_size = getattr(cfg, "base_batch_size", 32)
    seed0 = getattr(cfg, "seed", 0)
    data = common.get_dataset(cfg, prefer=("mnist10k",))
    print(f"bn: MLP {'-'.join(map(str, SIZES))} with/without BatchNorm on "
          f"{data.describe()}; {samples} samples per run, {n_seeds} seed(s), "
          f"lr = {base_lr} * sqrt(B / {base_batch_size}), momentum "
          f"{MOMENTUM}")
    if not data.real:
        print("note: mnist10k not found; synthetic data, the errors mean "
              "little")
    missing = fastgrad_missing()
    if missing:
        print(f"note: fastgrad cannot run the bn suite yet ({missing}); "
              f"skipped")
        return []
    rows = []
    for n_threads in cfg.threads:
        with common.threads(n_threads):
            for batch_size in batch_sizes:
                for variant in VARIANTS:
                    if variant == "ghost32" and batch_size <= GHOST_BATCH_SIZE:
                        continue
                    progress(f"bn: {n_threads} thread(s), batch {batch_size}, "
                             f"{variant}")
                    runs = [train_one(data, variant, batch_size, cfg.dtype,
                                      seed0 + k, samples, base_lr,
                                      base_batch_size)
                            for k in range(n_seeds)]
                    errors = [r["test_error"] for r in runs]
                    seconds = sum(r["seconds"] for r in runs)
                    rows.append({
                        "suite": NAME, "framework": "fastgrad",
                        "variant": variant, "batch_size": int(batch_size),
                        "dtype": str(cfg.dtype), "threads": int(n_threads),
                        "samples_per_s": samples * len(runs) / seconds,
                        "lr": base_lr * math.sqrt(batch_size
                                                  / base_batch_size),
                        "steps": samples // batch_size,
                        "samples_seen": samples, "seeds": len(runs),
                        "test_error": float(np.mean(errors)),
                        "test_errors": errors,
                        "test_error_pct": 100 * float(np.mean(errors)),
                        "test_error_min_pct": 100 * min(errors),
                        "test_error_max_pct": 100 * max(errors),
                        "train_loss": float(np.mean(
                            [r["train_loss"] for r in runs])),
                        "diverged": not all(r["finite"] for r in runs),
                        "optimizer": runs[0]["optimizer"],
                        "data": data.name})
    common.print_table(
        f"Test error after {samples} samples, MLP "
        f"{'-'.join(map(str, SIZES))} +/- BatchNorm ({data.name}, "
        f"{cfg.dtype}, mean of {n_seeds} seed(s); lr sqrt rule)",
        rows, COLUMNS)
    plot_errors(cfg.out_dir / "bn_test_error.png", rows, samples, data.name)
    return rows


def plot_errors(path, rows, samples, data_name):
    """Test error (%) against batch size, one line per variant (and per
    thread count when several)."""
    thread_counts = sorted({row["threads"] for row in rows})
    series = {}
    for row in sorted(rows, key=lambda r: r["batch_size"]):
        label = {"plain": "no BatchNorm", "bn": "BatchNorm",
                 "ghost32": "ghost BatchNorm (32)"}[row["variant"]]
        if len(thread_counts) > 1:
            label += f" ({row['threads']} thr)"
        xs, ys = series.setdefault(label, ([], []))
        xs.append(row["batch_size"])
        ys.append(row["test_error_pct"])
    try:
        saved = common.plot_panels(path, [{
            "title": f"test error after {samples} samples ({data_name})",
            "ylabel": "test error (%)", "logy": False, "series": series}])
        print(f"plot: {saved}")
    except ImportError:
        print("note: matplotlib is not installed; no plot")
