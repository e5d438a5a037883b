"""References of the batch normalisation kernels (fastgrad/_bn.pxi).

Plain float64 NumPy, two passes (mean, then centred variance), one ghost
batch at a time; results are cast to the dtype of x like the kernels'.
Ghost batches: consecutive chunks of `ghost_batch_size` samples, the last one
possibly smaller; 0 means the whole batch.
"""
import numpy as np

__all__ = ["bn_forward_train", "bn_forward_eval", "bn_backward_train",
           "bn_backward_eval"]


def _as_ncs(x):
    """x viewed as (N, C, S) float64."""
    return np.asarray(x, dtype=np.float64).reshape(x.shape[0], x.shape[1], -1)


def _groups(n_samples, ghost_batch_size):
    """Slices of the ghost batches."""
    if ghost_batch_size == 0 or ghost_batch_size >= n_samples:
        return [slice(0, n_samples)]
    return [slice(start, min(start + ghost_batch_size, n_samples))
            for start in range(0, n_samples, ghost_batch_size)]


def bn_forward_train(x, weight, bias, out, mean, invstd, running_mean,
                     running_var, ghost_batch_size, momentum, eps):
    """out := (x - mean_g) * invstd_g * weight + bias per ghost batch g;
    running stats := (1 - momentum) running + momentum batch stat (batch
    mean; size-weighted average of the ghost batches' unbiased variances)."""
    x64 = _as_ncs(x)
    n_samples = x.shape[0]
    w = np.asarray(weight, np.float64)[None, :, None]
    b = np.asarray(bias, np.float64)[None, :, None]
    y = np.empty_like(x64)
    mean_sum = np.zeros(x.shape[1])
    var_sum = np.zeros(x.shape[1])
    for g, rows in enumerate(_groups(n_samples, ghost_batch_size)):
        chunk = x64[rows]
        m = chunk.shape[0] * chunk.shape[2]
        mu = chunk.mean(axis=(0, 2))
        var = ((chunk - mu[None, :, None]) ** 2).mean(axis=(0, 2))
        mean[g] = mu
        invstd[g] = 1.0 / np.sqrt(var + eps)
        mu_r = mean[g].astype(np.float64)[None, :, None]
        s_r = invstd[g].astype(np.float64)[None, :, None]
        y[rows] = (chunk - mu_r) * s_r * w + b
        count = chunk.shape[0]
        mean_sum += count * mu
        var_sum += count * var * m / (m - 1)
    out[...] = y.reshape(x.shape)
    if running_mean is not None:
        running_mean[...] = ((1 - momentum) * running_mean.astype(np.float64)
                             + momentum * mean_sum / n_samples)
        running_var[...] = ((1 - momentum) * running_var.astype(np.float64)
                            + momentum * var_sum / n_samples)
    return out


def bn_forward_eval(x, weight, bias, running_mean, running_var, out, eps):
    """out := (x - running_mean) / sqrt(running_var + eps) * weight + bias."""
    x64 = _as_ncs(x)
    mu = np.asarray(running_mean, np.float64)[None, :, None]
    s = 1.0 / np.sqrt(np.asarray(running_var, np.float64) + eps)
    w = np.asarray(weight, np.float64)
    b = np.asarray(bias, np.float64)[None, :, None]
    out[...] = ((x64 - mu) * (w * s)[None, :, None] + b).reshape(x.shape)
    return out


def bn_backward_train(x, dy, weight, mean, invstd, dx, dweight, dbias,
                      ghost_batch_size):
    """Exact VJP through the statistics, per ghost batch g of m values:
    dx := weight invstd (dy - mean(dy) - xhat mean(dy xhat)),
    dweight := sum(dy xhat), dbias := sum(dy)."""
    x64, dy64 = _as_ncs(x), _as_ncs(dy)
    w = np.asarray(weight, np.float64)[None, :, None]
    grad = np.empty_like(x64)
    dw = np.zeros(x.shape[1])
    db = np.zeros(x.shape[1])
    for g, rows in enumerate(_groups(x.shape[0], ghost_batch_size)):
        mu = np.asarray(mean[g], np.float64)[None, :, None]
        s = np.asarray(invstd[g], np.float64)[None, :, None]
        xhat = (x64[rows] - mu) * s
        g_dy = dy64[rows]
        mean_dy = g_dy.mean(axis=(0, 2), keepdims=True)
        mean_dy_xhat = (g_dy * xhat).mean(axis=(0, 2), keepdims=True)
        grad[rows] = w * s * (g_dy - mean_dy - xhat * mean_dy_xhat)
        dw += (g_dy * xhat).sum(axis=(0, 2))
        db += g_dy.sum(axis=(0, 2))
    dx[...] = grad.reshape(x.shape)
    dweight[...] = dw
    dbias[...] = db
    return dx, dweight, dbias


def bn_backward_eval(x, dy, weight, running_mean, running_var, dx, dweight,
                     dbias, eps):
    """dx := dy weight invstd, dweight := sum(dy xhat), dbias := sum(dy),
    invstd = 1 / sqrt(running_var + eps), xhat = (x - running_mean) invstd."""
    x64, dy64 = _as_ncs(x), _as_ncs(dy)
    s = 1.0 / np.sqrt(np.asarray(running_var, np.float64) + eps)
    w = np.asarray(weight, np.float64)
    xhat = (x64 - np.asarray(running_mean, np.float64)[None, :, None]) \
        * s[None, :, None]
    dx[...] = (dy64 * (w * s)[None, :, None]).reshape(x.shape)
    dweight[...] = (dy64 * xhat).sum(axis=(0, 2))
    dbias[...] = dy64.sum(axis=(0, 2))
    return dx, dweight, dbias
