/*
 * Batch normalisation and ghost batch normalisation kernels (see _bn.h for
 * the math and the layout).
 *
 * Parallelism: the channels are cut into fixed blocks (FG_BN_BLOCK channels
 * in the (N, C) layout, where a row of channels is contiguous and the inner
 * loops run over channels; one channel in the (N, C, H, W) layout, where a
 * spatial map is contiguous and the inner loops run over it). A block is
 * handled by one thread from start to end, and every sum runs in a fixed
 * order that depends only on the shapes, so any thread count gives the same
 * bits. All arithmetic is in double; float32 data is converted on load.
 *
 * The body below is a template instantiated for float and double: this file
 * includes itself twice with FG_BN_T (the element type) and FG_BN_SFX (the
 * name suffix) defined.
 */
#ifndef FG_BN_T

#include <math.h>

#include "_bn.h"
#include "_omp.h"

/* Channels per parallel task in the (N, C) layout. */
#define FG_BN_BLOCK 64

#define FG_BN_CAT2(a, b) a##_##b
#define FG_BN_CAT(a, b) FG_BN_CAT2(a, b)
#define FG_BN_NAME(name) FG_BN_CAT(name, FG_BN_SFX)

/* Samples [*n0, *n1) of ghost batch `group`. */
static inline void
fg_bn_group_rows(size_t group, size_t ghost, size_t n_samples, size_t *n0,
                 size_t *n1)
{
    *n0 = group * ghost;
    *n1 = *n0 + ghost < n_samples ? *n0 + ghost : n_samples;
}

/* Blocks of channels: width FG_BN_BLOCK when rows of channels are
 * contiguous (n_spatial == 1), else one channel per block. */
static inline size_t
fg_bn_block_width(size_t n_spatial)
{
    return n_spatial == 1 ? FG_BN_BLOCK : 1;
}

#define FG_BN_T float
#define FG_BN_SFX f32
#include "_bn.c"
#undef FG_BN_T
#undef FG_BN_SFX

#define FG_BN_T double
#define FG_BN_SFX f64
#include "_bn.c"
#undef FG_BN_T
#undef FG_BN_SFX

#else  /* template body, FG_BN_T and FG_BN_SFX defined */

#define T FG_BN_T

/* s1 += sum(p[i] - shift), s2 += sum((p[i] - shift)^2), i < len; four
 * fixed lanes (combined in a fixed order) to hide the add latency. */
static inline void
FG_BN_NAME(fg_bn_sum_shifted)(const T *p, size_t len, double shift,
                              double *s1, double *s2)
{
    double a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;
    size_t i = 0;
    for (; i + 4 <= len; i += 4) {
        double d0 = (double)p[i] - shift, d1 = (double)p[i + 1] - shift;
        double d2 = (double)p[i + 2] - shift, d3 = (double)p[i + 3] - shift;
        a0 += d0;
        a1 += d1;
        a2 += d2;
        a3 += d3;
        b0 += d0 * d0;
        b1 += d1 * d1;
        b2 += d2 * d2;
        b3 += d3 * d3;
    }
    for (; i < len; i++) {
        double d = (double)p[i] - shift;
        a0 += d;
        b0 += d * d;
    }
    *s1 += (a0 + a1) + (a2 + a3);
    *s2 += (b0 + b1) + (b2 + b3);
}

/* Shifted sums of channels [c0, c0 + width) over samples [n0, n1):
 * shift[j] := x[n0, c0 + j, 0], s1[j] := sum(x - shift[j]),
 * s2[j] := sum((x - shift[j])^2). */
static void
FG_BN_NAME(fg_bn_block_sums)(const T *x, size_t n_channels, size_t n_spatial,
                             size_t n0, size_t n1, size_t c0, size_t width,
                             double *shift, double *s1, double *s2)
{
    size_t i, j;
    for (j = 0; j < width; j++) {
        shift[j] = (double)x[(n0 * n_channels + c0 + j) * n_spatial];
        s1[j] = 0.0;
        s2[j] = 0.0;
    }
    if (n_spatial == 1) {
        for (i = n0; i < n1; i++) {
            const T *row = x + i * n_channels + c0;
            for (j = 0; j < width; j++) {
                double d = (double)row[j] - shift[j];
                s1[j] += d;
                s2[j] += d * d;
            }
        }
        return;
    }
    for (j = 0; j < width; j++) {
        for (i = n0; i < n1; i++) {
            const T *map = x + (i * n_channels + c0 + j) * n_spatial;
            FG_BN_NAME(fg_bn_sum_shifted)(map, n_spatial, shift[j], &s1[j],
                                          &s2[j]);
        }
    }
}

/* y := (x - mu[j]) * scale[j] + beta[j] for channels [c0, c0 + width) and
 * samples [n0, n1). */
static void
FG_BN_NAME(fg_bn_block_affine)(const T *x, T *y, size_t n_channels,
                               size_t n_spatial, size_t n0, size_t n1,
                               size_t c0, size_t width, const double *mu,
                               const double *scale, const double *beta)
{
    size_t i, j, k;
    if (n_spatial == 1) {
        for (i = n0; i < n1; i++) {
            const T *row = x + i * n_channels + c0;
            T *out = y + i * n_channels + c0;
            for (j = 0; j < width; j++)
                out[j] = (T)(((double)row[j] - mu[j]) * scale[j] + beta[j]);
        }
        return;
    }
    for (j = 0; j < width; j++) {
        for (i = n0; i < n1; i++) {
            size_t offset = (i * n_channels + c0 + j) * n_spatial;
            const T *map = x + offset;
            T *out = y + offset;
            for (k = 0; k < n_spatial; k++)
                out[k] = (T)(((double)map[k] - mu[j]) * scale[j] + beta[j]);
        }
    }
}

/* sdy[j] := sum(dy), sdyx[j] := sum(dy (x - mu[j])) for channels
 * [c0, c0 + width) and samples [n0, n1). */
static void
FG_BN_NAME(fg_bn_block_grad_sums)(const T *x, const T *dy, size_t n_channels,
                                  size_t n_spatial, size_t n0, size_t n1,
                                  size_t c0, size_t width, const double *mu,
                                  double *sdy, double *sdyx)
{
    size_t i, j, k;
    for (j = 0; j < width; j++) {
        sdy[j] = 0.0;
        sdyx[j] = 0.0;
    }
    if (n_spatial == 1) {
        for (i = n0; i < n1; i++) {
            const T *row = x + i * n_channels + c0;
            const T *grow = dy + i * n_channels + c0;
            for (j = 0; j < width; j++) {
                double g = (double)grow[j];
                sdy[j] += g;
                sdyx[j] += g * ((double)row[j] - mu[j]);
            }
        }
        return;
    }
    for (j = 0; j < width; j++) {
        for (i = n0; i < n1; i++) {
            size_t offset = (i * n_channels + c0 + j) * n_spatial;
            const T *map = x + offset, *gmap = dy + offset;
            double a0 = 0, a1 = 0, b0 = 0, b1 = 0;
            for (k = 0; k + 2 <= n_spatial; k += 2) {
                double g0 = (double)gmap[k], g1 = (double)gmap[k + 1];
                a0 += g0;
                a1 += g1;
                b0 += g0 * ((double)map[k] - mu[j]);
                b1 += g1 * ((double)map[k + 1] - mu[j]);
            }
            for (; k < n_spatial; k++) {
                double g = (double)gmap[k];
                a0 += g;
                b0 += g * ((double)map[k] - mu[j]);
            }
            sdy[j] += a0 + a1;
            sdyx[j] += b0 + b1;
        }
    }
}

/* dx := k1[j] dy - k0[j] - (x - mu[j]) k2[j] for channels [c0, c0 + width)
 * and samples [n0, n1). */
static void
FG_BN_NAME(fg_bn_block_dx)(const T *x, const T *dy, T *dx, size_t n_channels,
                           size_t n_spatial, size_t n0, size_t n1, size_t c0,
                           size_t width, const double *mu, const double *k0,
                           const double *k1, const double *k2)
{
    size_t i, j, k;
    if (n_spatial == 1) {
        for (i = n0; i < n1; i++) {
            size_t offset = i * n_channels + c0;
            const T *row = x + offset, *grow = dy + offset;
            T *out = dx + offset;
            for (j = 0; j < width; j++)
                out[j] = (T)(k1[j] * (double)grow[j] - k0[j]
                             - ((double)row[j] - mu[j]) * k2[j]);
        }
        return;
    }
    for (j = 0; j < width; j++) {
        for (i = n0; i < n1; i++) {
            size_t offset = (i * n_channels + c0 + j) * n_spatial;
            const T *map = x + offset, *gmap = dy + offset;
            T *out = dx + offset;
            for (k = 0; k < n_spatial; k++)
                out[k] = (T)(k1[j] * (double)gmap[k] - k0[j]
                             - ((double)map[k] - mu[j]) * k2[j]);
        }
    }
}

void
FG_BN_NAME(fg_bn_forward_train)(const T *x, const T *weight, const T *bias,
                                T *y, T *mean, T *invstd, T *running_mean,
                                T *running_var, size_t n_samples,
                                size_t n_channels, size_t n_spatial,
                                size_t ghost, double momentum, double eps)
{
    size_t width = fg_bn_block_width(n_spatial);
    size_t n_groups = (n_samples + ghost - 1) / ghost;
    ptrdiff_t block, n_blocks = (ptrdiff_t)((n_channels + width - 1) / width);
    int n_threads = fg_threads_for(12.0 * (double)n_samples
                                   * (double)n_channels * (double)n_spatial);

    (void)n_threads;  /* unused in a serial build */
    #pragma omp parallel for schedule(static) num_threads(n_threads)
    for (block = 0; block < n_blocks; block++) {
        double shift[FG_BN_BLOCK], s1[FG_BN_BLOCK], s2[FG_BN_BLOCK];
        double mu[FG_BN_BLOCK], scale[FG_BN_BLOCK], beta[FG_BN_BLOCK];
        double mean_sum[FG_BN_BLOCK], var_sum[FG_BN_BLOCK];
        size_t c0 = (size_t)block * width, group, j, n0, n1;
        size_t w = c0 + width <= n_channels ? width : n_channels - c0;

        for (j = 0; j < w; j++) {
            mean_sum[j] = 0.0;
            var_sum[j] = 0.0;
        }
        for (group = 0; group < n_groups; group++) {
            double m, count;
            fg_bn_group_rows(group, ghost, n_samples, &n0, &n1);
            count = (double)(n1 - n0);
            m = count * (double)n_spatial;
            FG_BN_NAME(fg_bn_block_sums)(x, n_channels, n_spatial, n0, n1,
                                         c0, w, shift, s1, s2);
            for (j = 0; j < w; j++) {
                size_t at = group * n_channels + c0 + j;
                double group_mean = shift[j] + s1[j] / m;
                double var = (s2[j] - s1[j] * s1[j] / m) / m;
                if (var < 0.0)
                    var = 0.0;  /* rounding of a constant channel */
                mean[at] = (T)group_mean;
                invstd[at] = (T)(1.0 / sqrt(var + eps));
                /* Normalise with the stored (rounded) statistics, so the
                 * backward pass sees exactly the xhat used here. */
                mu[j] = (double)mean[at];
                scale[j] = (double)weight[c0 + j] * (double)invstd[at];
                beta[j] = (double)bias[c0 + j];
                mean_sum[j] += count * group_mean;
                var_sum[j] += count * var * m / (m - 1.0);
            }
            FG_BN_NAME(fg_bn_block_affine)(x, y, n_channels, n_spatial, n0,
                                           n1, c0, w, mu, scale, beta);
        }
        if (running_mean != NULL) {
            for (j = 0; j < w; j++) {
                size_t c = c0 + j;
                double total = (double)n_samples;
                running_mean[c] = (T)((1.0 - momentum)
                                      * (double)running_mean[c]
                                      + momentum * (mean_sum[j] / total));
                running_var[c] = (T)((1.0 - momentum)
                                     * (double)running_var[c]
                                     + momentum * (var_sum[j] / total));
            }
        }
    }
}

void
FG_BN_NAME(fg_bn_forward_eval)(const T *x, const T *weight, const T *bias,
                               const T *running_mean, const T *running_var,
                               T *y, size_t n_samples, size_t n_channels,
                               size_t n_spatial, double eps)
{
    size_t width = fg_bn_block_width(n_spatial);
    ptrdiff_t block, n_blocks = (ptrdiff_t)((n_channels + width - 1) / width);
    int n_threads = fg_threads_for(4.0 * (double)n_samples
                                   * (double)n_channels * (double)n_spatial);

    (void)n_threads;  /* unused in a serial build */
    #pragma omp parallel for schedule(static) num_threads(n_threads)
    for (block = 0; block < n_blocks; block++) {
        double mu[FG_BN_BLOCK], scale[FG_BN_BLOCK], beta[FG_BN_BLOCK];
        size_t c0 = (size_t)block * width, j;
        size_t w = c0 + width <= n_channels ? width : n_channels - c0;
        for (j = 0; j < w; j++) {
            size_t c = c0 + j;
            mu[j] = (double)running_mean[c];
            scale[j] = (double)weight[c]
                       / sqrt((double)running_var[c] + eps);
            beta[j] = (double)bias[c];
        }
        FG_BN_NAME(fg_bn_block_affine)(x, y, n_channels, n_spatial, 0,
                                       n_samples, c0, w, mu, scale, beta);
    }
}

void
FG_BN_NAME(fg_bn_backward_train)(const T *x, const T *dy, const T *weight,
                                 const T *mean, const T *invstd, T *dx,
                                 T *dweight, T *dbias, size_t n_samples,
                                 size_t n_channels, size_t n_spatial,
                                 size_t ghost)
{
    size_t width = fg_bn_block_width(n_spatial);
    size_t n_groups = (n_samples + ghost - 1) / ghost;
    ptrdiff_t block, n_blocks = (ptrdiff_t)((n_channels + width - 1) / width);
    int n_threads = fg_threads_for(10.0 * (double)n_samples
                                   * (double)n_channels * (double)n_spatial);

    (void)n_threads;  /* unused in a serial build */
    #pragma omp parallel for schedule(static) num_threads(n_threads)
    for (block = 0; block < n_blocks; block++) {
        double mu[FG_BN_BLOCK], sdy[FG_BN_BLOCK], sdyx[FG_BN_BLOCK];
        double k0[FG_BN_BLOCK], k1[FG_BN_BLOCK], k2[FG_BN_BLOCK];
        double dweight_sum[FG_BN_BLOCK], dbias_sum[FG_BN_BLOCK];
        size_t c0 = (size_t)block * width, group, j, n0, n1;
        size_t w = c0 + width <= n_channels ? width : n_channels - c0;

        for (j = 0; j < w; j++) {
            dweight_sum[j] = 0.0;
            dbias_sum[j] = 0.0;
        }
        for (group = 0; group < n_groups; group++) {
            double m;
            fg_bn_group_rows(group, ghost, n_samples, &n0, &n1);
            m = (double)(n1 - n0) * (double)n_spatial;
            for (j = 0; j < w; j++)
                mu[j] = (double)mean[group * n_channels + c0 + j];
            FG_BN_NAME(fg_bn_block_grad_sums)(x, dy, n_channels, n_spatial,
                                              n0, n1, c0, w, mu, sdy, sdyx);
            for (j = 0; j < w; j++) {
                double s = (double)invstd[group * n_channels + c0 + j];
                double a = (double)weight[c0 + j] * s;
                /* dx = a (dy - sdy / m - xhat s sdyx / m), xhat = (x-mu) s */
                k1[j] = a;
                k0[j] = a * sdy[j] / m;
                k2[j] = a * s * s * sdyx[j] / m;
                dweight_sum[j] += s * sdyx[j];
                dbias_sum[j] += sdy[j];
            }
            FG_BN_NAME(fg_bn_block_dx)(x, dy, dx, n_channels, n_spatial, n0,
                                       n1, c0, w, mu, k0, k1, k2);
        }
        for (j = 0; j < w; j++) {
            dweight[c0 + j] = (T)dweight_sum[j];
            dbias[c0 + j] = (T)dbias_sum[j];
        }
    }
}

void
FG_BN_NAME(fg_bn_backward_eval)(const T *x, const T *dy, const T *weight,
                                const T *running_mean, const T *running_var,
                                T *dx, T *dweight, T *dbias,
                                size_t n_samples, size_t n_channels,
                                size_t n_spatial, double eps)
{
    size_t width = fg_bn_block_width(n_spatial);
    ptrdiff_t block, n_blocks = (ptrdiff_t)((n_channels + width - 1) / width);
    int n_threads = fg_threads_for(6.0 * (double)n_samples
                                   * (double)n_channels * (double)n_spatial);

    (void)n_threads;  /* unused in a serial build */
    #pragma omp parallel for schedule(static) num_threads(n_threads)
    for (block = 0; block < n_blocks; block++) {
        double mu[FG_BN_BLOCK], sdy[FG_BN_BLOCK], sdyx[FG_BN_BLOCK];
        double s[FG_BN_BLOCK], k0[FG_BN_BLOCK], k1[FG_BN_BLOCK];
        size_t c0 = (size_t)block * width, j;
        size_t w = c0 + width <= n_channels ? width : n_channels - c0;

        for (j = 0; j < w; j++) {
            size_t c = c0 + j;
            mu[j] = (double)running_mean[c];
            s[j] = 1.0 / sqrt((double)running_var[c] + eps);
            k0[j] = 0.0;
            k1[j] = (double)weight[c] * s[j];
        }
        FG_BN_NAME(fg_bn_block_grad_sums)(x, dy, n_channels, n_spatial, 0,
                                          n_samples, c0, w, mu, sdy, sdyx);
        /* k2 = 0: the statistics are constants in evaluation mode. */
        FG_BN_NAME(fg_bn_block_dx)(x, dy, dx, n_channels, n_spatial, 0,
                                   n_samples, c0, w, mu, k0, k1, k0);
        for (j = 0; j < w; j++) {
            dweight[c0 + j] = (T)(s[j] * sdyx[j]);
            dbias[c0 + j] = (T)sdy[j];
        }
    }
}

#undef T

#endif  /* FG_BN_T */
