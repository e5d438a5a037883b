"""DeepLearnToolbox test_example_NN, ex2: neural net with L2 weight decay.

NN([784, 100, 10]), weight_penalty_l2=1e-4, 1 epoch of batch 100.
Inputs are z-scored with the training statistics (zscore/normalize).
Run: python examples/nn_ex2.py [--dataset mnist10k|fashion|mnist]
     [--data-dir DIR] [--seed N] [--protocol exact|matched]
"""
# examples/ is on sys.path: run as a script or by tests/test_examples.py
from _common import run_nn_example


def main(argv=None):
    """Train and test; returns the run_example result dict."""
    return run_nn_example("nn_ex2", argv, __doc__, weight_penalty_l2=1e-4)


if __name__ == "__main__":
    main()
