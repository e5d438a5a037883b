# Validation shared by every kernel wrapper. All checks run before nogil and
# raise exceptions that name the kernel, the argument and what was wrong.
# They read the array headers through NumPy's C-API: a training step at
# batch size 1 makes dozens of kernel calls, so checks must cost nanoseconds.
from cython cimport floating
cimport numpy as cnp

cnp.import_array()

cdef object _FLOAT_TYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _check(str op, str name, object arr, int ndim=-1, object dtype=None,
           bint writeable=False):
    """Raise unless `arr` is a C-contiguous float32/float64 ndarray of rank
    `ndim` (any rank when -1) and, when given, of dtype `dtype`."""
    if not cnp.PyArray_Check(arr):
        raise TypeError(f"{op}: {name} must be a numpy.ndarray, "
                        f"got {type(arr).__name__}")
    cdef cnp.ndarray array = <cnp.ndarray>arr
    if ndim >= 0 and cnp.PyArray_NDIM(array) != ndim:
        raise ValueError(f"{op}: {name} must be {ndim}-D, "
                         f"got shape {arr.shape}")
    cdef int type_num = cnp.PyArray_TYPE(array)
    if dtype is None:
        if type_num != cnp.NPY_FLOAT and type_num != cnp.NPY_DOUBLE:
            raise TypeError(f"{op}: {name} must be float32 or float64, "
                            f"got {arr.dtype}")
    elif not (<object>cnp.PyArray_DESCR(array) is dtype or arr.dtype == dtype):
        raise TypeError(f"{op}: {name} has dtype {arr.dtype}, expected "
                        f"{np.dtype(dtype)} like the other operands")
    if not cnp.PyArray_IS_C_CONTIGUOUS(array):
        raise ValueError(f"{op}: {name} must be C-contiguous (shape "
                         f"{arr.shape}, strides {arr.strides}); pass "
                         f"numpy.ascontiguousarray({name})")
    if writeable and not cnp.PyArray_ISWRITEABLE(array):
        raise ValueError(f"{op}: output {name} is read-only")


cdef bint _overlap(object a, object b):
    """Whether the memory of two C-contiguous ndarrays overlaps."""
    cdef char *start_a = <char *>cnp.PyArray_DATA(<cnp.ndarray>a)
    cdef char *start_b = <char *>cnp.PyArray_DATA(<cnp.ndarray>b)
    cdef Py_ssize_t size_a = cnp.PyArray_NBYTES(<cnp.ndarray>a)
    cdef Py_ssize_t size_b = cnp.PyArray_NBYTES(<cnp.ndarray>b)
    if size_a == 0 or size_b == 0:
        return False
    return start_a < start_b + size_b and start_b < start_a + size_a


def _check_no_alias(str op, str out_name, object out, **inputs):
    """Raise if the output buffer `out` overlaps any of `inputs` (all
    C-contiguous ndarrays already checked by _check, or None)."""
    for name, arr in inputs.items():
        if arr is None:
            continue
        if (cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>out)
                and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>arr)):
            overlaps = _overlap(out, arr)
        else:
            overlaps = np.may_share_memory(out, arr)
        if overlaps:
            raise ValueError(f"{op}: output {out_name} overlaps input {name}; "
                             f"pass a separate output array")


def _check_shape(str op, str name, object arr, tuple shape):
    if arr.shape != shape:
        raise ValueError(f"{op}: {name} has shape {arr.shape}, "
                         f"expected {shape}")
