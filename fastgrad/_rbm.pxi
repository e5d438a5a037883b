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
    void fg_rbm_gibbs_f32(size_t batch, size_t n_vis, size_t n_hid,
                          const float *v0, const float *weight,
                          const float *vis_bias, const float *hid_bias,
                          int k, uint64_t seed, uint32_t counter,
                          uint32_t row_offset, float *h0_probs,
                          float *h0_samples, float *vk_probs,
                          float *vk_samples, float *hk_probs,
                          float *hk_samples, float *scratch) nogil
    void fg_rbm_gibbs_f64(size_t batch, size_t n_vis, size_t n_hid,
                          const double *v0, const double *weight,
                          const double *vis_bias, const double *hid_bias,
                          int k, uint64_t seed, uint32_t counter,
                          uint32_t row_offset, double *h0_probs,
                          double *h0_samples, double *vk_probs,
                          double *vk_samples, double *hk_probs,
                          double *hk_samples, double *scratch) nogil
    double fg_rbm_cd_update_f32(size_t batch, size_t n_vis, size_t n_hid,
                              const float *v0, const float *h0,
                              const float *vk, const float *hk,
                              float *weight, float *vis_bias,
                              float *hid_bias, float *weight_velocity,
                              float *vis_velocity, float *hid_velocity,
                              double learning_rate, double momentum,
                              double weight_decay) nogil
    double fg_rbm_cd_update_f64(size_t batch, size_t n_vis, size_t n_hid,
                              const double *v0, const double *h0,
                              const double *vk, const double *hk,
                              double *weight, double *vis_bias,
                              double *hid_bias, double *weight_velocity,
                              double *vis_velocity, double *hid_velocity,
                              double learning_rate, double momentum,
                              double weight_decay) nogil

cdef extern from "_sparse.h":
    double FG_SPARSE_MAX_DENSITY
    double FG_SPARSE_CD_MAX_DENSITY
    int FG_SPARSE_MIN_ROWS_T

#: rbm_gibbs runs a half-step as a sparse product (skipping zero inputs)
#: when fewer than this fraction of its inputs are nonzero, else as a GEMM.
RBM_SPARSE_MAX_DENSITY = FG_SPARSE_MAX_DENSITY
#: rbm_cd_update sums the weight gradient over the nonzeros of v0 and vk
#: when fewer than this fraction of them are nonzero, else by two GEMMs.
RBM_SPARSE_CD_MAX_DENSITY = FG_SPARSE_CD_MAX_DENSITY
#: ... but a visible-to-hidden half-step, and the CD update, only from
#: this many rows on.
RBM_SPARSE_MIN_ROWS_T = FG_SPARSE_MIN_ROWS_T

cdef object _UINT64_END = 1 << 64
cdef object _UINT32_END = 1 << 32


cdef inline void *_ptr(object arr):
    """Data pointer of a checked ndarray, or NULL for None."""
    if arr is None:
        return NULL
    return cnp.PyArray_DATA(<cnp.ndarray>arr)


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
    cdef size_t n = cnp.PyArray_SIZE(<cnp.ndarray>out)
    cdef uint64_t c_seed = seed, c_counter = counter
    if n == 0:
        return out
    cdef void *data = _ptr(out)
    if cnp.PyArray_TYPE(<cnp.ndarray>out) == cnp.NPY_FLOAT:
        with nogil:
            fg_uniform_fill_f32(<float *>data, n, c_seed, c_counter)
    else:
        with nogil:
            fg_uniform_fill_f64(<double *>data, n, c_seed, c_counter)
    return out


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
    cdef size_t n = cnp.PyArray_SIZE(<cnp.ndarray>out)
    cdef uint64_t c_seed = seed, c_counter = counter
    cdef double c_fraction = fraction
    if n == 0:
        return out
    cdef void *data = _ptr(out)
    if cnp.PyArray_TYPE(<cnp.ndarray>out) == cnp.NPY_FLOAT:
        with nogil:
            fg_dropout_mask_f32(<float *>data, n, c_fraction, c_seed,
                                c_counter)
    else:
        with nogil:
            fg_dropout_mask_f64(<double *>data, n, c_fraction, c_seed,
                                c_counter)
    return out



def _check_real(str op, str name, object value):
    """Raise unless `value` is a finite real number."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{op}: {name} must be a number, got "
                        f"{type(value).__name__}")
    if not np.isfinite(value):
        raise ValueError(f"{op}: {name} must be finite, got {value}")


def rbm_gibbs(v0, weight, vis_bias, hid_bias, k, seed, counter, row_offset,
              h0_probs, h0_samples, vk_probs, vk_samples, hk_probs,
              hk_samples=None):
    """k steps of block Gibbs sampling in a binary RBM, from visible rows v0.

    IN  v0 (batch, n_vis), weight (n_hid, n_vis), vis_bias (n_vis,),
        hid_bias (n_hid,): one float dtype. k >= 0 (int).
        seed in [0, 2**64), counter in [0, 2**32), row_offset >= 0 with
        row_offset + batch <= 2**32: row i of this call is global row
        row_offset + i.
    OUT h0_probs (batch, n_hid) = sigmoid(v0 W^T + c), h0_samples ~ it;
        then for t = 1..k: vt_probs = sigmoid(h(t-1) W + b), vt ~ it,
        ht_probs = sigmoid(vt W^T + c), ht ~ it; the last of these go to
        vk_probs, vk_samples (batch, n_vis), hk_probs, hk_samples
        (batch, n_hid). hk_samples may be None (not drawn). With k == 0,
        h0_samples may be None (not drawn) and the outputs of the steps are
        unused (None or left as they are).
    Unit j of half-step s (0 for h0, 2t - 1 for vt, 2t for ht) of global
    row r is 1 when U < its probability, U = word j % 4 of Philox4x32-10 at
    counter (j // 4, r, s, counter) with key seed, as (x >> 8) * 2**-24; so
    results are bitwise identical for any thread count, and samples do not
    depend on how a batch is split into calls (given row_offset).
    Each half-step whose inputs are less than RBM_SPARSE_MAX_DENSITY
    nonzero (data pixels, sampled units) sums, per row, the weight rows of
    its nonzero inputs in index order, so with finite weights a row's
    probabilities do not depend on the other rows; a denser half-step, or
    a visible-to-hidden one with fewer than RBM_SPARSE_MIN_ROWS_T rows
    (W^T would cost more to make than it saves), is a GEMM, whose
    summation order may change with the number of rows. So the
    probabilities of a split batch may differ in the last bit where a GEMM
    runs, which flips a sample only if its uniform lies within that bit.
    Returns the six outputs.
    """
    op = "rbm_gibbs"
    _check(op, "v0", v0, 2)
    dtype = v0.dtype
    _check(op, "weight", weight, 2, dtype=dtype)
    _check(op, "vis_bias", vis_bias, 1, dtype=dtype)
    _check(op, "hid_bias", hid_bias, 1, dtype=dtype)
    batch, n_vis = v0.shape
    n_hid = weight.shape[0]
    if weight.shape[1] != n_vis:
        raise ValueError(f"{op}: v0 {v0.shape} has {n_vis} visible units "
                         f"but weight {weight.shape} has {weight.shape[1]}")
    _check_shape(op, "vis_bias", vis_bias, (n_vis,))
    _check_shape(op, "hid_bias", hid_bias, (n_hid,))
    if isinstance(k, (bool, np.bool_)) or not isinstance(
            k, (int, np.integer)):
        raise TypeError(f"{op}: k must be an integer, got "
                        f"{type(k).__name__}")
    if not 0 <= k < 2 ** 31:
        raise ValueError(f"{op}: k must be in [0, 2**31), got {k}")
    _check_uint(op, "seed", seed, _UINT64_END)
    _check_uint(op, "counter", counter, _UINT32_END)
    _check_uint(op, "row_offset", row_offset, _UINT32_END)
    if row_offset + batch > _UINT32_END:
        raise ValueError(f"{op}: row_offset + batch = {row_offset + batch} "
                         f"exceeds 2**32")
    hidden_shape, visible_shape = (batch, n_hid), (batch, n_vis)
    outputs = {"h0_probs": (h0_probs, hidden_shape, True),
               "h0_samples": (h0_samples, hidden_shape, k > 0),
               "vk_probs": (vk_probs, visible_shape, k > 0),
               "vk_samples": (vk_samples, visible_shape, k > 0),
               "hk_probs": (hk_probs, hidden_shape, k > 0),
               "hk_samples": (hk_samples, hidden_shape, False)}
    given = {}
    for name, (arr, shape, required) in outputs.items():
        if arr is None:
            if required:
                raise ValueError(f"{op}: output {name} is required "
                                 f"(k = {k})")
            continue
        _check(op, name, arr, 2, dtype=dtype, writeable=True)
        _check_shape(op, name, arr, shape)
        _check_no_alias(op, name, arr, v0=v0, weight=weight,
                        vis_bias=vis_bias, hid_bias=hid_bias, **given)
        given[name] = arr
    if k == 0:
        vk_probs = vk_samples = hk_probs = hk_samples = None
    scratch = None
    if k > 1 and hk_samples is None:
        scratch = np.empty(hidden_shape, dtype=dtype)
    cdef size_t c_batch = batch, c_vis = n_vis, c_hid = n_hid
    cdef int c_k = k
    cdef uint64_t c_seed = seed
    cdef uint32_t c_counter = counter, c_offset = row_offset
    cdef void *pv0 = _ptr(v0)
    cdef void *pw = _ptr(weight)
    cdef void *pb = _ptr(vis_bias)
    cdef void *pc = _ptr(hid_bias)
    cdef void *h0p = _ptr(h0_probs)
    cdef void *h0s = _ptr(h0_samples)
    cdef void *vkp = _ptr(vk_probs)
    cdef void *vks = _ptr(vk_samples)
    cdef void *hkp = _ptr(hk_probs)
    cdef void *hks = _ptr(hk_samples)
    cdef void *scr = _ptr(scratch)
    if batch == 0:
        pass
    elif cnp.PyArray_TYPE(<cnp.ndarray>v0) == cnp.NPY_FLOAT:
        with nogil:
            fg_rbm_gibbs_f32(c_batch, c_vis, c_hid, <float *>pv0,
                             <float *>pw, <float *>pb, <float *>pc, c_k,
                             c_seed, c_counter, c_offset, <float *>h0p,
                             <float *>h0s, <float *>vkp, <float *>vks,
                             <float *>hkp, <float *>hks, <float *>scr)
    else:
        with nogil:
            fg_rbm_gibbs_f64(c_batch, c_vis, c_hid, <double *>pv0,
                             <double *>pw, <double *>pb, <double *>pc, c_k,
                             c_seed, c_counter, c_offset, <double *>h0p,
                             <double *>h0s, <double *>vkp, <double *>vks,
                             <double *>hkp, <double *>hks, <double *>scr)
    return h0_probs, h0_samples, vk_probs, vk_samples, hk_probs, hk_samples


def rbm_cd_update(v0, h0, vk, hk, weight, vis_bias, hid_bias,
                  weight_velocity, vis_velocity, hid_velocity, learning_rate,
                  momentum, weight_decay):
    """Contrastive-divergence step with momentum, in place.

    IN  v0, vk (batch, n_vis): visible rows of the positive (data) and
        negative (model) phase; h0, hk (batch, n_hid): their hidden values
        (samples or probabilities, as the CD variant wants).
    IN/OUT weight (n_hid, n_vis), vis_bias (n_vis,), hid_bias (n_hid,) and
        their velocities of the same shapes. One float dtype throughout.
        learning_rate, momentum, weight_decay: finite numbers.
        VW := momentum VW + lr ((h0^T v0 - hk^T vk) / batch - wd W); W += VW
        Vb := momentum Vb + lr sum_rows(v0 - vk) / batch;            b += Vb
        Vc := momentum Vc + lr sum_rows(h0 - hk) / batch;            c += Vc
    (DeepLearnToolbox's rbmtrain update with wd = 0; biases not decayed.)
    When fewer than RBM_SPARSE_CD_MAX_DENSITY of v0 and vk are nonzero
    and batch >= RBM_SPARSE_MIN_ROWS_T, h0^T v0 - hk^T vk is summed over
    their nonzeros only (row order, by one thread per element); otherwise
    by two GEMMs. Bitwise identical for any
    thread count either way. Returns sum((v0 - vk)^2) over all entries
    (float, accumulated in double: the reconstruction error of CD-k times
    the batch size).
    """
    op = "rbm_cd_update"
    _check(op, "v0", v0, 2)
    dtype = v0.dtype
    for name, arr in (("h0", h0), ("vk", vk), ("hk", hk)):
        _check(op, name, arr, 2, dtype=dtype)
    _check(op, "weight", weight, 2, dtype=dtype, writeable=True)
    batch, n_vis = v0.shape
    n_hid = weight.shape[0]
    _check_shape(op, "weight", weight, (n_hid, n_vis))
    _check_shape(op, "vk", vk, (batch, n_vis))
    _check_shape(op, "h0", h0, (batch, n_hid))
    _check_shape(op, "hk", hk, (batch, n_hid))
    states = {"weight": (weight, (n_hid, n_vis)),
              "vis_bias": (vis_bias, (n_vis,)),
              "hid_bias": (hid_bias, (n_hid,)),
              "weight_velocity": (weight_velocity, (n_hid, n_vis)),
              "vis_velocity": (vis_velocity, (n_vis,)),
              "hid_velocity": (hid_velocity, (n_hid,))}
    given = {}
    for name, (arr, shape) in states.items():
        _check(op, name, arr, len(shape), dtype=dtype, writeable=True)
        _check_shape(op, name, arr, shape)
        _check_no_alias(op, name, arr, v0=v0, h0=h0, vk=vk, hk=hk, **given)
        given[name] = arr
    _check_real(op, "learning_rate", learning_rate)
    _check_real(op, "momentum", momentum)
    _check_real(op, "weight_decay", weight_decay)
    cdef size_t c_batch = batch, c_vis = n_vis, c_hid = n_hid
    cdef double lr = learning_rate, mom = momentum, wd = weight_decay
    cdef void *pv0 = _ptr(v0)
    cdef void *ph0 = _ptr(h0)
    cdef void *pvk = _ptr(vk)
    cdef void *phk = _ptr(hk)
    cdef void *pw = _ptr(weight)
    cdef void *pb = _ptr(vis_bias)
    cdef void *pc = _ptr(hid_bias)
    cdef void *vw = _ptr(weight_velocity)
    cdef void *vb = _ptr(vis_velocity)
    cdef void *vc = _ptr(hid_velocity)
    cdef double error
    if cnp.PyArray_TYPE(<cnp.ndarray>v0) == cnp.NPY_FLOAT:
        with nogil:
            error = fg_rbm_cd_update_f32(c_batch, c_vis, c_hid, <float *>pv0,
                                 <float *>ph0, <float *>pvk, <float *>phk,
                                 <float *>pw, <float *>pb, <float *>pc,
                                 <float *>vw, <float *>vb, <float *>vc, lr,
                                 mom, wd)
    else:
        with nogil:
            error = fg_rbm_cd_update_f64(c_batch, c_vis, c_hid, <double *>pv0,
                                 <double *>ph0, <double *>pvk, <double *>phk,
                                 <double *>pw, <double *>pb, <double *>pc,
                                 <double *>vw, <double *>vb, <double *>vc,
                                 lr, mom, wd)
    return error


KERNELS += ["uniform_fill", "dropout_mask", "rbm_gibbs", "rbm_cd_update"]
