# GEMM and the fused linear layer (C core in _gemm.c, API in _gemm.h).
cdef extern from "_gemm.h":
    void fg_gemm_bias_act_f32(int trans_a, int trans_b, ptrdiff_t m,
                              ptrdiff_t n, ptrdiff_t k, float alpha,
                              const float *a, ptrdiff_t lda, const float *b,
                              ptrdiff_t ldb, float beta, float *c,
                              ptrdiff_t ldc, const float *bias,
                              int act) nogil
    void fg_gemm_bias_act_f64(int trans_a, int trans_b, ptrdiff_t m,
                              ptrdiff_t n, ptrdiff_t k, double alpha,
                              const double *a, ptrdiff_t lda,
                              const double *b, ptrdiff_t ldb, double beta,
                              double *c, ptrdiff_t ldc, const double *bias,
                              int act) nogil


cdef void _gemm_core(int trans_a, int trans_b, Py_ssize_t m, Py_ssize_t n,
                     Py_ssize_t k, double alpha, const floating[:, ::1] a,
                     const floating[:, ::1] b, double beta,
                     floating[:, ::1] c, const floating[::1] bias,
                     int act) noexcept:
    """C := act(alpha*op(A)*op(B) + beta*C + bias); m, n > 0 here."""
    cdef const floating *pa = NULL
    cdef const floating *pb = NULL
    cdef const floating *pbias = NULL
    cdef Py_ssize_t lda = a.shape[1], ldb = b.shape[1], ldc = c.shape[1]
    if k > 0:
        pa = &a[0, 0]
        pb = &b[0, 0]
    if bias is not None:
        pbias = &bias[0]
    with nogil:
        if floating is float:
            fg_gemm_bias_act_f32(trans_a, trans_b, m, n, k, <float>alpha,
                                 pa, lda, pb, ldb, <float>beta, &c[0, 0],
                                 ldc, pbias, act)
        else:
            fg_gemm_bias_act_f64(trans_a, trans_b, m, n, k, alpha, pa, lda,
                                 pb, ldb, beta, &c[0, 0], ldc, pbias, act)


def gemm(a, b, c, bint trans_a=False, bint trans_b=False, double alpha=1.0,
         double beta=0.0):
    """c := alpha * op(a) @ op(b) + beta * c, op(x) = x.T when its flag is
    set. IN a (m, k) or (k, m), b (k, n) or (n, k); IN/OUT c (m, n). One
    float dtype, C-contiguous, c must not overlap a or b. With beta == 0 the
    old contents of c are ignored (even NaN). Returns c."""
    _check("gemm", "a", a, 2)
    _check("gemm", "b", b, 2, dtype=a.dtype)
    _check("gemm", "c", c, 2, dtype=a.dtype, writeable=True)
    cdef Py_ssize_t m, k, k_b, n
    if trans_a:
        k, m = a.shape
    else:
        m, k = a.shape
    if trans_b:
        n, k_b = b.shape
    else:
        k_b, n = b.shape
    if k != k_b:
        raise ValueError(
            f"gemm: inner dimensions differ: op(a) is {m}x{k} (a {a.shape}, "
            f"trans_a={bool(trans_a)}) but op(b) is {k_b}x{n} (b {b.shape}, "
            f"trans_b={bool(trans_b)})")
    _check_shape("gemm", "c", c, (m, n))
    _check_no_alias("gemm", "c", c, a=a, b=b)
    if m == 0 or n == 0:
        return c
    if a.dtype == np.float32:
        _gemm_core[float](trans_a, trans_b, m, n, k, alpha, a, b, beta, c,
                          None, 0)
    else:
        _gemm_core[double](trans_a, trans_b, m, n, k, alpha, a, b, beta, c,
                           None, 0)
    return c


def linear_forward(x, weight, bias, out, str activation):
    """out := act(x @ weight.T + bias), with the bias add and the activation
    fused into the GEMM's write-back. IN x (batch, n_in), weight
    (n_out, n_in), bias (n_out,) or None; OUT out (batch, n_out). One float
    dtype, C-contiguous; out must not overlap the inputs. Returns out."""
    cdef int code = _activation_code("linear_forward", activation)
    _check("linear_forward", "x", x, 2)
    _check("linear_forward", "weight", weight, 2, dtype=x.dtype)
    if bias is not None:
        _check("linear_forward", "bias", bias, 1, dtype=x.dtype)
    _check("linear_forward", "out", out, 2, dtype=x.dtype, writeable=True)
    cdef Py_ssize_t batch = x.shape[0], n_in = x.shape[1]
    cdef Py_ssize_t n_out = weight.shape[0]
    if weight.shape[1] != n_in:
        raise ValueError(
            f"linear_forward: weight has shape {weight.shape} but x has shape "
            f"{x.shape}; expected weight (n_out, {n_in})")
    if bias is not None:
        _check_shape("linear_forward", "bias", bias, (n_out,))
    _check_shape("linear_forward", "out", out, (batch, n_out))
    _check_no_alias("linear_forward", "out", out, x=x, weight=weight,
                    bias=bias)
    if batch == 0 or n_out == 0:
        return out
    if x.dtype == np.float32:
        _gemm_core[float](0, 1, batch, n_out, n_in, 1.0, x, weight, 0.0, out,
                          bias, code)
    else:
        _gemm_core[double](0, 1, batch, n_out, n_in, 1.0, x, weight, 0.0,
                           out, bias, code)
    return out


KERNELS += ["gemm", "linear_forward"]
