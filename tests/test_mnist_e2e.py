"""End to end: a 784-100-10 net built from Tensor ops, trained with plain
SGD written out here (no optimiser class), on the real mnist10k split."""
import numpy as np

import fastgrad
from fastgrad import datasets, ops


def test_mlp_from_tensor_ops_learns_mnist(data_dir):
    x_train, y_train, x_test, y_test = datasets.mnist10k_split(data_dir)
    x_train = x_train.reshape(len(x_train), -1).astype(np.float32) / 255
    x_test = x_test.reshape(len(x_test), -1).astype(np.float32) / 255
    rng = np.random.default_rng(0)

    def init(n_out, n_in):
        bound = np.sqrt(6 / (n_in + n_out))
        return fastgrad.tensor(rng.uniform(-bound, bound, (n_out, n_in)),
                               dtype=np.float32, requires_grad=True)

    params = [init(100, 784), fastgrad.tensor(np.zeros(100, np.float32),
                                              requires_grad=True),
              init(10, 100), fastgrad.tensor(np.zeros(10, np.float32),
                                             requires_grad=True)]
    w1, b1, w2, b2 = params

    def logits(x):
        return ops.linear(ops.linear(x, w1, b1, "tanh_opt"), w2, b2)

    batch_size, learning_rate = 50, 0.5
    for epoch in range(3):
        order = rng.permutation(len(x_train))
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            loss = ops.softmax_cross_entropy(logits(x_train[rows]),
                                             y_train[rows])
            loss.backward()
            for p in params:
                p.data -= learning_rate * p.grad
                p.grad = None
    with fastgrad.no_grad():
        predicted = logits(x_test).numpy().argmax(axis=1)
    test_error = np.mean(predicted != y_test)
    print(f"mnist10k test error after 3 epochs: {test_error:.4f}")
    assert test_error < 0.09
