/*
 * General matrix multiply for other C kernels (row-major, BLAS-like).
 *
 *     C := alpha * op(A) * op(B) + beta * C,    op(X) = X or X^T
 *
 * op(A) is m x k, op(B) is k x n, C is m x n. Matrices are row-major with
 * leading dimensions (the distance between consecutive rows, in elements):
 *   A is m x k with lda >= k (trans_a == 0) or k x m with lda >= m (else);
 *   B is k x n with ldb >= n (trans_b == 0) or n x k with ldb >= k (else);
 *   C is m x n with ldc >= n.
 * C must not overlap A or B. When beta == 0, C is write-only: its previous
 * contents are never read (NaN/Inf in C do not leak into the result).
 * k == 0 gives C := beta * C (zeros when beta == 0); m == 0 or n == 0 is a
 * no-op.
 *
 * Threads: each call opens its own OpenMP region with
 * fg_threads_for(2 m n k) threads (see _omp.h). Call it from serial code;
 * called from inside another parallel region it runs on the calling thread
 * only (nested parallelism is off) and stays correct. Results are bitwise
 * identical for every thread count: the blocking depends only on the shape
 * and K is never split across threads. Packing buffers are allocated and
 * freed inside each call; should an allocation fail, the call falls back
 * to an unpacked (slower) loop, so these functions cannot fail.
 */
#ifndef FASTGRAD_GEMM_H
#define FASTGRAD_GEMM_H
#include <stddef.h>

#include "_eltwise.h"

/* C := alpha * op(A) * op(B) + beta * C. */
void fg_gemm_f32(int trans_a, int trans_b, ptrdiff_t m, ptrdiff_t n,
                 ptrdiff_t k, float alpha, const float *a, ptrdiff_t lda,
                 const float *b, ptrdiff_t ldb, float beta, float *c,
                 ptrdiff_t ldc);
void fg_gemm_f64(int trans_a, int trans_b, ptrdiff_t m, ptrdiff_t n,
                 ptrdiff_t k, double alpha, const double *a, ptrdiff_t lda,
                 const double *b, ptrdiff_t ldb, double beta, double *c,
                 ptrdiff_t ldc);

/* The same with a fused epilogue, applied while C is written back:
 *
 *     C[i, j] := act(alpha * (op(A) op(B))[i, j] + beta * C[i, j] + bias[j])
 *
 * bias has n entries (one per column of C) or is NULL for no bias; act is a
 * code of enum fg_activation (_eltwise.h), evaluated with fg_act_f32 /
 * fg_act_f64, so the result equals fg_act_forward_* applied to the
 * pre-activation bit for bit. A linear layer y = f(x W^T + b) with x
 * (batch, n_in) and W (n_out, n_in) is
 *     fg_gemm_bias_act_f32(0, 1, batch, n_out, n_in, 1.0f, x, n_in,
 *                          w, n_in, 0.0f, y, n_out, b, act);
 * and RBM hidden probabilities sigmoid(v W^T + c) use act = FG_ACT_SIGMOID.
 */
void fg_gemm_bias_act_f32(int trans_a, int trans_b, ptrdiff_t m, ptrdiff_t n,
                          ptrdiff_t k, float alpha, const float *a,
                          ptrdiff_t lda, const float *b, ptrdiff_t ldb,
                          float beta, float *c, ptrdiff_t ldc,
                          const float *bias, int act);
void fg_gemm_bias_act_f64(int trans_a, int trans_b, ptrdiff_t m, ptrdiff_t n,
                          ptrdiff_t k, double alpha, const double *a,
                          ptrdiff_t lda, const double *b, ptrdiff_t ldb,
                          double beta, double *c, ptrdiff_t ldc,
                          const double *bias, int act);

/* The widest SIMD kernels fg_gemm runs here: 512 (AVX-512), 256 (AVX2 +
 * FMA) or 0 (portable C). */
int fg_gemm_simd_width(void);

#endif
