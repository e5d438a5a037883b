"""Gradient noise scale: the critical batch size predicted during training.

McCandlish et al. (2018), "An Empirical Model of Large-Batch Training":
the simple noise scale B_simple = tr(Sigma) / |G|^2 (Sigma the per-sample
gradient covariance, G the true gradient) predicts the critical batch size,
past which growing the batch stops cutting the number of steps. Appendix A
estimates both terms without per-sample gradients, from the squared norms of
the mean gradient at two batch sizes B_small < B_big, E|G_B|^2 = |G|^2 +
tr(Sigma) / B:

    |G|^2     ~ (B_big |G_big|^2 - B_small |G_small|^2) / (B_big - B_small)
    tr(Sigma) ~ (|G_small|^2 - |G_big|^2) / (1 / B_small - 1 / B_big)

Each estimate is unbiased but noisy; their exponential moving averages are
divided to give B_simple. Here the MLP of the mlp suite trains on mnist10k at
the base batch size and learning rate (--base-batch-size, --base-lr); every
MEASURE_EVERY steps fastgrad's autodiff computes the gradient on fresh
random batches of B_small and B_big samples (no update). The suite prints
B_simple as training progresses, next to the time-optimal batch size the
tta suite measured in the same run (run `--suite tta,noise`).
"""
import numpy as np

from bench import common, peers
from bench.suites import mlp

NAME = "noise"
B_SMALL = 32
B_BIG = 1024
MEASURE_EVERY = 10       # steps between two gradient-norm measurements
EMA_DECAY = 0.9
EPOCHS = 3.0
QUICK_EPOCHS = 0.5
REPORT_SAMPLES = 2000    # a table row every this many training samples


def unbiased_estimates(sq_norm_small, sq_norm_big, b_small, b_big):
    """(|G|^2, tr(Sigma)) estimates from the squared norms of mean gradients
    over batches of b_small and b_big samples (McCandlish et al. 2018,
    appendix A, eqs. A.2 and A.3)."""
    if not 0 < b_small < b_big:
        raise ValueError(f"unbiased_estimates: need 0 < b_small < b_big, got "
                         f"{b_small} and {b_big}")
    gradient_sq = ((b_big * sq_norm_big - b_small * sq_norm_small)
                   / (b_big - b_small))
    trace_sigma = ((sq_norm_small - sq_norm_big)
                   / (1.0 / b_small - 1.0 / b_big))
    return gradient_sq, trace_sigma


class GradientNoiseEstimator:
    """Moving averages of the two unbiased estimates and their ratio.

    update(sq_norm_small, sq_norm_big) after each measurement; b_simple is
    EMA(tr Sigma) / EMA(|G|^2) (None before the first update or while the
    |G|^2 average is not positive). The averages are bias-corrected like
    Adam's, which does not change their ratio but keeps each readable."""

    def __init__(self, b_small, b_big, decay=EMA_DECAY):
        if not 0 < b_small < b_big:
            raise ValueError(f"GradientNoiseEstimator: need 0 < b_small < "
                             f"b_big, got {b_small} and {b_big}")
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"GradientNoiseEstimator: decay must be in "
                             f"[0, 1), got {decay}")
        self.b_small, self.b_big, self.decay = b_small, b_big, decay
        self._gradient_sq = self._trace_sigma = 0.0
        self.count = 0

    def update(self, sq_norm_small, sq_norm_big):
        gradient_sq, trace_sigma = unbiased_estimates(
            sq_norm_small, sq_norm_big, self.b_small, self.b_big)
        keep = self.decay
        self._gradient_sq = keep * self._gradient_sq + (1 - keep) * gradient_sq
        self._trace_sigma = keep * self._trace_sigma + (1 - keep) * trace_sigma
        self.count += 1
        return self.b_simple

    def _corrected(self, value):
        return value / (1.0 - self.decay ** self.count) if self.count else None

    @property
    def gradient_sq(self):
        return self._corrected(self._gradient_sq)

    @property
    def trace_sigma(self):
        return self._corrected(self._trace_sigma)

    @property
    def b_simple(self):
        if not self.count or self._gradient_sq <= 0:
            return None
        return self._trace_sigma / self._gradient_sq


def squared_norm(gradients):
    """Sum of squares of all gradient entries (float64)."""
    return float(sum(np.vdot(g.ravel().astype(np.float64, copy=False),
                             g.ravel().astype(np.float64, copy=False))
                     for g in gradients))


def numpy_gradients(model, x, labels):
    """Gradients of the NumPy MLP without an update (fallback)."""
    probe = peers.NumpyMLP([(model.w1, model.b1), (model.w2, model.b2)],
                           lr=1.0, momentum=0.0, weight_decay=0.0)
    before = [p.copy() for p in probe.params]
    probe.step(x, labels)
    return [b - a for b, a in zip(before, probe.params)]


def run(cfg):
    progress = cfg.progress
    b_small = cfg.base_batch_size if cfg.base_batch_size else B_SMALL
    b_big = max(B_BIG, 4 * b_small)
    data = common.get_dataset(cfg)
    data = data.astype(np.dtype(cfg.dtype))
    if b_big > len(data.x_train):
        b_big = len(data.x_train)
    epochs = QUICK_EPOCHS if cfg.quick else EPOCHS
    missing = mlp.fastgrad_missing()
    if missing:
        print(f"note: {missing}; the noise scale is measured on the NumPy "
              f"MLP")
    params = peers.init_params(mlp.SIZES, np.dtype(cfg.dtype), seed=cfg.seed)
    if missing:
        model = peers.NumpyMLP(params, cfg.base_lr, mlp.MOMENTUM,
                               mlp.WEIGHT_DECAY)
        framework = "numpy"

        def gradients(x, labels):
            return numpy_gradients(model, x, labels)

        def accuracy():
            return float((model.predict(data.x_test) == data.y_test).mean())
    else:
        model = mlp.FastgradMLP(params, lr=cfg.base_lr)
        framework = "fastgrad"
        gradients = model.gradients

        def accuracy():
            return model.accuracy(data.x_test, data.y_test)
    print(f"Gradient noise scale (McCandlish et al. 2018, app. A), MLP "
          f"{'-'.join(map(str, mlp.SIZES))} via {framework}, trained at "
          f"batch {b_small}, lr {cfg.base_lr:g} on {data.describe()}; "
          f"|G_B|^2 at B_small={b_small} and B_big={b_big} every "
          f"{MEASURE_EVERY} steps, EMA decay {EMA_DECAY}")
    estimator = GradientNoiseEstimator(b_small, b_big)
    rng = np.random.default_rng(cfg.seed + 1)
    order_rng = np.random.default_rng(cfg.seed)
    n_samples = len(data.x_train)
    steps_per_epoch = n_samples // b_small
    total_steps = max(MEASURE_EVERY, int(epochs * steps_per_epoch))
    rows, step = [], 0
    next_report = REPORT_SAMPLES
    with common.threads(cfg.threads[0]):
        while step < total_steps:
            order = order_rng.permutation(n_samples)
            for index in range(steps_per_epoch):
                if step % MEASURE_EVERY == 0:
                    small = rng.choice(n_samples, b_small, replace=False)
                    big = rng.choice(n_samples, b_big, replace=False)
                    estimator.update(
                        squared_norm(gradients(data.x_train[small],
                                               data.y_train[small])),
                        squared_norm(gradients(data.x_train[big],
                                               data.y_train[big])))
                rows_batch = order[index * b_small:(index + 1) * b_small]
                model.step(data.x_train[rows_batch], data.y_train[rows_batch])
                step += 1
                samples = step * b_small
                if samples >= next_report or step == total_steps:
                    next_report += REPORT_SAMPLES
                    rows.append({
                        "suite": NAME, "framework": framework,
                        "batch_size": b_small, "dtype": cfg.dtype,
                        "threads": cfg.threads[0], "samples_per_s": None,
                        "step": step, "samples_seen": samples,
                        "epoch": samples / n_samples,
                        "test_accuracy": accuracy(),
                        "gradient_sq": estimator.gradient_sq,
                        "trace_sigma": estimator.trace_sigma,
                        "b_simple": estimator.b_simple,
                        "b_small": b_small, "b_big": b_big,
                        "measurements": estimator.count, "data": data.name})
                    progress(f"noise: step {step}/{total_steps}, B_simple "
                             f"{_fmt(estimator.b_simple)}")
                if step >= total_steps:
                    break
    common.print_table(
        f"Gradient noise scale during training (batch {b_small}, lr "
        f"{cfg.base_lr:g})", rows,
        [("step", "step"), ("epoch", "epoch", ".2f"),
         ("test_accuracy", "test acc", ".4f"),
         ("gradient_sq", "|G|^2", ".4g"), ("trace_sigma", "tr(Sigma)", ".4g"),
         ("b_simple", "B_simple", ".0f")])
    predicted = rows[-1]["b_simple"] if rows else None
    compare_with_tta(cfg, predicted)
    if rows:
        series = {"B_simple (EMA ratio)": ([r["samples_seen"] for r in rows],
                                           [r["b_simple"] for r in rows])}
        path = common.plot_panels(cfg.out_dir / "noise.png", [{
            "title": "simple noise scale B_simple during training",
            "xlabel": "training samples seen", "ylabel": "B_simple",
            "series": series, "log2x": False, "logy": True}])
        print(f"plot: {path}\n")
    return rows


def _fmt(value):
    return "-" if value is None else f"{value:.0f}"


def compare_with_tta(cfg, predicted):
    """Print the predicted critical batch size next to the tta suite's
    measured time-optimal batch size (and its fitted B_crit)."""
    print(f"predicted critical batch size (B_simple at the end): "
          f"{_fmt(predicted)}")
    tta_rows = (getattr(cfg, "results", {}) or {}).get("tta") or []
    if not tta_rows:
        print("measured time-optimal batch size: run `--suite tta,noise` to "
              "measure it in the same run\n")
        return
    for rule in dict.fromkeys(r["rule"] for r in tta_rows):
        row = next(r for r in tta_rows if r["rule"] == rule)
        print(f"measured with the {rule} rule: time-optimal batch size "
              f"{_fmt(row.get('time_optimal_batch_size'))}, fitted B_crit "
              f"{_fmt(row.get('fitted_b_crit'))} (steps to "
              f"{100 * row['target_accuracy']:.0f} %)")
    print()
