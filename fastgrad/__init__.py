"""fastgrad: a small reverse-mode autodiff engine with OpenMP-parallel kernels.

    import fastgrad
    from fastgrad import ops
    x = fastgrad.tensor([[1.0, 2.0]], requires_grad=True)
    y = ops.sigmoid(x).sum()
    y.backward()
    x.grad
"""
import os as _os

# How long an OpenMP worker spins for the next parallel region before it
# sleeps. Sleeping workers (OMP_WAIT_POLICY=passive) take 50 us and more to
# wake on this kind of virtual machine, which made every 2-thread product
# about as slow as one thread; spinning for ever (GCC's default 300,000 spins,
# about 11 ms here, or "active") takes a core from NumPy's BLAS and from
# other processes. 30,000 spins (about 1 ms here) bridge the Python work
# between two kernels of a training step. libgomp reads the variable once,
# when fastgrad._kernels loads it; it is removed again so that other
# libraries in the process (PyTorch's own libgomp) keep their defaults.
# Set OMP_WAIT_POLICY or GOMP_SPINCOUNT yourself to choose otherwise.
_SPIN_DEFAULT = not ({"OMP_WAIT_POLICY", "GOMP_SPINCOUNT"} & set(_os.environ))
if _SPIN_DEFAULT:
    _os.environ["GOMP_SPINCOUNT"] = "30000"
try:
    from fastgrad._kernels import (get_num_threads, openmp_enabled,
                                   set_num_threads)
finally:
    if _SPIN_DEFAULT:
        del _os.environ["GOMP_SPINCOUNT"]

from fastgrad._version import __version__
from fastgrad.tensor import Tensor, no_grad, is_grad_enabled, tensor
from fastgrad import ops
from fastgrad.gradcheck import gradcheck, GradcheckError
from fastgrad.rng import CounterRNG
from fastgrad.visualize import visualize

__all__ = ["Tensor", "tensor", "no_grad", "is_grad_enabled", "ops",
           "gradcheck", "GradcheckError", "CounterRNG", "visualize", "set_num_threads",
           "get_num_threads", "openmp_enabled", "__version__"]


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
