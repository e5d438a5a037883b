"""DeepLearnToolbox test_example_DBN, ex2: train a 100-100 hidden unit DBN
and use its weights to initialise a feed-forward net.

DBN([784, 100, 100]): each RBM CD-1 (rbmtrain), learning rate (alpha) 1,
momentum 0, batch 100, 1 epoch, the second on the first one's hidden
probabilities; unfolded (dbnunfoldtonn) into NN([784, 100, 100, 10]) with
sigmoid hidden units and outputs, learning rate 2, momentum 0.5, trained
1 epoch of batch 100. The matched protocol on mnist10k runs 8 epochs for
each RBM and for the fine-tuning. Inputs are x / 255, as the toolbox.
Run: python examples/dbn_ex2.py [--dataset mnist10k|fashion|mnist]
     [--data-dir DIR] [--seed N] [--protocol exact|matched]
"""
# examples/ is on sys.path: run as a script or by tests/test_examples.py
from _common import epochs_for, load_data, parse_args, run_example
from fastgrad.models.dbn import DBN

EXACT_EPOCHS, BATCH_SIZE = 1, 100


def main(argv=None):
    """Pre-train, unfold, fine-tune and test; returns the run_example
    result (test_error, seconds_per_epoch, ...)."""
    args = parse_args(argv, __doc__)
    data = load_data(args)
    epochs = epochs_for(args, EXACT_EPOCHS, BATCH_SIZE, data.n_train)
    dbn = DBN([784, 100, 100], learning_rate=1, momentum=0, seed=args.seed)
    result = {}

    def fit():
        progress = not args.quiet
        dbn.train(data.x_train, epochs=epochs, batch_size=BATCH_SIZE,
                  progress=progress)
        result["net"] = net = dbn.to_nn(10, activation="sigm",
                                        output="sigm", learning_rate=2,
                                        momentum=0.5)
        net.fit(data.x_train, data.y_train, epochs=epochs,
                batch_size=BATCH_SIZE, progress=progress)

    # two RBMs and the fine-tuning: 3 * epochs sweeps in all
    return run_example("dbn_ex2", args, fit,
                       lambda: result["net"].error(data.x_test,
                                                   data.labels_test),
                       3 * epochs)


if __name__ == "__main__":
    main()
