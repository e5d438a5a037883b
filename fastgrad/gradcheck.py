"""Finite-difference gradient checking (float64, central differences)."""
import numpy as np

from fastgrad.tensor import Tensor


class GradcheckError(AssertionError):
    """The analytical gradient disagrees with finite differences."""


def _forward(fn, inputs):
    out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, "
                        f"got {type(out).__name__}")
    return out


def _value(fn, inputs):
    return np.array(_forward(fn, inputs).data, dtype=np.float64)


def gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-4, seed=0):
    """Check the gradients of `fn(*inputs)` against central differences.

    inputs: float64 Tensors; those with requires_grad are checked. With a
    random upstream gradient u and random directions v_i, compares
    <J^T u, v> from backward() with <u, J v> from
    (f(x + eps v) - f(x - eps v)) / (2 eps) (autograd's test); also checks
    that a zero upstream gradient gives zero gradients and that two backward
    passes agree. fn must be deterministic: reseed samplers inside it.
    On failure raises GradcheckError naming the input, the element index and
    the analytical and numerical values (found element by element).
    Returns True.
    """
    checked = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True")
    for position, t in enumerate(checked):
        if t.dtype != np.float64:
            raise TypeError(f"gradcheck: checked input {position} is "
                            f"{t.dtype}; gradients are checked in float64")
    rng = np.random.default_rng(seed)
    out = _forward(fn, inputs)
    upstream = rng.standard_normal(out.shape)
    analytical = _backward(out, upstream, checked)

    again = _backward(_forward(fn, inputs), upstream, checked)
    for position, (first, second) in enumerate(zip(analytical, again)):
        if not np.array_equal(first, second):
            raise GradcheckError(f"gradcheck: two backward passes disagree "
                                 f"for checked input {position}")
    zeros = _backward(_forward(fn, inputs), np.zeros(out.shape), checked)
    for position, grad in enumerate(zeros):
        if np.any(grad != 0):
            raise GradcheckError(f"gradcheck: a zero upstream gradient gives "
                                 f"a non-zero gradient for checked input "
                                 f"{position}")

    directions = [rng.standard_normal(t.shape) for t in checked]
    backward_dot = sum(np.vdot(g, v) for g, v in zip(analytical, directions))
    originals = [t.data.copy() for t in checked]
    try:
        for t, original, v in zip(checked, originals, directions):
            t.data[...] = original + eps * v
        plus = _value(fn, inputs)
        for t, original, v in zip(checked, originals, directions):
            t.data[...] = original - eps * v
        minus = _value(fn, inputs)
    finally:
        for t, original in zip(checked, originals):
            t.data[...] = original
    forward_dot = np.vdot(upstream, (plus - minus) / (2 * eps))
    if abs(forward_dot - backward_dot) <= atol + rtol * abs(forward_dot):
        return True
    _locate(fn, inputs, checked, analytical, upstream, eps, atol, rtol)
    raise GradcheckError(
        f"gradcheck: <u, J v> = {forward_dot!r} from finite differences but "
        f"<J^T u, v> = {backward_dot!r} from backward (no single element "
        "differed beyond tolerance)")


def _backward(out, upstream, checked):
    for t in checked:
        t.grad = None
    if out.requires_grad:
        out.backward(upstream.astype(out.dtype))
    return [np.zeros(t.shape) if t.grad is None else t.grad.copy()
            for t in checked]


def _locate(fn, inputs, checked, analytical, upstream, eps, atol, rtol):
    """Compare element by element; raise at the first element that differs."""
    for position, (t, grad) in enumerate(zip(checked, analytical)):
        flat = t.data.reshape(-1)
        for index in range(flat.size):
            original = flat[index]
            try:
                flat[index] = original + eps
                plus = np.vdot(upstream, _value(fn, inputs))
                flat[index] = original - eps
                minus = np.vdot(upstream, _value(fn, inputs))
            finally:
                flat[index] = original
            numerical = (plus - minus) / (2 * eps)
            analytic = grad.reshape(-1)[index]
            if abs(numerical - analytic) > atol + rtol * abs(numerical):
                element = np.unravel_index(index, t.shape)
                raise GradcheckError(
                    f"gradcheck: checked input {position} (shape {t.shape}), "
                    f"element {tuple(int(i) for i in element)}: analytical "
                    f"{analytic!r}, numerical {numerical!r}")
