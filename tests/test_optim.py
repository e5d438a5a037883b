"""fastgrad.optim: optimisers against NumPy references, the batch-size rules,
schedules, accumulation, checkpoints, and the fused SGD kernel."""
import io
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import fastgrad
from fastgrad import _kernels, optim, reference
from fastgrad.optim import (SGD, Adam, AdamW, BatchSizeSchedule, CosineDecay,
                            ExponentialDecay, LinearWarmup, RMSProp, Rprop,
                            StepDecay)


def make_param(array):
    """A leaf with .data and .grad: a fastgrad Tensor when the core is
    there, else a minimal stand-in with the same two attributes."""
    try:
        from fastgrad.tensor import Tensor  # noqa: F401
        return fastgrad.tensor(array, requires_grad=True)
    except (ImportError, AttributeError):
        return _Leaf(array)


class _Leaf:
    def __init__(self, data):
        self.data = np.ascontiguousarray(data)
        self.grad = None


SHAPES = [(7, 5), (5,), (3, 1, 2), ()]


class Quadratic:
    """grad_k(w) = h_k * w_k - b_k + noise_t (a random convex problem with
    fresh noise each step, the same sequence for every caller)."""

    def __init__(self, seed=0, shapes=SHAPES, dtype=np.float64,
                 n_steps=10):
        rng = np.random.default_rng(seed)
        self.init = [rng.standard_normal(s).astype(dtype) for s in shapes]
        self.curv = [rng.uniform(0.5, 2.0, s).astype(dtype) for s in shapes]
        self.target = [rng.standard_normal(s).astype(dtype) for s in shapes]
        self.noise = [[0.3 * rng.standard_normal(s).astype(dtype)
                       for s in shapes] for _ in range(n_steps)]

    def grads(self, weights, t):
        return [np.asarray(h * w - b + e) for h, w, b, e in
                zip(self.curv, weights, self.target, self.noise[t])]

    def params(self):
        return [make_param(w.copy()) for w in self.init]


def run(optimizer_factory, problem, n_steps=10, **step_kwargs):
    params = problem.params()
    optimizer = optimizer_factory(params)
    for t in range(n_steps):
        grads = problem.grads([p.data for p in params], t)
        for param, grad in zip(params, grads):
            param.grad = grad
        optimizer.step(**step_kwargs)
    return [p.data for p in params], optimizer


# -- NumPy references of each optimiser, written from the formulas ------------

def sgd_reference(problem, lrs, momentum=0.0, dampening=0.0, nesterov=False,
                  weight_decay=0.0, decoupled=False, l1=0.0,
                  convention="standard", correction=True):
    weights = [w.copy() for w in problem.init]
    buffers = [None] * len(weights)
    previous = None
    for t, lr in enumerate(lrs):
        grads = problem.grads(weights, t)
        for k, (w, g) in enumerate(zip(weights, grads)):
            g = g + l1 * np.sign(w) + (0 if decoupled else weight_decay * w)
            if momentum and convention == "standard":
                buffers[k] = (g.copy() if buffers[k] is None
                              else momentum * buffers[k] + (1 - dampening) * g)
                update = lr * (g + momentum * buffers[k] if nesterov
                               else buffers[k])
            elif momentum:
                c = lr / previous if correction and previous else 1.0
                buffers[k] = (lr * g if buffers[k] is None else
                              momentum * c * buffers[k]
                              + (1 - dampening) * lr * g)
                update = (lr * g + momentum * buffers[k] if nesterov
                          else buffers[k])
            else:
                update = lr * g
            decay = lr * weight_decay * w if decoupled else 0
            weights[k] = w - update - decay
        previous = lr
    return weights


def adam_reference(problem, lr, betas=(0.9, 0.999), eps=1e-8,
                   weight_decay=0.0, amsgrad=False, decoupled=False,
                   n_steps=10):
    weights = [w.copy() for w in problem.init]
    m = [np.zeros_like(w) for w in weights]
    v = [np.zeros_like(w) for w in weights]
    vmax = [np.zeros_like(w) for w in weights]
    for t in range(n_steps):
        grads = problem.grads(weights, t)
        for k, (w, g) in enumerate(zip(weights, grads)):
            if decoupled:
                w = w * (1 - lr * weight_decay)
            else:
                g = g + weight_decay * w
            m[k] = betas[0] * m[k] + (1 - betas[0]) * g
            v[k] = betas[1] * v[k] + (1 - betas[1]) * g * g
            vmax[k] = np.maximum(vmax[k], v[k])
            second = vmax[k] if amsgrad else v[k]
            m_hat = m[k] / (1 - betas[0] ** (t + 1))
            v_hat = second / (1 - betas[1] ** (t + 1))
            weights[k] = w - lr * m_hat / (np.sqrt(v_hat) + eps)
    return weights


def rmsprop_reference(problem, lr, alpha=0.99, eps=1e-8, momentum=0.0,
                      centered=False, weight_decay=0.0, n_steps=10):
    weights = [w.copy() for w in problem.init]
    sq = [np.zeros_like(w) for w in weights]
    avg = [np.zeros_like(w) for w in weights]
    buf = [np.zeros_like(w) for w in weights]
    for t in range(n_steps):
        grads = problem.grads(weights, t)
        for k, (w, g) in enumerate(zip(weights, grads)):
            g = g + weight_decay * w
            sq[k] = alpha * sq[k] + (1 - alpha) * g * g
            if centered:
                avg[k] = alpha * avg[k] + (1 - alpha) * g
                denom = np.sqrt(sq[k] - avg[k] ** 2) + eps
            else:
                denom = np.sqrt(sq[k]) + eps
            if momentum:
                buf[k] = momentum * buf[k] + g / denom
                weights[k] = w - lr * buf[k]
            else:
                weights[k] = w - lr * g / denom
    return weights


def rprop_reference(problem, lr, etas=(0.5, 1.2), step_sizes=(1e-6, 50.0),
                    n_steps=10):
    weights = [w.copy() for w in problem.init]
    prev = [np.zeros_like(w) for w in weights]
    steps = [np.full_like(w, lr) for w in weights]
    for t in range(n_steps):
        grads = problem.grads(weights, t)
        for k, (w, g) in enumerate(zip(weights, grads)):
            g = g.copy()
            s = g * prev[k]
            steps[k] = np.clip(
                steps[k] * np.where(s > 0, etas[1],
                                    np.where(s < 0, etas[0], 1.0)),
                *step_sizes)
            g[s < 0] = 0
            weights[k] = w - np.sign(g) * steps[k]
            prev[k] = g
    return weights


def assert_weights_close(actual, expected, rtol=1e-12, atol=1e-12):
    for k, (a, e) in enumerate(zip(actual, expected)):
        np.testing.assert_allclose(a, e, rtol=rtol, atol=atol,
                                   err_msg=f"parameter {k}")


SGD_CASES = [
    dict(),
    dict(momentum=0.9),
    dict(momentum=0.9, dampening=0.3),
    dict(momentum=0.8, nesterov=True),
    dict(momentum=0.9, weight_decay=0.05),
    dict(momentum=0.9, weight_decay=0.05, decoupled_weight_decay=True),
    dict(momentum=0.5, l1=0.01, weight_decay=0.01),
    dict(momentum=0.9, momentum_convention="dlt"),
    dict(momentum=0.9, nesterov=True, momentum_convention="dlt",
         weight_decay=0.02),
    dict(momentum=0.7, dampening=0.2, momentum_convention="dlt", l1=0.01),
]


def _reference_kwargs(case):
    return dict(momentum=case.get("momentum", 0.0),
                dampening=case.get("dampening", 0.0),
                nesterov=case.get("nesterov", False),
                weight_decay=case.get("weight_decay", 0.0),
                decoupled=case.get("decoupled_weight_decay", False),
                l1=case.get("l1", 0.0),
                convention=case.get("momentum_convention", "standard"))


@pytest.mark.parametrize("case", SGD_CASES)
def test_sgd_matches_reference_for_10_steps(case):
    problem = Quadratic(seed=1)
    actual, _ = run(lambda p: SGD(p, lr=0.05, **case), problem)
    expected = sgd_reference(problem, [0.05] * 10, **_reference_kwargs(case))
    assert_weights_close(actual, expected)


@pytest.mark.parametrize("case", SGD_CASES)
def test_sgd_with_changing_lr_matches_reference(case):
    # the lr halves at steps 3 and 6: the "dlt" buffer is corrected
    problem = Quadratic(seed=2)
    schedule = StepDecay([3, 6], gamma=0.5, unit="steps")
    actual, _ = run(lambda p: SGD(p, lr=0.1, schedule=schedule, **case),
                    problem)
    lrs = [0.1 * 0.5 ** ((t >= 3) + (t >= 6)) for t in range(10)]
    expected = sgd_reference(problem, lrs, **_reference_kwargs(case))
    assert_weights_close(actual, expected)


def test_dlt_convention_equals_standard_with_correction_not_without():
    problem = Quadratic(seed=3)
    schedule = ExponentialDecay(0.7, unit="steps")
    standard, _ = run(lambda p: SGD(p, lr=0.1, momentum=0.9,
                                    schedule=schedule), problem)
    dlt, _ = run(lambda p: SGD(p, lr=0.1, momentum=0.9, schedule=schedule,
                               momentum_convention="dlt"), problem)
    raw, _ = run(lambda p: SGD(p, lr=0.1, momentum=0.9, schedule=schedule,
                               momentum_convention="dlt",
                               momentum_correction=False), problem)
    assert_weights_close(dlt, standard, rtol=1e-10, atol=1e-12)
    lrs = [0.1 * 0.7 ** t for t in range(10)]
    assert_weights_close(raw, sgd_reference(
        problem, lrs, momentum=0.9, convention="dlt", correction=False))
    assert not np.allclose(raw[0], standard[0])


@pytest.mark.parametrize("kwargs", [
    dict(), dict(weight_decay=0.1), dict(amsgrad=True),
    dict(betas=(0.8, 0.9), eps=1e-6)])
def test_adam_matches_reference(kwargs):
    problem = Quadratic(seed=4)
    actual, _ = run(lambda p: Adam(p, lr=0.01, **kwargs), problem)
    expected = adam_reference(problem, 0.01, **kwargs)
    assert_weights_close(actual, expected)


@pytest.mark.parametrize("kwargs", [dict(), dict(weight_decay=0.1),
                                    dict(amsgrad=True)])
def test_adamw_matches_reference(kwargs):
    problem = Quadratic(seed=5)
    actual, _ = run(lambda p: AdamW(p, lr=0.01, **kwargs), problem)
    kwargs.setdefault("weight_decay", 0.01)
    expected = adam_reference(problem, 0.01, decoupled=True, **kwargs)
    assert_weights_close(actual, expected)


@pytest.mark.parametrize("kwargs", [
    dict(), dict(centered=True), dict(momentum=0.9),
    dict(centered=True, momentum=0.5, weight_decay=0.01, alpha=0.9)])
def test_rmsprop_matches_reference(kwargs):
    problem = Quadratic(seed=6)
    actual, _ = run(lambda p: RMSProp(p, lr=0.01, **kwargs), problem)
    expected = rmsprop_reference(problem, 0.01, **kwargs)
    assert_weights_close(actual, expected)


@pytest.mark.parametrize("kwargs", [dict(), dict(etas=(0.3, 1.5),
                                                 step_sizes=(1e-3, 0.2))])
def test_rprop_matches_reference(kwargs):
    problem = Quadratic(seed=7)
    actual, _ = run(lambda p: Rprop(p, lr=0.05, **kwargs), problem)
    expected = rprop_reference(problem, 0.05, **kwargs)
    assert_weights_close(actual, expected)


# -- batch-size rules ---------------------------------------------------------

def test_lr_scaling_rules_and_effective_lr():
    params = Quadratic().params()
    linear = SGD(params, lr=0.1, base_batch_size=32, lr_scaling="linear")
    root = SGD(params, lr=0.1, base_batch_size=32, lr_scaling="sqrt")
    none = SGD(params, lr=0.1, base_batch_size=32)
    assert linear.effective_lr == pytest.approx(0.1)
    assert linear.lr_at(256) == pytest.approx(0.8)
    assert root.lr_at(128) == pytest.approx(0.2)
    assert none.lr_at(256) == pytest.approx(0.1)
    assert optim.scaled_lr(0.1, 8, 32, "linear") == pytest.approx(0.025)
    for param in params:
        param.grad = np.zeros_like(param.data)
    linear.step(batch_size=64)
    assert linear.effective_lr == pytest.approx(0.2)
    text = linear.describe()
    assert "0.2" in text and "B0=32" in text and "linear" in text


def test_linear_rule_step_equals_sum_of_small_steps():
    # For plain SGD, one step with batch kB at lr*k equals, at the same
    # weights, the sum of the k steps of batches B at lr (update linear in g).
    rng = np.random.default_rng(8)
    k, batch = 4, 8
    per_sample = rng.standard_normal((k * batch, 6, 3))
    start = rng.standard_normal((6, 3))
    big = make_param(start.copy())
    big.grad = per_sample.mean(axis=0)
    SGD([big], lr=0.05, base_batch_size=batch,
        lr_scaling="linear").step(batch_size=k * batch)
    total_update = np.zeros_like(start)
    for j in range(k):
        small = make_param(start.copy())
        small.grad = per_sample[j * batch:(j + 1) * batch].mean(axis=0)
        SGD([small], lr=0.05).step()
        total_update += small.data - start
    np.testing.assert_allclose(big.data - start, total_update, rtol=1e-12,
                               atol=1e-15)


class LinearModel:
    """Least squares y ~ x w: per-sample gradients x_i (x_i w - y_i)."""

    def __init__(self, seed=9, n_samples=48, n_features=5):
        rng = np.random.default_rng(seed)
        self.x = rng.standard_normal((n_samples, n_features))
        self.y = rng.standard_normal(n_samples)
        self.w0 = rng.standard_normal(n_features)
        self.b0 = rng.standard_normal(1)

    def grads(self, w, b, index, reduction="mean"):
        residual = self.x[index] @ w + b - self.y[index]
        gw, gb = self.x[index].T @ residual, residual.sum(keepdims=True)
        if reduction == "mean":
            gw, gb = gw / len(index), gb / len(index)
        return gw, gb


def _train(model, batches, make_optimizer, reduction="mean", sized=True):
    w, b = make_param(model.w0.copy()), make_param(model.b0.copy())
    optimizer = make_optimizer([w, b])
    for index in batches:
        optimizer.zero_grad()
        w.grad, b.grad = model.grads(w.data, b.data, index, reduction)
        optimizer.step(batch_size=len(index) if sized else None)
    return np.concatenate([w.data, b.data]), optimizer


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("options", [
    dict(momentum=0.9, weight_decay=0.01),
    dict(momentum=0.8, nesterov=True, weight_decay=0.05,
         decoupled_weight_decay=True, momentum_convention="dlt"),
])
def test_accumulation_equals_big_batch(reduction, options):
    model = LinearModel()
    order = np.random.default_rng(0).permutation(48)
    big_batches = [order[i:i + 12] for i in range(0, 48, 12)]
    # micro-batches of 12/3 = 4 samples, 3 per update
    micro_batches = [order[i:i + 4] for i in range(0, 48, 4)]
    big, _ = _train(model, big_batches,
                    lambda p: SGD(p, lr=0.05, loss_reduction=reduction,
                                  **options), reduction)
    accumulated, opt = _train(
        model, micro_batches,
        lambda p: SGD(p, lr=0.05, accumulation_steps=3,
                      loss_reduction=reduction, **options), reduction)
    np.testing.assert_allclose(accumulated, big, rtol=1e-12, atol=1e-14)
    assert opt.step_count == 4


def test_accumulation_with_unequal_micro_batches_is_the_sample_mean():
    # micro-batches of 5 and 7 (mean loss) give the mean over 12 samples;
    # with linear scaling, the lr of a 12-sample batch
    model = LinearModel()
    order = np.random.default_rng(1).permutation(48)
    big_batches = [order[i:i + 12] for i in range(0, 48, 12)]
    micro = []
    for batch in big_batches:
        micro += [batch[:5], batch[5:]]
    options = dict(momentum=0.9, weight_decay=0.01, base_batch_size=6,
                   lr_scaling="linear")
    big, _ = _train(model, big_batches, lambda p: SGD(p, lr=0.02, **options))
    acc, opt = _train(model, micro, lambda p: SGD(
        p, lr=0.02, accumulation_steps=2, **options))
    np.testing.assert_allclose(acc, big, rtol=1e-12, atol=1e-14)
    assert opt.effective_lr == pytest.approx(0.04)


@pytest.mark.parametrize("factory", [
    lambda p, **kw: Adam(p, lr=0.01, weight_decay=0.01, **kw),
    lambda p, **kw: RMSProp(p, lr=0.01, momentum=0.5, **kw),
    lambda p, **kw: Rprop(p, lr=0.01, **kw),
])
def test_accumulation_equals_big_batch_for_adaptive_optimisers(factory):
    model = LinearModel()
    order = np.arange(48)
    big, _ = _train(model, [order], lambda p: factory(p), sized=False)
    acc, _ = _train(model, [order[i:i + 12] for i in range(0, 48, 12)],
                    lambda p: factory(p, accumulation_steps=4), sized=False)
    np.testing.assert_allclose(acc, big, rtol=1e-10, atol=1e-13)


def test_sum_loss_is_converted_and_plain_sum_sgd_is_the_linear_rule():
    model = LinearModel()
    order = np.random.default_rng(2).permutation(48)
    batches = [order[:8], order[8:24], order[24:48]]  # sizes 8, 16, 24
    options = dict(momentum=0.9, base_batch_size=8, lr_scaling="linear")
    mean, _ = _train(model, batches, lambda p: SGD(p, lr=0.04, **options))
    summed, _ = _train(model, batches, lambda p: SGD(
        p, lr=0.04, loss_reduction="sum", **options), reduction="sum")
    np.testing.assert_allclose(summed, mean, rtol=1e-12, atol=1e-14)
    # SGD on a summed loss at a fixed lr0/B0 *is* the linear rule (without
    # momentum: standard momentum applies today's lr to past gradients)
    linear, _ = _train(model, batches, lambda p: SGD(
        p, lr=0.04, base_batch_size=8, lr_scaling="linear"))
    plain, _ = _train(model, batches, lambda p: SGD(p, lr=0.04 / 8),
                      reduction="sum", sized=False)
    np.testing.assert_allclose(plain, linear, rtol=1e-12, atol=1e-14)


def test_grow_batch_and_decay_lr_give_the_same_noise_scale():
    n_samples, batch, lr = 6000, 50, 0.1
    decay = StepDecay([3, 6], gamma=0.2)
    grow = BatchSizeSchedule([3, 6], factor=5)
    params = Quadratic().params()
    decaying = SGD(params, lr=lr, schedule=decay)
    growing = SGD(params, lr=lr)
    for epoch in range(9):
        decaying.set_epoch(epoch)
        growing.set_epoch(epoch)
        grown = grow.batch_size(epoch, batch)
        assert math.isclose(
            optim.noise_scale(decaying.effective_lr, batch),
            optim.noise_scale(growing.effective_lr, grown), rel_tol=1e-12)
        # Smith et al.'s g = lr (N/B - 1) agrees up to the -lr term
        assert math.isclose(
            optim.noise_scale(decaying.effective_lr, batch, n_samples)
            + decaying.effective_lr,
            optim.noise_scale(growing.effective_lr, grown, n_samples) + lr,
            rel_tol=1e-12)
        assert math.isclose(decaying.effective_lr / batch,
                            growing.effective_lr / grown, rel_tol=1e-12)


# -- schedules ----------------------------------------------------------------

def _lr_after(optimizer, n_steps, batch_size=None):
    for param in (p for g in optimizer.param_groups for p in g["params"]):
        param.grad = np.zeros_like(param.data)
    for _ in range(n_steps):
        optimizer.step(batch_size=batch_size)
    return optimizer.lr_at(batch_size)


def test_warmup_from_base_lr_to_scaled_lr_over_steps():
    params = Quadratic().params()
    make = lambda: SGD(params, lr=0.1, base_batch_size=32,  # noqa: E731
                       lr_scaling="linear", schedule=LinearWarmup(10))
    assert _lr_after(make(), 0, 256) == pytest.approx(0.1)
    assert _lr_after(make(), 5, 256) == pytest.approx(0.1 + 0.5 * 0.7)
    assert _lr_after(make(), 10, 256) == pytest.approx(0.8)
    assert _lr_after(make(), 25, 256) == pytest.approx(0.8)


def test_warmup_over_epochs_moves_within_the_epoch():
    params = Quadratic().params()
    optimizer = SGD(params, lr=0.1, base_batch_size=10, lr_scaling="sqrt",
                    schedule=LinearWarmup(2, unit="epochs"))
    optimizer.set_epoch(0, steps_per_epoch=4)
    assert _lr_after(optimizer, 0, 40) == pytest.approx(0.1)
    assert _lr_after(optimizer, 2, 40) == pytest.approx(0.1 * 1.25)
    optimizer.set_epoch(1, steps_per_epoch=4)
    assert _lr_after(optimizer, 2, 40) == pytest.approx(0.1 * 1.75)
    optimizer.set_epoch(2, steps_per_epoch=4)
    assert optimizer.lr_at(40) == pytest.approx(0.2)


def test_warmup_with_a_start_factor():
    warmup = LinearWarmup(4, start_factor=0.0)
    assert [warmup.factor(t, 0) for t in range(6)] == \
        pytest.approx([0, 0.25, 0.5, 0.75, 1, 1])


def test_decay_schedules_by_value():
    step = StepDecay([2, 5], gamma=0.1)
    assert [step.factor(0, e) for e in range(7)] == pytest.approx(
        [1, 1, 0.1, 0.1, 0.1, 0.01, 0.01])
    exponential = ExponentialDecay(0.5)  # DeepLearnToolbox scaling
    assert [exponential.factor(0, e) for e in (0, 1, 3, 3.9)] == \
        pytest.approx([1, 0.5, 0.125, 0.125])
    cosine = CosineDecay(10, min_factor=0.1)
    assert cosine.factor(0, 0) == pytest.approx(1.0)
    assert cosine.factor(0, 5) == pytest.approx(0.55)
    assert cosine.factor(0, 10) == pytest.approx(0.1)
    assert cosine.factor(0, 20) == pytest.approx(0.1)


def test_schedules_compose_by_product():
    schedule = LinearWarmup(2, unit="epochs") * StepDecay([3]) \
        * ExponentialDecay(0.9)
    params = Quadratic().params()
    optimizer = SGD(params, lr=0.1, base_batch_size=1, lr_scaling="linear",
                    schedule=schedule)
    expected = {0: 0.1, 1: (0.1 + 0.4) / 2 * 0.9, 2: 0.4 * 0.81,
                4: 0.4 * 0.1 * 0.9 ** 4}
    for epoch, lr in expected.items():
        optimizer.set_epoch(epoch)
        assert optimizer.lr_at(4) == pytest.approx(lr), epoch
    assert "LinearWarmup" in optimizer.describe(4)


def test_batch_size_schedule():
    schedule = BatchSizeSchedule([2, 4], factor=3, max_batch_size=500)
    assert [schedule.batch_size(e, 64) for e in range(6)] == \
        [64, 64, 192, 192, 500, 500]


# -- parameter groups, skipping, zero_grad ------------------------------------

def test_param_groups_exclude_biases_from_decay():
    weight = make_param(np.ones((2, 2)))
    bias = make_param(np.ones(2))
    optimizer = SGD([{"params": [weight]},
                     {"params": [bias], "weight_decay": 0.0}],
                    lr=0.1, weight_decay=0.5)
    weight.grad, bias.grad = np.zeros((2, 2)), np.zeros(2)
    optimizer.step()
    np.testing.assert_allclose(weight.data, 0.95)
    np.testing.assert_allclose(bias.data, 1.0)


def test_missing_gradients_are_skipped_and_buffers_start_late():
    problem = Quadratic(seed=10)
    params = problem.params()
    optimizer = SGD(params, lr=0.1, momentum=0.9, dampening=0.5)
    grads = problem.grads([p.data for p in params], 0)
    params[0].grad, params[1].grad = grads[0], None
    before = params[1].data.copy()
    optimizer.step()
    np.testing.assert_array_equal(params[1].data, before)
    np.testing.assert_allclose(params[0].data,
                               problem.init[0] - 0.1 * grads[0])
    # later, parameter 1's first buffer is its gradient (no dampening)
    params[1].grad = np.ones_like(before)
    optimizer.step()
    np.testing.assert_allclose(params[1].data, before - 0.1)


def test_zero_grad():
    params = Quadratic().params()
    for param in params:
        param.grad = np.ones_like(param.data)
    optimizer = SGD(params, lr=0.1)
    optimizer.zero_grad(set_to_none=False)
    assert all(np.all(p.grad == 0) for p in params)
    optimizer.zero_grad()
    assert all(p.grad is None for p in params)


# -- checkpoints --------------------------------------------------------------

CHECKPOINT_FACTORIES = [
    lambda p: SGD(p, lr=0.05, momentum=0.9, momentum_convention="dlt",
                  schedule=ExponentialDecay(0.8, unit="steps")),
    lambda p: SGD(p, lr=0.05, momentum=0.9, nesterov=True,
                  accumulation_steps=3, weight_decay=0.01),
    lambda p: Adam(p, lr=0.01, amsgrad=True),
    lambda p: AdamW(p, lr=0.01),
    lambda p: RMSProp(p, lr=0.01, centered=True, momentum=0.5),
    lambda p: Rprop(p, lr=0.01),
]


@pytest.mark.parametrize("factory", CHECKPOINT_FACTORIES)
def test_state_dict_round_trip_continues_identically(factory):
    problem = Quadratic(seed=11, n_steps=12)
    straight, _ = run(factory, problem, n_steps=12)

    params = problem.params()
    optimizer = factory(params)
    for t in range(12):
        if t == 7:  # mid-accumulation for accumulation_steps=3
            state = optimizer.state_dict()
            for value in state.values():
                assert isinstance(value, (int, float, np.ndarray))
            buffer = io.BytesIO()
            np.savez(buffer, **state)
            buffer.seek(0)
            loaded = dict(np.load(buffer, allow_pickle=False))
            weights = [p.data.copy() for p in params]
            params = [make_param(w) for w in weights]
            optimizer = factory(params)
            optimizer.load_state_dict(loaded)
        grads = problem.grads([p.data for p in params], t)
        for param, grad in zip(params, grads):
            param.grad = grad
        optimizer.step()
    for resumed, expected in zip(params, straight):
        np.testing.assert_array_equal(resumed.data, expected)


def test_load_state_dict_rejects_mismatches():
    params = Quadratic().params()
    optimizer = SGD(params, lr=0.1, momentum=0.9)
    for param in params:
        param.grad = np.ones_like(param.data)
    optimizer.step()
    state = optimizer.state_dict()
    with pytest.raises(ValueError, match="params"):
        SGD(params[:2], lr=0.1, momentum=0.9).load_state_dict(state)
    state["group0.momentum_buffer.0"] = np.zeros((2, 2))
    with pytest.raises(ValueError, match=r"\(2, 2\)"):
        SGD(params, lr=0.1, momentum=0.9).load_state_dict(state)


# -- validation ---------------------------------------------------------------

BAD_HYPER_PARAMETERS = [
    (SGD, dict(lr=-0.1), "-0.1"),
    (SGD, dict(lr=float("nan")), "nan"),
    (SGD, dict(lr=0.1, momentum=1.5), "1.5"),
    (SGD, dict(lr=0.1, momentum=-0.2), "-0.2"),
    (SGD, dict(lr=0.1, dampening=2.0), "2.0"),
    (SGD, dict(lr=0.1, weight_decay=-1e-3), "-0.001"),
    (SGD, dict(lr=0.1, l1=-0.5), "-0.5"),
    (SGD, dict(lr=0.1, nesterov=True), "momentum=0.0"),
    (SGD, dict(lr=0.1, momentum=0.9, nesterov=True, dampening=0.1), "0.1"),
    (SGD, dict(lr=0.1, momentum_convention="matlab"), "matlab"),
    (SGD, dict(lr=0.1, lr_scaling="cubic", base_batch_size=4), "cubic"),
    (SGD, dict(lr=0.1, lr_scaling="linear"), "None"),
    (SGD, dict(lr=0.1, base_batch_size=0), "0"),
    (SGD, dict(lr=0.1, accumulation_steps=0), "0"),
    (SGD, dict(lr=0.1, accumulation_steps=2.5), "2.5"),
    (SGD, dict(lr=0.1, loss_reduction="max"), "max"),
    (SGD, dict(lr="0.1"), "'0.1'"),
    (Adam, dict(lr=0.1, betas=(0.9, 1.0)), "1.0"),
    (Adam, dict(lr=0.1, betas=(0.9,)), "(0.9,)"),
    (Adam, dict(lr=0.1, eps=-1.0), "-1.0"),
    (AdamW, dict(lr=0.1, weight_decay=-0.01), "-0.01"),
    (RMSProp, dict(lr=0.1, alpha=1.2), "1.2"),
    (RMSProp, dict(lr=0.1, momentum=1.0), "1.0"),
    (Rprop, dict(lr=0.1, etas=(1.1, 1.2)), "1.1"),
    (Rprop, dict(lr=0.1, step_sizes=(1.0, 0.1)), "(1.0, 0.1)"),
    (Rprop, dict(lr=0.1, lr_scaling="linear", base_batch_size=2), "linear"),
]


@pytest.mark.parametrize("cls, kwargs, shown", BAD_HYPER_PARAMETERS)
def test_bad_hyper_parameters_raise_with_the_value(cls, kwargs, shown):
    with pytest.raises((ValueError, TypeError)) as info:
        cls(Quadratic().params(), **kwargs)
    assert shown in str(info.value)


def test_bad_groups_and_steps_raise():
    params = Quadratic().params()
    with pytest.raises(ValueError, match="unknown"):
        SGD([{"params": params, "betas": (0.9, 0.99)}], lr=0.1)
    with pytest.raises(ValueError, match="param group 1.*-1.0"):
        SGD([{"params": params[:1]},
             {"params": params[1:], "weight_decay": -1.0}], lr=0.1)
    with pytest.raises(ValueError, match="twice"):
        SGD([params[0], params[0]], lr=0.1)
    with pytest.raises(TypeError, match="ndarray"):
        SGD([np.ones(3)], lr=0.1)
    with pytest.raises(ValueError, match="empty"):
        SGD([], lr=0.1)
    optimizer = SGD(params, lr=0.1, base_batch_size=8, lr_scaling="sqrt")
    with pytest.raises(ValueError, match="batch_size"):
        optimizer.step()
    with pytest.raises(ValueError, match="-3"):
        optimizer.step(batch_size=-3)
    with pytest.raises(ValueError, match="-2"):
        StepDecay([-2, 3])
    with pytest.raises(ValueError, match="0"):
        LinearWarmup(0)


def test_gradient_of_the_wrong_shape_raises_naming_it():
    params = Quadratic().params()
    for param in params:
        param.grad = np.zeros_like(param.data)
    params[1].grad = np.zeros(4)
    with pytest.raises(ValueError, match=r"grads\[1\].*\(4,\)"):
        SGD(params, lr=0.1, momentum=0.9).step()
    with pytest.raises(ValueError, match=r"\(4,\)"):
        Adam(params).step()


# -- the fused kernel ---------------------------------------------------------

kernel_options = st.fixed_dictionaries(dict(
    lr=st.floats(0.0, 1.0),
    momentum=st.sampled_from([0.0, 0.5, 0.9]),
    dampening=st.sampled_from([0.0, 0.25]),
    nesterov=st.booleans(),
    weight_decay=st.sampled_from([0.0, 0.01]),
    decoupled_weight_decay=st.booleans(),
    l1=st.sampled_from([0.0, 0.003]),
    momentum_convention=st.sampled_from(["standard", "dlt"]),
    first_step=st.booleans(),
    grad_scale=st.sampled_from([1.0, 0.125]),
    buffer_scale=st.sampled_from([1.0, 0.5]),
))


def _kernel_operands(shapes, dtype, seed):
    rng = np.random.default_rng(seed)
    draw = lambda s: rng.standard_normal(s).astype(dtype)  # noqa: E731
    params = [draw(s) for s in shapes]
    params[0].flat[:1] = 0  # sign(0) = 0 for L1
    return params, [draw(s) for s in shapes], [draw(s) for s in shapes]


def _copies(arrays):
    return [a.copy() for a in arrays]


@given(shapes=st.lists(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0,
                                        max_side=13), min_size=1, max_size=4),
       dtype=st.sampled_from([np.float32, np.float64]),
       options=kernel_options, seed=st.integers(0, 2 ** 16))
def test_sgd_kernel_matches_reference(shapes, dtype, options, seed):
    params, grads, buffers = _kernel_operands(shapes, dtype, seed)
    expected_params, expected_buffers = _copies(params), _copies(buffers)
    reference.sgd_update(expected_params, grads, expected_buffers, **options)
    result = _kernels.sgd_update(params, grads, buffers, **options)
    assert result is params
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else \
        dict(rtol=1e-12, atol=1e-14)
    for k in range(len(shapes)):
        np.testing.assert_allclose(params[k], expected_params[k], **tol)
        np.testing.assert_allclose(buffers[k], expected_buffers[k], **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("convention", ["standard", "dlt"])
def test_sgd_kernel_is_bitwise_equal_on_1_and_2_threads(dtype, convention):
    shapes = [(301, 97), (97,), (13, 301), (13,)]  # big enough to thread
    results = []
    previous = fastgrad.get_num_threads()
    try:
        for n_threads in (1, 2):
            fastgrad.set_num_threads(n_threads)
            params, grads, buffers = _kernel_operands(shapes, dtype, 0)
            for first in (True, False, False):
                _kernels.sgd_update(params, grads, buffers, 0.1, 0.9,
                                    nesterov=True, weight_decay=0.01, l1=1e-3,
                                    momentum_convention=convention,
                                    first_step=first, buffer_scale=0.7)
            results.append(params + buffers)
    finally:
        fastgrad.set_num_threads(previous)
    for one, two in zip(*results):
        assert np.array_equal(one, two)
    expected = _kernel_operands(shapes, dtype, 0)
    assert not np.array_equal(results[0][0], expected[0][0])


def test_sgd_kernel_rejects_bad_operands():
    params, grads, buffers = _kernel_operands([(4, 3), (3,)], np.float64, 0)
    update = _kernels.sgd_update
    with pytest.raises(TypeError, match=r"sgd_update: grads\[1\].*float32"):
        update(params, [grads[0], grads[1].astype(np.float32)], None, 0.1)
    with pytest.raises(ValueError, match=r"grads\[0\].*\(3, 4\)"):
        update(params, [np.ones((3, 4)), grads[1]], None, 0.1)
    with pytest.raises(ValueError, match="C-contiguous"):
        update([np.ones((4, 6))[:, ::2], params[1]], grads, None, 0.1)
    with pytest.raises(ValueError, match="read-only"):
        frozen = params[1].copy()
        frozen.flags.writeable = False
        update([params[0], frozen], grads, None, 0.1)
    with pytest.raises(ValueError, match=r"params\[1\] overlaps grads\[1\]"):
        update(params, [grads[0], params[1]], None, 0.1)
    whole = np.zeros(15)
    with pytest.raises(ValueError, match="overlaps"):
        update(params, grads, [whole[:12].reshape(4, 3), whole[10:13]], 0.1,
               momentum=0.9)
    with pytest.raises(TypeError, match="buffers"):
        update(params, grads, None, 0.1, momentum=0.9)
    with pytest.raises(ValueError, match="2 params but 1 grads"):
        update(params, grads[:1], None, 0.1)
    with pytest.raises(TypeError, match="int64"):
        update([np.ones(3, dtype=np.int64)], [np.ones(3)], None, 0.1)
    with pytest.raises(ValueError, match="matlab"):
        update(params, grads, None, 0.1, momentum_convention="matlab")
    # grads may share memory with each other (read-only), and buffers are
    # ignored without momentum
    shared = np.ones(3)
    update([np.zeros(3), np.zeros(3)], [shared, shared], "ignored", 0.1)


@pytest.mark.parametrize("factory", CHECKPOINT_FACTORIES)
def test_state_layout_is_fixed_from_construction(factory, tmp_path):
    # a checkpoint's expected layout is known before training starts, and
    # fastgrad.io round-trips it without pickle
    io = pytest.importorskip("fastgrad.io")
    problem = Quadratic(seed=12)
    fresh = factory(problem.params())
    trained_weights, trained = run(factory, problem, n_steps=7)
    layout = io.describe(io.flatten({"optimizer": fresh.state_dict()}))
    assert io.describe(io.flatten({"optimizer": trained.state_dict()})) == \
        layout
    path = tmp_path / "optimizer.npz"
    io.save_checkpoint(path, {"optimizer": trained.state_dict()})
    arrays, _ = io.load_checkpoint(path, expected=layout)
    state = {key.split("/", 1)[1]: value for key, value in arrays.items()}
    params = [make_param(w.copy()) for w in trained_weights]
    resumed = factory(params)
    resumed.load_state_dict(state)
    assert resumed.state_dict().keys() == trained.state_dict().keys()
    for key, value in trained.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[key], value,
                                      err_msg=key)


def test_sgd_refuses_mixed_dtypes_in_one_group():
    params = [make_param(np.ones(3, np.float32)),
              make_param(np.ones(3, np.float64))]
    with pytest.raises(TypeError, match="float32.*float64"):
        SGD(params, lr=0.1)
    SGD([{"params": params[:1]}, {"params": params[1:]}], lr=0.1)


def test_sgd_trains_a_model_built_from_tensor_ops():
    ops = pytest.importorskip("fastgrad.ops")
    rng = np.random.default_rng(13)
    x = rng.standard_normal((64, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + 0.3
    weight = fastgrad.tensor(np.zeros((1, 3)), requires_grad=True)
    bias = fastgrad.tensor(np.zeros(1), requires_grad=True)
    optimizer = SGD([weight, bias], lr=0.1, momentum=0.5)
    target = fastgrad.tensor(y[:, None])
    for _ in range(200):
        optimizer.zero_grad()
        pred = ops.linear(fastgrad.tensor(x), weight, bias)
        loss = ops.mse_loss(pred, target, reduction="mean")
        loss.backward()
        optimizer.step()
    np.testing.assert_allclose(weight.data[0], [1.0, -2.0, 0.5], atol=1e-3)
    np.testing.assert_allclose(bias.data, [0.3], atol=1e-3)


@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1,
                              max_side=7),
       axis=st.integers(0, 2), extra=st.integers(1, 3),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_sgd_kernel_rejects_drawn_shape_mismatches(shape, axis, extra, dtype):
    axis = min(axis, len(shape) - 1)
    other = tuple(n + extra if k == axis else n for k, n in enumerate(shape))
    param = np.zeros(shape, dtype)
    before = param.copy()
    with pytest.raises(ValueError, match=r"sgd_update: grads\[0\]"):
        _kernels.sgd_update([param], [np.ones(other, dtype)], None, 0.1)
    with pytest.raises(ValueError, match=r"sgd_update: buffers\[0\]"):
        _kernels.sgd_update([param], [np.ones(shape, dtype)],
                            [np.zeros(other, dtype)], 0.1, momentum=0.9)
    np.testing.assert_array_equal(param, before)  # nothing was written


def test_noise_scale_with_momentum():
    assert optim.noise_scale(0.1, 100, 60000, momentum=0.9) == \
        pytest.approx(0.1 / 0.1 * (600 - 1))
    assert optim.noise_scale(0.1, 100) == pytest.approx(1e-3)


@given(n_params=st.integers(1, 4),
       dtype=st.sampled_from([np.float32, np.float64]),
       convention=st.sampled_from(["standard", "dlt"]),
       seed=st.integers(0, 2 ** 16), data=st.data())
def test_sgd_kernel_takes_one_value_per_parameter(n_params, dtype,
                                                  convention, seed, data):
    shapes = [(k + 2, 3) for k in range(n_params)]
    params, grads, buffers = _kernel_operands(shapes, dtype, seed)
    each = lambda values: st.lists(  # noqa: E731
        values, min_size=n_params, max_size=n_params)
    options = dict(
        lr=data.draw(each(st.sampled_from([0.0, 0.01, 0.3]))),
        momentum=data.draw(each(st.sampled_from([0.0, 0.9]))),
        dampening=data.draw(each(st.sampled_from([0.0, 0.5]))),
        nesterov=data.draw(each(st.booleans())),
        weight_decay=data.draw(each(st.sampled_from([0.0, 0.1]))),
        decoupled_weight_decay=data.draw(each(st.booleans())),
        l1=data.draw(each(st.sampled_from([0.0, 0.01]))),
        first_step=data.draw(each(st.booleans())),
        grad_scale=data.draw(each(st.sampled_from([1.0, 0.5]))),
        buffer_scale=data.draw(each(st.sampled_from([1.0, 2.0]))),
        momentum_convention=convention)
    for k, m in enumerate(options["momentum"]):
        if m == 0 and data.draw(st.booleans()):
            buffers[k] = None  # no buffer where there is no momentum
    expected_params = _copies(params)
    expected_buffers = [None if b is None else b.copy() for b in buffers]
    reference.sgd_update(expected_params, grads, expected_buffers, **options)
    _kernels.sgd_update(params, grads, buffers, **options)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else \
        dict(rtol=1e-12, atol=1e-14)
    for k in range(n_params):
        np.testing.assert_allclose(params[k], expected_params[k], **tol)
        if buffers[k] is not None:
            np.testing.assert_allclose(buffers[k], expected_buffers[k], **tol)
    with pytest.raises(ValueError, match="lr has 5 values for"):
        _kernels.sgd_update(params, grads, buffers, [0.1] * 5)


@pytest.mark.parametrize("convention", ["standard", "dlt"])
def test_param_groups_share_one_fused_call(convention, monkeypatch):
    # two groups with different hyper-parameters and an lr that changes
    # every step give bitwise the weights of two separate optimisers, and
    # after the first step every step is a single kernel call
    problem = Quadratic(seed=14)
    schedule = ExponentialDecay(0.9, unit="steps")
    first = dict(lr=0.1, momentum=0.9, weight_decay=0.05, l1=0.01)
    second = dict(lr=0.03, momentum=0.5, nesterov=True,
                  decoupled_weight_decay=True, weight_decay=0.02)

    def together(params):
        return SGD([dict(params=params[:2], **first),
                    dict(params=params[2:], **second)], lr=1.0,
                   momentum_convention=convention, schedule=schedule)

    calls = []
    real = optim._kernels.sgd_update

    def counting(*args, **kwargs):
        calls.append(len(args[0]))
        return real(*args, **kwargs)

    monkeypatch.setattr(optim._kernels, "sgd_update", counting)
    joint, _ = run(together, problem)
    assert calls[-9:] == [4] * 9
    params = problem.params()
    apart = [SGD(params[:2], momentum_convention=convention,
                 schedule=schedule, **first),
             SGD(params[2:], momentum_convention=convention,
                 schedule=schedule, **second)]
    for t in range(10):
        for param, grad in zip(params, problem.grads(
                [p.data for p in params], t)):
            param.grad = grad
        for optimizer in apart:
            optimizer.step()
    for a, b in zip(joint, params):
        np.testing.assert_array_equal(a, b.data)
