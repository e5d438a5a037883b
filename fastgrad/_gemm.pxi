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
    int fg_gemm_simd_width()


def gemm_simd_width():
    """The widest SIMD kernels gemm runs on this machine: 512 (AVX-512),
    256 (AVX2 + FMA) or 0 (portable C). FASTGRAD_NO_AVX512=1 in the
    environment, set before the first product, turns AVX-512 off."""
    return fg_gemm_simd_width()


cdef inline void _gemm_call(int trans_a, int trans_b, Py_ssize_t m,
                            Py_ssize_t n, Py_ssize_t k, double alpha,
                            cnp.ndarray a, Py_ssize_t lda, cnp.ndarray b,
                            Py_ssize_t ldb, double beta, cnp.ndarray c,
                            object bias, int act):
    """C := act(alpha*op(A)*op(B) + beta*C + bias) on validated arrays."""
    cdef void *pa = cnp.PyArray_DATA(a)
    cdef void *pb = cnp.PyArray_DATA(b)
    cdef void *pc = cnp.PyArray_DATA(c)
    cdef void *pbias = NULL
    if bias is not None:
        pbias = cnp.PyArray_DATA(<cnp.ndarray>bias)
    if cnp.PyArray_TYPE(c) == cnp.NPY_FLOAT:
        with nogil:
            fg_gemm_bias_act_f32(trans_a, trans_b, m, n, k, <float>alpha,
                                 <const float *>pa, lda, <const float *>pb,
                                 ldb, <float>beta, <float *>pc, n,
                                 <const float *>pbias, act)
    else:
        with nogil:
            fg_gemm_bias_act_f64(trans_a, trans_b, m, n, k, alpha,
                                 <const double *>pa, lda,
                                 <const double *>pb, ldb, beta,
                                 <double *>pc, n, <const double *>pbias,
                                 act)


def gemm(a, b, c, bint trans_a=False, bint trans_b=False, double alpha=1.0,
         double beta=0.0):
    """c := alpha * op(a) @ op(b) + beta * c, op(x) = x.T when its flag is
    set. IN a (m, k) or (k, m), b (k, n) or (n, k); IN/OUT c (m, n). One
    float dtype, C-contiguous, c must not overlap a or b. With beta == 0 the
    old contents of c are ignored (even NaN). Returns c."""
    _check("gemm", "a", a, 2)
    _check("gemm", "b", b, 2, dtype=a.dtype)
    _check("gemm", "c", c, 2, dtype=a.dtype, writeable=True)
    cdef cnp.npy_intp *a_dims = cnp.PyArray_DIMS(<cnp.ndarray>a)
    cdef cnp.npy_intp *b_dims = cnp.PyArray_DIMS(<cnp.ndarray>b)
    cdef cnp.npy_intp *c_dims = cnp.PyArray_DIMS(<cnp.ndarray>c)
    cdef Py_ssize_t m = a_dims[1] if trans_a else a_dims[0]
    cdef Py_ssize_t k = a_dims[0] if trans_a else a_dims[1]
    cdef Py_ssize_t k_b = b_dims[1] if trans_b else b_dims[0]
    cdef Py_ssize_t n = b_dims[0] if trans_b else b_dims[1]
    if k != k_b:
        raise ValueError(
            f"gemm: inner dimensions differ: op(a) is {m}x{k} (a {a.shape}, "
            f"trans_a={bool(trans_a)}) but op(b) is {k_b}x{n} (b {b.shape}, "
            f"trans_b={bool(trans_b)})")
    if c_dims[0] != m or c_dims[1] != n:
        _check_shape("gemm", "c", c, (m, n))
    _check_no_alias("gemm", "c", c, a=a, b=b)
    if m == 0 or n == 0:
        return c
    _gemm_call(trans_a, trans_b, m, n, k, alpha, a, a_dims[1], b,
               b_dims[1], beta, c, None, 0)
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
    _gemm_call(0, 1, batch, n_out, n_in, 1.0, x, n_in, weight, n_in, 0.0,
               out, bias, code)
    return out


KERNELS += ["gemm", "linear_forward"]
