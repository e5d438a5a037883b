"""Every op is gradient-checked (float64, central differences) on
hypothesis-drawn shapes and values with a random upstream gradient.

CASES maps each op name of fastgrad.ops.OPS to a hypothesis strategy that
draws (function, inputs); tests/test_registry.py fails when an op has none.
"""
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st
from hypothesis.extra import numpy as hnp

import fastgrad
from fastgrad import ops

ACTIVATIONS = ["none", "sigmoid", "tanh", "tanh_opt", "relu"]


def leaf(array):
    return fastgrad.tensor(np.asarray(array, dtype=np.float64),
                           requires_grad=True)


def normal(seed, shape, away_from_zero=0.0):
    """Standard normal values; |value| >= away_from_zero where asked (for
    kinks such as abs, relu, clip)."""
    values = np.random.default_rng(seed).standard_normal(shape)
    if away_from_zero:
        values = np.where(values >= 0, values + away_from_zero,
                          values - away_from_zero)
    return values


seeds = st.integers(0, 2 ** 32 - 1)
small_shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
pair_shapes = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0,
                                                max_dims=3, min_side=1,
                                                max_side=4)


@st.composite
def binary(draw, function, positive_right=False):
    shapes = draw(pair_shapes).input_shapes
    seed = draw(seeds)
    a, b = normal(seed, shapes[0]), normal(seed + 1, shapes[1])
    if positive_right:
        b = 0.5 + np.abs(b)
    if function is ops.maximum:
        assume(np.abs(np.subtract(a, b)).min(initial=1.0) > 1e-3)
    return function, [leaf(a), leaf(b)]


@st.composite
def unary(draw, function, domain=None, shapes=small_shapes):
    shape, seed = draw(shapes), draw(seeds)
    values = normal(seed, shape, away_from_zero=0.05)
    if domain == "positive":
        values = 0.2 + np.abs(values)
    return function, [leaf(values)]


@st.composite
def pow_case(draw):
    exponent = draw(st.sampled_from([2, 3, 0.5, -1.5, 1]))
    function, inputs = draw(unary(ops.pow, "positive"))
    return (lambda x: ops.pow(x, exponent)), inputs


@st.composite
def clip_case(draw):
    shape, seed = draw(small_shapes), draw(seeds)
    values = normal(seed, shape)
    low, high = -0.5, 0.7
    values = np.where(np.abs(values - low) < 0.01, values + 0.05, values)
    values = np.where(np.abs(values - high) < 0.01, values + 0.05, values)
    return (lambda x: ops.clip(x, low, high)), [leaf(values)]


@st.composite
def axis_case(draw, function, keepdims=True):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
    axis = draw(st.none() | st.integers(-len(shape), len(shape) - 1)
                | st.just(tuple(range(len(shape)))[:2]))
    keep = draw(st.booleans()) if keepdims else None
    values = normal(draw(seeds), shape)
    if keepdims:
        return (lambda x: function(x, axis=axis, keepdims=keep)), [leaf(values)]
    axis = -1 if axis is None or isinstance(axis, tuple) else axis
    return (lambda x: function(x, axis=axis)), [leaf(values)]


@st.composite
def reshape_case(draw):
    shape = draw(small_shapes)
    size = int(np.prod(shape))
    new_shape = draw(st.sampled_from([(size,), (1, size), (size, 1, 1), (-1,)]))
    return (lambda x: ops.reshape(x, new_shape)), [leaf(normal(draw(seeds),
                                                                  shape))]


@st.composite
def permute_case(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, max_side=3))
    axes = draw(st.permutations(range(len(shape))))
    return (lambda x: ops.permute(x, axes)), [leaf(normal(draw(seeds), shape))]


@st.composite
def getitem_case(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=5))
    if draw(st.booleans()):
        index = draw(hnp.basic_indices(shape, allow_newaxis=False,
                                       allow_ellipsis=True))
    else:  # gather rows, with repeats
        index = np.asarray(draw(st.lists(st.integers(0, shape[0] - 1),
                                         min_size=1, max_size=6)))
    return (lambda x: ops.getitem(x, index)), [leaf(normal(draw(seeds), shape))]


@st.composite
def join_case(draw, function):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=3))
    axis = draw(st.integers(0, len(shape) - 1))
    count = draw(st.integers(1, 3))
    inputs = []
    for i in range(count):
        part = list(shape)
        if function is ops.concatenate:
            part[axis] = draw(st.integers(1, 3))
        inputs.append(leaf(normal(draw(seeds), part)))
    return (lambda *xs: function(xs, axis=axis)), inputs


@st.composite
def matmul_case(draw):
    m, k, n = (draw(st.integers(1, 6)) for _ in range(3))
    batch = draw(st.sampled_from([(), (2,), (3, 1)]))
    other_batch = batch[1:] if batch and draw(st.booleans()) else batch
    seed = draw(seeds)
    a = normal(seed, batch + (m, k))
    b = normal(seed + 1, other_batch + (k, n))
    return ops.matmul, [leaf(a), leaf(b)]


@st.composite
def linear_case(draw):
    batch, n_in, n_out = (draw(st.integers(1, 7)) for _ in range(3))
    activation = draw(st.sampled_from(ACTIVATIONS))
    seed = draw(seeds)
    inputs = [leaf(normal(seed, (batch, n_in))),
              leaf(normal(seed + 1, (n_out, n_in)))]
    if draw(st.booleans()):
        inputs.append(leaf(normal(seed + 2, (n_out,))))
    if activation == "relu":  # keep pre-activations away from the kink
        pre = inputs[0].data @ inputs[1].data.T
        if len(inputs) == 3:
            pre = pre + inputs[2].data
        assume(np.abs(pre).min() > 1e-3)
    return ((lambda *xs: ops.linear(*xs, activation=activation)), inputs)


@st.composite
def conv_case(draw, fused=False):
    """conv2d; fused=True adds a smooth activation and a mean pool of 1-3
    (the output size drawn as a multiple of the pool)."""
    n, c, m = (draw(st.integers(1, 3)) for _ in range(3))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    padding = draw(st.sampled_from(["valid", "full", 1]))
    pad_h, pad_w = {"valid": (0, 0), "full": (kh - 1, kw - 1), 1: (1, 1)}[
        padding]
    activation, pool = "none", 1
    if fused:
        activation = draw(st.sampled_from(["none", "sigmoid", "tanh",
                                           "tanh_opt"]))
        pool = draw(st.integers(1, 3))
    h = pool * draw(st.integers(1, 3)) - 2 * pad_h + kh - 1
    w = pool * draw(st.integers(1, 3)) - 2 * pad_w + kw - 1
    assume(h >= 1 and w >= 1)
    seed = draw(seeds)
    inputs = [leaf(normal(seed, (n, c, h, w))),
              leaf(normal(seed + 1, (m, c, kh, kw)))]
    if draw(st.booleans()):
        inputs.append(leaf(normal(seed + 2, (m,))))
    return (lambda *xs: ops.conv2d(*xs, padding=padding,
                                   activation=activation, pool=pool)), inputs


@st.composite
def pool_case(draw, maximum=False):
    scale = 2 if maximum else draw(st.integers(1, 3))
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h = scale * draw(st.integers(1, 3))
    w = scale * draw(st.integers(1, 3))
    x = leaf(normal(draw(seeds), (n, c, h, w)))
    if maximum:
        return ops.max_pool2d, [x]
    return (lambda v: ops.subsample(v, scale)), [x]


@st.composite
def dropout_case(draw):
    fraction = draw(st.sampled_from([0.0, 0.3, 0.5]))
    inverted = draw(st.booleans())
    seed = draw(seeds)

    def function(x):  # a fresh generator per call: the same mask every time
        return ops.dropout(x, fraction, fastgrad.CounterRNG(seed),
                           inverted=inverted)
    return draw(unary(function))


@st.composite
def loss_case(draw, kind):
    batch, classes = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    seed = draw(seeds)
    logits = leaf(normal(seed, (batch, classes)))
    rng = np.random.default_rng(seed)
    if kind == "mse":
        reduction = draw(st.sampled_from(["dlt", "mean"]))
        target = leaf(rng.standard_normal((batch, classes)))
        return (lambda p, t: ops.mse_loss(p, t, reduction)), [logits, target]
    if kind == "bce":
        target = leaf(rng.uniform(size=(batch, classes)))
        return ops.binary_cross_entropy_with_logits, [logits, target]
    if draw(st.booleans()):
        labels = rng.integers(0, classes, size=batch)
        return (lambda z: ops.softmax_cross_entropy(z, labels)), [logits]
    soft = leaf(rng.dirichlet(np.ones(classes), size=batch))
    return ops.softmax_cross_entropy, [logits, soft]


@st.composite
def batch_norm_case(draw):
    """Training mode, (N, C), optional ghost batches (full layouts and
    evaluation mode: tests/test_bn.py); tanh after it, since a VJP of
    normalised values against a per-channel constant is zero."""
    n, c = draw(st.integers(2, 7)), draw(st.integers(1, 4))
    ghost = draw(st.sampled_from([None, 2, 3]))
    assume(ghost is None or n % ghost != 1)
    seed = draw(seeds)
    inputs = [leaf(normal(seed, (n, c))), leaf(normal(seed + 1, (c,))),
              leaf(normal(seed + 2, (c,)))]
    return (lambda x, w, b: ops.tanh(ops.batch_norm(
        x, w, b, None, None, True, ghost_batch_size=ghost))), inputs


CASES = {
    "Add": binary(ops.add), "Sub": binary(ops.sub), "Mul": binary(ops.mul),
    "Div": binary(ops.div, positive_right=True),
    "Maximum": binary(ops.maximum),
    "Neg": unary(ops.neg), "Pow": pow_case(), "Exp": unary(ops.exp),
    "Log": unary(ops.log, "positive"), "Sqrt": unary(ops.sqrt, "positive"),
    "Abs": unary(ops.abs), "Clip": clip_case(),
    "Sigmoid": unary(ops.sigmoid), "Tanh": unary(ops.tanh),
    "TanhOpt": unary(ops.tanh_opt), "Relu": unary(ops.relu),
    "Softmax": axis_case(ops.softmax, keepdims=False),
    "LogSoftmax": axis_case(ops.log_softmax, keepdims=False),
    "Sum": axis_case(ops.sum), "Mean": axis_case(ops.mean),
    "Max": axis_case(ops.max),
    "Reshape": reshape_case(), "Permute": permute_case(),
    "GetItem": getitem_case(),
    "Concatenate": join_case(ops.concatenate), "Stack": join_case(ops.stack),
    "MatMul": matmul_case(), "Linear": linear_case(),
    "Conv2d": conv_case(), "Conv2dActPool": conv_case(fused=True),
    "Subsample": pool_case(),
    "MaxPool2d": pool_case(maximum=True), "Dropout": dropout_case(),
    "MSELoss": loss_case("mse"), "SoftmaxCrossEntropy": loss_case("xent"),
    "BinaryCrossEntropyWithLogits": loss_case("bce"),
    "BatchNorm": batch_norm_case(),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradient(name):
    @given(case=CASES[name])
    def check(case):
        function, inputs = case
        assert fastgrad.gradcheck(function, inputs)
    check()


def test_gradcheck_catches_a_wrong_gradient():
    class Wrong(ops.Op):
        def forward(self, x):
            return x * x

        def backward(self, grad):
            return (grad * 3.0,)  # d(x^2)/dx is 2x, not 3

    try:
        x = leaf([[0.5, -1.0]])
        with pytest.raises(fastgrad.GradcheckError,
                           match=r"input 0 .*element \(0, 0\).*analytical"):
            fastgrad.gradcheck(lambda v: Wrong.apply(v), [x])
    finally:
        del ops.OPS["Wrong"]


# -- bad input ---------------------------------------------------------------

@given(prefix=hnp.array_shapes(min_dims=0, max_dims=2, max_side=3),
       sizes=st.lists(st.integers(2, 5), min_size=2, max_size=2, unique=True))
def test_mismatched_shapes_name_the_op(prefix, sizes):
    a = fastgrad.tensor(np.zeros(prefix + (sizes[0],)))
    b = fastgrad.tensor(np.zeros((sizes[1],)))
    for function, name in [(ops.add, "add"), (ops.mul, "mul"),
                           (ops.sub, "sub"), (ops.div, "div"),
                           (ops.maximum, "maximum")]:
        with pytest.raises(ValueError, match=f"{name}: shapes .* do not "
                                             "broadcast"):
            function(a, b)


@pytest.mark.parametrize("shapes", [((3,), (2, 2)), ((2, 3), (2, 3)),
                                    ((2, 3, 4), (5, 4, 2))])
def test_matmul_shape_errors(shapes):
    a, b = (fastgrad.tensor(np.zeros(s, np.float32)) for s in shapes)
    with pytest.raises(ValueError, match="matmul"):
        ops.matmul(a, b)


@pytest.mark.parametrize("x_shape, w_shape", [
    ((1, 1, 5), (1, 1, 3, 3)),        # rank 3 input
    ((1, 2, 5, 5), (1, 3, 3, 3)),     # channel mismatch
    ((1, 1, 2, 2), (1, 1, 3, 3)),     # kernel larger than the input
])
def test_conv2d_shape_errors(x_shape, w_shape):
    with pytest.raises(ValueError, match="conv2d"):
        ops.conv2d(np.zeros(x_shape, np.float32), np.zeros(w_shape, np.float32))


def test_subsample_needs_divisible_size():
    with pytest.raises(ValueError, match="subsample.*divisible"):
        ops.subsample(np.zeros((1, 1, 5, 4), np.float32), 2)


def test_conv2d_pool_errors():
    x, w = np.zeros((1, 1, 6, 6), np.float32), np.zeros((2, 1, 2, 2), np.float32)
    with pytest.raises(ValueError, match="conv2d: the 5x5 output is not "
                                         "divisible by the scale 2"):
        ops.conv2d(x, w, pool=2)
    for pool in (0, 1.5, True, "2"):
        with pytest.raises(ValueError, match="conv2d: pool"):
            ops.conv2d(x, w, pool=pool)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ["none", "sigmoid", "tanh",
                                        "tanh_opt", "relu"])
def test_conv2d_pool_equals_conv_then_subsample(dtype, activation):
    """The fused op gives subsample(conv2d(...)) and the same gradients."""
    rng = np.random.default_rng(7)
    arrays = [rng.standard_normal(shape).astype(dtype) for shape in
              ((3, 2, 13, 21), (4, 2, 2, 2), (4,), (3, 4, 6, 10))]
    results = []
    for fused in (True, False):
        x, w, b = (fastgrad.tensor(a, requires_grad=True)
                   for a in arrays[:3])
        if fused:
            out = ops.conv2d(x, w, b, activation=activation, pool=2)
        else:
            out = ops.subsample(ops.conv2d(x, w, b, activation=activation),
                                2)
        (out * arrays[3]).sum().backward()
        results.append((out.data, x.grad, w.grad, b.grad))
    tolerance = {np.float32: 1e-6, np.float64: 1e-14}[dtype]
    for got, want in zip(*results):
        np.testing.assert_allclose(got, want, rtol=tolerance,
                                   atol=tolerance)


def test_integer_data_cannot_require_gradients():
    with pytest.raises(TypeError, match="int64 cannot require gradients"):
        fastgrad.tensor(np.arange(3), requires_grad=True)
    with pytest.raises(TypeError, match="sigmoid"):
        ops.sigmoid(fastgrad.tensor(np.arange(3)))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_loss_raises(bad):
    logits = np.array([[0.0, bad]], dtype=np.float32)
    with pytest.raises(FloatingPointError, match="softmax_cross_entropy.*1 in input 0"):
        ops.softmax_cross_entropy(logits, np.array([0]))
    with pytest.raises(FloatingPointError, match="mse_loss"):
        ops.mse_loss(logits, np.zeros_like(logits))
    with pytest.raises(FloatingPointError, match="binary_cross_entropy"):
        ops.binary_cross_entropy_with_logits(logits, np.zeros_like(logits))


def test_labels_out_of_range_raise():
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        ops.softmax_cross_entropy(np.zeros((2, 3), np.float32), np.array([0, 3]))


def test_dropout_fraction_is_checked():
    with pytest.raises(ValueError, match="dropout: fraction"):
        ops.dropout(np.zeros(3, np.float32), 1.0, fastgrad.CounterRNG(0))


def test_apply_records_which_inputs_need_a_gradient():
    x = fastgrad.tensor(np.ones((2, 3)), requires_grad=True)
    weight = fastgrad.tensor(np.ones((4, 3)))
    out = ops.linear(x, weight)
    assert out._op.needs_input_grad == (True, False)
    with fastgrad.no_grad():
        assert ops.linear(x, weight)._op is None
    # ops.py holds ops only: the samplers live in fastgrad.sampling
    assert not hasattr(ops, "rbm_gibbs") and not hasattr(ops, "uniform")
