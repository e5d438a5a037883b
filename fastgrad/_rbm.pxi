# Counter-based samplers (Philox4x32-10) and the fused RBM Gibbs sampler.
# C cores in _rbm.c (documented in _rbm.h); references in
# fastgrad/reference/rbm.py.
from libc.stdint cimport uint32_t, uint64_t

cdef extern from "_rbm.h":
    void fg_uniform_fill_f32(float *out, size_t n, uint64_t seed,
                             uint64_t counter) nogil
    void fg_uniform_fill_f64(double *out, size_t n, uint64_t seed,
                             uint64_t counter) nogil
    void fg_dropout_mask_f32(float *out, size_t n, double fraction,
                             uint64_t seed, uint64_t counter) nogil
    void fg_dropout_mask_f64(double *out, size_t n, double fraction,
                             uint64_t seed, uint64_t counter) nogil

cdef object _UINT64_END = 1 << 64
cdef object _UINT32_END = 1 << 32


def _check_uint(str op, str name, object value, object end):
    """Raise unless `value` is an integer in [0, end)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, np.integer)):
        raise TypeError(f"{op}: {name} must be an integer, got "
                        f"{type(value).__name__}")
    if not 0 <= value < end:
        raise ValueError(f"{op}: {name} must be in [0, 2**"
                         f"{end.bit_length() - 1}), got {value}")


def uniform_fill(out, seed, counter):
    """out[i] := U(seed, counter, i), uniform in [0, 1) (C order index i).

    OUT out: float32/float64, any shape, C-contiguous. seed, counter:
    integers in [0, 2**64). U is word i % 4 of Philox4x32-10 at counter
    (i // 4 as 64 bits, counter as 64 bits) with key seed, mapped to
    (x >> 8) * 2**-24: the same values in float32 and float64, for any
    thread count.
    """
    _check("uniform_fill", "out", out, writeable=True)
    _check_uint("uniform_fill", "seed", seed, _UINT64_END)
    _check_uint("uniform_fill", "counter", counter, _UINT64_END)
    cdef size_t n = out.size
    cdef uint64_t c_seed = seed, c_counter = counter
    if n == 0:
        return out
    if out.dtype == np.float32:
        _uniform_fill_f32(out.reshape(-1), n, c_seed, c_counter)
    else:
        _uniform_fill_f64(out.reshape(-1), n, c_seed, c_counter)
    return out


cdef void _uniform_fill_f32(float[::1] out, size_t n, uint64_t seed,
                            uint64_t counter):
    with nogil:
        fg_uniform_fill_f32(&out[0], n, seed, counter)


cdef void _uniform_fill_f64(double[::1] out, size_t n, uint64_t seed,
                            uint64_t counter):
    with nogil:
        fg_uniform_fill_f64(&out[0], n, seed, counter)


def dropout_mask(out, fraction, seed, counter):
    """out[i] := 1 if U(seed, counter, i) >= fraction else 0.

    OUT out: float32/float64, any shape, C-contiguous. fraction in [0, 1]
    (the probability of a zero); the uniforms U are those of uniform_fill.
    """
    _check("dropout_mask", "out", out, writeable=True)
    if isinstance(fraction, (bool, np.bool_)) or not isinstance(
            fraction, (int, float, np.integer, np.floating)):
        raise TypeError(f"dropout_mask: fraction must be a number, got "
                        f"{type(fraction).__name__}")
    if not 0.0 <= fraction <= 1.0:  # also rejects NaN
        raise ValueError(f"dropout_mask: fraction must be in [0, 1], got "
                         f"{fraction}")
    _check_uint("dropout_mask", "seed", seed, _UINT64_END)
    _check_uint("dropout_mask", "counter", counter, _UINT64_END)
    cdef size_t n = out.size
    cdef uint64_t c_seed = seed, c_counter = counter
    cdef double c_fraction = fraction
    if n == 0:
        return out
    if out.dtype == np.float32:
        _dropout_mask_f32(out.reshape(-1), n, c_fraction, c_seed, c_counter)
    else:
        _dropout_mask_f64(out.reshape(-1), n, c_fraction, c_seed, c_counter)
    return out


cdef void _dropout_mask_f32(float[::1] out, size_t n, double fraction,
                            uint64_t seed, uint64_t counter):
    with nogil:
        fg_dropout_mask_f32(&out[0], n, fraction, seed, counter)


cdef void _dropout_mask_f64(double[::1] out, size_t n, double fraction,
                            uint64_t seed, uint64_t counter):
    with nogil:
        fg_dropout_mask_f64(&out[0], n, fraction, seed, counter)


KERNELS += ["uniform_fill", "dropout_mask"]
