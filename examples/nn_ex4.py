"""DeepLearnToolbox test_example_NN, ex4: neural net with sigmoid activation
function.

NN([784, 100, 10]), activation='sigm', learning_rate=1, 1 epoch of
batch 100.
Inputs are z-scored with the training statistics (zscore/normalize).
Run: python examples/nn_ex4.py [--dataset mnist10k|fashion|mnist]
     [--data-dir DIR] [--seed N] [--protocol exact|matched]
"""
# examples/ is on sys.path: run as a script or by tests/test_examples.py
from _common import run_nn_example


def main(argv=None):
    """Train and test; returns the run_example result dict."""
    return run_nn_example("nn_ex4", argv, __doc__,
                          activation="sigm", learning_rate=1)


if __name__ == "__main__":
    main()
