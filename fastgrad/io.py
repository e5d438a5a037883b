"""Checkpoints: atomic, pickle-free ``.npz`` files validated on load.

A checkpoint is a zip of ``.npy`` members (NumPy's ``.npz`` layout, readable
with ``numpy.load(path, allow_pickle=False)``): one member per array, named
by a flat key. Nested dicts are flattened with ``/`` ("optimizer/state/0/
momentum_buffer"). Python scalars and strings become 0-d arrays; object
arrays are refused, so nothing is ever pickled. The JSON-able ``meta`` dict
and a format marker are stored as one 0-d string array under the reserved
key ``__fastgrad__``.

How a model uses this (load into temporaries, validate all, then assign, so
a bad file never leaves the model half-loaded)::

    from fastgrad import io

    class Model:
        def state_arrays(self):
            # name -> ndarray: parameters, optimiser buffers, RNG state
            return {"layers/0/weight": self.weight.data,
                    "layers/0/bias": self.bias.data,
                    "optimizer": self.optimizer.state_arrays(),   # nested ok
                    "rng": io.generator_state(self.rng)}

        def save(self, path):
            io.save_checkpoint(path, self.state_arrays(),
                               meta={"class": "Model", "sizes": self.sizes})

        def load(self, path):
            current = io.flatten(self.state_arrays())
            arrays, meta = io.load_checkpoint(path,
                                              expected=io.describe(current))
            # validate the RNG state too, into a temporary generator
            saved_rng = io.restore_generator(arrays.pop("rng"))
            # every check passed: only now touch the model
            for name, value in arrays.items():
                current[name][...] = value    # in place, same shape/dtype
            io.restore_generator(saved_rng, self.rng)  # or a saved state

``describe`` of the model's own arrays is the expected layout, so a file
written by a model of different sizes, dtype or optimiser fails with a
message naming every differing key before anything is assigned.
"""
import json
import os
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

__all__ = ["save_checkpoint", "load_checkpoint", "flatten", "unflatten",
           "describe", "generator_state", "restore_generator",
           "CheckpointError", "atomic_write"]

_RESERVED = "__fastgrad__"
_FORMAT = "fastgrad-checkpoint"
_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file is corrupt, not a fastgrad checkpoint, or does not
    match the expected names, shapes and dtypes."""


# ------------------------------------------------------------------ keys

def flatten(tree, prefix=""):
    """Flatten nested dicts into ``{"a/b/c": value}`` (keys made str).

    Raises ValueError on an empty key, a key containing ``/`` below the top
    level ambiguity (two paths mapping to one flat key), or a non-dict
    container value such as a list (store lists as arrays).
    """
    flat = {}
    for key, value in tree.items():
        key = str(key)
        if key == "":
            raise ValueError(f"checkpoint: empty key under {prefix!r}")
        name = f"{prefix}/{key}" if prefix else key
        if isinstance(value, dict):
            items = flatten(value, name)
        else:
            items = {name: value}
        for item_name, item in items.items():
            if item_name in flat:
                raise ValueError(f"checkpoint: key {item_name!r} occurs twice "
                                 "after flattening nested dicts with '/'")
            flat[item_name] = item
    return flat


def unflatten(flat):
    """Inverse of :func:`flatten`: ``{"a/b": v}`` -> ``{"a": {"b": v}}``."""
    tree = {}
    for name, value in flat.items():
        *parents, leaf = name.split("/")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"checkpoint: {name!r} lies below a value")
        if leaf in node:
            raise ValueError(f"checkpoint: {name!r} is both a value and a "
                             "group")
        node[leaf] = value
    return tree


def describe(arrays):
    """``{name: (shape, dtype)}`` of (possibly nested) arrays: the
    ``expected`` argument of :func:`load_checkpoint`."""
    return {name: (np.shape(value), np.asarray(value).dtype)
            for name, value in flatten(arrays).items()}


def _as_array(name, value):
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        value = value.numpy()          # a fastgrad Tensor
    array = np.asarray(value)
    if array.dtype.hasobject:
        raise TypeError(f"checkpoint: {name!r} has dtype object "
                        f"({type(value).__name__}); only numeric, bool and "
                        "string arrays can be stored without pickle")
    return np.ascontiguousarray(array) if array.ndim else array


# ------------------------------------------------------------- atomic write

def _file_mode():
    """0o666 less the process umask: what open() would have created."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path, write):
    """Create ``path`` atomically: ``write(binary_file)`` fills a temporary
    file in the same directory, which is flushed, fsynced and moved over
    ``path`` with ``os.replace``; the directory is fsynced too. On any
    exception the temporary file is removed and ``path`` is untouched."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    handle = tempfile.NamedTemporaryFile(dir=directory,
                                         prefix=f".{path.name}.",
                                         suffix=".tmp", delete=False)
    try:
        with handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(handle.name, _file_mode())
        os.replace(handle.name, path)
    except BaseException:
        try:
            os.unlink(handle.name)
        except FileNotFoundError:
            pass
        raise
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:                     # e.g. Windows: no directory fds
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ------------------------------------------------------------ save / load

def save_checkpoint(path, arrays, meta=None, compress=False):
    """Write ``arrays`` (and ``meta``) to ``path`` atomically, without pickle.

    Parameters
    ----------
    path : str or Path, written exactly (no ``.npz`` suffix is added)
    arrays : dict name -> ndarray / scalar / str / Tensor, or nested dicts of
        those (flattened with ``/``). ``__fastgrad__`` is reserved.
    meta : JSON-serialisable dict (hyper-parameters, epoch, class name...)
    compress : deflate the members (smaller, slower)

    The file is a valid ``.npz``: ``numpy.load(path, allow_pickle=False)``
    reads it. A crash mid-write leaves any previous ``path`` intact.
    """
    flat = flatten(arrays)
    if _RESERVED in flat:
        raise ValueError(f"checkpoint: key {_RESERVED!r} is reserved")
    try:
        header = json.dumps({"format": _FORMAT, "version": _VERSION,
                             "meta": {} if meta is None else meta},
                            allow_nan=True, sort_keys=True)
    except TypeError as err:
        raise TypeError(f"checkpoint: meta is not JSON-serialisable: {err}"
                        ) from None
    members = {name: _as_array(name, value) for name, value in flat.items()}
    members[_RESERVED] = np.array(header)
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED

    def write(handle):
        with zipfile.ZipFile(handle, "w", compression=method,
                             allowZip64=True) as archive:
            for name, array in members.items():
                with archive.open(name + ".npy", "w",
                                  force_zip64=True) as member:
                    np.lib.format.write_array(member, array,
                                              allow_pickle=False)

    atomic_write(path, write)


_READ_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError,
                EOFError, zlib.error, OSError, KeyError)


def load_checkpoint(path, expected=None):
    """Read and validate a checkpoint written by :func:`save_checkpoint`.

    Parameters
    ----------
    path : str or Path
    expected : optional dict name -> (shape, dtype) (see :func:`describe`);
        ``None`` for shape or dtype skips that check. With ``expected``, the
        file must hold exactly these names. Strings match strings of any
        length; 0-d integers match any integer dtype (a Python int is saved
        as int64, or as uint64 from 2**63 on, e.g. a 64-bit seed).

    Returns
    -------
    arrays : dict flat name -> ndarray (every member fully read into memory)
    meta : dict, the ``meta`` given to save_checkpoint

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    CheckpointError (a ValueError)
        The file is truncated or corrupt (zip/CRC/npy errors), holds pickled
        objects, is not a fastgrad checkpoint, or differs from ``expected``
        (every missing/extra key and shape/dtype mismatch is listed, with
        expected vs found). Nothing is returned partially.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    arrays = {}
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise CheckpointError(f"{path}: a bare .npy file, not a "
                                  "fastgrad checkpoint (.npz)")
        with archive:
            for name in archive.files:
                arrays[name] = archive[name]
    except CheckpointError:
        raise
    except _READ_ERRORS as err:
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint "
                              f"({type(err).__name__}: {err})") from None
    header = arrays.pop(_RESERVED, None)
    try:
        info = json.loads(str(header[()]))
        if info.get("format") != _FORMAT:
            raise ValueError
    except (TypeError, ValueError, AttributeError, IndexError):
        raise CheckpointError(f"{path}: not a fastgrad checkpoint (no valid "
                              f"{_RESERVED!r} entry)") from None
    if info.get("version") != _VERSION:
        raise CheckpointError(f"{path}: checkpoint format version "
                              f"{info.get('version')}, this fastgrad reads "
                              f"version {_VERSION}")
    if expected is not None:
        _validate(path, arrays, expected)
    return arrays, info["meta"]


def _validate(path, arrays, expected):
    problems = []
    for name in sorted(set(expected) - set(arrays)):
        shape, dtype = expected[name]
        problems.append(f"missing key {name!r} (expected shape {shape}, "
                        f"dtype {dtype})")
    for name in sorted(set(arrays) - set(expected)):
        problems.append(f"unexpected key {name!r} (shape "
                        f"{arrays[name].shape}, dtype {arrays[name].dtype})")
    for name in sorted(set(arrays) & set(expected)):
        shape, dtype = expected[name]
        found = arrays[name]
        if shape is not None and tuple(shape) != found.shape:
            problems.append(f"key {name!r}: expected shape {tuple(shape)}, "
                            f"found {found.shape}")
        if dtype is not None:
            dtype = np.dtype(dtype)
            # Strings: any length of the same kind is fine. 0-d integers
            # (Python ints: int64, or uint64 from 2**63 on) match any
            # integer dtype, so a counter crossing 2**63 still loads.
            if dtype.kind in "US":
                same = found.dtype.kind == dtype.kind
            elif found.ndim == 0 and dtype.kind in "iu":
                same = found.dtype.kind in "iu"
            else:
                same = found.dtype == dtype
            if not same:
                problems.append(f"key {name!r}: expected dtype {dtype}, "
                                f"found {found.dtype}")
    if problems:
        raise CheckpointError(f"{path}: checkpoint does not match the "
                              "expected layout:\n  " + "\n  ".join(problems))


# ------------------------------------------------------------ RNG state

def _encode(value):
    if isinstance(value, dict):
        return {key: _encode(item) for key, item in value.items()}
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": value.dtype.str}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _decode(value):
    if isinstance(value, dict):
        if "__ndarray__" in value:
            return np.array(value["__ndarray__"], dtype=value["dtype"])
        return {key: _decode(item) for key, item in value.items()}
    return value


def generator_state(rng):
    """A NumPy Generator's exact state as a 0-d string array (JSON).

    Works for every bit generator (PCG64, PCG64DXSM, Philox, SFC64, MT19937):
    128-bit integers stay exact in JSON, and arrays inside the state (e.g.
    MT19937's key) are tagged with their dtype.
    """
    if isinstance(rng, np.random.Generator):
        bit_generator = rng.bit_generator
    elif isinstance(rng, np.random.BitGenerator):
        bit_generator = rng
    else:
        raise TypeError(f"generator_state: expected a numpy.random.Generator,"
                        f" got {type(rng).__name__}")
    return np.array(json.dumps(_encode(bit_generator.state)))


def restore_generator(state, rng=None):
    """Inverse of :func:`generator_state`.

    ``state`` is what :func:`generator_state` returned (or a Generator to
    copy the state of). Without ``rng``, return a new Generator in that
    state; with ``rng`` (a Generator whose bit generator is of the same
    kind), set its state in place and return it. The state is fully
    validated on a fresh generator first, so on error (ValueError) ``rng``
    is unchanged.
    """
    if isinstance(state, np.random.Generator):
        state = generator_state(state)
    try:
        decoded = _decode(json.loads(str(np.asarray(state)[()])))
        kind = decoded["bit_generator"]
    except (TypeError, ValueError, KeyError, IndexError) as err:
        raise ValueError(f"restore_generator: not a saved generator state "
                         f"({type(err).__name__}: {err})") from None
    bit_generator_class = getattr(np.random, str(kind), None)
    if not (isinstance(bit_generator_class, type) and issubclass(
            bit_generator_class, np.random.BitGenerator)):
        raise ValueError(f"restore_generator: unknown bit generator {kind!r}")
    fresh = np.random.Generator(bit_generator_class())
    try:
        fresh.bit_generator.state = decoded
    except (TypeError, ValueError, KeyError) as err:
        raise ValueError(f"restore_generator: invalid {kind} state "
                         f"({type(err).__name__}: {err})") from None
    if rng is None:
        return fresh
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"restore_generator: rng must be a "
                        f"numpy.random.Generator, got {type(rng).__name__}")
    current = type(rng.bit_generator).__name__
    if current != kind:
        raise ValueError(f"restore_generator: saved state is for {kind}, the "
                         f"generator uses {current}")
    rng.bit_generator.state = fresh.bit_generator.state
    return rng
