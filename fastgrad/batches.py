"""The minibatch iterator: one epoch's shuffled index arrays.

    rng = np.random.default_rng(seed)
    for epoch in range(n_epochs):
        optimizer.set_epoch(epoch)
        for index in minibatches(len(x), 100, rng, drop_last=False,
                                 batch_size_schedule=schedule, epoch=epoch):
            ...forward/backward on x[index], y[index]...
            optimizer.step(batch_size=len(index))

What happens to the last batch when the batch size does not divide the data
is a decision the caller makes explicitly (drop_last has no default):
drop_last=True drops it (every step sees exactly B samples, like
DeepLearnToolbox, which requires B to divide the data), drop_last=False keeps
it as a smaller batch (every sample is seen each epoch; with
lr_scaling="linear" its learning rate shrinks in proportion, with a mean
loss and lr_scaling="none" it gets the full lr from fewer samples).
"""
import numbers

import numpy as np

__all__ = ["minibatches", "count_batches", "epoch_batch_size", "split_batch"]


def _positive(name, value):
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
            or value < 1):
        raise ValueError(f"minibatches: {name} must be an integer >= 1, got "
                         f"{value!r}")
    return int(value)


def epoch_batch_size(batch_size, batch_size_schedule=None, epoch=0):
    """The batch size of `epoch`: batch_size, or what the schedule (a
    fastgrad.optim.BatchSizeSchedule, or any callable epoch -> size) makes
    of it."""
    batch_size = _positive("batch_size", batch_size)
    if batch_size_schedule is None:
        return batch_size
    if hasattr(batch_size_schedule, "batch_size"):
        size = batch_size_schedule.batch_size(epoch, batch_size)
    elif callable(batch_size_schedule):
        size = batch_size_schedule(epoch)
    else:
        raise TypeError(f"minibatches: batch_size_schedule must be a "
                        f"BatchSizeSchedule or a callable epoch -> batch "
                        f"size, got {batch_size_schedule!r}")
    return _positive(f"scheduled batch size (epoch {epoch})", size)


def count_batches(n_samples, batch_size, drop_last):
    """Number of batches in an epoch of n_samples."""
    full, rest = divmod(n_samples, batch_size)
    return full if drop_last or rest == 0 else full + 1


def minibatches(n_samples, batch_size, rng=None, *, drop_last,
                batch_size_schedule=None, epoch=0):
    """Yield one epoch of minibatches as int index arrays into the data.

    n_samples: number of samples; batch_size: samples per batch (the base
    size when batch_size_schedule is given); rng: a numpy.random.Generator
    that shuffles the order every epoch, or None for the order 0..n-1;
    drop_last: True drops a last batch smaller than batch_size, False keeps
    it (required, no default); batch_size_schedule: a
    fastgrad.optim.BatchSizeSchedule (or callable epoch -> size) giving this
    epoch's batch size; epoch: the 0-based epoch it is asked about.
    Yields (size,) intp arrays; every sample appears at most once.
    """
    if (isinstance(n_samples, bool) or not isinstance(n_samples,
                                                      numbers.Integral)
            or n_samples < 0):
        raise ValueError(f"minibatches: n_samples must be an integer >= 0, "
                         f"got {n_samples!r}")
    if not isinstance(drop_last, (bool, np.bool_)):
        raise TypeError(f"minibatches: drop_last must be True or False, got "
                        f"{drop_last!r}")
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise TypeError(f"minibatches: rng must be a numpy.random.Generator "
                        f"(e.g. numpy.random.default_rng(seed)) or None, got "
                        f"{rng!r}")
    size = epoch_batch_size(batch_size, batch_size_schedule, epoch)
    if drop_last and 0 < n_samples < size:
        raise ValueError(f"minibatches: batch size {size} is larger than the "
                         f"{n_samples} samples and drop_last=True would give "
                         f"an empty epoch")
    return _batches(int(n_samples), size, rng, bool(drop_last))


def _batches(n_samples, size, rng, drop_last):
    order = (np.arange(n_samples, dtype=np.intp) if rng is None
             else rng.permutation(n_samples).astype(np.intp, copy=False))
    stop = n_samples - n_samples % size if drop_last else n_samples
    for start in range(0, stop, size):
        yield order[start:start + size]


def split_batch(index, parts):
    """Cut one batch's index array into `parts` contiguous pieces whose
    sizes differ by at most one, the larger first (numpy.array_split's
    rule); pieces may be empty when parts > len(index). Gradient
    accumulation cuts a batch into micro-batches this way, and data-parallel
    rank r takes piece r, so N ranks see the micro-batches of one process
    accumulating N of them."""
    parts = _positive("parts", parts)
    size, extra = divmod(len(index), parts)
    pieces, start = [], 0
    for part in range(parts):
        stop = start + size + (part < extra)
        pieces.append(index[start:stop])
        start = stop
    return pieces
