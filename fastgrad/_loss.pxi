# Fused softmax + cross-entropy (C cores in _loss.c, documented in _loss.h;
# references in fastgrad/reference/loss.py). Integer labels are int64.
# (numpy is cimported as cnp in _common.pxi.)
from libc.stdint cimport int64_t

cdef extern from "_loss.h":
    double fg_softmax_xent_f32(const float *logits, const int64_t *labels,
                               float *probs, size_t batch, size_t classes,
                               ptrdiff_t *n_bad) nogil
    double fg_softmax_xent_f64(const double *logits, const int64_t *labels,
                               double *probs, size_t batch, size_t classes,
                               ptrdiff_t *n_bad) nogil
    double fg_softmax_xent_dense_f32(const float *logits, const float *target,
                                     float *probs, size_t batch,
                                     size_t classes, ptrdiff_t *n_bad) nogil
    double fg_softmax_xent_dense_f64(const double *logits,
                                     const double *target, double *probs,
                                     size_t batch, size_t classes,
                                     ptrdiff_t *n_bad) nogil
    void fg_softmax_xent_backward_f32(const float *probs,
                                      const int64_t *labels, double scale,
                                      float *dlogits, size_t batch,
                                      size_t classes) nogil
    void fg_softmax_xent_backward_f64(const double *probs,
                                      const int64_t *labels, double scale,
                                      double *dlogits, size_t batch,
                                      size_t classes) nogil
    void fg_softmax_xent_dense_backward_f32(const float *probs,
                                            const float *target, double scale,
                                            float *dlogits, size_t batch,
                                            size_t classes) nogil
    void fg_softmax_xent_dense_backward_f64(const double *probs,
                                            const double *target,
                                            double scale, double *dlogits,
                                            size_t batch,
                                            size_t classes) nogil

cdef object _INT64 = np.dtype(np.int64)


def _check_labels(str op, object labels, object logits):
    """Raise unless labels is a C-contiguous int64 (batch,) array."""
    if not isinstance(labels, np.ndarray):
        raise TypeError(f"{op}: labels must be a numpy.ndarray, got "
                        f"{type(labels).__name__}")
    if labels.dtype != _INT64:
        raise TypeError(f"{op}: labels must be int64, got {labels.dtype}")
    if labels.ndim != 1 or labels.shape[0] != logits.shape[0]:
        raise ValueError(f"{op}: labels of shape {labels.shape} for "
                         f"{logits.shape[0]} rows (shape {logits.shape})")
    if not labels.flags.c_contiguous:
        raise ValueError(f"{op}: labels must be C-contiguous")


cdef inline void *_data(object arr):
    return cnp.PyArray_DATA(<cnp.ndarray>arr)


def _raise_bad(str op, ptrdiff_t n_bad, object labels, size_t classes):
    if n_bad < 0:
        raise MemoryError(f"{op}: no memory for {labels.shape[0]} row losses")
    if n_bad > 0:
        raise ValueError(f"{op}: {n_bad} label(s) outside [0, {classes}) "
                         f"(got {labels.min()}..{labels.max()})")


def softmax_xent_forward(logits, labels, probs):
    """Mean over rows of -log softmax(logits)[i, labels[i]], returned as a
    float; probs := softmax(logits) row-wise.

    IN logits (batch, classes) float32/float64, labels (batch,) int64 in
    [0, classes); OUT probs (batch, classes), logits' dtype."""
    _check("softmax_xent_forward", "logits", logits, 2)
    _check_labels("softmax_xent_forward", labels, logits)
    _check("softmax_xent_forward", "probs", probs, 2, logits.dtype, True)
    _check_shape("softmax_xent_forward", "probs", probs, logits.shape)
    _check_no_alias("softmax_xent_forward", "probs", probs, logits=logits)
    cdef size_t batch = logits.shape[0], classes = logits.shape[1]
    cdef ptrdiff_t n_bad = 0
    cdef double total
    cdef void *z = _data(logits)
    cdef void *y = _data(labels)
    cdef void *p = _data(probs)
    if batch == 0:
        return 0.0
    if classes == 0:
        raise ValueError(f"softmax_xent_forward: logits {logits.shape} have "
                         f"no classes")
    if logits.dtype == np.float32:
        with nogil:
            total = fg_softmax_xent_f32(<float *>z, <int64_t *>y,
                                        <float *>p, batch, classes, &n_bad)
    else:
        with nogil:
            total = fg_softmax_xent_f64(<double *>z, <int64_t *>y,
                                        <double *>p, batch, classes, &n_bad)
    _raise_bad("softmax_xent_forward", n_bad, labels, classes)
    return total / batch


def softmax_xent_backward(probs, labels, double scale, dlogits):
    """dlogits := scale * (probs - onehot(labels)).

    IN probs (batch, classes), labels (batch,) int64, scale (upstream
    gradient / batch for the mean loss); OUT dlogits like probs."""
    _check("softmax_xent_backward", "probs", probs, 2)
    _check_labels("softmax_xent_backward", labels, probs)
    _check("softmax_xent_backward", "dlogits", dlogits, 2, probs.dtype, True)
    _check_shape("softmax_xent_backward", "dlogits", dlogits, probs.shape)
    _check_no_alias("softmax_xent_backward", "dlogits", dlogits, probs=probs)
    cdef size_t batch = probs.shape[0], classes = probs.shape[1]
    cdef void *p = _data(probs)
    cdef void *y = _data(labels)
    cdef void *d = _data(dlogits)
    if batch == 0 or classes == 0:
        return dlogits
    if probs.dtype == np.float32:
        with nogil:
            fg_softmax_xent_backward_f32(<float *>p, <int64_t *>y, scale,
                                         <float *>d, batch, classes)
    else:
        with nogil:
            fg_softmax_xent_backward_f64(<double *>p, <int64_t *>y, scale,
                                         <double *>d, batch, classes)
    return dlogits


def softmax_xent_dense_forward(logits, target, probs):
    """Mean over rows of -sum_k target[i, k] log softmax(logits)[i, k],
    returned as a float; probs := softmax(logits) row-wise.

    IN logits, target (batch, classes) of one float dtype; OUT probs."""
    _check("softmax_xent_dense_forward", "logits", logits, 2)
    _check("softmax_xent_dense_forward", "target", target, 2, logits.dtype)
    _check_shape("softmax_xent_dense_forward", "target", target,
                 logits.shape)
    _check("softmax_xent_dense_forward", "probs", probs, 2, logits.dtype,
           True)
    _check_shape("softmax_xent_dense_forward", "probs", probs, logits.shape)
    _check_no_alias("softmax_xent_dense_forward", "probs", probs,
                    logits=logits, target=target)
    cdef size_t batch = logits.shape[0], classes = logits.shape[1]
    cdef ptrdiff_t n_bad = 0
    cdef double total
    cdef void *z = _data(logits)
    cdef void *t = _data(target)
    cdef void *p = _data(probs)
    if batch == 0:
        return 0.0
    if classes == 0:
        raise ValueError(f"softmax_xent_dense_forward: logits "
                         f"{logits.shape} have no classes")
    if logits.dtype == np.float32:
        with nogil:
            total = fg_softmax_xent_dense_f32(<float *>z, <float *>t,
                                              <float *>p, batch, classes,
                                              &n_bad)
    else:
        with nogil:
            total = fg_softmax_xent_dense_f64(<double *>z, <double *>t,
                                              <double *>p, batch, classes,
                                              &n_bad)
    if n_bad < 0:
        raise MemoryError(f"softmax_xent_dense_forward: no memory for "
                          f"{batch} row losses")
    return total / batch


def softmax_xent_dense_backward(probs, target, double scale, dlogits):
    """dlogits := scale * (probs * sum_k target[i, k] - target).

    IN probs, target (batch, classes), scale; OUT dlogits like probs."""
    _check("softmax_xent_dense_backward", "probs", probs, 2)
    _check("softmax_xent_dense_backward", "target", target, 2, probs.dtype)
    _check_shape("softmax_xent_dense_backward", "target", target,
                 probs.shape)
    _check("softmax_xent_dense_backward", "dlogits", dlogits, 2, probs.dtype,
           True)
    _check_shape("softmax_xent_dense_backward", "dlogits", dlogits,
                 probs.shape)
    _check_no_alias("softmax_xent_dense_backward", "dlogits", dlogits,
                    probs=probs, target=target)
    cdef size_t batch = probs.shape[0], classes = probs.shape[1]
    cdef void *p = _data(probs)
    cdef void *t = _data(target)
    cdef void *d = _data(dlogits)
    if batch == 0 or classes == 0:
        return dlogits
    if probs.dtype == np.float32:
        with nogil:
            fg_softmax_xent_dense_backward_f32(<float *>p, <float *>t, scale,
                                               <float *>d, batch, classes)
    else:
        with nogil:
            fg_softmax_xent_dense_backward_f64(<double *>p, <double *>t,
                                               scale, <double *>d, batch,
                                               classes)
    return dlogits


KERNELS += ["softmax_xent_forward", "softmax_xent_backward",
            "softmax_xent_dense_forward", "softmax_xent_dense_backward"]
