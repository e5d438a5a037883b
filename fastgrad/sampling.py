"""Samplers and RBM front-ends: compiled kernels without a gradient.

Counter-based Philox keyed by (seed, counter, element), so a draw depends
neither on the thread count nor on how a batch is split. Keys come from a
fastgrad.rng.CounterRNG (rng.take()). The differentiable ops are in
fastgrad.ops; this module holds what has no vector-Jacobian product.
"""
import numpy as np

from fastgrad import _kernels as _k
from fastgrad.tensor import Tensor, contiguous

__all__ = ["uniform", "RBMChain", "rbm_gibbs", "rbm_cd_update"]


def _plain(op, value, dtype=None):
    """The C-contiguous ndarray behind a Tensor or array-like (no copy when
    it already is one of the right dtype)."""
    data = value.data if isinstance(value, Tensor) else value
    data = contiguous(data, dtype)
    if data.dtype.kind != "f":
        raise TypeError(f"{op}: needs float32 or float64 arrays, got "
                        f"{data.dtype}")
    return data


def uniform(shape, rng, dtype=np.float32):
    """A new array of `shape` with values uniform in [0, 1) (24-bit
    resolution, identical in float32 and float64); takes one key of rng."""
    seed, counter = rng.take()
    return _k.uniform_fill(np.empty(shape, dtype=dtype), seed, counter)


class RBMChain(tuple):
    """Result of rbm_gibbs: (h0_probs, h0_samples, vk_probs, vk_samples,
    hk_probs, hk_samples) as ndarrays (hk_samples may be None)."""

    __slots__ = ()
    _fields = ("h0_probs", "h0_samples", "vk_probs", "vk_samples",
               "hk_probs", "hk_samples")

    def __new__(cls, values):
        return tuple.__new__(cls, values)

    h0_probs = property(lambda self: self[0])
    h0_samples = property(lambda self: self[1])
    vk_probs = property(lambda self: self[2])
    vk_samples = property(lambda self: self[3])
    hk_probs = property(lambda self: self[4])
    hk_samples = property(lambda self: self[5])


def rbm_gibbs(v0, weight, vis_bias, hid_bias, k, key, row_offset=0,
              sample_last_hidden=False):
    """k steps of block Gibbs sampling in a binary RBM (no gradient).

    v0 (batch, n_vis); weight (n_hid, n_vis); vis_bias (n_vis,); hid_bias
    (n_hid,): Tensors or arrays of one float dtype (the weight's). key:
    (seed, counter), e.g. rng.take(); row_offset: global index of v0's first
    row, so a batch sampled in several calls with one key and the right
    offsets gives the samples of one call.
    Returns RBMChain: h0_probs = sigmoid(v0 W^T + c), h0_samples ~ h0_probs,
    and after k steps (v ~ sigmoid(h W + b), h ~ sigmoid(v W^T + c)) the
    chain end vk_probs, vk_samples (batch, n_vis), hk_probs and, when
    sample_last_hidden, hk_samples (batch, n_hid). With k == 0 only the
    h0 fields are computed (h0_samples included).
    """
    weight = _plain("rbm_gibbs", weight)
    dtype = weight.dtype
    v0 = _plain("rbm_gibbs", v0, dtype)
    vis_bias = _plain("rbm_gibbs", vis_bias, dtype)
    hid_bias = _plain("rbm_gibbs", hid_bias, dtype)
    if v0.ndim != 2 or weight.ndim != 2:
        raise ValueError(f"rbm_gibbs: v0 {v0.shape} and weight "
                         f"{weight.shape} must be (batch, n_vis) and "
                         "(n_hid, n_vis)")
    batch, (n_hid, n_vis) = v0.shape[0], weight.shape
    seed, counter = key
    hidden = (batch, n_hid)
    h0_probs, h0_samples = np.empty(hidden, dtype), np.empty(hidden, dtype)
    if k == 0:
        _k.rbm_gibbs(v0, weight, vis_bias, hid_bias, 0, seed, counter,
                     row_offset, h0_probs, h0_samples, None, None, None)
        return RBMChain((h0_probs, h0_samples, None, None, None, None))
    outputs = (h0_probs, h0_samples, np.empty((batch, n_vis), dtype),
               np.empty((batch, n_vis), dtype), np.empty(hidden, dtype),
               np.empty(hidden, dtype) if sample_last_hidden else None)
    return RBMChain(_k.rbm_gibbs(v0, weight, vis_bias, hid_bias, k, seed,
                                 counter, row_offset, *outputs))


def rbm_cd_update(v0, h0, vk, hk, weight, vis_bias, hid_bias, velocities,
                  learning_rate, momentum=0.0, weight_decay=0.0):
    """Contrastive-divergence step with momentum, in place (no gradient).

    v0, vk (batch, n_vis) and h0, hk (batch, n_hid): positive and negative
    phase. weight (n_hid, n_vis), vis_bias, hid_bias: Tensors or ndarrays
    updated in place; velocities: (weight, vis_bias, hid_bias) momentum
    buffers, updated in place. With B = batch:
        VW := momentum VW + lr ((h0^T v0 - hk^T vk) / B - weight_decay W)
        Vb := momentum Vb + lr sum_rows(v0 - vk) / B
        Vc := momentum Vc + lr sum_rows(h0 - hk) / B
        W += VW, b += Vb, c += Vc   (biases are not decayed)
    One fused kernel (sparse products or two GEMMs into VW, then the
    elementwise updates). Returns sum((v0 - vk)^2), read in the same pass
    (CD-k's reconstruction error times B).
    """
    targets = [t.data if isinstance(t, Tensor) else t
               for t in (weight, vis_bias, hid_bias, *velocities)]
    dtype = targets[0].dtype
    phases = [_plain("rbm_cd_update", a, dtype) for a in (v0, h0, vk, hk)]
    return _k.rbm_cd_update(*phases, *targets, learning_rate, momentum,
                            weight_decay)
