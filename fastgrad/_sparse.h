/*
 * Products with a sparse operand, for the RBM kernels (_rbm.c): the
 * visible rows of MNIST are about 80% zeros and the sampled units are
 * binary, so skipping zeros does several times less work than a GEMM.
 *
 * Each output element is computed by one thread, as one sum over the
 * nonzeros of its row (or column) of the sparse operand in ascending
 * index order. Results are therefore bitwise identical for any thread
 * count, and a row's result does not depend on the other rows of the
 * batch. Zeros are skipped, so an Inf or NaN in the dense operand meets
 * only the nonzeros (a GEMM would spread 0 * Inf = NaN).
 */
#ifndef FASTGRAD_SPARSE_H
#define FASTGRAD_SPARSE_H
#include <stddef.h>
#include <stdint.h>

/* Below these fractions of nonzeros the RBM kernels take the sparse
 * paths: a Gibbs half-step when its inputs are sparser, the CD weight update
 * when v0 and vk together are. Measured against fastgrad's GEMM on one
 * thread, batch 100, 784-100 and 784-500 (docs/readme/rbm.md): the sparse
 * products break even at about half nonzeros, the update (two lists per
 * column and the transposes) at about 0.3. */
#define FG_SPARSE_MAX_DENSITY 0.5
#define FG_SPARSE_CD_MAX_DENSITY 0.3
/* A visible-to-hidden half-step needs W^T, transposed once per Gibbs call
 * at the cost of a GEMM of a few rows, and the sparse CD update writes W
 * and V through transposed tiles: only batches of at least this many rows
 * take these sparse paths (measured: batch 1 lost 15%, batch 10 gained). */
#define FG_SPARSE_MIN_ROWS_T 8

/* Nonzeros of a (rows, cols), row by row: the columns c with a[i, c] != 0
 * are index[i cols + t], t < count[i], ascending, with their values in
 * value[i cols + t]. Returns their number. */
size_t fg_row_nonzeros_f32(const float *a, size_t rows, size_t cols,
                           uint32_t *index, float *value, uint32_t *count);
size_t fg_row_nonzeros_f64(const double *a, size_t rows, size_t cols,
                           uint32_t *index, double *value, uint32_t *count);

/* Settle the SIMD dispatch of this file; call it from serial code before
 * fg_nonzeros runs in a parallel region (the other functions do it). */
void fg_sparse_dispatch(void);

/* The same for one row a[0 .. cols), from serial or parallel code. Returns
 * the count. */
uint32_t fg_nonzeros_f32(const float *a, size_t cols, uint32_t *index,
                         float *value);
uint32_t fg_nonzeros_f64(const double *a, size_t cols, uint32_t *index,
                         double *value);

/* out[i, j] := act(sum_t value_t b[c_t, j] + bias[j]), the (c_t, value_t)
 * the nonzeros of row i of an (m, k) matrix from fg_row_nonzeros, in that
 * order; b is (k, n) with row stride ldb >= n, out is (m, n), bias has n
 * entries or is NULL, act an enum fg_activation (_eltwise.h). Rows of b
 * starting on 32-byte boundaries are read fastest; rows padded past n
 * (ldb > n) let the last block use whole vectors. */
void fg_sparse_rows_gemm_f32(size_t m, size_t n, size_t k,
                             const uint32_t *index, const float *value,
                             const uint32_t *count, const float *b,
                             size_t ldb, const float *bias, int act,
                             float *out);
void fg_sparse_rows_gemm_f64(size_t m, size_t n, size_t k,
                             const uint32_t *index, const double *value,
                             const uint32_t *count, const double *b,
                             size_t ldb, const double *bias, int act,
                             double *out);

/* out (cols, rows), row stride ldo >= rows, := a^T for a (rows, cols);
 * the padding out[j, rows .. ldo) is set to zero. */
void fg_transpose_f32(size_t rows, size_t cols, const float *a, float *out,
                      size_t ldo);
void fg_transpose_f64(size_t rows, size_t cols, const double *a,
                      double *out, size_t ldo);

/*
 * The weight part of a CD update, for v0, vk (batch, n_vis) with many
 * zeros and h0, hk (batch, n_hid):
 *   G := h0^T v0 - hk^T vk,   G[j, p] summed over the rows r with
 *        v0[r, p] != 0 (ascending), then minus those with vk[r, p] != 0
 *   V := momentum V - decay W + scale G;   W += V
 * Returns 0, or -1 with nothing changed when its scratch (about
 * 16 batch n_vis bytes) cannot be allocated.
 */
int fg_sparse_cd_weights_f32(size_t batch, size_t n_vis, size_t n_hid,
                             const float *v0, const float *h0,
                             const float *vk, const float *hk, float *weight,
                             float *velocity, float momentum, float decay,
                             float scale);
int fg_sparse_cd_weights_f64(size_t batch, size_t n_vis, size_t n_hid,
                             const double *v0, const double *h0,
                             const double *vk, const double *hk,
                             double *weight, double *velocity,
                             double momentum, double decay, double scale);

#endif
