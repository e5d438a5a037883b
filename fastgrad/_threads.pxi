cdef extern from "_omp.h":
    int fg_get_num_threads() nogil
    void fg_set_num_threads(int n_threads) nogil
    int fg_threads_for(double work) nogil
    int fg_openmp_enabled() nogil
    void fg_tune_allocator() nogil

fg_tune_allocator()


def set_num_threads(int n_threads):
    """Set the number of threads every kernel may use (1 in a serial build)."""
    if n_threads < 1:
        raise ValueError(f"set_num_threads: n_threads must be >= 1, "
                         f"got {n_threads}")
    fg_set_num_threads(n_threads)


def get_num_threads():
    """The number of threads kernels may use."""
    return fg_get_num_threads()


def openmp_enabled():
    """True when the kernels were compiled with OpenMP."""
    return bool(fg_openmp_enabled())
