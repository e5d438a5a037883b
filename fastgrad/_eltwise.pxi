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
    cdef size_t n = x.size
    if n == 0:
        return out
    if x.dtype == np.float32:
        _act_forward_f32(code, x.reshape(-1), out.reshape(-1), n)
    else:
        _act_forward_f64(code, x.reshape(-1), out.reshape(-1), n)
    return out


cdef void _act_forward_f32(int code, float[::1] x, float[::1] y, size_t n):
    with nogil:
        fg_act_forward_f32(code, &x[0], &y[0], n)


cdef void _act_forward_f64(int code, double[::1] x, double[::1] y, size_t n):
    with nogil:
        fg_act_forward_f64(code, &x[0], &y[0], n)


def act_backward(y, dy, dx, str activation):
    """dx := dy * f'(x), from the output y = f(x). IN y, dy; OUT dx."""
    cdef int code = _activation_code("act_backward", activation)
    _check("act_backward", "y", y)
    _check("act_backward", "dy", dy, dtype=y.dtype)
    _check("act_backward", "dx", dx, dtype=y.dtype, writeable=True)
    _check_shape("act_backward", "dy", dy, y.shape)
    _check_shape("act_backward", "dx", dx, y.shape)
    _check_no_alias("act_backward", "dx", dx, y=y, dy=dy)
    cdef size_t n = y.size
    if n == 0:
        return dx
    if y.dtype == np.float32:
        _act_backward_f32(code, y.reshape(-1), dy.reshape(-1),
                          dx.reshape(-1), n)
    else:
        _act_backward_f64(code, y.reshape(-1), dy.reshape(-1),
                          dx.reshape(-1), n)
    return dx


cdef void _act_backward_f32(int code, float[::1] y, float[::1] dy,
                            float[::1] dx, size_t n):
    with nogil:
        fg_act_backward_f32(code, &y[0], &dy[0], &dx[0], n)


cdef void _act_backward_f64(int code, double[::1] y, double[::1] dy,
                            double[::1] dx, size_t n):
    with nogil:
        fg_act_backward_f64(code, &y[0], &dy[0], &dx[0], n)


KERNELS += ["act_forward", "act_backward"]
