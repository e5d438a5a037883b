/*
 * Counter-based samplers and the fused RBM Gibbs sampler (see _rbm.h).
 *
 * Random numbers: Philox4x32-10 (_philox.h). Work is split into fixed
 * chunks whose random numbers depend only on the element coordinates, so
 * any thread may take any chunk and the results never depend on the thread
 * count.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_rbm.h"
#include "_philox.h"
#include "_omp.h"
#include "_simd.h"
#include "_gemm.h"
#include "_sparse.h"

#if FG_HAVE_X86_DISPATCH
#include <immintrin.h>
#endif

/* Elements per chunk of the fill kernels (a multiple of 4 that divides
 * 2^32, so a chunk never straddles a carry into counter word c1). */
#define FG_RNG_CHUNK 1024
/* Philox blocks per buffer of the Gibbs sampler. */
#define FG_GIBBS_BLOCKS 256
/* Bias columns per task of the CD update. */
#define FG_BIAS_CHUNK 128

static void
philox_blocks_generic(uint32_t *out, size_t n_blocks, uint32_t c0,
                      uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0,
                      uint32_t k1)
{
    size_t b;
    for (b = 0; b < n_blocks; b++) {
        uint32_t x0 = c0 + (uint32_t)b, x1 = c1, x2 = c2, x3 = c3;
        fg_philox4x32_10(&x0, &x1, &x2, &x3, k0, k1);
        out[4 * b] = x0;
        out[4 * b + 1] = x1;
        out[4 * b + 2] = x2;
        out[4 * b + 3] = x3;
    }
}

#if FG_HAVE_X86_DISPATCH
/* Eight Philox blocks per iteration: lane l of x0..x3 is block b + l. The
 * 32 x 32 -> 64-bit products of the even and odd lanes are formed
 * separately (vpmuludq) and their halves recombined by blends. */
FG_TARGET_AVX2 static void
philox_blocks_avx2(uint32_t *out, size_t n_blocks, uint32_t c0, uint32_t c1,
                   uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1)
{
    const __m256i m0 = _mm256_set1_epi64x(FG_PHILOX_M0);
    const __m256i m1 = _mm256_set1_epi64x(FG_PHILOX_M1);
    const __m256i w0 = _mm256_set1_epi32((int)FG_PHILOX_W0);
    const __m256i w1 = _mm256_set1_epi32((int)FG_PHILOX_W1);
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    size_t b = 0;
    for (; b + 8 <= n_blocks; b += 8) {
        __m256i x0 = _mm256_add_epi32(
            _mm256_set1_epi32((int)(c0 + (uint32_t)b)), lane);
        __m256i x1 = _mm256_set1_epi32((int)c1);
        __m256i x2 = _mm256_set1_epi32((int)c2);
        __m256i x3 = _mm256_set1_epi32((int)c3);
        __m256i key0 = _mm256_set1_epi32((int)k0);
        __m256i key1 = _mm256_set1_epi32((int)k1);
        __m256i t0, t1, t2, t3, u0, u1, u2, u3;
        __m256i *dst = (__m256i *)(out + 4 * b);
        int round;
        for (round = 0; round < 10; round++) {
            __m256i pe0 = _mm256_mul_epu32(x0, m0);
            __m256i po0 = _mm256_mul_epu32(_mm256_srli_epi64(x0, 32), m0);
            __m256i pe1 = _mm256_mul_epu32(x2, m1);
            __m256i po1 = _mm256_mul_epu32(_mm256_srli_epi64(x2, 32), m1);
            __m256i lo0 = _mm256_blend_epi32(
                pe0, _mm256_slli_epi64(po0, 32), 0xAA);
            __m256i hi0 = _mm256_blend_epi32(
                _mm256_srli_epi64(pe0, 32), po0, 0xAA);
            __m256i lo1 = _mm256_blend_epi32(
                pe1, _mm256_slli_epi64(po1, 32), 0xAA);
            __m256i hi1 = _mm256_blend_epi32(
                _mm256_srli_epi64(pe1, 32), po1, 0xAA);
            x0 = _mm256_xor_si256(_mm256_xor_si256(hi1, x1), key0);
            x2 = _mm256_xor_si256(_mm256_xor_si256(hi0, x3), key1);
            x1 = lo1;
            x3 = lo0;
            key0 = _mm256_add_epi32(key0, w0);
            key1 = _mm256_add_epi32(key1, w1);
        }
        /* Transpose the 4 x 8 words into 8 consecutive blocks. */
        t0 = _mm256_unpacklo_epi32(x0, x1);
        t1 = _mm256_unpackhi_epi32(x0, x1);
        t2 = _mm256_unpacklo_epi32(x2, x3);
        t3 = _mm256_unpackhi_epi32(x2, x3);
        u0 = _mm256_unpacklo_epi64(t0, t2);  /* blocks 0 | 4 */
        u1 = _mm256_unpackhi_epi64(t0, t2);  /* blocks 1 | 5 */
        u2 = _mm256_unpacklo_epi64(t1, t3);  /* blocks 2 | 6 */
        u3 = _mm256_unpackhi_epi64(t1, t3);  /* blocks 3 | 7 */
        _mm256_storeu_si256(dst, _mm256_permute2x128_si256(u0, u1, 0x20));
        _mm256_storeu_si256(dst + 1,
                            _mm256_permute2x128_si256(u2, u3, 0x20));
        _mm256_storeu_si256(dst + 2,
                            _mm256_permute2x128_si256(u0, u1, 0x31));
        _mm256_storeu_si256(dst + 3,
                            _mm256_permute2x128_si256(u2, u3, 0x31));
    }
    philox_blocks_generic(out + 4 * b, n_blocks - b, c0 + (uint32_t)b, c1,
                          c2, c3, k0, k1);
}
#endif

/* 1 when the AVX2 generator may run, -1 before the first check. Set from
 * serial code only (philox_dispatch at the entry of each kernel), read in
 * parallel regions. */
static int fg_philox_avx2 = -1;

static void
philox_dispatch(void)
{
    if (fg_philox_avx2 < 0) {
        fg_philox_avx2 = fg_cpu_has_avx2();
    }
}

/* out[4 b + w] := word w of Philox((c0 + b, c1, c2, c3), (k0, k1)). */
void
fg_philox_blocks(uint32_t *out, size_t n_blocks, uint32_t c0, uint32_t c1,
                 uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1)
{
#if FG_HAVE_X86_DISPATCH
    if (fg_philox_avx2 < 0) {
        philox_dispatch();
    }
    if (fg_philox_avx2 > 0 && n_blocks >= 8) {
        philox_blocks_avx2(out, n_blocks, c0, c1, c2, c3, k0, k1);
        return;
    }
#endif
    philox_blocks_generic(out, n_blocks, c0, c1, c2, c3, k0, k1);
}

/* Random words of elements [start, start + n) of the fill stream, n <=
 * FG_RNG_CHUNK, start a multiple of 4 (see fg_uniform_fill_f32). */
static void
fill_words(uint32_t *words, uint64_t start, size_t n, uint64_t seed,
           uint64_t counter)
{
    uint64_t block = start / 4;
    fg_philox_blocks(words, (n + 3) / 4, (uint32_t)block,
                     (uint32_t)(block >> 32), (uint32_t)counter,
                     (uint32_t)(counter >> 32), (uint32_t)seed,
                     (uint32_t)(seed >> 32));
}

#define FG_DEFINE_FILL(T, SUFFIX)                                             \
/* out[i] := U(seed, counter, i). */                                        \
void                                                                          \
fg_uniform_fill_##SUFFIX(T *out, size_t n, uint64_t seed, uint64_t counter)  \
{                                                                             \
    ptrdiff_t chunk, n_chunks = (ptrdiff_t)((n + FG_RNG_CHUNK - 1)           \
                                            / FG_RNG_CHUNK);                  \
    int n_threads = fg_threads_for(16.0 * (double)n);                         \
    philox_dispatch();                                                        \
    _Pragma("omp parallel for schedule(static) num_threads(n_threads)")       \
    for (chunk = 0; chunk < n_chunks; chunk++) {                              \
        uint32_t words[FG_RNG_CHUNK];                                         \
        size_t start = (size_t)chunk * FG_RNG_CHUNK, i;                       \
        size_t len = n - start < FG_RNG_CHUNK ? n - start : FG_RNG_CHUNK;     \
        fill_words(words, start, len, seed, counter);                         \
        for (i = 0; i < len; i++)                                             \
            out[start + i] = fg_uniform_##SUFFIX(words[i]);                   \
    }                                                                         \
}                                                                             \
                                                                              \
/* out[i] := [U(seed, counter, i) >= fraction]. */                            \
void                                                                          \
fg_dropout_mask_##SUFFIX(T *out, size_t n, double fraction, uint64_t seed,   \
                         uint64_t counter)                                    \
{                                                                             \
    ptrdiff_t chunk, n_chunks = (ptrdiff_t)((n + FG_RNG_CHUNK - 1)           \
                                            / FG_RNG_CHUNK);                  \
    int n_threads = fg_threads_for(16.0 * (double)n);                         \
    philox_dispatch();                                                        \
    _Pragma("omp parallel for schedule(static) num_threads(n_threads)")       \
    for (chunk = 0; chunk < n_chunks; chunk++) {                              \
        uint32_t words[FG_RNG_CHUNK];                                         \
        size_t start = (size_t)chunk * FG_RNG_CHUNK, i;                       \
        size_t len = n - start < FG_RNG_CHUNK ? n - start : FG_RNG_CHUNK;     \
        fill_words(words, start, len, seed, counter);                         \
        for (i = 0; i < len; i++)                                             \
            out[start + i] = fg_uniform_f64(words[i]) >= fraction             \
                             ? (T)1 : (T)0;                                   \
    }                                                                         \
}

FG_DEFINE_FILL(float, f32)
FG_DEFINE_FILL(double, f64)

/* ------------------------------------------------------------------------
 * Block Gibbs sampling of a binary RBM: each half-step is one product with
 * the bias and the sigmoid fused, then a parallel pass over rows that draws
 * the Bernoulli samples. The product is a GEMM (fg_gemm_bias_act, _gemm.h)
 * or, when fewer than FG_SPARSE_MAX_DENSITY of its inputs are nonzero (data
 * pixels, sampled units), a sparse product that skips the zeros
 * (fg_sparse_rows_gemm, _sparse.h) and needs W^T for the visible-to-hidden
 * direction, transposed once per call when first needed (batches of at
 * least FG_SPARSE_MIN_ROWS_T rows).
 * ---------------------------------------------------------------------- */

/* Scratch of the sparse half-steps; all NULL when it could not be
 * allocated (then every half-step is a GEMM). */
struct gibbs_work {
    uint32_t *index;    /* batch x max(n_vis, n_hid) nonzero columns */
    void *value;        /* batch x max(n_vis, n_hid) their values */
    uint32_t *count;    /* batch */
    void *weight_t;     /* n_vis x ld_t: W^T, once transposed */
    size_t ld_t;        /* n_hid rounded up to whole FG_ALIGN-byte rows */
    int transposed;
};

static void
gibbs_work_free(struct gibbs_work *work)
{
    free(work->index);
    free(work->value);
    free(work->count);
    fg_aligned_free(work->weight_t);
}

static void
gibbs_work_init(struct gibbs_work *work, size_t batch, size_t n_vis,
                size_t n_hid, size_t item)
{
    size_t widest = n_vis > n_hid ? n_vis : n_hid;
    fg_sparse_dispatch();
    work->transposed = 0;
    work->index = NULL;
    work->value = NULL;
    work->count = NULL;
    work->weight_t = NULL;
    if (widest >= UINT32_MAX) {
        return;
    }
    work->ld_t = (n_hid * item + FG_ALIGN - 1) / FG_ALIGN * FG_ALIGN / item;
    work->index = malloc(batch * widest * sizeof(uint32_t));
    work->value = malloc(batch * widest * item);
    work->count = malloc(batch * sizeof(uint32_t));
    work->weight_t = fg_aligned_malloc(n_vis * work->ld_t * item);
    if (work->index == NULL || work->value == NULL || work->count == NULL
            || work->weight_t == NULL) {
        gibbs_work_free(work);
        work->index = NULL;
        work->value = NULL;
        work->count = NULL;
        work->weight_t = NULL;
    }
}

#define FG_DEFINE_GIBBS(T, SUFFIX)                                            \
/* samples[i, j] := [U < probs[i, j]], U word j % 4 of Philox((j / 4,        \
 * row_offset + i, step, counter), (k0, k1)). With `work` (else NULL), also \
 * the nonzeros of each sampled row, the input lists of the next half-step;  \
 * returns their number. */                                                  \
static size_t                                                                 \
sample_rows_##SUFFIX(const T *probs, T *samples, size_t rows, size_t cols,    \
                     uint32_t k0, uint32_t k1, uint32_t row_offset,           \
                     uint32_t step, uint32_t counter,                         \
                     struct gibbs_work *work)                                 \
{                                                                             \
    ptrdiff_t i, n_rows = (ptrdiff_t)rows;                                    \
    uint32_t *index = work != NULL ? work->index : NULL;                      \
    T *value = work != NULL ? (T *)work->value : NULL;                        \
    size_t total = 0;                                                         \
    int n_threads = fg_threads_for(20.0 * (double)rows * (double)cols);      \
    philox_dispatch();                                                        \
    _Pragma("omp parallel for schedule(static) num_threads(n_threads)")       \
    for (i = 0; i < n_rows; i++) {                                            \
        uint32_t words[4 * FG_GIBBS_BLOCKS];                                  \
        const T *p = probs + (size_t)i * cols;                                \
        T *s = samples + (size_t)i * cols;                                    \
        size_t start, j;                                                      \
        for (start = 0; start < cols; start += 4 * FG_GIBBS_BLOCKS) {         \
            size_t len = cols - start < 4 * FG_GIBBS_BLOCKS                   \
                         ? cols - start : 4 * FG_GIBBS_BLOCKS;                \
            fg_philox_blocks(words, (len + 3) / 4, (uint32_t)(start / 4),     \
                             row_offset + (uint32_t)i, step, counter, k0,     \
                             k1);                                             \
            for (j = 0; j < len; j++)                                         \
                s[start + j] = fg_uniform_##SUFFIX(words[j]) < p[start + j]   \
                               ? (T)1 : (T)0;                                 \
        }                                                                     \
        if (index != NULL)                                                    \
            work->count[i] = fg_nonzeros_##SUFFIX(                           \
                s, cols, index + (size_t)i * cols, value + (size_t)i * cols); \
    }                                                                         \
    if (index != NULL)                                                        \
        for (i = 0; i < n_rows; i++)                                          \
            total += work->count[i];                                          \
    return total;                                                             \
}                                                                             \
                                                                              \
/* probs := sigmoid(inputs W^T + c) (to_hidden) or sigmoid(inputs W + b),    \
 * inputs (batch, n_in); sparse when few inputs are nonzero. `listed`: the   \
 * number of nonzeros when work already lists those of `inputs`, else -1. */ \
static void                                                                   \
half_step_##SUFFIX(struct gibbs_work *work, size_t batch, size_t n_vis,      \
                   size_t n_hid, int to_hidden, const T *inputs,              \
                   const T *weight, const T *bias, T *probs, double listed)   \
{                                                                             \
    const size_t n_in = to_hidden ? n_vis : n_hid;                            \
    const size_t n_out = to_hidden ? n_hid : n_vis;                           \
    if (work->index != NULL && (!to_hidden                                    \
                                || batch >= FG_SPARSE_MIN_ROWS_T)) {          \
        double nonzeros = listed >= 0 ? listed : (double)                     \
            fg_row_nonzeros_##SUFFIX(inputs, batch, n_in, work->index,        \
                                     (T *)work->value, work->count);          \
        if (nonzeros < FG_SPARSE_MAX_DENSITY * (double)batch                  \
                       * (double)n_in) {                                      \
            const T *rows = weight;                                           \
            size_t ld = n_vis;                                                \
            if (to_hidden) {                                                  \
                if (!work->transposed)                                        \
                    fg_transpose_##SUFFIX(n_hid, n_vis, weight,               \
                                          (T *)work->weight_t, work->ld_t);   \
                work->transposed = 1;                                         \
                rows = (const T *)work->weight_t;                             \
                ld = work->ld_t;                                              \
            }                                                                 \
            fg_sparse_rows_gemm_##SUFFIX(batch, n_out, n_in, work->index,     \
                                         (const T *)work->value, work->count, \
                                         rows, ld, bias, FG_ACT_SIGMOID,      \
                                         probs);                              \
            return;                                                           \
        }                                                                     \
    }                                                                         \
    fg_gemm_bias_act_##SUFFIX(0, to_hidden, (ptrdiff_t)batch,                 \
                              (ptrdiff_t)n_out, (ptrdiff_t)n_in, (T)1,        \
                              inputs, (ptrdiff_t)n_in, weight,                \
                              (ptrdiff_t)n_vis, (T)0, probs,                  \
                              (ptrdiff_t)n_out, bias, FG_ACT_SIGMOID);        \
}                                                                             \
                                                                              \
/* k steps of block Gibbs sampling from v0 (see _rbm.h). The sampling of    \
 * each half-step lists the nonzeros of its samples for the next one. */     \
void                                                                          \
fg_rbm_gibbs_##SUFFIX(size_t batch, size_t n_vis, size_t n_hid, const T *v0, \
                      const T *weight, const T *vis_bias,                     \
                      const T *hid_bias, int k, uint64_t seed,                \
                      uint32_t counter, uint32_t row_offset, T *h0_probs,     \
                      T *h0_samples, T *vk_probs, T *vk_samples,              \
                      T *hk_probs, T *hk_samples, T *scratch)                 \
{                                                                             \
    const uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);         \
    const T *hidden = h0_samples;                                             \
    struct gibbs_work work;                                                   \
    struct gibbs_work *lists;                                                 \
    double listed = -1.0;                                                     \
    int t;                                                                    \
    if (batch == 0)                                                           \
        return;                                                               \
    gibbs_work_init(&work, batch, n_vis, n_hid, sizeof(T));                   \
    lists = work.index != NULL ? &work : NULL;                                \
    /* h0 = sigmoid(v0 W^T + c) */                                            \
    half_step_##SUFFIX(&work, batch, n_vis, n_hid, 1, v0, weight, hid_bias,  \
                       h0_probs, -1.0);                                       \
    if (h0_samples != NULL)                                                   \
        listed = (double)sample_rows_##SUFFIX(                                \
            h0_probs, h0_samples, batch, n_hid, k0, k1, row_offset, 0,        \
            counter, k > 0 ? lists : NULL);                                   \
    for (t = 1; t <= k; t++) {                                                \
        /* the last hidden sample only when asked for (hk_samples) */       \
        T *h_out = t < k && hk_samples == NULL ? scratch : hk_samples;       \
        /* vt = sigmoid(h(t-1) W + b) */                                      \
        half_step_##SUFFIX(&work, batch, n_vis, n_hid, 0, hidden, weight,    \
                           vis_bias, vk_probs, lists ? listed : -1.0);        \
        listed = (double)sample_rows_##SUFFIX(                                \
            vk_probs, vk_samples, batch, n_vis, k0, k1, row_offset,           \
            (uint32_t)(2 * t - 1), counter, lists);                           \
        /* ht = sigmoid(vt W^T + c) */                                        \
        half_step_##SUFFIX(&work, batch, n_vis, n_hid, 1, vk_samples,        \
                           weight, hid_bias, hk_probs, lists ? listed : -1.0);\
        if (h_out != NULL)                                                    \
            listed = (double)sample_rows_##SUFFIX(                            \
                hk_probs, h_out, batch, n_hid, k0, k1, row_offset,            \
                (uint32_t)(2 * t), counter, t < k ? lists : NULL);            \
        hidden = h_out;                                                       \
    }                                                                         \
    gibbs_work_free(&work);                                                   \
}                                                                             \
                                                                              \
/* The number of nonzeros of a[0 .. n) (an integer sum: the same for any   \
 * thread count). */                                                          \
static size_t                                                                 \
count_nonzeros_##SUFFIX(const T *a, size_t n)                                 \
{                                                                             \
    ptrdiff_t i, count = 0;                                                   \
    int n_threads = fg_threads_for(8.0 * (double)n);                          \
    _Pragma("omp parallel for reduction(+:count) num_threads(n_threads)")    \
    for (i = 0; i < (ptrdiff_t)n; i++)                                        \
        count += a[i] != (T)0;                                                \
    return (size_t)count;                                                     \
}                                                                             \
                                                                              \
/* Contrastive-divergence update with momentum (see _rbm.h). */              \
double                                                                        \
fg_rbm_cd_update_##SUFFIX(size_t batch, size_t n_vis, size_t n_hid,          \
                          const T *v0, const T *h0, const T *vk,              \
                          const T *hk, T *weight, T *vis_bias, T *hid_bias,   \
                          T *weight_velocity, T *vis_velocity,                \
                          T *hid_velocity, double learning_rate,              \
                          double momentum, double weight_decay)               \
{                                                                             \
    const ptrdiff_t m = (ptrdiff_t)batch, nv = (ptrdiff_t)n_vis;              \
    const ptrdiff_t nh = (ptrdiff_t)n_hid;                                    \
    const ptrdiff_t n_weights = nh * nv;                                      \
    const T mom = (T)momentum, decay = (T)(learning_rate * weight_decay);     \
    const T scale = batch > 0 ? (T)(learning_rate / (double)batch) : (T)0;   \
    const ptrdiff_t n_bias_chunks = (nv + FG_BIAS_CHUNK - 1) / FG_BIAS_CHUNK  \
                                    + (nh + FG_BIAS_CHUNK - 1)                \
                                      / FG_BIAS_CHUNK;                        \
    ptrdiff_t i, j;                                                           \
    int n_threads;                                                            \
    T beta = mom;                                                             \
    /* squared differences of v0 and vk, per column */                       \
    double *squares = malloc((size_t)(nv > 0 ? nv : 1) * sizeof(double));   \
    double error = 0.0;                                                       \
    /* the weights by the sparse kernel when v0 and vk have few nonzeros    \
     * and the batch is large enough to pay for its transposed tiles */      \
    const int sparse = batch >= FG_SPARSE_MIN_ROWS_T && batch < UINT32_MAX    \
        && (double)(count_nonzeros_##SUFFIX(v0, batch * n_vis)                \
                    + count_nonzeros_##SUFFIX(vk, batch * n_vis))             \
           < FG_SPARSE_CD_MAX_DENSITY * 2.0 * (double)batch * (double)n_vis  \
        && fg_sparse_cd_weights_##SUFFIX(batch, n_vis, n_hid, v0, h0, vk,    \
                                         hk, weight, weight_velocity, mom,    \
                                         decay, scale) == 0;                  \
    if (!sparse && decay != (T)0) {                                           \
        /* V := momentum V - lr wd W */                                       \
        n_threads = fg_threads_for((double)n_weights);                        \
        _Pragma("omp parallel for schedule(static) num_threads(n_threads)")   \
        for (i = 0; i < n_weights; i++)                                       \
            weight_velocity[i] = mom * weight_velocity[i]                     \
                                 - decay * weight[i];                         \
        beta = (T)1;                                                          \
    }                                                                         \
    if (!sparse) {                                                            \
        /* V := beta V + lr/B h0^T v0 - lr/B hk^T vk */                       \
        fg_gemm_##SUFFIX(1, 0, nh, nv, m, scale, h0, nh, v0, nv, beta,        \
                         weight_velocity, nv);                                \
        fg_gemm_##SUFFIX(1, 0, nh, nv, m, -scale, hk, nh, vk, nv, (T)1,       \
                         weight_velocity, nv);                                \
    }                                                                         \
    /* W += V; biases: column sums over the batch, each column summed in      \
     * row order by one thread (rows outer, so the loads are contiguous).     \
     * One parallel region for both. */                                       \
    /* memory-bound passes: ~8 flops' time per element read */               \
    n_threads = fg_threads_for(8.0 * ((sparse ? 0.0 : 2.0 * (double)n_weights)\
                                      + 2.0 * (double)m * (double)(nv + nh)));\
    _Pragma("omp parallel num_threads(n_threads)")                            \
    {                                                                         \
        if (!sparse) {                                                        \
            _Pragma("omp for schedule(static) nowait")                        \
            for (i = 0; i < n_weights; i++)                                   \
                weight[i] += weight_velocity[i];                              \
        }                                                                     \
        _Pragma("omp for schedule(static)")                                   \
        for (j = 0; j < n_bias_chunks; j++) {                                 \
            /* chunk j: FG_BIAS_CHUNK columns of b (first) or of c */        \
            const ptrdiff_t vis_chunks = (nv + FG_BIAS_CHUNK - 1)             \
                                         / FG_BIAS_CHUNK;                     \
            const int visible = j < vis_chunks;                               \
            const ptrdiff_t width = visible ? nv : nh;                        \
            const ptrdiff_t c0 = (visible ? j : j - vis_chunks)               \
                                 * FG_BIAS_CHUNK;                             \
            const ptrdiff_t len = width - c0 < FG_BIAS_CHUNK                  \
                                  ? width - c0 : FG_BIAS_CHUNK;               \
            const T *pos = (visible ? v0 : h0) + c0;                          \
            const T *neg = (visible ? vk : hk) + c0;                          \
            T *bias = (visible ? vis_bias : hid_bias) + c0;                   \
            T *velocity = (visible ? vis_velocity : hid_velocity) + c0;       \
            T sum[FG_BIAS_CHUNK];                                             \
            double square[FG_BIAS_CHUNK];                                     \
            ptrdiff_t r, c;                                                   \
            for (c = 0; c < len; c++) {                                       \
                sum[c] = (T)0;                                                \
                square[c] = 0.0;                                              \
            }                                                                 \
            for (r = 0; r < m; r++)                                           \
                for (c = 0; c < len; c++)                                     \
                    sum[c] += pos[r * width + c] - neg[r * width + c];        \
            if (visible && squares != NULL) {                                 \
                for (r = 0; r < m; r++)                                       \
                    for (c = 0; c < len; c++) {                               \
                        const double d = (double)pos[r * width + c]           \
                                         - (double)neg[r * width + c];        \
                        square[c] += d * d;                                   \
                    }                                                         \
                for (c = 0; c < len; c++)                                     \
                    squares[c0 + c] = square[c];                              \
            }                                                                 \
            for (c = 0; c < len; c++) {                                       \
                velocity[c] = mom * velocity[c] + scale * sum[c];             \
                bias[c] += velocity[c];                                       \
            }                                                                 \
        }                                                                     \
    }                                                                         \
    if (squares == NULL) {  /* out of memory: the error in one serial pass */ \
        for (i = 0; i < m * nv; i++)                                          \
            error += ((double)v0[i] - (double)vk[i])                          \
                     * ((double)v0[i] - (double)vk[i]);                       \
        return error;                                                         \
    }                                                                         \
    for (j = 0; j < nv; j++)                                                  \
        error += squares[j];                                                  \
    free(squares);                                                            \
    return error;                                                             \
}

FG_DEFINE_GIBBS(float, f32)
FG_DEFINE_GIBBS(double, f64)
