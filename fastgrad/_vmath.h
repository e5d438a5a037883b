/*
 * Vector math for float32 AVX2 paths: exp, and the activations built on it.
 * Include only where FG_HAVE_X86_DISPATCH is 1 (after "_simd.h"); every
 * function needs FG_TARGET_AVX2 callers on CPUs with AVX2 and FMA.
 */
#ifndef FASTGRAD_VMATH_H
#define FASTGRAD_VMATH_H

#include <immintrin.h>

#include "_eltwise.h"
#include "_simd.h"

/* exp(x) for 8 floats: Cephes' expf (range reduction by ln 2 in two parts,
 * degree-5 polynomial, 2^n from the exponent bits); relative error about
 * 2e-7 over the clamped range [-88.38, 88.38]. */
FG_TARGET_AVX2 static inline __m256 fg_exp_ps(__m256 x)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 n, r, poly;
    __m256i bits;
    /* The clamp keeps a NaN (max/min return their second operand when
     * either is NaN), so exp(NaN) and the activations stay NaN. */
    x = _mm256_min_ps(_mm256_set1_ps(88.3762626647949f),
                      _mm256_max_ps(_mm256_set1_ps(-88.3762626647949f), x));
    n = _mm256_floor_ps(_mm256_fmadd_ps(
        x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    poly = _mm256_set1_ps(1.9875691500e-4f);
    poly = _mm256_fmadd_ps(poly, r, _mm256_set1_ps(1.3981999507e-3f));
    poly = _mm256_fmadd_ps(poly, r, _mm256_set1_ps(8.3334519073e-3f));
    poly = _mm256_fmadd_ps(poly, r, _mm256_set1_ps(4.1665795894e-2f));
    poly = _mm256_fmadd_ps(poly, r, _mm256_set1_ps(1.6666665459e-1f));
    poly = _mm256_fmadd_ps(poly, r, _mm256_set1_ps(5.0000001201e-1f));
    poly = _mm256_fmadd_ps(poly, _mm256_mul_ps(r, r), _mm256_add_ps(r, one));
    bits = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvttps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(poly, _mm256_castsi256_ps(bits));
}

/* tanh(x) = sign(x) (1 - 2 / (exp(2|x|) + 1)); absolute error below 1e-7
 * (relative error grows near 0, where tanh(x) ~ x is tiny). */
FG_TARGET_AVX2 static inline __m256 fg_tanh_ps(__m256 x)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 ax = _mm256_andnot_ps(sign, x);
    __m256 e = fg_exp_ps(_mm256_add_ps(ax, ax));
    __m256 t = _mm256_sub_ps(
        one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, one)));
    return _mm256_or_ps(t, _mm256_and_ps(sign, x));
}

/* The activation `act` (enum fg_activation) of 8 floats. */
FG_TARGET_AVX2 static inline __m256 fg_act_ps(__m256 v, int act)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    switch (act) {
    case FG_ACT_SIGMOID:
        return _mm256_div_ps(
            one, _mm256_add_ps(one, fg_exp_ps(_mm256_sub_ps(
                                        _mm256_setzero_ps(), v))));
    case FG_ACT_TANH:
        return fg_tanh_ps(v);
    case FG_ACT_TANH_OPT:
        return _mm256_mul_ps(
            _mm256_set1_ps((float)FG_TANH_OPT_A),
            fg_tanh_ps(_mm256_mul_ps(_mm256_set1_ps((float)FG_TANH_OPT_B),
                                     v)));
    case FG_ACT_RELU:
        return _mm256_max_ps(v, _mm256_setzero_ps());
    default:
        return v;
    }
}

#endif
