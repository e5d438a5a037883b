/* Fused activation forward and backward, elementwise, OpenMP over chunks.
 * Each element is computed by exactly one thread, so results do not depend
 * on the thread count. */
#include "_eltwise.h"
#include "_omp.h"

/* Elements per unit of parallel work; a region is entered only when more
 * than one thread is used (entering one costs microseconds even then). */
#define FG_ELTWISE_CHUNK 4096
#define FG_MIN_INDEX(a, b) ((a) < (b) ? (a) : (b))

/* Derivatives from the output y (cheaper and saves the input):
 * sigmoid: y (1 - y); tanh: 1 - y^2;
 * tanh_opt: a b (1 - (y/a)^2) = (b/a) (a^2 - y^2); relu: [y > 0]. */
#define FG_DEFINE_ELTWISE(T, SUFFIX, ACT)                                     \
static void forward_range_##SUFFIX(int act, const T *x, T *y,                 \
                                   ptrdiff_t begin, ptrdiff_t end)            \
{                                                                             \
    ptrdiff_t i;                                                              \
    for (i = begin; i < end; i++)                                             \
        y[i] = ACT(act, x[i]);                                                \
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

FG_DEFINE_ELTWISE(float, f32, fg_act_f32)
FG_DEFINE_ELTWISE(double, f64, fg_act_f64)
