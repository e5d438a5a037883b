"""References of the GEMM kernels (NumPy's matmul; same signatures)."""
import numpy as np

from fastgrad.reference.eltwise import act_forward

__all__ = ["gemm", "linear_forward"]


def gemm(a, b, c, trans_a=False, trans_b=False, alpha=1.0, beta=0.0):
    """c := alpha * op(a) @ op(b) + beta * c, op(x) = x.T when its flag is
    set; with beta == 0 the old contents of c are ignored."""
    op_a = a.T if trans_a else a
    op_b = b.T if trans_b else b
    dtype = c.dtype.type
    product = dtype(alpha) * np.matmul(op_a, op_b)
    if beta == 0:
        c[...] = product
    else:
        c[...] = product + dtype(beta) * c
    return c


def linear_forward(x, weight, bias, out, activation):
    """out := act(x @ weight.T + bias); x (batch, n_in), weight
    (n_out, n_in), bias (n_out,) or None."""
    pre = np.matmul(x, weight.T)
    if bias is not None:
        pre += bias
    return act_forward(pre, out, activation)
