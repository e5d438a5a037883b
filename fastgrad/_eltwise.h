#ifndef FASTGRAD_ELTWISE_H
#define FASTGRAD_ELTWISE_H
#include <stddef.h>

/* Activation codes shared by every kernel with an activation epilogue. */
enum fg_activation {
    FG_ACT_NONE = 0,
    FG_ACT_SIGMOID = 1,
    FG_ACT_TANH = 2,
    FG_ACT_TANH_OPT = 3,  /* 1.7159 * tanh(2/3 x), LeCun et al. 1998 */
    FG_ACT_RELU = 4
};

/* y := f(x), elementwise over n values (y may equal x). */
void fg_act_forward_f32(int act, const float *x, float *y, size_t n);
void fg_act_forward_f64(int act, const double *x, double *y, size_t n);

/* dx := dy * f'(x), with f' computed from the output y = f(x). */
void fg_act_backward_f32(int act, const float *y, const float *dy, float *dx,
                         size_t n);
void fg_act_backward_f64(int act, const double *y, const double *dy,
                         double *dx, size_t n);
/* The same on the calling thread (dx may equal dy): for kernels that run
 * it inside their own parallel loops. */
void fg_act_backward_serial_f32(int act, const float *y, const float *dy,
                                float *dx, size_t n);
void fg_act_backward_serial_f64(int act, const double *y, const double *dy,
                                double *dx, size_t n);

/* y := f(x + bias) over n values, bias per element (NULL: none), y may equal
 * x: the row epilogue of fused kernels (the GEMM's bias and activation) and
 * the body of fg_act_forward_*, so both give the same bits. float32 runs
 * AVX2 code where the CPU has it; each value's result depends only on the
 * value, not on its position or on n. */
void fg_act_apply_f32(int act, const float *x, const float *bias, float *y,
                      ptrdiff_t n);
void fg_act_apply_f64(int act, const double *x, const double *bias,
                      double *y, ptrdiff_t n);

/* Scalar forms (the portable path). */
static inline float fg_act_f32(int act, float v);
static inline double fg_act_f64(int act, double v);

#include <math.h>
#define FG_TANH_OPT_A 1.7159
#define FG_TANH_OPT_B (2.0 / 3.0)

static inline float fg_act_f32(int act, float v)
{
    switch (act) {
    case FG_ACT_SIGMOID:
        return 1.0f / (1.0f + expf(-v));
    case FG_ACT_TANH:
        return tanhf(v);
    case FG_ACT_TANH_OPT:
        return (float)FG_TANH_OPT_A * tanhf((float)FG_TANH_OPT_B * v);
    case FG_ACT_RELU:
        return v > 0.0f ? v : 0.0f;
    default:
        return v;
    }
}

static inline double fg_act_f64(int act, double v)
{
    switch (act) {
    case FG_ACT_SIGMOID:
        return 1.0 / (1.0 + exp(-v));
    case FG_ACT_TANH:
        return tanh(v);
    case FG_ACT_TANH_OPT:
        return FG_TANH_OPT_A * tanh(FG_TANH_OPT_B * v);
    case FG_ACT_RELU:
        return v > 0.0 ? v : 0.0;
    default:
        return v;
    }
}

#endif
