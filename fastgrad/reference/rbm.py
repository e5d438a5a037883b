"""References of the counter-based samplers and the RBM Gibbs sampler.

`philox4x32_10` is a vectorised NumPy Philox4x32-10 (Salmon et al. 2011)
in uint64 arithmetic, so the tests can check the compiled generator bit for
bit; the samplers below rebuild each kernel's random numbers from it.
"""
import numpy as np

__all__ = ["uniform_fill", "dropout_mask", "rbm_gibbs", "rbm_cd_update"]

_MASK32 = np.uint64(0xFFFFFFFF)
_M0, _M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
_W0, _W1 = np.uint64(0x9E3779B9), np.uint64(0xBB67AE85)


def philox4x32_10(counter, key):
    """Philox4x32-10 of counters `counter` (4 arrays or ints, 32-bit words,
    broadcast together) under `key` (2 words). Returns 4 uint32 arrays."""
    x0, x1, x2, x3 = (np.asarray(word, dtype=np.uint64) & _MASK32
                      for word in counter)
    x0, x1, x2, x3 = np.broadcast_arrays(x0, x1, x2, x3)
    k0, k1 = (np.uint64(int(word) & 0xFFFFFFFF) for word in key)
    for _ in range(10):
        p0 = _M0 * x0  # a 32 x 32-bit product fits in 64 bits
        p1 = _M1 * x2
        x0, x1, x2, x3 = ((p1 >> np.uint64(32)) ^ x1 ^ k0, p1 & _MASK32,
                          (p0 >> np.uint64(32)) ^ x3 ^ k1, p0 & _MASK32)
        k0 = (k0 + _W0) & _MASK32
        k1 = (k1 + _W1) & _MASK32
    return tuple(word.astype(np.uint32) for word in (x0, x1, x2, x3))


def _words(n_blocks_counter, key):
    """The 4 words of each block, interleaved: element 4 b + w is word w."""
    return np.stack(philox4x32_10(n_blocks_counter, key), axis=-1)


def _to_uniform(words):
    """(x >> 8) * 2**-24, exact in float32 and float64."""
    return (words >> np.uint32(8)).astype(np.float64) * 2.0 ** -24


def stream_uniforms(n, seed, counter):
    """U(seed, counter, i) for i < n as float64 (see uniform_fill)."""
    blocks = np.arange((n + 3) // 4, dtype=np.uint64)
    words = _words((blocks & _MASK32, blocks >> np.uint64(32),
                    counter & 0xFFFFFFFF, counter >> 32),
                   (seed & 0xFFFFFFFF, seed >> 32))
    return _to_uniform(words.reshape(-1)[:n])


def gibbs_uniforms(n_rows, n_cols, seed, counter, row_offset, step):
    """Uniforms (n_rows, n_cols) of half-step `step` of rbm_gibbs: unit j
    of row i uses word j % 4 of Philox((j // 4, row_offset + i, step,
    counter), seed)."""
    n_blocks = (n_cols + 3) // 4
    blocks = np.arange(n_blocks, dtype=np.uint64)[None, :]
    rows = np.arange(row_offset, row_offset + n_rows,
                     dtype=np.uint64)[:, None]
    words = _words((blocks, rows, step, counter),
                   (seed & 0xFFFFFFFF, seed >> 32))
    return _to_uniform(words.reshape(n_rows, 4 * n_blocks)[:, :n_cols])


def uniform_fill(out, seed, counter):
    """out[i] := U(seed, counter, i) in [0, 1)."""
    out[...] = stream_uniforms(out.size, seed, counter).reshape(out.shape)
    return out


def dropout_mask(out, fraction, seed, counter):
    """out[i] := [U(seed, counter, i) >= fraction]."""
    uniforms = stream_uniforms(out.size, seed, counter).reshape(out.shape)
    out[...] = uniforms >= fraction
    return out


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def rbm_gibbs(v0, weight, vis_bias, hid_bias, k, seed, counter, row_offset,
              h0_probs, h0_samples, vk_probs, vk_samples, hk_probs,
              hk_samples=None):
    """k steps of block Gibbs sampling from v0 (see the kernel rbm_gibbs)."""
    batch, n_hid = v0.shape[0], weight.shape[0]
    dtype = v0.dtype.type

    def half_step(inputs, matrix, bias, step, probs, samples):
        probs[...] = _sigmoid(inputs @ matrix + bias)
        if samples is not None:
            uniforms = gibbs_uniforms(batch, probs.shape[1], seed, counter,
                                      row_offset, step)
            samples[...] = uniforms < probs
        return samples

    hidden = half_step(v0, weight.T, hid_bias, 0, h0_probs, h0_samples)
    if k == 0:
        vk_probs = vk_samples = hk_probs = hk_samples = None
    for t in range(1, k + 1):
        visible = half_step(hidden, weight, vis_bias, 2 * t - 1, vk_probs,
                            vk_samples)
        last = t == k
        hidden = half_step(visible, weight.T, hid_bias, 2 * t, hk_probs,
                           hk_samples if last else
                           np.empty((batch, n_hid), dtype))
    return h0_probs, h0_samples, vk_probs, vk_samples, hk_probs, hk_samples


def rbm_cd_update(v0, h0, vk, hk, weight, vis_bias, hid_bias,
                  weight_velocity, vis_velocity, hid_velocity, learning_rate,
                  momentum, weight_decay):
    """CD step with momentum, in place (see the kernel rbm_cd_update)."""
    batch = v0.shape[0]
    dtype = v0.dtype.type
    lr, mom, wd = dtype(learning_rate), dtype(momentum), dtype(weight_decay)
    gradient = (h0.T @ v0 - hk.T @ vk) / batch if batch else 0 * weight
    weight_velocity[...] = mom * weight_velocity + lr * (gradient - wd * weight)
    vis_velocity[...] = mom * vis_velocity + lr * (v0 - vk).sum(0) / max(
        batch, 1)
    hid_velocity[...] = mom * hid_velocity + lr * (h0 - hk).sum(0) / max(
        batch, 1)
    weight += weight_velocity
    vis_bias += vis_velocity
    hid_bias += hid_velocity
    difference = v0.astype(np.float64) - vk.astype(np.float64)
    return float(np.sum(difference * difference))
