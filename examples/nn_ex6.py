"""DeepLearnToolbox test_example_NN, ex6: neural net with plotting of
validation and training error.

NN([784, 20, 10]) with softmax outputs, 5 epochs of batch 1000 on the
training set less its first rows, which are the validation set (10,000 of
60,000 in the toolbox; 2,000 of mnist10k's 8,000). (The toolbox's comment
says sigmoid activation; its code keeps the default tanh_opt, as here.)
Inputs are z-scored with the training statistics (zscore/normalize).
Run: python examples/nn_ex6.py [--dataset mnist10k|fashion|mnist]
     [--data-dir DIR] [--seed N] [--protocol exact|matched] [--plot PNG]
"""
# examples/ is on sys.path: run as a script or by tests/test_examples.py
from _common import (epochs_for, load_data, log, make_parser, parse_args,
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
    # the toolbox's vx = train_x(1:10000,:): a sixth of its 60,000 rows;
    # on mnist10k the first 2,000 of 8,000
    n_val = 2000 if data.name == "mnist10k" else 10000
    val_x, val_y = data.x_train[:n_val], data.y_train[:n_val]
    train_x, train_y = data.x_train[n_val:], data.y_train[n_val:]
    log(args, f"training on {len(train_x)}, validating on {n_val}")
    epochs = epochs_for(args, EXACT_EPOCHS, BATCH_SIZE, len(train_x),
                        dlt_train_size=50000)
    net = NN([784, 20, 10], seed=args.seed, output="softmax")

    def fit():
        net.fit(train_x, train_y, epochs=epochs,
                batch_size=BATCH_SIZE, progress=not args.quiet,
                validation=(val_x, val_y), plot=args.plot)

    return run_example("nn_ex6", args, fit,
                       lambda: net.error(data.x_test, data.labels_test),
                       epochs)


if __name__ == "__main__":
    main()
