# Convolution and subsampling kernels (fastgrad/_conv.c): NCHW, stride 1,
# cross-correlation (PyTorch's convention), zero padding (pad_h, pad_w) on
# each side. IN arguments are read; OUT arguments are overwritten and
# returned.
from libc.stdint cimport int64_t
from libc.stddef cimport ptrdiff_t

cdef extern from "_conv.h":
    int fg_conv2d_forward_f32(const float *x, const float *weight,
                              const float *bias, float *out, ptrdiff_t n,
                              ptrdiff_t c, ptrdiff_t h, ptrdiff_t w,
                              ptrdiff_t m, ptrdiff_t kh, ptrdiff_t kw,
                              ptrdiff_t pad_h, ptrdiff_t pad_w,
                              int act) nogil
    int fg_conv2d_forward_f64(const double *x, const double *weight,
                              const double *bias, double *out, ptrdiff_t n,
                              ptrdiff_t c, ptrdiff_t h, ptrdiff_t w,
                              ptrdiff_t m, ptrdiff_t kh, ptrdiff_t kw,
                              ptrdiff_t pad_h, ptrdiff_t pad_w,
                              int act) nogil
    int fg_conv2d_backward_input_f32(const float *dy, const float *weight,
                                     float *dx, ptrdiff_t n, ptrdiff_t c,
                                     ptrdiff_t h, ptrdiff_t w, ptrdiff_t m,
                                     ptrdiff_t kh, ptrdiff_t kw,
                                     ptrdiff_t pad_h, ptrdiff_t pad_w) nogil
    int fg_conv2d_backward_input_f64(const double *dy, const double *weight,
                                     double *dx, ptrdiff_t n, ptrdiff_t c,
                                     ptrdiff_t h, ptrdiff_t w, ptrdiff_t m,
                                     ptrdiff_t kh, ptrdiff_t kw,
                                     ptrdiff_t pad_h, ptrdiff_t pad_w) nogil
    int fg_conv2d_backward_weight_f32(const float *x, const float *dy,
                                      float *dweight, ptrdiff_t n,
                                      ptrdiff_t c, ptrdiff_t h, ptrdiff_t w,
                                      ptrdiff_t m, ptrdiff_t kh,
                                      ptrdiff_t kw, ptrdiff_t pad_h,
                                      ptrdiff_t pad_w) nogil
    int fg_conv2d_backward_weight_f64(const double *x, const double *dy,
                                      double *dweight, ptrdiff_t n,
                                      ptrdiff_t c, ptrdiff_t h, ptrdiff_t w,
                                      ptrdiff_t m, ptrdiff_t kh,
                                      ptrdiff_t kw, ptrdiff_t pad_h,
                                      ptrdiff_t pad_w) nogil
    int fg_conv2d_backward_bias_f32(const float *dy, float *dbias,
                                    ptrdiff_t n, ptrdiff_t m,
                                    ptrdiff_t plane) nogil
    int fg_conv2d_backward_bias_f64(const double *dy, double *dbias,
                                    ptrdiff_t n, ptrdiff_t m,
                                    ptrdiff_t plane) nogil
    int fg_meanpool_forward_f32(const float *x, float *out, ptrdiff_t planes,
                                ptrdiff_t h, ptrdiff_t w,
                                ptrdiff_t scale) nogil
    int fg_meanpool_forward_f64(const double *x, double *out,
                                ptrdiff_t planes, ptrdiff_t h, ptrdiff_t w,
                                ptrdiff_t scale) nogil
    int fg_meanpool_backward_f32(const float *dy, const float *y, int act,
                                 float *dx, ptrdiff_t planes, ptrdiff_t h,
                                 ptrdiff_t w, ptrdiff_t scale) nogil
    int fg_meanpool_backward_f64(const double *dy, const double *y, int act,
                                 double *dx, ptrdiff_t planes, ptrdiff_t h,
                                 ptrdiff_t w, ptrdiff_t scale) nogil
    int fg_maxpool2x2_forward_f32(const float *x, float *out,
                                  int64_t *argmax, ptrdiff_t planes,
                                  ptrdiff_t h, ptrdiff_t w) nogil
    int fg_maxpool2x2_forward_f64(const double *x, double *out,
                                  int64_t *argmax, ptrdiff_t planes,
                                  ptrdiff_t h, ptrdiff_t w) nogil
    int fg_maxpool2x2_backward_f32(const float *dy, const int64_t *argmax,
                                   float *dx, ptrdiff_t planes, ptrdiff_t h,
                                   ptrdiff_t w) nogil
    int fg_maxpool2x2_backward_f64(const double *dy, const int64_t *argmax,
                                   double *dx, ptrdiff_t planes, ptrdiff_t h,
                                   ptrdiff_t w) nogil


cdef inline void *_conv_data(object arr):
    """The data pointer of an ndarray already checked by _check (empty
    arrays give a pointer the C core never dereferences)."""
    return cnp.PyArray_DATA(<cnp.ndarray>arr)


cdef inline bint _conv_is_f32(object arr):
    return cnp.PyArray_TYPE(<cnp.ndarray>arr) == cnp.NPY_FLOAT


cdef _raise_status(str op, int status):
    if status == -1:
        raise MemoryError(f"{op}: could not allocate a scratch buffer")
    if status == -2:
        raise ValueError(f"{op}: argmax holds an index outside its plane")
    if status != 0:
        raise RuntimeError(f"{op}: kernel failed with status {status}")


cdef tuple _conv_geometry(str op, tuple x_shape, str x_name,
                          tuple weight_shape, object pad_h, object pad_w):
    """(oh, ow) of a convolution, after checking the padding, the channels
    and that the kernel fits the padded input."""
    for name, pad in (("pad_h", pad_h), ("pad_w", pad_w)):
        if not isinstance(pad, (int, np.integer)) or isinstance(pad, bool):
            raise TypeError(f"{op}: {name} must be an int, got "
                            f"{type(pad).__name__}")
        if pad < 0:
            raise ValueError(f"{op}: {name} must be >= 0, got {pad}")
    n, c, h, w = x_shape
    m, c_w, kh, kw = weight_shape
    if c_w != c:
        raise ValueError(f"{op}: channel mismatch: {x_name} {x_shape} has "
                         f"{c} channels but weight {weight_shape} expects "
                         f"{c_w}")
    if kh < 1 or kw < 1:
        raise ValueError(f"{op}: kernel {kh}x{kw} of weight {weight_shape} "
                         f"is empty")
    hp, wp = h + 2 * pad_h, w + 2 * pad_w
    if kh > hp or kw > wp:
        raise ValueError(f"{op}: kernel {kh}x{kw} (weight {weight_shape}) is "
                         f"larger than the padded input {hp}x{wp} "
                         f"({x_name} {x_shape}, padding ({pad_h}, {pad_w}))")
    return hp - kh + 1, wp - kw + 1


def conv2d_forward(x, weight, bias, out, pad_h, pad_w, activation="none"):
    """out := activation(conv(x, weight) + bias), cross-correlation,
    stride 1.

    IN x (N,C,H,W), weight (M,C,KH,KW), bias (M,) or None; OUT out
    (N,M,H+2*pad_h-KH+1, W+2*pad_w-KW+1). "valid" is pad 0, "full" is
    pad (KH-1, KW-1). activation: a name of ACTIVATIONS (float32 sigmoid
    and relu are applied to the tiles in registers)."""
    op = "conv2d_forward"
    cdef int act = _activation_code(op, activation)
    _check(op, "x", x, 4)
    _check(op, "weight", weight, 4, x.dtype)
    if bias is not None:
        _check(op, "bias", bias, 1, x.dtype)
    _check(op, "out", out, 4, x.dtype, writeable=True)
    oh, ow = _conv_geometry(op, x.shape, "x", weight.shape, pad_h, pad_w)
    cdef Py_ssize_t n, c, h, w, m, kh, kw, ph = pad_h, pw = pad_w
    n, c, h, w = x.shape
    m, _, kh, kw = weight.shape
    if bias is not None:
        _check_shape(op, "bias", bias, (m,))
    _check_shape(op, "out", out, (n, m, oh, ow))
    _check_no_alias(op, "out", out, x=x, weight=weight, bias=bias)
    if out.size == 0:
        return out
    cdef void *px = _conv_data(x)
    cdef void *pw_ = _conv_data(weight)
    cdef void *pb = NULL if bias is None else _conv_data(bias)
    cdef void *po = _conv_data(out)
    cdef int status
    if _conv_is_f32(x):
        with nogil:
            status = fg_conv2d_forward_f32(
                <float *>px, <float *>pw_, <float *>pb, <float *>po, n, c,
                h, w, m, kh, kw, ph, pw, act)
    else:
        with nogil:
            status = fg_conv2d_forward_f64(
                <double *>px, <double *>pw_, <double *>pb, <double *>po, n,
                c, h, w, m, kh, kw, ph, pw, act)
    _raise_status(op, status)
    return out


def conv2d_backward_input(dy, weight, dx, pad_h, pad_w):
    """dx[n,c,h,w] := sum_{m,p,q} dy[n,m,h+pad_h-p,w+pad_w-q] weight[m,c,p,q]
    (the input gradient of conv2d_forward).

    IN dy (N,M,OH,OW), weight (M,C,KH,KW); OUT dx (N,C,H,W)."""
    op = "conv2d_backward_input"
    _check(op, "dy", dy, 4)
    _check(op, "weight", weight, 4, dy.dtype)
    _check(op, "dx", dx, 4, dy.dtype, writeable=True)
    oh, ow = _conv_geometry(op, dx.shape, "dx", weight.shape, pad_h, pad_w)
    cdef Py_ssize_t n, c, h, w, m, kh, kw, ph = pad_h, pw = pad_w
    n, c, h, w = dx.shape
    m, _, kh, kw = weight.shape
    _check_shape(op, "dy", dy, (n, m, oh, ow))
    _check_no_alias(op, "dx", dx, dy=dy, weight=weight)
    if dx.size == 0:
        return dx
    cdef void *pg = _conv_data(dy)
    cdef void *pw_ = _conv_data(weight)
    cdef void *po = _conv_data(dx)
    cdef int status
    if _conv_is_f32(dy):
        with nogil:
            status = fg_conv2d_backward_input_f32(
                <float *>pg, <float *>pw_, <float *>po, n, c, h, w, m, kh,
                kw, ph, pw)
    else:
        with nogil:
            status = fg_conv2d_backward_input_f64(
                <double *>pg, <double *>pw_, <double *>po, n, c, h, w, m, kh,
                kw, ph, pw)
    _raise_status(op, status)
    return dx


def conv2d_backward_weight(x, dy, dweight, pad_h, pad_w):
    """dweight[m,c,p,q] := sum_{n,i,j} dy[n,m,i,j] xpad[n,c,i+p,j+q].

    The batch is reduced in fixed chunks of samples whose partial sums are
    added in chunk order, so the result does not depend on the thread count.
    IN x (N,C,H,W), dy (N,M,OH,OW); OUT dweight (M,C,KH,KW)."""
    op = "conv2d_backward_weight"
    _check(op, "x", x, 4)
    _check(op, "dy", dy, 4, x.dtype)
    _check(op, "dweight", dweight, 4, x.dtype, writeable=True)
    oh, ow = _conv_geometry(op, x.shape, "x", dweight.shape, pad_h, pad_w)
    cdef Py_ssize_t n, c, h, w, m, kh, kw, ph = pad_h, pw = pad_w
    n, c, h, w = x.shape
    m, _, kh, kw = dweight.shape
    _check_shape(op, "dy", dy, (n, m, oh, ow))
    _check_no_alias(op, "dweight", dweight, x=x, dy=dy)
    if dweight.size == 0:
        return dweight
    cdef void *px = _conv_data(x)
    cdef void *pg = _conv_data(dy)
    cdef void *po = _conv_data(dweight)
    cdef int status
    if _conv_is_f32(x):
        with nogil:
            status = fg_conv2d_backward_weight_f32(
                <float *>px, <float *>pg, <float *>po, n, c, h, w, m, kh, kw,
                ph, pw)
    else:
        with nogil:
            status = fg_conv2d_backward_weight_f64(
                <double *>px, <double *>pg, <double *>po, n, c, h, w, m, kh,
                kw, ph, pw)
    _raise_status(op, status)
    return dweight


def conv2d_backward_bias(dy, dbias):
    """dbias[m] := sum_{n,i,j} dy[n,m,i,j] (fixed summation order).

    IN dy (N,M,OH,OW); OUT dbias (M,)."""
    op = "conv2d_backward_bias"
    _check(op, "dy", dy, 4)
    _check(op, "dbias", dbias, 1, dy.dtype, writeable=True)
    cdef Py_ssize_t n, m, oh, ow
    n, m, oh, ow = dy.shape
    _check_shape(op, "dbias", dbias, (m,))
    _check_no_alias(op, "dbias", dbias, dy=dy)
    if dbias.size == 0:
        return dbias
    cdef void *pg = _conv_data(dy)
    cdef void *po = _conv_data(dbias)
    if _conv_is_f32(dy):
        with nogil:
            fg_conv2d_backward_bias_f32(<float *>pg, <float *>po, n, m,
                                        oh * ow)
    else:
        with nogil:
            fg_conv2d_backward_bias_f64(<double *>pg, <double *>po, n, m,
                                        oh * ow)
    return dbias


cdef _check_scale(str op, object scale, tuple shape):
    if not isinstance(scale, (int, np.integer)) or isinstance(scale, bool):
        raise TypeError(f"{op}: scale must be an int, got "
                        f"{type(scale).__name__}")
    if scale < 1:
        raise ValueError(f"{op}: scale must be >= 1, got {scale}")
    if shape[2] % scale or shape[3] % scale:
        raise ValueError(f"{op}: height and width of {shape} must be "
                         f"divisible by the scale {scale}")


def meanpool_forward(x, out, scale):
    """out[n,c,i,j] := mean of x[n,c,i*s:(i+1)*s, j*s:(j+1)*s], s = scale
    (DeepLearnToolbox's subsampling layer).

    IN x (N,C,H,W) with H, W divisible by scale; OUT out (N,C,H/s,W/s)."""
    op = "meanpool_forward"
    _check(op, "x", x, 4)
    _check(op, "out", out, 4, x.dtype, writeable=True)
    _check_scale(op, scale, x.shape)
    cdef Py_ssize_t n, c, h, w, s = scale
    n, c, h, w = x.shape
    _check_shape(op, "out", out, (n, c, h // s, w // s))
    _check_no_alias(op, "out", out, x=x)
    if out.size == 0:
        return out
    cdef void *px = _conv_data(x)
    cdef void *po = _conv_data(out)
    if _conv_is_f32(x):
        with nogil:
            fg_meanpool_forward_f32(<float *>px, <float *>po, n * c, h, w, s)
    else:
        with nogil:
            fg_meanpool_forward_f64(<double *>px, <double *>po, n * c, h, w,
                                    s)
    return out


def meanpool_backward(dy, dx, scale, y=None, activation="none"):
    """dx[n,c,h,w] := dy[n,c,h//s,w//s] / s^2, s = scale; with y, times
    act'(y[n,c,h,w]), the derivative of `activation` from its output y (the
    backward of act(conv) followed by the pool, in one pass).

    IN dy (N,C,H/s,W/s), y None or (N,C,H,W); OUT dx (N,C,H,W) with H, W
    divisible by scale."""
    op = "meanpool_backward"
    cdef int code = _activation_code(op, activation)
    _check(op, "dy", dy, 4)
    _check(op, "dx", dx, 4, dy.dtype, writeable=True)
    _check_scale(op, scale, dx.shape)
    cdef Py_ssize_t n, c, h, w, s = scale
    n, c, h, w = dx.shape
    _check_shape(op, "dy", dy, (n, c, h // s, w // s))
    _check_no_alias(op, "dx", dx, dy=dy)
    cdef void *py = NULL
    if y is not None:
        _check(op, "y", y, 4, dy.dtype)
        _check_shape(op, "y", y, dx.shape)
        _check_no_alias(op, "dx", dx, y=y)
    if dx.size == 0:
        return dx
    if y is not None:
        py = _conv_data(y)
    cdef void *pg = _conv_data(dy)
    cdef void *po = _conv_data(dx)
    if _conv_is_f32(dy):
        with nogil:
            fg_meanpool_backward_f32(<float *>pg, <float *>py, code,
                                     <float *>po, n * c, h, w, s)
    else:
        with nogil:
            fg_meanpool_backward_f64(<double *>pg, <double *>py, code,
                                     <double *>po, n * c, h, w, s)
    return dx


def maxpool2x2_forward(x, out, argmax):
    """out[n,c,i,j] := max of the 2x2 block x[n,c,2i:2i+2,2j:2j+2];
    argmax[n,c,i,j] := flat index h*W+w of that max within its input plane
    (the first in row-major order on ties). An odd last row or column is
    ignored (floor, like torch.nn.MaxPool2d).

    IN x (N,C,H,W); OUT out (N,C,H//2,W//2), argmax int64 (same shape)."""
    op = "maxpool2x2_forward"
    _check(op, "x", x, 4)
    _check(op, "out", out, 4, x.dtype, writeable=True)
    cdef Py_ssize_t n, c, h, w
    n, c, h, w = x.shape
    shape = (n, c, h // 2, w // 2)
    _check_shape(op, "out", out, shape)
    _check_index_array(op, "argmax", argmax, shape, writeable=True)
    _check_no_alias(op, "out", out, x=x, argmax=argmax)
    _check_no_alias(op, "argmax", argmax, x=x)
    if out.size == 0:
        return out, argmax
    cdef void *px = _conv_data(x)
    cdef void *po = _conv_data(out)
    cdef int64_t *pi = <int64_t *>_conv_data(argmax)
    if _conv_is_f32(x):
        with nogil:
            fg_maxpool2x2_forward_f32(<float *>px, <float *>po, pi, n * c, h,
                                      w)
    else:
        with nogil:
            fg_maxpool2x2_forward_f64(<double *>px, <double *>po, pi, n * c,
                                      h, w)
    return out, argmax


cdef _check_index_array(str op, str name, object arr, tuple shape,
                        bint writeable):
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{op}: {name} must be a numpy.ndarray, "
                        f"got {type(arr).__name__}")
    if arr.dtype != np.int64:
        raise TypeError(f"{op}: {name} must be int64, got {arr.dtype}")
    if not arr.flags.c_contiguous:
        raise ValueError(f"{op}: {name} must be C-contiguous")
    if writeable and not arr.flags.writeable:
        raise ValueError(f"{op}: output {name} is read-only")
    _check_shape(op, name, arr, shape)


def maxpool2x2_backward(dy, argmax, dx):
    """dx := 0, then dx[n,c].flat[argmax[n,c,i,j]] += dy[n,c,i,j].

    IN dy (N,C,H//2,W//2), argmax int64 (same shape); OUT dx (N,C,H,W)."""
    op = "maxpool2x2_backward"
    _check(op, "dy", dy, 4)
    _check(op, "dx", dx, 4, dy.dtype, writeable=True)
    cdef Py_ssize_t n, c, h, w
    n, c, h, w = dx.shape
    shape = (n, c, h // 2, w // 2)
    _check_shape(op, "dy", dy, shape)
    _check_index_array(op, "argmax", argmax, shape, writeable=False)
    _check_no_alias(op, "dx", dx, dy=dy, argmax=argmax)
    if dx.size == 0:
        return dx
    cdef void *pg = _conv_data(dy)
    cdef const int64_t *pi = <const int64_t *>_conv_data(argmax)
    cdef void *po = _conv_data(dx)
    cdef int status
    if _conv_is_f32(dy):
        with nogil:
            status = fg_maxpool2x2_backward_f32(<float *>pg, pi, <float *>po,
                                                n * c, h, w)
    else:
        with nogil:
            status = fg_maxpool2x2_backward_f64(<double *>pg, pi,
                                                <double *>po, n * c, h, w)
    _raise_status(op, status)
    return dx


KERNELS += ["conv2d_forward", "conv2d_backward_input",
            "conv2d_backward_weight", "conv2d_backward_bias",
            "meanpool_forward", "meanpool_backward",
            "maxpool2x2_forward", "maxpool2x2_backward"]
