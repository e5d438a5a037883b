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
