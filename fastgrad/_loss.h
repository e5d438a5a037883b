#ifndef FASTGRAD_LOSS_H
#define FASTGRAD_LOSS_H
#include <stddef.h>
#include <stdint.h>

/*
 * Fused softmax + cross-entropy over rows of logits (batch, classes).
 *
 * forward, integer labels:
 *   probs := softmax(logits) row-wise;
 *   returns sum_i -log probs[i, labels[i]] (the caller divides by batch).
 * forward, dense targets (probabilities or one-hot):
 *   returns sum_i sum_k -target[i, k] log probs[i, k].
 * backward:  dlogits := scale * (probs - onehot(labels))
 *            dlogits := scale * (probs * sum_k target[i, k] - target)
 *
 * Row losses are computed in parallel into a buffer and summed in row order,
 * so the result is the same for any thread count. *n_bad receives the number
 * of labels outside [0, classes) (those rows are skipped); -1 when the
 * scratch buffer could not be allocated.
 */
double fg_softmax_xent_f32(const float *logits, const int64_t *labels,
                           float *probs, size_t batch, size_t classes,
                           ptrdiff_t *n_bad);
double fg_softmax_xent_f64(const double *logits, const int64_t *labels,
                           double *probs, size_t batch, size_t classes,
                           ptrdiff_t *n_bad);
double fg_softmax_xent_dense_f32(const float *logits, const float *target,
                                 float *probs, size_t batch, size_t classes,
                                 ptrdiff_t *n_bad);
double fg_softmax_xent_dense_f64(const double *logits, const double *target,
                                 double *probs, size_t batch, size_t classes,
                                 ptrdiff_t *n_bad);
void fg_softmax_xent_backward_f32(const float *probs, const int64_t *labels,
                                  double scale, float *dlogits, size_t batch,
                                  size_t classes);
void fg_softmax_xent_backward_f64(const double *probs,
                                  const int64_t *labels, double scale,
                                  double *dlogits, size_t batch,
                                  size_t classes);
void fg_softmax_xent_dense_backward_f32(const float *probs,
                                        const float *target, double scale,
                                        float *dlogits, size_t batch,
                                        size_t classes);
void fg_softmax_xent_dense_backward_f64(const double *probs,
                                        const double *target, double scale,
                                        double *dlogits, size_t batch,
                                        size_t classes);

#endif
