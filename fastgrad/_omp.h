/*
 * The one OpenMP shim of fastgrad. Every kernel includes this file and asks
 * fg_threads_for() how many threads a job may use; a build without OpenMP
 * compiles the same code serially (the pragmas are ignored and the stubs
 * below stand in for the runtime).
 */
#ifndef FASTGRAD_OMP_H
#define FASTGRAD_OMP_H

#ifdef _OPENMP
#include <omp.h>
#define FG_OPENMP 1
#else
#define FG_OPENMP 0
static inline int omp_get_thread_num(void) { return 0; }
static inline int omp_get_num_threads(void) { return 1; }
static inline int omp_get_max_threads(void) { return 1; }
#endif

/* Below this many floating-point operations (about 15 us of one core) a
 * job runs on one thread: a parallel region costs a few microseconds while
 * the workers spin (see fastgrad/__init__.py) and tens once they sleep. */
#define FG_PARALLEL_MIN_WORK 1.0e6

/* The thread count set by fastgrad.set_num_threads (1 in a serial build). */
int fg_get_num_threads(void);
void fg_set_num_threads(int n_threads);

/* Threads for a job of `work` floating-point operations: 1 when small. */
int fg_threads_for(double work);

/* Keep mid-sized freed blocks in the heap (glibc); see _omp.c. */
void fg_tune_allocator(void);

/* 1 when the extension was compiled with OpenMP. */
int fg_openmp_enabled(void);

#endif
