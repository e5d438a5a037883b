/* Fused activation forward and backward, elementwise, OpenMP over chunks.
 * Each element is computed by exactly one thread, so results do not depend
 * on the thread count. */
#include "_eltwise.h"
#include "_omp.h"

/* Derivatives from the output y (cheaper and saves the input):
 * sigmoid: y (1 - y); tanh: 1 - y^2;
 * tanh_opt: a b (1 - (y/a)^2) = (b/a) (a^2 - y^2); relu: [y > 0]. */
#define FG_DEFINE_ELTWISE(T, SUFFIX, ACT)                                     \
void fg_act_forward_##SUFFIX(int act, const T *x, T *y, size_t n)             \
{                                                                             \
    ptrdiff_t i, count = (ptrdiff_t)n;                                        \
    int n_threads = fg_threads_for(8.0 * (double)n);                          \
    _Pragma("omp parallel for schedule(static) num_threads(n_threads)")       \
    for (i = 0; i < count; i++)                                               \
        y[i] = ACT(act, x[i]);                                                \
}                                                                             \
                                                                              \
void fg_act_backward_##SUFFIX(int act, const T *y, const T *dy, T *dx,        \
                              size_t n)                                       \
{                                                                             \
    ptrdiff_t i, count = (ptrdiff_t)n;                                        \
    const T a = (T)FG_TANH_OPT_A, b_over_a = (T)(FG_TANH_OPT_B / FG_TANH_OPT_A); \
    int n_threads = fg_threads_for(2.0 * (double)n);                          \
    switch (act) {                                                            \
    case FG_ACT_SIGMOID:                                                      \
        _Pragma("omp parallel for schedule(static) num_threads(n_threads)")   \
        for (i = 0; i < count; i++)                                           \
            dx[i] = dy[i] * y[i] * ((T)1 - y[i]);                             \
        break;                                                                \
    case FG_ACT_TANH:                                                         \
        _Pragma("omp parallel for schedule(static) num_threads(n_threads)")   \
        for (i = 0; i < count; i++)                                           \
            dx[i] = dy[i] * ((T)1 - y[i] * y[i]);                             \
        break;                                                                \
    case FG_ACT_TANH_OPT:                                                     \
        _Pragma("omp parallel for schedule(static) num_threads(n_threads)")   \
        for (i = 0; i < count; i++)                                           \
            dx[i] = dy[i] * b_over_a * (a * a - y[i] * y[i]);                 \
        break;                                                                \
    case FG_ACT_RELU:                                                         \
        _Pragma("omp parallel for schedule(static) num_threads(n_threads)")   \
        for (i = 0; i < count; i++)                                           \
            dx[i] = y[i] > (T)0 ? dy[i] : (T)0;                               \
        break;                                                                \
    default:                                                                  \
        _Pragma("omp parallel for schedule(static) num_threads(n_threads)")   \
        for (i = 0; i < count; i++)                                           \
            dx[i] = dy[i];                                                    \
    }                                                                         \
}

FG_DEFINE_ELTWISE(float, f32, fg_act_f32)
FG_DEFINE_ELTWISE(double, f64, fg_act_f64)
