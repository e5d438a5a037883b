/* Fused softmax + cross-entropy, forward and backward (see _loss.h).
 * Rows are independent: OpenMP over rows with static scheduling, row losses
 * written to a scratch buffer and summed serially in row order, so results
 * are bitwise identical for any thread count. */
#include <math.h>
#include <stdlib.h>

#include "_loss.h"
#include "_omp.h"

/* About 20 flops per element (exp dominates). */
#define FG_XENT_WORK(batch, classes) (20.0 * (double)(batch) * (classes))

/* probs[k] := exp(z[k] - max z) / sum; returns log(sum) + max z, i.e. the
 * log-sum-exp of the row, so that log probs[k] = z[k] - lse. */
#define FG_DEFINE_ROW_SOFTMAX(T, SUFFIX, EXP, LOG)                            \
static T fg_row_softmax_##SUFFIX(const T *z, T *p, size_t classes)            \
{                                                                             \
    size_t k;                                                                 \
    T top = z[0], total = (T)0, inverse;                                      \
    for (k = 1; k < classes; k++)                                             \
        top = z[k] > top ? z[k] : top;                                        \
    for (k = 0; k < classes; k++) {                                           \
        p[k] = EXP(z[k] - top);                                               \
        total += p[k];                                                        \
    }                                                                         \
    inverse = (T)1 / total;                                                   \
    for (k = 0; k < classes; k++)                                             \
        p[k] *= inverse;                                                      \
    return top + LOG(total);                                                  \
}

FG_DEFINE_ROW_SOFTMAX(float, f32, expf, logf)
FG_DEFINE_ROW_SOFTMAX(double, f64, exp, log)

/* Sum of row losses in row order (deterministic); *n_bad = -1 when out of
 * memory. ROW_LOSS computes row i's loss into row_loss[i]. */
#define FG_DEFINE_XENT(T, SUFFIX, TARGET_T, NAME, COUNT_BAD, ROW_LOSS)        \
double NAME##_##SUFFIX(const T *logits, const TARGET_T *target, T *probs,     \
                       size_t batch, size_t classes, ptrdiff_t *n_bad)        \
{                                                                             \
    ptrdiff_t i, rows = (ptrdiff_t)batch, bad = 0;                            \
    double sum = 0.0;                                                         \
    double *row_loss;                                                         \
    int n_threads = fg_threads_for(FG_XENT_WORK(batch, classes));             \
    *n_bad = 0;                                                               \
    if (batch == 0 || classes == 0)                                           \
        return 0.0;                                                           \
    row_loss = (double *)malloc(batch * sizeof(double));                      \
    if (row_loss == NULL) {                                                   \
        *n_bad = -1;                                                          \
        return 0.0;                                                           \
    }                                                                         \
    COUNT_BAD                                                                 \
    _Pragma("omp parallel for schedule(static) num_threads(n_threads)")       \
    for (i = 0; i < rows; i++) {                                              \
        const T *z = logits + (size_t)i * classes;                            \
        T *p = probs + (size_t)i * classes;                                   \
        T lse = fg_row_softmax_##SUFFIX(z, p, classes);                       \
        ROW_LOSS                                                              \
    }                                                                         \
    for (i = 0; i < rows; i++)                                                \
        sum += row_loss[i];                                                   \
    free(row_loss);                                                           \
    *n_bad = bad;                                                             \
    return sum;                                                               \
}

/* Labels outside [0, classes), counted serially before the parallel loop
 * (cheap) so the loop needs no reduction. */
#define FG_COUNT_BAD_LABELS                                                   \
    for (i = 0; i < rows; i++)                                                \
        bad += target[i] < 0 || (uint64_t)target[i] >= (uint64_t)classes;

/* -log p[label] = lse - z[label]; a bad label contributes 0. */
#define FG_LABEL_ROW_LOSS                                                     \
    {                                                                         \
        int64_t label = target[i];                                            \
        if (label < 0 || (uint64_t)label >= (uint64_t)classes)                \
            row_loss[i] = 0.0;                                                \
        else                                                                  \
            row_loss[i] = (double)(lse - z[label]);                           \
    }

/* -sum_k t[k] log p[k] = sum_k t[k] (lse - z[k]). */
#define FG_DENSE_ROW_LOSS                                                     \
    {                                                                         \
        const TT *t = target + (size_t)i * classes;                           \
        double acc = 0.0;                                                     \
        size_t k;                                                             \
        for (k = 0; k < classes; k++)                                         \
            acc += (double)(t[k] * (lse - z[k]));                             \
        row_loss[i] = acc;                                                    \
    }

#define FG_NO_COUNT

#define TT float
FG_DEFINE_XENT(float, f32, int64_t, fg_softmax_xent, FG_COUNT_BAD_LABELS,
               FG_LABEL_ROW_LOSS)
FG_DEFINE_XENT(float, f32, float, fg_softmax_xent_dense, FG_NO_COUNT,
               FG_DENSE_ROW_LOSS)
#undef TT
#define TT double
FG_DEFINE_XENT(double, f64, int64_t, fg_softmax_xent, FG_COUNT_BAD_LABELS,
               FG_LABEL_ROW_LOSS)
FG_DEFINE_XENT(double, f64, double, fg_softmax_xent_dense, FG_NO_COUNT,
               FG_DENSE_ROW_LOSS)
#undef TT

/* dlogits := scale * (probs - onehot(labels)); labels were validated by the
 * forward pass (out-of-range labels leave the row without the -1). */
#define FG_DEFINE_XENT_BACKWARD(T, SUFFIX)                                    \
void fg_softmax_xent_backward_##SUFFIX(const T *probs, const int64_t *labels, \
                                       double scale, T *dlogits,              \
                                       size_t batch, size_t classes)          \
{                                                                             \
    ptrdiff_t i, rows = (ptrdiff_t)batch;                                     \
    const T s = (T)scale;                                                     \
    int n_threads = fg_threads_for(2.0 * (double)batch * classes);            \
    _Pragma("omp parallel for schedule(static) num_threads(n_threads)")       \
    for (i = 0; i < rows; i++) {                                              \
        const T *p = probs + (size_t)i * classes;                             \
        T *d = dlogits + (size_t)i * classes;                                 \
        int64_t label = labels[i];                                            \
        size_t k;                                                             \
        for (k = 0; k < classes; k++)                                         \
            d[k] = s * p[k];                                                  \
        if (label >= 0 && (uint64_t)label < (uint64_t)classes)                \
            d[label] = s * (p[label] - (T)1);                                 \
    }                                                                         \
}                                                                             \
                                                                              \
void fg_softmax_xent_dense_backward_##SUFFIX(const T *probs, const T *target, \
                                             double scale, T *dlogits,        \
                                             size_t batch, size_t classes)    \
{                                                                             \
    ptrdiff_t i, rows = (ptrdiff_t)batch;                                     \
    const T s = (T)scale;                                                     \
    int n_threads = fg_threads_for(4.0 * (double)batch * classes);            \
    _Pragma("omp parallel for schedule(static) num_threads(n_threads)")       \
    for (i = 0; i < rows; i++) {                                              \
        const T *p = probs + (size_t)i * classes;                             \
        const T *t = target + (size_t)i * classes;                            \
        T *d = dlogits + (size_t)i * classes;                                 \
        T mass = (T)0;                                                        \
        size_t k;                                                             \
        for (k = 0; k < classes; k++)                                         \
            mass += t[k];                                                     \
        for (k = 0; k < classes; k++)                                         \
            d[k] = s * (p[k] * mass - t[k]);                                  \
    }                                                                         \
}

FG_DEFINE_XENT_BACKWARD(float, f32)
FG_DEFINE_XENT_BACKWARD(double, f64)
