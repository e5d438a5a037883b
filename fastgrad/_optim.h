#ifndef FASTGRAD_OPTIM_H
#define FASTGRAD_OPTIM_H
#include <stddef.h>

/* Hyper-parameters of the SGD update of one parameter. */
typedef struct {
    double lr;            /* effective learning rate of this step */
    double momentum;      /* m; 0 = no buffer */
    double dampening;     /* d */
    double weight_decay;  /* L2 coefficient */
    double l1;            /* L1 coefficient */
    double grad_scale;    /* s: the gradient used is s * grad */
    double buffer_scale;  /* c: "dlt" momentum correction lr_new / lr_old */
    int nesterov;
    int decoupled;        /* weight decay applied as w -= lr*wd*w */
    int dlt;              /* DeepLearnToolbox momentum convention */
    int first;            /* first step: the buffer starts from g */
} fg_sgd_config;

/* For every parameter k (with its own configs[k]) and element i, all from
 * the old values:
 *   g = s grad + [coupled] wd w + l1 sign(w)
 *   standard: v = first ? g : m v + (1 - d) g;     u = nesterov ? g + m v : v
 *             w = w - lr u - [decoupled] lr wd w
 *   dlt:      v = first ? lr g : m c v + (1 - d) lr g;
 *             u = nesterov ? lr g + m v : v;  w = w - u - [decoupled] lr wd w
 * Where m == 0 no buffer is read or written (buffers[k] may be NULL). */
void fg_sgd_update_f32(const fg_sgd_config *configs, size_t n_params,
                       float *const *params, const float *const *grads,
                       float *const *buffers, const size_t *sizes);
void fg_sgd_update_f64(const fg_sgd_config *configs, size_t n_params,
                       double *const *params, const double *const *grads,
                       double *const *buffers, const size_t *sizes);

/* Index of the first overlapping pair among n byte ranges
 * [starts[i], starts[i] + lengths[i]) where at least one of the pair is
 * writable; returns 0 when none overlap, else 1 with *first, *second set.
 * Empty ranges never overlap. `order` is scratch space of 2 n entries. */
int fg_find_overlap(size_t n, const char *const *starts,
                    const size_t *lengths, const int *writable,
                    size_t *order, size_t *first, size_t *second);

#endif
