"""Tensor and the reverse-mode engine: the graph, backward(), no_grad.

A Tensor wraps a C-contiguous NumPy array. Every differentiable operation is
an `Op` (fastgrad.ops) that records its inputs on the output Tensor;
`backward()` walks that graph once in reverse topological order, undoing
broadcasting for every input with one helper, and frees it afterwards.
"""
import numpy as np

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


class _GradMode:
    """Whether ops record the graph (one shared, mutable flag)."""
    enabled = True


grad_mode = _GradMode()


class no_grad:
    """Context manager (and decorator) under which no graph is recorded."""

    def __enter__(self):
        self._previous, grad_mode.enabled = grad_mode.enabled, False

    def __exit__(self, *exc):
        grad_mode.enabled = self._previous

    def __call__(self, function):
        def wrapped(*args, **kwargs):
            with no_grad():
                return function(*args, **kwargs)
        wrapped.__name__, wrapped.__doc__ = function.__name__, function.__doc__
        return wrapped


def is_grad_enabled():
    return grad_mode.enabled


def as_array(data, dtype=None):
    """A C-contiguous array for Tensor data: floats default to float32,
    float16 becomes float32, integers and booleans keep their kind."""
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        return contiguous(data, dtype)
    array = np.asarray(data)
    if array.dtype.kind == "f" and array.dtype not in _FLOATS:
        array = array.astype(np.float32)
    elif array.dtype.kind not in "fiub":
        raise TypeError(f"tensor: unsupported data of dtype {array.dtype}")
    elif array.dtype == np.float64 and not isinstance(data, (np.ndarray,
                                                             np.generic)):
        array = array.astype(np.float32)  # Python floats: float32 default
    return contiguous(array)


def contiguous(array, dtype=None):
    """`array` as a C-contiguous ndarray of `dtype`, copied only when needed
    (unlike numpy.ascontiguousarray, 0-d stays 0-d)."""
    array = np.asarray(array, dtype=dtype)
    return array if array.flags.c_contiguous else np.array(array, order="C")


def aligned(array, alignment=64):
    """A C-contiguous copy of `array` whose data starts on an `alignment`-byte
    boundary. NumPy's large arrays start 16 bytes past a page; the sparse RBM
    products read weight rows in place with 32-byte vector loads, which are
    about 20% faster when they do not straddle cache lines."""
    array = np.asarray(array)
    buffer = np.empty(array.nbytes + alignment, np.uint8)
    start = -buffer.ctypes.data % alignment
    out = buffer[start:start + array.nbytes].view(array.dtype).reshape(
        array.shape)
    out[...] = array
    return out


class Tensor:
    """An n-dimensional array that records the operations applied to it.

    data: C-contiguous numpy.ndarray (float32, float64, or integers/booleans
    for labels and masks). grad: numpy.ndarray of data's shape, or None;
    filled by backward() for leaves with requires_grad.
    """

    __slots__ = ("data", "grad", "requires_grad", "_op")
    __array_priority__ = 1000  # ndarray <op> Tensor defers to Tensor
    __hash__ = object.__hash__  # comparisons are elementwise

    def __init__(self, data, dtype=None, requires_grad=False):
        self.data = as_array(data, dtype)
        if requires_grad and self.data.dtype not in _FLOATS:
            raise TypeError(f"tensor: data of dtype {self.data.dtype} cannot "
                            "require gradients (float32 or float64 only)")
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self._op = None

    @classmethod
    def wrap(cls, array):
        """A leaf around an op's result, without the checks of __init__
        (the hot path of every op)."""
        self = cls.__new__(cls)
        if type(array) is not np.ndarray:
            array = np.asarray(array)
        elif not array.flags.c_contiguous:
            array = np.array(array, order="C")
        self.data, self.grad, self.requires_grad, self._op = (
            array, None, False, None)
        return self

    # -- basic properties -------------------------------------------------
    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)
    is_leaf = property(lambda self: self._op is None)

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        extra = f", dtype={self.dtype}"
        if self._op is not None:
            extra += f", op={type(self._op).__name__}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    def __array__(self, dtype=None, copy=None):
        return self.data if dtype is None else self.data.astype(dtype)

    def numpy(self):
        """The data array (shared, not copied)."""
        return self.data

    def item(self):
        return self.data.item()

    def detach(self):
        """A new leaf sharing this data, without gradient history."""
        return Tensor(self.data)

    # -- reverse mode ------------------------------------------------------
    def backward(self, grad=None, retain_graph=False):
        """Accumulate d(self)/d(leaf) . grad into every leaf's .grad.

        grad: upstream gradient of self's shape; may be omitted only for a
        single-element tensor (then 1). The graph is freed afterwards unless
        retain_graph=True; a second backward through a freed graph raises.
        """
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require "
                               "gradients (no input had requires_grad=True)")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward: the root has shape {self.shape}; a non-scalar "
                    "root needs an explicit gradient of that shape")
            grad = np.ones_like(self.data)
        else:
            grad = as_array(grad, self.dtype)
            if grad.shape != self.shape:
                raise ValueError(f"backward: gradient of shape {grad.shape} "
                                 f"for a tensor of shape {self.shape}")
        grads = {id(self): grad}
        for tensor in _reverse_topological(self):
            grad = grads.pop(id(tensor), None)
            op = tensor._op
            if op is None:
                _accumulate_leaf(tensor, grad)
                continue
            if op.inputs is None:
                raise RuntimeError(
                    f"backward through the graph of {type(op).__name__} a "
                    "second time: it was freed by the first backward; pass "
                    "retain_graph=True to the first call")
            if grad is not None:
                if not grad.flags.c_contiguous:
                    grad = contiguous(grad)
                input_grads = op.backward(grad)
                for parent, parent_grad in zip(op.inputs, input_grads):
                    if parent_grad is None or not parent.requires_grad:
                        continue
                    parent_grad = reduce_to(parent_grad, parent, op)
                    previous = grads.get(id(parent))
                    grads[id(parent)] = (parent_grad if previous is None
                                         else previous + parent_grad)
            if not retain_graph:
                op.inputs = op.saved = None

    # -- operators and methods (all defined in fastgrad.ops) ---------------
    # attached at the end of fastgrad/ops.py so the op list stays in one place


def _reverse_topological(root):
    """Tensors reachable from root that need gradients, root first, every
    tensor after all tensors computed from it."""
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        tensor, expanded = stack.pop()
        if expanded:
            order.append(tensor)
            continue
        if id(tensor) in visited:
            continue
        visited.add(id(tensor))
        stack.append((tensor, True))
        op = tensor._op
        if op is not None and op.inputs is not None:
            for parent in op.inputs:
                if parent.requires_grad and id(parent) not in visited:
                    stack.append((parent, False))
    order.reverse()
    return order


def _accumulate_leaf(tensor, grad):
    if grad is None:
        return
    if tensor.grad is None:
        # a gradient may be a view shared with another input's: store a copy
        # only when it is not a fresh contiguous array of its own
        if grad.base is not None or not grad.flags.writeable:
            grad = np.array(grad)
        tensor.grad = grad
    else:
        tensor.grad = tensor.grad + grad


def reduce_to(grad, tensor, op):
    """Undo broadcasting: sum `grad` down to `tensor`'s shape and dtype.

    The one place that reduces broadcast gradients, for every op. Raises
    naming the op when the shapes cannot match (a bug in that op's VJP).
    """
    shape = tensor.data.shape
    if grad.shape != shape:
        extra = grad.ndim - len(shape)
        if extra < 0:
            raise RuntimeError(f"{type(op).__name__}: gradient of shape "
                               f"{grad.shape} for an input of shape {shape}")
        if extra:
            grad = grad.sum(axis=tuple(range(extra)))
        axes = tuple(i for i, n in enumerate(shape)
                     if n == 1 and grad.shape[i] != 1)
        if axes:
            grad = grad.sum(axis=axes, keepdims=True)
        if grad.shape != shape:
            raise RuntimeError(f"{type(op).__name__}: gradient of shape "
                               f"{grad.shape} for an input of shape {shape}")
    if grad.dtype != tensor.data.dtype:
        grad = grad.astype(tensor.data.dtype)
    return grad


def tensor(data, dtype=None, requires_grad=False):
    """A new leaf Tensor holding a copy of `data` (array-like or Tensor).

    Python floats become float32, float arrays keep float32/float64, integer
    data stays integer (labels, indices) and cannot require gradients.
    """
    array = np.array(as_array(data, dtype), copy=True)
    return Tensor(array, requires_grad=requires_grad)
