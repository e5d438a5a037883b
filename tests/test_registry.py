"""Nothing escapes the tests: every op has a gradient check and every
compiled kernel a NumPy reference with the same signature."""
import inspect

import pytest

from fastgrad import _kernels, ops, reference
from test_ops import CASES


def test_every_op_has_a_gradient_check():
    missing = sorted(set(ops.OPS) - set(CASES))
    assert not missing, f"ops without a gradcheck case in test_ops.CASES: {missing}"


@pytest.mark.parametrize("name", sorted(_kernels.KERNELS))
def test_every_kernel_has_a_reference_with_its_signature(name):
    assert hasattr(reference, name), f"no fastgrad.reference.{name}"
    kernel = inspect.signature(getattr(_kernels, name))
    ref = inspect.signature(getattr(reference, name))
    assert list(kernel.parameters) == list(ref.parameters), (
        f"{name}: kernel{kernel} but reference{ref}")


def test_the_registry_is_not_empty():
    assert len(ops.OPS) >= 35 and len(_kernels.KERNELS) >= 2
