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
    void fg_sgd_update_f32(const fg_sgd_config *configs, size_t n_params,
                           float **params, const float **grads,
                           float **buffers, const size_t *sizes) nogil
    void fg_sgd_update_f64(const fg_sgd_config *configs, size_t n_params,
                           double **params, const double **grads,
                           double **buffers, const size_t *sizes) nogil
    int fg_find_overlap(size_t n, const char **starts, const size_t *lengths,
                        const int *writable, size_t *order, size_t *first,
                        size_t *second) nogil

MOMENTUM_CONVENTIONS = ("standard", "dlt")

# The hyper-parameters that take one value for all parameters or a list
# with one value per parameter, in the order of the temporary table.
cdef tuple _SGD_FIELDS = ("lr", "momentum", "dampening", "nesterov",
                          "weight_decay", "decoupled_weight_decay", "l1",
                          "first_step", "grad_scale", "buffer_scale")


cdef inline bint _array_ok(object arr, int typenum, bint writeable):
    """True for an exact ndarray of dtype `typenum`, C-contiguous (and
    writeable when asked): the fast path of every training step."""
    if type(arr) is not np.ndarray:
        return False
    cdef cnp.ndarray a = <cnp.ndarray>arr
    return (cnp.PyArray_TYPE(a) == typenum and cnp.PyArray_IS_C_CONTIGUOUS(a)
            and (not writeable or cnp.PyArray_ISWRITEABLE(a)))


cdef int _check_operand(str op, str name, object arr, object reference,
                        bint writeable) except -1:
    """The slow path: raise the shared helpers' message for `arr`."""
    _check(op, name, arr, dtype=reference.dtype, writeable=writeable)
    _check_shape(op, name, arr, reference.shape)
    return 0


cdef int _fill(str op, str name, object value, Py_ssize_t n,
               double *out) except -1:
    """out[0:n] := value (a number) or value[k] (a list of n numbers)."""
    cdef Py_ssize_t k
    cdef double number
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{op}: {name} has {len(value)} values for {n} "
                             f"params")
        for k in range(n):
            out[k] = value[k]
    else:
        number = value
        for k in range(n):
            out[k] = number
    return 0


def sgd_update(params, grads, buffers, lr, momentum=0.0, dampening=0.0,
               nesterov=False, weight_decay=0.0, decoupled_weight_decay=False,
               l1=0.0, str momentum_convention="standard", first_step=False,
               grad_scale=1.0, buffer_scale=1.0):
    """Fused in-place SGD step of every parameter in one call.

    IN/OUT params (list of float arrays, one dtype), IN grads (list, same
    shapes/dtype), IN/OUT buffers (list like params; an entry may be None
    where momentum is 0, and the list may be None when it is 0 for all).
    Every hyper-parameter but momentum_convention is one number for all
    parameters or a list of one per parameter (so parameter groups share
    one call). For each element, from the old values:
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
    if not isinstance(params, (list, tuple)):
        raise TypeError(f"{op}: params must be a list of arrays, got "
                        f"{type(params).__name__}")
    if not isinstance(grads, (list, tuple)):
        raise TypeError(f"{op}: grads must be a list of arrays, got "
                        f"{type(grads).__name__}")
    cdef Py_ssize_t n = len(params), k, field
    if len(grads) != n:
        raise ValueError(f"{op}: {n} params but {len(grads)} grads")
    if n == 0:
        return params
    first = params[0]
    if not (isinstance(first, np.ndarray) and first.dtype in _FLOAT_TYPES):
        _check(op, "params[0]", first, writeable=True)
    cdef int typenum = cnp.PyArray_TYPE(<cnp.ndarray>first)
    cdef bint dlt = momentum_convention == "dlt"
    cdef Py_ssize_t n_fields = len(_SGD_FIELDS), n_ranges = 3 * n
    cdef char *block = <char *>PyMem_Malloc(
        n * (3 * sizeof(void *) + sizeof(size_t) + sizeof(fg_sgd_config)
             + n_fields * sizeof(double))
        + n_ranges * (sizeof(char *) + 3 * sizeof(size_t)
                      + 2 * sizeof(int)))
    if block == NULL:
        raise MemoryError(f"{op}: cannot allocate the pointer tables")
    cdef fg_sgd_config *configs = <fg_sgd_config *>block
    cdef double *table = <double *>(configs + n)
    cdef void **param_ptrs = <void **>(table + n_fields * n)
    cdef void **grad_ptrs = param_ptrs + n
    cdef void **buffer_ptrs = grad_ptrs + n
    cdef size_t *sizes = <size_t *>(buffer_ptrs + n)
    cdef const char **starts = <const char **>(sizes + n)
    cdef size_t *lengths = <size_t *>(starts + n_ranges)
    cdef size_t *order = lengths + n_ranges
    cdef int *writable = <int *>(order + 2 * n_ranges)
    cdef int *owners = writable + n_ranges  # kind * n + k of each range
    cdef size_t overlap_a = 0, overlap_b = 0, itemsize, count = 0
    cdef bint any_momentum = False
    cdef cnp.ndarray param, grad, buffer
    try:
        values = (lr, momentum, dampening, nesterov, weight_decay,
                  decoupled_weight_decay, l1, first_step, grad_scale,
                  buffer_scale)
        for field in range(n_fields):
            _fill(op, _SGD_FIELDS[field], values[field], n,
                  table + field * n)
        for k in range(n):
            configs[k].lr = table[k]
            configs[k].momentum = table[n + k]
            configs[k].dampening = table[2 * n + k]
            configs[k].nesterov = table[3 * n + k] != 0.0
            configs[k].weight_decay = table[4 * n + k]
            configs[k].decoupled = table[5 * n + k] != 0.0
            configs[k].l1 = table[6 * n + k]
            configs[k].first = table[7 * n + k] != 0.0
            configs[k].grad_scale = table[8 * n + k]
            configs[k].buffer_scale = table[9 * n + k]
            configs[k].dlt = dlt
            if configs[k].momentum != 0.0:
                any_momentum = True
        if any_momentum:
            if not isinstance(buffers, (list, tuple)):
                raise TypeError(f"{op}: momentum needs a list of buffers, "
                                f"got {type(buffers).__name__}")
            if len(buffers) != n:
                raise ValueError(f"{op}: {n} params but {len(buffers)} "
                                 f"buffers")
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
            starts[count] = <const char *>param_ptrs[k]
            lengths[count] = sizes[k] * itemsize
            writable[count] = 1
            owners[count] = <int>k
            starts[count + 1] = <const char *>grad_ptrs[k]
            lengths[count + 1] = sizes[k] * itemsize
            writable[count + 1] = 0
            owners[count + 1] = <int>(n + k)
            count += 2
            buffer_ptrs[k] = NULL
            if configs[k].momentum != 0.0:
                buffer_obj = buffers[k]
                if not (_array_ok(buffer_obj, typenum, True)
                        and cnp.PyArray_SAMESHAPE(param,
                                                  <cnp.ndarray>buffer_obj)):
                    _check_operand(op, f"buffers[{k}]", buffer_obj, param,
                                   True)
                buffer = <cnp.ndarray>buffer_obj
                buffer_ptrs[k] = cnp.PyArray_DATA(buffer)
                starts[count] = <const char *>buffer_ptrs[k]
                lengths[count] = sizes[k] * itemsize
                writable[count] = 1
                owners[count] = <int>(2 * n + k)
                count += 1
        if fg_find_overlap(count, starts, lengths, writable, order,
                           &overlap_a, &overlap_b):
            names = ("params", "grads", "buffers")
            a, b = owners[overlap_a], owners[overlap_b]
            raise ValueError(
                f"{op}: {names[a // n]}[{a % n}] overlaps "
                f"{names[b // n]}[{b % n}] in memory; every parameter, "
                f"gradient and buffer must be a separate array")
        with nogil:
            if typenum == cnp.NPY_FLOAT:
                fg_sgd_update_f32(configs, <size_t>n, <float **>param_ptrs,
                                  <const float **>grad_ptrs,
                                  <float **>buffer_ptrs, sizes)
            else:
                fg_sgd_update_f64(configs, <size_t>n, <double **>param_ptrs,
                                  <const double **>grad_ptrs,
                                  <double **>buffer_ptrs, sizes)
    finally:
        PyMem_Free(block)
    return params


KERNELS += ["sgd_update"]
