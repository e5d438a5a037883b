"""Reference of the fused optimiser update (fastgrad._kernels.sgd_update)."""
import numpy as np

__all__ = ["sgd_update"]


def sgd_update(params, grads, buffers, lr, momentum=0.0, dampening=0.0,
               nesterov=False, weight_decay=0.0, decoupled_weight_decay=False,
               l1=0.0, momentum_convention="standard", first_step=False,
               grad_scale=1.0, buffer_scale=1.0):
    """In-place SGD step of every params[k] from grads[k] (and buffers[k]
    when momentum != 0), written plainly with NumPy temporaries. The math
    is documented on fastgrad._kernels.sgd_update."""
    if momentum_convention not in ("standard", "dlt"):
        raise ValueError(f"sgd_update: momentum_convention must be one of "
                         f"('standard', 'dlt'), got {momentum_convention!r}")
    dlt = momentum_convention == "dlt"
    for k, (w, grad) in enumerate(zip(params, grads)):
        dtype = w.dtype.type
        old = w.copy()
        g = dtype(grad_scale) * grad + dtype(l1) * np.sign(old)
        if not decoupled_weight_decay:
            g = g + dtype(weight_decay) * old
        if momentum != 0:
            v = buffers[k]
            if dlt:
                g = dtype(lr) * g
            if first_step:
                v[...] = g
            else:
                v[...] = (dtype(momentum * buffer_scale) * v
                          + dtype(1 - dampening) * g)
            update = g + dtype(momentum) * v if nesterov else v.copy()
        else:
            update = g
        if not (dlt and momentum != 0):
            update = dtype(lr) * update
        if decoupled_weight_decay:
            w[...] = dtype(1 - lr * weight_decay) * old - update
        else:
            w[...] = old - update
    return params
