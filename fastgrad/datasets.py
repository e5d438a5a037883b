"""MNIST-format data sets: IDX reader, loaders, download, and preprocessing.

Data directory search order (first directory holding every needed file wins):

1. the ``data_dir`` argument,
2. the ``FASTGRAD_DATA`` environment variable,
3. ``$XDG_CACHE_HOME/fastgrad`` (default ``~/.cache/fastgrad``), where
   :func:`download` writes,
4. known system locations: ``/usr/share/datasets/<name>`` (Debian's
   ``dataset-fashion-mnist`` package installs Fashion-MNIST there).

Inside each directory, ``<dir>/<name>/`` is tried before ``<dir>/`` itself,
so ``FASTGRAD_DATA`` may hold one sub-directory per data set (``mnist/``,
``fashion-mnist/``). Files may be gzip-compressed (``*.gz``) or raw; the
gzip magic bytes decide, not the suffix.

Images are returned as uint8 arrays of shape ``(n_samples, 28, 28)`` in
row-major pixel order, labels as uint8 arrays of shape ``(n_samples,)``.
"""
import gzip
import hashlib
import http.client
import ipaddress
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zlib
from pathlib import Path

import numpy as np

__all__ = [
    "IDXError", "read_idx", "parse_idx", "search_dirs", "cache_dir",
    "find_files", "load_mnist",
    "load_mnist_test", "load_fashion_mnist", "mnist10k_split", "download",
    "to_float", "zscore", "normalize", "one_hot", "synthetic_like",
    "DATASETS",
]

# IDX type codes (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT");
# multi-byte values are big-endian.
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_TRAIN_IMAGES = "train-images-idx3-ubyte"
_TRAIN_LABELS = "train-labels-idx1-ubyte"
_TEST_IMAGES = "t10k-images-idx3-ubyte"
_TEST_LABELS = "t10k-labels-idx1-ubyte"

# Known checksums of the standard files.  "gz_md5" is the md5 of the .gz
# file as published upstream (MNIST: the files torchvision mirrors;
# Fashion-MNIST: the table in its README).  "raw_md5" is the md5 of the
# uncompressed IDX bytes, which survives re-compression (Debian's and this
# project's copies are re-compressed, so their .gz md5 differs); None where
# we do not know it for certain.
DATASETS = {
    "mnist": {
        "base_url": "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "how_to_get": ("fastgrad.datasets.download('mnist') or python -m "
                       "fastgrad.datasets download mnist (needs "
                       "internet), or copy the four IDX files into "
                       "$FASTGRAD_DATA/mnist/"),
        "files": {
            _TRAIN_IMAGES: {"gz_md5": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                            "raw_md5": None},
            _TRAIN_LABELS: {"gz_md5": "d53e105ee54ea40749a09fcbcd1e9432",
                            "raw_md5": None},
            _TEST_IMAGES: {"gz_md5": "9fb629c4189551a2d022fa330f9573f3",
                           "raw_md5": "2646ac647ad5339dbf082846283269ea"},
            _TEST_LABELS: {"gz_md5": "ec29112dd5afa0611ce80d1b7f02629c",
                           "raw_md5": "27ae3e4e09519cfbb04c329615203637"},
        },
    },
    "fashion-mnist": {
        "base_url": ("https://github.com/zalandoresearch/fashion-mnist/"
                     "raw/master/data/fashion/"),
        "how_to_get": ("apt-get install dataset-fashion-mnist (Debian), "
                       "fastgrad.datasets.download('fashion-mnist') (needs "
                       "internet), or copy the four IDX files into "
                       "$FASTGRAD_DATA/fashion-mnist/"),
        "files": {
            _TRAIN_IMAGES: {"gz_md5": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                            "raw_md5": "f4a8712d7a061bf5bd6d2ca38dc4d50a"},
            _TRAIN_LABELS: {"gz_md5": "25c81989df183df01b3e8a0aad5dffbe",
                            "raw_md5": "9018921c3c673c538a1fc5bad174d6f9"},
            _TEST_IMAGES: {"gz_md5": "bef4ecab320f06d8554ea6380940ec79",
                           "raw_md5": "8181f5470baa50b63fa0f6fddb340f0a"},
            _TEST_LABELS: {"gz_md5": "bb300cfdad3c16e7a12a480ee83cd310",
                           "raw_md5": "15d484375f8d13e6eb1aabb0c3f46965"},
        },
    },
}

_ALIASES = {"mnist": "mnist", "fashion-mnist": "fashion-mnist",
            "fashion_mnist": "fashion-mnist", "fashion": "fashion-mnist"}

# Sub-directory names tried inside every search directory, then "" (flat).
_SUBDIRS = {"mnist": ("mnist",), "fashion-mnist": ("fashion-mnist", "fashion")}

_SYSTEM_DIRS = (Path("/usr/share/datasets"), Path("/usr/local/share/datasets"))

# Largest file download() accepts (the biggest standard file is ~26 MB).
_MAX_DOWNLOAD_BYTES = 128 * 2**20


class IDXError(ValueError):
    """A file is not a valid IDX file (bad magic, type code, or size)."""


def _canonical(name):
    try:
        return _ALIASES[str(name).lower()]
    except KeyError:
        raise ValueError(f"unknown data set {name!r}; known: "
                         f"{sorted(DATASETS)}") from None


# --------------------------------------------------------------------- IDX

def _read_bytes(path):
    """Whole file contents, gunzipped when it starts with the gzip magic."""
    path = Path(path)
    with open(path, "rb") as handle:
        data = handle.read()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as err:
            raise IDXError(f"{path}: corrupt or truncated gzip data "
                           f"({err})") from None
    return data


def parse_idx(data, source="<bytes>"):
    """Parse IDX bytes (uncompressed) into a native-byte-order array.

    Raises :class:`IDXError` naming ``source`` on a bad magic number, an
    unknown type code, or a payload shorter or longer than the header says.
    """
    if len(data) < 4:
        raise IDXError(f"{source}: {len(data)} bytes is too short for an IDX "
                       "header (need at least 4)")
    if data[0] != 0 or data[1] != 0:
        raise IDXError(f"{source}: bad IDX magic number 0x{data[:4].hex()} "
                       "(first two bytes must be zero); not an IDX file")
    type_code, ndim = data[2], data[3]
    if type_code not in _IDX_DTYPES:
        raise IDXError(f"{source}: unknown IDX data type code "
                       f"0x{type_code:02x}"
                       f" (known: {', '.join(hex(c) for c in _IDX_DTYPES)})")
    if ndim == 0:
        raise IDXError(f"{source}: IDX header declares 0 dimensions")
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise IDXError(f"{source}: truncated IDX header ({len(data)} bytes, "
                       f"{ndim} dimensions need {header_size})")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", ndim, 4))
    dtype = _IDX_DTYPES[type_code]
    n_items = int(np.prod(shape, dtype=np.int64))
    expected = header_size + n_items * dtype.itemsize
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "over-long"
        raise IDXError(f"{source}: {what} IDX file: header says shape {shape} "
                       f"of {dtype.name} ({expected} bytes with header), file "
                       f"has {len(data)} bytes")
    array = np.frombuffer(data, dtype, offset=header_size).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path):
    """Read an IDX file (gzip or raw) into a new native-byte-order array.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    ndarray of the dtype and shape given by the IDX header (uint8 for MNIST).

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    IDXError (a ValueError)
        Bad magic number, unknown type code, corrupt gzip data, or a payload
        that is truncated or longer than the header declares; the message
        names the file.
    """
    return parse_idx(_read_bytes(path), source=str(path))


# ----------------------------------------------------------- finding files

def search_dirs(data_dir=None):
    """The base directories searched, in order (see the module docstring)."""
    dirs = []
    if data_dir is not None:
        dirs.append(Path(data_dir).expanduser())
    env = os.environ.get("FASTGRAD_DATA")
    if env:
        dirs.append(Path(env).expanduser())
    dirs.append(cache_dir())
    dirs.extend(_SYSTEM_DIRS)
    return dirs


def cache_dir():
    """``$XDG_CACHE_HOME/fastgrad``, default ``~/.cache/fastgrad``."""
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "fastgrad"


def _candidate_dirs(name, data_dir):
    """<base>/<subdir> then <base> itself; system locations only by name."""
    seen, out = set(), []
    for base in search_dirs(data_dir):
        subs = _SUBDIRS[name]
        if base not in _SYSTEM_DIRS:
            subs = subs + ("",)
        for sub in subs:
            directory = base / sub if sub else base
            if directory not in seen:
                seen.add(directory)
                out.append(directory)
    return out


def _file_in(directory, stem):
    """The first existing variant of an IDX file name in directory."""
    dotted = stem.replace("-idx", ".idx")
    for candidate in (stem + ".gz", stem, dotted + ".gz", dotted):
        path = directory / candidate
        if path.is_file():
            return path
    return None


def find_files(name, stems, data_dir=None):
    """Locate all of ``stems`` of data set ``name`` in one directory.

    Returns a dict stem -> Path. Raises FileNotFoundError listing every
    directory searched, what each one lacked, and how to get the files.
    """
    name = _canonical(name)
    looked, complete_tests = [], []
    for directory in _candidate_dirs(name, data_dir):
        found = {stem: _file_in(directory, stem) for stem in stems}
        if all(found.values()):
            return found
        present = [s for s, p in found.items() if p is not None]
        if {_TEST_IMAGES, _TEST_LABELS} <= set(present):
            complete_tests.append(directory)
        if present:
            missing = [s for s, p in found.items() if p is None]
            looked.append(f"  {directory}  (has {', '.join(present)}; "
                          f"missing {', '.join(missing)})")
        else:
            looked.append(f"  {directory}")
    hint = ""
    if complete_tests and any(s.startswith("train") for s in stems):
        hint = (f"\nOnly the test files (t10k) were found, in "
                f"{complete_tests[0]}; load_mnist_test() and mnist10k_split()"
                " need no more.")
    raise FileNotFoundError(
        f"{name}: could not find {', '.join(s + '[.gz]' for s in stems)} "
        "together in one directory. Looked in (data_dir argument, "
        "$FASTGRAD_DATA, cache, system locations):\n" + "\n".join(looked)
        + f"\nTo get them: {DATASETS[name]['how_to_get']}; or pass "
        "data_dir=... or set FASTGRAD_DATA." + hint)


def _check_pair(images, labels, images_path, labels_path):
    if images.dtype != np.uint8 or images.shape[1:] != (28, 28):
        raise IDXError(f"{images_path}: expected uint8 images of shape "
                       f"(n, 28, 28), found {images.dtype} {images.shape}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise IDXError(f"{labels_path}: expected uint8 labels of shape "
                       f"(n,), found {labels.dtype} {labels.shape}")
    if labels.shape[0] != images.shape[0]:
        raise IDXError(f"{images_path} has {images.shape[0]} images but "
                       f"{labels_path} has {labels.shape[0]} labels")
    if labels.size and labels.max() > 9:
        raise IDXError(f"{labels_path}: label {int(labels.max())} "
                       "outside 0..9")


def _load(name, stems, data_dir):
    """Find all stems (one directory), read and check them in (images,
    labels) pairs; return the arrays in the order of stems."""
    paths = find_files(name, stems, data_dir)
    arrays = [read_idx(paths[stem]) for stem in stems]
    for i in range(0, len(stems), 2):
        _check_pair(arrays[i], arrays[i + 1], paths[stems[i]],
                    paths[stems[i + 1]])
    return tuple(arrays)


_ALL = (_TRAIN_IMAGES, _TRAIN_LABELS, _TEST_IMAGES, _TEST_LABELS)


def load_mnist(data_dir=None):
    """The full MNIST set: 60,000 training and 10,000 test images.

    Returns
    -------
    x_train : uint8 (60000, 28, 28)
    y_train : uint8 (60000,)
    x_test : uint8 (10000, 28, 28)
    y_test : uint8 (10000,)

    Raises FileNotFoundError (listing the places searched) when the
    training or test files are missing; offline, use :func:`load_mnist_test`
    or :func:`mnist10k_split`, which need only the t10k files.
    """
    return _load("mnist", _ALL, data_dir)


def load_mnist_test(data_dir=None):
    """MNIST's 10,000 test images: x uint8 (10000, 28, 28), y uint8
    (10000,)."""
    return _load("mnist", (_TEST_IMAGES, _TEST_LABELS), data_dir)


def load_fashion_mnist(data_dir=None):
    """Fashion-MNIST: (x_train, y_train, x_test, y_test), uint8, 60k/10k.

    Shapes as :func:`load_mnist`. Debian's ``dataset-fashion-mnist`` package
    (``/usr/share/datasets/fashion-mnist/``) is found automatically.
    """
    return _load("fashion-mnist", _ALL, data_dir)


def mnist10k_split(data_dir=None):
    """The "mnist10k" split of MNIST's test set (shared/data/README.md).

    ``perm = numpy.random.default_rng(0).permutation(10000)``; training rows
    are ``perm[:8000]``, test rows ``perm[8000:]``.

    Returns
    -------
    x_train : uint8 (8000, 28, 28)
    y_train : uint8 (8000,)
    x_test : uint8 (2000, 28, 28)
    y_test : uint8 (2000,)
    """
    images, labels = load_mnist_test(data_dir)
    if images.shape[0] != 10000:
        raise IDXError(f"mnist10k needs the 10,000-image t10k set, found "
                       f"{images.shape[0]} images")
    perm = np.random.default_rng(0).permutation(10000)
    train, test = perm[:8000], perm[8000:]
    return images[train], labels[train], images[test], labels[test]


# ---------------------------------------------------------------- download

def _is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _checksum_ok(path, gz_md5=None, raw_md5=None):
    """True when the file's md5 is gz_md5, or its gunzipped md5 is raw_md5."""
    with open(path, "rb") as handle:
        data = handle.read()
    if gz_md5 is not None and hashlib.md5(data).hexdigest() == gz_md5:
        return True
    if raw_md5 is not None:
        try:
            raw = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
        except (OSError, EOFError, zlib.error):
            return False
        return hashlib.md5(raw).hexdigest() == raw_md5
    return False


def _fetch(url, destination, timeout):
    """Stream url into the open binary file destination; return byte count.

    Loopback URLs bypass any proxy from the environment (a local mirror or
    test server is never behind one)."""
    request = urllib.request.Request(url, headers={"User-Agent": "fastgrad"})
    if _is_loopback(urllib.parse.urlparse(url).hostname or ""):
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    else:
        opener = urllib.request.build_opener()
    total = 0
    with opener.open(request, timeout=timeout) as response:
        while True:
            chunk = response.read(1 << 16)
            if not chunk:
                break
            total += len(chunk)
            if total > _MAX_DOWNLOAD_BYTES:
                raise OSError(f"{url}: larger than {_MAX_DOWNLOAD_BYTES} "
                              "bytes; refusing")
            destination.write(chunk)
        announced = response.headers.get("Content-Length")
        if announced is not None and announced.isdigit() and (
                int(announced) != total):
            raise OSError(f"connection closed after {total} of {announced} "
                          "bytes")
    return total


def download(name, data_dir=None, base_url=None, checksums=None,
             timeout=60.0, force=False):
    """Fetch the four standard files of a data set and verify them.

    Parameters
    ----------
    name : "mnist" or "fashion-mnist" (also "fashion")
    data_dir : directory to write under (default ``$FASTGRAD_DATA``, else
        ``~/.cache/fastgrad``); files go to ``<data_dir>/<name>/``.
    base_url : URL prefix of the files (default: the standard mirror in
        ``DATASETS``). Must be ``https://`` except for loopback hosts
        (``http://127.0.0.1:port/`` is allowed, for tests and local mirrors).
    checksums : optional dict ``file name (e.g. "t10k-labels-idx1-ubyte.gz")
        -> md5 hex`` of the downloaded bytes; replaces the built-in table.
        Built-in: a file is accepted when its md5 equals the upstream .gz
        md5, or the md5 of its gunzipped bytes equals the known IDX md5.
    timeout : seconds per network operation.
    force : download again even when a verified file is already there.

    Returns the directory holding the files.

    All files are first streamed to temporary files in the target directory
    and verified; only when every file is good are they moved into place
    with ``os.replace`` (atomic per file). On any failure (network error,
    HTTP error, checksum mismatch) the temporary files are removed, nothing
    is written, and the error names the file.
    """
    name = _canonical(name)
    spec = DATASETS[name]
    base_url = spec["base_url"] if base_url is None else str(base_url)
    parsed = urllib.parse.urlparse(base_url)
    if parsed.scheme != "https" and not (
            parsed.scheme == "http" and _is_loopback(parsed.hostname or "")):
        raise ValueError(f"download: base_url {base_url!r} must use https:// "
                         "(plain http:// only for loopback hosts)")
    if not base_url.endswith("/"):
        base_url += "/"
    if data_dir is None:
        data_dir = os.environ.get("FASTGRAD_DATA") or cache_dir()
    target = Path(data_dir).expanduser() / name
    target.mkdir(parents=True, exist_ok=True)

    def expected(file_name, stem):
        if checksums is not None:
            return {"gz_md5": checksums[file_name], "raw_md5": None}
        return spec["files"][stem]

    todo = []
    for stem in spec["files"]:
        file_name = stem + ".gz"
        if checksums is not None and file_name not in checksums:
            raise ValueError(f"download: no checksum given for {file_name}")
        final = target / file_name
        if (not force and final.is_file()
                and _checksum_ok(final, **expected(file_name, stem))):
            continue
        todo.append((stem, file_name, final))

    temporaries = []
    try:
        for stem, file_name, final in todo:
            handle = tempfile.NamedTemporaryFile(
                dir=target, prefix=f".{file_name}.", suffix=".part",
                delete=False)
            temporaries.append((handle.name, final))
            with handle:
                url = base_url + file_name
                try:
                    _fetch(url, handle, timeout)
                except urllib.error.HTTPError as err:
                    raise OSError(f"download {name}: {url}: HTTP {err.code} "
                                  f"{err.reason}") from None
                except (urllib.error.URLError, OSError,
                        http.client.HTTPException) as err:
                    raise OSError(f"download {name}: {url}: {err}") from None
                handle.flush()
                os.fsync(handle.fileno())
            if not _checksum_ok(handle.name, **expected(file_name, stem)):
                with open(handle.name, "rb") as check:
                    got = hashlib.md5(check.read()).hexdigest()
                want = expected(file_name, stem)
                raise ValueError(
                    f"download {name}: checksum mismatch for {file_name} from "
                    f"{url}: md5 {got}, expected {want['gz_md5']}"
                    + (f" (or gunzipped md5 {want['raw_md5']})"
                       if want["raw_md5"] else "")
                    + "; nothing was written")
        for temporary, final in temporaries:
            os.replace(temporary, final)
        temporaries = []
    finally:
        for temporary, _ in temporaries:
            try:
                os.unlink(temporary)
            except FileNotFoundError:
                pass
    return target


# ----------------------------------------------------------- preprocessing

def to_float(images, dtype=np.float32):
    """uint8 pixels scaled to [0, 1]: ``images / 255`` in ``dtype``."""
    images = np.asarray(images)
    return images.astype(dtype) / np.asarray(255, dtype=dtype)


def _float_dtype(x, dtype):
    if dtype is not None:
        dtype = np.dtype(dtype)
    elif np.issubdtype(x.dtype, np.floating):
        dtype = x.dtype
    else:
        dtype = np.dtype(np.float32)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


def zscore(x, dtype=None):
    """DeepLearnToolbox's zscore: standardise each feature over the samples.

    Parameters
    ----------
    x : array (n_samples, ...) with n_samples >= 2
    dtype : float32 or float64; default x.dtype if floating, else float32.

    Returns
    -------
    x_normalised : (x - mu) / sigma, same shape as x, in ``dtype``
    mu : mean over axis 0, shape x.shape[1:]
    sigma : standard deviation over axis 0 with MATLAB's n - 1 divisor
        (as DeepLearnToolbox's ``std``), shape x.shape[1:]

    Zero-variance features (e.g. MNIST's always-black border pixels) get
    ``sigma = 1``, so they map to 0 in the training data and to
    ``x - mu`` in data normalised later with :func:`normalize`.
    DeepLearnToolbox uses ``max(std, eps)`` instead, which sends a test pixel
    that is non-zero where every training pixel was zero to ~1e15; we
    deliberately do not. Statistics are computed in float64.
    """
    x = np.asarray(x)
    dtype = _float_dtype(x, dtype)
    if x.ndim < 1 or x.shape[0] < 2:
        raise ValueError(f"zscore needs at least 2 samples along axis 0, got "
                         f"shape {x.shape}")
    mu = x.mean(axis=0, dtype=np.float64)
    sigma = x.std(axis=0, ddof=1, dtype=np.float64)
    sigma[sigma == 0] = 1.0
    mu, sigma = mu.astype(dtype), sigma.astype(dtype)
    return normalize(x, mu, sigma, dtype=dtype), mu, sigma


def normalize(x, mu, sigma, dtype=None):
    """DeepLearnToolbox's normalize: ``(x - mu) / sigma`` with given stats.

    Use the ``mu, sigma`` returned by :func:`zscore` on the training data to
    normalise validation/test data. ``mu`` and ``sigma`` have shape
    ``x.shape[1:]``; ``sigma`` must be positive (zscore never returns 0).
    """
    x = np.asarray(x)
    dtype = _float_dtype(x, dtype)
    mu = np.asarray(mu, dtype=dtype)
    sigma = np.asarray(sigma, dtype=dtype)
    if mu.shape != x.shape[1:] or sigma.shape != x.shape[1:]:
        raise ValueError(f"normalize: mu {mu.shape} and sigma {sigma.shape} "
                         f"must have the feature shape {x.shape[1:]} of x "
                         f"{x.shape}")
    if not np.all(sigma > 0):
        raise ValueError("normalize: sigma must be positive everywhere")
    return (x.astype(dtype) - mu) / sigma


def one_hot(labels, n_classes, dtype=np.float32):
    """One-hot rows: (n_samples,) integer labels -> (n_samples, n_classes)."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"one_hot: labels must be 1-D, got shape "
                         f"{labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"one_hot: labels must be integers, got "
                        f"{labels.dtype}")
    n_classes = int(n_classes)
    if n_classes < 1:
        raise ValueError(f"one_hot: n_classes must be >= 1, got {n_classes}")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"one_hot: labels must lie in [0, {n_classes}), got "
                         f"range [{labels.min()}, {labels.max()}]")
    out = np.zeros((labels.shape[0], n_classes), dtype=dtype)
    out[np.arange(labels.shape[0]), labels] = 1
    return out


# --------------------------------------------------------------- synthetic

def synthetic_like(name, n, seed=0):
    """Synthetic stand-in with the shapes and dtypes of a data set.

    For benchmarks when no data is present: ``n`` uint8 images
    ``(n, 28, 28)`` and uint8 labels ``(n,)`` in 0..9. Each class is a fixed
    random smooth blob pattern plus per-image noise, so the data is
    learnable (not a measure of accuracy on the real set).
    """
    _canonical(name)
    n = int(n)
    if n < 0:
        raise ValueError(f"synthetic_like: n must be >= 0, got {n}")
    class_rng = np.random.default_rng(12345)
    coarse = class_rng.random((10, 7, 7))
    prototypes = np.kron(coarse, np.ones((4, 4)))   # (10, 28, 28), blocky
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    noise = rng.normal(0.0, 0.15, size=(n, 28, 28))
    images = np.clip(prototypes[labels] + noise, 0.0, 1.0)
    return np.rint(images * 255).astype(np.uint8), labels


# --------------------------------------------------------------------- CLI

def main(argv=None):
    """``python -m fastgrad.datasets download NAME [--data-dir DIR]
    [--base-url URL]`` and ``python -m fastgrad.datasets where NAME``."""
    import argparse
    parser = argparse.ArgumentParser(prog="python -m fastgrad.datasets",
                                     description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    fetch = commands.add_parser("download", help="fetch and verify a set")
    fetch.add_argument("name", choices=sorted(_ALIASES))
    fetch.add_argument("--data-dir", default=None)
    fetch.add_argument("--base-url", default=None)
    where = commands.add_parser("where", help="show where a set is found")
    where.add_argument("name", choices=sorted(_ALIASES))
    where.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    if args.command == "download":
        try:
            target = download(args.name, args.data_dir, args.base_url)
        except (OSError, ValueError) as err:
            print(f"error: {err}")
            return 1
        print(f"{_canonical(args.name)}: verified files in {target}")
        return 0
    try:
        paths = find_files(args.name, _ALL, args.data_dir)
    except FileNotFoundError as err:
        print(err)
        return 1
    for path in paths.values():
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
