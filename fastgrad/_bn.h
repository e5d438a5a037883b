/*
 * Batch normalisation (Ioffe & Szegedy 2015) and ghost batch normalisation
 * (Hoffer, Hubara & Soudry 2017), forward and backward.
 *
 * Every kernel views its input as x[n_samples][n_channels][n_spatial]
 * (n_spatial = 1 for (N, C), H * W for (N, C, H, W)) and normalises each
 * channel over the samples and spatial positions of a group. In training
 * the samples are split into ghost batches of `ghost` consecutive samples
 * (the last one may be smaller; ghost >= n_samples gives one group, plain
 * batch normalisation); group g holds samples [g * ghost, min(n, (g + 1) *
 * ghost)). Statistics are per (group, channel): mean and invstd arrays are
 * (n_groups, n_channels), row major.
 *
 * Statistics are accumulated in double in one pass with shifted sums (the
 * shift is the group's first value of the channel, which keeps the
 * cancellation in sum(d^2) - sum(d)^2 / m small), and every channel is
 * processed by exactly one thread in a fixed order, so results are bitwise
 * identical for any thread count.
 *
 * The caller guarantees: every group has at least two values per channel
 * (training), ghost >= 1, arrays of the sizes stated, no aliasing of outputs
 * with inputs.
 */
#ifndef FASTGRAD_BN_H
#define FASTGRAD_BN_H
#include <stddef.h>

/* y := (x - mean_g) * invstd_g * weight + bias with the batch statistics of
 * each ghost batch g (biased variance, invstd = 1 / sqrt(var + eps));
 * mean, invstd := those statistics; when running_mean is not NULL:
 * running_mean := (1 - momentum) running_mean + momentum mean_B,
 * running_var := (1 - momentum) running_var + momentum var_B, where mean_B
 * is the batch mean and var_B the average over ghost batches, weighted by
 * their sizes, of the unbiased (m / (m - 1)) variance of each. */
void fg_bn_forward_train_f32(const float *x, const float *weight,
                             const float *bias, float *y, float *mean,
                             float *invstd, float *running_mean,
                             float *running_var, size_t n_samples,
                             size_t n_channels, size_t n_spatial,
                             size_t ghost, double momentum, double eps);
void fg_bn_forward_train_f64(const double *x, const double *weight,
                             const double *bias, double *y, double *mean,
                             double *invstd, double *running_mean,
                             double *running_var, size_t n_samples,
                             size_t n_channels, size_t n_spatial,
                             size_t ghost, double momentum, double eps);

/* y := (x - running_mean) / sqrt(running_var + eps) * weight + bias. */
void fg_bn_forward_eval_f32(const float *x, const float *weight,
                            const float *bias, const float *running_mean,
                            const float *running_var, float *y,
                            size_t n_samples, size_t n_channels,
                            size_t n_spatial, double eps);
void fg_bn_forward_eval_f64(const double *x, const double *weight,
                            const double *bias, const double *running_mean,
                            const double *running_var, double *y,
                            size_t n_samples, size_t n_channels,
                            size_t n_spatial, double eps);

/* Exact VJP of the training forward through the batch statistics; per
 * group g of m values per channel, with xhat = (x - mean_g) invstd_g:
 * dx := weight invstd_g (dy - sum_g(dy) / m - xhat sum_g(dy xhat) / m),
 * dweight := sum(dy xhat), dbias := sum(dy) over all groups. */
void fg_bn_backward_train_f32(const float *x, const float *dy,
                              const float *weight, const float *mean,
                              const float *invstd, float *dx,
                              float *dweight, float *dbias,
                              size_t n_samples, size_t n_channels,
                              size_t n_spatial, size_t ghost);
void fg_bn_backward_train_f64(const double *x, const double *dy,
                              const double *weight, const double *mean,
                              const double *invstd, double *dx,
                              double *dweight, double *dbias,
                              size_t n_samples, size_t n_channels,
                              size_t n_spatial, size_t ghost);

/* VJP of the evaluation forward (statistics are constants), with
 * invstd = 1 / sqrt(running_var + eps): dx := dy weight invstd,
 * dweight := sum(dy (x - running_mean) invstd), dbias := sum(dy). */
void fg_bn_backward_eval_f32(const float *x, const float *dy,
                             const float *weight, const float *running_mean,
                             const float *running_var, float *dx,
                             float *dweight, float *dbias, size_t n_samples,
                             size_t n_channels, size_t n_spatial,
                             double eps);
void fg_bn_backward_eval_f64(const double *x, const double *dy,
                             const double *weight,
                             const double *running_mean,
                             const double *running_var, double *dx,
                             double *dweight, double *dbias,
                             size_t n_samples, size_t n_channels,
                             size_t n_spatial, double eps);

#endif
