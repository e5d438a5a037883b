"""References of the fused activation kernels."""
import numpy as np

__all__ = ["act_forward", "act_backward"]

TANH_OPT_A, TANH_OPT_B = 1.7159, 2.0 / 3.0


def act_forward(x, out, activation):
    """out := f(x)."""
    functions = {
        "none": lambda v: v,
        "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
        "tanh": np.tanh,
        "tanh_opt": lambda v: TANH_OPT_A * np.tanh(TANH_OPT_B * v),
        "relu": lambda v: np.maximum(v, 0),
    }
    out[...] = functions[activation](x)
    return out


def act_backward(y, dy, dx, activation):
    """dx := dy * f'(x) from y = f(x)."""
    derivatives = {
        "none": lambda v: np.ones_like(v),
        "sigmoid": lambda v: v * (1 - v),
        "tanh": lambda v: 1 - v * v,
        "tanh_opt": lambda v: TANH_OPT_B / TANH_OPT_A * (TANH_OPT_A ** 2 - v * v),
        "relu": lambda v: (v > 0).astype(v.dtype),
    }
    dx[...] = dy * derivatives[activation](y)
    return dx
