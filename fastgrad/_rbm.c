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
#include <string.h>

#include "_rbm.h"
#include "_philox.h"
#include "_omp.h"
#include "_simd.h"
#include "_gemm.h"

#if FG_HAVE_X86_DISPATCH
#include <immintrin.h>
#endif

/* Elements per chunk of the fill kernels (a multiple of 4 that divides
 * 2^32, so a chunk never straddles a carry into counter word c1). */
#define FG_RNG_CHUNK 1024
/* Philox blocks per buffer of the Gibbs sampler. */
#define FG_GIBBS_BLOCKS 256

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
 * Block Gibbs sampling of a binary RBM: each half-step is one GEMM with the
 * bias and the sigmoid fused (fg_gemm_bias_act, _gemm.h), then a parallel
 * pass over rows that draws the Bernoulli samples.
 * ---------------------------------------------------------------------- */

#define FG_DEFINE_GIBBS(T, SUFFIX)                                            \
/* samples[i, j] := [U < probs[i, j]], U word j % 4 of Philox((j / 4,        \
 * row_offset + i, step, counter), (k0, k1)). */                              \
static void                                                                   \
sample_rows_##SUFFIX(const T *probs, T *samples, size_t rows, size_t cols,    \
                     uint32_t k0, uint32_t k1, uint32_t row_offset,           \
                     uint32_t step, uint32_t counter)                         \
{                                                                             \
    ptrdiff_t i, n_rows = (ptrdiff_t)rows;                                    \
    int n_threads = fg_threads_for(16.0 * (double)rows * (double)cols);      \
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
    }                                                                         \
}                                                                             \
                                                                              \
/* k steps of block Gibbs sampling from v0 (see _rbm.h). */                   \
void                                                                          \
fg_rbm_gibbs_##SUFFIX(size_t batch, size_t n_vis, size_t n_hid, const T *v0, \
                      const T *weight, const T *vis_bias,                     \
                      const T *hid_bias, int k, uint64_t seed,                \
                      uint32_t counter, uint32_t row_offset, T *h0_probs,     \
                      T *h0_samples, T *vk_probs, T *vk_samples,              \
                      T *hk_probs, T *hk_samples, T *scratch)                 \
{                                                                             \
    const uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);         \
    const ptrdiff_t m = (ptrdiff_t)batch, nv = (ptrdiff_t)n_vis;              \
    const ptrdiff_t nh = (ptrdiff_t)n_hid;                                    \
    const T *hidden = h0_samples;                                             \
    int t;                                                                    \
    if (batch == 0)                                                           \
        return;                                                               \
    /* h0 = sigmoid(v0 W^T + c) */                                            \
    fg_gemm_bias_act_##SUFFIX(0, 1, m, nh, nv, (T)1, v0, nv, weight, nv,     \
                              (T)0, h0_probs, nh, hid_bias,                   \
                              FG_ACT_SIGMOID);                                \
    if (h0_samples != NULL)                                                   \
        sample_rows_##SUFFIX(h0_probs, h0_samples, batch, n_hid, k0, k1,     \
                             row_offset, 0, counter);                         \
    for (t = 1; t <= k; t++) {                                                \
        /* the last hidden sample only when asked for (hk_samples) */       \
        T *h_out = t < k && hk_samples == NULL ? scratch : hk_samples;       \
        /* vt = sigmoid(h(t-1) W + b) */                                      \
        fg_gemm_bias_act_##SUFFIX(0, 0, m, nv, nh, (T)1, hidden, nh, weight, \
                                  nv, (T)0, vk_probs, nv, vis_bias,           \
                                  FG_ACT_SIGMOID);                            \
        sample_rows_##SUFFIX(vk_probs, vk_samples, batch, n_vis, k0, k1,     \
                             row_offset, (uint32_t)(2 * t - 1), counter);     \
        /* ht = sigmoid(vt W^T + c) */                                        \
        fg_gemm_bias_act_##SUFFIX(0, 1, m, nh, nv, (T)1, vk_samples, nv,     \
                                  weight, nv, (T)0, hk_probs, nh, hid_bias,   \
                                  FG_ACT_SIGMOID);                            \
        if (h_out != NULL)                                                    \
            sample_rows_##SUFFIX(hk_probs, h_out, batch, n_hid, k0, k1,      \
                                 row_offset, (uint32_t)(2 * t), counter);     \
        hidden = h_out;                                                       \
    }                                                                         \
}                                                                             \
                                                                              \
/* Contrastive-divergence update with momentum (see _rbm.h). */              \
void                                                                          \
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
    ptrdiff_t i, j;                                                           \
    int n_threads;                                                            \
    T beta = mom;                                                             \
    if (decay != (T)0) {                                                      \
        /* V := momentum V - lr wd W */                                       \
        n_threads = fg_threads_for((double)n_weights);                        \
        _Pragma("omp parallel for schedule(static) num_threads(n_threads)")   \
        for (i = 0; i < n_weights; i++)                                       \
            weight_velocity[i] = mom * weight_velocity[i]                     \
                                 - decay * weight[i];                         \
        beta = (T)1;                                                          \
    }                                                                         \
    /* V := beta V + lr/B h0^T v0 - lr/B hk^T vk */                           \
    fg_gemm_##SUFFIX(1, 0, nh, nv, m, scale, h0, nh, v0, nv, beta,            \
                     weight_velocity, nv);                                    \
    fg_gemm_##SUFFIX(1, 0, nh, nv, m, -scale, hk, nh, vk, nv, (T)1,           \
                     weight_velocity, nv);                                    \
    /* W += V; biases: column sums over the batch, each column summed in      \
     * row order by one thread. One parallel region for both. */              \
    n_threads = fg_threads_for((double)n_weights                              \
                               + 2.0 * (double)m * (double)(nv + nh));        \
    _Pragma("omp parallel num_threads(n_threads)")                            \
    {                                                                         \
        _Pragma("omp for schedule(static) nowait")                            \
        for (i = 0; i < n_weights; i++)                                       \
            weight[i] += weight_velocity[i];                                  \
        _Pragma("omp for schedule(static)")                                   \
        for (j = 0; j < nv + nh; j++) {                                       \
            const T *pos = j < nv ? v0 + j : h0 + (j - nv);                   \
            const T *neg = j < nv ? vk + j : hk + (j - nv);                   \
            const ptrdiff_t stride = j < nv ? nv : nh;                        \
            T *bias = j < nv ? vis_bias + j : hid_bias + (j - nv);            \
            T *velocity = j < nv ? vis_velocity + j                           \
                                 : hid_velocity + (j - nv);                   \
            T sum = (T)0;                                                     \
            ptrdiff_t r;                                                      \
            for (r = 0; r < m; r++)                                           \
                sum += pos[r * stride] - neg[r * stride];                     \
            *velocity = mom * *velocity + scale * sum;                        \
            *bias += *velocity;                                               \
        }                                                                     \
    }                                                                         \
}

FG_DEFINE_GIBBS(float, f32)
FG_DEFINE_GIBBS(double, f64)
