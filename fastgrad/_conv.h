/*
 * Convolution and subsampling kernels: NCHW, stride 1, zero padding.
 *
 * conv2d is a cross-correlation (PyTorch's convention):
 *   y[n,m,i,j] = b[m] + sum_{c,p,q} w[m,c,p,q] * xpad[n,c,i+p,j+q]
 * with xpad the input zero-padded by (pad_h, pad_w) on each side, so
 * OH = H + 2 pad_h - KH + 1 and OW = W + 2 pad_w - KW + 1.
 *
 * Every function returns 0, or -1 when a scratch buffer could not be
 * allocated (the caller raises MemoryError), or -2 from
 * maxpool2x2_backward when an argmax index lies outside its plane.
 * Results are bitwise identical for any thread count: each output element
 * is computed by one thread in a fixed order, and the batch reduction of
 * the weight gradient runs over fixed chunks of FG_CONV_BATCH_CHUNK samples
 * whose partials are added in chunk order.
 */
#ifndef FASTGRAD_CONV_H
#define FASTGRAD_CONV_H
#include <stddef.h>
#include <stdint.h>

/* Samples per partial sum of the weight gradient (independent of threads). */
#define FG_CONV_BATCH_CHUNK 4

#define FG_CONV_DECLARE(T, SFX)                                               \
int fg_conv2d_forward_##SFX(const T *x, const T *weight, const T *bias,       \
                            T *out, ptrdiff_t n, ptrdiff_t c, ptrdiff_t h,    \
                            ptrdiff_t w, ptrdiff_t m, ptrdiff_t kh,           \
                            ptrdiff_t kw, ptrdiff_t pad_h, ptrdiff_t pad_w,   \
                            int act);                                         \
int fg_conv2d_backward_input_##SFX(const T *dy, const T *weight, T *dx,       \
                                   ptrdiff_t n, ptrdiff_t c, ptrdiff_t h,     \
                                   ptrdiff_t w, ptrdiff_t m, ptrdiff_t kh,    \
                                   ptrdiff_t kw, ptrdiff_t pad_h,             \
                                   ptrdiff_t pad_w);                          \
int fg_conv2d_backward_weight_##SFX(const T *x, const T *dy, T *dweight,      \
                                    ptrdiff_t n, ptrdiff_t c, ptrdiff_t h,    \
                                    ptrdiff_t w, ptrdiff_t m, ptrdiff_t kh,   \
                                    ptrdiff_t kw, ptrdiff_t pad_h,            \
                                    ptrdiff_t pad_w);                         \
int fg_conv2d_backward_bias_##SFX(const T *dy, T *dbias, ptrdiff_t n,         \
                                  ptrdiff_t m, ptrdiff_t plane);              \
int fg_meanpool_forward_##SFX(const T *x, T *out, ptrdiff_t planes,           \
                              ptrdiff_t h, ptrdiff_t w, ptrdiff_t scale);     \
int fg_meanpool_backward_##SFX(const T *dy, const T *y, int act, T *dx,      \
                               ptrdiff_t planes, ptrdiff_t h, ptrdiff_t w,    \
                               ptrdiff_t scale);                              \
int fg_maxpool2x2_forward_##SFX(const T *x, T *out, int64_t *argmax,          \
                                ptrdiff_t planes, ptrdiff_t h, ptrdiff_t w);  \
int fg_maxpool2x2_backward_##SFX(const T *dy, const int64_t *argmax, T *dx,   \
                                 ptrdiff_t planes, ptrdiff_t h, ptrdiff_t w);

/* conv2d_forward:         out := act(conv(x, weight) + bias), bias may be
 *                         NULL, act an enum fg_activation (_eltwise.h)
 * conv2d_backward_input:  dx[n,c,h,w] := sum_{m,p,q} dy[n,m,h+pad_h-p,
 *                                        w+pad_w-q] * weight[m,c,p,q]
 * conv2d_backward_weight: dweight[m,c,p,q] := sum_{n,i,j} dy[n,m,i,j]
 *                                             * xpad[n,c,i+p,j+q]
 * conv2d_backward_bias:   dbias[m] := sum_{n,i,j} dy[n,m,i,j]
 * meanpool_forward:       out[k,i,j] := mean of the scale x scale block
 *                                       x[k, i*scale.., j*scale..]
 * meanpool_backward:      dx[k,h,w] := dy[k,h/scale,w/scale] / scale^2,
 *                         times act'(y[k,h,w]) when y is not NULL (the
 *                         backward of act(conv) followed by the pool, in
 *                         one pass; act' from the output as _eltwise.h)
 * maxpool2x2_forward:     out[k,i,j] := max of x[k,2i..2i+1,2j..2j+1],
 *                         argmax := flat index h*w_in+w of the first max
 * maxpool2x2_backward:    dx := 0; dx[k, argmax[k,i,j]] += dy[k,i,j]
 * The pools work on `planes` = N*C planes of h x w. */
FG_CONV_DECLARE(float, f32)
FG_CONV_DECLARE(double, f64)

#endif
