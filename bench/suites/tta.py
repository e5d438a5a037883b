"""Time to accuracy: steps, epochs and seconds to a target test accuracy
per batch size and learning-rate rule, and the time-optimal batch size.

The MLP 784-100-10 of the mlp suite (tanh_opt, softmax cross-entropy, SGD
momentum 0.5, weight decay 1e-4) is trained on mnist10k (8,000 training /
2,000 test images) for each batch size B with the learning rate of a rule
tuned at a base batch size B0 (fastgrad.optim.SGD's lr_scaling):
linear lr0 B/B0 (Goyal et al. 2017), sqrt lr0 sqrt(B/B0) (Krizhevsky 2014)
or none; when the rule raises the learning rate, it warms up linearly from
lr0 over the first epoch (Goyal et al.'s gradual warm-up,
fastgrad.optim.LinearWarmup). The test accuracy is measured every
EVAL_SAMPLES training samples (evaluation time is not counted); the run
stops at the target, after MAX_EPOCHS or MAX_SECONDS of training.

The default target is 92 %: this small net on only 8,000 images needs 10-20
epochs to pass 94 % even at a well-tuned small batch, which a sweep of ten
batch sizes cannot afford in minutes; pass --target-accuracy 0.94 for the
slow version. Steps to target follow the empirical model of McCandlish et
al. (2018), S = S_min (1 + B_crit / B): the fit of the measured steps gives a
measured critical batch size, printed next to the noise suite's prediction.
"""
import math
import time

import numpy as np

from bench import common, peers
from bench.suites import mlp

NAME = "tta"
DEFAULT_BATCH_SIZES = common.powers_of_two(2, 1024)
QUICK_BATCH_SIZES = [8, 64, 512]
DEFAULT_TARGET = 0.92
QUICK_TARGET = 0.85
MAX_EPOCHS = 40
QUICK_MAX_EPOCHS = 4
MAX_SECONDS = 90.0
QUICK_MAX_SECONDS = 15.0
EVAL_SAMPLES = 1000
WARMUP_EPOCHS = 1.0


def scaled_lr(base_lr, batch_size, base_batch_size, rule):
    """fastgrad.optim.scaled_lr (the same formula when optim is absent)."""
    try:
        from fastgrad.optim import scaled_lr as optim_scaled_lr
    except ImportError:
        ratio = batch_size / base_batch_size
        factor = {"none": 1.0, "linear": ratio, "sqrt": math.sqrt(ratio)}
        return base_lr * factor[rule]
    return optim_scaled_lr(base_lr, batch_size, base_batch_size, rule)


class FastgradTrainer:
    """fastgrad's MLP with fastgrad.optim.SGD doing the rule and warm-up."""
    framework = "fastgrad"

    def __init__(self, params, cfg, rule, batch_size, warmup_steps):
        from fastgrad.optim import SGD, LinearWarmup
        self.batch_size = batch_size
        lr = scaled_lr(cfg.base_lr, batch_size, cfg.base_batch_size, rule)
        schedule = (LinearWarmup(warmup_steps, "steps")
                    if lr > cfg.base_lr and warmup_steps > 0 else None)

        def make_optimizer(parameters):
            return SGD(parameters, lr=cfg.base_lr, momentum=mlp.MOMENTUM,
                       weight_decay=mlp.WEIGHT_DECAY,
                       base_batch_size=cfg.base_batch_size,
                       lr_scaling=rule, schedule=schedule)
        self.model = mlp.FastgradMLP(params, make_optimizer=make_optimizer)
        self.lr = lr

    def step(self, x, labels):
        self.model.step(x, labels, batch_size=self.batch_size)

    def accuracy(self, x, labels):
        return self.model.accuracy(x, labels)


class NumpyTrainer:
    """Fallback when fastgrad's core or optimiser is missing: the NumPy MLP
    with the same rule and warm-up computed here."""
    framework = "numpy"

    def __init__(self, params, cfg, rule, batch_size, warmup_steps):
        self.lr = scaled_lr(cfg.base_lr, batch_size, cfg.base_batch_size,
                            rule)
        self.base_lr = cfg.base_lr
        self.warmup_steps = warmup_steps if self.lr > cfg.base_lr else 0
        self.model = peers.NumpyMLP(params, self.lr, mlp.MOMENTUM,
                                    mlp.WEIGHT_DECAY)
        self.steps = 0

    def step(self, x, labels):
        if self.steps < self.warmup_steps:
            progress = self.steps / self.warmup_steps
            self.model.lr = self.base_lr + (self.lr - self.base_lr) * progress
        else:
            self.model.lr = self.lr
        self.steps += 1
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            loss = self.model.step(x, labels)
        if not np.isfinite(loss):
            raise FloatingPointError(f"numpy MLP: the loss is {loss}")

    def accuracy(self, x, labels):
        return float((self.model.predict(x) == labels).mean())


def train_to_target(trainer, data, batch_size, target, max_epochs,
                    max_seconds, eval_samples, seed):
    """Train until the test accuracy reaches target. Returns a dict with
    reached, diverged, steps, samples, seconds (training only) and the
    accuracy history [(steps, samples, seconds, accuracy), ...]."""
    rng = np.random.default_rng(seed)
    x_train, y_train = data.x_train, data.y_train
    n_samples = len(x_train)
    steps_per_epoch = max(1, n_samples // batch_size)  # drop the last batch
    steps = samples = 0
    seconds = 0.0
    next_eval = eval_samples
    history = []
    result = {"reached": False, "diverged": False}
    for _ in range(max_epochs):
        order = rng.permutation(n_samples)
        if batch_size > n_samples:
            order = np.resize(order, batch_size)
        start = time.perf_counter()
        for index in range(steps_per_epoch):
            rows = order[index * batch_size:(index + 1) * batch_size]
            try:
                trainer.step(x_train[rows], y_train[rows])
            except FloatingPointError:
                seconds += time.perf_counter() - start
                result["diverged"] = True
                return dict(result, steps=steps, samples=samples,
                            seconds=seconds, history=history)
            steps += 1
            samples += batch_size
            if samples < next_eval:
                continue
            seconds += time.perf_counter() - start
            accuracy = trainer.accuracy(data.x_test, data.y_test)
            history.append((steps, samples, seconds, accuracy))
            while next_eval <= samples:
                next_eval += eval_samples
            if accuracy >= target:
                result["reached"] = True
                return dict(result, steps=steps, samples=samples,
                            seconds=seconds, history=history)
            if seconds > max_seconds:
                return dict(result, steps=steps, samples=samples,
                            seconds=seconds, history=history)
            start = time.perf_counter()
        seconds += time.perf_counter() - start
    if not history or history[-1][0] != steps:
        history.append((steps, samples, seconds,
                        trainer.accuracy(data.x_test, data.y_test)))
    return dict(result, steps=steps, samples=samples, seconds=seconds,
                history=history)


def fit_critical_batch(batch_sizes, steps):
    """B_crit and S_min of S = S_min (1 + B_crit / B) (McCandlish et al.
    2018, eq. 2.11), fitted as samples E = S B = S_min B + S_min B_crit by
    least squares relative to E; None when the fit is not meaningful."""
    if len(batch_sizes) < 3:
        return None
    sizes = np.asarray(batch_sizes, dtype=float)
    samples = sizes * np.asarray(steps, dtype=float)
    slope, intercept = np.polyfit(sizes, samples, 1, w=1.0 / samples)
    if slope <= 0 or intercept <= 0:
        return None
    return {"b_crit": intercept / slope, "s_min": slope,
            "e_min": intercept}


def run(cfg):
    progress = cfg.progress
    quick = cfg.quick
    batch_sizes = cfg.batch_sizes or (QUICK_BATCH_SIZES if quick
                                      else DEFAULT_BATCH_SIZES)
    target = getattr(cfg, "target_accuracy", None) or (
        QUICK_TARGET if quick else DEFAULT_TARGET)
    rules = getattr(cfg, "lr_rules", None) or ["linear", "sqrt"]
    max_epochs = getattr(cfg, "max_epochs", None) or (
        QUICK_MAX_EPOCHS if quick else MAX_EPOCHS)
    max_seconds = QUICK_MAX_SECONDS if quick else MAX_SECONDS
    data = common.get_dataset(cfg, allow_synthetic=False)
    if data is None:
        print("tta: no real data found (mnist10k / Fashion-MNIST; set "
              "FASTGRAD_DATA or --data-dir); time-to-accuracy needs real "
              "data, skipped")
        return []
    data = data.astype(np.dtype(cfg.dtype))
    missing = mlp.fastgrad_missing()
    if missing is None:
        try:
            import fastgrad.optim  # noqa: F401
            trainer_class = FastgradTrainer
        except ImportError as error:
            missing = f"fastgrad.optim does not import ({error})"
    if missing:
        print(f"note: {missing}; time-to-accuracy runs the NumPy MLP")
        trainer_class = NumpyTrainer
    n_threads = cfg.threads[0]
    print(f"Time to {100 * target:.1f} % test accuracy, MLP "
          f"{'-'.join(map(str, mlp.SIZES))}, {trainer_class.framework}, "
          f"{data.describe()}; lr {cfg.base_lr:g} at batch "
          f"{cfg.base_batch_size}, rules {', '.join(rules)}; warm-up "
          f"{WARMUP_EPOCHS:g} epoch when the rule raises lr; evaluation "
          f"every {EVAL_SAMPLES} samples (not timed); {n_threads} thread(s)")
    rows = []
    with common.threads(n_threads):
        # Rules inner, so the runs compared side by side are close in time
        # (the load of a shared machine drifts).
        for batch_size in batch_sizes:
            for rule in rules:
                params = peers.init_params(mlp.SIZES, np.dtype(cfg.dtype),
                                           seed=cfg.seed)
                steps_per_epoch = max(1, len(data.x_train) // batch_size)
                warmup_steps = max(1, round(WARMUP_EPOCHS * steps_per_epoch))
                trainer = trainer_class(params, cfg, rule, batch_size,
                                        warmup_steps)
                progress(f"tta: rule {rule}, batch {batch_size}, lr "
                         f"{trainer.lr:.4g}")
                result = train_to_target(
                    trainer, data, batch_size, target, max_epochs,
                    max_seconds, max(EVAL_SAMPLES, batch_size), cfg.seed)
                reached = result["reached"]
                rows.append({
                    "suite": NAME, "framework": trainer.framework,
                    "batch_size": batch_size, "dtype": cfg.dtype,
                    "threads": n_threads,
                    "samples_per_s": (result["samples"] / result["seconds"]
                                      if result["seconds"] > 0 else None),
                    "rule": rule, "lr": trainer.lr, "base_lr": cfg.base_lr,
                    "base_batch_size": cfg.base_batch_size,
                    "target_accuracy": target, "reached": reached,
                    "diverged": result["diverged"],
                    "steps_to_target": result["steps"] if reached else None,
                    "epochs_to_target": (result["samples"] / len(data.x_train)
                                         if reached else None),
                    "seconds_to_target": (result["seconds"] if reached
                                          else None),
                    "steps_run": result["steps"],
                    "seconds_run": result["seconds"],
                    "final_accuracy": (result["history"][-1][3]
                                       if result["history"] else None),
                    "history": result["history"], "data": data.name,
                })
    summarise(cfg, rows, rules, target)
    return rows


def summarise(cfg, rows, rules, target):
    """Per-rule table, the time-optimal batch sizes, fitted B_crit, plot."""
    for rule in rules:
        rule_rows = [r for r in rows if r["rule"] == rule]
        for row in rule_rows:
            row["status"] = ("reached" if row["reached"] else
                             "diverged" if row["diverged"] else "not reached")
        reached = [r for r in rule_rows if r["reached"]]
        best = min(reached, key=lambda r: r["seconds_to_target"],
                   default=None)
        fit = fit_critical_batch([r["batch_size"] for r in reached],
                                 [r["steps_to_target"] for r in reached])
        for row in rule_rows:
            row["time_optimal_batch_size"] = (best["batch_size"] if best
                                              else None)
            row["fitted_b_crit"] = fit["b_crit"] if fit else None
        common.print_table(
            f"Time to {100 * target:.1f} % test accuracy, lr rule {rule!r} "
            f"(lr {cfg.base_lr:g} at batch {cfg.base_batch_size})",
            rule_rows,
            [("batch_size", "batch"), ("lr", "lr", ".4g"),
             ("steps_to_target", "steps"),
             ("epochs_to_target", "epochs", ".2f"),
             ("seconds_to_target", "seconds", ".2f"),
             ("samples_per_s", "samples/s", ",.0f"),
             ("final_accuracy", "last acc", ".4f"), ("status", "status")])
        if best:
            print(f"  time-optimal batch size ({rule}): "
                  f"{best['batch_size']} ({best['seconds_to_target']:.2f} s, "
                  f"{best['steps_to_target']} steps)")
        else:
            print(f"  no batch size reached the target with rule {rule!r}")
        if fit:
            print(f"  fit S = S_min (1 + B_crit/B): B_crit ~ "
                  f"{fit['b_crit']:.0f}, S_min ~ {fit['s_min']:.0f} steps "
                  f"(meaningful only where the rule's lr is near-optimal)")
        print()
    if len(rules) > 1:
        side = {}
        for row in rows:
            entry = side.setdefault(row["batch_size"],
                                    {"batch_size": row["batch_size"]})
            entry[f"{row['rule']}_steps"] = row["steps_to_target"]
            entry[f"{row['rule']}_seconds"] = row["seconds_to_target"]
        columns = [("batch_size", "batch")]
        columns += [(f"{rule}_steps", f"{rule} steps") for rule in rules]
        columns += [(f"{rule}_seconds", f"{rule} s", ".2f") for rule in rules]
        common.print_table(f"LR rules side by side (to {100 * target:.1f} %)",
                           [side[b] for b in sorted(side)], columns)
    panels = []
    for key, label in (("steps_to_target", "steps to target"),
                       ("seconds_to_target", "seconds to target")):
        series = {}
        for rule in rules:
            rule_rows = sorted((r for r in rows if r["rule"] == rule),
                               key=lambda r: r["batch_size"])
            series[f"{rule} rule"] = ([r["batch_size"] for r in rule_rows],
                                      [r[key] for r in rule_rows])
        if key == "steps_to_target":  # perfect scaling S ~ 1/B, for reference
            reached = sorted((r for r in rows if r["reached"]),
                             key=lambda r: r["batch_size"])
            if reached:
                first = reached[0]
                sizes = sorted({r["batch_size"] for r in rows})
                series["perfect scaling"] = (
                    sizes, [first["steps_to_target"] * first["batch_size"] / b
                            for b in sizes])
        panels.append({"title": f"{label} ({100 * target:.1f} % test acc.)",
                       "ylabel": label, "series": series})
    path = common.plot_panels(cfg.out_dir / "tta.png", panels,
                              suptitle="Time to accuracy vs batch size")
    print(f"plot: {path}\n")
