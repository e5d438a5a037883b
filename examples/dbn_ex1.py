"""DeepLearnToolbox test_example_DBN, ex1: train a 100 hidden unit RBM and
visualise its weights.

DBN([784, 100]) (one RBM), CD-1 as rbmtrain, learning rate (alpha) 1,
momentum 0, 1 epoch of batch 100 (matched protocol on mnist10k: 8 epochs).
Inputs are x / 255 in [0, 1], as the toolbox. There is no classifier: the
result is the reconstruction error (train: rbmtrain's sampled one-step
reconstruction; test: the mean-field reconstruction).
Run: python examples/dbn_ex1.py [--dataset mnist10k|fashion|mnist]
     [--data-dir DIR] [--seed N] [--protocol exact|matched]
     [--visualize PNG]
"""
import numpy as np

# examples/ is on sys.path: run as a script or by tests/test_examples.py
from _common import (epochs_for, load_data, make_parser, parse_args,
                     run_example)
from fastgrad.models.dbn import DBN

EXACT_EPOCHS, BATCH_SIZE = 1, 100


def main(argv=None):
    """Train the RBM, write its filters, return the run_example result with
    test_reconstruction_error and train_reconstruction_error."""
    parser = make_parser(__doc__)
    parser.add_argument("--visualize", default=None, metavar="PNG",
                        help="write the RBM's 100 filters as a mosaic "
                             "(DeepLearnToolbox's visualize)")
    args = parse_args(argv, __doc__, parser)
    data = load_data(args)
    epochs = epochs_for(args, EXACT_EPOCHS, BATCH_SIZE, data.n_train)
    dbn = DBN([784, 100], learning_rate=1, momentum=0, seed=args.seed)

    def fit():
        history = dbn.train(data.x_train, epochs=epochs,
                            batch_size=BATCH_SIZE, progress=not args.quiet)
        if args.visualize:
            from fastgrad.visualize import visualize
            # one filter per row: W (100, 784)
            visualize(dbn.rbms[0].weight.data, args.visualize)
        return {"train_reconstruction_error": history[0][-1]}

    def evaluate():
        x = data.x_test
        error = ((x - dbn.rbms[0].reconstruct(x)) ** 2).sum() / len(x)
        return {"test_reconstruction_error": float(error)}

    return run_example("dbn_ex1", args, fit, evaluate, epochs)


if __name__ == "__main__":
    main()
