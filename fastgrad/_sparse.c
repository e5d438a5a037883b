/*
 * Products with a sparse operand, for the RBM kernels (see _sparse.h).
 *
 * One primitive does the arithmetic of both products: for a list of
 * (index, value) pairs, acc[0 .. width) += value * row index of a dense
 * matrix, pairs in list order (AVX2+FMA for float32: up to 8 vector
 * accumulators, 64 columns; portable C otherwise). The dense rows of a
 * 64-column block stay in L1/L2 while a task runs over many lists.
 *
 * This file is a template: it includes itself twice, once per type.
 */
#ifndef FG_SPARSE_TEMPLATE

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_eltwise.h"
#include "_omp.h"
#include "_simd.h"
#include "_sparse.h"

#if FG_HAVE_X86_DISPATCH
#include <immintrin.h>
#include "_vmath.h"
#endif

#define FG_MIN(x, y) ((x) < (y) ? (x) : (y))
/* Output columns per block: 8 AVX2 float32 accumulators. */
#define FG_SP_COLS 64
/* Rows of the sparse operand per task of fg_sparse_rows_gemm. */
#define FG_SP_ROWS 16
/* Visible units per task of the CD update. */
#define FG_CD_VIS 64
/* Tile edge of the transpose. */
#define FG_TR_BLOCK 32

/* 1 when the AVX2 paths may run, -1 before the first check. Set from
 * serial code only (at the entry of each kernel), read in parallel
 * regions. */
static int fg_sparse_avx2 = -1;
/* For each 8-bit mask: the positions of its set bits, one per byte, in
 * ascending order (the lane permutation that packs the selected lanes to
 * the front), and their number. Filled with fg_sparse_avx2. */
static uint64_t fg_pack_lanes[256];
static unsigned char fg_pack_count[256];

static int
sparse_use_avx2(void)
{
    if (fg_sparse_avx2 < 0) {
        unsigned mask, lane;
        for (mask = 0; mask < 256; mask++) {
            uint64_t lanes = 0;
            unsigned n = 0;
            for (lane = 0; lane < 8; lane++) {
                if (mask >> lane & 1) {
                    lanes |= (uint64_t)lane << (8 * n++);
                }
            }
            fg_pack_lanes[mask] = lanes;
            fg_pack_count[mask] = (unsigned char)n;
        }
        fg_sparse_avx2 = fg_cpu_has_avx2();
    }
    return fg_sparse_avx2;
}

void
fg_sparse_dispatch(void)
{
    (void)sparse_use_avx2();
}

#if FG_HAVE_X86_DISPATCH
/* Lanes [0, n) of a mask (all lanes when n >= 8). */
FG_TARGET_AVX2 static inline __m256i
lanes_below(size_t n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)FG_MIN(n, 8)),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* Columns c with a[c] != 0 into index, ascending, and their values;
 * returns their number. Eight columns at a time, without branches: the
 * nonzero lanes are packed to the front and all 8 lanes stored (index and
 * value have room: fewer than c entries are filled before column c). */
FG_TARGET_AVX2 static uint32_t
nonzeros_avx2(const float *a, size_t cols, uint32_t *index, float *value)
{
    const __m256 zero = _mm256_setzero_ps();
    uint32_t n = 0;
    size_t c = 0;
    for (; c + 8 <= cols; c += 8) {
        const __m256 x = _mm256_loadu_ps(a + c);
        const unsigned mask = (unsigned)_mm256_movemask_ps(
            _mm256_cmp_ps(x, zero, _CMP_NEQ_UQ));
        const __m256i lanes = _mm256_cvtepu8_epi32(
            _mm_cvtsi64_si128((long long)fg_pack_lanes[mask]));
        _mm256_storeu_si256((__m256i *)(index + n), _mm256_add_epi32(
            lanes, _mm256_set1_epi32((int)c)));
        _mm256_storeu_ps(value + n, _mm256_permutevar8x32_ps(x, lanes));
        n += fg_pack_count[mask];
    }
    for (; c < cols; c++) {
        index[n] = (uint32_t)c;
        value[n] = a[c];
        n += a[c] != 0.0f;
    }
    return n;
}

/* Both lists of lists_sum_avx2, the second one subtracted; BODY is the
 * accumulation of one term x * row. */
#define FG_LISTS(BODY)                                                        \
    do {                                                                      \
        for (t = 0; t < len0; t++) {                                          \
            const float *row = b0 + (size_t)index0[t] * ldb;                  \
            const __m256 x = _mm256_set1_ps(value0[t]);                       \
            BODY;                                                             \
        }                                                                     \
        for (t = 0; t < len1; t++) {                                          \
            const float *row = b1 + (size_t)index1[t] * ldb;                  \
            const __m256 x = _mm256_set1_ps(-value1[t]);                      \
            BODY;                                                             \
        }                                                                     \
    } while (0)
/* c<q> += x * vector q of the row, for the vectors q < nv; the last one
 * masked when `masked` (nv and masked are constants after inlining, and
 * the accumulators named variables, so they stay in registers). */
#define FG_TERM(q)                                                            \
    if (nv > (q))                                                             \
        c##q = _mm256_fmadd_ps(x, masked && (q) == nv - 1                     \
                               ? _mm256_maskload_ps(row + 8 * (q), mask)      \
                               : _mm256_loadu_ps(row + 8 * (q)), c##q)

/* lists_sum_avx2 for nv vectors of columns. */
FG_TARGET_AVX2 static inline __attribute__((always_inline)) void
lists_sum_nv(const int nv, const int masked, __m256i mask,
             const uint32_t *index0, const float *value0, uint32_t len0,
             const float *b0, const uint32_t *index1, const float *value1,
             uint32_t len1, const float *b1, size_t ldb, float *acc)
{
    __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0;
    __m256 c5 = c0, c6 = c0, c7 = c0;
    uint32_t t;
    FG_LISTS(FG_TERM(0); FG_TERM(1); FG_TERM(2); FG_TERM(3); FG_TERM(4);
             FG_TERM(5); FG_TERM(6); FG_TERM(7));
    _mm256_storeu_ps(acc, c0);
    _mm256_storeu_ps(acc + 8, c1);
    _mm256_storeu_ps(acc + 16, c2);
    _mm256_storeu_ps(acc + 24, c3);
    _mm256_storeu_ps(acc + 32, c4);
    _mm256_storeu_ps(acc + 40, c5);
    _mm256_storeu_ps(acc + 48, c6);
    _mm256_storeu_ps(acc + 56, c7);
}

/* acc[0 .. width) := sum_t value0[t] b0[index0[t] ldb + 0 .. width)
 *                  - sum_t value1[t] b1[index1[t] ldb + 0 .. width),
 * the terms in list order; width <= 64, acc has 64 entries. One vector
 * accumulator per 8 columns. Rows may be read up to `readable` >= width
 * columns (padded rows): then the last vector is a plain load, else a
 * masked one; lanes past width are computed but not meant to be used. */
FG_TARGET_AVX2 static void
lists_sum_avx2(const uint32_t *index0, const float *value0, uint32_t len0,
               const float *b0, const uint32_t *index1, const float *value1,
               uint32_t len1, const float *b1, size_t ldb, size_t width,
               size_t readable, float *acc)
{
    const int nv = (int)((width + 7) / 8);
    const int masked = readable < (size_t)nv * 8;
    const __m256i mask = lanes_below(width - 8 * (size_t)(nv - 1));
#define FG_CASE(NV)                                                           \
    case 2 * (NV):                                                            \
        lists_sum_nv(NV, 0, mask, index0, value0, len0, b0, index1, value1,   \
                     len1, b1, ldb, acc);                                     \
        break;                                                                \
    case 2 * (NV) + 1:                                                        \
        lists_sum_nv(NV, 1, mask, index0, value0, len0, b0, index1, value1,   \
                     len1, b1, ldb, acc);                                     \
        break;
    switch (2 * nv + masked) {
    FG_CASE(1) FG_CASE(2) FG_CASE(3) FG_CASE(4)
    FG_CASE(5) FG_CASE(6) FG_CASE(7) FG_CASE(8)
    default:  /* width 0: nothing to sum */
        memset(acc, 0, FG_SP_COLS * sizeof(float));
    }
#undef FG_CASE
}

#undef FG_TERM
#undef FG_LISTS

/* out[0 .. width) := act(acc + bias) (bias may be NULL). */
FG_TARGET_AVX2 static void
store_act_avx2(const float *acc, const float *bias, size_t width, int act,
               float *out)
{
    size_t q;
    for (q = 0; q < width; q += 8) {
        const __m256i mask = lanes_below(width - q);
        __m256 v = _mm256_loadu_ps(acc + q);
        if (bias != NULL) {
            v = _mm256_add_ps(v, _mm256_maskload_ps(bias + q, mask));
        }
        v = fg_act_ps(v, act);
        if (width - q >= 8) {
            _mm256_storeu_ps(out + q, v);
        }
        else {
            _mm256_maskstore_ps(out + q, mask, v);
        }
    }
}

/* out[j, i] := a[i, j] (out row stride ldo) for the full 8 x 8 blocks of
 * rows [i0, i1) of a (rows, cols); returns the columns done (a multiple of
 * 8), the caller does the rest. i1 - i0 must be a multiple of 8. */
FG_TARGET_AVX2 static size_t
transpose_rows_avx2(size_t rows, size_t cols, const float *a, float *out,
                    size_t ldo, size_t i0, size_t i1)
{
    size_t i, j, q;
    for (j = 0; j + 8 <= cols; j += 8) {
        for (i = i0; i < i1; i += 8) {
            __m256 r[8];
            for (q = 0; q < 8; q++) {
                r[q] = _mm256_loadu_ps(a + (i + q) * cols + j);
            }
            fg_transpose8_ps(r);
            for (q = 0; q < 8; q++) {
                _mm256_storeu_ps(out + (j + q) * ldo + i, r[q]);
            }
        }
    }
    return cols / 8 * 8;
}

/* For the 8 x 8 blocks of g (n_vis_block x width, row stride 64, one row
 * per visible unit) that are full: V := mom V - decay W + scale g^T;
 * W += V, W and V (width x n_vis_block) with row stride ld. Returns the
 * number of complete 8-column and 8-row blocks via *vis_done, *hid_done;
 * the caller does the rest. */
FG_TARGET_AVX2 static void
cd_tile_update_avx2(const float *g, size_t n_vis_block, size_t width,
                    float *weight, float *velocity, size_t ld, float mom,
                    float decay, float scale, size_t *vis_done,
                    size_t *hid_done)
{
    const __m256 m = _mm256_set1_ps(mom), d = _mm256_set1_ps(decay);
    const __m256 s = _mm256_set1_ps(scale);
    size_t jb, pb, q;
    for (jb = 0; jb + 8 <= width; jb += 8) {
        for (pb = 0; pb + 8 <= n_vis_block; pb += 8) {
            __m256 r[8];
            for (q = 0; q < 8; q++) {
                r[q] = _mm256_loadu_ps(g + (pb + q) * FG_SP_COLS + jb);
            }
            fg_transpose8_ps(r);
            for (q = 0; q < 8; q++) {
                float *w = weight + (jb + q) * ld + pb;
                float *v = velocity + (jb + q) * ld + pb;
                __m256 wv = _mm256_loadu_ps(w);
                __m256 vv = _mm256_mul_ps(m, _mm256_loadu_ps(v));
                vv = _mm256_fnmadd_ps(d, wv, vv);
                vv = _mm256_fmadd_ps(s, r[q], vv);
                _mm256_storeu_ps(v, vv);
                _mm256_storeu_ps(w, _mm256_add_ps(wv, vv));
            }
        }
    }
    *vis_done = n_vis_block / 8 * 8;
    *hid_done = width / 8 * 8;
}
#endif  /* FG_HAVE_X86_DISPATCH */

/* Instantiate the type-generic part for float32 and float64. */
#define FG_SPARSE_TEMPLATE
#define T float
#define FG_SFX(name) name##_f32
#define FG_ACT fg_act_f32
#define FG_IS_F32 1
#include "_sparse.c"
#undef T
#undef FG_SFX
#undef FG_ACT
#undef FG_IS_F32

#define T double
#define FG_SFX(name) name##_f64
#define FG_ACT fg_act_f64
#define FG_IS_F32 0
#include "_sparse.c"
#undef T
#undef FG_SFX
#undef FG_ACT
#undef FG_IS_F32

#else  /* FG_SPARSE_TEMPLATE: the type-generic part, T is float or double */

/* The AVX2 paths exist for float32 only. */
#if FG_HAVE_X86_DISPATCH && FG_IS_F32
#define FG_SP_AVX2(use) (use)
#else
#define FG_SP_AVX2(use) 0
#endif

/* Nonzero columns of a[0 .. cols), ascending, and their values; returns
 * their number. */
static uint32_t
FG_SFX(nonzeros)(const T *a, size_t cols, uint32_t *index, T *value,
                 int use_avx2)
{
    uint32_t n = 0;
    size_t c;
#if FG_HAVE_X86_DISPATCH && FG_IS_F32
    if (use_avx2) {
        return nonzeros_avx2(a, cols, index, value);
    }
#endif
    (void)use_avx2;
    for (c = 0; c < cols; c++) {
        index[n] = (uint32_t)c;
        value[n] = a[c];
        n += a[c] != (T)0;
    }
    return n;
}

/* acc[0 .. width) := sum_t value0[t] b0[index0[t] ldb + 0 .. width)
 *                  - sum_t value1[t] b1[index1[t] ldb + 0 .. width). */
static void
FG_SFX(lists_sum)(const uint32_t *index0, const T *value0, uint32_t len0,
                  const T *b0, const uint32_t *index1, const T *value1,
                  uint32_t len1, const T *b1, size_t ldb, size_t width,
                  size_t readable, T *acc, int use_avx2)
{
    uint32_t t;
    size_t j;
#if FG_HAVE_X86_DISPATCH && FG_IS_F32
    if (use_avx2) {
        lists_sum_avx2(index0, value0, len0, b0, index1, value1, len1, b1,
                       ldb, width, readable, acc);
        return;
    }
#endif
    (void)use_avx2;
    (void)readable;
    for (j = 0; j < width; j++) {
        acc[j] = (T)0;
    }
    for (t = 0; t < len0; t++) {
        const T *row = b0 + (size_t)index0[t] * ldb;
        const T x = value0[t];
        for (j = 0; j < width; j++) {
            acc[j] += x * row[j];
        }
    }
    for (t = 0; t < len1; t++) {
        const T *row = b1 + (size_t)index1[t] * ldb;
        const T x = -value1[t];
        for (j = 0; j < width; j++) {
            acc[j] += x * row[j];
        }
    }
}

uint32_t
FG_SFX(fg_nonzeros)(const T *a, size_t cols, uint32_t *index, T *value)
{
    return FG_SFX(nonzeros)(a, cols, index, value,
                            FG_SP_AVX2(fg_sparse_avx2 > 0));
}

size_t
FG_SFX(fg_row_nonzeros)(const T *a, size_t rows, size_t cols,
                        uint32_t *index, T *value, uint32_t *count)
{
    const int use_avx2 = FG_SP_AVX2(sparse_use_avx2());
    ptrdiff_t i, n_rows = (ptrdiff_t)rows;
    size_t total = 0;
    int n_threads = fg_threads_for(16.0 * (double)rows * (double)cols);
    _Pragma("omp parallel for schedule(static) num_threads(n_threads)")
    for (i = 0; i < n_rows; i++) {
        count[i] = FG_SFX(nonzeros)(a + (size_t)i * cols, cols,
                                    index + (size_t)i * cols,
                                    value + (size_t)i * cols, use_avx2);
    }
    for (i = 0; i < n_rows; i++) {
        total += count[i];
    }
    return total;
}

void
FG_SFX(fg_sparse_rows_gemm)(size_t m, size_t n, size_t k,
                            const uint32_t *index, const T *value,
                            const uint32_t *count, const T *b, size_t ldb,
                            const T *bias, int act, T *out)
{
    const int use_avx2 = FG_SP_AVX2(sparse_use_avx2());
    const ptrdiff_t n_col_blocks = (ptrdiff_t)((n + FG_SP_COLS - 1)
                                               / FG_SP_COLS);
    /* columns per block: as even as whole vectors allow (n = 100: 56 + 44
     * rather than 64 + 36, so the threads' shares are closer) */
    const size_t cols = n_col_blocks == 0 ? FG_SP_COLS
        : ((n + (size_t)n_col_blocks - 1) / (size_t)n_col_blocks + 7)
          & ~(size_t)7;
    const ptrdiff_t n_row_blocks = (ptrdiff_t)((m + FG_SP_ROWS - 1)
                                               / FG_SP_ROWS);
    ptrdiff_t task;
    size_t i, nonzeros = 0;
    int n_threads;
    for (i = 0; i < m; i++) {
        nonzeros += count[i];
    }
    n_threads = fg_threads_for(2.0 * (double)nonzeros * (double)n
                               + 20.0 * (double)m * (double)n);
    /* Tasks column block by column block, so a thread keeps its block of
     * b (k x 64) in cache over the rows (row block by row block, which
     * would split a narrow last block between the threads, measured
     * 1.14x slower at n = 100). */
    _Pragma("omp parallel for schedule(static) num_threads(n_threads)")
    for (task = 0; task < n_col_blocks * n_row_blocks; task++) {
        const size_t j0 = (size_t)(task / n_row_blocks) * cols;
        const size_t r0 = (size_t)(task % n_row_blocks) * FG_SP_ROWS;
        const size_t width = FG_MIN(n - j0, cols);
        const size_t readable = FG_MIN(ldb - j0, (size_t)FG_SP_COLS);
        const size_t r1 = FG_MIN(m, r0 + FG_SP_ROWS);
        T acc[FG_SP_COLS];
        size_t r, j;
        for (r = r0; r < r1; r++) {
            T *dst = out + r * n + j0;
            FG_SFX(lists_sum)(index + r * k, value + r * k, count[r],
                              b + j0, NULL, NULL, 0, NULL, ldb, width,
                              readable, acc, use_avx2);
#if FG_HAVE_X86_DISPATCH && FG_IS_F32
            if (use_avx2) {
                store_act_avx2(acc, bias != NULL ? bias + j0 : NULL, width,
                               act, dst);
                continue;
            }
#endif
            for (j = 0; j < width; j++) {
                dst[j] = FG_ACT(act, bias != NULL ? acc[j] + bias[j0 + j]
                                                  : acc[j]);
            }
        }
    }
}

void
FG_SFX(fg_transpose)(size_t rows, size_t cols, const T *a, T *out,
                     size_t ldo)
{
    const int use_avx2 = FG_SP_AVX2(sparse_use_avx2());
    const ptrdiff_t n_blocks = (ptrdiff_t)((rows + FG_TR_BLOCK - 1)
                                           / FG_TR_BLOCK);
    ptrdiff_t block;
    int n_threads = fg_threads_for(16.0 * (double)rows * (double)cols);
    _Pragma("omp parallel for schedule(static) num_threads(n_threads)")
    for (block = 0; block < n_blocks; block++) {
        const size_t i0 = (size_t)block * FG_TR_BLOCK;
        const size_t i1 = FG_MIN(rows, i0 + FG_TR_BLOCK);
        size_t i, j, j0, i_done = i0, j_done = 0;
#if FG_HAVE_X86_DISPATCH && FG_IS_F32
        if (use_avx2) {
            i_done = i0 + (i1 - i0) / 8 * 8;
            j_done = transpose_rows_avx2(rows, cols, a, out, ldo, i0,
                                         i_done);
        }
#endif
        (void)use_avx2;
        /* the rest: rows below i_done from column j_done, all columns of
         * the rows from i_done */
        for (j0 = 0; j0 < cols; j0 += FG_TR_BLOCK) {
            const size_t j1 = FG_MIN(cols, j0 + FG_TR_BLOCK);
            for (j = j0; j < j1; j++) {
                for (i = j < j_done ? i_done : i0; i < i1; i++) {
                    out[j * ldo + i] = a[i * cols + j];
                }
            }
        }
        for (j = 0; i1 == rows && j < cols; j++) {  /* zero the padding */
            for (i = rows; i < ldo; i++) {
                out[j * ldo + i] = (T)0;
            }
        }
    }
}

int
FG_SFX(fg_sparse_cd_weights)(size_t batch, size_t n_vis, size_t n_hid,
                             const T *v0, const T *h0, const T *vk,
                             const T *hk, T *weight, T *velocity,
                             T momentum, T decay, T scale)
{
    const int use_avx2 = FG_SP_AVX2(sparse_use_avx2());
    const size_t cells = batch * n_vis;
    /* h0 and hk copied with rows aligned to FG_ALIGN bytes */
    const size_t ldh = (n_hid * sizeof(T) + FG_ALIGN - 1) / FG_ALIGN
                       * FG_ALIGN / sizeof(T);
    const ptrdiff_t n_chunks = (ptrdiff_t)((n_vis + FG_CD_VIS - 1)
                                           / FG_CD_VIS);
    const ptrdiff_t n_blocks = (ptrdiff_t)((n_hid + FG_SP_COLS - 1)
                                           / FG_SP_COLS);
    /* v0^T and vk^T, then the nonzeros of their rows (the columns of v0
     * and vk): rows index[p batch ...], values value[p batch ...] */
    uint32_t *index = malloc((2 * cells + 2 * n_vis) * sizeof(uint32_t));
    T *value = malloc(4 * cells * sizeof(T));
    T *h_copy = fg_aligned_malloc(2 * batch * ldh * sizeof(T));
    T *v0_t = value + 2 * cells, *vk_t = value + 3 * cells;
    uint32_t *index0 = index, *index_k = index + cells;
    uint32_t *count0 = index + 2 * cells, *count_k = count0 + n_vis;
    T *value0 = value, *value_k = value + cells;
    const T *h0_rows = h_copy, *hk_rows = h_copy + batch * ldh;
    ptrdiff_t task, i;
    int n_threads;
    if (index == NULL || value == NULL || h_copy == NULL) {
        free(index);
        free(value);
        fg_aligned_free(h_copy);
        return -1;
    }
    FG_SFX(fg_transpose)(batch, n_vis, v0, v0_t, batch);
    FG_SFX(fg_transpose)(batch, n_vis, vk, vk_t, batch);
    n_threads = fg_threads_for((double)batch * (double)n_vis
                               * (double)n_hid);
    _Pragma("omp parallel num_threads(n_threads)")
    {
        _Pragma("omp for schedule(static) nowait")
        for (i = 0; i < (ptrdiff_t)(2 * batch); i++) {
            const T *src = i < (ptrdiff_t)batch ? h0 + (size_t)i * n_hid
                           : hk + ((size_t)i - batch) * n_hid;
            memcpy(h_copy + (size_t)i * ldh, src, n_hid * sizeof(T));
            memset(h_copy + (size_t)i * ldh + n_hid, 0,
                   (ldh - n_hid) * sizeof(T));
        }
        _Pragma("omp for schedule(static)")
        for (i = 0; i < (ptrdiff_t)n_vis; i++) {
            const size_t p = (size_t)i;
            count0[p] = FG_SFX(nonzeros)(v0_t + p * batch, batch,
                                         index0 + p * batch,
                                         value0 + p * batch, use_avx2);
            count_k[p] = FG_SFX(nonzeros)(vk_t + p * batch, batch,
                                          index_k + p * batch,
                                          value_k + p * batch, use_avx2);
        }
        /* A task: FG_CD_VIS visible units of a 64-unit hidden block, the
         * blocks of one chunk of visible units in a row: a static split
         * then gives each thread its share of a narrow last block (n_hid =
         * 100: 64 + 36 units; block by block, one thread got all of the
         * wide one). */
        _Pragma("omp for schedule(static)")
        for (task = 0; task < n_blocks * n_chunks; task++) {
            const size_t j0 = (size_t)(task % n_blocks) * FG_SP_COLS;
            const size_t p0 = (size_t)(task / n_blocks) * FG_CD_VIS;
            const size_t width = FG_MIN(n_hid - j0, (size_t)FG_SP_COLS);
            const size_t n_p = FG_MIN(n_vis - p0, (size_t)FG_CD_VIS);
            /* g[p][j]: G^T of this tile */
            T g[FG_CD_VIS * FG_SP_COLS];
            size_t p, j, vis_done = 0, hid_done = 0;
            for (p = 0; p < n_p; p++) {
                const size_t c = p0 + p;
                FG_SFX(lists_sum)(index0 + c * batch, value0 + c * batch,
                                  count0[c], h0_rows + j0,
                                  index_k + c * batch, value_k + c * batch,
                                  count_k[c], hk_rows + j0, ldh, width,
                                  FG_MIN(ldh - j0, (size_t)FG_SP_COLS),
                                  g + p * FG_SP_COLS, use_avx2);
            }
#if FG_HAVE_X86_DISPATCH && FG_IS_F32
            if (use_avx2) {
                cd_tile_update_avx2(g, n_p, width, weight + j0 * n_vis + p0,
                                    velocity + j0 * n_vis + p0, n_vis,
                                    momentum, decay, scale, &vis_done,
                                    &hid_done);
            }
#endif
            /* what the vector path left: the edges of the tile */
            for (j = 0; j < width; j++) {
                for (p = j < hid_done ? vis_done : 0; p < n_p; p++) {
                    const size_t at = (j0 + j) * n_vis + p0 + p;
                    T v = momentum * velocity[at] - decay * weight[at]
                          + scale * g[p * FG_SP_COLS + j];
                    velocity[at] = v;
                    weight[at] += v;
                }
            }
        }
    }
    free(index);
    free(value);
    fg_aligned_free(h_copy);
    return 0;
}

#undef FG_SP_AVX2

#endif  /* FG_SPARSE_TEMPLATE */
