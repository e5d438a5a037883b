"""DeepLearnToolbox test_example_NN, ex3: neural net with dropout.

NN([784, 100, 10]), dropout_fraction=0.5, 1 epoch of batch 100.
Inputs are z-scored with the training statistics (zscore/normalize).
Run: python examples/nn_ex3.py [--dataset mnist10k|fashion|mnist]
     [--data-dir DIR] [--seed N] [--protocol exact|matched]
"""
# examples/ is on sys.path: run as a script or by tests/test_examples.py
from _common import run_nn_example


def main(argv=None):
    """Train and test; returns the run_example result dict."""
    return run_nn_example("nn_ex3", argv, __doc__, dropout_fraction=0.5)


if __name__ == "__main__":
    main()
