"""fastgrad: a small reverse-mode autodiff engine with OpenMP-parallel kernels.

    import fastgrad
    from fastgrad import ops
    x = fastgrad.tensor([[1.0, 2.0]], requires_grad=True)
    y = ops.sigmoid(x).sum()
    y.backward()
    x.grad
"""
import os as _os

# OpenMP workers that busy-wait between parallel regions (libgomp's default)
# take the cores from every other thread and process: measured here, an MLP
# step at batch 256 on 2 threads took 16 ms instead of 2 ms, on a machine
# with other work. Workers sleep instead unless the user chose a policy. The
# OpenMP runtime reads this once, when it loads with fastgrad._kernels.
if "OMP_WAIT_POLICY" not in _os.environ and "GOMP_SPINCOUNT" not in _os.environ:
    _os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

from fastgrad._version import __version__
from fastgrad._kernels import get_num_threads, openmp_enabled, set_num_threads
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
