"""Random shapes, dtypes, strides and values thrown at every kernel entry
point: each call returns or raises a Python exception, never crashes."""
import inspect

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from fastgrad import _kernels

DTYPES = [np.float32, np.float64, np.int64, np.int32, np.bool_, np.float16]


@st.composite
def arrays(draw):
    dtype = draw(st.sampled_from(DTYPES))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0,
                                  max_side=6))
    array = np.ones(shape, dtype=dtype) if draw(st.booleans()) else (
        np.zeros(shape, dtype=dtype))
    layout = draw(st.sampled_from(["c", "transposed", "strided", "readonly"]))
    if layout == "transposed":
        array = array.T
    elif layout == "strided" and array.ndim:
        array = np.repeat(array, 2, axis=0)[::2]
    elif layout == "readonly":
        array.flags.writeable = False
    return array


arguments = st.one_of(arrays(), arrays(), arrays(),
                      st.integers(-3, 8), st.floats(-2, 2), st.booleans(),
                      st.none(), st.sampled_from(["valid", "sigmoid", "none"]))


@pytest.mark.parametrize("name", sorted(_kernels.KERNELS))
def test_kernel_survives_random_arguments(name):
    kernel = getattr(_kernels, name)
    n_params = len(inspect.signature(kernel).parameters)

    @settings(max_examples=150)
    @given(args=st.lists(arguments, min_size=n_params, max_size=n_params))
    def call(args):
        try:
            kernel(*args)
        except (TypeError, ValueError, OverflowError, IndexError,
                FloatingPointError):
            pass
    call()
