"""Optimisers whose learning rate knows the batch size.

The question fastgrad exists to help with: when I change the batch size,
what happens to my learning rate and my training time? Every optimiser here
takes

- ``base_batch_size`` B0 and ``lr_scaling`` in {"none", "linear", "sqrt"}:
  ``step(batch_size=B)`` uses lr * B/B0 (linear rule, Goyal et al. 2017,
  "Accurate, Large Minibatch SGD", section 2.1) or lr * sqrt(B/B0)
  (square-root rule, Krizhevsky 2014, "One weird trick", section 4; keeps
  the variance of the update constant). ``lr`` is always the learning rate
  at B0 for a *mean* loss.
- ``accumulation_steps`` k: ``step()`` is called once per micro-batch; the
  optimiser sums the micro-batch gradients and updates on every k-th call
  with their mean over all samples, so k micro-batches of B/k give the same
  update as one batch of B (to rounding), momentum and weight decay included.
- ``loss_reduction`` in {"mean", "sum"}: which loss the gradients come from.
  With "sum" the gradient grows with B, so plain SGD on a summed loss at a
  fixed lr *is* the linear rule; fastgrad divides by B (which step() then
  needs) so that lr and the scaling rules mean the same thing either way.
- ``schedule``: a product of LinearWarmup, StepDecay, ExponentialDecay and
  CosineDecay factors on top of the scaled learning rate; the warm-up goes
  from the unscaled lr to the scaled one (Goyal et al.'s gradual warm-up).
  A BatchSizeSchedule (consumed by fastgrad.batches.minibatches) grows the
  batch instead of decaying the lr (Smith et al. 2018, "Don't decay the
  learning rate, increase the batch size").

Parameters are fastgrad Tensors (anything with ``.data``, a C-contiguous
float ndarray updated in place, and ``.grad``, an ndarray of the same shape
and dtype or None to skip), or PyTorch-style groups
``{"params": [...], "weight_decay": 0.0, ...}`` so biases can be excluded
from decay. SGD.step() runs one fused compiled kernel for all parameters of
a group (fastgrad._kernels.sgd_update); the others use in-place NumPy.
"""
import math
import numbers
import operator

import numpy as np

from fastgrad import _kernels

__all__ = [
    "Optimizer", "SGD", "RMSProp", "Adam", "AdamW", "Rprop",
    "Schedule", "LinearWarmup", "StepDecay", "ExponentialDecay",
    "CosineDecay", "BatchSizeSchedule", "scaled_lr", "noise_scale",
]

LR_SCALINGS = ("none", "linear", "sqrt")
LOSS_REDUCTIONS = ("mean", "sum")
SCHEDULE_UNITS = ("steps", "epochs")


# -- validation ---------------------------------------------------------------

def _number(owner, name, value, low=None, high=None, low_open=False,
            high_open=False):
    """`value` as a float, or ValueError/TypeError naming it and its value."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a real number, got "
                        f"{value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{owner}: {name} must be finite, got {value!r}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open
                                     else value > high)
    if too_low or too_high:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        interval = (f"{left}{'-inf' if low is None else low}, "
                    f"{'inf' if high is None else high}{right}")
        raise ValueError(f"{owner}: {name} must be in {interval}, got "
                         f"{value!r}")
    return value


def _integer(owner, name, value, low=1):
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
            or value < low):
        raise ValueError(f"{owner}: {name} must be an integer >= {low}, got "
                         f"{value!r}")
    return int(value)


def _flag(owner, name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{owner}: {name} must be True or False, got "
                        f"{value!r}")
    return bool(value)


def _choice(owner, name, value, choices):
    if value not in choices:
        raise ValueError(f"{owner}: {name} must be one of {choices}, got "
                         f"{value!r}")
    return value


# -- the rules ----------------------------------------------------------------

def scaled_lr(lr, batch_size, base_batch_size, lr_scaling):
    """The learning rate for batch size B of a rule tuned at B0 (mean loss):
    "linear": lr * B / B0 (Goyal et al. 2017); "sqrt": lr * sqrt(B / B0)
    (Krizhevsky 2014; Malladi et al. 2022 for Adam); "none": lr."""
    _choice("scaled_lr", "lr_scaling", lr_scaling, LR_SCALINGS)
    if lr_scaling == "none":
        return float(lr)
    ratio = batch_size / base_batch_size
    return float(lr) * (ratio if lr_scaling == "linear" else math.sqrt(ratio))


def noise_scale(lr, batch_size, n_samples=None, momentum=0.0):
    """SGD's noise scale g = lr/(1-m) * (N/B - 1) (Smith et al. 2018, eq. 6;
    Smith & Le 2018); without n_samples the proportional form lr/((1-m) B).
    Decaying lr by a factor or growing B by that factor lowers g alike."""
    if n_samples is None:
        return lr / ((1.0 - momentum) * batch_size)
    return lr / (1.0 - momentum) * (n_samples / batch_size - 1.0)


# -- schedules ----------------------------------------------------------------

class Schedule:
    """A learning-rate factor as a function of training progress.

    factor(step, epoch, scale_ratio) -> float, where step counts parameter
    updates from 0, epoch is the (possibly fractional) epoch and scale_ratio
    the batch-size scaling factor of the current step (B/B0 or sqrt(B/B0)).
    Schedules compose by multiplication: ``LinearWarmup(5, "epochs") *
    StepDecay([30, 60])``.
    """

    def factor(self, step, epoch, scale_ratio=1.0):
        raise NotImplementedError

    def __mul__(self, other):
        if not isinstance(other, Schedule):
            return NotImplemented
        return _Product([self, other])

    def _time(self, step, epoch):
        return step if self.unit == "steps" else epoch


class _Product(Schedule):
    def __init__(self, parts):
        self.parts = []
        for part in parts:
            self.parts += part.parts if isinstance(part, _Product) else [part]

    def factor(self, step, epoch, scale_ratio=1.0):
        result = 1.0
        for part in self.parts:
            result *= part.factor(step, epoch, scale_ratio)
        return result

    def __repr__(self):
        return " * ".join(repr(part) for part in self.parts)


class LinearWarmup(Schedule):
    """Gradual warm-up (Goyal et al. 2017, section 2.2): the factor rises
    linearly from `start_factor` at time 0 to 1 at time `duration` (steps,
    or epochs, fractional within an epoch when the optimiser knows
    steps_per_epoch), then stays 1. start_factor=None starts from the
    *unscaled* lr, i.e. 1/scale_ratio: lr goes from lr to lr*B/B0 (so with
    lr_scaling="none" there is nothing to warm up; give start_factor, e.g.
    0.0, for a warm-up from zero)."""

    def __init__(self, duration, unit="steps", start_factor=None):
        self.unit = _choice("LinearWarmup", "unit", unit, SCHEDULE_UNITS)
        self.duration = _number("LinearWarmup", "duration", duration, low=0,
                                low_open=True)
        self.start_factor = (None if start_factor is None else _number(
            "LinearWarmup", "start_factor", start_factor, low=0))

    def factor(self, step, epoch, scale_ratio=1.0):
        start = (1.0 / scale_ratio if self.start_factor is None
                 else self.start_factor)
        progress = min(1.0, self._time(step, epoch) / self.duration)
        return start + (1.0 - start) * progress

    def __repr__(self):
        start = "" if self.start_factor is None else \
            f", start_factor={self.start_factor:g}"
        return f"LinearWarmup({self.duration:g} {self.unit}{start})"


class StepDecay(Schedule):
    """Multiply by gamma at each milestone: factor = gamma ** (number of
    milestones <= t), t the whole epoch (or step) count."""

    def __init__(self, milestones, gamma=0.1, unit="epochs"):
        self.unit = _choice("StepDecay", "unit", unit, SCHEDULE_UNITS)
        milestones = list(milestones)
        for milestone in milestones:
            _integer("StepDecay", "milestone", milestone, low=0)
        if milestones != sorted(milestones):
            raise ValueError(f"StepDecay: milestones must be increasing, got "
                             f"{milestones!r}")
        self.milestones = milestones
        self.gamma = _number("StepDecay", "gamma", gamma, low=0,
                             low_open=True)

    def factor(self, step, epoch, scale_ratio=1.0):
        time = math.floor(self._time(step, epoch))
        return self.gamma ** sum(1 for m in self.milestones if m <= time)

    def __repr__(self):
        return (f"StepDecay({self.milestones} {self.unit}, "
                f"gamma={self.gamma:g})")


class ExponentialDecay(Schedule):
    """factor = gamma ** t for whole epochs (or steps) t: DeepLearnToolbox's
    scaling_learningRate (nntrain multiplies the lr by it after each
    epoch)."""

    def __init__(self, gamma, unit="epochs"):
        self.unit = _choice("ExponentialDecay", "unit", unit, SCHEDULE_UNITS)
        self.gamma = _number("ExponentialDecay", "gamma", gamma, low=0,
                             low_open=True)

    def factor(self, step, epoch, scale_ratio=1.0):
        return self.gamma ** math.floor(self._time(step, epoch))

    def __repr__(self):
        return f"ExponentialDecay(gamma={self.gamma:g} per {self.unit[:-1]})"


class CosineDecay(Schedule):
    """Cosine annealing (Loshchilov & Hutter 2017, without restarts):
    factor = min + (1 - min) (1 + cos(pi t / duration)) / 2 for t <=
    duration, then min; t is fractional within an epoch when known."""

    def __init__(self, duration, unit="epochs", min_factor=0.0):
        self.unit = _choice("CosineDecay", "unit", unit, SCHEDULE_UNITS)
        self.duration = _number("CosineDecay", "duration", duration, low=0,
                                low_open=True)
        self.min_factor = _number("CosineDecay", "min_factor", min_factor,
                                  low=0, high=1)

    def factor(self, step, epoch, scale_ratio=1.0):
        progress = min(1.0, self._time(step, epoch) / self.duration)
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.min_factor + (1.0 - self.min_factor) * cosine

    def __repr__(self):
        return f"CosineDecay({self.duration:g} {self.unit})"


class BatchSizeSchedule:
    """Grow the batch instead of decaying the learning rate (Smith et al.
    2018): batch_size(epoch, base) = base * factor ** (number of milestones
    <= epoch), capped at max_batch_size. At constant lr this lowers the
    noise scale lr/B exactly as StepDecay(milestones, gamma=1/factor) does
    at constant B (use lr_scaling="none", or the linear rule undoes it).
    Consumed by fastgrad.batches.minibatches(batch_size_schedule=...)."""

    def __init__(self, milestones, factor=2, max_batch_size=None):
        milestones = list(milestones)
        for milestone in milestones:
            _integer("BatchSizeSchedule", "milestone", milestone, low=0)
        if milestones != sorted(milestones):
            raise ValueError(f"BatchSizeSchedule: milestones must be "
                             f"increasing, got {milestones!r}")
        self.milestones = milestones
        self.factor = _integer("BatchSizeSchedule", "factor", factor)
        self.max_batch_size = (None if max_batch_size is None else _integer(
            "BatchSizeSchedule", "max_batch_size", max_batch_size))

    def batch_size(self, epoch, base_batch_size):
        """The batch size of `epoch` (0-based) for a run started at
        base_batch_size."""
        grown = base_batch_size * self.factor ** sum(
            1 for m in self.milestones if m <= epoch)
        if self.max_batch_size is not None:
            grown = min(grown, self.max_batch_size)
        return int(grown)

    def __repr__(self):
        return (f"BatchSizeSchedule({self.milestones}, factor={self.factor}"
                + ("" if self.max_batch_size is None
                   else f", max_batch_size={self.max_batch_size}") + ")")


# -- the optimiser machinery --------------------------------------------------

class Optimizer:
    """Base class: parameter groups, batch-size-aware learning rate,
    schedules, gradient accumulation, zero_grad and state_dict.

    Subclasses set `_HYPER` (group hyper-parameter names -> defaults) and
    `_COUNTER` (name of the per-parameter update counter in state_dict),
    implement `_validate_group`, `_buffers(group)` (names and initial values
    of the per-parameter buffers) and
    `_update(group_index, params, datas, grads, lr, grad_scale)`.

    All state is allocated at construction, so state_dict() has the same
    keys, shapes and dtypes from the first step to the last (a checkpoint's
    expected layout is known before training).
    """
    _HYPER = {}
    _COUNTER = "updates"

    def __init__(self, params, defaults, base_batch_size=None,
                 lr_scaling="none", accumulation_steps=1,
                 loss_reduction="mean", schedule=None):
        name = type(self).__name__
        self.lr_scaling = _choice(name, "lr_scaling", lr_scaling, LR_SCALINGS)
        if base_batch_size is not None:
            base_batch_size = _integer(name, "base_batch_size",
                                       base_batch_size)
        elif lr_scaling != "none":
            raise ValueError(f"{name}: lr_scaling={lr_scaling!r} needs "
                             f"base_batch_size (the batch size lr was tuned "
                             f"at), got None")
        self.base_batch_size = base_batch_size
        self.accumulation_steps = _integer(name, "accumulation_steps",
                                           accumulation_steps)
        self.loss_reduction = _choice(name, "loss_reduction", loss_reduction,
                                      LOSS_REDUCTIONS)
        if schedule is not None and not isinstance(schedule, Schedule):
            raise TypeError(f"{name}: schedule must be a fastgrad.optim."
                            f"Schedule, got {schedule!r}")
        self.schedule = schedule
        self.defaults = dict(defaults)
        self.param_groups = []
        self._build_groups(params)
        self.step_count = 0        # parameter updates so far
        self.epoch = 0
        self.steps_per_epoch = None
        self._epoch_start_step = 0
        self._last_batch_size = base_batch_size
        self._micro_step = 0       # micro-batches accumulated so far
        self._micro_total = 0.0    # their total weight (samples or count)
        self._micro_sized = None   # whether they came with a batch size
        self._accumulators = [
            [np.zeros_like(p.data) for p in g["params"]]
            if self.accumulation_steps > 1 else [None] * len(g["params"])
            for g in self.param_groups]
        self._filled = [[False] * len(g["params"])
                        for g in self.param_groups]
        self._state = [
            {key: [np.full_like(p.data, fill) for p in g["params"]]
             for key, fill in self._buffers(g).items()}
            for g in self.param_groups]
        # updates each parameter has had (for Adam's t, SGD's first buffer)
        self._counts = [np.zeros(len(g["params"]), dtype=np.int64)
                        for g in self.param_groups]
        self._last_lrs = [None] * len(self.param_groups)
        self._scratch = [{} for _ in self.param_groups]  # not state

    def _buffers(self, group):
        """{name: initial value} of the per-parameter buffers of `group`."""
        return {}

    # -- groups --
    def _build_groups(self, params):
        name = type(self).__name__
        if isinstance(params, dict) or hasattr(params, "data"):
            params = [params]  # one group, or one parameter
        params = list(params)
        if not params:
            raise ValueError(f"{name}: got an empty parameter list")
        if all(isinstance(p, dict) for p in params):
            groups = params
        elif any(isinstance(p, dict) for p in params):
            raise TypeError(f"{name}: params must be all Tensors or all "
                            f"param-group dicts, not a mix")
        else:
            groups = [{"params": params}]
        seen = set()
        for index, group in enumerate(groups):
            unknown = set(group) - set(self.defaults) - {"params"}
            if unknown:
                raise ValueError(f"{name}: param group {index} has unknown "
                                 f"options {sorted(unknown)}; expected "
                                 f"{sorted(self.defaults)}")
            if "params" not in group:
                raise ValueError(f"{name}: param group {index} has no "
                                 f"'params'")
            members = group["params"]
            members = [members] if hasattr(members, "data") else list(members)
            for position, param in enumerate(members):
                data = getattr(param, "data", None)
                if (not isinstance(data, np.ndarray)
                        or data.dtype not in (np.float32, np.float64)
                        or not hasattr(param, "grad")):
                    raise TypeError(
                        f"{name}: parameter {position} of group {index} must "
                        f"have .data (float32/float64 ndarray) and .grad, "
                        f"got {type(param).__name__}")
                if id(param) in seen:
                    raise ValueError(f"{name}: parameter {position} of group "
                                     f"{index} appears twice")
                seen.add(id(param))
            full = dict(self.defaults)
            full.update(group)
            full["params"] = members
            self._validate_group(full, index)
            self.param_groups.append(full)

    def _validate_group(self, group, index):
        raise NotImplementedError

    # -- learning rate --
    def set_epoch(self, epoch, steps_per_epoch=None):
        """Tell epoch-based schedules the epoch that starts now (0-based);
        with steps_per_epoch, warm-up and cosine move within the epoch."""
        name = type(self).__name__
        self.epoch = _integer(name, "epoch", epoch, low=0)
        self.steps_per_epoch = (None if steps_per_epoch is None else
                                _integer(name, "steps_per_epoch",
                                         steps_per_epoch))
        self._epoch_start_step = self.step_count

    def _epoch_progress(self):
        if not self.steps_per_epoch:
            return float(self.epoch)
        within = (self.step_count - self._epoch_start_step) \
            / self.steps_per_epoch
        return self.epoch + min(within, 1.0)

    def _scale_ratio(self, batch_size):
        if self.lr_scaling == "none" or batch_size is None:
            return 1.0
        ratio = batch_size / self.base_batch_size
        return ratio if self.lr_scaling == "linear" else math.sqrt(ratio)

    def _lr_factor(self, batch_size):
        ratio = self._scale_ratio(batch_size)
        if self.schedule is None:
            return ratio
        return ratio * self.schedule.factor(self.step_count,
                                            self._epoch_progress(), ratio)

    def lr_at(self, batch_size=None, group=0):
        """The learning rate the next update of `group` uses with batches
        of `batch_size` (default: the last batch size seen, else B0)."""
        if batch_size is None:
            batch_size = self._last_batch_size
        return self.param_groups[group]["lr"] * self._lr_factor(batch_size)

    @property
    def effective_lr(self):
        """The learning rate of the next update of group 0, at the batch
        size of the last step() (B0 before the first)."""
        return self.lr_at()

    def describe(self, batch_size=None):
        """A summary for training loops to print at the start: the update
        rule, the hyper-parameters of each group and the effective lr at
        `batch_size` (default: the last batch size seen, else B0)."""
        if batch_size is None:
            batch_size = self._last_batch_size
        lines = [f"{type(self).__name__}: {self._rule()}"]
        ratio = self._scale_ratio(batch_size)
        factors = f" (lr x{ratio:.6g} for the batch size"
        if self.schedule is not None:
            factors += (f", x{self._lr_factor(batch_size) / ratio:.6g} by "
                        f"the schedule at step {self.step_count}")
        factors += ")"
        for index, group in enumerate(self.param_groups):
            hyper = ", ".join(f"{key}={group[key]!r}" for key in self._HYPER)
            lines.append(f"  group {index} ({len(group['params'])} params): "
                         f"{hyper}; effective lr "
                         f"{self.lr_at(batch_size, index):.6g}{factors}")
        if self.lr_scaling == "none":
            scaling = "lr_scaling='none' (lr independent of batch size)"
        else:
            rule = "B/B0" if self.lr_scaling == "linear" else "sqrt(B/B0)"
            scaling = (f"lr_scaling={self.lr_scaling!r}: lr * {rule}, "
                       f"B0={self.base_batch_size}, B={batch_size} -> x"
                       f"{self._scale_ratio(batch_size):.6g}")
        lines.append(f"  {scaling}; loss_reduction={self.loss_reduction!r}; "
                     f"accumulation_steps={self.accumulation_steps}")
        if self.schedule is not None:
            lines.append(f"  schedule: {self.schedule!r}")
        return "\n".join(lines)

    def _rule(self):
        return ""

    # -- steps --
    def zero_grad(self, set_to_none=True):
        """Clear every parameter's .grad (None by default, else zeros in
        place). Safe with accumulation: the optimiser keeps its own sum of
        the micro-batch gradients, so call this every micro-batch."""
        for group in self.param_groups:
            for param in group["params"]:
                if set_to_none:
                    param.grad = None
                elif param.grad is not None:
                    param.grad.fill(0)

    def step(self, batch_size=None):
        """Apply one update from the parameters' .grad (or, with
        accumulation_steps=k, add this micro-batch and update on every k-th
        call). batch_size: samples behind .grad; needed when lr_scaling is
        not "none" or loss_reduction is "sum". Returns True when the
        parameters were updated."""
        if batch_size is not None:
            if (isinstance(batch_size, bool)
                    or not isinstance(batch_size, numbers.Integral)
                    or batch_size < 1):
                raise ValueError(f"{type(self).__name__}.step: batch_size "
                                 f"must be an integer >= 1, got "
                                 f"{batch_size!r}")
            batch_size = int(batch_size)
        elif self.lr_scaling != "none" or self.loss_reduction == "sum":
            reason = ("lr_scaling=" + repr(self.lr_scaling)
                      if self.lr_scaling != "none" else "loss_reduction='sum'")
            raise ValueError(f"{type(self).__name__}.step: {reason} needs "
                             f"step(batch_size=...), got None")
        if self.accumulation_steps == 1:
            self._last_batch_size = (batch_size if batch_size is not None
                                     else self.base_batch_size)
            grad_scale = (1.0 / batch_size if self.loss_reduction == "sum"
                          else 1.0)
            factor = self._lr_factor(batch_size)
            self._apply([group["lr"] * factor for group in self.param_groups],
                        [[p.grad for p in group["params"]]
                         for group in self.param_groups], grad_scale)
            self.step_count += 1
            return True
        return self._accumulate(batch_size)

    def _accumulate(self, batch_size):
        sized = batch_size is not None
        if self._micro_step > 0 and sized != self._micro_sized:
            raise ValueError(f"{type(self).__name__}.step: give batch_size "
                             f"on every micro-batch of an accumulation "
                             f"window or on none")
        # Weights make the result the mean over all samples: a mean-loss
        # gradient counts its batch size, a sum-loss gradient counts 1.
        if self.loss_reduction == "mean" and sized:
            weight = float(batch_size)
        else:
            weight = 1.0
        for index, group in enumerate(self.param_groups):
            accumulators = self._accumulators[index]
            filled = self._filled[index]
            for position, param in enumerate(group["params"]):
                grad = param.grad
                if grad is None:
                    continue
                total = accumulators[position]
                if not filled[position]:
                    if total is None or total.shape != grad.shape:
                        total = accumulators[position] = np.empty_like(
                            param.data)
                    np.multiply(grad, weight, out=total)
                    filled[position] = True
                else:
                    total += grad if weight == 1.0 else grad * weight
        self._micro_sized = sized
        self._micro_step += 1
        self._micro_total += batch_size if sized else 1.0
        if self._micro_step < self.accumulation_steps:
            return False
        # The sample count: micro-batch sizes add up to the batch size.
        total_batch = int(self._micro_total) if sized else None
        self._last_batch_size = (total_batch if sized
                                 else self.base_batch_size)
        grad_scale = 1.0 / self._micro_total
        factor = self._lr_factor(total_batch)
        sums = [[total if filled else None for total, filled in
                 zip(self._accumulators[index], self._filled[index])]
                for index in range(len(self.param_groups))]
        self._apply([group["lr"] * factor for group in self.param_groups],
                    sums, grad_scale)
        for filled in self._filled:
            # a parameter without any gradient in the next window is skipped
            filled[:] = [False] * len(filled)
        self._micro_step = 0
        self._micro_total = 0.0
        self._micro_sized = None
        self.step_count += 1
        return True

    def _apply(self, lrs, grad_lists, grad_scale):
        """Update every group: lrs[i] and grad_lists[i] (None entries are
        skipped) of group i; the gradient used is grad_scale * grad."""
        for index, group in enumerate(self.param_groups):
            params = group["params"]
            self._update(index, params, [p.data for p in params],
                         grad_lists[index], lrs[index], grad_scale)

    def _update(self, group_index, params, datas, grads, lr, grad_scale):
        raise NotImplementedError

    # -- checkpoints --
    def state_dict(self):
        """A flat dict of NumPy arrays and numbers (no pickle needed, e.g.
        for numpy.savez): counters, numeric hyper-parameters of each group
        and every per-parameter buffer. String options (momentum_convention,
        lr_scaling, ...) and the schedule are configuration: build the
        optimiser with the same ones before load_state_dict."""
        state = {
            "n_groups": len(self.param_groups),
            "step_count": self.step_count,
            "epoch": self.epoch,
            "steps_per_epoch": self.steps_per_epoch or 0,
            "epoch_start_step": self._epoch_start_step,
            "last_batch_size": self._last_batch_size or 0,
            "micro_step": self._micro_step,
            "micro_total": self._micro_total,
            "micro_sized": int(bool(self._micro_sized)),
        }
        for index, group in enumerate(self.param_groups):
            prefix = f"group{index}."
            state[prefix + "n_params"] = len(group["params"])
            for key in self._HYPER:
                value = group[key]
                if isinstance(value, (tuple, list)):
                    state[prefix + key] = np.array(value, dtype=np.float64)
                elif isinstance(value, bool):
                    state[prefix + key] = int(value)
                else:
                    state[prefix + key] = value
            last = self._last_lrs[index]
            state[prefix + "last_lr"] = math.nan if last is None else last
            state[prefix + self._COUNTER] = self._counts[index].copy()
            for key, values in self._state[index].items():
                for position, value in enumerate(values):
                    state[f"{prefix}{key}.{position}"] = value.copy()
            if self.accumulation_steps > 1:
                state[prefix + "accumulated"] = np.array(
                    self._filled[index], dtype=np.int64)
                for position, value in enumerate(self._accumulators[index]):
                    state[f"{prefix}accumulator.{position}"] = value.copy()
        return state

    def load_state_dict(self, state):
        """Restore what state_dict() returned (values may be 0-d arrays, as
        numpy.load gives them). Raises if the groups or shapes differ."""
        name = type(self).__name__
        state = dict(state)

        def scalar(key):
            if key not in state:
                raise KeyError(f"{name}.load_state_dict: missing {key!r}")
            return np.asarray(state[key]).item()

        if scalar("n_groups") != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: state has "
                             f"{scalar('n_groups')} param groups, optimiser "
                             f"has {len(self.param_groups)}")
        restored = []
        for index, group in enumerate(self.param_groups):
            prefix = f"group{index}."
            if scalar(prefix + "n_params") != len(group["params"]):
                raise ValueError(f"{name}.load_state_dict: group {index} has "
                                 f"{scalar(prefix + 'n_params')} params in "
                                 f"the state, {len(group['params'])} here")
            hyper = {}
            for key, default in self._HYPER.items():
                value = np.asarray(state[prefix + key])
                if isinstance(default, tuple):
                    hyper[key] = tuple(float(v) for v in value)
                elif isinstance(default, bool):
                    hyper[key] = bool(value.item())
                else:
                    hyper[key] = float(value.item())
            n_params = len(group["params"])
            counts = self._restore_array(prefix + self._COUNTER, state,
                                         (n_params,), np.int64)
            candidate = dict(group, **hyper)
            self._validate_group(candidate, index)
            buffers = {}
            for key in self._buffers(candidate):
                buffers[key] = [
                    self._restore_array(f"{prefix}{key}.{position}", state,
                                        param.data.shape, param.data.dtype)
                    for position, param in enumerate(group["params"])]
            accumulators = self._accumulators[index]
            filled = [False] * n_params
            if self.accumulation_steps > 1:
                filled = [bool(flag) for flag in self._restore_array(
                    prefix + "accumulated", state, (n_params,), np.int64)]
                accumulators = [
                    self._restore_array(f"{prefix}accumulator.{position}",
                                        state, param.data.shape,
                                        param.data.dtype)
                    for position, param in enumerate(group["params"])]
            last = scalar(prefix + "last_lr")
            restored.append((hyper, counts, buffers, accumulators, filled,
                             None if math.isnan(last) else last))
        # every check passed: only now change the optimiser
        for index, (hyper, counts, buffers, accumulators, filled, last) in \
                enumerate(restored):
            self.param_groups[index].update(hyper)
            self._counts[index] = counts
            self._state[index] = buffers
            self._accumulators[index] = accumulators
            self._filled[index] = filled
            self._last_lrs[index] = last
        self.step_count = int(scalar("step_count"))
        self.epoch = int(scalar("epoch"))
        self.steps_per_epoch = int(scalar("steps_per_epoch")) or None
        self._epoch_start_step = int(scalar("epoch_start_step"))
        self._last_batch_size = int(scalar("last_batch_size")) or None
        self._micro_step = int(scalar("micro_step"))
        self._micro_total = float(scalar("micro_total"))
        self._micro_sized = (bool(scalar("micro_sized"))
                             if self._micro_step else None)

    def _restore_array(self, key, state, shape, dtype):
        """A C-contiguous copy of state[key], checked against shape."""
        if key not in state:
            raise KeyError(f"{type(self).__name__}.load_state_dict: missing "
                           f"{key!r}")
        value = np.asarray(state[key])
        if value.shape != tuple(shape):
            raise ValueError(f"{type(self).__name__}.load_state_dict: {key} "
                             f"has shape {value.shape}, expected "
                             f"{tuple(shape)}")
        return np.array(value, dtype=dtype, order="C")


# -- SGD ----------------------------------------------------------------------

class SGD(Optimizer):
    """Stochastic gradient descent with momentum, Nesterov, dampening,
    L2 weight decay (coupled or decoupled) and L1, as one fused kernel.

    Update of each parameter w with gradient g (lr = the effective learning
    rate of this step: lr * scaling(B/B0) * schedule; g the mean-loss
    gradient, see loss_reduction):
        g <- g + weight_decay * w + l1 * sign(w)     (coupled decay)
      momentum_convention="standard" (PyTorch; the default):
        v <- m v + (1 - dampening) g   (first step: v = g)
        w <- w - lr (g + m v if nesterov else v)
      momentum_convention="dlt" (DeepLearnToolbox nnapplygrads):
        v <- m c v + (1 - dampening) lr g   (first step: v = lr g)
        w <- w - (lr g + m v if nesterov else v)
        c = lr / lr_previous when the lr changed since the last step
        (Goyal et al. 2017's momentum correction; momentum_correction=False
        gives c = 1, DeepLearnToolbox's own behaviour).
      decoupled_weight_decay=True (SGDW, Loshchilov & Hutter 2019):
        w <- w - lr weight_decay w instead of adding weight_decay * w to g.
    Every parameter in a group decays: put biases in their own group with
    weight_decay=0 to exclude them (DeepLearnToolbox leaves biases out).
    With a constant lr both conventions give the same weights (v_dlt =
    lr v_standard); they differ when the lr changes, unless corrected.

    Batch size (see the module docstring): lr is the rate at
    base_batch_size B0 for a mean loss; lr_scaling="linear"/"sqrt" makes
    step(batch_size=B) use lr*B/B0 / lr*sqrt(B/B0); loss_reduction="sum"
    divides the gradient by B first (a summed loss already grows with B);
    accumulation_steps=k updates on every k-th step() with the mean
    gradient over the k micro-batches, at the rate for their total size;
    schedule multiplies the rate (LinearWarmup * StepDecay ...). Parameters
    without a gradient (.grad None) are skipped, their buffers untouched.
    """
    _HYPER = {"lr": None, "momentum": 0.0, "dampening": 0.0,
              "nesterov": False, "weight_decay": 0.0,
              "decoupled_weight_decay": False, "l1": 0.0}
    _COUNTER = "started"  # 1 once a parameter's momentum buffer started

    def __init__(self, params, lr, momentum=0.0, dampening=0.0,
                 nesterov=False, weight_decay=0.0,
                 decoupled_weight_decay=False, l1=0.0,
                 momentum_convention="standard", momentum_correction=True,
                 base_batch_size=None, lr_scaling="none",
                 accumulation_steps=1, loss_reduction="mean", schedule=None):
        self.momentum_convention = _choice(
            "SGD", "momentum_convention", momentum_convention,
            ("standard", "dlt"))
        self.momentum_correction = _flag("SGD", "momentum_correction",
                                         momentum_correction)
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        nesterov=nesterov, weight_decay=weight_decay,
                        decoupled_weight_decay=decoupled_weight_decay, l1=l1)
        super().__init__(params, defaults, base_batch_size, lr_scaling,
                         accumulation_steps, loss_reduction, schedule)
        self._started = [False] * len(self.param_groups)
        self._all_started = False
        self._all_params = [p for group in self.param_groups
                            for p in group["params"]]
        self._fused_cache = None

    def _buffers(self, group):
        return {"momentum_buffer": 0.0} if group["momentum"] != 0 else {}

    def _validate_group(self, group, index):
        owner = "SGD" if index == 0 else f"SGD (param group {index})"
        group["lr"] = _number(owner, "lr", group["lr"], low=0)
        group["momentum"] = _number(owner, "momentum", group["momentum"],
                                    low=0, high=1, high_open=True)
        group["dampening"] = _number(owner, "dampening", group["dampening"],
                                     low=0, high=1)
        group["nesterov"] = _flag(owner, "nesterov", group["nesterov"])
        group["weight_decay"] = _number(owner, "weight_decay",
                                        group["weight_decay"], low=0)
        group["decoupled_weight_decay"] = _flag(
            owner, "decoupled_weight_decay", group["decoupled_weight_decay"])
        group["l1"] = _number(owner, "l1", group["l1"], low=0)
        dtypes = sorted({str(p.data.dtype) for p in group["params"]})
        if len(dtypes) > 1:
            raise TypeError(f"{owner}: the fused update needs one dtype per "
                            f"param group, got {dtypes}; put float32 and "
                            f"float64 parameters in separate groups")
        if group["nesterov"] and (group["momentum"] == 0
                                  or group["dampening"] != 0):
            raise ValueError(f"{owner}: nesterov=True needs momentum > 0 and "
                             f"dampening == 0, got momentum="
                             f"{group['momentum']!r}, dampening="
                             f"{group['dampening']!r}")

    def _rule(self):
        if self.momentum_convention == "standard":
            return ("v <- m v + (1 - dampening) g (first v = g); "
                    "w <- w - lr v")
        correction = ("v rescaled by lr_new/lr_old when lr changes"
                    if self.momentum_correction else "no momentum correction")
        return (f"v <- m v + (1 - dampening) lr g (first v = lr g); "
                f"w <- w - v; {correction}")

    def step(self, batch_size=None):
        # The common case inlined: one fused kernel call for every group.
        if (self.accumulation_steps != 1 or self.loss_reduction != "mean"
                or batch_size is not None or self.lr_scaling != "none"):
            return super().step(batch_size)
        factor = (1.0 if self.schedule is None
                  else self._lr_factor(self.base_batch_size))
        groups = self.param_groups
        if len(groups) == 1:
            params = groups[0]["params"]
            self._update(0, params, [p.data for p in params],
                         [p.grad for p in params], groups[0]["lr"] * factor,
                         1.0)
        else:
            flat = self._all_params
            self._fused([group["lr"] * factor for group in groups],
                        [p.grad for p in flat], 1.0)
        self.step_count += 1
        return True

    def _apply(self, lrs, grad_lists, grad_scale):
        if len(self.param_groups) == 1:
            params = self.param_groups[0]["params"]
            self._update(0, params, [p.data for p in params], grad_lists[0],
                         lrs[0], grad_scale)
        else:
            self._fused(lrs, [grad for grad_list in grad_lists
                              for grad in grad_list], grad_scale)

    def _fused(self, lrs, grads, grad_scale):
        """Every group in one kernel call (grads: flat, in group order); a
        hyper-parameter that differs between groups goes as a list with
        one value per parameter."""
        ready = self._all_started
        if ready:
            for grad in grads:
                if grad is None:
                    ready = False
                    break
        if not ready:  # first steps or missing gradients: group by group
            start = 0
            for index, group in enumerate(self.param_groups):
                params = group["params"]
                stop = start + len(params)
                self._update(index, params, [p.data for p in params],
                             grads[start:stop], lrs[index], grad_scale)
                start = stop
            self._all_started = all(self._started)
            return
        fused = self._fused_lists()
        scales = [self._buffer_scale(index, lr)
                  for index, lr in enumerate(lrs)]
        _kernels.sgd_update(
            [p.data for p in self._all_params], grads, fused["buffers"],
            self._per_parameter(lrs, fused["sizes"]), fused["momentum"],
            fused["dampening"], fused["nesterov"], fused["weight_decay"],
            fused["decoupled_weight_decay"], fused["l1"],
            self.momentum_convention, False, grad_scale,
            self._per_parameter(scales, fused["sizes"]))

    @staticmethod
    def _per_parameter(values, sizes):
        """One number when all groups agree, else one value per parameter."""
        if values.count(values[0]) == len(values):
            return values[0]
        expanded = []
        for value, size in zip(values, sizes):
            expanded += [value] * size
        return expanded

    _FUSED_KEYS = ("momentum", "dampening", "nesterov", "weight_decay",
                   "decoupled_weight_decay", "l1")
    _fused_values = operator.itemgetter(*_FUSED_KEYS)

    def _fused_lists(self):
        """Per-parameter lists of the groups' fixed hyper-parameters and
        buffers, rebuilt only when a group's values change (the buffers
        change only through load_state_dict or momentum switched on, which
        drop the cache)."""
        values = [self._fused_values(group) for group in self.param_groups]
        cached = self._fused_cache
        if cached is not None and cached[0] == values:
            return cached[1]
        sizes = [len(group["params"]) for group in self.param_groups]
        fused = {key: self._per_parameter([group[key] for group in
                                           self.param_groups], sizes)
                 for key in self._FUSED_KEYS}
        fused["sizes"], fused["buffers"] = sizes, []
        for index, count in enumerate(sizes):
            fused["buffers"] += self._state[index].get("momentum_buffer",
                                                       [None] * count)
        self._fused_cache = (values, fused)
        return fused

    def _buffer_scale(self, group_index, lr):
        """The "dlt" momentum correction lr / lr_previous of a group, and
        remember lr as its previous rate."""
        last = self._last_lrs[group_index]
        self._last_lrs[group_index] = lr
        if (self.momentum_convention == "dlt" and self.momentum_correction
                and last and last != lr):
            return lr / last
        return 1.0

    def _update(self, group_index, params, datas, grads, lr, grad_scale):
        group = self.param_groups[group_index]
        momentum = group["momentum"]
        buffers = None
        if momentum != 0:
            state = self._state[group_index]
            if "momentum_buffer" not in state:  # momentum switched on later
                state["momentum_buffer"] = [np.zeros_like(d) for d in datas]
                self._fused_cache = None
            buffers = state["momentum_buffer"]
        buffer_scale = self._buffer_scale(group_index, lr)
        # Fast path: every parameter has a gradient and a started buffer.
        ready = self._started[group_index]
        if ready:
            for grad in grads:
                if grad is None:
                    ready = False
                    break
        if ready:
            _kernels.sgd_update(
                datas, grads, buffers, lr, momentum, group["dampening"],
                group["nesterov"], group["weight_decay"],
                group["decoupled_weight_decay"], group["l1"],
                self.momentum_convention, False, grad_scale, buffer_scale)
            return
        counts = self._counts[group_index]
        present = [k for k, grad in enumerate(grads) if grad is not None]
        for first in (False, True):
            # a buffer starts from the gradient itself (no dampening)
            positions = [k for k in present if bool(counts[k] == 0) == first]
            if not positions:
                continue
            _kernels.sgd_update(
                [datas[k] for k in positions], [grads[k] for k in positions],
                None if buffers is None else [buffers[k] for k in positions],
                lr, momentum, group["dampening"], group["nesterov"],
                group["weight_decay"], group["decoupled_weight_decay"],
                group["l1"], self.momentum_convention, first, grad_scale,
                buffer_scale)
        counts[present] = 1
        self._started[group_index] = bool(counts.all())

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self._started = [bool(counts.all()) for counts in self._counts]
        self._all_started = all(self._started)
        self._fused_cache = None


# -- adaptive optimisers (in-place NumPy) -------------------------------------

class _Elementwise(Optimizer):
    """Shared loop of the NumPy optimisers: per present parameter, call
    `_update_one(group, position, w, g, lr, grad_scale)`."""

    def _update(self, group_index, params, datas, grads, lr, grad_scale):
        group = self.param_groups[group_index]
        self._last_lrs[group_index] = lr
        state = dict(self._state[group_index],
                     _scratch=self._scratch[group_index],
                     _counts=self._counts[group_index])
        for position, (data, grad) in enumerate(zip(datas, grads)):
            if grad is None:
                continue
            if grad.shape != data.shape or grad.dtype != data.dtype:
                raise ValueError(
                    f"{type(self).__name__}: gradient of parameter "
                    f"{position} has shape {grad.shape} and dtype "
                    f"{grad.dtype}, parameter has {data.shape} {data.dtype}")
            self._update_one(group, state, position, data, grad, lr,
                             grad_scale)
            self._counts[group_index][position] += 1

    def _scaled_gradient(self, group, state, position, data, grad,
                         grad_scale):
        """scratch = grad_scale * grad + weight_decay * w (coupled); the
        scratch arrays are not part of the state."""
        scratches = state["_scratch"]
        scratch = scratches.get(position)
        if scratch is None or scratch.shape != data.shape \
                or scratch.dtype != data.dtype:
            scratch = scratches[position] = np.empty_like(data)
        np.multiply(grad, grad_scale, out=scratch)
        weight_decay = group.get("weight_decay", 0.0)
        if weight_decay and not group.get("decoupled_weight_decay", False):
            scratch += weight_decay * data
        return scratch


class RMSProp(_Elementwise):
    """RMSProp (Tieleman & Hinton 2012), PyTorch's form:
        g <- g + weight_decay w
        s <- alpha s + (1 - alpha) g^2        (s starts at 0)
        centered: a <- alpha a + (1 - alpha) g;  d = sqrt(s - a^2) + eps
        else d = sqrt(s) + eps
        momentum > 0: b <- m b + g / d;  w <- w - lr b  (b starts at 0)
        else w <- w - lr g / d
    lr scales with the batch-size rule like SGD's (sqrt is the usual choice
    for adaptive methods). Biases decay unless in a group with
    weight_decay=0."""
    _HYPER = {"lr": None, "alpha": 0.99, "eps": 1e-8, "momentum": 0.0,
              "centered": False, "weight_decay": 0.0}

    def __init__(self, params, lr=0.01, alpha=0.99, eps=1e-8, momentum=0.0,
                 centered=False, weight_decay=0.0, base_batch_size=None,
                 lr_scaling="none", accumulation_steps=1,
                 loss_reduction="mean", schedule=None):
        defaults = dict(lr=lr, alpha=alpha, eps=eps, momentum=momentum,
                        centered=centered, weight_decay=weight_decay)
        super().__init__(params, defaults, base_batch_size, lr_scaling,
                         accumulation_steps, loss_reduction, schedule)

    def _buffers(self, group):
        names = ["square_avg"]
        names += ["grad_avg"] if group["centered"] else []
        names += ["momentum_buffer"] if group["momentum"] > 0 else []
        return dict.fromkeys(names, 0.0)

    def _validate_group(self, group, index):
        owner = "RMSProp" if index == 0 else f"RMSProp (param group {index})"
        group["lr"] = _number(owner, "lr", group["lr"], low=0)
        group["alpha"] = _number(owner, "alpha", group["alpha"], low=0,
                                 high=1)
        group["eps"] = _number(owner, "eps", group["eps"], low=0)
        group["momentum"] = _number(owner, "momentum", group["momentum"],
                                    low=0, high=1, high_open=True)
        group["centered"] = _flag(owner, "centered", group["centered"])
        group["weight_decay"] = _number(owner, "weight_decay",
                                        group["weight_decay"], low=0)

    def _rule(self):
        return "s <- alpha s + (1-alpha) g^2; w <- w - lr g / (sqrt(s) + eps)"

    def _update_one(self, group, state, position, w, grad, lr, grad_scale):
        g = self._scaled_gradient(group, state, position, w, grad,
                                  grad_scale)
        alpha = group["alpha"]
        square_avg = state["square_avg"][position]
        square_avg *= alpha
        square_avg += (1 - alpha) * g * g
        if group["centered"]:
            grad_avg = state["grad_avg"][position]
            grad_avg *= alpha
            grad_avg += (1 - alpha) * g
            denom = np.sqrt(square_avg - grad_avg * grad_avg)
        else:
            denom = np.sqrt(square_avg)
        denom += group["eps"]
        if group["momentum"] > 0:
            buffer = state["momentum_buffer"][position]
            buffer *= group["momentum"]
            buffer += g / denom
            w -= lr * buffer
        else:
            w -= lr * (g / denom)


class Adam(_Elementwise):
    """Adam (Kingma & Ba 2015, Algorithm 1), PyTorch's form:
        g <- g + weight_decay w                 (coupled L2; Adam only)
        m <- beta1 m + (1 - beta1) g;  v <- beta2 v + (1 - beta2) g^2
        (m, v start at 0; t counts this parameter's updates from 1)
        amsgrad: v_max <- max(v_max, v), used in place of v
        w <- w - lr (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
    AdamW (Loshchilov & Hutter 2019) instead first applies
        w <- w - lr weight_decay w.
    For the batch size, the square-root rule is the one derived for Adam
    (Malladi et al. 2022); the gradient scale (mean vs sum loss) mostly
    cancels in m / sqrt(v) except against eps."""
    _HYPER = {"lr": None, "betas": (0.9, 0.999), "eps": 1e-8,
              "weight_decay": 0.0, "amsgrad": False}
    _COUNTER = "step"
    _decoupled = False

    def __init__(self, params, lr=0.001, betas=(0.9, 0.999), eps=1e-8,
                 weight_decay=0.0, amsgrad=False, base_batch_size=None,
                 lr_scaling="none", accumulation_steps=1,
                 loss_reduction="mean", schedule=None):
        defaults = dict(lr=lr, betas=betas, eps=eps,
                        weight_decay=weight_decay, amsgrad=amsgrad)
        super().__init__(params, defaults, base_batch_size, lr_scaling,
                         accumulation_steps, loss_reduction, schedule)

    def _validate_group(self, group, index):
        name = type(self).__name__
        owner = name if index == 0 else f"{name} (param group {index})"
        group["lr"] = _number(owner, "lr", group["lr"], low=0)
        betas = group["betas"]
        if not isinstance(betas, (tuple, list, np.ndarray)) or \
                len(betas) != 2:
            raise ValueError(f"{owner}: betas must be a pair, got {betas!r}")
        group["betas"] = (
            _number(owner, "betas[0]", betas[0], low=0, high=1,
                    high_open=True),
            _number(owner, "betas[1]", betas[1], low=0, high=1,
                    high_open=True))
        group["eps"] = _number(owner, "eps", group["eps"], low=0)
        group["weight_decay"] = _number(owner, "weight_decay",
                                        group["weight_decay"], low=0)
        group["amsgrad"] = _flag(owner, "amsgrad", group["amsgrad"])
        group["decoupled_weight_decay"] = self._decoupled

    def _buffers(self, group):
        names = ["exp_avg", "exp_avg_sq"]
        names += ["max_exp_avg_sq"] if group["amsgrad"] else []
        return dict.fromkeys(names, 0.0)

    def _rule(self):
        decay = ("w <- w - lr wd w; " if self._decoupled
                 else "g <- g + wd w; ")
        return (decay + "m, v <- EMAs of g, g^2; "
                "w <- w - lr m_hat / (sqrt(v_hat) + eps)")

    def _update_one(self, group, state, position, w, grad, lr, grad_scale):
        if self._decoupled and group["weight_decay"]:
            w *= 1 - lr * group["weight_decay"]
        g = self._scaled_gradient(group, state, position, w, grad,
                                  grad_scale)
        beta1, beta2 = group["betas"]
        t = int(state["_counts"][position]) + 1  # this update's number
        exp_avg = state["exp_avg"][position]
        exp_avg_sq = state["exp_avg_sq"][position]
        exp_avg *= beta1
        exp_avg += (1 - beta1) * g
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * g * g
        if group["amsgrad"]:
            max_sq = state["max_exp_avg_sq"][position]
            np.maximum(max_sq, exp_avg_sq, out=max_sq)
            second = max_sq
        else:
            second = exp_avg_sq
        correction1 = 1 - beta1 ** t
        correction2 = 1 - beta2 ** t
        denom = np.sqrt(second / correction2)
        denom += group["eps"]
        w -= (lr / correction1) * exp_avg / denom


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019):
    w <- w - lr weight_decay w, then the Adam step (see Adam). Default
    weight_decay=0.01 as in PyTorch."""
    _decoupled = True

    def __init__(self, params, lr=0.001, betas=(0.9, 0.999), eps=1e-8,
                 weight_decay=0.01, amsgrad=False, base_batch_size=None,
                 lr_scaling="none", accumulation_steps=1,
                 loss_reduction="mean", schedule=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad,
                         base_batch_size, lr_scaling, accumulation_steps,
                         loss_reduction, schedule)


class Rprop(_Elementwise):
    """Resilient backpropagation (Riedmiller & Braun 1993; iRprop- of Igel &
    Huesken 2000, PyTorch's form), for full-batch training:
        s = sign(g * g_prev)            (g_prev starts at 0)
        step <- clip(step * (eta_plus if s > 0, eta_minus if s < 0, else 1),
                     step_min, step_max)   (step starts at lr)
        g <- 0 where s < 0;  w <- w - sign(g) step;  g_prev <- g
    Only the sign of the gradient is used, so the loss reduction and the
    batch size do not matter; lr_scaling and schedules are refused.
    accumulation_steps sums a full-batch gradient over chunks."""
    _HYPER = {"lr": None, "etas": (0.5, 1.2), "step_sizes": (1e-6, 50.0)}

    def __init__(self, params, lr=0.01, etas=(0.5, 1.2),
                 step_sizes=(1e-6, 50.0), accumulation_steps=1,
                 loss_reduction="mean", base_batch_size=None,
                 lr_scaling="none", schedule=None):
        if lr_scaling != "none":
            raise ValueError(f"Rprop: lr_scaling must be 'none' (Rprop uses "
                             f"only the sign of the full-batch gradient), "
                             f"got {lr_scaling!r}")
        if schedule is not None:
            raise ValueError(f"Rprop: schedules do not apply (its step sizes "
                             f"adapt by themselves), got {schedule!r}")
        defaults = dict(lr=lr, etas=etas, step_sizes=step_sizes)
        super().__init__(params, defaults, base_batch_size, lr_scaling,
                         accumulation_steps, loss_reduction, schedule)

    def _buffers(self, group):
        return {"prev": 0.0, "step_size": group["lr"]}

    def _validate_group(self, group, index):
        owner = "Rprop" if index == 0 else f"Rprop (param group {index})"
        group["lr"] = _number(owner, "lr", group["lr"], low=0, low_open=True)
        etas, sizes = group["etas"], group["step_sizes"]
        if not isinstance(etas, (tuple, list, np.ndarray)) or len(etas) != 2:
            raise ValueError(f"{owner}: etas must be a pair, got {etas!r}")
        eta_minus = _number(owner, "etas[0]", etas[0], low=0, high=1,
                            low_open=True, high_open=True)
        eta_plus = _number(owner, "etas[1]", etas[1], low=1, low_open=True)
        group["etas"] = (eta_minus, eta_plus)
        if not isinstance(sizes, (tuple, list, np.ndarray)) or \
                len(sizes) != 2:
            raise ValueError(f"{owner}: step_sizes must be a pair, got "
                             f"{sizes!r}")
        low = _number(owner, "step_sizes[0]", sizes[0], low=0)
        high = _number(owner, "step_sizes[1]", sizes[1], low=0)
        if low > high:
            raise ValueError(f"{owner}: step_sizes must be (min, max) with "
                             f"min <= max, got {tuple(sizes)!r}")
        group["step_sizes"] = (low, high)

    def _rule(self):
        return ("step <- step * eta+/- by sign(g g_prev); "
                "w <- w - sign(g) step")

    def _update_one(self, group, state, position, w, grad, lr, grad_scale):
        g = self._scaled_gradient(group, state, position, w, grad,
                                  grad_scale)
        prev = state["prev"][position]
        step_size = state["step_size"][position]
        eta_minus, eta_plus = group["etas"]
        step_min, step_max = group["step_sizes"]
        product = np.sign(g * prev)
        factors = np.where(product > 0, eta_plus,
                           np.where(product < 0, eta_minus, 1.0))
        step_size *= factors.astype(w.dtype, copy=False)
        np.clip(step_size, step_min, step_max, out=step_size)
        g[product < 0] = 0
        w -= np.sign(g) * step_size
        prev[...] = g
