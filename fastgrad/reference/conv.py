"""References of the convolution and subsampling kernels (NCHW, stride 1).

Convolutions are einsums over the kernel offsets (p, q) of a zero-padded
input; float64 accumulation, result cast to the output dtype.
"""
import numpy as np

from fastgrad.reference.eltwise import act_backward, act_forward

__all__ = ["conv2d_forward", "conv2d_backward_input",
           "conv2d_backward_weight", "conv2d_backward_bias",
           "meanpool_forward", "meanpool_backward",
           "maxpool2x2_forward", "maxpool2x2_backward"]


def _pad(x, pad_h, pad_w):
    return np.pad(x.astype(np.float64),
                  ((0, 0), (0, 0), (pad_h, pad_h), (pad_w, pad_w)))


def conv2d_forward(x, weight, bias, out, pad_h, pad_w, activation="none"):
    """out[n,m,i,j] := activation(bias[m] + sum_{c,p,q} weight[m,c,p,q]
    * xpad[n,c,i+p,j+q])."""
    xp = _pad(x, pad_h, pad_w)
    _, _, oh, ow = out.shape
    total = np.zeros(out.shape)
    for p in range(weight.shape[2]):
        for q in range(weight.shape[3]):
            total += np.einsum("ncij,mc->nmij", xp[:, :, p:p + oh, q:q + ow],
                               weight[:, :, p, q].astype(np.float64))
    if bias is not None:
        total += bias.astype(np.float64)[None, :, None, None]
    act_forward(total, out, activation)
    return out


def conv2d_backward_input(dy, weight, dx, pad_h, pad_w):
    """dx := the gradient of sum(dy * conv2d(x)) with respect to x."""
    n, c, h, w = dx.shape
    _, _, oh, ow = dy.shape
    total = np.zeros((n, c, h + 2 * pad_h, w + 2 * pad_w))
    for p in range(weight.shape[2]):
        for q in range(weight.shape[3]):
            total[:, :, p:p + oh, q:q + ow] += np.einsum(
                "nmij,mc->ncij", dy.astype(np.float64),
                weight[:, :, p, q].astype(np.float64))
    dx[...] = total[:, :, pad_h:pad_h + h, pad_w:pad_w + w]
    return dx


def conv2d_backward_weight(x, dy, dweight, pad_h, pad_w):
    """dweight[m,c,p,q] := sum_{n,i,j} dy[n,m,i,j] xpad[n,c,i+p,j+q]."""
    xp = _pad(x, pad_h, pad_w)
    _, _, oh, ow = dy.shape
    for p in range(dweight.shape[2]):
        for q in range(dweight.shape[3]):
            dweight[:, :, p, q] = np.einsum(
                "nmij,ncij->mc", dy.astype(np.float64),
                xp[:, :, p:p + oh, q:q + ow])
    return dweight


def conv2d_backward_bias(dy, dbias):
    """dbias[m] := sum_{n,i,j} dy[n,m,i,j]."""
    dbias[...] = dy.astype(np.float64).sum(axis=(0, 2, 3))
    return dbias


def meanpool_forward(x, out, scale):
    """out := mean over non-overlapping scale x scale blocks."""
    n, c, h, w = x.shape
    blocks = x.astype(np.float64).reshape(n, c, h // scale, scale,
                                          w // scale, scale)
    out[...] = blocks.mean(axis=(3, 5))
    return out


def meanpool_backward(dy, dx, scale, y=None, activation="none"):
    """dx := dy spread over its block, divided by scale^2; with y, times
    the activation's derivative from its output y."""
    spread = np.repeat(np.repeat(dy, scale, axis=2), scale, axis=3)
    dx[...] = spread / (scale * scale)
    if y is not None:
        act_backward(y, dx.copy(), dx, activation)
    return dx


def maxpool2x2_forward(x, out, argmax):
    """out := max over 2x2 blocks; argmax := flat in-plane index (h*W+w) of
    the first maximum in row-major order."""
    n, c, h, w = x.shape
    oh, ow = h // 2, w // 2
    blocks = x[:, :, :2 * oh, :2 * ow].reshape(n, c, oh, 2, ow, 2)
    blocks = blocks.transpose(0, 1, 2, 4, 3, 5).reshape(n, c, oh, ow, 4)
    which = blocks.argmax(axis=-1)
    rows = 2 * np.arange(oh)[:, None] + which // 2
    cols = 2 * np.arange(ow)[None, :] + which % 2
    out[...] = np.take_along_axis(blocks, which[..., None], axis=-1)[..., 0]
    argmax[...] = rows * w + cols
    return out, argmax


def maxpool2x2_backward(dy, argmax, dx):
    """dx := 0; dx[n,c].flat[argmax[n,c,i,j]] += dy[n,c,i,j]."""
    n, c, h, w = dx.shape
    planes = np.zeros((n * c, h * w), dtype=dx.dtype)
    size = (h // 2) * (w // 2)
    index = argmax.reshape(n * c, size)
    np.add.at(planes, (np.arange(n * c)[:, None], index),
              dy.reshape(n * c, size))
    dx[...] = planes.reshape(dx.shape)
    return dx
