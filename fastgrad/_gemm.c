/*
 * GEMM, C := alpha * op(A) * op(B) + beta * C, row-major (see _gemm.h).
 *
 * The classic Goto/BLIS structure: the K x N operand is cut into KC x NC
 * blocks packed into NR-column micro-panels, the M x K operand into MC x KC
 * blocks packed into MR-row micro-panels (transposes are handled while
 * packing, so all four trans_a/trans_b combinations meet the same
 * micro-kernel), and a register-blocked micro-kernel multiplies one MR-row
 * panel by one NR-column panel into an MR x NR tile of C. Micro-kernels:
 * AVX-512 (6x32 float32, 6x16 float64), AVX2+FMA (6x16, 6x8), chosen at run
 * time, and portable C (4x8).
 *
 * Determinism: the blocking depends only on the shape and the chosen
 * micro-kernel, never on the thread count. Threads share the packing and
 * split the MR x NR tiles of each block; every element of C is computed by
 * one thread with the same sequence of operations, K blocks in order. K is
 * never split across threads, so results are bitwise identical for any
 * number of threads.
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

#if FG_HAVE_X86_DISPATCH
#include <immintrin.h>
#endif

#define FG_MIN(x, y) ((x) < (y) ? (x) : (y))
#define FG_CEIL_DIV(x, y) (((x) + (y) - 1) / (y))
/* Largest micro-tile of any kernel (AVX-512 float32: 6 x 32). */
#define FG_MAX_TILE 192
#define FG_ALIGN 64

/* malloc aligned to FG_ALIGN bytes; the original pointer sits just before
 * the returned block. Free with fg_aligned_free. */
static void *fg_aligned_malloc(size_t bytes)
{
    unsigned char *raw = malloc(bytes + FG_ALIGN + sizeof(void *));
    uintptr_t address;
    if (raw == NULL) {
        return NULL;
    }
    address = (uintptr_t)(raw + sizeof(void *) + FG_ALIGN - 1);
    address &= ~(uintptr_t)(FG_ALIGN - 1);
    ((void **)address)[-1] = raw;
    return (void *)address;
}

static void fg_aligned_free(void *block)
{
    if (block != NULL) {
        free(((void **)block)[-1]);
    }
}

/* Write-back modes of a micro-kernel for its MR x NR tile:
 * FG_WB_SET:  C := alpha * acc                 (first K block, beta == 0)
 * FG_WB_BETA: C := alpha * acc + beta * C      (first K block, beta != 0)
 * FG_WB_ADD:  C := alpha * acc + C             (later K blocks) */
enum { FG_WB_SET = 0, FG_WB_BETA = 1, FG_WB_ADD = 2 };

/* ------------------------------------------------------------------ */
/* AVX2 + FMA micro-kernels                                            */
/* ------------------------------------------------------------------ */
#if FG_HAVE_X86_DISPATCH

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
    ap += 6;                                                              \
    bp += 16

/* 6 x 16 tile += A panel (kc x 6) * B panel (kc x 16), float32. */
FG_TARGET_AVX2 static void
fg_kernel_avx2_f32(ptrdiff_t kc, const float *ap, const float *bp, float *c,
                   ptrdiff_t ldc, float alpha, float beta, int mode)
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
    ap += 6;                                                              \
    bp += 8

/* 6 x 8 tile += A panel (kc x 6) * B panel (kc x 8), float64. */
FG_TARGET_AVX2 static void
fg_kernel_avx2_f64(ptrdiff_t kc, const double *ap, const double *bp,
                   double *c, ptrdiff_t ldc, double alpha, double beta,
                   int mode)
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
/* AVX-512F micro-kernels (compiled everywhere; not run on the dev     */
/* machine, whose CPU does not expose AVX-512)                          */
/* ------------------------------------------------------------------ */
#define FG_AVX512_F32_WB(ptr, acc)                                        \
    do {                                                                  \
        __m512 t_ = _mm512_mul_ps(va, (acc));                             \
        if (mode == FG_WB_BETA) {                                         \
            t_ = _mm512_fmadd_ps(vb, _mm512_loadu_ps(ptr), t_);           \
        }                                                                 \
        else if (mode == FG_WB_ADD) {                                     \
            t_ = _mm512_add_ps(_mm512_loadu_ps(ptr), t_);                 \
        }                                                                 \
        _mm512_storeu_ps((ptr), t_);                                      \
    } while (0)

#define FG_AVX512_F32_ROW(i)                                              \
    av = _mm512_set1_ps(ap[i]);                                           \
    c##i##0 = _mm512_fmadd_ps(av, b0, c##i##0);                           \
    c##i##1 = _mm512_fmadd_ps(av, b1, c##i##1)

/* 6 x 32 tile += A panel (kc x 6) * B panel (kc x 32), float32. */
FG_TARGET_AVX512 static void
fg_kernel_avx512_f32(ptrdiff_t kc, const float *ap, const float *bp,
                     float *c, ptrdiff_t ldc, float alpha, float beta,
                     int mode)
{
    __m512 c00 = _mm512_setzero_ps(), c01 = _mm512_setzero_ps();
    __m512 c10 = _mm512_setzero_ps(), c11 = _mm512_setzero_ps();
    __m512 c20 = _mm512_setzero_ps(), c21 = _mm512_setzero_ps();
    __m512 c30 = _mm512_setzero_ps(), c31 = _mm512_setzero_ps();
    __m512 c40 = _mm512_setzero_ps(), c41 = _mm512_setzero_ps();
    __m512 c50 = _mm512_setzero_ps(), c51 = _mm512_setzero_ps();
    __m512 av, b0, b1, va, vb;
    ptrdiff_t p;

    for (p = 0; p < kc; p++) {
        b0 = _mm512_load_ps(bp);
        b1 = _mm512_load_ps(bp + 16);
        FG_AVX512_F32_ROW(0); FG_AVX512_F32_ROW(1); FG_AVX512_F32_ROW(2);
        FG_AVX512_F32_ROW(3); FG_AVX512_F32_ROW(4); FG_AVX512_F32_ROW(5);
        ap += 6;
        bp += 32;
    }
    va = _mm512_set1_ps(alpha);
    vb = _mm512_set1_ps(beta);
    FG_AVX512_F32_WB(c, c00);
    FG_AVX512_F32_WB(c + 16, c01);
    FG_AVX512_F32_WB(c + ldc, c10);
    FG_AVX512_F32_WB(c + ldc + 16, c11);
    FG_AVX512_F32_WB(c + 2 * ldc, c20);
    FG_AVX512_F32_WB(c + 2 * ldc + 16, c21);
    FG_AVX512_F32_WB(c + 3 * ldc, c30);
    FG_AVX512_F32_WB(c + 3 * ldc + 16, c31);
    FG_AVX512_F32_WB(c + 4 * ldc, c40);
    FG_AVX512_F32_WB(c + 4 * ldc + 16, c41);
    FG_AVX512_F32_WB(c + 5 * ldc, c50);
    FG_AVX512_F32_WB(c + 5 * ldc + 16, c51);
}

#define FG_AVX512_F64_WB(ptr, acc)                                        \
    do {                                                                  \
        __m512d t_ = _mm512_mul_pd(va, (acc));                            \
        if (mode == FG_WB_BETA) {                                         \
            t_ = _mm512_fmadd_pd(vb, _mm512_loadu_pd(ptr), t_);           \
        }                                                                 \
        else if (mode == FG_WB_ADD) {                                     \
            t_ = _mm512_add_pd(_mm512_loadu_pd(ptr), t_);                 \
        }                                                                 \
        _mm512_storeu_pd((ptr), t_);                                      \
    } while (0)

#define FG_AVX512_F64_ROW(i)                                              \
    av = _mm512_set1_pd(ap[i]);                                           \
    c##i##0 = _mm512_fmadd_pd(av, b0, c##i##0);                           \
    c##i##1 = _mm512_fmadd_pd(av, b1, c##i##1)

/* 6 x 16 tile += A panel (kc x 6) * B panel (kc x 16), float64. */
FG_TARGET_AVX512 static void
fg_kernel_avx512_f64(ptrdiff_t kc, const double *ap, const double *bp,
                     double *c, ptrdiff_t ldc, double alpha, double beta,
                     int mode)
{
    __m512d c00 = _mm512_setzero_pd(), c01 = _mm512_setzero_pd();
    __m512d c10 = _mm512_setzero_pd(), c11 = _mm512_setzero_pd();
    __m512d c20 = _mm512_setzero_pd(), c21 = _mm512_setzero_pd();
    __m512d c30 = _mm512_setzero_pd(), c31 = _mm512_setzero_pd();
    __m512d c40 = _mm512_setzero_pd(), c41 = _mm512_setzero_pd();
    __m512d c50 = _mm512_setzero_pd(), c51 = _mm512_setzero_pd();
    __m512d av, b0, b1, va, vb;
    ptrdiff_t p;

    for (p = 0; p < kc; p++) {
        b0 = _mm512_load_pd(bp);
        b1 = _mm512_load_pd(bp + 8);
        FG_AVX512_F64_ROW(0); FG_AVX512_F64_ROW(1); FG_AVX512_F64_ROW(2);
        FG_AVX512_F64_ROW(3); FG_AVX512_F64_ROW(4); FG_AVX512_F64_ROW(5);
        ap += 6;
        bp += 16;
    }
    va = _mm512_set1_pd(alpha);
    vb = _mm512_set1_pd(beta);
    FG_AVX512_F64_WB(c, c00);
    FG_AVX512_F64_WB(c + 8, c01);
    FG_AVX512_F64_WB(c + ldc, c10);
    FG_AVX512_F64_WB(c + ldc + 8, c11);
    FG_AVX512_F64_WB(c + 2 * ldc, c20);
    FG_AVX512_F64_WB(c + 2 * ldc + 8, c21);
    FG_AVX512_F64_WB(c + 3 * ldc, c30);
    FG_AVX512_F64_WB(c + 3 * ldc + 8, c31);
    FG_AVX512_F64_WB(c + 4 * ldc, c40);
    FG_AVX512_F64_WB(c + 4 * ldc + 8, c41);
    FG_AVX512_F64_WB(c + 5 * ldc, c50);
    FG_AVX512_F64_WB(c + 5 * ldc + 8, c51);
}

#endif  /* FG_HAVE_X86_DISPATCH */

/* Instantiate the type-generic part for float32 and float64. */
#define FG_GEMM_TEMPLATE
#define T float
#define FG_SFX(name) name##_f32
#define FG_ACT fg_act_f32
#include "_gemm.c"
#undef T
#undef FG_SFX
#undef FG_ACT

#define T double
#define FG_SFX(name) name##_f64
#define FG_ACT fg_act_f64
#include "_gemm.c"
#undef T
#undef FG_SFX
#undef FG_ACT

#else  /* FG_GEMM_TEMPLATE: the type-generic part, T is float or double */

#define FG_PORT_MR 4
#define FG_PORT_NR 8

/* Portable 4 x 8 tile += A panel (kc x 4) * B panel (kc x 8). */
static void
FG_SFX(fg_kernel_portable)(ptrdiff_t kc, const T *ap, const T *bp, T *c,
                           ptrdiff_t ldc, T alpha, T beta, int mode)
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
        ap += FG_PORT_MR;
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

typedef void (*FG_SFX(fg_kernel_fn))(ptrdiff_t kc, const T *ap, const T *bp,
                                     T *c, ptrdiff_t ldc, T alpha, T beta,
                                     int mode);

/* A micro-kernel with its tile (mr x nr) and cache blocking (mc x kc
 * blocks of op(A) packed for L2, kc x nc blocks of op(B) for L3, one
 * kc x nr micro-panel of op(B) for L1). */
typedef struct {
    FG_SFX(fg_kernel_fn) kernel;
    ptrdiff_t mr, nr, mc, kc, nc;
} FG_SFX(fg_gemm_config);

static FG_SFX(fg_gemm_config) FG_SFX(fg_choose_config)(void)
{
    FG_SFX(fg_gemm_config) config;
    config.kernel = FG_SFX(fg_kernel_portable);
    config.mr = FG_PORT_MR;
    config.nr = FG_PORT_NR;
    config.mc = 128;
    config.kc = 256;
    config.nc = 4080;
#if FG_HAVE_X86_DISPATCH
    if (fg_cpu_has_avx512()) {
        config.kernel = FG_SFX(fg_kernel_avx512);
        config.mr = 6;
        config.nr = 64 / sizeof(T) * 2;
        config.mc = 144;
        config.kc = 256;
        config.nc = 4064;
    }
    else if (fg_cpu_has_avx2()) {
        config.kernel = FG_SFX(fg_kernel_avx2);
        config.mr = 6;
        config.nr = 32 / sizeof(T) * 2;
        config.mc = 144;
        config.kc = 256;
        config.nc = 4080;
    }
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
    if (trans_a) {
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
    ptrdiff_t cols = FG_MIN(nr, n - j0), p, s;
    if (trans_b) {
        /* op(B)[p, j] = b[j, p]: rows of b hold columns of op(B). */
        for (s = 0; s < cols; s++) {
            const T *src = b + (j0 + s) * ldb + p0;
            for (p = 0; p < kc; p++) {
                dst[p * nr + s] = src[p];
            }
        }
        for (; s < nr; s++) {
            for (p = 0; p < kc; p++) {
                dst[p * nr + s] = (T)0;
            }
        }
    }
    else {
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

/* C[i, j] := act(C[i, j] + bias[j]) on a rows x cols block (bias may be
 * NULL). */
static void
FG_SFX(fg_epilogue)(T *c, ptrdiff_t ldc, ptrdiff_t rows, ptrdiff_t cols,
                    const T *bias, int act)
{
    ptrdiff_t i, j;
    for (i = 0; i < rows; i++) {
        T *c_row = c + i * ldc;
        if (bias != NULL) {
            for (j = 0; j < cols; j++) {
                c_row[j] = FG_ACT(act, c_row[j] + bias[j]);
            }
        }
        else if (act != FG_ACT_NONE) {
            for (j = 0; j < cols; j++) {
                c_row[j] = FG_ACT(act, c_row[j]);
            }
        }
    }
}

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

/* The blocked, packed product on n_threads threads (see the file comment).
 * a_pack holds one mc x kc block of op(A), b_pack one kc x nc block of
 * op(B), both shared by the threads. */
static void
FG_SFX(fg_gemm_packed)(const FG_SFX(fg_gemm_config) *cfg, int trans_a,
                       int trans_b, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                       T alpha, const T *a, ptrdiff_t lda, const T *b,
                       ptrdiff_t ldb, T beta, T *c, ptrdiff_t ldc,
                       const T *bias, int act, T *a_pack, T *b_pack,
                       int n_threads)
{
    const ptrdiff_t mr = cfg->mr, nr = cfg->nr;
    const int has_epilogue = bias != NULL || act != FG_ACT_NONE;

    #pragma omp parallel num_threads(n_threads)
    {
        ptrdiff_t jc, pc, ic;
        for (jc = 0; jc < n; jc += cfg->nc) {
            const ptrdiff_t nc = FG_MIN(cfg->nc, n - jc);
            const ptrdiff_t n_jr = FG_CEIL_DIV(nc, nr);
            for (pc = 0; pc < k; pc += cfg->kc) {
                const ptrdiff_t kc = FG_MIN(cfg->kc, k - pc);
                const int first = pc == 0, last = pc + kc == k;
                const int mode = !first ? FG_WB_ADD
                                 : beta == (T)0 ? FG_WB_SET : FG_WB_BETA;
                ptrdiff_t jr;

                #pragma omp for schedule(static)
                for (jr = 0; jr < n_jr; jr++) {
                    FG_SFX(fg_pack_b)(trans_b, b, ldb, n, jc + jr * nr, pc,
                                      kc, nr, b_pack + jr * nr * kc);
                }
                for (ic = 0; ic < m; ic += cfg->mc) {
                    const ptrdiff_t mc = FG_MIN(cfg->mc, m - ic);
                    const ptrdiff_t n_ir = FG_CEIL_DIV(mc, mr);
                    ptrdiff_t ir, tile;

                    #pragma omp for schedule(static)
                    for (ir = 0; ir < n_ir; ir++) {
                        FG_SFX(fg_pack_a)(trans_a, a, lda, m, ic + ir * mr,
                                          pc, kc, mr, a_pack + ir * mr * kc);
                    }
                    /* Tiles in column-panel-major order: a thread's run of
                     * tiles reuses one B micro-panel from L1. */
                    #pragma omp for schedule(static)
                    for (tile = 0; tile < n_jr * n_ir; tile++) {
                        const ptrdiff_t jt = tile / n_ir, it = tile % n_ir;
                        const ptrdiff_t i0 = ic + it * mr, j0 = jc + jt * nr;
                        const ptrdiff_t rows = FG_MIN(mr, m - i0);
                        const ptrdiff_t cols = FG_MIN(nr, n - j0);
                        const T *ap = a_pack + it * mr * kc;
                        const T *bp = b_pack + jt * nr * kc;
                        T *c_tile = c + i0 * ldc + j0;

                        if (rows == mr && cols == nr) {
                            cfg->kernel(kc, ap, bp, c_tile, ldc, alpha, beta,
                                        mode);
                        }
                        else {
                            /* Edge tile: full tile into a buffer, then the
                             * valid part into C. */
                            T buffer[FG_MAX_TILE];
                            ptrdiff_t i, j;
                            cfg->kernel(kc, ap, bp, buffer, nr, (T)1, (T)0,
                                        FG_WB_SET);
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
                        if (last && has_epilogue) {
                            FG_SFX(fg_epilogue)(c_tile, ldc, rows, cols,
                                                bias ? bias + j0 : NULL, act);
                        }
                    }
                }
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
    T *a_pack, *b_pack;
    ptrdiff_t a_size, b_size;
    int n_threads;

    if (m <= 0 || n <= 0) {
        return;
    }
    if (k <= 0 || alpha == (T)0) {
        FG_SFX(fg_scale_c)(m, n, beta, c, ldc, bias, act);
        return;
    }
    cfg = FG_SFX(fg_choose_config)();
    a_size = FG_CEIL_DIV(FG_MIN(m, cfg.mc), cfg.mr) * cfg.mr
             * FG_MIN(k, cfg.kc);
    b_size = FG_CEIL_DIV(FG_MIN(n, cfg.nc), cfg.nr) * cfg.nr
             * FG_MIN(k, cfg.kc);
    a_pack = fg_aligned_malloc((size_t)a_size * sizeof(T));
    b_pack = fg_aligned_malloc((size_t)b_size * sizeof(T));
    if (a_pack == NULL || b_pack == NULL) {
        fg_aligned_free(a_pack);
        fg_aligned_free(b_pack);
        FG_SFX(fg_gemm_naive)(trans_a, trans_b, m, n, k, alpha, a, lda, b,
                              ldb, beta, c, ldc, bias, act);
        return;
    }
    n_threads = fg_threads_for(2.0 * (double)m * (double)n * (double)k);
    FG_SFX(fg_gemm_packed)(&cfg, trans_a, trans_b, m, n, k, alpha, a, lda,
                           b, ldb, beta, c, ldc, bias, act, a_pack, b_pack,
                           n_threads);
    fg_aligned_free(a_pack);
    fg_aligned_free(b_pack);
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
