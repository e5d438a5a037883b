# Validation shared by every kernel wrapper. All checks run before nogil and
# raise exceptions that name the kernel, the argument and what was wrong.
from cython cimport floating

cdef object _FLOAT_TYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _check(str op, str name, object arr, int ndim=-1, object dtype=None,
           bint writeable=False):
    """Raise unless `arr` is a C-contiguous float32/float64 ndarray of rank
    `ndim` (any rank when -1) and, when given, of dtype `dtype`."""
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{op}: {name} must be a numpy.ndarray, "
                        f"got {type(arr).__name__}")
    if ndim >= 0 and arr.ndim != ndim:
        raise ValueError(f"{op}: {name} must be {ndim}-D, "
                         f"got shape {arr.shape}")
    if dtype is None:
        if arr.dtype not in _FLOAT_TYPES:
            raise TypeError(f"{op}: {name} must be float32 or float64, "
                            f"got {arr.dtype}")
    elif arr.dtype != dtype:
        raise TypeError(f"{op}: {name} has dtype {arr.dtype}, expected "
                        f"{np.dtype(dtype)} like the other operands")
    if not arr.flags.c_contiguous:
        raise ValueError(f"{op}: {name} must be C-contiguous (shape "
                         f"{arr.shape}, strides {arr.strides}); pass "
                         f"numpy.ascontiguousarray({name})")
    if writeable and not arr.flags.writeable:
        raise ValueError(f"{op}: output {name} is read-only")


def _check_no_alias(str op, str out_name, object out, **inputs):
    """Raise if the output buffer `out` may overlap any of `inputs`."""
    for name, arr in inputs.items():
        if arr is not None and np.may_share_memory(out, arr):
            raise ValueError(f"{op}: output {out_name} overlaps input {name}; "
                             f"pass a separate output array")


def _check_shape(str op, str name, object arr, tuple shape):
    if arr.shape != shape:
        raise ValueError(f"{op}: {name} has shape {arr.shape}, "
                         f"expected {shape}")
