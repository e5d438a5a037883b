"""DeepLearnToolbox test_example_NN, ex4: neural net with sigmoid activation
function.

NN([784, 100, 10]), activation='sigm', learning_rate=1, 1 epoch of
batch 100.
Inputs are z-scored with the training statistics (zscore/normalize).
Run: python examples/nn_ex4.py [--dataset mnist10k|fashion|mnist]
     [--data-dir DIR] [--seed N] [--protocol exact|matched]
"""
# examples/ is on sys.path: run as a script or by tests/test_examples.py
from _common import (epochs_for, load_data, parse_args,
                     run_example, zscore)
from fastgrad.models import NN

EXACT_EPOCHS, BATCH_SIZE = 1, 100


def main(argv=None):
    """Train and test; returns the run_example result dict."""
    args = parse_args(argv, __doc__)
    data = zscore(load_data(args))
    epochs = epochs_for(args, EXACT_EPOCHS, BATCH_SIZE, data.n_train)
    net = NN([784, 100, 10], seed=args.seed,
            activation="sigm", learning_rate=1)

    def fit():
        net.fit(data.x_train, data.y_train, epochs=epochs,
                batch_size=BATCH_SIZE, progress=not args.quiet)

    return run_example("nn_ex4", args, fit,
                       lambda: net.error(data.x_test, data.labels_test),
                       epochs)


if __name__ == "__main__":
    main()
