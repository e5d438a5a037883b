/*
 * Philox4x32-10, the counter-based random number generator of Salmon,
 * Moraes, Dror and Shaw, "Parallel random numbers: as easy as 1, 2, 3"
 * (SC 2011). A pure function of a 128-bit counter and a 64-bit key:
 * each call gives four independent 32-bit words, so any element of a
 * random stream can be computed on its own, by any thread, in any order.
 *
 * fastgrad keys it by the user's seed (key = seed, 64 bits) and puts the
 * call counter and the element's coordinates in the counter words. The
 * published known-answer vectors (Random123's kat_vectors) are checked in
 * tests/test_philox.py.
 */
#ifndef FASTGRAD_PHILOX_H
#define FASTGRAD_PHILOX_H
#include <stdint.h>

#define FG_PHILOX_M0 UINT32_C(0xD2511F53)
#define FG_PHILOX_M1 UINT32_C(0xCD9E8D57)
#define FG_PHILOX_W0 UINT32_C(0x9E3779B9)  /* golden ratio */
#define FG_PHILOX_W1 UINT32_C(0xBB67AE85)  /* sqrt(3) - 1 */

/* (c0..c3) := Philox4x32-10((c0..c3), (k0, k1)), in place. */
static inline void
fg_philox4x32_10(uint32_t *c0, uint32_t *c1, uint32_t *c2, uint32_t *c3,
                 uint32_t k0, uint32_t k1)
{
    uint32_t x0 = *c0, x1 = *c1, x2 = *c2, x3 = *c3;
    int round;
    for (round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)FG_PHILOX_M0 * x0;
        uint64_t p1 = (uint64_t)FG_PHILOX_M1 * x2;
        uint32_t y0 = (uint32_t)(p1 >> 32) ^ x1 ^ k0;
        uint32_t y2 = (uint32_t)(p0 >> 32) ^ x3 ^ k1;
        x1 = (uint32_t)p1;
        x3 = (uint32_t)p0;
        x0 = y0;
        x2 = y2;
        k0 += FG_PHILOX_W0;
        k1 += FG_PHILOX_W1;
    }
    *c0 = x0;
    *c1 = x1;
    *c2 = x2;
    *c3 = x3;
}

/* Uniform in [0, 1) from a 32-bit word: (x >> 8) 2^-24, exact in float32
 * and float64, so both dtypes see the same numbers. */
static inline float fg_uniform_f32(uint32_t x)
{
    return (float)(x >> 8) * 0x1p-24f;
}

static inline double fg_uniform_f64(uint32_t x)
{
    return (double)(x >> 8) * 0x1p-24;
}

#endif
