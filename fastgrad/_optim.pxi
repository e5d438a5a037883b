# Fused optimiser updates (fastgrad/_optim.c). Only fastgrad.optim calls
# these. Validation is split in two: a fast typed check of every array
# (the path every training step takes) and, when that fails, the shared
# _check helpers, which raise the message naming kernel, argument and shape.
# (numpy is cimported as cnp in _common.pxi)
from cpython.mem cimport PyMem_Malloc, PyMem_Free

cdef extern from "_optim.h":
    ctypedef struct fg_sgd_config:
        double lr
        double momentum
        double dampening
        double weight_decay
        double l1
        double grad_scale
        double buffer_scale
        int nesterov
        int decoupled
        int dlt
        int first
    void fg_sgd_update_f32(const fg_sgd_config *config, size_t n_params,
                           float **params, const float **grads,
                           float **buffers, const size_t *sizes) nogil
    void fg_sgd_update_f64(const fg_sgd_config *config, size_t n_params,
                           double **params, const double **grads,
                           double **buffers, const size_t *sizes) nogil
    int fg_find_overlap(size_t n, const char **starts, const size_t *lengths,
                        const int *writable, size_t *order, size_t *first,
                        size_t *second) nogil

MOMENTUM_CONVENTIONS = ("standard", "dlt")


cdef inline bint _array_ok(object arr, int typenum, bint writeable):
    """True for an exact ndarray of dtype `typenum`, C-contiguous (and
    writeable when asked): the fast path of every training step."""
    if type(arr) is not np.ndarray:
        return False
    cdef cnp.ndarray a = <cnp.ndarray>arr
    return (cnp.PyArray_TYPE(a) == typenum and cnp.PyArray_IS_C_CONTIGUOUS(a)
            and (not writeable or cnp.PyArray_ISWRITEABLE(a)))


cdef void _check_operand(str op, str name, object arr, object reference,
                         bint writeable) except *:
    """The slow path: raise the shared helpers' message for `arr`."""
    if reference is None:
        _check(op, name, arr, writeable=writeable)
    else:
        _check(op, name, arr, dtype=reference.dtype, writeable=writeable)
        _check_shape(op, name, arr, reference.shape)


def sgd_update(params, grads, buffers, double lr, double momentum=0.0,
               double dampening=0.0, bint nesterov=False,
               double weight_decay=0.0, bint decoupled_weight_decay=False,
               double l1=0.0, str momentum_convention="standard",
               bint first_step=False, double grad_scale=1.0,
               double buffer_scale=1.0):
    """Fused in-place SGD step of every parameter in one call.

    IN/OUT params (list of float arrays, one dtype), IN grads (list, same
    shapes/dtype), IN/OUT buffers (list like params; ignored and may be None
    when momentum == 0). For each element, from the old values:
      g = grad_scale*grad + [coupled] weight_decay*w + l1*sign(w)
      "standard": v = first_step ? g : m*v + (1-dampening)*g
                  u = nesterov ? g + m*v : v;   w -= lr*u
      "dlt":      v = first_step ? lr*g : m*buffer_scale*v + (1-dampening)*lr*g
                  u = nesterov ? lr*g + m*v : v;   w -= u
      decoupled:  w -= lr*weight_decay*w (old w).
    Returns params.
    """
    cdef str op = "sgd_update"
    if momentum_convention not in MOMENTUM_CONVENTIONS:
        raise ValueError(f"{op}: momentum_convention must be one of "
                         f"{MOMENTUM_CONVENTIONS}, got "
                         f"{momentum_convention!r}")
    cdef bint has_momentum = momentum != 0.0
    if not isinstance(params, (list, tuple)):
        raise TypeError(f"{op}: params must be a list of arrays, got "
                        f"{type(params).__name__}")
    if not isinstance(grads, (list, tuple)):
        raise TypeError(f"{op}: grads must be a list of arrays, got "
                        f"{type(grads).__name__}")
    cdef Py_ssize_t n = len(params), k
    if len(grads) != n:
        raise ValueError(f"{op}: {n} params but {len(grads)} grads")
    if has_momentum:
        if not isinstance(buffers, (list, tuple)):
            raise TypeError(f"{op}: momentum {momentum} needs a list of "
                            f"buffers, got {type(buffers).__name__}")
        if len(buffers) != n:
            raise ValueError(f"{op}: {n} params but {len(buffers)} buffers")
    if n == 0:
        return params

    first = params[0]
    if not isinstance(first, np.ndarray) or first.dtype not in _FLOAT_TYPES:
        _check(op, "params[0]", first, writeable=True)
    cdef int typenum = cnp.PyArray_TYPE(<cnp.ndarray>first)
    cdef Py_ssize_t n_ranges = 3 * n if has_momentum else 2 * n
    cdef char *block = <char *>PyMem_Malloc(
        n * (3 * sizeof(void *) + sizeof(size_t))
        + n_ranges * (sizeof(char *) + sizeof(size_t) + sizeof(int)
                      + 2 * sizeof(size_t)))
    if block == NULL:
        raise MemoryError(f"{op}: cannot allocate the pointer tables")
    cdef void **param_ptrs = <void **>block
    cdef void **grad_ptrs = param_ptrs + n
    cdef void **buffer_ptrs = grad_ptrs + n
    cdef size_t *sizes = <size_t *>(buffer_ptrs + n)
    cdef const char **starts = <const char **>(sizes + n)
    cdef size_t *lengths = <size_t *>(starts + n_ranges)
    cdef size_t *order = lengths + n_ranges
    cdef int *writable = <int *>(order + 2 * n_ranges)
    cdef size_t overlap_a = 0, overlap_b = 0, itemsize
    cdef cnp.ndarray param, grad, buffer
    cdef fg_sgd_config config
    try:
        for k in range(n):
            param_obj, grad_obj = params[k], grads[k]
            if not _array_ok(param_obj, typenum, True):
                _check(op, f"params[{k}]", param_obj,
                       dtype=None if k == 0 else first.dtype, writeable=True)
            param = <cnp.ndarray>param_obj
            if not (_array_ok(grad_obj, typenum, False)
                    and cnp.PyArray_SAMESHAPE(param, <cnp.ndarray>grad_obj)):
                _check_operand(op, f"grads[{k}]", grad_obj, param, False)
            grad = <cnp.ndarray>grad_obj
            param_ptrs[k] = cnp.PyArray_DATA(param)
            grad_ptrs[k] = cnp.PyArray_DATA(grad)
            sizes[k] = <size_t>cnp.PyArray_SIZE(param)
            itemsize = <size_t>cnp.PyArray_ITEMSIZE(param)
            starts[k] = <const char *>param_ptrs[k]
            starts[n + k] = <const char *>grad_ptrs[k]
            lengths[k] = lengths[n + k] = sizes[k] * itemsize
            writable[k] = 1
            writable[n + k] = 0
            if has_momentum:
                buffer_obj = buffers[k]
                if not (_array_ok(buffer_obj, typenum, True)
                        and cnp.PyArray_SAMESHAPE(param,
                                                  <cnp.ndarray>buffer_obj)):
                    _check_operand(op, f"buffers[{k}]", buffer_obj, param,
                                   True)
                buffer = <cnp.ndarray>buffer_obj
                buffer_ptrs[k] = cnp.PyArray_DATA(buffer)
                starts[2 * n + k] = <const char *>buffer_ptrs[k]
                lengths[2 * n + k] = lengths[k]
                writable[2 * n + k] = 1
            else:
                buffer_ptrs[k] = NULL
        if fg_find_overlap(<size_t>n_ranges, starts, lengths, writable,
                           order, &overlap_a, &overlap_b):
            names = ("params", "grads", "buffers")
            raise ValueError(
                f"{op}: {names[overlap_a // n]}[{overlap_a % n}] overlaps "
                f"{names[overlap_b // n]}[{overlap_b % n}] in memory; every "
                f"parameter, gradient and buffer must be a separate array")
        config.lr = lr
        config.momentum = momentum
        config.dampening = dampening
        config.weight_decay = weight_decay
        config.l1 = l1
        config.grad_scale = grad_scale
        config.buffer_scale = buffer_scale
        config.nesterov = nesterov
        config.decoupled = decoupled_weight_decay
        config.dlt = momentum_convention == "dlt"
        config.first = first_step
        with nogil:
            if typenum == cnp.NPY_FLOAT:
                fg_sgd_update_f32(&config, <size_t>n, <float **>param_ptrs,
                                  <const float **>grad_ptrs,
                                  <float **>(buffer_ptrs if has_momentum
                                             else NULL),
                                  sizes)
            else:
                fg_sgd_update_f64(&config, <size_t>n, <double **>param_ptrs,
                                  <const double **>grad_ptrs,
                                  <double **>(buffer_ptrs if has_momentum
                                              else NULL),
                                  sizes)
    finally:
        PyMem_Free(block)
    return params


KERNELS += ["sgd_update"]
