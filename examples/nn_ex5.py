"""DeepLearnToolbox test_example_NN, ex5: plotting functionality.

NN([784, 20, 10]) with softmax outputs, 5 epochs of batch 1000;
--plot PNG draws the training loss and error per epoch (opts.plot = 1).
Inputs are z-scored with the training statistics (zscore/normalize).
Run: python examples/nn_ex5.py [--dataset mnist10k|fashion|mnist]
     [--data-dir DIR] [--seed N] [--protocol exact|matched] [--plot PNG]
"""
# examples/ is on sys.path: run as a script or by tests/test_examples.py
from _common import (epochs_for, load_data, make_parser, parse_args,
                     run_example, zscore)
from fastgrad.models import NN

EXACT_EPOCHS, BATCH_SIZE = 5, 1000


def main(argv=None):
    """Train and test; returns the run_example result dict."""
    parser = make_parser(__doc__)
    parser.add_argument("--plot", default=None, metavar="PNG",
                        help="write loss and error per epoch to this PNG")
    args = parse_args(argv, __doc__, parser)
    data = zscore(load_data(args))
    epochs = epochs_for(args, EXACT_EPOCHS, BATCH_SIZE, data.n_train)
    net = NN([784, 20, 10], seed=args.seed, output="softmax")

    def fit():
        net.fit(data.x_train, data.y_train, epochs=epochs,
                batch_size=BATCH_SIZE, progress=not args.quiet,
                plot=args.plot)

    return run_example("nn_ex5", args, fit,
                       lambda: net.error(data.x_test, data.labels_test),
                       epochs)


if __name__ == "__main__":
    main()
