"""Shared command line, data loading and runner of the DeepLearnToolbox
examples (examples/*_ex*.py).

Every example script is `main(argv=None) -> dict` built from these pieces:

    args = parse_args(argv, __doc__)            # the shared CLI
    data = load_data(args)                       # [0, 1] floats, one-hot too
    epochs = epochs_for(args, exact_epochs=1, batch_size=100,
                        n_train=len(data.x_train))
    return run_example("nn_ex1", args, fit, evaluate, epochs)

(nn_ex1-nn_ex4 differ only in their NN options: run_nn_example.)

The shared CLI:
    --dataset mnist10k|fashion|mnist   (default mnist10k: the 8,000/2,000
                                        split of ../shared/data/README.md)
    --data-dir DIR                     (default: fastgrad.datasets' search)
    --seed N                           (default 0)
    --protocol exact|matched           (default matched)
    --threads N                        (fastgrad.set_num_threads)
    --quiet                            (no per-epoch lines)

Protocols. "exact" runs DeepLearnToolbox's epochs and batch sizes. "matched"
multiplies the epochs so that the number of parameter updates equals
DeepLearnToolbox's run on its 60,000 training images: ceil(exact_epochs *
(60000 // batch_size) / (n_train // batch_size)); on mnist10k (8,000 training
images) that is x8 for batch sizes 100 and 50 (7.5 rounded up), 38 epochs for
5 epochs of batch 1000. On the 60,000-image sets both protocols agree.

Importing this module does not import fastgrad.datasets; load_data does.
"""
import argparse
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATASETS = ("mnist10k", "fashion", "mnist")
PROTOCOLS = ("exact", "matched")
DLT_TRAIN_SIZE = 60000  # DeepLearnToolbox's mnist_uint8 training set


def make_parser(description):
    """The shared argparse parser; examples may add their own options."""
    parser = argparse.ArgumentParser(
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=DATASETS, default="mnist10k",
                        help="mnist10k: 8,000 train / 2,000 test images of "
                             "the MNIST test set (default); fashion: "
                             "Fashion-MNIST 60k/10k; mnist: MNIST 60k/10k")
    parser.add_argument("--data-dir", default=None,
                        help="directory holding the IDX files (default: "
                             "FASTGRAD_DATA, ~/.cache/fastgrad, system "
                             "locations)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of initialisation, shuffling and "
                             "sampling (default 0)")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="matched",
                        help="exact: DeepLearnToolbox's epochs; matched: as "
                             "many updates as DeepLearnToolbox on 60,000 "
                             "images (default)")
    parser.add_argument("--threads", type=int, default=None,
                        help="fastgrad threads (default: "
                             "fastgrad.get_num_threads())")
    parser.add_argument("--quiet", action="store_true",
                        help="print only the result line")
    return parser


def parse_args(argv, description, parser=None):
    """Parse argv (None: sys.argv[1:]) with the shared parser (or `parser`,
    made by make_parser and extended), and apply --threads."""
    parser = parser if parser is not None else make_parser(description)
    args = parser.parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            parser.error(f"--threads must be >= 1, got {args.threads}")
        import fastgrad
        fastgrad.set_num_threads(args.threads)
    return args


@dataclass
class Data:
    """A labelled train/test split, pixels scaled to [0, 1].

    x_train: (n_train, 784) or (n_train, 28, 28) float array
    labels_train: (n_train,) int64 class indices 0..9
    y_train: (n_train, 10) one-hot targets, dtype of x_train
    x_test, labels_test, y_test: the same for the test set
    """
    name: str
    x_train: np.ndarray
    labels_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    labels_test: np.ndarray
    y_test: np.ndarray

    @property
    def n_train(self):
        return len(self.x_train)


def _one_hot(labels, n_classes, dtype):
    out = np.zeros((len(labels), n_classes), dtype=dtype)
    out[np.arange(len(labels)), labels] = 1
    return out


def load_raw(dataset, data_dir=None):
    """(x_train, labels_train, x_test, labels_test) as stored: uint8 images
    (n, 28, 28) and integer labels, from fastgrad.datasets (its search
    path, then ../shared/data beside the checkout, as the bench)."""
    from fastgrad import datasets
    loaders = {"mnist10k": datasets.mnist10k_split,
               "fashion": datasets.load_fashion_mnist,
               "mnist": datasets.load_mnist}
    if dataset not in loaders:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of "
                         f"{DATASETS}")
    try:
        return loaders[dataset](data_dir)
    except FileNotFoundError:
        shared = Path(__file__).resolve().parents[2] / "shared" / "data"
        if data_dir is not None or not (shared / "mnist").is_dir():
            raise
        return loaders[dataset](shared)


def load_data(args, flatten=True, dtype="float32"):
    """The dataset of args (--dataset, --data-dir) as a Data with pixels
    x / 255 in [0, 1]: flatten=True gives (n, 784) rows (NN, SAE, DBN),
    flatten=False (n, 28, 28) images (CNN, CAE)."""
    x_train, labels_train, x_test, labels_test = load_raw(
        args.dataset, getattr(args, "data_dir", None))
    dtype = np.dtype(dtype)

    def scale(images):
        images = np.asarray(images)
        if flatten:
            images = images.reshape(len(images), -1)
        return np.ascontiguousarray(images, dtype=dtype) / dtype.type(255)

    labels_train = np.asarray(labels_train, dtype=np.int64)
    labels_test = np.asarray(labels_test, dtype=np.int64)
    n_classes = int(max(labels_train.max(), labels_test.max())) + 1
    return Data(args.dataset, scale(x_train), labels_train,
                _one_hot(labels_train, n_classes, dtype), scale(x_test),
                labels_test, _one_hot(labels_test, n_classes, dtype))


def zscore(data):
    """DeepLearnToolbox's `[train_x, mu, sigma] = zscore(train_x); test_x =
    normalize(test_x, mu, sigma)` on a Data (the NN examples), with the
    train statistics applied to the test set (fastgrad.datasets)."""
    from fastgrad import datasets
    x_train, mu, sigma = datasets.zscore(data.x_train)
    x_test = datasets.normalize(data.x_test, mu, sigma)
    dtype = data.x_train.dtype
    data.x_train = np.ascontiguousarray(x_train, dtype=dtype)
    data.x_test = np.ascontiguousarray(x_test, dtype=dtype)
    return data


def matched_epochs(exact_epochs, batch_size, n_train,
                   dlt_train_size=DLT_TRAIN_SIZE):
    """Epochs on n_train images that make at least as many updates as
    DeepLearnToolbox's exact_epochs on dlt_train_size images (the same
    number where it divides): ceil(exact_epochs * (dlt_train_size //
    batch_size) / (n_train // batch_size))."""
    updates_per_epoch = n_train // batch_size
    if updates_per_epoch < 1:
        raise ValueError(f"batch size {batch_size} is larger than the "
                         f"{n_train} training images")
    dlt_updates = exact_epochs * (dlt_train_size // batch_size)
    return max(1, math.ceil(dlt_updates / updates_per_epoch))


def epochs_for(args, exact_epochs, batch_size, n_train,
               dlt_train_size=DLT_TRAIN_SIZE):
    """Epochs to run under args.protocol (see matched_epochs)."""
    if args.protocol == "exact":
        return exact_epochs
    return matched_epochs(exact_epochs, batch_size, n_train, dlt_train_size)


def log(args, message):
    """Print unless --quiet."""
    if not getattr(args, "quiet", False):
        print(message, flush=True)


def run_example(name, args, fit, evaluate, epochs, extra=None):
    """Run one example: fit() trains (timed), evaluate() returns the test
    error (fraction misclassified), or a dict of test metrics for models
    without one (then test_error is None). Prints one result line and
    returns

        {"example", "dataset", "protocol", "seed", "epochs", "test_error",
         "seconds", "seconds_per_epoch", **extra}

    epochs: the number of training epochs fit() runs in all (summed over
    stages such as pre-training and fine-tuning), for seconds_per_epoch.
    fit() may return a dict, merged into the result (e.g. loss histories).
    """
    log(args, f"{name}: dataset={args.dataset} protocol={args.protocol} "
              f"seed={args.seed} epochs={epochs}")
    start = time.perf_counter()
    fitted = fit()
    seconds = time.perf_counter() - start
    metrics = evaluate()
    if not isinstance(metrics, dict):
        metrics = {"test_error": float(metrics)}
    result = {"example": name, "dataset": args.dataset,
              "protocol": args.protocol, "seed": args.seed,
              "epochs": epochs, "test_error": None, "seconds": seconds,
              "seconds_per_epoch": seconds / max(epochs, 1)}
    result.update(metrics)
    if isinstance(fitted, dict):
        result.update(fitted)
    if extra:
        result.update(extra)
    shown = ", ".join(f"{key.replace('_', ' ')} {value:.4f}"
                      for key, value in metrics.items())
    print(f"{name}: {shown} ({result['seconds_per_epoch']:.3f} s/epoch, "
          f"{epochs} epochs, {seconds:.2f} s)", flush=True)
    return result


def run_nn_example(name, argv, description, **nn_options):
    """test_example_NN ex1-ex4: NN([784, 100, 10], **nn_options) on z-scored
    inputs (zscore/normalize), DeepLearnToolbox's 1 epoch of batch 100
    (scaled by --protocol), then the test error; returns run_example's
    dict."""
    from fastgrad.models import NN

    args = parse_args(argv, description)
    data = zscore(load_data(args))
    epochs = epochs_for(args, 1, 100, data.n_train)
    net = NN([784, 100, 10], seed=args.seed, **nn_options)

    def fit():
        net.fit(data.x_train, data.y_train, epochs=epochs, batch_size=100,
                progress=not args.quiet)

    return run_example(name, args, fit,
                       lambda: net.error(data.x_test, data.labels_test),
                       epochs)
