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
static inline int fg_cpu_has_avx512(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}
#else
#define FG_HAVE_X86_DISPATCH 0
#define FG_TARGET_AVX2
#define FG_TARGET_AVX512
static inline int fg_cpu_has_avx2(void) { return 0; }
static inline int fg_cpu_has_avx512(void) { return 0; }
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
