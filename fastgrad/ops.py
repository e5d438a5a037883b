"""Every differentiable operation of fastgrad, forward next to its gradient.

Each op is a subclass of `Op` (registered by name in OPS) with
- forward(*arrays, **params) -> array: validates, computes (compiled kernel
  or cheap NumPy), saves in self.saved only what backward needs;
- backward(grad) -> one gradient per input (None where none is needed).
Gradients may have the broadcast shape: the engine (tensor.reduce_to) sums
them down to each input's shape. Below the ops: the plain functions users
call (ops.add, ops.linear, ...) and the Tensor operators and methods.

Op.apply records which inputs need a gradient (op.needs_input_grad, one bool
per input); a backward skips the work of the others. The samplers and the RBM
front-ends (no gradient) live in fastgrad.sampling. Only this module,
fastgrad.sampling and optim.py (the fused update) call fastgrad._kernels.
"""
import numpy as np

from fastgrad import _kernels as _k
from fastgrad.tensor import Tensor, contiguous, grad_mode

OPS = {}


class Op:
    """Base of all ops. Subclasses define forward and backward."""

    __slots__ = ("inputs", "saved", "needs_input_grad")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        OPS[cls.__name__] = cls

    @classmethod
    def apply(cls, *inputs, **params):
        """Run the op on Tensors and record it when a gradient is needed."""
        op = cls()
        op.saved = None
        needs = (tuple(t.requires_grad for t in inputs) if grad_mode.enabled
                 else (False,) * len(inputs))
        op.needs_input_grad = needs
        out = Tensor.wrap(op.forward(*[t.data for t in inputs], **params))
        if True in needs:
            out.requires_grad = True
            out._op = op
            op.inputs = inputs
        return out

    def forward(self, *arrays, **params):
        raise NotImplementedError

    def backward(self, grad):
        raise NotImplementedError


def _float_dtype(op, *arrays):
    """The common float dtype of the inputs (NumPy promotion), or raise."""
    dtype = np.result_type(*arrays)
    if dtype.kind != "f":
        names = ", ".join(str(a.dtype) for a in arrays)
        raise TypeError(f"{op}: needs float32 or float64 inputs, got {names}")
    return dtype


def _broadcast_shape(op, *shapes):
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        raise ValueError(f"{op}: shapes {' and '.join(map(str, shapes))} "
                         "do not broadcast") from None


# ---------------------------------------------------------------------------
# Elementwise arithmetic (NumPy: cheap glue)
# ---------------------------------------------------------------------------

class Add(Op):
    def forward(self, a, b):
        _broadcast_shape("add", a.shape, b.shape)
        return a + b

    def backward(self, grad):
        return grad, grad


class Sub(Op):
    def forward(self, a, b):
        _broadcast_shape("sub", a.shape, b.shape)
        return a - b

    def backward(self, grad):
        return grad, -grad


class Mul(Op):
    def forward(self, a, b):
        _broadcast_shape("mul", a.shape, b.shape)
        self.saved = (a, b)
        return a * b

    def backward(self, grad):
        a, b = self.saved
        return grad * b, grad * a


class Div(Op):
    def forward(self, a, b):
        _broadcast_shape("div", a.shape, b.shape)
        _float_dtype("div", a, b)
        self.saved = (a, b)
        return a / b

    def backward(self, grad):
        a, b = self.saved
        grad_a = grad / b
        return grad_a, -grad_a * a / b


class Neg(Op):
    def forward(self, x):
        return -x

    def backward(self, grad):
        return (-grad,)


class Pow(Op):
    """x ** exponent for a scalar exponent."""

    def forward(self, x, exponent):
        _float_dtype("pow", x)
        self.saved = (x, exponent)
        return x ** x.dtype.type(exponent)

    def backward(self, grad):
        x, exponent = self.saved
        return (grad * exponent * x ** x.dtype.type(exponent - 1),)


class Exp(Op):
    def forward(self, x):
        _float_dtype("exp", x)
        y = np.exp(x)
        self.saved = y
        return y

    def backward(self, grad):
        return (grad * self.saved,)


class Log(Op):
    def forward(self, x):
        _float_dtype("log", x)
        self.saved = x
        return np.log(x)

    def backward(self, grad):
        return (grad / self.saved,)


class Sqrt(Op):
    def forward(self, x):
        _float_dtype("sqrt", x)
        y = np.sqrt(x)
        self.saved = y
        return y

    def backward(self, grad):
        return (grad * 0.5 / self.saved,)


class Abs(Op):
    def forward(self, x):
        self.saved = np.sign(x)
        return np.abs(x)

    def backward(self, grad):
        return (grad * self.saved,)


class Clip(Op):
    """Clamp to [low, high]; the gradient passes where x is inside."""

    def forward(self, x, low, high):
        if low is not None and high is not None and low > high:
            raise ValueError(f"clip: low {low} is above high {high}")
        inside = np.ones(x.shape, dtype=bool)
        if low is not None:
            inside &= x >= low
        if high is not None:
            inside &= x <= high
        self.saved = inside
        return np.clip(x, low, high).astype(x.dtype, copy=False)

    def backward(self, grad):
        return (grad * self.saved,)


class Maximum(Op):
    """Elementwise maximum; at ties the gradient goes to the first input."""

    def forward(self, a, b):
        _broadcast_shape("maximum", a.shape, b.shape)
        self.saved = a >= b
        return np.maximum(a, b)

    def backward(self, grad):
        first = self.saved
        return grad * first, grad * ~first


# ---------------------------------------------------------------------------
# Activations (compiled fused kernels; gradients from the saved output)
# ---------------------------------------------------------------------------

class _Activation(Op):
    activation = None

    def forward(self, x):
        x = contiguous(x, dtype=_float_dtype(self.activation, x))
        y = np.empty_like(x)
        _k.act_forward(x, y, self.activation)
        self.saved = y
        return y

    def backward(self, grad):
        dx = np.empty_like(self.saved)
        _k.act_backward(self.saved, grad.astype(dx.dtype, copy=False), dx,
                        self.activation)
        return (dx,)


class Sigmoid(_Activation):
    activation = "sigmoid"


class Tanh(_Activation):
    activation = "tanh"


class TanhOpt(_Activation):
    """1.7159 tanh(2x/3) (LeCun et al. 1998; DeepLearnToolbox's tanh_opt)."""
    activation = "tanh_opt"


class Relu(_Activation):
    activation = "relu"


del OPS["_Activation"]


class Softmax(Op):
    def forward(self, x, axis):
        _float_dtype("softmax", x)
        shifted = np.exp(x - x.max(axis=axis, keepdims=True))
        y = shifted / shifted.sum(axis=axis, keepdims=True)
        self.saved = (y, axis)
        return y

    def backward(self, grad):
        y, axis = self.saved
        return (y * (grad - (grad * y).sum(axis=axis, keepdims=True)),)


class LogSoftmax(Op):
    def forward(self, x, axis):
        _float_dtype("log_softmax", x)
        y = _log_softmax(x, axis)
        self.saved = (y, axis)
        return y

    def backward(self, grad):
        y, axis = self.saved
        return (grad - np.exp(y) * grad.sum(axis=axis, keepdims=True),)


def _log_softmax(x, axis):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


# ---------------------------------------------------------------------------
# Reductions and shape
# ---------------------------------------------------------------------------

def _normalise_axis(op, axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if np.ndim(axis) == 0 else tuple(axis)
    normalised = sorted({int(a) % ndim if -ndim <= a < ndim else -1
                         for a in axes} if ndim else {-1})
    if -1 in normalised or len(normalised) != len(axes):
        raise ValueError(f"{op}: axis {axis} is out of range (or repeated) "
                         f"for {ndim}-D input")
    return tuple(normalised)


def _expand_reduced(grad, shape, axes):
    """Broadcast a reduced gradient back over the reduced axes."""
    kept = list(shape)
    for axis in axes:
        kept[axis] = 1
    return np.broadcast_to(grad.reshape(kept), shape)


class Sum(Op):
    def forward(self, x, axis, keepdims):
        axes = _normalise_axis("sum", axis, x.ndim)
        self.saved = (x.shape, axes)
        return np.asarray(x.sum(axis=axes, keepdims=keepdims))

    def backward(self, grad):
        shape, axes = self.saved
        return (_expand_reduced(grad, shape, axes),)


class Mean(Op):
    def forward(self, x, axis, keepdims):
        _float_dtype("mean", x)
        axes = _normalise_axis("mean", axis, x.ndim)
        count = int(np.prod([x.shape[a] for a in axes]))
        if count == 0:
            raise ValueError(f"mean: reducing an empty axis of shape {x.shape}")
        self.saved = (x.shape, axes, count)
        return np.asarray(x.mean(axis=axes, keepdims=keepdims))

    def backward(self, grad):
        shape, axes, count = self.saved
        return (_expand_reduced(grad / count, shape, axes),)


class Max(Op):
    """Maximum over axes; tied maxima share the gradient equally."""

    def forward(self, x, axis, keepdims):
        axes = _normalise_axis("max", axis, x.ndim)
        if any(x.shape[a] == 0 for a in axes):
            raise ValueError(f"max: reducing an empty axis of shape {x.shape}")
        y = x.max(axis=axes, keepdims=True)
        winners = x == y
        self.saved = (winners / winners.sum(axis=axes, keepdims=True), axes)
        return np.asarray(y if keepdims else y.reshape(
            [n for i, n in enumerate(x.shape) if i not in axes]))

    def backward(self, grad):
        share, axes = self.saved
        return (share * _expand_reduced(grad, share.shape, axes),)


class Reshape(Op):
    def forward(self, x, shape):
        try:
            y = x.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape {x.shape} "
                             f"({x.size} values) to {shape}") from None
        self.saved = x.shape
        return y

    def backward(self, grad):
        return (grad.reshape(self.saved),)


class Permute(Op):
    """Reorder axes (transpose); the output is a contiguous copy."""

    def forward(self, x, axes):
        if sorted(axes) != list(range(x.ndim)):
            raise ValueError(f"permute: axes {axes} are not a permutation of "
                             f"the {x.ndim} axes of shape {x.shape}")
        self.saved = axes
        return contiguous(x.transpose(axes))

    def backward(self, grad):
        return (grad.transpose(np.argsort(self.saved)),)


class GetItem(Op):
    """x[index]: basic slices, and gathers with integer arrays."""

    def forward(self, x, index):
        try:
            y = x[index]
        except IndexError as error:
            raise IndexError(f"getitem: {error} (shape {x.shape})") from None
        self.saved = (x.shape, x.dtype, index)
        return contiguous(y)

    def backward(self, grad):
        shape, dtype, index = self.saved
        dx = np.zeros(shape, dtype=np.result_type(dtype, grad.dtype))
        np.add.at(dx, index, grad)  # repeated gather indices add up
        return (dx,)


class Concatenate(Op):
    def forward(self, *arrays, axis):
        try:
            y = np.concatenate(arrays, axis=axis)
        except ValueError as error:
            shapes = ", ".join(str(a.shape) for a in arrays)
            raise ValueError(f"concatenate: {error} (shapes {shapes})") from None
        self.saved = (np.cumsum([a.shape[axis] for a in arrays])[:-1], axis)
        return y

    def backward(self, grad):
        splits, axis = self.saved
        return tuple(np.split(grad, splits, axis=axis))


class Stack(Op):
    def forward(self, *arrays, axis):
        try:
            y = np.stack(arrays, axis=axis)
        except ValueError as error:
            shapes = ", ".join(str(a.shape) for a in arrays)
            raise ValueError(f"stack: {error} (shapes {shapes})") from None
        self.saved = (len(arrays), axis)
        return y

    def backward(self, grad):
        count, axis = self.saved
        return tuple(np.moveaxis(grad, axis, 0)[:count])


# ---------------------------------------------------------------------------
# Matrix products (fastgrad's GEMM kernel, never NumPy's BLAS)
# ---------------------------------------------------------------------------

def _gemm(a, b, trans_a=False, trans_b=False):
    """op(a) @ op(b) for 2-D contiguous arrays of one dtype, by the kernel."""
    m = a.shape[1] if trans_a else a.shape[0]
    n = b.shape[0] if trans_b else b.shape[1]
    out = np.empty((m, n), dtype=a.dtype)
    return _k.gemm(a, b, out, trans_a, trans_b)


class MatMul(Op):
    """a @ b for 2-D operands, or batched over broadcast leading axes."""

    def forward(self, a, b):
        if a.ndim < 2 or b.ndim < 2:
            raise ValueError(f"matmul: operands must be at least 2-D, got "
                             f"shapes {a.shape} and {b.shape}")
        if a.shape[-1] != b.shape[-2]:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not "
                             f"match ({a.shape[-1]} != {b.shape[-2]})")
        dtype = _float_dtype("matmul", a, b)
        a = contiguous(a, dtype)
        b = contiguous(b, dtype)
        self.saved = (a, b)
        if a.ndim == 2 and b.ndim == 2:
            return _gemm(a, b)
        batch = _broadcast_shape("matmul", a.shape[:-2], b.shape[:-2])
        a_b = np.broadcast_to(a, batch + a.shape[-2:])
        b_b = np.broadcast_to(b, batch + b.shape[-2:])
        out = np.empty(batch + (a.shape[-2], b.shape[-1]), dtype=dtype)
        for index in np.ndindex(*batch):
            _k.gemm(a_b[index], b_b[index], out[index])
        return out

    def backward(self, grad):
        a, b = self.saved
        if a.ndim == 2 and b.ndim == 2:
            return _gemm(grad, b, trans_b=True), _gemm(a, grad, trans_a=True)
        batch = grad.shape[:-2]
        a_b = np.broadcast_to(a, batch + a.shape[-2:])
        b_b = np.broadcast_to(b, batch + b.shape[-2:])
        grad_a = np.empty(batch + a.shape[-2:], dtype=a.dtype)
        grad_b = np.empty(batch + b.shape[-2:], dtype=b.dtype)
        for index in np.ndindex(*batch):
            _k.gemm(grad[index], b_b[index], grad_a[index], False, True)
            _k.gemm(a_b[index], grad[index], grad_b[index], True, False)
        return grad_a, grad_b


class Linear(Op):
    """activation(x @ weight.T + bias): one fused GEMM with a bias and
    activation epilogue; x (batch, in), weight (out, in), bias (out,)."""

    def forward(self, x, weight, bias=None, activation="none"):
        if x.ndim != 2 or weight.ndim != 2 or x.shape[1] != weight.shape[1]:
            raise ValueError(f"linear: x {x.shape} and weight {weight.shape} "
                             "must be (batch, in) and (out, in)")
        if bias is not None and bias.shape != (weight.shape[0],):
            raise ValueError(f"linear: bias {bias.shape} must be "
                             f"({weight.shape[0]},) for weight {weight.shape}")
        arrays = (x, weight) if bias is None else (x, weight, bias)
        dtype = _float_dtype("linear", *arrays)
        x, weight = (contiguous(a, dtype) for a in (x, weight))
        if bias is not None:
            bias = contiguous(bias, dtype)
        out = np.empty((x.shape[0], weight.shape[0]), dtype=dtype)
        _k.linear_forward(x, weight, bias, out, activation)
        self.saved = (x, weight, out, activation, bias is not None)
        return out

    def backward(self, grad):
        x, weight, out, activation, has_bias = self.saved
        if activation != "none":
            pre = np.empty_like(out)
            _k.act_backward(out, grad.astype(out.dtype, copy=False), pre,
                            activation)
            grad = pre
        # The input gradient is one GEMM as large as the weight gradient:
        # skip it when x needs none (the data batch of a first layer).
        grad_x = _gemm(grad, weight) if self.needs_input_grad[0] else None
        grads = (grad_x, _gemm(grad, x, trans_a=True))
        return grads + (grad.sum(axis=0),) if has_bias else grads


# ---------------------------------------------------------------------------
# Convolution and subsampling (compiled kernels of _conv.c)
# ---------------------------------------------------------------------------

def _conv_padding(padding, kernel_shape):
    """(pad_h, pad_w) from 'valid', 'full' or an int."""
    if padding == "valid":
        return 0, 0
    if padding == "full":
        return kernel_shape[0] - 1, kernel_shape[1] - 1
    if isinstance(padding, (int, np.integer)) and padding >= 0:
        return int(padding), int(padding)
    raise ValueError(f"conv2d: padding must be 'valid', 'full' or an int "
                     f">= 0, got {padding!r}")


class Conv2d(Op):
    """activation(cross-correlation of NCHW x with weight (out_maps, in_maps,
    kh, kw) + per-map bias), stride 1, zero padding. The activation is fused
    into the kernel's output tiles; its derivative comes from the saved
    output, like Linear. pool > 1 mean-pools the result over pool x pool
    blocks in the same op, so the backward spreads the gradient and applies
    the activation's derivative in one pass."""

    def forward(self, x, weight, bias=None, padding="valid",
                activation="none", pool=1):
        if x.ndim != 4 or weight.ndim != 4:
            raise ValueError(f"conv2d: x {x.shape} must be (N, C, H, W) and "
                             f"weight {weight.shape} (M, C, KH, KW)")
        pad_h, pad_w = _conv_padding(padding, weight.shape[2:])
        arrays = (x, weight) if bias is None else (x, weight, bias)
        dtype = _float_dtype("conv2d", *arrays)
        x, weight = (contiguous(a, dtype) for a in (x, weight))
        if bias is not None:
            bias = contiguous(bias, dtype)
        out_h = x.shape[2] + 2 * pad_h - weight.shape[2] + 1
        out_w = x.shape[3] + 2 * pad_w - weight.shape[3] + 1
        if x.shape[1] != weight.shape[1] or out_h < 1 or out_w < 1:
            raise ValueError(f"conv2d: x {x.shape} and weight {weight.shape} "
                             f"do not fit with padding {(pad_h, pad_w)}")
        if out_h % pool or out_w % pool:
            raise ValueError(f"conv2d: the {out_h}x{out_w} output is not "
                             f"divisible by the scale {pool} of pool")
        out = np.empty((x.shape[0], weight.shape[0], out_h, out_w), dtype)
        _k.conv2d_forward(x, weight, bias, out, pad_h, pad_w, activation)
        self.saved = (x, weight, pad_h, pad_w, bias is not None, activation,
                      out, pool)
        if pool == 1:
            return out
        pooled = np.empty(out.shape[:2] + (out_h // pool, out_w // pool),
                          dtype)
        return _k.meanpool_forward(out, pooled, pool)

    def backward(self, grad):
        x, weight, pad_h, pad_w, has_bias, activation, out, pool = self.saved
        grad = contiguous(grad, x.dtype)
        if pool > 1:
            pre = np.empty_like(out)
            _k.meanpool_backward(grad, pre, pool,
                                 None if activation == "none" else out,
                                 activation)
            grad = pre
        elif activation != "none":
            pre = np.empty_like(out)
            _k.act_backward(out, grad, pre, activation)
            grad = pre
        # The input image of a network needs no gradient: skip that half.
        need = self.needs_input_grad
        dx = dweight = None
        if need[0]:
            dx = np.empty_like(x)
            _k.conv2d_backward_input(grad, weight, dx, pad_h, pad_w)
        if need[1]:
            dweight = np.empty_like(weight)
            _k.conv2d_backward_weight(x, grad, dweight, pad_h, pad_w)
        if not has_bias:
            return dx, dweight
        dbias = None
        if need[2]:
            dbias = np.empty(weight.shape[0], dtype=x.dtype)
            _k.conv2d_backward_bias(grad, dbias)
        return dx, dweight, dbias


def _pool_input(op, x, scale):
    if x.ndim != 4:
        raise ValueError(f"{op}: x must be (N, C, H, W), got shape {x.shape}")
    if x.shape[2] % scale or x.shape[3] % scale:
        raise ValueError(f"{op}: spatial size {x.shape[2:]} is not divisible "
                         f"by the scale {scale}")
    return contiguous(x, dtype=_float_dtype(op, x))


class Subsample(Op):
    """Mean over scale x scale blocks (DeepLearnToolbox's subsampling)."""

    def forward(self, x, scale):
        if not isinstance(scale, (int, np.integer)) or scale < 1:
            raise ValueError(f"subsample: scale must be an int >= 1, "
                             f"got {scale!r}")
        x = _pool_input("subsample", x, scale)
        n, c, h, w = x.shape
        out = np.empty((n, c, h // scale, w // scale), dtype=x.dtype)
        _k.meanpool_forward(x, out, int(scale))
        self.saved = (x.shape, int(scale))
        return out

    def backward(self, grad):
        shape, scale = self.saved
        dx = np.empty(shape, dtype=grad.dtype)
        _k.meanpool_backward(grad, dx, scale)
        return (dx,)


class MaxPool2d(Op):
    """2x2 max pooling; the gradient goes to the (first) maximum."""

    def forward(self, x):
        x = _pool_input("max_pool2d", x, 2)
        n, c, h, w = x.shape
        out = np.empty((n, c, h // 2, w // 2), dtype=x.dtype)
        argmax = np.empty(out.shape, dtype=np.int64)
        _k.maxpool2x2_forward(x, out, argmax)
        self.saved = (x.shape, argmax)
        return out

    def backward(self, grad):
        shape, argmax = self.saved
        dx = np.empty(shape, dtype=grad.dtype)
        _k.maxpool2x2_backward(grad, argmax, dx)
        return (dx,)


# ---------------------------------------------------------------------------
# Dropout (counter-based sampler: same mask for any thread count)
# ---------------------------------------------------------------------------

class Dropout(Op):
    """x * mask with mask = [u >= fraction], u uniform from Philox keyed by
    (seed, counter, element); `inverted` scales the kept units by
    1/(1 - fraction) (PyTorch), otherwise they are kept as they are and the
    caller scales at test time (DeepLearnToolbox)."""

    def forward(self, x, fraction, seed, counter, inverted):
        mask = np.empty(x.shape, dtype=_float_dtype("dropout", x))
        _k.dropout_mask(mask, fraction, seed, counter)
        if inverted:
            mask *= mask.dtype.type(1.0 / (1.0 - fraction))
        self.saved = mask
        return x * mask

    def backward(self, grad):
        return (grad * self.saved,)


# ---------------------------------------------------------------------------
# Batch normalisation (compiled kernels of _bn.c)
# ---------------------------------------------------------------------------

class BatchNorm(Op):
    """(Ghost) batch normalisation of x (N, C) or (N, C, H, W) per channel:
    y = (x - mean) / sqrt(var + eps) * weight + bias (Ioffe & Szegedy 2015).

    Training: mean and biased var of each ghost batch of `ghost` consecutive
    samples (0: the whole batch; the last ghost batch may be smaller; Hoffer
    et al. 2017), and running_mean/running_var (arrays, updated in place
    when given) := (1 - momentum) * running + momentum * batch statistic,
    with the batch mean and the (size-weighted) mean over ghost batches of
    the unbiased variance (PyTorch's convention). The VJP goes through the
    statistics. Evaluation: the running statistics, held constant.
    """

    def forward(self, x, weight=None, bias=None, *, running_mean,
                running_var, training, momentum, eps, ghost):
        if x.ndim not in (2, 4):
            raise ValueError(f"batch_norm: x must be (N, C) or (N, C, H, W), "
                             f"got shape {x.shape}")
        channels = x.shape[1]
        for name, arr in (("weight", weight), ("bias", bias),
                          ("running_mean", running_mean),
                          ("running_var", running_var)):
            if arr is not None and arr.shape != (channels,):
                raise ValueError(f"batch_norm: {name} has shape {arr.shape}, "
                                 f"expected ({channels},) for x {x.shape}")
        given = tuple(a for a in (weight, bias) if a is not None)
        dtype = _float_dtype("batch_norm", x, *given)
        x = contiguous(x, dtype)
        weight = (np.ones(channels, dtype) if weight is None
                  else contiguous(weight, dtype))
        bias = (np.zeros(channels, dtype) if bias is None
                else contiguous(bias, dtype))
        out = np.empty_like(x)
        if not training:
            if running_mean is None or running_var is None:
                raise ValueError("batch_norm: evaluation mode needs "
                                 "running_mean and running_var")
            running_mean = contiguous(running_mean, dtype)
            running_var = contiguous(running_var, dtype)
            _k.bn_forward_eval(x, weight, bias, running_mean, running_var,
                               out, eps)
            self.saved = (x, weight, running_mean, running_var, eps, False)
            return out
        n = x.shape[0]
        groups = 1 if ghost == 0 or ghost >= n else -(-n // ghost)
        mean = np.empty((groups, channels), dtype)
        invstd = np.empty((groups, channels), dtype)
        buffers = None
        if running_mean is not None:
            # the kernel updates buffers of x's dtype in place; others are
            # updated through a copy
            buffers = [b if b.dtype == dtype and b.flags.c_contiguous
                       else b.astype(dtype, order="C")
                       for b in (running_mean, running_var)]
        _k.bn_forward_train(x, weight, bias, out, mean, invstd,
                            *(buffers or (None, None)), ghost, momentum, eps)
        if buffers is not None:
            for target, value in zip((running_mean, running_var), buffers):
                if target is not value:
                    target[...] = value
        self.saved = (x, weight, mean, invstd, ghost, True)
        return out

    def backward(self, grad):
        x, weight, first, second, setting, training = self.saved
        grad = contiguous(grad, x.dtype)
        dx, dweight = np.empty_like(x), np.empty_like(weight)
        dbias = np.empty_like(weight)
        if training:
            _k.bn_backward_train(x, grad, weight, first, second, dx, dweight,
                                 dbias, setting)
        else:
            _k.bn_backward_eval(x, grad, weight, first, second, dx, dweight,
                                dbias, setting)
        return (dx, dweight, dbias)[:len(self.needs_input_grad)]


# ---------------------------------------------------------------------------
# Losses (0-d outputs; a non-finite loss raises FloatingPointError)
# ---------------------------------------------------------------------------

def _check_finite(op, loss, *arrays):
    if not np.isfinite(loss):
        counts = ", ".join(f"{int(np.size(a) - np.isfinite(a).sum())} in "
                           f"input {i}" for i, a in enumerate(arrays))
        raise FloatingPointError(f"{op}: the loss is {loss} (non-finite "
                                 f"values: {counts})")


class MSELoss(Op):
    """reduction 'dlt': 0.5 * sum(e^2) / batch (DeepLearnToolbox nnff);
    'mean': mean(e^2). e = pred - target."""

    def forward(self, pred, target, reduction):
        if pred.shape != target.shape:
            raise ValueError(f"mse_loss: pred {pred.shape} and target "
                             f"{target.shape} differ")
        _float_dtype("mse_loss", pred, target)
        error = pred - target
        if reduction == "dlt":
            scale = 1.0 / pred.shape[0] if pred.ndim else 1.0
            loss = 0.5 * scale * np.vdot(error, error)
        elif reduction == "mean":
            scale = 2.0 / (error.size or 1)
            loss = np.vdot(error, error) / (error.size or 1)
        else:
            raise ValueError(f"mse_loss: reduction must be 'dlt' or 'mean', "
                             f"got {reduction!r}")
        _check_finite("mse_loss", loss, pred, target)
        self.saved = (error, scale)
        return np.asarray(loss, dtype=error.dtype)

    def backward(self, grad):
        error, scale = self.saved
        grad_pred = error * (grad * scale)
        return grad_pred, -grad_pred


class SoftmaxCrossEntropy(Op):
    """mean over the batch of -sum_k t_k log softmax(logits)_k; targets are
    integer labels (batch,) or probabilities / one-hot (batch, classes).
    One fused kernel computes the softmax and the loss; the gradient
    (softmax - t) * grad / batch is one more."""

    def forward(self, logits, target):
        op = "softmax_cross_entropy"
        dtype = _float_dtype(op, logits)
        if logits.ndim != 2:
            raise ValueError(f"{op}: logits must be (batch, classes), "
                             f"got {logits.shape}")
        probs = np.empty(logits.shape, dtype=dtype)
        if target.dtype.kind in "iu":
            if target.shape != logits.shape[:1]:
                raise ValueError(f"{op}: integer labels of shape "
                                 f"{target.shape} for logits {logits.shape}")
            labels = contiguous(target, np.int64)
            try:
                loss = _k.softmax_xent_forward(logits, labels, probs)
            except ValueError:
                raise ValueError(f"{op}: labels must lie in [0, "
                                 f"{logits.shape[1]}), got {labels.min()}.."
                                 f"{labels.max()}") from None
            self.saved = (probs, labels, None)
        else:
            if target.shape != logits.shape:
                raise ValueError(f"{op}: targets of shape {target.shape} for "
                                 f"logits {logits.shape}")
            target = contiguous(target, dtype)
            loss = _k.softmax_xent_dense_forward(logits, target, probs)
            self.saved = (probs, target, logits)
        _check_finite(op, loss, logits)
        return np.asarray(loss, dtype=dtype)

    def backward(self, grad):
        probs, target, logits = self.saved
        scale = float(grad) / (probs.shape[0] or 1)
        grad_logits = np.empty_like(probs)
        if logits is None:  # integer labels: no gradient for them
            _k.softmax_xent_backward(probs, target, scale, grad_logits)
            return grad_logits, None
        _k.softmax_xent_dense_backward(probs, target, scale, grad_logits)
        grad_target = None
        if self.needs_input_grad[1]:
            grad_target = _log_softmax(logits, axis=1) * -scale
        return grad_logits, grad_target


class BinaryCrossEntropyWithLogits(Op):
    """mean of -[t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))], computed
    as max(x, 0) - x t + log(1 + exp(-|x|)) (stable for any x)."""

    def forward(self, logits, target):
        if logits.shape != target.shape:
            raise ValueError(f"binary_cross_entropy_with_logits: logits "
                             f"{logits.shape} and target {target.shape} differ")
        dtype = _float_dtype("binary_cross_entropy_with_logits", logits)
        terms = (np.maximum(logits, 0) - logits * target
                 + np.log1p(np.exp(-np.abs(logits))))
        count = logits.size or 1
        loss = terms.sum() / count
        _check_finite("binary_cross_entropy_with_logits", loss, logits, target)
        self.saved = (logits, target, count)
        return np.asarray(loss, dtype=dtype)

    def backward(self, grad):
        logits, target, count = self.saved
        probs = 0.5 * (1 + np.tanh(0.5 * logits))  # sigmoid without overflow
        scale = grad / count
        return (probs - target) * scale, -logits * scale


# ---------------------------------------------------------------------------
# The functions users call
# ---------------------------------------------------------------------------

def as_tensor(value, like=None):
    """A Tensor for value; Python and NumPy scalars take `like`'s dtype so
    they never up-cast."""
    if isinstance(value, Tensor):
        return value
    if like is not None and np.ndim(value) == 0 and not isinstance(
            value, np.ndarray) and like.dtype.kind == "f":
        return Tensor(np.asarray(value, dtype=like.dtype))
    return Tensor(value)


def _binary(op_class, a, b):
    a = as_tensor(a, b if isinstance(b, Tensor) else None)
    return op_class.apply(a, as_tensor(b, a))


def add(a, b):
    return _binary(Add, a, b)


def sub(a, b):
    return _binary(Sub, a, b)


def mul(a, b):
    return _binary(Mul, a, b)


def div(a, b):
    return _binary(Div, a, b)


def maximum(a, b):
    return _binary(Maximum, a, b)


def neg(x):
    return Neg.apply(as_tensor(x))


def pow(x, exponent):
    """x ** exponent for a scalar (Python or NumPy) exponent."""
    if isinstance(exponent, Tensor) or np.ndim(exponent) != 0:
        raise TypeError("pow: the exponent must be a scalar")
    return Pow.apply(as_tensor(x), exponent=float(exponent))


def exp(x):
    return Exp.apply(as_tensor(x))


def log(x):
    return Log.apply(as_tensor(x))


def sqrt(x):
    return Sqrt.apply(as_tensor(x))


def abs(x):
    return Abs.apply(as_tensor(x))


def clip(x, low=None, high=None):
    return Clip.apply(as_tensor(x), low=low, high=high)


def sigmoid(x):
    return Sigmoid.apply(as_tensor(x))


def tanh(x):
    return Tanh.apply(as_tensor(x))


def tanh_opt(x):
    return TanhOpt.apply(as_tensor(x))


def relu(x):
    return Relu.apply(as_tensor(x))


def softmax(x, axis=-1):
    return Softmax.apply(as_tensor(x), axis=axis)


def log_softmax(x, axis=-1):
    return LogSoftmax.apply(as_tensor(x), axis=axis)


def sum(x, axis=None, keepdims=False):
    return Sum.apply(as_tensor(x), axis=axis, keepdims=keepdims)


def mean(x, axis=None, keepdims=False):
    return Mean.apply(as_tensor(x), axis=axis, keepdims=keepdims)


def max(x, axis=None, keepdims=False):
    return Max.apply(as_tensor(x), axis=axis, keepdims=keepdims)


def reshape(x, *shape):
    if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
        shape = tuple(shape[0])
    return Reshape.apply(as_tensor(x), shape=shape)


def permute(x, *axes):
    if len(axes) == 1 and not isinstance(axes[0], (int, np.integer)):
        axes = tuple(axes[0])
    return Permute.apply(as_tensor(x), axes=tuple(int(a) for a in axes))


def transpose(x, axes=None):
    """Reverse the axes (default) or apply the permutation `axes`."""
    x = as_tensor(x)
    return permute(x, tuple(reversed(range(x.ndim))) if axes is None else axes)


def getitem(x, index):
    if isinstance(index, Tensor):
        index = index.data
    elif isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    elif isinstance(index, list):
        index = np.asarray(index)
    return GetItem.apply(as_tensor(x), index=index)


def concatenate(tensors, axis=0):
    return Concatenate.apply(*[as_tensor(t) for t in tensors], axis=axis)


def stack(tensors, axis=0):
    return Stack.apply(*[as_tensor(t) for t in tensors], axis=axis)


def matmul(a, b):
    """a @ b: 2-D, batched (leading axes broadcast), or with a 1-D operand
    (treated as a row / column vector and squeezed again, as NumPy)."""
    a, b = as_tensor(a), as_tensor(b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: scalar operand (shapes {a.shape} and "
                         f"{b.shape}); use *")
    if a.ndim == 1:
        return reshape(matmul(reshape(a, 1, -1), b), b.shape[:-2] + b.shape[-1:])
    if b.ndim == 1:
        return reshape(matmul(a, reshape(b, -1, 1)), a.shape[:-1])
    return MatMul.apply(a, b)


def linear(x, weight, bias=None, activation="none"):
    """activation(x @ weight.T + bias), fused: x (batch, in), weight
    (out, in), bias (out,) or None; activation in none, sigmoid, tanh,
    tanh_opt, relu. Returns (batch, out)."""
    inputs = (as_tensor(x), as_tensor(weight))
    if bias is not None:
        inputs += (as_tensor(bias),)
    return Linear.apply(*inputs, activation=activation)


def conv2d(x, weight, bias=None, padding="valid", activation="none",
           pool=1):
    """activation(NCHW cross-correlation + bias), stride 1: x (N, C, H, W),
    weight (M, C, KH, KW), bias (M,) or None; padding 'valid', 'full' or an
    int; activation none, sigmoid, tanh, tanh_opt or relu (fused).
    Returns (N, M, H + 2p - KH + 1, W + 2p - KW + 1); with pool > 1, that
    mean-pooled over pool x pool blocks (subsample(conv2d(...), pool) in one
    op; the output size must be divisible by pool)."""
    if not isinstance(pool, (int, np.integer)) or isinstance(pool, bool) \
            or pool < 1:
        raise ValueError(f"conv2d: pool must be an int >= 1, got {pool!r}")
    inputs = (as_tensor(x), as_tensor(weight))
    if bias is not None:
        inputs += (as_tensor(bias),)
    return Conv2d.apply(*inputs, padding=padding, activation=activation,
                        pool=int(pool))


def subsample(x, scale):
    """Mean pooling over scale x scale blocks: (N, C, H, W) ->
    (N, C, H/scale, W/scale)."""
    return Subsample.apply(as_tensor(x), scale=scale)


def max_pool2d(x):
    """2x2 max pooling: (N, C, H, W) -> (N, C, H/2, W/2)."""
    return MaxPool2d.apply(as_tensor(x))


def dropout(x, fraction, rng, training=True, inverted=False):
    """Zero each value with probability `fraction` (training only).

    rng: a fastgrad.rng.CounterRNG; each call takes the next counter, so a
    run is reproducible from its seed whatever the thread count.
    """
    x = as_tensor(x)
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"dropout: fraction must be in [0, 1), got {fraction}")
    if not training or fraction == 0.0:
        return x
    seed, counter = rng.take()
    return Dropout.apply(x, fraction=fraction, seed=seed, counter=counter,
                         inverted=inverted)


def batch_norm(x, weight, bias, running_mean, running_var, training,
               momentum=0.1, eps=1e-5, ghost_batch_size=None):
    """(Ghost) batch normalisation per channel of x (N, C) or (N, C, H, W).

    weight, bias: (C,) Tensors or None (1 and 0). running_mean, running_var:
    (C,) arrays or Tensors (their data is used), updated in place in
    training mode by running := (1 - momentum) * running + momentum * stat
    (unbiased variance, as PyTorch), or None in training to not track them.
    training: batch statistics (of each ghost batch of `ghost_batch_size`
    samples when given; the last one may be smaller), else the running
    ones. A (ghost) batch with a single value per channel raises ValueError
    in training. Returns a Tensor of x's shape.
    """
    x = as_tensor(x)
    inputs = (x,)
    if weight is not None or bias is not None:
        weight = (Tensor(np.ones(x.shape[1:2], x.dtype)) if weight is None
                  else as_tensor(weight))
        inputs += (weight,) if bias is None else (weight, as_tensor(bias))
    if ghost_batch_size is not None and (
            not isinstance(ghost_batch_size, (int, np.integer))
            or ghost_batch_size < 1):
        raise ValueError(f"batch_norm: ghost_batch_size must be None or an "
                         f"int >= 1, got {ghost_batch_size!r}")
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"batch_norm: momentum must be in [0, 1], "
                         f"got {momentum}")
    if not eps > 0.0:
        raise ValueError(f"batch_norm: eps must be > 0, got {eps}")
    buffers = [b.data if isinstance(b, Tensor) else b
               for b in (running_mean, running_var)]
    return BatchNorm.apply(*inputs, running_mean=buffers[0], running_var=buffers[1],
                           training=bool(training), momentum=float(momentum),
                           eps=float(eps), ghost=int(ghost_batch_size or 0))


def mse_loss(pred, target, reduction="dlt"):
    """Squared error: 'dlt' = 0.5 * sum(e^2) / batch, 'mean' = mean(e^2)."""
    pred = as_tensor(pred)
    return MSELoss.apply(pred, as_tensor(target, pred), reduction=reduction)


def softmax_cross_entropy(logits, target):
    """Mean cross-entropy of softmax(logits) (batch, classes) against
    integer labels (batch,) or probabilities (batch, classes)."""
    logits = as_tensor(logits)
    return SoftmaxCrossEntropy.apply(logits, as_tensor(target, logits))


def binary_cross_entropy_with_logits(logits, target):
    """Mean binary cross-entropy of sigmoid(logits) against targets in [0, 1]."""
    logits = as_tensor(logits)
    return BinaryCrossEntropyWithLogits.apply(logits, as_tensor(target, logits))


# ---------------------------------------------------------------------------
# Tensor operators and methods
# ---------------------------------------------------------------------------

def _reflected(function):
    return lambda self, other: function(other, self)


def _compare(ufunc):
    def compare(self, other):
        other = other.data if isinstance(other, Tensor) else other
        return Tensor(ufunc(self.data, other))
    return compare


_METHODS = {
    "__add__": add, "__radd__": _reflected(add),
    "__sub__": sub, "__rsub__": _reflected(sub),
    "__mul__": mul, "__rmul__": _reflected(mul),
    "__truediv__": div, "__rtruediv__": _reflected(div),
    "__matmul__": matmul, "__rmatmul__": _reflected(matmul),
    "__pow__": pow, "__neg__": neg, "__getitem__": getitem,
    "__lt__": _compare(np.less), "__le__": _compare(np.less_equal),
    "__gt__": _compare(np.greater), "__ge__": _compare(np.greater_equal),
    "__eq__": _compare(np.equal), "__ne__": _compare(np.not_equal),
    "exp": exp, "log": log, "sqrt": sqrt, "abs": abs, "clip": clip,
    "sigmoid": sigmoid, "tanh": tanh, "tanh_opt": tanh_opt, "relu": relu,
    "softmax": softmax, "log_softmax": log_softmax, "sum": sum, "mean": mean,
    "max": max, "reshape": reshape, "permute": permute,
    "transpose": transpose, "matmul": matmul, "maximum": maximum,
    "T": property(transpose),
}
for _name, _function in _METHODS.items():
    setattr(Tensor, _name, _function)
del _name, _function
