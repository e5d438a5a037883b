"""DeepLearnToolbox test_example_SAE, ex1: train a 100 hidden unit stacked
denoising autoencoder (SDAE) and use it to initialise a feed-forward net.

SAE([784, 100]) with activation='sigm', learning_rate=1,
input_zero_masked_fraction=0.5, 1 epoch of batch 100; then NN([784, 100,
10]) (activation='sigm', learning_rate=1) whose first layer is the encoder,
1 epoch of batch 100. Inputs are x / 255 (no z-scoring, as the toolbox).
Run: python examples/sae_ex1.py [--dataset mnist10k|fashion|mnist]
     [--data-dir DIR] [--seed N] [--protocol exact|matched]
     [--visualize PNG]
"""
# examples/ is on sys.path: run as a script or by tests/test_examples.py
from _common import (epochs_for, load_data, make_parser, parse_args,
                     run_example)
from fastgrad.models import SAE

EXACT_EPOCHS, BATCH_SIZE = 1, 100


def main(argv=None):
    """Pre-train, fine-tune and test; returns the run_example result."""
    parser = make_parser(__doc__)
    parser.add_argument("--visualize", default=None, metavar="PNG",
                        help="write the encoder's filters as a mosaic "
                             "(DeepLearnToolbox's visualize)")
    args = parse_args(argv, __doc__, parser)
    data = load_data(args)
    epochs = epochs_for(args, EXACT_EPOCHS, BATCH_SIZE, data.n_train)
    sae = SAE([784, 100], seed=args.seed, activation="sigm",
              learning_rate=1, input_zero_masked_fraction=0.5)
    result = {}

    def fit():
        progress = not args.quiet
        sae.fit(data.x_train, epochs=epochs, batch_size=BATCH_SIZE,
                progress=progress)
        if args.visualize:
            from fastgrad.visualize import visualize
            # one filter per row: the encoder's weights (100, 784)
            visualize(sae.autoencoders[0].weights[0].data, args.visualize)
        result["net"] = net = sae.to_nn(10, activation="sigm",
                                        learning_rate=1)
        net.fit(data.x_train, data.y_train, epochs=epochs,
                batch_size=BATCH_SIZE, progress=progress)

    # pre-training and fine-tuning: 2 * epochs sweeps in all
    return run_example("sae_ex1", args, fit,
                       lambda: result["net"].error(data.x_test,
                                                   data.labels_test),
                       2 * epochs)


if __name__ == "__main__":
    main()
