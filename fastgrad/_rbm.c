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

/* out[4 b + w] := word w of Philox((c0 + b, c1, c2, c3), (k0, k1)). */
void
fg_philox_blocks(uint32_t *out, size_t n_blocks, uint32_t c0, uint32_t c1,
                 uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1)
{
#if FG_HAVE_X86_DISPATCH
    if (fg_cpu_has_avx2()) {
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
