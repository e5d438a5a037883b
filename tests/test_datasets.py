"""IDX reader, data-set search, loaders, download (local server), helpers."""
import contextlib
import functools
import gzip
import hashlib
import http.server
import shutil
import struct
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, strategies as st

from fastgrad import datasets

TYPE_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09,
              np.dtype(">i2"): 0x0B, np.dtype(">i4"): 0x0C,
              np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def idx_bytes(array):
    """Independent IDX encoder: header, big-endian dims, big-endian data."""
    array = np.asarray(array)
    big = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else (
        array.dtype)
    header = bytes([0, 0, TYPE_CODES[big], array.ndim])
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(big).tobytes()


def write_idx(path, array, compress=True):
    data = idx_bytes(array)
    Path(path).write_bytes(gzip.compress(data) if compress else data)
    return path


def make_dataset(directory, n_train=6, n_test=4, seed=0, compress=True):
    """Four small, valid MNIST-format files in directory."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for stem, n in zip(FILES, (n_train, n_train, n_test, n_test)):
        if "images" in stem:
            arrays[stem] = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        else:
            arrays[stem] = rng.integers(0, 10, n, dtype=np.uint8)
        write_idx(directory / (stem + (".gz" if compress else "")),
                  arrays[stem], compress)
    return arrays


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No FASTGRAD_DATA, an empty cache and empty system locations."""
    monkeypatch.delenv("FASTGRAD_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(datasets, "_SYSTEM_DIRS", (tmp_path / "system",))
    return tmp_path


# --------------------------------------------------------------- IDX reader

@given(dtype=st.sampled_from(list(TYPE_CODES)),
       shape=st.lists(st.integers(0, 7), min_size=1, max_size=4),
       compress=st.booleans())
def test_read_idx_round_trip(tmp_path_factory, dtype, shape, compress):
    path = tmp_path_factory.mktemp("idx") / "a.idx"
    array = (np.arange(int(np.prod(shape))) % 97 - 40).reshape(shape)
    array = (array % 256 if dtype.kind == "u" else array).astype(dtype)
    write_idx(path, array, compress)
    loaded = datasets.read_idx(path)
    assert loaded.shape == tuple(shape)
    assert loaded.dtype.isnative and loaded.dtype == dtype.newbyteorder("=")
    assert loaded.flags.c_contiguous and loaded.flags.writeable
    np.testing.assert_array_equal(loaded, array)


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("mutate, message", [
    (lambda b: b"\x01\x00" + b[2:], "magic"),
    (lambda b: b[:2] + b"\x07" + b[3:], "type code"),
    (lambda b: b[:2] + b"\x08\x00" + b[4:], "0 dimensions"),
    (lambda b: b[:-1], "truncated IDX file"),
    (lambda b: b + b"\x00", "over-long"),
    (lambda b: b[:9], "truncated IDX header"),
    (lambda b: b[:3], "too short"),
])
def test_read_idx_rejects_bad_files(tmp_path, compress, mutate, message):
    data = mutate(idx_bytes(np.zeros((3, 2, 2), np.uint8)))
    path = tmp_path / "bad-idx"
    path.write_bytes(gzip.compress(data) if compress else data)
    with pytest.raises(datasets.IDXError, match=message) as info:
        datasets.read_idx(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_read_idx_corrupt_gzip_and_missing(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros(100, np.uint8)))[:-12])
    with pytest.raises(datasets.IDXError, match="gzip") as info:
        datasets.read_idx(path)
    assert str(path) in str(info.value)
    with pytest.raises(FileNotFoundError):
        datasets.read_idx(tmp_path / "nope.gz")


def test_loader_checks_image_shape_and_label_count(isolated):
    directory = isolated / "d" / "mnist"
    make_dataset(directory)
    write_idx(directory / "t10k-labels-idx1-ubyte.gz", np.zeros(3, np.uint8))
    with pytest.raises(datasets.IDXError, match="4 images but"):
        datasets.load_mnist_test(isolated / "d")
    write_idx(directory / "t10k-images-idx3-ubyte.gz",
              np.zeros((3, 27, 28), np.uint8))
    with pytest.raises(datasets.IDXError, match=r"\(n, 28, 28\)"):
        datasets.load_mnist_test(isolated / "d")
    write_idx(directory / "t10k-images-idx3-ubyte.gz",
              np.zeros((3, 28, 28), np.uint8))
    write_idx(directory / "t10k-labels-idx1-ubyte.gz",
              np.full(3, 10, np.uint8))
    with pytest.raises(datasets.IDXError, match="outside 0..9"):
        datasets.load_mnist_test(isolated / "d")


# ---------------------------------------------------------- directory search

def test_search_order_argument_env_cache_system(isolated, monkeypatch):
    arg, env = isolated / "arg", isolated / "env"
    cache, system = isolated / "cache" / "fastgrad", isolated / "system"
    monkeypatch.setenv("FASTGRAD_DATA", str(env))
    assert datasets.search_dirs(arg) == [arg, env, cache, system]
    for seed, base in enumerate((system, cache, env, arg)):
        make_dataset(base / "mnist", seed=seed)
    expected = make_dataset(arg / "mnist", seed=3)
    x_train, y_train, x_test, y_test = datasets.load_mnist(arg)
    np.testing.assert_array_equal(x_train, expected[FILES[0]])
    np.testing.assert_array_equal(y_test, expected[FILES[3]])
    # Without the argument the environment variable wins, then the cache.
    env_arrays = make_dataset(env / "mnist", seed=7)
    np.testing.assert_array_equal(datasets.load_mnist()[2],
                                  env_arrays[FILES[2]])
    shutil.rmtree(env)
    cache_arrays = make_dataset(cache / "mnist", seed=8)
    np.testing.assert_array_equal(datasets.load_mnist()[0],
                                  cache_arrays[FILES[0]])
    shutil.rmtree(cache)
    system_arrays = make_dataset(system / "mnist", seed=9)
    np.testing.assert_array_equal(datasets.load_mnist()[0],
                                  system_arrays[FILES[0]])


def test_flat_layout_raw_files_and_dotted_names(isolated):
    flat = make_dataset(isolated / "flat", compress=False)
    np.testing.assert_array_equal(datasets.load_mnist(isolated / "flat")[1],
                                  flat[FILES[1]])
    dotted = isolated / "dotted" / "fashion-mnist"
    arrays = make_dataset(dotted)
    for stem in FILES:
        (dotted / (stem + ".gz")).rename(
            dotted / (stem.replace("-idx", ".idx") + ".gz"))
    np.testing.assert_array_equal(
        datasets.load_fashion_mnist(isolated / "dotted")[3], arrays[FILES[3]])


def test_subdirectory_preferred_and_files_not_mixed(isolated):
    base = isolated / "base"
    sub = make_dataset(base / "mnist", seed=1)
    make_dataset(base, seed=2)
    np.testing.assert_array_equal(datasets.load_mnist(base)[0], sub[FILES[0]])
    # A directory with only the test files never lends them to another one.
    partial = isolated / "partial"
    make_dataset(partial / "mnist")
    (partial / "mnist" / "train-images-idx3-ubyte.gz").unlink()
    other = make_dataset(isolated / "cache" / "fastgrad" / "mnist", seed=5)
    loaded = datasets.load_mnist(partial)
    np.testing.assert_array_equal(loaded[3], other[FILES[3]])


def test_missing_dataset_lists_every_place_and_how_to_get_it(isolated,
                                                             monkeypatch):
    monkeypatch.setenv("FASTGRAD_DATA", str(isolated / "env"))
    make_dataset(isolated / "env" / "mnist")
    for stem in FILES[:2]:
        (isolated / "env" / "mnist" / (stem + ".gz")).unlink()
    with pytest.raises(FileNotFoundError) as info:
        datasets.load_mnist(isolated / "arg")
    message = str(info.value)
    for place in (isolated / "arg" / "mnist", isolated / "arg",
                  isolated / "env" / "mnist", isolated / "env",
                  isolated / "cache" / "fastgrad" / "mnist",
                  isolated / "system" / "mnist"):
        assert f"  {place}" in message
    assert "download('mnist')" in message and "FASTGRAD_DATA" in message
    assert "missing train-images-idx3-ubyte" in message
    assert "load_mnist_test() and mnist10k_split()" in message
    # The test set alone is there: these work.
    assert datasets.load_mnist_test()[0].shape == (4, 28, 28)
    with pytest.raises(FileNotFoundError, match="apt-get install "
                       "dataset-fashion-mnist"):
        datasets.load_fashion_mnist()
    with pytest.raises(ValueError, match="unknown data set"):
        datasets.find_files("cifar", FILES)


# ---------------------------------------------------------------- real data

def test_real_mnist_test_set(data_dir):
    path = datasets.find_files("mnist", FILES[2:], data_dir)[FILES[2]]
    raw = gzip.decompress(path.read_bytes())
    assert hashlib.md5(raw).hexdigest() == "2646ac647ad5339dbf082846283269ea"
    x, y = datasets.load_mnist_test(data_dir)
    assert x.shape == (10000, 28, 28) and y.shape == (10000,)
    assert x.dtype == np.uint8 and y.dtype == np.uint8
    assert np.bincount(y, minlength=10).tolist() == [
        980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert x.max() == 255 and x.min() == 0


def test_real_mnist10k_split(data_dir):
    x_train, y_train, x_test, y_test = datasets.mnist10k_split(data_dir)
    assert x_train.shape == (8000, 28, 28) and y_train.shape == (8000,)
    assert x_test.shape == (2000, 28, 28) and y_test.shape == (2000,)
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {
        np.dtype(np.uint8)}
    x, y = datasets.load_mnist_test(data_dir)
    perm = np.random.default_rng(0).permutation(10000)
    np.testing.assert_array_equal(x_train, x[perm[:8000]])
    np.testing.assert_array_equal(y_test, y[perm[8000:]])
    counts = np.bincount(y_train, minlength=10) + np.bincount(y_test,
                                                              minlength=10)
    assert counts.tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028,
                               974, 1009]


def test_known_checksums_accept_recompressed_real_files(data_dir):
    paths = datasets.find_files("mnist", FILES[2:], data_dir)
    for stem, path in paths.items():
        known = datasets.DATASETS["mnist"]["files"][stem]
        assert datasets._checksum_ok(path, **known)
        assert not datasets._checksum_ok(path, gz_md5="0" * 32)


def test_debian_fashion_mnist():
    directory = Path("/usr/share/datasets/fashion-mnist")
    if not directory.is_dir():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    x_train, y_train, x_test, y_test = datasets.load_fashion_mnist(
        Path("/nonexistent"))
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10
    # Debian re-compressed the files: their uncompressed md5 is what
    # matches. (The 26 MB training images are left out to stay quick.)
    for stem, known in datasets.DATASETS["fashion-mnist"]["files"].items():
        if stem != "train-images-idx3-ubyte":
            assert datasets._checksum_ok(directory / (stem + ".gz"), **known)


# ---------------------------------------------------------------- download

class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(directory):
    """An HTTP server on 127.0.0.1 (free port) serving directory."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/files/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _md5s(directory):
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest()
            for p in directory.iterdir()}


def test_download_from_local_server(isolated, monkeypatch):
    # A proxy in the environment must not capture loopback downloads.
    monkeypatch.setenv("http_proxy", "http://192.0.2.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    served = isolated / "www" / "files"
    arrays = make_dataset(served)
    checksums = _md5s(served)
    with serve(isolated / "www") as url:
        target = datasets.download("mnist", isolated / "out", base_url=url,
                                   checksums=checksums, timeout=10)
        assert target == isolated / "out" / "mnist"
        assert sorted(p.name for p in target.iterdir()) == sorted(checksums)
        loaded = datasets.load_mnist(isolated / "out")
        for stem, array in zip(FILES, loaded):
            np.testing.assert_array_equal(array, arrays[stem])
        # Verified files are kept; a second call downloads nothing.
        (served / "t10k-labels-idx1-ubyte.gz").unlink()
        datasets.download("mnist", isolated / "out", base_url=url,
                          checksums=checksums, timeout=10)
        # Default directory: $FASTGRAD_DATA, else the cache.
        (served / "t10k-labels-idx1-ubyte.gz").write_bytes(
            (target / "t10k-labels-idx1-ubyte.gz").read_bytes())
        assert datasets.download("fashion", base_url=url, checksums=checksums,
                                 timeout=10) == (
            isolated / "cache" / "fastgrad" / "fashion-mnist")


def test_download_checksum_mismatch_writes_nothing(isolated):
    served = isolated / "www" / "files"
    make_dataset(served)
    checksums = _md5s(served)
    checksums["t10k-images-idx3-ubyte.gz"] = "0" * 32
    with serve(isolated / "www") as url:
        with pytest.raises(ValueError, match="checksum mismatch for "
                           "t10k-images-idx3-ubyte.gz.*nothing was written"):
            datasets.download("mnist", isolated / "out", base_url=url,
                              checksums=checksums, timeout=10)
    assert list((isolated / "out" / "mnist").iterdir()) == []


def test_download_http_error_writes_nothing_and_keeps_old_files(isolated):
    served = isolated / "www" / "files"
    make_dataset(served)
    checksums = _md5s(served)
    out = isolated / "out" / "mnist"
    out.mkdir(parents=True)
    (out / "train-images-idx3-ubyte.gz").write_bytes(b"old, unverified")
    (served / "t10k-labels-idx1-ubyte.gz").unlink()
    with serve(isolated / "www") as url:
        with pytest.raises(OSError,
                           match="t10k-labels-idx1-ubyte.gz: HTTP 404"):
            datasets.download("mnist", isolated / "out", base_url=url,
                              checksums=checksums, timeout=10)
    assert [p.name for p in out.iterdir()] == ["train-images-idx3-ubyte.gz"]
    assert (out / "train-images-idx3-ubyte.gz").read_bytes() == (
        b"old, unverified")


class _ShortBodyHandler(http.server.BaseHTTPRequestHandler):
    """Announces 1000 bytes, sends 3, closes: a dropped connection."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b"abc")
        self.close_connection = True

    def log_message(self, *args):
        pass


def test_download_truncated_transfer_writes_nothing(isolated):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             _ShortBodyHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    checksums = {stem + ".gz": hashlib.md5(b"abc").hexdigest()
                 for stem in FILES}
    try:
        with pytest.raises(OSError, match="train-images-idx3-ubyte.gz: "
                           "connection closed after 3 of 1000 bytes"):
            datasets.download("mnist", isolated / "out", checksums=checksums,
                              base_url=f"http://127.0.0.1:"
                              f"{server.server_address[1]}/", timeout=10)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    assert list((isolated / "out" / "mnist").iterdir()) == []


def test_download_refuses_plain_http_and_unknown_names(isolated):
    with pytest.raises(ValueError, match="https"):
        datasets.download("mnist", isolated, base_url="http://example.com/")
    with pytest.raises(ValueError, match="unknown data set"):
        datasets.download("cifar10", isolated)
    with pytest.raises(ValueError, match="no checksum given"):
        datasets.download("mnist", isolated, base_url="https://example.com/",
                          checksums={})


def test_command_line(isolated, capsys):
    arrays = make_dataset(isolated / "d" / "mnist")
    assert datasets.main(["where", "mnist", "--data-dir",
                          str(isolated / "d")]) == 0
    assert capsys.readouterr().out.split() == [
        str(isolated / "d" / "mnist" / (stem + ".gz")) for stem in FILES]
    assert datasets.main(["where", "fashion"]) == 1
    assert "could not find" in capsys.readouterr().out
    # The built-in checksums reject these made-up files: nothing is written.
    served = isolated / "www" / "files"
    served.mkdir(parents=True)
    for stem, array in arrays.items():
        write_idx(served / (stem + ".gz"), array)
    with serve(isolated / "www") as url:
        assert datasets.main(["download", "mnist", "--data-dir",
                              str(isolated / "out"), "--base-url", url]) == 1
    assert "checksum mismatch" in capsys.readouterr().out
    assert list((isolated / "out" / "mnist").iterdir()) == []


# ----------------------------------------------------------- preprocessing

def test_zscore_and_normalize():
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, (50, 6, 5)).astype(np.uint8)
    x_train[:, 0, 0] = 0          # zero variance, like MNIST's border
    x_train[:, 0, 1] = 17
    x_test = rng.integers(0, 256, (9, 6, 5)).astype(np.uint8)
    z, mu, sigma = datasets.zscore(x_train)
    assert z.dtype == np.float32 and mu.shape == sigma.shape == (6, 5)
    data = x_train.astype(np.float64)
    np.testing.assert_allclose(mu, data.mean(0), rtol=1e-6)
    expected_sigma = data.std(0, ddof=1)        # MATLAB's std (n - 1)
    expected_sigma[expected_sigma == 0] = 1
    np.testing.assert_allclose(sigma, expected_sigma, rtol=1e-6)
    assert sigma[0, 0] == 1 and sigma[0, 1] == 1
    assert np.all(z[:, 0, :2] == 0) and np.all(np.isfinite(z))
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(z[:, 1:].std(0, ddof=1), 1, rtol=1e-5)
    test_z = datasets.normalize(x_test, mu, sigma)
    np.testing.assert_allclose(test_z, (x_test - mu) / sigma, rtol=1e-6)
    np.testing.assert_allclose(test_z[:, 0, 1], x_test[:, 0, 1] - 17.0)
    z64, mu64, _ = datasets.zscore(data)
    assert z64.dtype == mu64.dtype == np.float64
    with pytest.raises(ValueError, match="at least 2 samples"):
        datasets.zscore(x_train[:1])
    with pytest.raises(ValueError, match="feature shape"):
        datasets.normalize(x_test, mu[:3], sigma)
    with pytest.raises(ValueError, match="positive"):
        datasets.normalize(x_test, mu, np.zeros_like(sigma))


def test_to_float_and_one_hot():
    x = np.array([[0, 255], [51, 102]], np.uint8)
    np.testing.assert_allclose(datasets.to_float(x), x / 255.0, rtol=1e-7)
    assert datasets.to_float(x, np.float64).dtype == np.float64
    labels = np.array([3, 0, 9, 3], np.uint8)
    encoded = datasets.one_hot(labels, 10)
    assert encoded.shape == (4, 10) and encoded.dtype == np.float32
    np.testing.assert_array_equal(encoded.argmax(1), labels)
    assert encoded.sum() == 4
    assert datasets.one_hot(np.array([], np.int64), 3).shape == (0, 3)
    with pytest.raises(ValueError, match=r"\[0, 9\)"):
        datasets.one_hot(labels, 9)
    with pytest.raises(TypeError, match="integers"):
        datasets.one_hot(labels.astype(float), 10)
    with pytest.raises(ValueError, match="1-D"):
        datasets.one_hot(labels.reshape(2, 2), 10)


def test_synthetic_like():
    x, y = datasets.synthetic_like("mnist", 64, seed=3)
    assert x.shape == (64, 28, 28) and y.shape == (64,)
    assert x.dtype == np.uint8 and y.dtype == np.uint8 and y.max() <= 9
    x2, y2 = datasets.synthetic_like("fashion", 64, seed=3)
    np.testing.assert_array_equal(x, x2)
    assert not np.array_equal(x, datasets.synthetic_like("mnist", 64, 4)[0])
    # Learnable: nearest class mean classifies most samples correctly.
    means = np.stack([x[y == k].mean(0) for k in np.unique(y)])
    nearest = np.unique(y)[((x[:, None].astype(float) - means) ** 2
                            ).sum((2, 3)).argmin(1)]
    assert (nearest == y).mean() > 0.9
