"""DeepLearnToolbox test_example_NN, ex1: vanilla neural net.

NN([784, 100, 10]) with the toolbox's defaults (tanh_opt hidden units,
sigmoid outputs, learning rate 2, momentum 0.5), 1 epoch of batch 100.
Inputs are z-scored with the training statistics (zscore/normalize).
Run: python examples/nn_ex1.py [--dataset mnist10k|fashion|mnist]
     [--data-dir DIR] [--seed N] [--protocol exact|matched]
"""
# examples/ is on sys.path: run as a script or by tests/test_examples.py
from _common import run_nn_example


def main(argv=None):
    """Train and test; returns the run_example result dict."""
    return run_nn_example("nn_ex1", argv, __doc__)


if __name__ == "__main__":
    main()
