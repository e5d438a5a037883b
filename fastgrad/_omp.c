#include "_omp.h"

static int fg_num_threads = 1;

int fg_get_num_threads(void)
{
    return fg_num_threads;
}

void fg_set_num_threads(int n_threads)
{
    fg_num_threads = (FG_OPENMP && n_threads > 1) ? n_threads : 1;
}

int fg_threads_for(double work)
{
    return work < FG_PARALLEL_MIN_WORK ? 1 : fg_num_threads;
}

int fg_openmp_enabled(void)
{
    return FG_OPENMP;
}

/* glibc returns freed blocks above 128 KiB to the OS at once, so every
 * training step pays page faults again for its fresh activation and
 * gradient arrays (measured: 385 minor faults and a third of the CPU time
 * of a batch-50 CNN step). Keep such blocks in the heap instead, unless the
 * user tuned malloc through its environment variables. */
#include <stdlib.h>  /* defines __GLIBC__ on glibc */
#if defined(__GLIBC__)
#include <malloc.h>

void fg_tune_allocator(void)
{
    if (getenv("MALLOC_MMAP_THRESHOLD_") == NULL &&
            getenv("MALLOC_TRIM_THRESHOLD_") == NULL &&
            getenv("MALLOC_TOP_PAD_") == NULL) {
        mallopt(M_MMAP_THRESHOLD, 16 << 20);
        mallopt(M_TRIM_THRESHOLD, 64 << 20);
    }
}
#else
void fg_tune_allocator(void)
{
}
#endif
