"""The implementations fastgrad's MLP is compared with, on the identical
workload: an MLP (784-100-10 by default) with a tanh_opt hidden layer
(1.7159 tanh(2/3 x), LeCun et al. 1998, DeepLearnToolbox's default), a
softmax output with mean cross-entropy loss, and SGD with momentum and weight
decay (PyTorch's convention, applied to every parameter):

    g := grad + weight_decay * p;  v := momentum * v + g;  p := p - lr * v

* NumpyMLP: written out by hand with matrix operations, the way
  DeepLearnToolbox's nnff/nnbp/nnapplygrads do it (no framework), with
  in-place updates so NumPy does no needless allocation.
* TorchMLP: the same network in PyTorch eager (nn.Linear, F.cross_entropy,
  torch.optim.SGD). PyTorch is optional: torch_available() says whether it
  can be used.

All start from init_params(), so they compute the same numbers (up to
floating-point rounding) from the same batches.
"""
import numpy as np

TANH_OPT_A, TANH_OPT_B = 1.7159, 2.0 / 3.0


def init_params(sizes=(784, 100, 10), dtype=np.float32, seed=0):
    """[(weight (n_out, n_in), bias (n_out,)), ...]: weights uniform in
    +-sqrt(6 / (n_in + n_out)) (Glorot; DeepLearnToolbox's nnsetup uses 4x
    that range, meant for sigmoid units), zero biases."""
    rng = np.random.default_rng(seed)
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        bound = np.sqrt(6.0 / (n_in + n_out))
        weight = (rng.random((n_out, n_in)) - 0.5) * 2 * bound
        params.append((np.ascontiguousarray(weight, dtype=dtype),
                       np.zeros(n_out, dtype=dtype)))
    return params


class NumpyMLP:
    """Hand-written NumPy MLP: forward, backward and update as matrix
    operations. step(x (B, n_in) float, labels (B,) int) -> loss."""

    def __init__(self, params, lr=0.05, momentum=0.5, weight_decay=1e-4):
        (self.w1, self.b1), (self.w2, self.b2) = [
            (w.copy(), b.copy()) for w, b in params]
        self.params = [self.w1, self.b1, self.w2, self.b2]
        self.velocity = [np.zeros_like(p) for p in self.params]
        self.lr, self.momentum = lr, momentum
        self.weight_decay = weight_decay
        self.dtype = self.w1.dtype

    def step(self, x, labels):
        batch = x.shape[0]
        rows = np.arange(batch)
        # forward (nnff): hidden tanh_opt, softmax output
        hidden = x @ self.w1.T
        hidden += self.b1
        hidden *= self.dtype.type(TANH_OPT_B)
        np.tanh(hidden, out=hidden)
        hidden *= self.dtype.type(TANH_OPT_A)
        probs = hidden @ self.w2.T
        probs += self.b2
        probs -= probs.max(axis=1, keepdims=True)
        np.exp(probs, out=probs)
        probs /= probs.sum(axis=1, keepdims=True)
        loss = -np.log(probs[rows, labels]).mean()
        # backward (nnbp): d loss / d logits = (p - onehot) / B
        d_out = probs
        d_out[rows, labels] -= 1
        d_out *= self.dtype.type(1.0 / batch)
        grad_w2 = d_out.T @ hidden
        grad_b2 = d_out.sum(axis=0)
        d_hidden = d_out @ self.w2
        # tanh_opt'(x) from its output y: (b / a) (a^2 - y^2)
        hidden *= hidden
        np.subtract(self.dtype.type(TANH_OPT_A ** 2), hidden, out=hidden)
        hidden *= self.dtype.type(TANH_OPT_B / TANH_OPT_A)
        d_hidden *= hidden
        grad_w1 = d_hidden.T @ x
        grad_b1 = d_hidden.sum(axis=0)
        # update (nnapplygrads): weight decay, momentum, step
        lr = self.dtype.type(self.lr)
        decay = self.dtype.type(self.weight_decay)
        momentum = self.dtype.type(self.momentum)
        for param, grad, velocity in zip(
                self.params, (grad_w1, grad_b1, grad_w2, grad_b2),
                self.velocity):
            grad += decay * param
            velocity *= momentum
            velocity += grad
            param -= lr * velocity
        return loss

    def predict(self, x):
        hidden = TANH_OPT_A * np.tanh(TANH_OPT_B * (x @ self.w1.T + self.b1))
        return (hidden @ self.w2.T + self.b2).argmax(axis=1)


def torch_available():
    """The torch module, or None when PyTorch is not installed."""
    try:
        import torch
    except Exception:
        return None
    return torch


class TorchMLP:
    """The same MLP in PyTorch eager. step(x, labels) takes torch tensors
    (see to_torch) and returns the loss tensor."""

    def __init__(self, params, lr=0.05, momentum=0.5, weight_decay=1e-4):
        torch = torch_available()
        if torch is None:
            raise ImportError("TorchMLP needs PyTorch, which is not installed")
        self.torch = torch
        self.layers = []
        for weight, bias in params:
            layer = torch.nn.Linear(weight.shape[1], weight.shape[0],
                                    dtype=torch.from_numpy(weight).dtype)
            with torch.no_grad():
                layer.weight.copy_(torch.from_numpy(weight))
                layer.bias.copy_(torch.from_numpy(bias))
            self.layers.append(layer)
        self.optimizer = torch.optim.SGD(
            [p for layer in self.layers for p in layer.parameters()],
            lr=lr, momentum=momentum, weight_decay=weight_decay)

    def to_torch(self, x, labels):
        return (self.torch.from_numpy(x), self.torch.from_numpy(labels))

    def step(self, x, labels):
        torch = self.torch
        hidden = TANH_OPT_A * torch.tanh(TANH_OPT_B * self.layers[0](x))
        logits = self.layers[1](hidden)
        loss = torch.nn.functional.cross_entropy(logits, labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss
