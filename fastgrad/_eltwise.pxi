cdef extern from "_eltwise.h":
    void fg_act_forward_f32(int act, const float *x, float *y,
                            size_t n) nogil
    void fg_act_forward_f64(int act, const double *x, double *y,
                            size_t n) nogil
    void fg_act_backward_f32(int act, const float *y, const float *dy,
                             float *dx, size_t n) nogil
    void fg_act_backward_f64(int act, const double *y, const double *dy,
                             double *dx, size_t n) nogil

# Activation names -> codes of enum fg_activation (_eltwise.h).
ACTIVATIONS = {"none": 0, "sigmoid": 1, "tanh": 2, "tanh_opt": 3, "relu": 4}


def _activation_code(str op, str activation):
    try:
        return ACTIVATIONS[activation]
    except KeyError:
        raise ValueError(f"{op}: unknown activation {activation!r}; expected "
                         f"one of {sorted(ACTIVATIONS)}") from None


def act_forward(x, out, str activation):
    """out := f(x) elementwise. IN x; OUT out (same shape and dtype)."""
    cdef int code = _activation_code("act_forward", activation)
    _check("act_forward", "x", x)
    _check("act_forward", "out", out, dtype=x.dtype, writeable=True)
    _check_shape("act_forward", "out", out, x.shape)
    _check_no_alias("act_forward", "out", out, x=x)
    cdef size_t n = cnp.PyArray_SIZE(<cnp.ndarray>x)
    cdef void *x_data = cnp.PyArray_DATA(<cnp.ndarray>x)
    cdef void *out_data = cnp.PyArray_DATA(<cnp.ndarray>out)
    if cnp.PyArray_TYPE(<cnp.ndarray>x) == cnp.NPY_FLOAT:
        with nogil:
            fg_act_forward_f32(code, <float *>x_data, <float *>out_data, n)
    else:
        with nogil:
            fg_act_forward_f64(code, <double *>x_data, <double *>out_data, n)
    return out


def act_backward(y, dy, dx, str activation):
    """dx := dy * f'(x), from the output y = f(x). IN y, dy; OUT dx."""
    cdef int code = _activation_code("act_backward", activation)
    _check("act_backward", "y", y)
    _check("act_backward", "dy", dy, dtype=y.dtype)
    _check("act_backward", "dx", dx, dtype=y.dtype, writeable=True)
    _check_shape("act_backward", "dy", dy, y.shape)
    _check_shape("act_backward", "dx", dx, y.shape)
    _check_no_alias("act_backward", "dx", dx, y=y, dy=dy)
    cdef size_t n = cnp.PyArray_SIZE(<cnp.ndarray>y)
    cdef void *y_data = cnp.PyArray_DATA(<cnp.ndarray>y)
    cdef void *dy_data = cnp.PyArray_DATA(<cnp.ndarray>dy)
    cdef void *dx_data = cnp.PyArray_DATA(<cnp.ndarray>dx)
    if cnp.PyArray_TYPE(<cnp.ndarray>y) == cnp.NPY_FLOAT:
        with nogil:
            fg_act_backward_f32(code, <float *>y_data, <float *>dy_data,
                                <float *>dx_data, n)
    else:
        with nogil:
            fg_act_backward_f64(code, <double *>y_data, <double *>dy_data,
                                <double *>dx_data, n)
    return dx


KERNELS += ["act_forward", "act_backward"]
