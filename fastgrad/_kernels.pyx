# cython: language_level=3
"""fastgrad's compiled kernels.

Each area keeps its kernels in its own include file: a nogil core in C (or
Cython) and a thin wrapper on C-contiguous arrays that validates every input
before releasing the GIL. Every public wrapper is listed in KERNELS and has a
pure-NumPy reference of the same signature in fastgrad.reference.
Only fastgrad.ops (and fastgrad.optim for the fused update) call these.
"""
import numpy as np

KERNELS = []

include "_common.pxi"
include "_threads.pxi"
include "_eltwise.pxi"
include "_gemm.pxi"
include "_conv.pxi"
include "_rbm.pxi"
include "_optim.pxi"
include "_bn.pxi"
include "_loss.pxi"
