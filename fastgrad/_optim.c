/* Fused in-place SGD update of all parameters of a model in one call.
 * Elementwise: each element is read and written by exactly one thread, so
 * the result does not depend on the thread count. No temporaries. */
#include "_optim.h"
#include "_omp.h"
#include "_simd.h"
#include <stdint.h>

/* Work per element for fg_threads_for: small models (an MLP step at batch
 * size 1) stay on one thread and never enter a parallel region. */
#define FG_SGD_FLOPS_PER_ELEMENT 8.0

/* The update of elements [0, n) of one parameter; the flag arguments are
 * compile-time constants at every call site, so each combination compiles
 * to its own branch-free loop. */
#define FG_DEFINE_SGD_LOOPS(T, SUFFIX, ATTR)                                  \
static inline ATTR void                                                       \
sgd_range_##SUFFIX(const fg_sgd_config *c, T *restrict w,                     \
                   const T *restrict grad, T *restrict v,                     \
                   ptrdiff_t begin, ptrdiff_t end, const int has_momentum,    \
                   const int nesterov, const int dlt, const int first)        \
{                                                                             \
    const T lr = (T)c->lr, m = (T)c->momentum;                                \
    const T mc = (T)(c->momentum * c->buffer_scale);                          \
    const T d1 = (T)(1.0 - c->dampening), s = (T)c->grad_scale;               \
    const T wd = c->decoupled ? (T)0 : (T)c->weight_decay, l1 = (T)c->l1;     \
    const T decay = c->decoupled ? (T)(1.0 - c->lr * c->weight_decay) : (T)1; \
    ptrdiff_t i;                                                              \
    for (i = begin; i < end; i++) {                                           \
        const T wi = w[i];                                                    \
        const T sign = (T)((wi > (T)0) - (wi < (T)0));                        \
        T g = s * grad[i] + wd * wi + l1 * sign;                              \
        if (!has_momentum) {                                                  \
            w[i] = decay * wi - lr * g;                                       \
            continue;                                                         \
        }                                                                     \
        if (dlt)                                                              \
            g = lr * g;                                                       \
        const T vi = first ? g : mc * v[i] + d1 * g;                          \
        v[i] = vi;                                                            \
        const T u = nesterov ? g + m * vi : vi;                               \
        w[i] = dlt ? decay * wi - u : decay * wi - lr * u;                    \
    }                                                                         \
}                                                                             \
                                                                              \
static ATTR void                                                              \
sgd_dispatch_##SUFFIX(const fg_sgd_config *c, T *w, const T *g, T *v,         \
                      ptrdiff_t begin, ptrdiff_t end)                         \
{                                                                             \
    const int code = (c->momentum != 0.0 ? 8 : 0) | (c->nesterov ? 4 : 0)     \
                     | (c->dlt ? 2 : 0) | (c->first ? 1 : 0);                 \
    switch (code) {                                                           \
    case 8: sgd_range_##SUFFIX(c, w, g, v, begin, end, 1, 0, 0, 0); break;    \
    case 9: sgd_range_##SUFFIX(c, w, g, v, begin, end, 1, 0, 0, 1); break;    \
    case 10: sgd_range_##SUFFIX(c, w, g, v, begin, end, 1, 0, 1, 0); break;   \
    case 11: sgd_range_##SUFFIX(c, w, g, v, begin, end, 1, 0, 1, 1); break;   \
    case 12: sgd_range_##SUFFIX(c, w, g, v, begin, end, 1, 1, 0, 0); break;   \
    case 13: sgd_range_##SUFFIX(c, w, g, v, begin, end, 1, 1, 0, 1); break;   \
    case 14: sgd_range_##SUFFIX(c, w, g, v, begin, end, 1, 1, 1, 0); break;   \
    case 15: sgd_range_##SUFFIX(c, w, g, v, begin, end, 1, 1, 1, 1); break;   \
    default: sgd_range_##SUFFIX(c, w, g, v, begin, end, 0, 0, 0, 0); break;   \
    }                                                                         \
}

typedef void (*sgd_loop_f32)(const fg_sgd_config *, float *, const float *,
                             float *, ptrdiff_t, ptrdiff_t);
typedef void (*sgd_loop_f64)(const fg_sgd_config *, double *, const double *,
                             double *, ptrdiff_t, ptrdiff_t);

#if FG_HAVE_X86_DISPATCH
/* AVX2+FMA loops when the CPU has them (decided once). */
static int sgd_use_avx2(void)
{
    static int answer = -1;
    if (answer < 0)
        answer = fg_cpu_has_avx2();
    return answer;
}
#endif

#define FG_DEFINE_SGD_UPDATE(T, SUFFIX)                                       \
void fg_sgd_update_##SUFFIX(const fg_sgd_config *configs, size_t n_params,    \
                            T *const *params, const T *const *grads,          \
                            T *const *buffers, const size_t *sizes)           \
{                                                                             \
    size_t k;                                                                 \
    double total = 0.0;                                                       \
    for (k = 0; k < n_params; k++)                                            \
        total += (double)sizes[k];                                            \
    int n_threads = fg_threads_for(FG_SGD_FLOPS_PER_ELEMENT * total);         \
    sgd_loop_##SUFFIX loop = FG_SGD_DISPATCH(SUFFIX);                         \
    if (n_threads <= 1) {                                                     \
        for (k = 0; k < n_params; k++)                                        \
            loop(&configs[k], params[k], grads[k], buffers[k], 0,             \
                 (ptrdiff_t)sizes[k]);                                        \
        return;                                                               \
    }                                                                         \
    _Pragma("omp parallel num_threads(n_threads) private(k)")                 \
    {                                                                         \
        /* Fixed static chunks of every parameter, one per thread. */         \
        const ptrdiff_t team = omp_get_num_threads();                         \
        const ptrdiff_t rank = omp_get_thread_num();                          \
        for (k = 0; k < n_params; k++) {                                      \
            const ptrdiff_t n = (ptrdiff_t)sizes[k];                          \
            const ptrdiff_t chunk = (n + team - 1) / team;                    \
            const ptrdiff_t begin = rank * chunk < n ? rank * chunk : n;      \
            const ptrdiff_t end = begin + chunk < n ? begin + chunk : n;      \
            loop(&configs[k], params[k], grads[k], buffers[k], begin, end);   \
        }                                                                     \
    }                                                                         \
}

FG_DEFINE_SGD_LOOPS(float, f32, )
FG_DEFINE_SGD_LOOPS(double, f64, )
#if FG_HAVE_X86_DISPATCH
FG_DEFINE_SGD_LOOPS(float, f32_avx2, FG_TARGET_AVX2)
FG_DEFINE_SGD_LOOPS(double, f64_avx2, FG_TARGET_AVX2)
#define FG_SGD_DISPATCH(SUFFIX) \
    (sgd_use_avx2() ? sgd_dispatch_##SUFFIX##_avx2 : sgd_dispatch_##SUFFIX)
#else
#define FG_SGD_DISPATCH(SUFFIX) sgd_dispatch_##SUFFIX
#endif

FG_DEFINE_SGD_UPDATE(float, f32)
FG_DEFINE_SGD_UPDATE(double, f64)

/* Bottom-up merge sort of the indices in `order` by starts[index]. */
static void sort_by_start(size_t n, const char *const *starts, size_t *order,
                          size_t *scratch)
{
    size_t width, i;
    for (width = 1; width < n; width *= 2) {
        for (i = 0; i < n; i += 2 * width) {
            size_t left = i, mid = i + width < n ? i + width : n;
            size_t right = mid, stop = i + 2 * width < n ? i + 2 * width : n;
            size_t out = i;
            while (left < mid && right < stop)
                scratch[out++] = (uintptr_t)starts[order[right]]
                             < (uintptr_t)starts[order[left]]
                                 ? order[right++] : order[left++];
            while (left < mid)
                scratch[out++] = order[left++];
            while (right < stop)
                scratch[out++] = order[right++];
        }
        for (i = 0; i < n; i++)
            order[i] = scratch[i];
    }
}

int fg_find_overlap(size_t n, const char *const *starts,
                    const size_t *lengths, const int *writable,
                    size_t *order, size_t *first, size_t *second)
{
    size_t i, count = 0;
    for (i = 0; i < n; i++)
        if (lengths[i] > 0)
            order[count++] = i;
    sort_by_start(count, starts, order, order + n);
    /* Sweep in order of start: a range overlaps an earlier one iff it
     * starts before the largest end seen so far (of any range when it is
     * writable, of writable ranges when it is read-only). */
    uintptr_t end_any = 0, end_writable = 0;
    size_t owner_any = 0, owner_writable = 0;
    for (i = 0; i < count; i++) {
        const size_t k = order[i];
        const uintptr_t start = (uintptr_t)starts[k];
        const uintptr_t end = start + lengths[k];
        if (writable[k] && start < end_any) {
            *first = owner_any;
            *second = k;
            return 1;
        }
        if (!writable[k] && start < end_writable) {
            *first = owner_writable;
            *second = k;
            return 1;
        }
        if (end > end_any) {
            end_any = end;
            owner_any = k;
        }
        if (writable[k] && end > end_writable) {
            end_writable = end;
            owner_writable = k;
        }
    }
    return 0;
}
