"""Checkpoints: round trip, no pickle, atomic writes, validation, RNG state."""
import json
import os
import zipfile

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

from fastgrad import io

DTYPES = [np.float32, np.float64, np.int64, np.int32, np.uint8, np.bool_,
          np.float16, np.complex128]


def files_in(directory):
    return sorted(p.name for p in directory.iterdir())


@given(arrays=st.dictionaries(
    st.text("abcxyz_0123", min_size=1, max_size=6),
    hnp.arrays(st.sampled_from(DTYPES),
               hnp.array_shapes(min_dims=0, max_dims=3, min_side=0,
                                max_side=4)),
    max_size=5),
    compress=st.booleans())
def test_round_trip_any_arrays(tmp_path_factory, arrays, compress):
    path = tmp_path_factory.mktemp("ckpt") / "c.npz"
    io.save_checkpoint(path, arrays, meta={"n": len(arrays)},
                       compress=compress)
    loaded, meta = io.load_checkpoint(path, expected=io.describe(arrays))
    assert meta == {"n": len(arrays)}
    assert set(loaded) == set(arrays)
    for name, array in arrays.items():
        assert loaded[name].dtype == array.dtype
        np.testing.assert_array_equal(loaded[name], array)


def test_nested_scalars_strings_and_plain_numpy_load(tmp_path):
    path = tmp_path / "model.ckpt"
    weight = np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3))
    state = {"weight": weight,
             "optimizer": {"state": {0: {"momentum_buffer": np.ones(3)}},
                           "lr": 0.5, "step": 12, "nesterov": False},
             "activation": "tanh_opt"}
    io.save_checkpoint(path, state, meta={"class": "NN", "sizes": [784, 10],
                                          "epoch": 3})
    assert files_in(tmp_path) == ["model.ckpt"]     # no suffix added, no temp
    with np.load(path, allow_pickle=False) as raw:  # a plain .npz
        assert "optimizer/state/0/momentum_buffer" in raw.files
    arrays, meta = io.load_checkpoint(path)
    assert meta == {"class": "NN", "sizes": [784, 10], "epoch": 3}
    np.testing.assert_array_equal(arrays["weight"], weight)
    assert arrays["optimizer/lr"].shape == () and arrays["optimizer/lr"] == 0.5
    assert arrays["optimizer/step"] == 12
    assert arrays["optimizer/nesterov"].dtype == np.bool_
    assert str(arrays["activation"]) == "tanh_opt"
    tree = io.unflatten(arrays)
    np.testing.assert_array_equal(
        tree["optimizer"]["state"]["0"]["momentum_buffer"], np.ones(3))


def test_save_rejects_pickle_reserved_and_duplicate_keys(tmp_path):
    path = tmp_path / "c.npz"
    with pytest.raises(TypeError, match="'bad'.*object"):
        io.save_checkpoint(path, {"bad": np.array([{}, 1], dtype=object)})
    with pytest.raises(TypeError, match="JSON"):
        io.save_checkpoint(path, {"a": np.ones(1)}, meta={"x": np.ones(2)})
    with pytest.raises(ValueError, match="reserved"):
        io.save_checkpoint(path, {"__fastgrad__": np.ones(1)})
    with pytest.raises(ValueError, match="'a/b' occurs twice"):
        io.save_checkpoint(path, {"a/b": 1, "a": {"b": 2}})
    with pytest.raises(ValueError, match="empty key"):
        io.save_checkpoint(path, {"a": {"": 1}})
    assert files_in(tmp_path) == []


def test_failed_save_leaves_previous_file_untouched(tmp_path, monkeypatch):
    path = tmp_path / "c.npz"
    io.save_checkpoint(path, {"a": np.arange(3)})
    before = path.read_bytes()
    calls = []

    def failing_write_array(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full (simulated)")
        return original(*args, **kwargs)

    original = np.lib.format.write_array
    monkeypatch.setattr(np.lib.format, "write_array", failing_write_array)
    with pytest.raises(OSError, match="simulated"):
        io.save_checkpoint(path, {"a": np.arange(5), "b": np.zeros(2)})
    assert path.read_bytes() == before
    assert files_in(tmp_path) == ["c.npz"]


def test_expected_layout_mismatches_are_all_named(tmp_path):
    path = tmp_path / "c.npz"
    io.save_checkpoint(path, {"w": np.zeros((3, 4), np.float32),
                              "b": np.zeros(4, np.float32),
                              "extra": np.zeros(1), "name": "nn"})
    expected = {"w": ((4, 3), np.float32), "b": ((4,), np.float64),
                "missing": ((2,), np.float32), "name": ((), np.str_)}
    with pytest.raises(io.CheckpointError) as info:
        io.load_checkpoint(path, expected=expected)
    message = str(info.value)
    assert str(path) in message
    assert "key 'w': expected shape (4, 3), found (3, 4)" in message
    assert "key 'b': expected dtype float64, found float32" in message
    assert "missing key 'missing' (expected shape (2,)" in message
    assert "unexpected key 'extra' (shape (1,), dtype float64)" in message
    assert "'name'" not in message          # any string length is fine
    # None skips a check.
    arrays, _ = io.load_checkpoint(path, expected={
        "w": (None, np.float32), "b": ((4,), None), "extra": (None, None),
        "name": ((), None)})
    assert arrays["w"].shape == (3, 4)
    assert isinstance(info.value, ValueError)


def _corruptions(data):
    # A byte inside the first member's payload (after its local header and
    # the .npy header), a cut in the middle and at the end, garbage, empty.
    flip = bytearray(data)
    flip[len(data) // 4] ^= 0xFF
    return {"flipped byte": bytes(flip),
            "truncated half": data[:len(data) // 2],
            "truncated tail": data[:-10], "garbage": b"not a zip file" * 9,
            "empty": b""}


@pytest.mark.parametrize("compress", [False, True])
def test_corrupt_files_raise_naming_the_file(tmp_path, compress):
    good = tmp_path / "good.npz"
    io.save_checkpoint(good, {"w": np.linspace(0, 1, 4000)}, compress=compress)
    for label, data in _corruptions(good.read_bytes()).items():
        bad = tmp_path / f"bad-{label.replace(' ', '-')}.npz"
        bad.write_bytes(data)
        with pytest.raises(io.CheckpointError) as info:
            io.load_checkpoint(bad)
        assert str(bad) in str(info.value), label
        assert isinstance(info.value, ValueError)
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        io.load_checkpoint(tmp_path / "nope.npz")


def test_foreign_files_are_not_checkpoints(tmp_path):
    np.savez(tmp_path / "plain.npz", w=np.ones(2))
    with pytest.raises(io.CheckpointError, match="not a fastgrad checkpoint"):
        io.load_checkpoint(tmp_path / "plain.npz")
    np.save(tmp_path / "bare.npy", np.ones(2))
    with pytest.raises(io.CheckpointError, match="bare .npy"):
        io.load_checkpoint(tmp_path / "bare.npy")
    pickled = tmp_path / "pickled.npz"
    with zipfile.ZipFile(pickled, "w") as archive:
        with archive.open("w.npy", "w") as member:
            np.lib.format.write_array(member, np.array([{}], dtype=object),
                                      allow_pickle=True)
        with archive.open("__fastgrad__.npy", "w") as member:
            np.lib.format.write_array(member, np.array(json.dumps(
                {"format": "fastgrad-checkpoint", "version": 1, "meta": {}})))
    with pytest.raises(io.CheckpointError, match="pickled.npz"):
        io.load_checkpoint(pickled)
    future = tmp_path / "future.npz"
    with zipfile.ZipFile(future, "w") as archive:
        with archive.open("__fastgrad__.npy", "w") as member:
            np.lib.format.write_array(member, np.array(json.dumps(
                {"format": "fastgrad-checkpoint", "version": 99, "meta": {}})))
    with pytest.raises(io.CheckpointError, match="version 99"):
        io.load_checkpoint(future)


# ------------------------------------------------- the model usage pattern

class ToyModel:
    """Follows the recipe in fastgrad.io's docstring."""

    def __init__(self, n_in, n_out, seed):
        self.rng = np.random.default_rng(seed)
        self.weight = self.rng.normal(size=(n_out, n_in)).astype(np.float32)
        self.bias = np.zeros(n_out, np.float32)
        self.velocity = {"weight": np.zeros_like(self.weight),
                         "bias": np.zeros_like(self.bias)}
        self.step_count = np.zeros((), np.int64)

    def state_arrays(self):
        return {"weight": self.weight, "bias": self.bias,
                "optimizer": {"velocity": self.velocity,
                              "step": self.step_count},
                "rng": io.generator_state(self.rng)}

    def save(self, path):
        io.save_checkpoint(path, self.state_arrays(), meta={"class": "Toy"})

    def load(self, path):
        current = io.flatten(self.state_arrays())
        arrays, _ = io.load_checkpoint(path, expected=io.describe(current))
        saved_rng = io.restore_generator(arrays.pop("rng"))
        for name, value in arrays.items():
            current[name][...] = value
        io.restore_generator(saved_rng, self.rng)

    def train_step(self, x, y, lr=0.1, momentum=0.5):
        order = self.rng.permutation(x.shape[0])[:8]
        noise = self.rng.normal(scale=0.01, size=self.weight.shape)
        error = x[order] @ self.weight.T + self.bias - y[order]
        grad_w = (error.T @ x[order]) / 8 + noise.astype(np.float32)
        grad_b = error.mean(0)
        self.velocity["weight"] *= momentum
        self.velocity["weight"] -= lr * grad_w
        self.velocity["bias"] *= momentum
        self.velocity["bias"] -= lr * grad_b
        self.weight += self.velocity["weight"]
        self.bias += self.velocity["bias"]
        self.step_count += 1


def test_resumed_training_is_bit_identical(tmp_path):
    data_rng = np.random.default_rng(1)
    x = data_rng.normal(size=(64, 5)).astype(np.float32)
    y = data_rng.normal(size=(64, 3)).astype(np.float32)
    straight = ToyModel(5, 3, seed=7)
    for _ in range(20):
        straight.train_step(x, y)
    first = ToyModel(5, 3, seed=7)
    for _ in range(10):
        first.train_step(x, y)
    first.save(tmp_path / "half.npz")
    resumed = ToyModel(5, 3, seed=99)           # different init and RNG
    resumed.load(tmp_path / "half.npz")
    for _ in range(10):
        resumed.train_step(x, y)
    assert np.array_equal(resumed.weight, straight.weight)
    assert np.array_equal(resumed.bias, straight.bias)
    assert resumed.step_count == 20
    assert resumed.rng.random() == straight.rng.random()


def test_bad_checkpoint_leaves_model_untouched(tmp_path):
    source = ToyModel(5, 3, seed=1)
    source.train_step(np.ones((8, 5), np.float32), np.ones((8, 3), np.float32))
    source.save(tmp_path / "good.npz")
    data = (tmp_path / "good.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[:len(data) * 2 // 3])
    ToyModel(7, 3, seed=1).save(tmp_path / "wrong-shape.npz")
    arrays = io.flatten(source.state_arrays())
    arrays["bias"] = arrays["bias"].astype(np.float64)
    io.save_checkpoint(tmp_path / "wrong-dtype.npz", arrays)
    arrays = io.flatten(source.state_arrays())
    arrays["rng"] = np.array('{"bit_generator": "PCG64", "state": 3}')
    io.save_checkpoint(tmp_path / "bad-rng.npz", arrays)

    target = ToyModel(5, 3, seed=2)
    snapshot = {k: np.copy(v) for k, v in io.flatten(
        target.state_arrays()).items()}
    for name, pattern in [("cut.npz", "corrupt or truncated"),
                          ("wrong-shape.npz", "key 'weight': expected shape"),
                          ("wrong-dtype.npz", "key 'bias': expected dtype"),
                          ("bad-rng.npz", "invalid PCG64 state")]:
        with pytest.raises(ValueError, match=pattern):
            target.load(tmp_path / name)
        after = io.flatten(target.state_arrays())
        for key, value in snapshot.items():
            assert np.array_equal(after[key], value), (name, key)
    target.load(tmp_path / "good.npz")
    assert np.array_equal(target.weight, source.weight)


# ----------------------------------------------------------------- RNG state

@pytest.mark.parametrize("kind", ["PCG64", "PCG64DXSM", "Philox", "SFC64",
                                  "MT19937"])
def test_generator_state_round_trip(tmp_path, kind):
    rng = np.random.Generator(getattr(np.random, kind)(1234))
    rng.random(7)
    rng.integers(0, 10, 3)          # leaves a buffered uint32 behind
    io.save_checkpoint(tmp_path / "r.npz", {"rng": io.generator_state(rng)})
    arrays, _ = io.load_checkpoint(tmp_path / "r.npz")
    restored = io.restore_generator(arrays["rng"])
    assert type(restored.bit_generator).__name__ == kind
    in_place = io.restore_generator(arrays["rng"],
                                    np.random.Generator(getattr(np.random,
                                                                kind)(0)))
    expected = rng.integers(0, 2**32, 50, dtype=np.uint32), rng.random(50)
    for other in (restored, in_place):
        assert np.array_equal(other.integers(0, 2**32, 50, dtype=np.uint32),
                              expected[0])
        assert np.array_equal(other.random(50), expected[1])


def test_restore_generator_errors_leave_rng_unchanged():
    rng = np.random.default_rng(3)
    state = rng.bit_generator.state
    mt_state = io.generator_state(np.random.Generator(np.random.MT19937(1)))
    with pytest.raises(ValueError, match="saved state is for MT19937"):
        io.restore_generator(mt_state, rng)
    for bad, pattern in [(np.array("not json"), "not a saved generator"),
                         (np.array('{"bit_generator": "Nope"}'), "unknown"),
                         (np.array('{"bit_generator": "PCG64", "state": 1}'),
                          "invalid PCG64"),
                         (np.ones(3), "not a saved generator")]:
        with pytest.raises(ValueError, match=pattern):
            io.restore_generator(bad, rng)
    assert rng.bit_generator.state == state
    with pytest.raises(TypeError):
        io.generator_state(object())


def test_python_int_scalars_match_any_integer_dtype(tmp_path):
    # A CounterRNG-style state: 64-bit seed and counter as Python ints.
    small = {"rng": {"seed": 5, "counter": 7}}
    large = {"rng": {"seed": 2**64 - 1, "counter": 2**63 + 5}}
    io.save_checkpoint(tmp_path / "c.npz", large)
    arrays, _ = io.load_checkpoint(tmp_path / "c.npz",
                                   expected=io.describe(small))
    assert int(arrays["rng/seed"]) == 2**64 - 1
    assert int(arrays["rng/counter"]) == 2**63 + 5
    with pytest.raises(io.CheckpointError, match="expected dtype int64"):
        io.save_checkpoint(tmp_path / "f.npz", {"rng": {"seed": 1.5,
                                                        "counter": 0}})
        io.load_checkpoint(tmp_path / "f.npz", expected=io.describe(small))
    with pytest.raises(io.CheckpointError, match="expected dtype int64"):
        io.save_checkpoint(tmp_path / "v.npz", {"rng": {
            "seed": np.zeros(1, np.uint64), "counter": 0}})
        io.load_checkpoint(tmp_path / "v.npz", expected={
            "rng/seed": ((1,), np.int64), "rng/counter": ((), np.int64)})


def test_atomic_write_mode_and_cleanup(tmp_path):
    path = tmp_path / "f.bin"
    io.atomic_write(path, lambda handle: handle.write(b"abc"))
    assert path.read_bytes() == b"abc"
    mask = os.umask(0)
    os.umask(mask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~mask

    def boom(handle):
        handle.write(b"partial")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        io.atomic_write(path, boom)
    assert path.read_bytes() == b"abc" and files_in(tmp_path) == ["f.bin"]
