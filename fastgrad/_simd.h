/*
 * Run-time SIMD dispatch, behind one macro with a portable default.
 *
 * FG_TARGET_AVX2 marks a function compiled for AVX2+FMA; call it only when
 * fg_cpu_has_avx2() says the CPU has it. FG_TARGET_AVX512 likewise. On
 * compilers without GCC/Clang target attributes the macros are empty and the
 * checks return 0, so only the portable C paths run.
 */
#ifndef FASTGRAD_SIMD_H
#define FASTGRAD_SIMD_H
#include <stdint.h>
#include <stdlib.h>

#if (defined(__GNUC__) || defined(__clang__)) && \
    (defined(__x86_64__) || defined(__i386__))
#define FG_HAVE_X86_DISPATCH 1
#define FG_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define FG_TARGET_AVX512 __attribute__((target("avx512f,avx2,fma")))
static inline int fg_cpu_has_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
/* FASTGRAD_NO_AVX512 set (not empty) in the environment when the first
 * kernel runs turns the AVX-512 paths off: the AVX2 ones are then run and
 * tested on an AVX-512 machine too. */
static inline int fg_cpu_has_avx512(void)
{
    static int has = -1;   /* the same value whichever thread sets it */
    if (has < 0) {
        const char *off = getenv("FASTGRAD_NO_AVX512");
        __builtin_cpu_init();
        has = __builtin_cpu_supports("avx512f") && !(off && off[0]);
    }
    return has;
}
#else
#define FG_HAVE_X86_DISPATCH 0
#define FG_TARGET_AVX2
#define FG_TARGET_AVX512
static inline int fg_cpu_has_avx2(void) { return 0; }
static inline int fg_cpu_has_avx512(void) { return 0; }
#endif

#if FG_HAVE_X86_DISPATCH
#include <immintrin.h>

/* Transpose 8 rows of 8 floats in place (r[q] becomes column q). */
FG_TARGET_AVX2 static inline void fg_transpose8_ps(__m256 *r)
{
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]);
    __m256 t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]);
    __m256 t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]);
    __m256 t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]);
    __m256 t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

/* Transpose 4 rows of 4 doubles in place. */
FG_TARGET_AVX2 static inline void fg_transpose4_pd(__m256d *r)
{
    __m256d t0 = _mm256_unpacklo_pd(r[0], r[1]);  /* 00 10 02 12 */
    __m256d t1 = _mm256_unpackhi_pd(r[0], r[1]);  /* 01 11 03 13 */
    __m256d t2 = _mm256_unpacklo_pd(r[2], r[3]);  /* 20 30 22 32 */
    __m256d t3 = _mm256_unpackhi_pd(r[2], r[3]);  /* 21 31 23 33 */
    r[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
    r[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
    r[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
    r[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
}
#endif

/* Alignment of packed and scratch buffers: a cache line, so that vector
 * loads of 64-byte rows never straddle two lines. */
#define FG_ALIGN 64
/* malloc aligned to FG_ALIGN bytes; the original pointer sits just before
 * the returned block. Free with fg_aligned_free. */
static inline void *fg_aligned_malloc(size_t bytes)
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

static inline void fg_aligned_free(void *block)
{
    if (block != NULL) {
        free(((void **)block)[-1]);
    }
}

#endif
