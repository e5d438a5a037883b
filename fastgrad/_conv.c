/*
 * Direct convolution and subsampling kernels (see _conv.h for the math).
 *
 * The file is a template: the part below `#else` is compiled twice, for
 * float (f32) and double (f64), by including this file from itself with
 * FG_T, FG_SFX and the vector macros defined.
 *
 * Forward: a multi-channel correlation of (zero-padded) planes,
 *   y[m,i,j] = act(b[m] + sum_{c,p,q} w[m,c,p,q] * x[c,i+p,j+q]),
 * in AVX2 register tiles of 3 output maps x 4 rows x one vector of columns
 * (12 accumulators), the activation applied in registers; the last tile of
 * a plane overlaps the previous one instead of taking a scalar tail, which
 * rewrites identical values.
 * Input gradient: a scatter, dxpad[c,i+p,j+q] += w[m,c,p,q] * dy[m,i,j],
 * with tiles of 2 dx rows x up to 5 kernel columns of accumulators over
 * (m, p), so no multiply touches padding.
 * Weight gradient: 2 maps x up to 5 kernel columns of vector accumulators
 * over all samples of a fixed batch chunk, reduced horizontally once per
 * chunk; chunk partials are added in chunk order.
 *
 * An element's arithmetic (order of the multiply-adds, lane it lives in)
 * never depends on how work is split between threads, so results are
 * bitwise identical for any thread count.
 */
#ifndef FG_CONV_TEMPLATE

#include <stdlib.h>
#include <string.h>

#include "_conv.h"
#include "_eltwise.h"
#include "_omp.h"
#include "_simd.h"

#if FG_HAVE_X86_DISPATCH
#include "_vmath.h"

FG_TARGET_AVX2 static inline float fg_hsum_ps(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v),
                          _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

FG_TARGET_AVX2 static inline double fg_hsum_pd(__m256d v)
{
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v),
                           _mm256_extractf128_pd(v, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
}

/* d * act'(y), act' from the output as fg_act_backward (_eltwise.c), with
 * the same operations in the same order. */
FG_TARGET_AVX2 static inline __m256 fg_act_grad_ps(int act, __m256 y,
                                                   __m256 d)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    const float a = (float)FG_TANH_OPT_A;
    switch (act) {
    case FG_ACT_SIGMOID:
        return _mm256_mul_ps(_mm256_mul_ps(d, y), _mm256_sub_ps(one, y));
    case FG_ACT_TANH:
        return _mm256_mul_ps(d, _mm256_sub_ps(one, _mm256_mul_ps(y, y)));
    case FG_ACT_TANH_OPT:
        return _mm256_mul_ps(
            _mm256_mul_ps(d, _mm256_set1_ps(
                (float)(FG_TANH_OPT_B / FG_TANH_OPT_A))),
            _mm256_sub_ps(_mm256_set1_ps(a * a), _mm256_mul_ps(y, y)));
    case FG_ACT_RELU:
        return _mm256_and_ps(d, _mm256_cmp_ps(y, _mm256_setzero_ps(),
                                              _CMP_GT_OQ));
    default:
        return d;
    }
}

/* out (h/2 x w/2) := means of the 2 x 2 blocks of the rows x (h x w, h
 * even: a band of stacked planes), as the scalar loop: ((r0[2j] +
 * r0[2j+1]) + (r1[2j] + r1[2j+1])) / 4. Returns the output columns done
 * per row (the caller does the rest). */
FG_TARGET_AVX2 static ptrdiff_t meanpool2_plane_avx2(const float *x,
                                                     float *out,
                                                     ptrdiff_t h,
                                                     ptrdiff_t w)
{
    const __m256 quarter = _mm256_set1_ps(0.25f);
    ptrdiff_t i, j, ow = w / 2, wide = ow / 8 * 8;
    const ptrdiff_t done = ow - wide >= 4 ? wide + 4 : wide;
    for (i = 0; i < h / 2; i++) {
        const float *r0 = x + 2 * i * w, *r1 = r0 + w;
        if (done > wide) {  /* 4 more outputs with 128-bit vectors */
            __m128 top = _mm_hadd_ps(_mm_loadu_ps(r0 + 2 * wide),
                                     _mm_loadu_ps(r0 + 2 * wide + 4));
            __m128 bottom = _mm_hadd_ps(_mm_loadu_ps(r1 + 2 * wide),
                                        _mm_loadu_ps(r1 + 2 * wide + 4));
            _mm_storeu_ps(out + i * ow + wide,
                          _mm_mul_ps(_mm_add_ps(top, bottom),
                                     _mm_set1_ps(0.25f)));
        }
        for (j = 0; j < wide; j += 8) {
            /* hadd pairs within 128-bit lanes; the permute restores order */
            __m256 top = _mm256_hadd_ps(_mm256_loadu_ps(r0 + 2 * j),
                                        _mm256_loadu_ps(r0 + 2 * j + 8));
            __m256 bottom = _mm256_hadd_ps(_mm256_loadu_ps(r1 + 2 * j),
                                           _mm256_loadu_ps(r1 + 2 * j + 8));
            __m256 sum = _mm256_castpd_ps(_mm256_permute4x64_pd(
                _mm256_castps_pd(_mm256_add_ps(top, bottom)), 0xD8));
            _mm256_storeu_ps(out + i * ow + j, _mm256_mul_ps(sum, quarter));
        }
    }
    return done;
}

/* dx (h x w) := dy (h/2 x w/2) spread over 2 x 2 blocks / 4, times
 * act'(y) when y is not NULL. Returns the input columns done per row of
 * dy (the caller does the rest). */
FG_TARGET_AVX2 static ptrdiff_t meanpool2_back_plane_avx2(const float *dy,
                                                          const float *y,
                                                          int act, float *dx,
                                                          ptrdiff_t h,
                                                          ptrdiff_t w)
{
    const __m256 quarter = _mm256_set1_ps(0.25f);
    ptrdiff_t i, j, a, ow = w / 2, wide = ow / 8 * 8;
    const ptrdiff_t done = ow - wide >= 4 ? wide + 4 : wide;
    for (i = 0; i < h / 2; i++) {
        for (j = 0; j < wide; j += 8) {
            __m256 v = _mm256_mul_ps(_mm256_loadu_ps(dy + i * ow + j),
                                     quarter);
            __m256 lo = _mm256_unpacklo_ps(v, v), hi = _mm256_unpackhi_ps(v, v);
            __m256 first = _mm256_permute2f128_ps(lo, hi, 0x20);
            __m256 second = _mm256_permute2f128_ps(lo, hi, 0x31);
            for (a = 0; a < 2; a++) {
                const ptrdiff_t at = (2 * i + a) * w + 2 * j;
                __m256 d0 = first, d1 = second;
                if (y != NULL) {
                    d0 = fg_act_grad_ps(act, _mm256_loadu_ps(y + at), d0);
                    d1 = fg_act_grad_ps(act, _mm256_loadu_ps(y + at + 8), d1);
                }
                _mm256_storeu_ps(dx + at, d0);
                _mm256_storeu_ps(dx + at + 8, d1);
            }
        }
        if (done > wide) {  /* 4 more inputs, 8 outputs per row */
            __m128 v = _mm_mul_ps(_mm_loadu_ps(dy + i * ow + wide),
                                  _mm_set1_ps(0.25f));
            __m256 spread = _mm256_set_m128(_mm_unpackhi_ps(v, v),
                                            _mm_unpacklo_ps(v, v));
            for (a = 0; a < 2; a++) {
                const ptrdiff_t at = (2 * i + a) * w + 2 * wide;
                _mm256_storeu_ps(dx + at, y == NULL ? spread : fg_act_grad_ps(
                    act, _mm256_loadu_ps(y + at), spread));
            }
        }
    }
    return done;
}

#endif

#define FG_CONV_CAT2(a, b) a##_##b
#define FG_CONV_CAT(a, b) FG_CONV_CAT2(a, b)
#define FN(name) FG_CONV_CAT(name, FG_SFX)

#define FG_MIN(a, b) ((a) < (b) ? (a) : (b))
#define FG_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Loading FG_MASK32 + 8 - k (FG_MASK64 + 4 - k) gives a lane mask of the
 * first k lanes. */
static const int32_t FG_MASK32[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                      0, 0, 0, 0, 0, 0, 0, 0};
static const int64_t FG_MASK64[8] = {-1, -1, -1, -1, 0, 0, 0, 0};

/* A fork/join costs a few microseconds on a quiet machine and up to a
 * scheduler time slice when other processes share the cores, so these
 * kernels go parallel only for jobs worth about 50 us of one core (2e6
 * flops; a pooled element counts as 8, about its cost relative to a
 * convolution flop). Smaller jobs run on the calling thread. */
#define FG_CONV_PARALLEL_MIN_WORK 2.0e6
#define FG_POOL_WORK_PER_ELEMENT 8.0
/* Pooled rows per task of the mean pools. */
#define FG_POOL_ROWS 64

static int fg_conv_threads(double work)
{
    return work < FG_CONV_PARALLEL_MIN_WORK ? 1 : fg_threads_for(work);
}

static int fg_conv_use_avx2 = -1;

static int fg_conv_avx2(void)
{
    if (fg_conv_use_avx2 < 0) {
        fg_conv_use_avx2 = fg_cpu_has_avx2();
    }
    return fg_conv_use_avx2;
}

#define FG_CONV_TEMPLATE 1

#define FG_T float
#define FG_SFX f32
#define FG_VL 8
#define FG_VEC_ACT 1   /* sigmoid and relu fused in the AVX2 tiles */
#define FG_F32 1       /* the AVX2 2 x 2 pools */
#define FG_ACT_SCALAR fg_act_f32
#define VEC __m256
#define VLOADU(p) _mm256_loadu_ps(p)
#define VSTOREU(p, v) _mm256_storeu_ps(p, v)
#define VMASK(k) _mm256_loadu_si256((const __m256i *)(FG_MASK32 + 8 - (k)))
#define VMASKLOAD(p, mask) _mm256_maskload_ps(p, mask)
#define VMASKSTORE(p, mask, v) _mm256_maskstore_ps(p, mask, v)
#define VSET1(v) _mm256_set1_ps(v)
#define VZERO() _mm256_setzero_ps()
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VADD(a, b) _mm256_add_ps(a, b)
#define FG_HSUM(v) fg_hsum_ps(v)
#include "_conv.c"
#undef FG_T
#undef FG_SFX
#undef FG_VL
#undef VEC
#undef VLOADU
#undef VSTOREU
#undef VMASK
#undef VMASKLOAD
#undef VMASKSTORE
#undef VSET1
#undef VZERO
#undef VFMA
#undef VADD
#undef FG_HSUM
#undef FG_VEC_ACT
#undef FG_F32
#undef FG_ACT_SCALAR

#define FG_T double
#define FG_SFX f64
#define FG_VL 4
#define FG_VEC_ACT 0
#define FG_F32 0
#define FG_ACT_SCALAR fg_act_f64
#define VEC __m256d
#define VLOADU(p) _mm256_loadu_pd(p)
#define VSTOREU(p, v) _mm256_storeu_pd(p, v)
#define VMASK(k) _mm256_loadu_si256((const __m256i *)(FG_MASK64 + 4 - (k)))
#define VMASKLOAD(p, mask) _mm256_maskload_pd(p, mask)
#define VMASKSTORE(p, mask, v) _mm256_maskstore_pd(p, mask, v)
#define VSET1(v) _mm256_set1_pd(v)
#define VZERO() _mm256_setzero_pd()
#define VFMA(a, b, c) _mm256_fmadd_pd(a, b, c)
#define VADD(a, b) _mm256_add_pd(a, b)
#define FG_HSUM(v) fg_hsum_pd(v)
#include "_conv.c"

#else /* FG_CONV_TEMPLATE: the body, compiled once per type */

#define T FG_T

/* Horizontal sum of a vector, by a fixed tree of shuffles. */
#if FG_HAVE_X86_DISPATCH
FG_TARGET_AVX2 static inline T FN(hsum)(VEC v)
{
    return FG_HSUM(v);
}
#endif

/* dst[k] := src[k] zero-padded by (ph, pw) on each side, for `planes`
 * planes of h x w. */
static void FN(pad_planes)(const T *src, ptrdiff_t planes, ptrdiff_t h,
                           ptrdiff_t w, ptrdiff_t ph, ptrdiff_t pw, T *dst)
{
    ptrdiff_t k, i, hp = h + 2 * ph, wp = w + 2 * pw;
    memset(dst, 0, (size_t)(planes * hp * wp) * sizeof(T));
    for (k = 0; k < planes; k++) {
        for (i = 0; i < h; i++) {
            memcpy(dst + (k * hp + i + ph) * wp + pw, src + (k * h + i) * w,
                   (size_t)w * sizeof(T));
        }
    }
}

/* y[m,i,j] = init[m] + sum_{c,p,q} k[m,c,p,q] * in[c*plane + (i+p)*ld
 * + j+q] for maps m0 <= m < m1, i < oh, j < ow (portable C). */
static void FN(corr_portable)(const T *in, ptrdiff_t plane, ptrdiff_t ld,
                              ptrdiff_t c_in, const T *k, ptrdiff_t kh,
                              ptrdiff_t kw, const T *init, T *y,
                              ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t oh,
                              ptrdiff_t ow)
{
    ptrdiff_t m, i, j, c, p, q;
    for (m = m0; m < m1; m++) {
        for (i = 0; i < oh; i++) {
            T *row = y + (m * oh + i) * ow;
            T start = init ? init[m] : (T)0;
            for (j = 0; j < ow; j++) {
                row[j] = start;
            }
            for (c = 0; c < c_in; c++) {
                for (p = 0; p < kh; p++) {
                    const T *src = in + c * plane + (i + p) * ld;
                    const T *wrow = k + ((m * c_in + c) * kh + p) * kw;
                    for (q = 0; q < kw; q++) {
                        T wv = wrow[q];
                        for (j = 0; j < ow; j++) {
                            row[j] += wv * src[j + q];
                        }
                    }
                }
            }
        }
    }
}

#if FG_HAVE_X86_DISPATCH
/* One register tile of the correlation: `maps` consecutive output maps
 * (k, init, y point at the first), R rows, one vector of columns; `in` and
 * `y` point at the tile's top-left element. */
FG_TARGET_AVX2 static inline __attribute__((always_inline)) void
FN(corr_tile)(const T *in, ptrdiff_t plane, ptrdiff_t ld, ptrdiff_t c_in,
              const T *k, ptrdiff_t kstride, ptrdiff_t kh, ptrdiff_t kw,
              const T *init, T *y, ptrdiff_t ystride, ptrdiff_t ldy,
              const int maps, const int rows, const int masked,
              __m256i mask, int act)
{
    VEC acc[3][4];
    ptrdiff_t c, p, q;
    int r, t;
    for (t = 0; t < maps; t++) {
        VEC start = VSET1(init ? init[t] : (T)0);
        for (r = 0; r < rows; r++) {
            acc[t][r] = start;
        }
    }
    for (c = 0; c < c_in; c++) {
        for (p = 0; p < kh; p++) {
            const T *src = in + c * plane + p * ld;
            const T *wrow = k + (c * kh + p) * kw;
            for (q = 0; q < kw; q++) {
                VEC wv[3];
                for (t = 0; t < maps; t++) {
                    wv[t] = VSET1(wrow[t * kstride + q]);
                }
                for (r = 0; r < rows; r++) {
                    VEC x = masked ? VMASKLOAD(src + r * ld + q, mask)
                                   : VLOADU(src + r * ld + q);
                    for (t = 0; t < maps; t++) {
                        acc[t][r] = VFMA(wv[t], x, acc[t][r]);
                    }
                }
            }
        }
    }
#if FG_VEC_ACT
    if (act != FG_ACT_NONE) {
        for (t = 0; t < maps; t++) {
            for (r = 0; r < rows; r++) {
                acc[t][r] = fg_act_ps(acc[t][r], act);
            }
        }
    }
#else
    (void)act;
#endif
    for (t = 0; t < maps; t++) {
        for (r = 0; r < rows; r++) {
            if (masked) {
                VMASKSTORE(y + t * ystride + r * ldy, mask, acc[t][r]);
            }
            else {
                VSTOREU(y + t * ystride + r * ldy, acc[t][r]);
            }
        }
    }
}

#define FG_CORR_TILE(MAPS, ROWS, MASKED)                                      \
    FN(corr_tile)(src, plane, ld, c_in, k + m * kstride, kstride, kh, kw,     \
                  init ? init + m : NULL, y + m * oh * ow + i0 * ow + j0,     \
                  oh * ow, ow, MAPS, ROWS, MASKED, mask, act)

#define FG_CORR_ROWS(MAPS)                                                    \
    if (rows == 4 && masked) {                                                \
        FG_CORR_TILE(MAPS, 4, 1);                                             \
    }                                                                         \
    else if (rows == 4) {                                                     \
        FG_CORR_TILE(MAPS, 4, 0);                                             \
    }                                                                         \
    else if (masked) {                                                        \
        FG_CORR_TILE(MAPS, 1, 1);                                             \
    }                                                                         \
    else {                                                                    \
        FG_CORR_TILE(MAPS, 1, 0);                                             \
    }

/* Same contract as corr_portable, AVX2+FMA; the activation `act` is
 * applied to the tiles in registers (f32: sigmoid, relu). Tiles of 3 maps
 * x 4 rows x one vector (12 accumulators); a last partial group of maps
 * or rows overlaps the previous one (recomputing identical values). */
FG_TARGET_AVX2 static void
FN(corr_avx2)(const T *in, ptrdiff_t plane, ptrdiff_t ld, ptrdiff_t c_in,
              const T *k, ptrdiff_t kh, ptrdiff_t kw, const T *init, T *y,
              ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t oh, ptrdiff_t ow,
              int act)
{
    ptrdiff_t mm, m, i, j, i0, j0, kstride = c_in * kh * kw;
    const int masked = ow < FG_VL;
    const int rows = oh >= 4 ? 4 : 1;
    const ptrdiff_t group = FG_MIN(3, m1 - m0);
    __m256i mask = VMASK(masked ? ow : FG_VL);
    for (mm = m0; mm < m1; mm += group) {
        m = FG_MIN(mm, m1 - group);
        for (i = 0; i < oh; i += rows) {
            i0 = FG_MIN(i, oh - rows);
            for (j = 0; j < ow; j += FG_VL) {
                const T *src;
                j0 = masked ? 0 : FG_MIN(j, ow - FG_VL);
                src = in + i0 * ld + j0;
                if (group == 3) {
                    FG_CORR_ROWS(3)
                }
                else if (group == 2) {
                    FG_CORR_ROWS(2)
                }
                else {
                    FG_CORR_ROWS(1)
                }
            }
        }
    }
}
#undef FG_CORR_ROWS
#undef FG_CORR_TILE
#endif

/* y[m] := act(corr(in, k)[m] + init[m]) for maps m0 <= m < m1. */
static void FN(corr)(const T *in, ptrdiff_t plane, ptrdiff_t ld,
                     ptrdiff_t c_in, const T *k, ptrdiff_t kh, ptrdiff_t kw,
                     const T *init, T *y, ptrdiff_t m0, ptrdiff_t m1,
                     ptrdiff_t oh, ptrdiff_t ow, int act)
{
    ptrdiff_t e;
#if FG_HAVE_X86_DISPATCH
    if (fg_conv_avx2()) {
        int fused = FG_VEC_ACT && (act == FG_ACT_SIGMOID
                                   || act == FG_ACT_RELU);
        FN(corr_avx2)(in, plane, ld, c_in, k, kh, kw, init, y, m0, m1, oh,
                      ow, fused ? act : FG_ACT_NONE);
        if (fused) {
            return;
        }
    }
    else
#endif
    {
        FN(corr_portable)(in, plane, ld, c_in, k, kh, kw, init, y, m0, m1,
                          oh, ow);
    }
    if (act != FG_ACT_NONE) {
        for (e = m0 * oh * ow; e < m1 * oh * ow; e++) {
            y[e] = FG_ACT_SCALAR(act, y[e]);
        }
    }
}

/* Map groups for one sample: split the maps (in pairs) between threads only
 * when there are too few samples to keep them busy. */
static ptrdiff_t FN(map_groups)(ptrdiff_t n, ptrdiff_t m, int n_threads)
{
    ptrdiff_t pairs = (m + 1) / 2;
    if (n_threads <= 1 || n >= 2 * n_threads) {
        return 1;
    }
    return FG_MAX(1, FG_MIN(pairs, 2 * n_threads));
}

/* The shared driver of forward and backward-input: for each sample,
 * y[s] := corr(pad(in[s], ph, pw) read from (oi, oj), k) + init. */
static int FN(corr_batch)(const T *in, ptrdiff_t n, ptrdiff_t c_in,
                          ptrdiff_t h, ptrdiff_t w, ptrdiff_t ph,
                          ptrdiff_t pw, ptrdiff_t oi, ptrdiff_t oj,
                          const T *k, ptrdiff_t m, ptrdiff_t kh,
                          ptrdiff_t kw, const T *init, T *y, ptrdiff_t oh,
                          ptrdiff_t ow, int act)
{
    ptrdiff_t hp = h + 2 * ph, wp = w + 2 * pw, job, n_jobs, groups;
    ptrdiff_t pairs = (m + 1) / 2;
    int padded = ph > 0 || pw > 0, failed = 0;
    double flops = 2.0 * (double)(n * m * oh * ow) * (double)(c_in * kh * kw);
    int n_threads = fg_conv_threads(flops);
    if (n == 0) {
        return 0;
    }
    (void)fg_conv_avx2();  /* resolve the dispatch outside threads */
    groups = FN(map_groups)(n, m, n_threads);
    n_jobs = n * groups;
    n_threads = (int)FG_MIN((ptrdiff_t)n_threads, n_jobs);
    #pragma omp parallel num_threads(n_threads) reduction(|:failed)
    {
        T *scratch = NULL;
        if (padded) {
            scratch = malloc((size_t)(c_in * hp * wp) * sizeof(T)
                             + sizeof(T));
            failed |= scratch == NULL;
        }
        #pragma omp for schedule(dynamic, 1)
        for (job = 0; job < n_jobs; job++) {
            ptrdiff_t s = job / groups, g = job % groups;
            ptrdiff_t m0 = 2 * (pairs * g / groups);
            ptrdiff_t m1 = FG_MIN(m, 2 * (pairs * (g + 1) / groups));
            const T *src = in + s * c_in * h * w;
            if (padded && scratch == NULL) {
                continue;
            }
            if (padded) {
                FN(pad_planes)(src, c_in, h, w, ph, pw, scratch);
                src = scratch;
            }
            FN(corr)(src + oi * wp + oj, hp * wp, wp, c_in, k, kh, kw, init,
                     y + s * m * oh * ow, m0, m1, oh, ow, act);
        }
        free(scratch);
    }
    return failed ? -1 : 0;
}

int FN(fg_conv2d_forward)(const T *x, const T *weight, const T *bias, T *out,
                          ptrdiff_t n, ptrdiff_t c, ptrdiff_t h, ptrdiff_t w,
                          ptrdiff_t m, ptrdiff_t kh, ptrdiff_t kw,
                          ptrdiff_t pad_h, ptrdiff_t pad_w, int act)
{
    ptrdiff_t oh = h + 2 * pad_h - kh + 1, ow = w + 2 * pad_w - kw + 1;
    return FN(corr_batch)(x, n, c, h, w, pad_h, pad_w, 0, 0, weight, m, kh,
                          kw, bias, out, oh, ow, act);
}

/* The input gradient is computed by scattering: dxpad[c, i+p, j+q] +=
 * w[m,c,p,q] dy[m,i,j], with dxpad = dx zero-padded by (pad_h, pad_w).
 * Unlike a 'full' correlation of zero-padded dy with the flipped kernel,
 * no multiply touches padding. */

/* dxpad[c] += scatter of dy (one sample) through channel c of w (portable
 * C). dxpad has rows of hp x wp. */
static void FN(scatter_portable)(const T *dy, const T *w, T *dxpad,
                                 ptrdiff_t c, ptrdiff_t c_in, ptrdiff_t m,
                                 ptrdiff_t oh, ptrdiff_t ow, ptrdiff_t kh,
                                 ptrdiff_t kw, ptrdiff_t wp)
{
    ptrdiff_t mi, p, q, i, j;
    for (mi = 0; mi < m; mi++) {
        for (p = 0; p < kh; p++) {
            for (q = 0; q < kw; q++) {
                T wv = w[((mi * c_in + c) * kh + p) * kw + q];
                for (i = 0; i < oh; i++) {
                    const T *g = dy + (mi * oh + i) * ow;
                    T *row = dxpad + (i + p) * wp + q;
                    for (j = 0; j < ow; j++) {
                        row[j] += wv * g[j];
                    }
                }
            }
        }
    }
}

#if FG_HAVE_X86_DISPATCH
/* One register tile of the scatter: dxpad rows r0 .. r0+rows-1, dy columns
 * j0 .. j0+VL-1, kernel columns q0 .. q0+cols-1:
 *   acc[r][q] = sum_{m,p} w[m,c,p,q0+q] dy[m, r0+r-p, j0..]
 * (rows of dy outside [0, oh) count as zero), then
 *   dxpad[r0+r, j0+q0+q ..] += acc[r][q]. */
FG_TARGET_AVX2 static inline __attribute__((always_inline)) void
FN(scatter_tile)(const T *dy, const T *w, T *dxpad, ptrdiff_t c,
                 ptrdiff_t c_in, ptrdiff_t m, ptrdiff_t oh, ptrdiff_t ow,
                 ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t wp, ptrdiff_t r0,
                 ptrdiff_t j0, ptrdiff_t q0, const int rows, const int cols,
                 const int masked, __m256i mask)
{
    VEC acc[2][5];
    ptrdiff_t mi, p, p_lo, p_hi;
    int r, q;
    for (r = 0; r < rows; r++) {
        for (q = 0; q < cols; q++) {
            acc[r][q] = VZERO();
        }
    }
    /* Kernel rows that reach a dy row from at least one dxpad row. */
    p_lo = FG_MAX(0, r0 - (oh - 1));
    p_hi = FG_MIN(kh - 1, r0 + rows - 1);
    for (mi = 0; mi < m; mi++) {
        const T *plane = dy + mi * oh * ow + j0;
        for (p = p_lo; p <= p_hi; p++) {
            const T *wrow = w + ((mi * c_in + c) * kh + p) * kw + q0;
            VEC g[2];
            for (r = 0; r < rows; r++) {
                ptrdiff_t i = r0 + r - p;
                if (i < 0 || i >= oh) {
                    g[r] = VZERO();
                }
                else {
                    g[r] = masked ? VMASKLOAD(plane + i * ow, mask)
                                  : VLOADU(plane + i * ow);
                }
            }
            for (q = 0; q < cols; q++) {
                VEC wv = VSET1(wrow[q]);
                for (r = 0; r < rows; r++) {
                    acc[r][q] = VFMA(wv, g[r], acc[r][q]);
                }
            }
        }
    }
    for (r = 0; r < rows; r++) {
        T *row = dxpad + (r0 + r) * wp + j0 + q0;
        for (q = 0; q < cols; q++) {
            if (masked) {
                VEC old = VMASKLOAD(row + q, mask);
                VMASKSTORE(row + q, mask, VADD(old, acc[r][q]));
            }
            else {
                VSTOREU(row + q, VADD(VLOADU(row + q), acc[r][q]));
            }
        }
    }
}

#define FG_SCATTER_COLS(ROWS, MASKED)                                         \
    switch (cols) {                                                           \
    case 5:                                                                   \
        FN(scatter_tile)(dy, w, dxpad, c, c_in, m, oh, ow, kh, kw, wp, r0,    \
                         j0, q0, ROWS, 5, MASKED, mask);                      \
        break;                                                                \
    case 4:                                                                   \
        FN(scatter_tile)(dy, w, dxpad, c, c_in, m, oh, ow, kh, kw, wp, r0,    \
                         j0, q0, ROWS, 4, MASKED, mask);                      \
        break;                                                                \
    case 3:                                                                   \
        FN(scatter_tile)(dy, w, dxpad, c, c_in, m, oh, ow, kh, kw, wp, r0,    \
                         j0, q0, ROWS, 3, MASKED, mask);                      \
        break;                                                                \
    case 2:                                                                   \
        FN(scatter_tile)(dy, w, dxpad, c, c_in, m, oh, ow, kh, kw, wp, r0,    \
                         j0, q0, ROWS, 2, MASKED, mask);                      \
        break;                                                                \
    default:                                                                  \
        FN(scatter_tile)(dy, w, dxpad, c, c_in, m, oh, ow, kh, kw, wp, r0,    \
                         j0, q0, ROWS, 1, MASKED, mask);                      \
    }

/* Same contract as scatter_portable, AVX2+FMA. */
FG_TARGET_AVX2 static void
FN(scatter_avx2)(const T *dy, const T *w, T *dxpad, ptrdiff_t c,
                 ptrdiff_t c_in, ptrdiff_t m, ptrdiff_t oh, ptrdiff_t ow,
                 ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t wp)
{
    ptrdiff_t hp = oh + kh - 1, r0, j0, q0;
    ptrdiff_t full = ow - ow % FG_VL;
    __m256i mask = VMASK(ow % FG_VL);
    for (r0 = 0; r0 < hp; r0 += 2) {
        const int two = r0 + 1 < hp;
        for (j0 = 0; j0 < ow; j0 += FG_VL) {
            const int tail = j0 >= full;
            for (q0 = 0; q0 < kw; q0 += 5) {
                int cols = (int)FG_MIN(kw - q0, 5);
                if (two && !tail) {
                    FG_SCATTER_COLS(2, 0)
                }
                else if (two) {
                    FG_SCATTER_COLS(2, 1)
                }
                else if (!tail) {
                    FG_SCATTER_COLS(1, 0)
                }
                else {
                    FG_SCATTER_COLS(1, 1)
                }
            }
        }
    }
}
#undef FG_SCATTER_COLS
#endif

int FN(fg_conv2d_backward_input)(const T *dy, const T *weight, T *dx,
                                 ptrdiff_t n, ptrdiff_t c, ptrdiff_t h,
                                 ptrdiff_t w, ptrdiff_t m, ptrdiff_t kh,
                                 ptrdiff_t kw, ptrdiff_t pad_h,
                                 ptrdiff_t pad_w)
{
    ptrdiff_t oh = h + 2 * pad_h - kh + 1, ow = w + 2 * pad_w - kw + 1;
    ptrdiff_t hp = h + 2 * pad_h, wp = w + 2 * pad_w, job, n_jobs, groups;
    int padded = pad_h > 0 || pad_w > 0, failed = 0;
    double flops = 2.0 * (double)(n * m * oh * ow) * (double)(c * kh * kw);
    int n_threads = fg_conv_threads(flops);
    if (n == 0) {
        return 0;
    }
    (void)fg_conv_avx2();  /* resolve the dispatch outside threads */
    /* Jobs: (sample, channel group); channels split only for small n. */
    groups = (n_threads <= 1 || n >= 2 * n_threads)
             ? 1 : FG_MAX(1, FG_MIN(c, 2 * n_threads));
    n_jobs = n * groups;
    n_threads = (int)FG_MIN((ptrdiff_t)n_threads, n_jobs);
    #pragma omp parallel num_threads(n_threads) reduction(|:failed)
    {
        T *scratch = NULL;
        if (padded) {
            scratch = malloc((size_t)(hp * wp) * sizeof(T));
            failed |= scratch == NULL;
        }
        #pragma omp for schedule(dynamic, 1)
        for (job = 0; job < n_jobs; job++) {
            ptrdiff_t s = job / groups, g = job % groups, ci, i;
            ptrdiff_t c0 = c * g / groups, c1 = c * (g + 1) / groups;
            const T *gs = dy + s * m * oh * ow;
            if (padded && scratch == NULL) {
                continue;
            }
            for (ci = c0; ci < c1; ci++) {
                T *plane = dx + (s * c + ci) * h * w;
                T *dxpad = padded ? scratch : plane;
                memset(dxpad, 0, (size_t)(hp * wp) * sizeof(T));
#if FG_HAVE_X86_DISPATCH
                if (fg_conv_avx2()) {
                    FN(scatter_avx2)(gs, weight, dxpad, ci, c, m, oh, ow, kh,
                                     kw, wp);
                }
                else
#endif
                {
                    FN(scatter_portable)(gs, weight, dxpad, ci, c, m, oh, ow,
                                         kh, kw, wp);
                }
                if (padded) {
                    for (i = 0; i < h; i++) {
                        memcpy(plane + i * w,
                               dxpad + (i + pad_h) * wp + pad_w,
                               (size_t)w * sizeof(T));
                    }
                }
            }
        }
        free(scratch);
    }
    return failed ? -1 : 0;
}

#if FG_HAVE_X86_DISPATCH
/* Weight-gradient tile: for maps a and b (may be equal) and kernel columns
 * q0 .. q0+cols-1 of kernel row p of channel c, over `count` samples:
 * acc[q] = sum_{s,i,j} dy[s,map,i,j] * x[s,c,i+p,j+q0+q]. `xs` points at
 * x[0,c,p,q0], `da`/`db` at dy[0,a] and dy[0,b]; results go to oa[q], ob[q].
 */
FG_TARGET_AVX2 static inline __attribute__((always_inline)) void
FN(wgrad_tile)(const T *xs, ptrdiff_t x_sample, ptrdiff_t ld, const T *da,
               const T *db, ptrdiff_t dy_sample, ptrdiff_t oh, ptrdiff_t ow,
               ptrdiff_t count, const int cols, T *oa, T *ob)
{
    VEC acc_a[5], acc_b[5];
    ptrdiff_t s, i, j, full = ow - ow % FG_VL;
    __m256i mask = VMASK(ow % FG_VL);
    int q;
    for (q = 0; q < cols; q++) {
        acc_a[q] = VZERO();
        acc_b[q] = VZERO();
    }
    for (s = 0; s < count; s++) {
        for (i = 0; i < oh; i++) {
            const T *xr = xs + s * x_sample + i * ld;
            const T *ra = da + s * dy_sample + i * ow;
            const T *rb = db + s * dy_sample + i * ow;
            for (j = 0; j < full; j += FG_VL) {
                VEC ga = VLOADU(ra + j), gb = VLOADU(rb + j);
                for (q = 0; q < cols; q++) {
                    VEC x = VLOADU(xr + j + q);
                    acc_a[q] = VFMA(ga, x, acc_a[q]);
                    acc_b[q] = VFMA(gb, x, acc_b[q]);
                }
            }
            if (full < ow) {
                VEC ga = VMASKLOAD(ra + full, mask);
                VEC gb = VMASKLOAD(rb + full, mask);
                for (q = 0; q < cols; q++) {
                    VEC x = VMASKLOAD(xr + full + q, mask);
                    acc_a[q] = VFMA(ga, x, acc_a[q]);
                    acc_b[q] = VFMA(gb, x, acc_b[q]);
                }
            }
        }
    }
    for (q = 0; q < cols; q++) {
        ob[q] = FN(hsum)(acc_b[q]);
        oa[q] = FN(hsum)(acc_a[q]);
    }
}

/* partial[m,c,p,q] := sum over `count` samples of dy x xpad (AVX2). */
FG_TARGET_AVX2 static void
FN(wgrad_chunk_avx2)(const T *xp, ptrdiff_t c_in, ptrdiff_t hp, ptrdiff_t wp,
                     const T *dy, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t m,
                     ptrdiff_t oh, ptrdiff_t ow, ptrdiff_t kh, ptrdiff_t kw,
                     ptrdiff_t count, T *partial)
{
    ptrdiff_t mi, c, p, q0, x_sample = c_in * hp * wp, dy_sample = m * oh * ow;
    for (mi = m0; mi < m1; mi += 2) {
        ptrdiff_t mb = mi + 1 < m1 ? mi + 1 : mi;
        const T *da = dy + mi * oh * ow, *db = dy + mb * oh * ow;
        for (c = 0; c < c_in; c++) {
            for (p = 0; p < kh; p++) {
                const T *xs = xp + (c * hp + p) * wp;
                T *oa = partial + ((mi * c_in + c) * kh + p) * kw;
                T *ob = partial + ((mb * c_in + c) * kh + p) * kw;
                for (q0 = 0; q0 < kw; q0 += 5) {
                    switch (FG_MIN(kw - q0, 5)) {
                    case 5:
                        FN(wgrad_tile)(xs + q0, x_sample, wp, da, db,
                                       dy_sample, oh, ow, count, 5, oa + q0,
                                       ob + q0);
                        break;
                    case 4:
                        FN(wgrad_tile)(xs + q0, x_sample, wp, da, db,
                                       dy_sample, oh, ow, count, 4, oa + q0,
                                       ob + q0);
                        break;
                    case 3:
                        FN(wgrad_tile)(xs + q0, x_sample, wp, da, db,
                                       dy_sample, oh, ow, count, 3, oa + q0,
                                       ob + q0);
                        break;
                    case 2:
                        FN(wgrad_tile)(xs + q0, x_sample, wp, da, db,
                                       dy_sample, oh, ow, count, 2, oa + q0,
                                       ob + q0);
                        break;
                    default:
                        FN(wgrad_tile)(xs + q0, x_sample, wp, da, db,
                                       dy_sample, oh, ow, count, 1, oa + q0,
                                       ob + q0);
                    }
                }
            }
        }
    }
}
#endif

/* partial[m,c,p,q] := sum_{s<count} sum_{i,j} dy[s,m,i,j] xp[s,c,i+p,j+q]
 * for maps m0 <= m < m1 (portable C). */
static void FN(wgrad_chunk_portable)(const T *xp, ptrdiff_t c_in,
                                     ptrdiff_t hp, ptrdiff_t wp, const T *dy,
                                     ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t m,
                                     ptrdiff_t oh, ptrdiff_t ow, ptrdiff_t kh,
                                     ptrdiff_t kw, ptrdiff_t count,
                                     T *partial)
{
    ptrdiff_t mi, c, p, q, s, i, j;
    for (mi = m0; mi < m1; mi++) {
        for (c = 0; c < c_in; c++) {
            for (p = 0; p < kh; p++) {
                for (q = 0; q < kw; q++) {
                    T total = 0;
                    for (s = 0; s < count; s++) {
                        const T *g = dy + (s * m + mi) * oh * ow;
                        const T *xs = xp + ((s * c_in + c) * hp + p) * wp + q;
                        for (i = 0; i < oh; i++) {
                            for (j = 0; j < ow; j++) {
                                total += g[i * ow + j] * xs[i * wp + j];
                            }
                        }
                    }
                    partial[((mi * c_in + c) * kh + p) * kw + q] = total;
                }
            }
        }
    }
}

int FN(fg_conv2d_backward_weight)(const T *x, const T *dy, T *dweight,
                                  ptrdiff_t n, ptrdiff_t c, ptrdiff_t h,
                                  ptrdiff_t w, ptrdiff_t m, ptrdiff_t kh,
                                  ptrdiff_t kw, ptrdiff_t pad_h,
                                  ptrdiff_t pad_w)
{
    const ptrdiff_t chunk = FG_CONV_BATCH_CHUNK;
    ptrdiff_t oh = h + 2 * pad_h - kh + 1, ow = w + 2 * pad_w - kw + 1;
    ptrdiff_t hp = h + 2 * pad_h, wp = w + 2 * pad_w;
    ptrdiff_t size = m * c * kh * kw, n_chunks = (n + chunk - 1) / chunk;
    ptrdiff_t pairs = (m + 1) / 2, groups, n_jobs, job, e, k;
    int padded = pad_h > 0 || pad_w > 0, failed = 0;
    double flops = 2.0 * (double)(n * m * oh * ow) * (double)(c * kh * kw);
    int n_threads = fg_conv_threads(flops);
    T *partials;
    if (n_chunks == 0) {
        memset(dweight, 0, (size_t)size * sizeof(T));
        return 0;
    }
    partials = malloc((size_t)(n_chunks * size) * sizeof(T) + sizeof(T));
    if (partials == NULL) {
        return -1;
    }
    (void)fg_conv_avx2();  /* resolve the dispatch outside threads */
    groups = FN(map_groups)(n_chunks, m, n_threads);
    n_jobs = n_chunks * groups;
    n_threads = (int)FG_MIN((ptrdiff_t)n_threads, n_jobs);
    #pragma omp parallel num_threads(n_threads) reduction(|:failed)
    {
        T *scratch = NULL;
        if (padded) {
            scratch = malloc((size_t)(chunk * c * hp * wp) * sizeof(T)
                             + sizeof(T));
            failed |= scratch == NULL;
        }
        #pragma omp for schedule(dynamic, 1)
        for (job = 0; job < n_jobs; job++) {
            ptrdiff_t b = job / groups, g = job % groups;
            ptrdiff_t m0 = 2 * (pairs * g / groups);
            ptrdiff_t m1 = FG_MIN(m, 2 * (pairs * (g + 1) / groups));
            ptrdiff_t first = b * chunk, count = FG_MIN(chunk, n - first);
            const T *xs = x + first * c * h * w;
            if (padded && scratch == NULL) {
                continue;
            }
            if (padded) {
                FN(pad_planes)(xs, count * c, h, w, pad_h, pad_w, scratch);
                xs = scratch;
            }
#if FG_HAVE_X86_DISPATCH
            if (fg_conv_avx2()) {
                FN(wgrad_chunk_avx2)(xs, c, hp, wp, dy + first * m * oh * ow,
                                     m0, m1, m, oh, ow, kh, kw, count,
                                     partials + b * size);
                continue;
            }
#endif
            FN(wgrad_chunk_portable)(xs, c, hp, wp, dy + first * m * oh * ow,
                                     m0, m1, m, oh, ow, kh, kw, count,
                                     partials + b * size);
        }
        free(scratch);
    }
    if (!failed) {
        /* Chunk partials added in chunk order. */
        for (e = 0; e < size; e++) {
            T total = partials[e];
            for (k = 1; k < n_chunks; k++) {
                total += partials[k * size + e];
            }
            dweight[e] = total;
        }
    }
    free(partials);
    return failed ? -1 : 0;
}

int FN(fg_conv2d_backward_bias)(const T *dy, T *dbias, ptrdiff_t n,
                                ptrdiff_t m, ptrdiff_t plane)
{
    /* One thread per map; within a map: samples in order, eight running
     * lanes over the plane, lanes added in order. */
    ptrdiff_t mi;
    int n_threads = fg_conv_threads((double)(n * m * plane));
    #pragma omp parallel for schedule(static) num_threads(n_threads)
    for (mi = 0; mi < m; mi++) {
        T lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0}, total = 0;
        ptrdiff_t s, j;
        int k;
        for (s = 0; s < n; s++) {
            const T *g = dy + (s * m + mi) * plane;
            for (j = 0; j + 8 <= plane; j += 8) {
                for (k = 0; k < 8; k++) {
                    lanes[k] += g[j + k];
                }
            }
            for (k = 0; j < plane; j++, k++) {
                lanes[k] += g[j];
            }
        }
        for (k = 0; k < 8; k++) {
            total += lanes[k];
        }
        dbias[mi] = total;
    }
    return 0;
}

/* The mean pools see the planes stacked as one image of planes * h rows
 * (h is a multiple of scale): pooled row r averages input rows r * scale
 * .. r * scale + scale - 1. Tasks are bands of FG_POOL_ROWS pooled rows. */
int FN(fg_meanpool_forward)(const T *x, T *out, ptrdiff_t planes, ptrdiff_t h,
                            ptrdiff_t w, ptrdiff_t scale)
{
    const ptrdiff_t ow = w / scale, rows = planes * (h / scale);
    const ptrdiff_t n_bands = (rows + FG_POOL_ROWS - 1) / FG_POOL_ROWS;
    const T inv = (T)1 / (T)(scale * scale);
    const int vector = FG_F32 && scale == 2 && fg_conv_avx2();
    int n_threads = fg_conv_threads(FG_POOL_WORK_PER_ELEMENT
                                    * (double)(planes * h * w));
    ptrdiff_t band;
    #pragma omp parallel for schedule(static) num_threads(n_threads)
    for (band = 0; band < n_bands; band++) {
        const ptrdiff_t r0 = band * FG_POOL_ROWS;
        const ptrdiff_t n_rows = FG_MIN(rows - r0, FG_POOL_ROWS);
        const T *src = x + r0 * scale * w;
        T *dst = out + r0 * ow;
        ptrdiff_t i, j, a, b, done = 0;
#if FG_HAVE_X86_DISPATCH && FG_F32
        if (vector) {
            done = meanpool2_plane_avx2(src, dst, 2 * n_rows, w);
        }
#endif
        (void)vector;
        for (i = 0; i < n_rows; i++) {
            for (j = done; j < ow; j++) {
                const T *block = src + i * scale * w + j * scale;
                T total = 0;
                if (scale == 2) {
                    total = (block[0] + block[1]) + (block[w] + block[w + 1]);
                }
                else {
                    for (a = 0; a < scale; a++) {
                        for (b = 0; b < scale; b++) {
                            total += block[a * w + b];
                        }
                    }
                }
                dst[i * ow + j] = total * inv;
            }
        }
    }
    return 0;
}

int FN(fg_meanpool_backward)(const T *dy, const T *y, int act, T *dx,
                             ptrdiff_t planes, ptrdiff_t h, ptrdiff_t w,
                             ptrdiff_t scale)
{
    const ptrdiff_t ow = w / scale, rows = planes * (h / scale);
    const ptrdiff_t n_bands = (rows + FG_POOL_ROWS - 1) / FG_POOL_ROWS;
    const T inv = (T)1 / (T)(scale * scale);
    const int vector = FG_F32 && scale == 2 && fg_conv_avx2();
    int n_threads = fg_conv_threads((FG_POOL_WORK_PER_ELEMENT
                                     + (y != NULL ? 3.0 : 0.0))
                                    * (double)(planes * h * w));
    ptrdiff_t band;
    #pragma omp parallel for schedule(static) num_threads(n_threads)
    for (band = 0; band < n_bands; band++) {
        const ptrdiff_t r0 = band * FG_POOL_ROWS;
        const ptrdiff_t n_rows = FG_MIN(rows - r0, FG_POOL_ROWS);
        const T *src = dy + r0 * ow;
        const T *out = y != NULL ? y + r0 * scale * w : NULL;
        T *dst = dx + r0 * scale * w;
        ptrdiff_t i, j, a, b, done = 0;
#if FG_HAVE_X86_DISPATCH && FG_F32
        if (vector) {
            done = meanpool2_back_plane_avx2(src, out, act, dst, 2 * n_rows,
                                             w);
        }
#endif
        (void)vector;
        for (i = 0; i < n_rows; i++) {
            T *row = dst + i * scale * w;
            for (j = done; j < ow; j++) {
                const T value = src[i * ow + j] * inv;
                for (a = 0; a < scale; a++) {
                    for (b = 0; b < scale; b++) {
                        row[a * w + j * scale + b] = value;
                    }
                }
            }
            for (a = 0; out != NULL && done < ow && a < scale; a++) {
                T *rest = row + a * w + done * scale;
                FN(fg_act_backward_serial)(
                    act, out + (i * scale + a) * w + done * scale, rest, rest,
                    (size_t)((ow - done) * scale));
            }
        }
    }
    return 0;
}

int FN(fg_maxpool2x2_forward)(const T *x, T *out, int64_t *argmax,
                              ptrdiff_t planes, ptrdiff_t h, ptrdiff_t w)
{
    ptrdiff_t k, oh = h / 2, ow = w / 2;
    int n_threads = fg_conv_threads(FG_POOL_WORK_PER_ELEMENT
                                    * (double)(planes * h * w));
    #pragma omp parallel for schedule(static) num_threads(n_threads)
    for (k = 0; k < planes; k++) {
        const T *src = x + k * h * w;
        ptrdiff_t i, j;
        for (i = 0; i < oh; i++) {
            for (j = 0; j < ow; j++) {
                ptrdiff_t at = 2 * i * w + 2 * j, best = at;
                /* Window order (0,0) (0,1) (1,0) (1,1); strict > keeps the
                 * first maximum. */
                if (src[at + 1] > src[best]) {
                    best = at + 1;
                }
                if (src[at + w] > src[best]) {
                    best = at + w;
                }
                if (src[at + w + 1] > src[best]) {
                    best = at + w + 1;
                }
                out[(k * oh + i) * ow + j] = src[best];
                argmax[(k * oh + i) * ow + j] = (int64_t)best;
            }
        }
    }
    return 0;
}

int FN(fg_maxpool2x2_backward)(const T *dy, const int64_t *argmax, T *dx,
                               ptrdiff_t planes, ptrdiff_t h, ptrdiff_t w)
{
    ptrdiff_t k, oh = h / 2, ow = w / 2;
    int n_threads = fg_conv_threads(FG_POOL_WORK_PER_ELEMENT
                                    * (double)(planes * h * w));
    int bad = 0;
    #pragma omp parallel for schedule(static) num_threads(n_threads) \
        reduction(|:bad)
    for (k = 0; k < planes; k++) {
        T *dst = dx + k * h * w;
        ptrdiff_t e;
        memset(dst, 0, (size_t)(h * w) * sizeof(T));
        for (e = 0; e < oh * ow; e++) {
            int64_t at = argmax[k * oh * ow + e];
            if (at < 0 || at >= (int64_t)(h * w)) {
                bad = 1;  /* the wrapper raises */
                continue;
            }
            dst[at] += dy[k * oh * ow + e];
        }
    }
    return bad ? -2 : 0;
}

#undef T
#endif /* FG_CONV_TEMPLATE */
