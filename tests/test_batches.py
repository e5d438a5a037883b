"""fastgrad.batches: the minibatch iterator and the batch-size schedule."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from fastgrad.batches import count_batches, epoch_batch_size, minibatches
from fastgrad.optim import BatchSizeSchedule


@given(n_samples=st.integers(0, 97), batch_size=st.integers(1, 40),
       drop_last=st.booleans(), shuffle=st.booleans())
def test_batches_cover_the_data_once(n_samples, batch_size, drop_last,
                                     shuffle):
    if drop_last and 0 < n_samples < batch_size:
        with pytest.raises(ValueError, match=str(batch_size)):
            minibatches(n_samples, batch_size, drop_last=True)
        return
    rng = np.random.default_rng(0) if shuffle else None
    batches = list(minibatches(n_samples, batch_size, rng,
                               drop_last=drop_last))
    assert len(batches) == count_batches(n_samples, batch_size, drop_last)
    sizes = [len(b) for b in batches]
    full, rest = divmod(n_samples, batch_size)
    expected = [batch_size] * full + ([rest] if rest and not drop_last
                                      else [])
    assert sizes == expected
    seen = np.concatenate(batches) if batches else np.zeros(0, np.intp)
    assert len(np.unique(seen)) == len(seen)
    assert set(seen.tolist()) <= set(range(n_samples))
    if not drop_last:
        assert sorted(seen.tolist()) == list(range(n_samples))
    if not shuffle:
        assert seen.tolist() == list(range(len(seen)))
    assert all(b.dtype == np.intp for b in batches)


def test_shuffling_is_reproducible_and_differs_between_epochs():
    first = [b.tolist() for b in minibatches(
        20, 6, np.random.default_rng(5), drop_last=False)]
    again = [b.tolist() for b in minibatches(
        20, 6, np.random.default_rng(5), drop_last=False)]
    assert first == again
    rng = np.random.default_rng(5)
    epoch0 = np.concatenate(list(minibatches(20, 6, rng, drop_last=True)))
    epoch1 = np.concatenate(list(minibatches(20, 6, rng, drop_last=True)))
    assert not np.array_equal(epoch0, epoch1)


def test_batch_size_schedule_is_consumed_per_epoch():
    schedule = BatchSizeSchedule([1, 3], factor=2)
    sizes = [[len(b) for b in minibatches(40, 5, drop_last=True,
                                          batch_size_schedule=schedule,
                                          epoch=epoch)]
             for epoch in range(4)]
    assert sizes == [[5] * 8, [10] * 4, [10] * 4, [20] * 2]
    assert epoch_batch_size(5, lambda epoch: 7 * (epoch + 1), 2) == 21
    assert len(next(iter(minibatches(
        40, 5, drop_last=False, batch_size_schedule=lambda e: 16,
        epoch=0)))) == 16


def test_bad_arguments_raise():
    with pytest.raises(TypeError, match="drop_last"):
        minibatches(10, 3)
    with pytest.raises(TypeError, match="None"):
        minibatches(10, 3, drop_last=None)
    with pytest.raises(ValueError, match="0"):
        minibatches(10, 0, drop_last=False)
    with pytest.raises(ValueError, match="-1"):
        minibatches(-1, 3, drop_last=False)
    with pytest.raises(TypeError, match="Generator"):
        minibatches(10, 3, 42, drop_last=False)
    with pytest.raises(ValueError, match="epoch 1.*0"):
        minibatches(10, 3, drop_last=False,
                    batch_size_schedule=lambda e: 3 * (1 - e), epoch=1)
    with pytest.raises(TypeError, match="batch_size_schedule"):
        minibatches(10, 3, drop_last=False, batch_size_schedule=5)


@given(st.integers(0, 50), st.integers(1, 9))
def test_split_batch_cuts_like_array_split(n, parts):
    from fastgrad.batches import split_batch
    index = np.arange(n) * 3
    pieces = split_batch(index, parts)
    expected = np.array_split(index, parts)
    assert len(pieces) == parts
    for piece, want in zip(pieces, expected):
        np.testing.assert_array_equal(piece, want)
    with pytest.raises(ValueError, match="parts"):
        split_batch(index, 0)
