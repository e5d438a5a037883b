/* Fused activation forward and backward, elementwise, OpenMP over chunks.
 * Each element is computed by exactly one thread, so results do not depend
 * on the thread count. */
#include <string.h>

#include "_eltwise.h"
#include "_omp.h"
#include "_simd.h"
#if FG_HAVE_X86_DISPATCH
#include "_vmath.h"
#endif

/* Elements per unit of parallel work; a region is entered only when more
 * than one thread is used (entering one costs microseconds even then). */
#define FG_ELTWISE_CHUNK 4096
#define FG_MIN_INDEX(a, b) ((a) < (b) ? (a) : (b))

#if FG_HAVE_X86_DISPATCH
/* Eight values at a time; a tail of fewer than eight goes through a padded
 * buffer, so every value takes the vector path whatever n is. */
FG_TARGET_AVX2 static void act_apply_avx2(int act, const float *x,
                                          const float *bias, float *y,
                                          ptrdiff_t n)
{
    ptrdiff_t i;
    float tail_x[8] = {0}, tail_bias[8] = {0};
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        if (bias != NULL)
            v = _mm256_add_ps(v, _mm256_loadu_ps(bias + i));
        _mm256_storeu_ps(y + i, fg_act_ps(v, act));
    }
    if (i < n) {
        memcpy(tail_x, x + i, (size_t)(n - i) * sizeof(float));
        if (bias != NULL)
            memcpy(tail_bias, bias + i, (size_t)(n - i) * sizeof(float));
        act_apply_avx2(act, tail_x, bias != NULL ? tail_bias : NULL, tail_x,
                       8);
        memcpy(y + i, tail_x, (size_t)(n - i) * sizeof(float));
    }
}
#endif

void fg_act_apply_f32(int act, const float *x, const float *bias, float *y,
                      ptrdiff_t n)
{
    ptrdiff_t i;
#if FG_HAVE_X86_DISPATCH
    static int has_avx2 = -1;
    if (has_avx2 < 0)
        has_avx2 = fg_cpu_has_avx2();
    if (has_avx2 && act != FG_ACT_NONE) {
        act_apply_avx2(act, x, bias, y, n);
        return;
    }
#endif
    for (i = 0; i < n; i++)
        y[i] = fg_act_f32(act, bias != NULL ? x[i] + bias[i] : x[i]);
}

void fg_act_apply_f64(int act, const double *x, const double *bias,
                      double *y, ptrdiff_t n)
{
    ptrdiff_t i;
    for (i = 0; i < n; i++)
        y[i] = fg_act_f64(act, bias != NULL ? x[i] + bias[i] : x[i]);
}

/* Derivatives from the output y (cheaper and saves the input):
 * sigmoid: y (1 - y); tanh: 1 - y^2;
 * tanh_opt: a b (1 - (y/a)^2) = (b/a) (a^2 - y^2); relu: [y > 0]. */
#define FG_DEFINE_ELTWISE(T, SUFFIX)                                          \
static void forward_range_##SUFFIX(int act, const T *x, T *y,                 \
                                   ptrdiff_t begin, ptrdiff_t end)            \
{                                                                             \
    fg_act_apply_##SUFFIX(act, x + begin, NULL, y + begin, end - begin);      \
}                                                                             \
                                                                              \
static void backward_range_##SUFFIX(int act, const T *y, const T *dy, T *dx,  \
                                    ptrdiff_t begin, ptrdiff_t end)           \
{                                                                             \
    const T a = (T)FG_TANH_OPT_A;                                             \
    const T b_over_a = (T)(FG_TANH_OPT_B / FG_TANH_OPT_A);                    \
    ptrdiff_t i;                                                              \
    switch (act) {                                                            \
    case FG_ACT_SIGMOID:                                                      \
        for (i = begin; i < end; i++)                                         \
            dx[i] = dy[i] * y[i] * ((T)1 - y[i]);                             \
        break;                                                                \
    case FG_ACT_TANH:                                                         \
        for (i = begin; i < end; i++)                                         \
            dx[i] = dy[i] * ((T)1 - y[i] * y[i]);                             \
        break;                                                                \
    case FG_ACT_TANH_OPT:                                                     \
        for (i = begin; i < end; i++)                                         \
            dx[i] = dy[i] * b_over_a * (a * a - y[i] * y[i]);                 \
        break;                                                                \
    case FG_ACT_RELU:                                                         \
        for (i = begin; i < end; i++)                                         \
            dx[i] = y[i] > (T)0 ? dy[i] : (T)0;                               \
        break;                                                                \
    default:                                                                  \
        for (i = begin; i < end; i++)                                         \
            dx[i] = dy[i];                                                    \
    }                                                                         \
}                                                                             \
                                                                              \
void fg_act_backward_serial_##SUFFIX(int act, const T *y, const T *dy, T *dx,  \
                                     size_t n)                                \
{                                                                             \
    backward_range_##SUFFIX(act, y, dy, dx, 0, (ptrdiff_t)n);                 \
}                                                                             \
                                                                              \
void fg_act_forward_##SUFFIX(int act, const T *x, T *y, size_t n)             \
{                                                                             \
    ptrdiff_t chunk, count = (ptrdiff_t)n;                                    \
    ptrdiff_t n_chunks = (count + FG_ELTWISE_CHUNK - 1) / FG_ELTWISE_CHUNK;   \
    int n_threads = fg_threads_for(8.0 * (double)n);                          \
    if (n_threads == 1) {                                                     \
        forward_range_##SUFFIX(act, x, y, 0, count);                          \
        return;                                                               \
    }                                                                         \
    _Pragma("omp parallel for schedule(static) num_threads(n_threads)")       \
    for (chunk = 0; chunk < n_chunks; chunk++)                                \
        forward_range_##SUFFIX(act, x, y, chunk * FG_ELTWISE_CHUNK,           \
                               FG_MIN_INDEX((chunk + 1) * FG_ELTWISE_CHUNK,   \
                                            count));                          \
}                                                                             \
                                                                              \
void fg_act_backward_##SUFFIX(int act, const T *y, const T *dy, T *dx,        \
                              size_t n)                                       \
{                                                                             \
    ptrdiff_t chunk, count = (ptrdiff_t)n;                                    \
    ptrdiff_t n_chunks = (count + FG_ELTWISE_CHUNK - 1) / FG_ELTWISE_CHUNK;   \
    int n_threads = fg_threads_for(2.0 * (double)n);                          \
    if (n_threads == 1) {                                                     \
        backward_range_##SUFFIX(act, y, dy, dx, 0, count);                    \
        return;                                                               \
    }                                                                         \
    _Pragma("omp parallel for schedule(static) num_threads(n_threads)")       \
    for (chunk = 0; chunk < n_chunks; chunk++)                                \
        backward_range_##SUFFIX(act, y, dy, dx, chunk * FG_ELTWISE_CHUNK,     \
                                FG_MIN_INDEX((chunk + 1) * FG_ELTWISE_CHUNK,  \
                                             count));                         \
}

FG_DEFINE_ELTWISE(float, f32)
FG_DEFINE_ELTWISE(double, f64)
