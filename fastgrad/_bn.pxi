# Batch normalisation and ghost batch normalisation (C cores in _bn.c).
# x is (N, C) or (N, C, H, W); statistics are per channel, per ghost batch.
cdef extern from "_bn.h":
    void fg_bn_forward_train_f32(const float *x, const float *weight,
                                 const float *bias, float *y, float *mean,
                                 float *invstd, float *running_mean,
                                 float *running_var, size_t n_samples,
                                 size_t n_channels, size_t n_spatial,
                                 size_t ghost, double momentum,
                                 double eps) nogil
    void fg_bn_forward_train_f64(const double *x, const double *weight,
                                 const double *bias, double *y, double *mean,
                                 double *invstd, double *running_mean,
                                 double *running_var, size_t n_samples,
                                 size_t n_channels, size_t n_spatial,
                                 size_t ghost, double momentum,
                                 double eps) nogil
    void fg_bn_forward_eval_f32(const float *x, const float *weight,
                                const float *bias, const float *running_mean,
                                const float *running_var, float *y,
                                size_t n_samples, size_t n_channels,
                                size_t n_spatial, double eps) nogil
    void fg_bn_forward_eval_f64(const double *x, const double *weight,
                                const double *bias,
                                const double *running_mean,
                                const double *running_var, double *y,
                                size_t n_samples, size_t n_channels,
                                size_t n_spatial, double eps) nogil
    void fg_bn_backward_train_f32(const float *x, const float *dy,
                                  const float *weight, const float *mean,
                                  const float *invstd, float *dx,
                                  float *dweight, float *dbias,
                                  size_t n_samples, size_t n_channels,
                                  size_t n_spatial, size_t ghost) nogil
    void fg_bn_backward_train_f64(const double *x, const double *dy,
                                  const double *weight, const double *mean,
                                  const double *invstd, double *dx,
                                  double *dweight, double *dbias,
                                  size_t n_samples, size_t n_channels,
                                  size_t n_spatial, size_t ghost) nogil
    void fg_bn_backward_eval_f32(const float *x, const float *dy,
                                 const float *weight,
                                 const float *running_mean,
                                 const float *running_var, float *dx,
                                 float *dweight, float *dbias,
                                 size_t n_samples, size_t n_channels,
                                 size_t n_spatial, double eps) nogil
    void fg_bn_backward_eval_f64(const double *x, const double *dy,
                                 const double *weight,
                                 const double *running_mean,
                                 const double *running_var, double *dx,
                                 double *dweight, double *dbias,
                                 size_t n_samples, size_t n_channels,
                                 size_t n_spatial, double eps) nogil


def _bn_dims(str op, object x):
    """(n_samples, n_channels, n_spatial) of a checked (N, C) or (N, C, H, W)
    array."""
    _check(op, "x", x)
    if x.ndim == 2:
        return x.shape[0], x.shape[1], 1
    if x.ndim == 4:
        return x.shape[0], x.shape[1], x.shape[2] * x.shape[3]
    raise ValueError(f"{op}: x must be (N, C) or (N, C, H, W), "
                     f"got shape {x.shape}")


def _bn_ghost_groups(int n_samples, int ghost_batch_size):
    """Number of ghost batches of a batch of `n_samples`: ceil(N / g), or 1
    when ghost_batch_size is 0 (the whole batch is one group)."""
    if ghost_batch_size < 0:
        raise ValueError(f"batch_norm: ghost_batch_size must be >= 1 (or 0 "
                         f"for the whole batch), got {ghost_batch_size}")
    if ghost_batch_size == 0 or ghost_batch_size >= n_samples:
        return 1
    return (n_samples + ghost_batch_size - 1) // ghost_batch_size


def _bn_check_groups(str op, tuple shape, Py_ssize_t n_samples,
                     Py_ssize_t n_spatial, int ghost_batch_size):
    """Effective ghost size; raise unless every group has >= 2 values per
    channel (the variance of one value is undefined)."""
    cdef Py_ssize_t ghost, last
    groups = _bn_ghost_groups(n_samples, ghost_batch_size)
    ghost = n_samples if groups == 1 else ghost_batch_size
    last = n_samples - (groups - 1) * ghost
    if last * n_spatial < 2:
        if groups == 1:
            raise ValueError(
                f"{op}: training-mode batch normalisation needs more than one "
                f"value per channel, got input of shape {shape} (the batch "
                f"variance of a single value is undefined); use a larger "
                f"batch or evaluation mode")
        raise ValueError(
            f"{op}: the last ghost batch of a batch of {n_samples} samples "
            f"split into ghost batches of {ghost_batch_size} holds "
            f"{last * n_spatial} value per channel (input shape {shape}); its "
            f"variance is undefined: choose a batch size that is not 1 more "
            f"than a multiple of ghost_batch_size")
    return ghost


def _bn_check_disjoint(str op, dict outputs, dict inputs):
    """Raise if an output may overlap an input or another output (None
    entries are skipped)."""
    names = list(outputs)
    for i, name in enumerate(names):
        if outputs[name] is None:
            continue
        others = dict(inputs)
        others.update((other, outputs[other]) for other in names[i + 1:])
        for other, arr in others.items():
            if arr is not None and np.may_share_memory(outputs[name], arr):
                raise ValueError(f"{op}: output {name} overlaps {other}; "
                                 f"pass separate arrays")


def _bn_check_params(str op, object x, tuple channel_shape, **arrays):
    for name, arr in arrays.items():
        _check(op, name, arr, 1, dtype=x.dtype)
        _check_shape(op, name, arr, channel_shape)


def bn_forward_train(x, weight, bias, out, mean, invstd, running_mean,
                     running_var, int ghost_batch_size, double momentum,
                     double eps):
    """Training-mode (ghost) batch normalisation, see _bn.h.
    IN x (N, C) or (N, C, H, W), weight (C,), bias (C,); OUT out (x.shape),
    mean (G, C), invstd (G, C) with G = _bn_ghost_groups(N, g); IN/OUT
    running_mean (C,), running_var (C,) (both None: not tracked).
    ghost_batch_size g: 0 for the whole batch."""
    op = "bn_forward_train"
    n, c, s = _bn_dims(op, x)
    _bn_check_params(op, x, (c,), weight=weight, bias=bias)
    ghost = _bn_check_groups(op, x.shape, n, s, ghost_batch_size)
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"{op}: momentum must be in [0, 1], got {momentum}")
    if not eps > 0.0:
        raise ValueError(f"{op}: eps must be > 0, got {eps}")
    groups = _bn_ghost_groups(n, ghost_batch_size)
    _check(op, "out", out, dtype=x.dtype, writeable=True)
    _check_shape(op, "out", out, x.shape)
    for name, arr in (("mean", mean), ("invstd", invstd)):
        _check(op, name, arr, 2, dtype=x.dtype, writeable=True)
        _check_shape(op, name, arr, (groups, c))
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{op}: pass both running_mean and running_var, "
                         f"or neither")
    tracked = running_mean is not None
    if tracked:
        for name, arr in (("running_mean", running_mean),
                          ("running_var", running_var)):
            _check(op, name, arr, 1, dtype=x.dtype, writeable=True)
            _check_shape(op, name, arr, (c,))
    _bn_check_disjoint(op, {"out": out, "mean": mean, "invstd": invstd,
                            "running_mean": running_mean,
                            "running_var": running_var},
                       {"x": x, "weight": weight, "bias": bias})
    if c == 0:
        return out
    if x.dtype == np.float32:
        _bn_forward_train_f32(x.reshape(-1), weight, bias, out.reshape(-1),
                              mean.reshape(-1), invstd.reshape(-1),
                              running_mean if tracked else None,
                              running_var if tracked else None,
                              n, c, s, ghost, momentum, eps)
    else:
        _bn_forward_train_f64(x.reshape(-1), weight, bias, out.reshape(-1),
                              mean.reshape(-1), invstd.reshape(-1),
                              running_mean if tracked else None,
                              running_var if tracked else None,
                              n, c, s, ghost, momentum, eps)
    return out


cdef void _bn_forward_train_f32(float[::1] x, float[::1] weight,
                                float[::1] bias, float[::1] y,
                                float[::1] mean, float[::1] invstd,
                                float[::1] running_mean,
                                float[::1] running_var, size_t n, size_t c,
                                size_t s, size_t ghost, double momentum,
                                double eps):
    cdef float *rm = NULL
    cdef float *rv = NULL
    if running_mean is not None:
        rm = &running_mean[0]
        rv = &running_var[0]
    with nogil:
        fg_bn_forward_train_f32(&x[0], &weight[0], &bias[0], &y[0], &mean[0],
                                &invstd[0], rm, rv, n, c, s, ghost, momentum,
                                eps)


cdef void _bn_forward_train_f64(double[::1] x, double[::1] weight,
                                double[::1] bias, double[::1] y,
                                double[::1] mean, double[::1] invstd,
                                double[::1] running_mean,
                                double[::1] running_var, size_t n, size_t c,
                                size_t s, size_t ghost, double momentum,
                                double eps):
    cdef double *rm = NULL
    cdef double *rv = NULL
    if running_mean is not None:
        rm = &running_mean[0]
        rv = &running_var[0]
    with nogil:
        fg_bn_forward_train_f64(&x[0], &weight[0], &bias[0], &y[0], &mean[0],
                                &invstd[0], rm, rv, n, c, s, ghost, momentum,
                                eps)


def bn_forward_eval(x, weight, bias, running_mean, running_var, out,
                    double eps):
    """Evaluation-mode batch normalisation with the running statistics.
    IN x (N, C) or (N, C, H, W), weight, bias, running_mean, running_var
    (C,); OUT out (x.shape)."""
    op = "bn_forward_eval"
    n, c, s = _bn_dims(op, x)
    _bn_check_params(op, x, (c,), weight=weight, bias=bias,
                     running_mean=running_mean, running_var=running_var)
    if not eps > 0.0:
        raise ValueError(f"{op}: eps must be > 0, got {eps}")
    if np.any(running_var < 0):
        raise ValueError(f"{op}: running_var has negative entries")
    _check(op, "out", out, dtype=x.dtype, writeable=True)
    _check_shape(op, "out", out, x.shape)
    _check_no_alias(op, "out", out, x=x, weight=weight, bias=bias,
                    running_mean=running_mean, running_var=running_var)
    if x.size == 0:
        return out
    if x.dtype == np.float32:
        _bn_forward_eval_f32(x.reshape(-1), weight, bias, running_mean,
                             running_var, out.reshape(-1), n, c, s, eps)
    else:
        _bn_forward_eval_f64(x.reshape(-1), weight, bias, running_mean,
                             running_var, out.reshape(-1), n, c, s, eps)
    return out


cdef void _bn_forward_eval_f32(float[::1] x, float[::1] weight,
                               float[::1] bias, float[::1] running_mean,
                               float[::1] running_var, float[::1] y,
                               size_t n, size_t c, size_t s, double eps):
    with nogil:
        fg_bn_forward_eval_f32(&x[0], &weight[0], &bias[0], &running_mean[0],
                               &running_var[0], &y[0], n, c, s, eps)


cdef void _bn_forward_eval_f64(double[::1] x, double[::1] weight,
                               double[::1] bias, double[::1] running_mean,
                               double[::1] running_var, double[::1] y,
                               size_t n, size_t c, size_t s, double eps):
    with nogil:
        fg_bn_forward_eval_f64(&x[0], &weight[0], &bias[0], &running_mean[0],
                               &running_var[0], &y[0], n, c, s, eps)


def _bn_check_grads(str op, object x, object dy, object dx, object dweight,
                    object dbias, tuple channel_shape, dict inputs):
    _check(op, "dy", dy, dtype=x.dtype)
    _check_shape(op, "dy", dy, x.shape)
    _check(op, "dx", dx, dtype=x.dtype, writeable=True)
    _check_shape(op, "dx", dx, x.shape)
    for name, arr in (("dweight", dweight), ("dbias", dbias)):
        _check(op, name, arr, 1, dtype=x.dtype, writeable=True)
        _check_shape(op, name, arr, channel_shape)
    _bn_check_disjoint(op, {"dx": dx, "dweight": dweight, "dbias": dbias},
                       dict(inputs, dy=dy))


def bn_backward_train(x, dy, weight, mean, invstd, dx, dweight, dbias,
                      int ghost_batch_size):
    """Exact VJP of bn_forward_train through the batch statistics.
    IN x (N, C) or (N, C, H, W), dy (x.shape), weight (C,), mean and invstd
    (G, C) saved by the forward; OUT dx (x.shape), dweight, dbias (C,)."""
    op = "bn_backward_train"
    n, c, s = _bn_dims(op, x)
    _bn_check_params(op, x, (c,), weight=weight)
    ghost = _bn_check_groups(op, x.shape, n, s, ghost_batch_size)
    groups = _bn_ghost_groups(n, ghost_batch_size)
    for name, arr in (("mean", mean), ("invstd", invstd)):
        _check(op, name, arr, 2, dtype=x.dtype)
        _check_shape(op, name, arr, (groups, c))
    _bn_check_grads(op, x, dy, dx, dweight, dbias, (c,),
                    {"x": x, "weight": weight, "mean": mean,
                     "invstd": invstd})
    if c == 0:
        return dx, dweight, dbias
    if x.dtype == np.float32:
        _bn_backward_train_f32(x.reshape(-1), dy.reshape(-1), weight,
                               mean.reshape(-1), invstd.reshape(-1),
                               dx.reshape(-1), dweight, dbias, n, c, s,
                               ghost)
    else:
        _bn_backward_train_f64(x.reshape(-1), dy.reshape(-1), weight,
                               mean.reshape(-1), invstd.reshape(-1),
                               dx.reshape(-1), dweight, dbias, n, c, s,
                               ghost)
    return dx, dweight, dbias


cdef void _bn_backward_train_f32(float[::1] x, float[::1] dy,
                                 float[::1] weight, float[::1] mean,
                                 float[::1] invstd, float[::1] dx,
                                 float[::1] dweight, float[::1] dbias,
                                 size_t n, size_t c, size_t s, size_t ghost):
    with nogil:
        fg_bn_backward_train_f32(&x[0], &dy[0], &weight[0], &mean[0],
                                 &invstd[0], &dx[0], &dweight[0], &dbias[0],
                                 n, c, s, ghost)


cdef void _bn_backward_train_f64(double[::1] x, double[::1] dy,
                                 double[::1] weight, double[::1] mean,
                                 double[::1] invstd, double[::1] dx,
                                 double[::1] dweight, double[::1] dbias,
                                 size_t n, size_t c, size_t s, size_t ghost):
    with nogil:
        fg_bn_backward_train_f64(&x[0], &dy[0], &weight[0], &mean[0],
                                 &invstd[0], &dx[0], &dweight[0], &dbias[0],
                                 n, c, s, ghost)


def bn_backward_eval(x, dy, weight, running_mean, running_var, dx, dweight,
                     dbias, double eps):
    """VJP of bn_forward_eval (the running statistics are constants).
    IN x (N, C) or (N, C, H, W), dy (x.shape), weight, running_mean,
    running_var (C,); OUT dx (x.shape), dweight, dbias (C,)."""
    op = "bn_backward_eval"
    n, c, s = _bn_dims(op, x)
    _bn_check_params(op, x, (c,), weight=weight, running_mean=running_mean,
                     running_var=running_var)
    if not eps > 0.0:
        raise ValueError(f"{op}: eps must be > 0, got {eps}")
    if np.any(running_var < 0):
        raise ValueError(f"{op}: running_var has negative entries")
    _bn_check_grads(op, x, dy, dx, dweight, dbias, (c,),
                    {"x": x, "weight": weight, "running_mean": running_mean,
                     "running_var": running_var})
    if c == 0:
        return dx, dweight, dbias
    if x.size == 0:
        dweight[...] = 0
        dbias[...] = 0
        return dx, dweight, dbias
    if x.dtype == np.float32:
        _bn_backward_eval_f32(x.reshape(-1), dy.reshape(-1), weight,
                              running_mean, running_var, dx.reshape(-1),
                              dweight, dbias, n, c, s, eps)
    else:
        _bn_backward_eval_f64(x.reshape(-1), dy.reshape(-1), weight,
                              running_mean, running_var, dx.reshape(-1),
                              dweight, dbias, n, c, s, eps)
    return dx, dweight, dbias


cdef void _bn_backward_eval_f32(float[::1] x, float[::1] dy,
                                float[::1] weight, float[::1] running_mean,
                                float[::1] running_var, float[::1] dx,
                                float[::1] dweight, float[::1] dbias,
                                size_t n, size_t c, size_t s, double eps):
    with nogil:
        fg_bn_backward_eval_f32(&x[0], &dy[0], &weight[0], &running_mean[0],
                                &running_var[0], &dx[0], &dweight[0],
                                &dbias[0], n, c, s, eps)


cdef void _bn_backward_eval_f64(double[::1] x, double[::1] dy,
                                double[::1] weight, double[::1] running_mean,
                                double[::1] running_var, double[::1] dx,
                                double[::1] dweight, double[::1] dbias,
                                size_t n, size_t c, size_t s, double eps):
    with nogil:
        fg_bn_backward_eval_f64(&x[0], &dy[0], &weight[0], &running_mean[0],
                                &running_var[0], &dx[0], &dweight[0],
                                &dbias[0], n, c, s, eps)


KERNELS += ["bn_forward_train", "bn_forward_eval", "bn_backward_train",
            "bn_backward_eval"]
