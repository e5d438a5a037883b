"""fastgrad: a small reverse-mode autodiff engine with OpenMP-parallel kernels."""
import os as _os

from fastgrad._version import __version__
from fastgrad._kernels import get_num_threads, openmp_enabled, set_num_threads


def _default_num_threads():
    """FASTGRAD_NUM_THREADS, then OMP_NUM_THREADS, then the usable cores."""
    for variable in ("FASTGRAD_NUM_THREADS", "OMP_NUM_THREADS"):
        value = _os.environ.get(variable, "").split(",")[0].strip()
        if value:
            try:
                return max(1, int(value))
            except ValueError:
                raise ValueError(f"{variable}={value!r} is not a whole number "
                                 "of threads") from None
    try:
        return len(_os.sched_getaffinity(0))
    except AttributeError:
        return _os.cpu_count() or 1


set_num_threads(_default_num_threads())
