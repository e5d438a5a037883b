"""Reference of the fused optimiser update (fastgrad._kernels.sgd_update)."""
import numpy as np

__all__ = ["sgd_update"]


def _each(value, n):
    """One value per parameter from a number or a list of n numbers."""
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"sgd_update: {len(value)} values for {n} "
                             f"params")
        return list(value)
    return [value] * n


def sgd_update(params, grads, buffers, lr, momentum=0.0, dampening=0.0,
               nesterov=False, weight_decay=0.0, decoupled_weight_decay=False,
               l1=0.0, momentum_convention="standard", first_step=False,
               grad_scale=1.0, buffer_scale=1.0):
    """In-place SGD step of every params[k] from grads[k] (and buffers[k]
    where momentum != 0), written plainly with NumPy temporaries. Each
    hyper-parameter is a number or a list with one per parameter. The math
    is documented on fastgrad._kernels.sgd_update."""
    if momentum_convention not in ("standard", "dlt"):
        raise ValueError(f"sgd_update: momentum_convention must be one of "
                         f"('standard', 'dlt'), got {momentum_convention!r}")
    dlt = momentum_convention == "dlt"
    n = len(params)
    settings = zip(*(_each(value, n) for value in (
        lr, momentum, dampening, nesterov, weight_decay,
        decoupled_weight_decay, l1, first_step, grad_scale, buffer_scale)))
    for k, (lr_k, m, d, nest, wd, decoupled, l1_k, first, scale,
            correction) in enumerate(settings):
        w, grad = params[k], grads[k]
        dtype = w.dtype.type
        old = w.copy()
        g = dtype(scale) * grad + dtype(l1_k) * np.sign(old)
        if not decoupled:
            g = g + dtype(wd) * old
        if m != 0:
            v = buffers[k]
            if dlt:
                g = dtype(lr_k) * g
            if first:
                v[...] = g
            else:
                v[...] = dtype(m * correction) * v + dtype(1 - d) * g
            update = g + dtype(m) * v if nest else v.copy()
        else:
            update = g
        if not (dlt and m != 0):
            update = dtype(lr_k) * update
        if decoupled:
            w[...] = dtype(1 - lr_k * wd) * old - update
        else:
            w[...] = old - update
    return params
