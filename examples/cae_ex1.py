"""DeepLearnToolbox test_example_CAE, ex1: a convolutional autoencoder.

CAE with 10 output maps, 5x5 input and output kernels, 2x2 max pooling
(max3d), no input noise, momentum 0.9; 1000 rounds of batch 1 (caetrain's
opts.rounds, opts.batchsize). The toolbox's example multiplies its uint8
images by 255 (saturating every non-zero pixel) before dividing by 255, so
it trains on binary images; so does this script (pixel > 0), unless
--grey. The toolbox has no error bar for this example; we report the mean
reconstruction loss 0.5 * sum(e^2) / N on the test images (test_loss) and
over the last 100 training rounds. The number of rounds does not depend on
the training set, so both protocols run the same rounds.
Run: python examples/cae_ex1.py [--dataset mnist10k|fashion|mnist]
     [--data-dir DIR] [--seed N] [--protocol exact|matched] [--rounds N]
     [--grey] [--visualize PNG]
"""
import numpy as np

# examples/ is on sys.path: run as a script or by tests/test_examples.py
from _common import load_data, make_parser, parse_args, run_example
from fastgrad.models import CAE

ROUNDS, BATCH_SIZE = 1000, 1


def main(argv=None):
    """Train and test; returns the run_example result (test_error is None,
    test_loss the reconstruction loss)."""
    parser = make_parser(__doc__)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--grey", action="store_true",
                        help="keep grey levels (x / 255) instead of the "
                             "toolbox's binary images")
    parser.add_argument("--visualize", default=None, metavar="PNG",
                        help="write the output kernels as a mosaic")
    args = parse_args(argv, __doc__, parser)
    data = load_data(args, flatten=False)
    x_train, x_test = data.x_train[:, None], data.x_test[:, None]
    if not args.grey:
        x_train = (x_train > 0).astype(x_train.dtype)
        x_test = (x_test > 0).astype(x_test.dtype)
    cae = CAE(input_maps=1, output_maps=10, kernel_size=5, scale=2,
              noise=0.0, momentum=0.9, seed=args.seed)

    def fit():
        cae.fit(x_train, rounds=args.rounds, batch_size=BATCH_SIZE,
                progress=not args.quiet)
        if args.visualize:
            from fastgrad.visualize import visualize
            # the output kernels of the one image channel: (10, 5, 5)
            visualize(cae.output_kernels.data[0], args.visualize, scale=8)
        return {"train_loss_last_100": float(
            np.mean(cae.history["loss"][-100:]))}

    def evaluate():
        return {"test_loss": cae.evaluate(x_test)}

    return run_example("cae_ex1", args, fit, evaluate, epochs=1,
                       extra={"rounds": args.rounds})


if __name__ == "__main__":
    main()
