"""DeepLearnToolbox's test_example_CNN: a 6c-2s-12c-2s network on MNIST.

    python examples/cnn_ex1.py                       # mnist10k, matched
    python examples/cnn_ex1.py --dataset fashion --protocol exact

The network: 28x28 inputs, 5x5 convolutions to 6 then 12 sigmoid maps,
each followed by 2x2 mean-pool subsampling, a fully-connected sigmoid
output of 10, loss 0.5 * sum(e^2) / batch, plain SGD with alpha = 1, batch
size 50. "exact" trains 1 epoch (DeepLearnToolbox's setting on 60,000
images); "matched" on mnist10k trains 8 epochs of 8,000 images, the same
number of updates (1,200). DeepLearnToolbox reaches a test error of about
0.11 on mnist10k matched. Prints the test error and the seconds per epoch.
"""
# examples/ is on sys.path: run as a script or by tests/test_examples.py
from _common import epochs_for, load_data, log, parse_args, run_example

LAYERS = [{"type": "i"},
          {"type": "c", "output_maps": 6, "kernel_size": 5},
          {"type": "s", "scale": 2},
          {"type": "c", "output_maps": 12, "kernel_size": 5},
          {"type": "s", "scale": 2}]
BATCH_SIZE = 50
ALPHA = 1.0
EXACT_EPOCHS = 1


def main(argv=None):
    """Run the example; returns {"test_error", "seconds_per_epoch", ...}."""
    from fastgrad.models.cnn import CNN

    args = parse_args(argv, __doc__)
    data = load_data(args, flatten=False)
    epochs = epochs_for(args, EXACT_EPOCHS, BATCH_SIZE, data.n_train)
    net = CNN(LAYERS, n_outputs=data.y_train.shape[1], seed=args.seed)

    def progress(epoch, loss):
        log(args, f"epoch {epoch + 1}/{epochs}: mean loss {loss:.4f}")

    def fit():
        net.train(data.x_train, data.y_train, epochs=epochs,
                  batch_size=BATCH_SIZE, alpha=ALPHA, progress=progress)
        return {"final_loss": net.losses[-1]}

    return run_example("cnn_ex1", args, fit,
                       lambda: net.error(data.x_test, data.labels_test),
                       epochs)


if __name__ == "__main__":
    main()
