/*
 * GEMM, C := alpha * op(A) * op(B) + beta * C, row-major (see _gemm.h).
 *
 * The classic Goto/BLIS structure: the K x N operand is cut into KC x NC
 * blocks packed into NR-column micro-panels, the M x K operand into MC x KC
 * blocks packed into MR-row micro-panels (transposes are handled while
 * packing, so all four trans_a/trans_b combinations meet the same
 * micro-kernel), and a register-blocked micro-kernel multiplies one MR-row
 * panel by one NR-column panel into an MR x NR tile of C. Micro-kernels:
 * AVX-512 (6x64 float32, 6x32 float64), AVX2+FMA (6x16, 6x8), chosen at run
 * time, and portable C (4x8).
 *
 * Small and MLP-sized problems skip packing where it does not pay
 * (_gemm_unpacked.h): a "direct" kernel reads B by rows (op(B) = B), a
 * "dot" kernel reads A and B along k (op(A) = A, op(B) = B^T, as in
 * x W^T); both in AVX2 and AVX-512.
 *
 * Threads and determinism: C is cut into work units (blocks of rows x
 * columns, edges on tile edges), each unit packing its own panels, so no
 * thread ever waits for another inside a product; the packed path deals
 * one unit (or a few) to each thread, the unpacked paths about 8 units
 * taken dynamically (dealt round robin for a vector times a matrix).
 * Every element of C is computed by one thread with the same sequence of
 * operations, K blocks in order, whatever the grid; K is never split
 * across threads, so results are bitwise identical for any number of
 * threads.
 *
 * This file is a template: it includes itself twice, once per type.
 */
#ifndef FG_GEMM_TEMPLATE

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_eltwise.h"
#include "_gemm.h"
#include "_omp.h"
#include "_simd.h"

/* FG_GEMM_NO_SIMD (a compile-time define) builds the portable path only,
 * to test it on x86. */
#if FG_HAVE_X86_DISPATCH && !defined(FG_GEMM_NO_SIMD)
#define FG_GEMM_X86 1
#include <immintrin.h>
#else
#define FG_GEMM_X86 0
#endif

#define FG_MIN(x, y) ((x) < (y) ? (x) : (y))
#define FG_CEIL_DIV(x, y) (((x) + (y) - 1) / (y))
/* Largest micro-tile of a kernel without an edge function, whose edge
 * tiles go through a buffer (AVX2 float32: 6 x 16). */
#define FG_MAX_TILE 96
/* Write-back modes of a micro-kernel for its MR x NR tile:
 * FG_WB_SET:  C := alpha * acc                 (first K block, beta == 0)
 * FG_WB_BETA: C := alpha * acc + beta * C      (first K block, beta != 0)
 * FG_WB_ADD:  C := alpha * acc + C             (later K blocks) */
enum { FG_WB_SET = 0, FG_WB_BETA = 1, FG_WB_ADD = 2 };

/* ------------------------------------------------------------------ */
/* AVX2 + FMA micro-kernels                                            */
/* ------------------------------------------------------------------ */
#if FG_GEMM_X86

#define FG_AVX2_F32_WB(ptr, acc)                                          \
    do {                                                                  \
        __m256 t_ = _mm256_mul_ps(va, (acc));                             \
        if (mode == FG_WB_BETA) {                                         \
            t_ = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ptr), t_);           \
        }                                                                 \
        else if (mode == FG_WB_ADD) {                                     \
            t_ = _mm256_add_ps(_mm256_loadu_ps(ptr), t_);                 \
        }                                                                 \
        _mm256_storeu_ps((ptr), t_);                                      \
    } while (0)

#define FG_AVX2_F32_ROW(i)                                                \
    av = _mm256_broadcast_ss(ap + (i));                                   \
    c##i##0 = _mm256_fmadd_ps(av, b0, c##i##0);                           \
    c##i##1 = _mm256_fmadd_ps(av, b1, c##i##1)

#define FG_AVX2_F32_STEP                                                  \
    b0 = _mm256_load_ps(bp);                                              \
    b1 = _mm256_load_ps(bp + 8);                                          \
    FG_AVX2_F32_ROW(0); FG_AVX2_F32_ROW(1); FG_AVX2_F32_ROW(2);           \
    FG_AVX2_F32_ROW(3); FG_AVX2_F32_ROW(4); FG_AVX2_F32_ROW(5);           \
    ap += a_step;                                                         \
    bp += 16

/* 6 x 16 tile += A panel (kc x 6) * B panel (kc x 16), float32. */
FG_TARGET_AVX2 static void
fg_kernel_avx2_f32(ptrdiff_t kc, const float *ap, ptrdiff_t a_step,
                   const float *bp, float *c, ptrdiff_t ldc, float alpha,
                   float beta, int mode)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    __m256 av, b0, b1, va, vb;
    ptrdiff_t p;

    for (p = 0; p + 4 <= kc; p += 4) {
        FG_AVX2_F32_STEP;
        FG_AVX2_F32_STEP;
        FG_AVX2_F32_STEP;
        FG_AVX2_F32_STEP;
    }
    for (; p < kc; p++) {
        FG_AVX2_F32_STEP;
    }
    va = _mm256_set1_ps(alpha);
    vb = _mm256_set1_ps(beta);
    FG_AVX2_F32_WB(c, c00);
    FG_AVX2_F32_WB(c + 8, c01);
    FG_AVX2_F32_WB(c + ldc, c10);
    FG_AVX2_F32_WB(c + ldc + 8, c11);
    FG_AVX2_F32_WB(c + 2 * ldc, c20);
    FG_AVX2_F32_WB(c + 2 * ldc + 8, c21);
    FG_AVX2_F32_WB(c + 3 * ldc, c30);
    FG_AVX2_F32_WB(c + 3 * ldc + 8, c31);
    FG_AVX2_F32_WB(c + 4 * ldc, c40);
    FG_AVX2_F32_WB(c + 4 * ldc + 8, c41);
    FG_AVX2_F32_WB(c + 5 * ldc, c50);
    FG_AVX2_F32_WB(c + 5 * ldc + 8, c51);
}

#define FG_AVX2_F64_WB(ptr, acc)                                          \
    do {                                                                  \
        __m256d t_ = _mm256_mul_pd(va, (acc));                            \
        if (mode == FG_WB_BETA) {                                         \
            t_ = _mm256_fmadd_pd(vb, _mm256_loadu_pd(ptr), t_);           \
        }                                                                 \
        else if (mode == FG_WB_ADD) {                                     \
            t_ = _mm256_add_pd(_mm256_loadu_pd(ptr), t_);                 \
        }                                                                 \
        _mm256_storeu_pd((ptr), t_);                                      \
    } while (0)

#define FG_AVX2_F64_ROW(i)                                                \
    av = _mm256_broadcast_sd(ap + (i));                                   \
    c##i##0 = _mm256_fmadd_pd(av, b0, c##i##0);                           \
    c##i##1 = _mm256_fmadd_pd(av, b1, c##i##1)

#define FG_AVX2_F64_STEP                                                  \
    b0 = _mm256_load_pd(bp);                                              \
    b1 = _mm256_load_pd(bp + 4);                                          \
    FG_AVX2_F64_ROW(0); FG_AVX2_F64_ROW(1); FG_AVX2_F64_ROW(2);           \
    FG_AVX2_F64_ROW(3); FG_AVX2_F64_ROW(4); FG_AVX2_F64_ROW(5);           \
    ap += a_step;                                                         \
    bp += 8

/* 6 x 8 tile += A panel (kc x 6) * B panel (kc x 8), float64. */
FG_TARGET_AVX2 static void
fg_kernel_avx2_f64(ptrdiff_t kc, const double *ap, ptrdiff_t a_step,
                   const double *bp, double *c, ptrdiff_t ldc, double alpha,
                   double beta, int mode)
{
    __m256d c00 = _mm256_setzero_pd(), c01 = _mm256_setzero_pd();
    __m256d c10 = _mm256_setzero_pd(), c11 = _mm256_setzero_pd();
    __m256d c20 = _mm256_setzero_pd(), c21 = _mm256_setzero_pd();
    __m256d c30 = _mm256_setzero_pd(), c31 = _mm256_setzero_pd();
    __m256d c40 = _mm256_setzero_pd(), c41 = _mm256_setzero_pd();
    __m256d c50 = _mm256_setzero_pd(), c51 = _mm256_setzero_pd();
    __m256d av, b0, b1, va, vb;
    ptrdiff_t p;

    for (p = 0; p + 4 <= kc; p += 4) {
        FG_AVX2_F64_STEP;
        FG_AVX2_F64_STEP;
        FG_AVX2_F64_STEP;
        FG_AVX2_F64_STEP;
    }
    for (; p < kc; p++) {
        FG_AVX2_F64_STEP;
    }
    va = _mm256_set1_pd(alpha);
    vb = _mm256_set1_pd(beta);
    FG_AVX2_F64_WB(c, c00);
    FG_AVX2_F64_WB(c + 4, c01);
    FG_AVX2_F64_WB(c + ldc, c10);
    FG_AVX2_F64_WB(c + ldc + 4, c11);
    FG_AVX2_F64_WB(c + 2 * ldc, c20);
    FG_AVX2_F64_WB(c + 2 * ldc + 4, c21);
    FG_AVX2_F64_WB(c + 3 * ldc, c30);
    FG_AVX2_F64_WB(c + 3 * ldc + 4, c31);
    FG_AVX2_F64_WB(c + 4 * ldc, c40);
    FG_AVX2_F64_WB(c + 4 * ldc + 4, c41);
    FG_AVX2_F64_WB(c + 5 * ldc, c50);
    FG_AVX2_F64_WB(c + 5 * ldc + 4, c51);
}

/* ------------------------------------------------------------------ */
/* AVX-512F micro-kernels                                              */
/* ------------------------------------------------------------------ */

/* A 6 x 4-vector tile (6 x 64 float32, 6 x 32
 * float64; 24 accumulators), += A panel (kc x 6) * B panel (kc x 4
 * vectors). Four vectors per row load less per FMA than two (10 loads for
 * 24 FMAs): with A streaming from L2 a 6 x 32 float64 tile ran 10-20 %
 * faster than 8 x 16 (Xeon). The same code, for nvec < 4 vectors and rows
 * < 6, writes the edge tiles of C with masked stores, computing only the
 * vectors that hold columns (n = 100: 112 of 128 columns per row in
 * float32, 104 in float64); every element of C gets the same operations
 * either way. 48 steps before the end of the K block the tile's rows of C
 * are prefetched: in a large product they come from L3 or memory, and the
 * write-back stalled on them. The A panel is prefetched 32 steps ahead
 * (1.00-1.07x on squares of 1024 and 2048). */
#define FG_AVX512_KERNELS(SFX, T, V, MASK_T, LANES, SUF)                  \
    FG_TARGET_AVX512 static inline __attribute__((always_inline)) void    \
    fg_tile_avx512_##SFX(ptrdiff_t kc, const T *ap, ptrdiff_t a_step,     \
                         const T *bp, T *c, ptrdiff_t ldc, T alpha,       \
                         T beta, int mode, int rows, int cols,            \
                         const int nvec)                                  \
    {                                                                     \
        V acc[6][4];                                                      \
        const ptrdiff_t prefetch_at = kc > 48 ? kc - 48 : 0;              \
        ptrdiff_t p;                                                      \
        int i, v;                                                         \
        _Pragma("GCC unroll 6") for (i = 0; i < 6; i++) {                 \
            _Pragma("GCC unroll 4") for (v = 0; v < nvec; v++) {          \
                acc[i][v] = _mm512_setzero_##SUF();                       \
            }                                                             \
        }                                                                 \
        for (p = 0; p < kc; p++) {                                        \
            if (p == prefetch_at) {                                       \
                _Pragma("GCC unroll 6") for (i = 0; i < rows; i++) {      \
                    _Pragma("GCC unroll 4") for (v = 0; v < nvec; v++) {  \
                        _mm_prefetch((const char *)(c + i * ldc           \
                                                    + v * LANES),         \
                                     _MM_HINT_T0);                        \
                    }                                                     \
                }                                                         \
            }                                                             \
            _mm_prefetch((const char *)(ap + 32 * a_step), _MM_HINT_T0);  \
            _Pragma("GCC unroll 6") for (i = 0; i < 6; i++) {             \
                const V av = _mm512_set1_##SUF(ap[i]);                    \
                _Pragma("GCC unroll 4") for (v = 0; v < nvec; v++) {      \
                    const V b_ = _mm512_load_##SUF(bp + v * LANES);       \
                    acc[i][v] = _mm512_fmadd_##SUF(av, b_, acc[i][v]);    \
                }                                                         \
            }                                                             \
            ap += a_step;                                                 \
            bp += 4 * LANES;                                              \
        }                                                                 \
        _Pragma("GCC unroll 6") for (i = 0; i < rows; i++) {              \
            _Pragma("GCC unroll 4") for (v = 0; v < nvec; v++) {          \
                const int valid = cols - v * LANES;                       \
                const MASK_T mask = (MASK_T)(valid >= LANES               \
                    ? (1u << LANES) - 1u : (1u << valid) - 1u);           \
                T *ptr = c + i * ldc + v * LANES;                         \
                V t = _mm512_mul_##SUF(_mm512_set1_##SUF(alpha),          \
                                       acc[i][v]);                        \
                if (mode == FG_WB_BETA) {                                 \
                    t = _mm512_fmadd_##SUF(                               \
                        _mm512_set1_##SUF(beta),                          \
                        _mm512_maskz_loadu_##SUF(mask, ptr), t);          \
                }                                                         \
                else if (mode == FG_WB_ADD) {                             \
                    t = _mm512_add_##SUF(                                 \
                        _mm512_maskz_loadu_##SUF(mask, ptr), t);          \
                }                                                         \
                _mm512_mask_storeu_##SUF(ptr, mask, t);                   \
            }                                                             \
        }                                                                 \
    }                                                                     \
    FG_TARGET_AVX512 static void                                          \
    fg_edge_avx512_##SFX(ptrdiff_t kc, const T *ap, ptrdiff_t a_step,     \
                         const T *bp, T *c, ptrdiff_t ldc, T alpha,       \
                         T beta, int mode, int rows, int cols)            \
    {                                                                     \
        const int nvec = (cols + LANES - 1) / LANES;                      \
        if (nvec == 1) {                                                  \
            fg_tile_avx512_##SFX(kc, ap, a_step, bp, c, ldc, alpha, beta, \
                                 mode, rows, cols, 1);                    \
        }                                                                 \
        else if (nvec == 2) {                                             \
            fg_tile_avx512_##SFX(kc, ap, a_step, bp, c, ldc, alpha, beta, \
                                 mode, rows, cols, 2);                    \
        }                                                                 \
        else if (nvec == 3) {                                             \
            fg_tile_avx512_##SFX(kc, ap, a_step, bp, c, ldc, alpha, beta, \
                                 mode, rows, cols, 3);                    \
        }                                                                 \
        else {                                                            \
            fg_tile_avx512_##SFX(kc, ap, a_step, bp, c, ldc, alpha, beta, \
                                 mode, rows, cols, 4);                    \
        }                                                                 \
    }                                                                     \
    FG_TARGET_AVX512 static void                                          \
    fg_kernel_avx512_##SFX(ptrdiff_t kc, const T *ap, ptrdiff_t a_step,   \
                           const T *bp, T *c, ptrdiff_t ldc, T alpha,     \
                           T beta, int mode)                              \
    {                                                                     \
        fg_tile_avx512_##SFX(kc, ap, a_step, bp, c, ldc, alpha, beta,     \
                             mode, 6, 4 * LANES, 4);                      \
    }
FG_AVX512_KERNELS(f32, float, __m512, __mmask16, 16, ps)
FG_AVX512_KERNELS(f64, double, __m512d, __mmask8, 8, pd)
#undef FG_AVX512_KERNELS

/* Pack 6 rows of a row-major A (not transposed), kc columns, into
 * dst[p * 6 + r] = a[r * lda + p]: 8 x 8 transposes in registers (two rows
 * of zeros) instead of scalar strided stores. */
FG_TARGET_AVX2 static void
fg_pack_a6_avx2_f32(const float *a, ptrdiff_t lda, ptrdiff_t kc, float *dst)
{
    ptrdiff_t p, r, q;
    for (p = 0; p + 8 <= kc; p += 8) {
        __m256 x[8];
        float *d = dst + p * 6;
        for (r = 0; r < 6; r++) {
            x[r] = _mm256_loadu_ps(a + r * lda + p);
        }
        x[6] = _mm256_setzero_ps();
        x[7] = _mm256_setzero_ps();
        fg_transpose8_ps(x);   /* x[q] = column p + q, rows 0-5 then 0 0 */
        for (q = 0; q < 7; q++) {
            /* 8 floats: the last 2 are overwritten by column q + 1. */
            _mm256_storeu_ps(d + q * 6, x[q]);
        }
        _mm_storeu_ps(d + 42, _mm256_castps256_ps128(x[7]));
        _mm_storel_pi((__m64 *)(d + 46), _mm256_extractf128_ps(x[7], 1));
    }
    for (; p < kc; p++) {
        for (r = 0; r < 6; r++) {
            dst[p * 6 + r] = a[r * lda + p];
        }
    }
}

/* The float64 twin of fg_pack_a6_avx2_f32. */
FG_TARGET_AVX2 static void
fg_pack_a6_avx2_f64(const double *a, ptrdiff_t lda, ptrdiff_t kc,
                    double *dst)
{
    const double *r0 = a, *r1 = a + lda, *r2 = a + 2 * lda;
    const double *r3 = a + 3 * lda, *r4 = a + 4 * lda, *r5 = a + 5 * lda;
    ptrdiff_t p;
    for (p = 0; p + 4 <= kc; p += 4) {
        __m256d x[4] = {_mm256_loadu_pd(r0 + p), _mm256_loadu_pd(r1 + p),
                        _mm256_loadu_pd(r2 + p), _mm256_loadu_pd(r3 + p)};
        __m256d y0 = _mm256_loadu_pd(r4 + p), y1 = _mm256_loadu_pd(r5 + p);
        __m256d u0 = _mm256_unpacklo_pd(y0, y1);  /* 40 50 42 52 */
        __m256d u1 = _mm256_unpackhi_pd(y0, y1);  /* 41 51 43 53 */
        double *d = dst + p * 6;
        fg_transpose4_pd(x);  /* rows 0-3 */
        _mm256_storeu_pd(d, x[0]);
        _mm_storeu_pd(d + 4, _mm256_castpd256_pd128(u0));
        _mm256_storeu_pd(d + 6, x[1]);
        _mm_storeu_pd(d + 10, _mm256_castpd256_pd128(u1));
        _mm256_storeu_pd(d + 12, x[2]);
        _mm_storeu_pd(d + 16, _mm256_extractf128_pd(u0, 1));
        _mm256_storeu_pd(d + 18, x[3]);
        _mm_storeu_pd(d + 22, _mm256_extractf128_pd(u1, 1));
    }
    for (; p < kc; p++) {
        double *d = dst + p * 6;
        d[0] = r0[p];
        d[1] = r1[p];
        d[2] = r2[p];
        d[3] = r3[p];
        d[4] = r4[p];
        d[5] = r5[p];
    }
}

/* Pack `cols` columns of a panel of op(B) = B^T (cols a multiple of 8 in
 * float32, of 4 in float64; rows nr apart): row s of b (ldb apart) holds
 * column s of op(B); dst[p * nr + s] = b[s * ldb + p] for p < kc, by 8 x 8
 * (4 x 4) transposes in registers instead of scalar strided stores. */
FG_TARGET_AVX2 static void
fg_pack_bt_avx2_f32(const float *b, ptrdiff_t ldb, ptrdiff_t kc,
                    ptrdiff_t cols, ptrdiff_t nr, float *dst)
{
    ptrdiff_t p, h, q;
    for (p = 0; p + 8 <= kc; p += 8) {
        for (h = 0; h < cols; h += 8) {
            __m256 r[8];
            for (q = 0; q < 8; q++) {
                r[q] = _mm256_loadu_ps(b + (h + q) * ldb + p);
            }
            fg_transpose8_ps(r);
            for (q = 0; q < 8; q++) {
                _mm256_storeu_ps(dst + (p + q) * nr + h, r[q]);
            }
        }
    }
    for (; p < kc; p++) {
        for (h = 0; h < cols; h++) {
            dst[p * nr + h] = b[h * ldb + p];
        }
    }
}

FG_TARGET_AVX2 static void
fg_pack_bt_avx2_f64(const double *b, ptrdiff_t ldb, ptrdiff_t kc,
                    ptrdiff_t cols, ptrdiff_t nr, double *dst)
{
    ptrdiff_t p, h, q;
    for (p = 0; p + 4 <= kc; p += 4) {
        for (h = 0; h < cols; h += 4) {
            __m256d r[4];
            for (q = 0; q < 4; q++) {
                r[q] = _mm256_loadu_pd(b + (h + q) * ldb + p);
            }
            fg_transpose4_pd(r);
            for (q = 0; q < 4; q++) {
                _mm256_storeu_pd(dst + (p + q) * nr + h, r[q]);
            }
        }
    }
    for (; p < kc; p++) {
        for (h = 0; h < cols; h++) {
            dst[p * nr + h] = b[h * ldb + p];
        }
    }
}

#endif  /* FG_GEMM_X86 */

/* Instantiate the type-generic part for float32 and float64. */
#define FG_GEMM_TEMPLATE
#define T float
#define FG_SFX(name) name##_f32
#define FG_ACT fg_act_f32
#define FG_IS_F32 1
#include "_gemm.c"
#undef T
#undef FG_SFX
#undef FG_ACT
#undef FG_IS_F32

#define T double
#define FG_SFX(name) name##_f64
#define FG_ACT fg_act_f64
#define FG_IS_F32 0
#include "_gemm.c"
#undef T
#undef FG_SFX
#undef FG_ACT
#undef FG_IS_F32

int fg_gemm_simd_width(void)
{
#if FG_GEMM_X86
    return fg_cpu_has_avx512() ? 512 : fg_cpu_has_avx2() ? 256 : 0;
#else
    return 0;
#endif
}

#else  /* FG_GEMM_TEMPLATE: the type-generic part, T is float or double */

#define FG_PORT_MR 4
#define FG_PORT_NR 8

/* Portable 4 x 8 tile += A panel (kc x 4) * B panel (kc x 8). */
static void
FG_SFX(fg_kernel_portable)(ptrdiff_t kc, const T *ap, ptrdiff_t a_step,
                           const T *bp, T *c, ptrdiff_t ldc, T alpha, T beta,
                           int mode)
{
    T acc[FG_PORT_MR][FG_PORT_NR];
    ptrdiff_t p;
    int i, j;

    memset(acc, 0, sizeof(acc));
    for (p = 0; p < kc; p++) {
        for (i = 0; i < FG_PORT_MR; i++) {
            const T a_ip = ap[i];
            for (j = 0; j < FG_PORT_NR; j++) {
                acc[i][j] += a_ip * bp[j];
            }
        }
        ap += a_step;
        bp += FG_PORT_NR;
    }
    for (i = 0; i < FG_PORT_MR; i++) {
        T *c_row = c + i * ldc;
        for (j = 0; j < FG_PORT_NR; j++) {
            T value = alpha * acc[i][j];
            if (mode == FG_WB_BETA) {
                value += beta * c_row[j];
            }
            else if (mode == FG_WB_ADD) {
                value += c_row[j];
            }
            c_row[j] = value;
        }
    }
}

/* ap[p * a_step + i] is op(A)[i, p] of the tile: a_step is mr in a
 * packed panel. */
typedef void (*FG_SFX(fg_kernel_fn))(ptrdiff_t kc, const T *ap,
                                     ptrdiff_t a_step, const T *bp, T *c,
                                     ptrdiff_t ldc, T alpha, T beta,
                                     int mode);
typedef void (*FG_SFX(fg_edge_fn))(ptrdiff_t kc, const T *ap,
                                   ptrdiff_t a_step, const T *bp, T *c,
                                   ptrdiff_t ldc, T alpha, T beta, int mode,
                                   int rows, int cols);

/* A micro-kernel with its tile (mr x nr) and cache blocking (mc x kc
 * blocks of op(A) packed for L2, kc x nc blocks of op(B) for L3, one
 * kc x nr micro-panel of op(B) for L1); `edge`, if not NULL, writes the
 * rows x cols corner of a tile (the edges of C). With `a_in_place`, full
 * tiles of op(A) = A^T are read where they are (a_step = lda): the rows
 * of A already hold the tile's mr values of each k next to each other. */
typedef struct {
    FG_SFX(fg_kernel_fn) kernel;
    FG_SFX(fg_edge_fn) edge;
    ptrdiff_t mr, nr, mc, kc, nc;
    int a_in_place;
} FG_SFX(fg_gemm_config);

static FG_SFX(fg_gemm_config) FG_SFX(fg_choose_config)(void)
{
    FG_SFX(fg_gemm_config) config;
    config.kernel = FG_SFX(fg_kernel_portable);
    config.edge = NULL;
    config.a_in_place = 0;
    config.mr = FG_PORT_MR;
    config.nr = FG_PORT_NR;
    config.mc = 128;
    config.kc = 256;
    config.nc = 8192 / sizeof(T);
#if FG_GEMM_X86
    if (fg_cpu_has_avx512()) {
        config.kernel = FG_SFX(fg_kernel_avx512);
        config.edge = FG_SFX(fg_edge_avx512);
        /* X^T dY: packing A^T took 10-15 % of 784 x 256 x 100 float32. */
        config.a_in_place = 1;
        config.mr = 6;
        config.nr = 256 / sizeof(T);
        /* kc x nr panel of B: 128 KiB, from L2 rather than the 48 KiB
         * L1d of a Xeon core, but each K block is a pass over C: kc 512
         * was 1.05-1.07x kc 256 on squares of 2048 (kc 256 1.03-1.07x kc
         * 128 with C prefetched) and no slower on the MLP shapes (kc 1024:
         * X^T dY with B = 1024 / 4096 0.93-0.96x); mc x kc block of A:
         * 576 KiB / 1.2 MiB of its 2 MiB L2. */
        config.mc = 288;
        config.kc = 512;
        config.nc = 64 / sizeof(T) * 128;
    }
    else if (fg_cpu_has_avx2()) {
        config.kernel = FG_SFX(fg_kernel_avx2);
        config.mr = 6;
        config.nr = 32 / sizeof(T) * 2;
        /* kc x nr panel of B: 16 KiB (float32) / 24 KiB (float64) of the
         * 32 KiB L1d of a Zen 4 core; mc x kc block of A: 144 / 288 KiB
         * of its 1 MiB L2. */
        config.mc = sizeof(T) == 4 ? 144 : 96;
        config.kc = sizeof(T) == 4 ? 256 : 384;
        config.nc = 4096 / sizeof(T);
    }
#endif
#ifdef FG_GEMM_BENCH_PATHS
    /* Developer builds only: FG_MC, FG_KC, FG_NC override the blocking. */
    if (getenv("FG_MC")) config.mc = atoi(getenv("FG_MC"));
    if (getenv("FG_KC")) config.kc = atoi(getenv("FG_KC"));
    if (getenv("FG_NC")) config.nc = atoi(getenv("FG_NC"));
#endif
    return config;
}

/* Pack rows [i0, i0 + mr) x columns [p0, p0 + kc) of op(A) into dst as
 * dst[p * mr + r] = op(A)[i0 + r, p0 + p]; rows past m are zero. */
static void
FG_SFX(fg_pack_a)(int trans_a, const T *a, ptrdiff_t lda, ptrdiff_t m,
                  ptrdiff_t i0, ptrdiff_t p0, ptrdiff_t kc, ptrdiff_t mr,
                  T *dst)
{
    ptrdiff_t rows = FG_MIN(mr, m - i0), p, r;
#if FG_GEMM_X86
    /* mr == 6 only with the AVX2 and AVX-512 kernels: AVX2 is there. */
    if (!trans_a && rows == 6 && mr == 6) {
        FG_SFX(fg_pack_a6_avx2)(a + i0 * lda + p0, lda, kc, dst);
        return;
    }
#endif
    if (trans_a && rows == 6 && mr == 6) {
        /* The common case, with a fixed trip count the compiler unrolls. */
        for (p = 0; p < kc; p++) {
            const T *src = a + (p0 + p) * lda + i0;
            T *d = dst + p * 6;
            d[0] = src[0];
            d[1] = src[1];
            d[2] = src[2];
            d[3] = src[3];
            d[4] = src[4];
            d[5] = src[5];
        }
    }
    else if (trans_a) {
        /* op(A)[i, p] = a[p, i]: rows of a hold columns of op(A). */
        for (p = 0; p < kc; p++) {
            const T *src = a + (p0 + p) * lda + i0;
            for (r = 0; r < rows; r++) {
                dst[p * mr + r] = src[r];
            }
            for (; r < mr; r++) {
                dst[p * mr + r] = (T)0;
            }
        }
    }
    else {
        for (r = 0; r < rows; r++) {
            const T *src = a + (i0 + r) * lda + p0;
            for (p = 0; p < kc; p++) {
                dst[p * mr + r] = src[p];
            }
        }
        for (; r < mr; r++) {
            for (p = 0; p < kc; p++) {
                dst[p * mr + r] = (T)0;
            }
        }
    }
}

/* Pack rows [p0, p0 + kc) x columns [j0, j0 + nr) of op(B) into dst as
 * dst[p * nr + s] = op(B)[p0 + p, j0 + s]; columns past n are zero. */
static void
FG_SFX(fg_pack_b)(int trans_b, const T *b, ptrdiff_t ldb, ptrdiff_t n,
                  ptrdiff_t j0, ptrdiff_t p0, ptrdiff_t kc, ptrdiff_t nr,
                  T *dst)
{
    ptrdiff_t cols = FG_MIN(nr, n - j0), p, s = 0;
#if FG_GEMM_X86
    /* Whole vectors of columns by transposes, the rest below. */
    const ptrdiff_t lanes = 32 / (ptrdiff_t)sizeof(T);
    if (trans_b && nr % lanes == 0 && cols >= lanes && fg_cpu_has_avx2()) {
        s = cols / lanes * lanes;
        FG_SFX(fg_pack_bt_avx2)(b + j0 * ldb + p0, ldb, kc, s, nr, dst);
    }
#endif
    if (trans_b && s < nr) {
        /* op(B)[p, j] = b[j, p]: rows of b hold columns of op(B). */
        const T *src = b + (j0 + s) * ldb + p0;
        for (p = 0; p < kc; p++) {
            ptrdiff_t t;
            for (t = s; t < cols; t++) {
                dst[p * nr + t] = src[(t - s) * ldb + p];
            }
            memset(dst + p * nr + cols, 0, (size_t)(nr - cols) * sizeof(T));
        }
    }
    else if (!trans_b) {
        for (p = 0; p < kc; p++) {
            const T *src = b + (p0 + p) * ldb + j0;
            for (s = 0; s < cols; s++) {
                dst[p * nr + s] = src[s];
            }
            for (; s < nr; s++) {
                dst[p * nr + s] = (T)0;
            }
        }
    }
}

/* Pack rows [p0, p0 + kc) x columns [j0, j1) of op(B) into consecutive
 * nr-column panels, panel r at dst + r * nr * kc (as fg_pack_b). A plain
 * op(B) is read row by row, each row once from left to right: panel by
 * panel, the reads went down columns of a large B and waited on memory
 * (a third of the time of grad^T x at 100 x 2048 x 784). */
static void
FG_SFX(fg_pack_b_block)(int trans_b, const T *b, ptrdiff_t ldb, ptrdiff_t n,
                        ptrdiff_t j0, ptrdiff_t j1, ptrdiff_t p0,
                        ptrdiff_t kc, ptrdiff_t nr, T *dst)
{
    const ptrdiff_t panels = FG_CEIL_DIV(j1 - j0, nr);
    ptrdiff_t full = 0, p, r;
    if (!trans_b && (nr == 8 || nr == 16 || nr == 32 || nr == 64)) {
        full = (j1 - j0) / nr;
        for (p = 0; p < kc; p++) {
            const T *src = b + (p0 + p) * ldb + j0;
            T *d = dst + p * nr;
            /* Constant sizes, so that memcpy becomes vector moves. */
            for (r = 0; r < full; r++) {
                if (nr == 64) {
                    memcpy(d + r * nr * kc, src + r * nr, 64 * sizeof(T));
                }
                else if (nr == 32) {
                    memcpy(d + r * nr * kc, src + r * nr, 32 * sizeof(T));
                }
                else if (nr == 16) {
                    memcpy(d + r * nr * kc, src + r * nr, 16 * sizeof(T));
                }
                else {
                    memcpy(d + r * nr * kc, src + r * nr, 8 * sizeof(T));
                }
            }
        }
    }
    for (r = full; r < panels; r++) {
        FG_SFX(fg_pack_b)(trans_b, b, ldb, n, j0 + r * nr, p0, kc, nr,
                          dst + r * nr * kc);
    }
}

/* C[i, j] := act(C[i, j] + bias[j]) on a rows x cols block (bias may be
 * NULL). */
static void
FG_SFX(fg_epilogue)(T *c, ptrdiff_t ldc, ptrdiff_t rows, ptrdiff_t cols,
                    const T *bias, int act)
{
    ptrdiff_t i;
    if (bias == NULL && act == FG_ACT_NONE) {
        return;
    }
    for (i = 0; i < rows; i++) {
        FG_SFX(fg_act_apply)(act, c + i * ldc, bias, c + i * ldc, cols);
    }
}

/* The operands of one product, passed to the per-unit workers. */
typedef struct {
    int trans_a, trans_b, act;
    ptrdiff_t m, n, k, lda, ldb, ldc;
    T alpha, beta;
    const T *a, *b, *bias;
    T *c;
} FG_SFX(fg_problem);

/* The epilogue of a product on rows [i0, i1) x columns [j0, j1) of C. */
static void
FG_SFX(fg_epilogue_block)(const FG_SFX(fg_problem) *pr, ptrdiff_t i0,
                          ptrdiff_t i1, ptrdiff_t j0, ptrdiff_t j1)
{
    FG_SFX(fg_epilogue)(pr->c + i0 * pr->ldc + j0, pr->ldc, i1 - i0, j1 - j0,
                        pr->bias ? pr->bias + j0 : NULL, pr->act);
}

/* ------------------------------------------------------------------ */
/* Unpacked paths for small problems, where packing does not pay      */
/* ------------------------------------------------------------------ */
#if FG_GEMM_X86

/* The tile kernels of _gemm_unpacked.h, instances with constant shapes
 * picked at run time from tables. */
typedef void (*FG_SFX(fg_direct_fn))(int tail, ptrdiff_t k, const T *a,
                                     ptrdiff_t a_rs, ptrdiff_t a_cs,
                                     const T *b, ptrdiff_t ldb, T *c,
                                     ptrdiff_t ldc, T alpha, T beta);
typedef void (*FG_SFX(fg_dot_fn))(int shift, ptrdiff_t k, const T *a,
                                  ptrdiff_t lda, const T *b, ptrdiff_t ldb,
                                  T *c, ptrdiff_t ldc, T alpha, T beta);

/* Work units of an unpacked product: a grid of row blocks x column blocks
 * of C (multiples of the tile), fixed by the shape (and, for a vector
 * times a matrix, by where B lies: see fg_direct_lead), aiming at about
 * FG_UNITS units so that threads balance dynamically. */
#define FG_UNITS 8

typedef struct {
    ptrdiff_t unit_m, unit_n, row_units, n_units, tile_m, tile_n;
} FG_SFX(fg_grid);

static FG_SFX(fg_grid)
FG_SFX(fg_unit_grid)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t tile_m,
                     ptrdiff_t tile_n)
{
    FG_SFX(fg_grid) grid;
    ptrdiff_t row_tiles = FG_CEIL_DIV(m, tile_m);
    ptrdiff_t col_tiles = FG_CEIL_DIV(n, tile_n);
    ptrdiff_t col_units = FG_MIN(col_tiles, FG_UNITS);
    ptrdiff_t row_units = FG_MIN(row_tiles, FG_CEIL_DIV(FG_UNITS,
                                                        col_units));
    grid.tile_m = tile_m;
    grid.tile_n = tile_n;
    grid.unit_n = FG_CEIL_DIV(col_tiles, col_units) * tile_n;
    grid.unit_m = FG_CEIL_DIV(row_tiles, row_units) * tile_m;
    grid.row_units = FG_CEIL_DIV(m, grid.unit_m);
    grid.n_units = grid.row_units * FG_CEIL_DIV(n, grid.unit_n);
    return grid;
}

/* Rows of op(A) per pass over the columns of a unit: a multiple of the
 * tile height whose rows (k values each) fit in about 192 KiB of L2. */
static ptrdiff_t FG_SFX(fg_row_chunk)(ptrdiff_t k, ptrdiff_t tile_m)
{
    ptrdiff_t rows = (ptrdiff_t)(192 * 1024 / sizeof(T)) / (k > 0 ? k : 1);
    return rows < tile_m ? tile_m : rows / tile_m * tile_m;
}

/* Run the units of an unpacked product: on n_threads threads (dynamic
 * schedule, round robin for a vector times a matrix; each unit's result
 * does not depend on which thread runs it), or serially without entering
 * a parallel region (which costs over a microsecond even for one
 * thread). */
typedef void (*FG_SFX(fg_unit_fn))(const FG_SFX(fg_problem) *pr,
                                   const FG_SFX(fg_grid) *grid,
                                   ptrdiff_t unit);

static void
FG_SFX(fg_run_units)(const FG_SFX(fg_problem) *pr,
                     const FG_SFX(fg_grid) *grid, FG_SFX(fg_unit_fn) run,
                     int n_threads)
{
    ptrdiff_t unit;
    if (n_threads > 1 && grid->n_units > 1 && pr->m == 1) {
        /* A vector times a matrix reads each element of B once: split B
         * the same way every call, so each thread's part stays in its
         * core's L2 (static was 1.0-1.17x dynamic at 1 x 784 x 100).
         * Round robin, since the last unit is often the small one. */
        #pragma omp parallel for schedule(static, 1) num_threads(n_threads)
        for (unit = 0; unit < grid->n_units; unit++) {
            run(pr, grid, unit);
        }
    }
    else if (n_threads > 1 && grid->n_units > 1) {
        #pragma omp parallel for schedule(dynamic, 1) num_threads(n_threads)
        for (unit = 0; unit < grid->n_units; unit++) {
            run(pr, grid, unit);
        }
    }
    else {
        for (unit = 0; unit < grid->n_units; unit++) {
            run(pr, grid, unit);
        }
    }
}

#define FG_VW 256
#include "_gemm_unpacked.h"
#undef FG_VW
#define FG_VW 512
#include "_gemm_unpacked.h"
#undef FG_VW
#undef FG_UNITS

#endif  /* FG_GEMM_X86 */

/* C := beta * C (zeros when beta == 0, ignoring C), then the epilogue:
 * the whole product when k == 0 or alpha == 0. */
static void
FG_SFX(fg_scale_c)(ptrdiff_t m, ptrdiff_t n, T beta, T *c, ptrdiff_t ldc,
                   const T *bias, int act)
{
    ptrdiff_t i, j;
    for (i = 0; i < m; i++) {
        T *c_row = c + i * ldc;
        for (j = 0; j < n; j++) {
            c_row[j] = beta == (T)0 ? (T)0 : beta * c_row[j];
        }
        FG_SFX(fg_epilogue)(c_row, ldc, 1, n, bias, act);
    }
}

/* Unpacked fallback, used when the packing buffers cannot be allocated:
 * C[i, j] := alpha * sum_p op(A)[i, p] op(B)[p, j] + beta * C[i, j]. */
static void
FG_SFX(fg_gemm_naive)(int trans_a, int trans_b, ptrdiff_t m, ptrdiff_t n,
                      ptrdiff_t k, T alpha, const T *a, ptrdiff_t lda,
                      const T *b, ptrdiff_t ldb, T beta, T *c, ptrdiff_t ldc,
                      const T *bias, int act)
{
    ptrdiff_t i, j, p;
    for (i = 0; i < m; i++) {
        for (j = 0; j < n; j++) {
            T sum = (T)0;
            for (p = 0; p < k; p++) {
                T a_ip = trans_a ? a[p * lda + i] : a[i * lda + p];
                T b_pj = trans_b ? b[j * ldb + p] : b[p * ldb + j];
                sum += a_ip * b_pj;
            }
            if (beta == (T)0) {
                c[i * ldc + j] = alpha * sum;
            }
            else {
                c[i * ldc + j] = alpha * sum + beta * c[i * ldc + j];
            }
        }
        FG_SFX(fg_epilogue)(c + i * ldc, ldc, 1, n, bias, act);
    }
}

/* Work units of the packed product: a grid of row blocks x column blocks
 * of C. Each unit packs its own panels into its thread's buffers, so
 * threads never wait for each other inside a product (on a busy machine a
 * barrier waits for the slowest thread, again and again); the price is
 * packing a panel of op(A) once per column block and of op(B) once per row
 * block, so one thread gets as few units as the blocking allows and more
 * threads split the dimension whose duplicated operand is smaller: as
 * many units per thread as the blocking needs, one for the MLP shapes
 * (two, for dynamic balance, packed twice as much and ran 0.87-0.95x on
 * 256 x 784 x 100 and 784 x {8, 256} x 100). Units go to threads
 * statically, so a thread meets the same operands in its cache when the
 * same product runs again (a training step). Unit edges fall on
 * tile edges, so every element of C is computed the same way whatever the
 * grid: results do not depend on the thread count. */
typedef struct {
    ptrdiff_t unit_m, unit_n, row_units, n_units;
} FG_SFX(fg_packed_grid);

/* Units along one dimension: `units`, or more until units * other reaches
 * want, keeping at least min_tiles tiles per unit. */
static ptrdiff_t
FG_SFX(fg_split_units)(ptrdiff_t units, ptrdiff_t other, ptrdiff_t want,
                       ptrdiff_t tiles, ptrdiff_t min_tiles)
{
    ptrdiff_t split;
    if (units * other >= want) {
        return units;
    }
    split = FG_MIN(FG_CEIL_DIV(want, other), FG_CEIL_DIV(tiles, min_tiles));
    return split > units ? split : units;
}

static FG_SFX(fg_packed_grid)
FG_SFX(fg_packed_plan)(const FG_SFX(fg_gemm_config) *cfg, ptrdiff_t m,
                       ptrdiff_t n, int n_threads)
{
    const ptrdiff_t row_tiles = FG_CEIL_DIV(m, cfg->mr);
    const ptrdiff_t col_tiles = FG_CEIL_DIV(n, cfg->nr);
    ptrdiff_t col_units = FG_CEIL_DIV(n, cfg->nc);
    ptrdiff_t row_units = FG_CEIL_DIV(m, 4 * cfg->mc);
    /* A multiple of n_threads units, for the static schedule. */
    const ptrdiff_t want = FG_CEIL_DIV(col_units * row_units, n_threads)
                           * n_threads;
    FG_SFX(fg_packed_grid) grid;

    if (m < n) {
        /* op(A) (m x k) is the smaller operand to pack twice. */
        col_units = FG_SFX(fg_split_units)(col_units, row_units, want,
                                           col_tiles, 4);
        row_units = FG_SFX(fg_split_units)(row_units, col_units, want,
                                           row_tiles, 8);
    }
    else {
        row_units = FG_SFX(fg_split_units)(row_units, col_units, want,
                                           row_tiles, 8);
        col_units = FG_SFX(fg_split_units)(col_units, row_units, want,
                                           col_tiles, 4);
    }
    grid.unit_m = FG_CEIL_DIV(row_tiles, row_units) * cfg->mr;
    grid.unit_n = FG_CEIL_DIV(col_tiles, col_units) * cfg->nr;
    grid.row_units = FG_CEIL_DIV(m, grid.unit_m);
    grid.n_units = grid.row_units * FG_CEIL_DIV(n, grid.unit_n);
    return grid;
}

/* One unit of the packed product (see the file comment): C block :=
 * act(alpha op(A) op(B) + beta C + bias), K blocks in order. a_pack holds
 * one mc x kc block of op(A), b_pack one kc x unit_n block of op(B). */
static void
FG_SFX(fg_packed_unit)(const FG_SFX(fg_gemm_config) *cfg,
                       const FG_SFX(fg_packed_grid) *grid,
                       const FG_SFX(fg_problem) *pr, ptrdiff_t unit,
                       T *a_pack, T *b_pack)
{
    const ptrdiff_t mr = cfg->mr, nr = cfg->nr;
    const ptrdiff_t m = pr->m, n = pr->n, k = pr->k, ldc = pr->ldc;
    const T alpha = pr->alpha, beta = pr->beta;
    const ptrdiff_t i_begin = (unit % grid->row_units) * grid->unit_m;
    const ptrdiff_t j_begin = (unit / grid->row_units) * grid->unit_n;
    const ptrdiff_t i_end = FG_MIN(m, i_begin + grid->unit_m);
    const ptrdiff_t j_end = FG_MIN(n, j_begin + grid->unit_n);
    const ptrdiff_t n_jr = FG_CEIL_DIV(j_end - j_begin, nr);
    /* Row blocks of equal size (a multiple of mr, at most cfg->mc). */
    const ptrdiff_t n_ic = FG_CEIL_DIV(i_end - i_begin, cfg->mc);
    const ptrdiff_t mc_even =
        FG_CEIL_DIV(FG_CEIL_DIV(i_end - i_begin, n_ic), mr) * mr;
    /* K blocks of equal size, at most cfg->kc (784 = 392 + 392, not
     * 512 + 272 or 3 x 256 + 16). */
    const ptrdiff_t kc_even = FG_CEIL_DIV(k, FG_CEIL_DIV(k, cfg->kc));
    /* A in place only for a few column panels (each reads it again, its
     * lines bringing 6 useful values of 16: 1000 x 256 x 1000 float32 ran
     * 0.95x), while the unit's rows of it stay in L2 (2048 x 512 x 2048
     * float64: 0.6x), and while its rows do not all fall into a few L1
     * sets (a row length of a multiple of 512 bytes: 512 x 256 x 256 and
     * 1024 x 128 x 1024 float64 0.9x). */
    const int a_in_place = cfg->a_in_place && pr->trans_a && n_jr <= 4
        && (double)k * (double)(i_end - i_begin) * sizeof(T) <= 1048576.0
        && (pr->lda * (ptrdiff_t)sizeof(T)) % 512 != 0;
    ptrdiff_t pc, ic, jr, ir;

    for (pc = 0; pc < k; pc += kc_even) {
        const ptrdiff_t kc = FG_MIN(kc_even, k - pc);
        const int last = pc + kc == k;
        const int mode = pc > 0 ? FG_WB_ADD
                         : beta == (T)0 ? FG_WB_SET : FG_WB_BETA;

        FG_SFX(fg_pack_b_block)(pr->trans_b, pr->b, pr->ldb, n, j_begin,
                                j_end, pc, kc, nr, b_pack);
        for (ic = i_begin; ic < i_end; ic += mc_even) {
            const ptrdiff_t mc = FG_MIN(mc_even, i_end - ic);
            const ptrdiff_t n_ir = FG_CEIL_DIV(mc, mr);

            for (ir = 0; ir < n_ir; ir++) {
                if (!a_in_place || m - (ic + ir * mr) < mr) {
                    FG_SFX(fg_pack_a)(pr->trans_a, pr->a, pr->lda, m,
                                      ic + ir * mr, pc, kc, mr,
                                      a_pack + ir * mr * kc);
                }
            }
            /* Column panels outer: one B micro-panel stays in L1 while
             * the A block streams from L2. */
            for (jr = 0; jr < n_jr; jr++) {
                for (ir = 0; ir < n_ir; ir++) {
                    const ptrdiff_t i0 = ic + ir * mr;
                    const ptrdiff_t j0 = j_begin + jr * nr;
                    const ptrdiff_t rows = FG_MIN(mr, m - i0);
                    const ptrdiff_t cols = FG_MIN(nr, n - j0);
                    const int direct = a_in_place && rows == mr;
                    const T *ap = direct ? pr->a + pc * pr->lda + i0
                                         : a_pack + ir * mr * kc;
                    const ptrdiff_t a_step = direct ? pr->lda : mr;
                    const T *bp = b_pack + jr * nr * kc;
                    T *c_tile = pr->c + i0 * ldc + j0;

                    if (rows == mr && cols == nr) {
                        cfg->kernel(kc, ap, a_step, bp, c_tile, ldc, alpha,
                                    beta, mode);
                    }
                    else if (cfg->edge != NULL) {
                        cfg->edge(kc, ap, a_step, bp, c_tile, ldc, alpha,
                                  beta, mode, (int)rows, (int)cols);
                    }
                    else {
                        /* Edge tile: full tile into a buffer, then the
                         * valid part into C. */
                        T buffer[FG_MAX_TILE];
                        ptrdiff_t i, j;
                        cfg->kernel(kc, ap, a_step, bp, buffer, nr, (T)1,
                                    (T)0, FG_WB_SET);
                        for (i = 0; i < rows; i++) {
                            T *c_row = c_tile + i * ldc;
                            const T *t_row = buffer + i * nr;
                            for (j = 0; j < cols; j++) {
                                T value = alpha * t_row[j];
                                if (mode == FG_WB_BETA) {
                                    value += beta * c_row[j];
                                }
                                else if (mode == FG_WB_ADD) {
                                    value += c_row[j];
                                }
                                c_row[j] = value;
                            }
                        }
                    }
                }
            }
            if (last) {
                FG_SFX(fg_epilogue_block)(pr, ic, ic + mc, j_begin, j_end);
            }
        }
    }
}

/* C := act(alpha * op(A) op(B) + beta * C + bias) (see _gemm.h). */
static void
FG_SFX(fg_gemm_any)(int trans_a, int trans_b, ptrdiff_t m, ptrdiff_t n,
                    ptrdiff_t k, T alpha, const T *a, ptrdiff_t lda,
                    const T *b, ptrdiff_t ldb, T beta, T *c, ptrdiff_t ldc,
                    const T *bias, int act)
{
    FG_SFX(fg_gemm_config) cfg;
    FG_SFX(fg_packed_grid) grid;
    FG_SFX(fg_problem) pr;
    T *a_pack, *b_pack;
    ptrdiff_t a_size, b_size, unit;
    int n_threads;
    double work;

    if (m <= 0 || n <= 0) {
        return;
    }
    if (k <= 0 || alpha == (T)0) {
        FG_SFX(fg_scale_c)(m, n, beta, c, ldc, bias, act);
        return;
    }
    work = 2.0 * (double)m * (double)n * (double)k;
    n_threads = fg_threads_for(work);
    pr.trans_a = trans_a;
    pr.trans_b = trans_b;
    pr.act = act;
    pr.m = m;
    pr.n = n;
    pr.k = k;
    pr.lda = lda;
    pr.ldb = ldb;
    pr.ldc = ldc;
    pr.alpha = alpha;
    pr.beta = beta;
    pr.a = a;
    pr.b = b;
    pr.bias = bias;
    pr.c = c;
#if FG_GEMM_X86
    {
#ifdef FG_GEMM_BENCH_PATHS
        /* Developer builds only: FG_GEMM_PATH=packed|small forces a path
         * for measuring the thresholds below. */
        const char *path = getenv("FG_GEMM_PATH");
        int force_packed = path && path[0] == 'p';
        int force_small = path && path[0] == 's';
#else
        const int force_packed = 0, force_small = 0;
#endif
        const int avx512 = fg_cpu_has_avx512();
        if (fg_cpu_has_avx2() && !force_packed) {
            /* Measured on Zen 4 (see docs/readme/gemm.md): without
             * packing, B read by rows wins while a k x 16 panel of B stays
             * in L1 or A is a few rows; the dot form wins while B (n x k)
             * stays in L2 and k is long enough to pay for the lane sums
             * (in float64 a 3 x 4 tile's rows overflow L1 at k = 784 and
             * the packed path wins from about 64 rows: 33.5 -> 38 GFLOP/s
             * at 256 x 784 x 100 on one thread). */
            /* op(A) = A^T: the strided broadcasts of A are read again for
             * every column tile. With AVX2, float64 from k = 64 on: the
             * packed path was 1.0-1.6x the direct one (784 x 100 x 100
             * 1.07-1.11x, 784 x 100 x 300 1.25x on 2 threads); float32
             * gains only with n >= 200 (1.06x at 100 x 100 x 784, 1.56x
             * at 2048 x 100 x 784; not switched, so float32 results keep
             * their bits). With AVX-512 (Xeon, 2 threads), from k = 8 on:
             * 1.6x (float32) and 2x (float64) at 784 x 8 x 100, equal or
             * better above. */
            const int packed_at = trans_a && m > 16
                && (avx512 ? k >= 8 : !FG_IS_F32 && k >= 64);
            /* With AVX-512 the packed 6 x 4-vector tiles win dY W from
             * 100 rows in float64 (1.14-1.28x at 100-1024 x 100 x 784, 2x
             * at 256 x 32 x 784) and from 1024 in float32 (1.22x; 0.93x
             * at 512). */
            const int few_rows = !avx512 || m <= (FG_IS_F32 ? 512 : 64);
            const double b_bytes = (double)n * (double)k * sizeof(T);
            if (m == 1 && b_bytes >= 524288.0) {
                /* Bound by reading B from L2, not by its few FLOPs: from
                 * 512 KiB on, two cores read it faster when the same
                 * product repeats (1 x 784 x 100 float64: 1.27-1.43x). At
                 * 256 KiB (float32) they gained nothing once B's loads
                 * started on cache lines, and in a training step, where
                 * one thread updates the weights between products, they
                 * made the float32 MLP step at batch 1 1.6x slower (125
                 * against 77 us): the float64 step still pays that. */
                n_threads = fg_threads_for(FG_PARALLEL_MIN_WORK);
            }
            if (!trans_b && !packed_at
                    && (force_small || m <= 16 || (k <= 160 && few_rows))) {
                if (avx512) {
                    FG_SFX(fg_gemm_direct_512)(&pr, n_threads);
                }
                else {
                    FG_SFX(fg_gemm_direct_256)(&pr, n_threads);
                }
                return;
            }
            /* With AVX-512 the packed path wins the forward x W^T from
             * about 128 rows (256 x 784 x 100 float32: 0.77-0.81 of
             * OpenBLAS against 0.74 for the dot path). */
            if (trans_b && !trans_a && !(avx512 && m > 128)
                && (force_small || m <= 16
                    || (k >= 384 && b_bytes <= 524288.0)
                    || (k >= 384 && m <= (FG_IS_F32 ? 256 : 64)
                        && b_bytes <= 786432.0))) {
                if (avx512) {
                    FG_SFX(fg_gemm_dot_512)(&pr, n_threads);
                }
                else {
                    FG_SFX(fg_gemm_dot_256)(&pr, n_threads);
                }
                return;
            }
        }
    }
#endif
    cfg = FG_SFX(fg_choose_config)();
    grid = FG_SFX(fg_packed_plan)(&cfg, m, n, n_threads);
    if (grid.n_units < 2) {
        n_threads = 1;
    }
    /* One A block and one B block per thread. */
    a_size = FG_CEIL_DIV(FG_MIN(grid.unit_m, cfg.mc), cfg.mr) * cfg.mr
             * FG_MIN(k, cfg.kc);
    a_size = FG_CEIL_DIV(a_size, 64) * 64;   /* keep blocks aligned */
    b_size = FG_CEIL_DIV(grid.unit_n * FG_MIN(k, cfg.kc), 64) * 64;
    a_pack = fg_aligned_malloc((size_t)(a_size + b_size) * sizeof(T)
                               * (size_t)n_threads);
    if (a_pack == NULL) {
        FG_SFX(fg_gemm_naive)(trans_a, trans_b, m, n, k, alpha, a, lda, b,
                              ldb, beta, c, ldc, bias, act);
        return;
    }
    b_pack = a_pack + a_size * n_threads;
    if (n_threads > 1 && grid.n_units % n_threads == 0) {
        #pragma omp parallel for schedule(static) num_threads(n_threads)
        for (unit = 0; unit < grid.n_units; unit++) {
            const int id = omp_get_thread_num();
            FG_SFX(fg_packed_unit)(&cfg, &grid, &pr, unit,
                                   a_pack + a_size * id,
                                   b_pack + b_size * id);
        }
    }
    else if (n_threads > 1) {
        /* Rounding to whole tiles left units that do not divide among
         * the threads: balance them dynamically. */
        #pragma omp parallel for schedule(dynamic, 1) num_threads(n_threads)
        for (unit = 0; unit < grid.n_units; unit++) {
            const int id = omp_get_thread_num();
            FG_SFX(fg_packed_unit)(&cfg, &grid, &pr, unit,
                                   a_pack + a_size * id,
                                   b_pack + b_size * id);
        }
    }
    else {
        for (unit = 0; unit < grid.n_units; unit++) {
            FG_SFX(fg_packed_unit)(&cfg, &grid, &pr, unit, a_pack, b_pack);
        }
    }
    fg_aligned_free(a_pack);
}

void FG_SFX(fg_gemm)(int trans_a, int trans_b, ptrdiff_t m, ptrdiff_t n,
                     ptrdiff_t k, T alpha, const T *a, ptrdiff_t lda,
                     const T *b, ptrdiff_t ldb, T beta, T *c, ptrdiff_t ldc)
{
    FG_SFX(fg_gemm_any)(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb,
                        beta, c, ldc, NULL, FG_ACT_NONE);
}

void FG_SFX(fg_gemm_bias_act)(int trans_a, int trans_b, ptrdiff_t m,
                              ptrdiff_t n, ptrdiff_t k, T alpha, const T *a,
                              ptrdiff_t lda, const T *b, ptrdiff_t ldb,
                              T beta, T *c, ptrdiff_t ldc, const T *bias,
                              int act)
{
    FG_SFX(fg_gemm_any)(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb,
                        beta, c, ldc, bias, act);
}

#undef FG_PORT_MR
#undef FG_PORT_NR

#endif  /* FG_GEMM_TEMPLATE */
