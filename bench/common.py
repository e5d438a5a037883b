"""Shared helpers of the benchmark suites: timing, tables, JSON, plots, data.

Timing follows DESIGN.md's rules for benchmarks on a busy machine: the
implementations being compared run in turn (A B A B ...), with a short pause
whenever the library changes so that a BLAS thread pool that keeps spinning
after its last call (OpenBLAS does, for about 0.1 s) does not steal the cores
from the next library; each is warmed up first, and the median of >= 5 timed
runs is reported together with the minimum and maximum. Only ratios measured
side by side in one run mean anything here.

A suite module (bench/suites/<name>.py) typically does::

    from bench import common
    timings = common.time_alternating(
        [common.Impl("fastgrad", "fastgrad", step_fg),
         common.Impl("numpy", "numpy", step_np)], quick=cfg.quick)
    rows.append(common.row("mlp", "fastgrad", batch_size, cfg.dtype,
                           n_threads, timings["fastgrad"], batch_size))
    common.print_table("MLP training step", rows, common.THROUGHPUT_COLUMNS)
"""
import contextlib
import datetime
import json
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

#: Seconds to sleep when the next implementation belongs to another library.
PAUSE_BETWEEN_LIBRARIES = 0.2
#: Timed runs per implementation (the median of these is reported).
REPEATS = 5
#: Seconds a library's first implementation runs before its first timing in
#: a process: its first parallel calls can be 300x slow for about 70 ms
#: (0.8 ms for a 3 us product, every call, in 5 of 15 fresh processes;
#: never in 5 with the threads pinned to separate cores, so most likely
#: the worker thread starts on the main thread's core).
FIRST_WARMUP_SECONDS = 0.3
#: Libraries that have had that first warm-up in this process.
_warmed_up = set()

# --------------------------------------------------------------------------
# Timing


@dataclass
class Impl:
    """One implementation to time: `fn()` does one unit of work (e.g. one
    training step); `library` decides when a pause is needed."""
    name: str
    library: str
    fn: object


@dataclass
class Timing:
    """Seconds per call of one implementation: median, min and max over the
    timed runs (each run averages `inner` back-to-back calls)."""
    median: float
    min: float
    max: float
    runs: list = field(default_factory=list)
    inner: int = 1

    def per_second(self, units=1):
        """Units (e.g. samples) per second at the median time."""
        return units / self.median if self.median > 0 else math.inf


def _run_calls(fn, count):
    start = time.perf_counter()
    for _ in range(count):
        fn()
    return time.perf_counter() - start


def time_alternating(impls, *, repeats=REPEATS, warmup=2, run_seconds=None,
                     quick=False, pause=None, max_inner=100000):
    """Time several implementations in turn, A B A B ...

    impls: list of Impl. Each is warmed up (`warmup` calls; the first of a
    library in this process for FIRST_WARMUP_SECONDS), then calibrated
    so that one timed run of `inner` back-to-back calls lasts about
    `run_seconds` (0.05 s, or 0.01 s with quick=True). Then `repeats` rounds
    run every implementation once each; a pause of `pause` seconds (default
    PAUSE_BETWEEN_LIBRARIES) separates two different libraries. Returns
    {name: Timing} in seconds per call.
    """
    if repeats < 1:
        raise ValueError(f"time_alternating: repeats must be >= 1, "
                         f"got {repeats}")
    if run_seconds is None:
        run_seconds = 0.01 if quick else 0.05
    if pause is None:
        pause = PAUSE_BETWEEN_LIBRARIES
    names = [impl.name for impl in impls]
    if len(set(names)) != len(names):
        raise ValueError(f"time_alternating: duplicate names in {names}")
    inner = {}
    previous = None

    def maybe_pause(library):
        nonlocal previous
        if previous is not None and library != previous and pause > 0:
            time.sleep(pause)
        previous = library

    for impl in impls:
        maybe_pause(impl.library)
        _run_calls(impl.fn, warmup)
        if impl.library not in _warmed_up:
            _warmed_up.add(impl.library)
            start = time.perf_counter()
            while time.perf_counter() - start < FIRST_WARMUP_SECONDS:
                impl.fn()
        # The fastest of a few single calls gives a first count; then runs
        # of `count` calls set it again until two runs in a row agree on
        # the time per call (within 1.25x) and the last lasts run_seconds
        # within a factor of 2. (Counts taken from slow first calls gave
        # runs of 73 calls, whose start, threads waking after the pause,
        # doubled the time per call.)
        per_call = max(min(_run_calls(impl.fn, 1) for _ in range(3)), 1e-7)
        for _ in range(10):
            count = int(min(max_inner, max(1, run_seconds / per_call)))
            elapsed = max(_run_calls(impl.fn, count), 1e-9)
            previous, per_call = per_call, elapsed / count
            steady = previous / 1.25 <= per_call <= previous * 1.25
            long_enough = (run_seconds / 2 <= elapsed <= 2 * run_seconds
                           or (count == max_inner and elapsed < run_seconds)
                           or (count == 1 and elapsed > run_seconds))
            if steady and long_enough:
                break
        inner[impl.name] = count
    runs = {impl.name: [] for impl in impls}
    for _ in range(repeats):
        for impl in impls:
            maybe_pause(impl.library)
            elapsed = _run_calls(impl.fn, inner[impl.name])
            runs[impl.name].append(elapsed / inner[impl.name])
    return {name: Timing(statistics.median(values), min(values), max(values),
                         values, inner[name])
            for name, values in runs.items()}


def time_one(fn, **kwargs):
    """Timing of a single implementation (see time_alternating)."""
    return time_alternating([Impl("only", "only", fn)], **kwargs)["only"]


def pause_between_libraries():
    """Sleep long enough for another library's thread pool to go idle."""
    time.sleep(PAUSE_BETWEEN_LIBRARIES)


def throughput_row(suite, framework, batch_size, dtype, threads, timing,
                   samples_per_call=None, **extra):
    """A JSON-able result row for a training-throughput measurement."""
    samples = batch_size if samples_per_call is None else samples_per_call
    row = {
        "suite": suite, "framework": framework, "batch_size": int(batch_size),
        "dtype": str(dtype), "threads": int(threads),
        "samples_per_s": samples / timing.median,
        "ms_per_step": 1e3 * timing.median,
        "ms_per_step_min": 1e3 * timing.min,
        "ms_per_step_max": 1e3 * timing.max,
        "runs": len(timing.runs), "steps_per_run": timing.inner,
    }
    row.update(extra)
    return row


def add_speedups(rows, key="samples_per_s", by=("suite", "framework",
                                                 "threads", "dtype")):
    """Set row["speedup_vs_b1"]: throughput over the batch-1 (smallest batch)
    throughput of the same suite/framework/threads/dtype."""
    base = {}
    for row in sorted(rows, key=lambda r: r["batch_size"]):
        group = tuple(row.get(name) for name in by)
        base.setdefault(group, row[key])
        row["speedup_vs_b1"] = row[key] / base[group]
    return rows


# --------------------------------------------------------------------------
# Tables


def _format_value(value, fmt=None):
    if value is None:
        return "-"
    if fmt:
        return format(value, fmt)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        magnitude = abs(value)
        if magnitude >= 1000:
            return f"{value:,.0f}"
        if magnitude >= 100:
            return f"{value:.1f}"
        if magnitude >= 1:
            return f"{value:.2f}"
        if magnitude == 0:
            return "0"
        return f"{value:.3g}"
    return str(value)


def format_table(title, rows, columns):
    """The text of a table. columns: list of keys, or (key, header) or
    (key, header, format_spec) tuples. Missing values print as '-'."""
    specs = []
    for column in columns:
        if isinstance(column, str):
            specs.append((column, column, None))
        else:
            key, header, *rest = column
            specs.append((key, header, rest[0] if rest else None))
    cells = [[header for _, header, _ in specs]]
    for row in rows:
        cells.append([_format_value(row.get(key), fmt)
                      for key, _, fmt in specs])
    widths = [max(len(line[i]) for line in cells) for i in range(len(specs))]
    lines = [title, "=" * max(len(title), 1)]
    for index, line in enumerate(cells):
        lines.append("  ".join(cell.rjust(width)
                               for cell, width in zip(line, widths)))
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def print_table(title, rows, columns, file=None):
    """Print a table (see format_table) followed by a blank line; returns
    its text."""
    text = format_table(title, rows, columns)
    print(text + "\n", file=file or sys.stdout, flush=True)
    return text


#: Columns of a throughput table (batch size, samples/s, ms/step, speed-up).
THROUGHPUT_COLUMNS = [
    ("framework", "framework"), ("threads", "threads"),
    ("batch_size", "batch"), ("samples_per_s", "samples/s", ",.0f"),
    ("ms_per_step", "ms/step", ".4g"), ("ms_per_step_min", "min", ".4g"),
    ("ms_per_step_max", "max", ".4g"),
    ("speedup_vs_b1", "x batch 1", ".1f"),
]


def pivot_frameworks(rows, frameworks, reference="fastgrad",
                     keys=("batch_size", "threads", "dtype")):
    """Side-by-side rows: one per (batch_size, threads, dtype) with the
    samples/s of every framework and the ratio fastgrad / peer."""
    table = {}
    for row in rows:
        group = tuple(row.get(key) for key in keys)
        entry = table.setdefault(group, dict(zip(keys, group)))
        entry[row["framework"]] = row["samples_per_s"]
    out = []
    for group in sorted(table, key=lambda g: tuple(
            (str(v) if not isinstance(v, (int, float)) else v) for v in g)):
        entry = table[group]
        for peer in frameworks:
            if peer != reference and peer in entry and reference in entry:
                entry[f"{reference}/{peer}"] = entry[reference] / entry[peer]
        out.append(entry)
    return out


def side_by_side_columns(frameworks, reference="fastgrad"):
    columns = [("batch_size", "batch"), ("threads", "threads")]
    columns += [(name, f"{name} samples/s", ",.0f") for name in frameworks]
    columns += [(f"{reference}/{name}", f"x {name}", ".2f")
                for name in frameworks if name != reference]
    return columns


# --------------------------------------------------------------------------
# JSON and environment


def machine_info():
    """What a result file needs to be read later: versions and threads."""
    info = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc)
        .strftime("%Y-%m-%dT%H:%M:%SZ"),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "load_average": (list(os.getloadavg())
                         if hasattr(os, "getloadavg") else None),
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
        "env": {name: os.environ[name] for name in (
            "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS",
            "OPENBLAS_NUM_THREADS", "FASTGRAD_NUM_THREADS", "FASTGRAD_DATA",
            "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
            if name in os.environ},
    }
    try:
        import fastgrad
        info["fastgrad"] = fastgrad.__version__
        info["fastgrad_openmp"] = bool(fastgrad.openmp_enabled())
    except Exception as error:  # a broken build should still be reported
        info["fastgrad"] = f"unavailable: {error}"
    torch = sys.modules.get("torch")
    if torch is not None:
        info["torch"] = getattr(torch, "__version__", "?")
    return info


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path, rows, meta=None):
    """Write {"meta": ..., "rows": [...]} to path (folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"meta": _jsonable(meta or machine_info()),
                "rows": _jsonable(list(rows))}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(document, indent=1) + "\n")
    tmp.replace(path)
    return path


def read_json(path):
    return json.loads(Path(path).read_text())


# --------------------------------------------------------------------------
# Threads


@contextlib.contextmanager
def threads(n_threads):
    """Run a block with n_threads for fastgrad, PyTorch (when imported) and
    NumPy's BLAS (through threadpoolctl when installed)."""
    import fastgrad
    saved = fastgrad.get_num_threads()
    fastgrad.set_num_threads(n_threads)
    torch = sys.modules.get("torch")
    saved_torch = torch.get_num_threads() if torch else None
    if torch:
        torch.set_num_threads(n_threads)
    try:
        from threadpoolctl import threadpool_limits
        limiter = threadpool_limits(limits=n_threads, user_api="blas")
    except ImportError:
        limiter = contextlib.nullcontext()
    try:
        with limiter:
            yield
    finally:
        fastgrad.set_num_threads(saved)
        if torch:
            torch.set_num_threads(saved_torch)


def optional_import(name):
    """The module, or None when it is not installed (or fails to import)."""
    try:
        return __import__(name)
    except Exception:
        return None


# --------------------------------------------------------------------------
# Plots (matplotlib, Agg backend, log2 x axis)


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_panels(path, panels, *, suptitle=None, ncols=None):
    """Save a figure of several panels to path.

    panels: list of dicts with keys title, xlabel, ylabel, series (dict
    label -> (xs, ys)), and optional logy (default True), log2x (default
    True), markers (dict label -> marker), vlines (dict label -> x).
    """
    plt = _pyplot()
    count = max(1, len(panels))
    ncols = ncols or min(count, 3)
    nrows = math.ceil(count / ncols)
    figure, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols,
                                                       3.8 * nrows),
                                squeeze=False)
    for index, panel in enumerate(panels):
        axis = axes[index // ncols][index % ncols]
        for label, (xs, ys) in panel["series"].items():
            points = [(x, y) for x, y in zip(xs, ys)
                      if y is not None and np.isfinite(y)]
            if not points:
                continue
            xs_ok, ys_ok = zip(*points)
            axis.plot(xs_ok, ys_ok, marker="o", markersize=3.5, label=label)
        for label, x in (panel.get("vlines") or {}).items():
            axis.axvline(x, linestyle="--", color="grey", linewidth=1)
            axis.annotate(label, (x, 0.97), xycoords=("data", "axes fraction"),
                          rotation=90, va="top", ha="right", fontsize=7)
        if panel.get("log2x", True):
            axis.set_xscale("log", base=2)
        if panel.get("logy", True):
            axis.set_yscale("log")
        axis.set_title(panel.get("title", ""), fontsize=10)
        axis.set_xlabel(panel.get("xlabel", "batch size"))
        axis.set_ylabel(panel.get("ylabel", ""))
        axis.grid(True, which="major", alpha=0.3)
        if panel["series"]:
            axis.legend(fontsize=7)
    for index in range(count, nrows * ncols):
        axes[index // ncols][index % ncols].set_visible(False)
    if suptitle:
        figure.suptitle(suptitle, fontsize=11)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def throughput_series(rows):
    """{label: (batch sizes, samples/s)} per framework (and thread count,
    when several appear) from throughput rows."""
    thread_counts = {row.get("threads") for row in rows}
    series = {}
    for row in sorted(rows, key=lambda r: r["batch_size"]):
        label = row["framework"]
        if len(thread_counts) > 1:
            label += f" ({row.get('threads')} thr)"
        if row.get("variant"):
            label += f" {row['variant']}"
        xs, ys = series.setdefault(label, ([], []))
        xs.append(row["batch_size"])
        ys.append(row["samples_per_s"])
    return series


def plot_throughput(path, rows_by_suite, title=None):
    """One panel per suite: samples/s against batch size (log2 x axis)."""
    panels = []
    for suite, rows in rows_by_suite.items():
        rows = [row for row in rows if "batch_size" in row
                and "samples_per_s" in row and "framework" in row]
        if rows:
            panels.append({"title": f"{suite}: training throughput",
                           "ylabel": "samples / s",
                           "series": throughput_series(rows)})
    if not panels:
        return None
    return plot_panels(path, panels, suptitle=title)


# --------------------------------------------------------------------------
# Data


@dataclass
class Dataset:
    """Images flattened to (n, 784) in [0, 1] and integer labels."""
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    real: bool = True

    def describe(self):
        kind = ("real data" if self.real
                else "SYNTHETIC data (no dataset found)")
        return (f"{self.name}: {len(self.x_train):,} train / "
                f"{len(self.x_test):,} test images, {kind}")

    def astype(self, dtype):
        return Dataset(self.name, self.x_train.astype(dtype, copy=False),
                       self.y_train, self.x_test.astype(dtype, copy=False),
                       self.y_test, self.real)


def load_dataset(name="mnist10k", data_dir=None):
    """Real data or None. name: "mnist10k" or "fashion-mnist".

    Loads through fastgrad.datasets, whose search covers data_dir,
    FASTGRAD_DATA, ~/.cache/fastgrad and system locations (Debian's
    dataset-fashion-mnist), then tries ../shared/data beside the checkout."""
    from fastgrad import datasets
    loader = {"mnist10k": datasets.mnist10k_split,
              "fashion-mnist": datasets.load_fashion_mnist}[name]
    for directory in (data_dir, ROOT.parent / "shared" / "data"):
        try:
            x_train, y_train, x_test, y_test = loader(directory)
        except (FileNotFoundError, ValueError):  # ValueError: IDXError
            continue
        return Dataset(name, datasets.to_float(x_train).reshape(
                           len(x_train), -1), y_train.astype(np.int64),
                       datasets.to_float(x_test).reshape(len(x_test), -1),
                       y_test.astype(np.int64))
    return None


def synthetic_dataset(n_train=8000, n_test=2000, n_features=784,
                      n_classes=10, seed=0):
    """Random 'images' of MNIST's shape with learnable labels (a random
    linear teacher), for throughput runs when no dataset is found."""
    rng = np.random.default_rng(seed)
    x = rng.random((n_train + n_test, n_features), dtype=np.float32)
    teacher = rng.standard_normal((n_features, n_classes)).astype(np.float32)
    y = (x @ teacher).argmax(1).astype(np.int64)
    return Dataset("synthetic", x[:n_train], y[:n_train], x[n_train:],
                   y[n_train:], real=False)


def get_dataset(cfg, prefer=("mnist10k", "fashion-mnist"),
                allow_synthetic=True):
    """The first real dataset found among `prefer`, else synthetic data of
    the same shape (or None when allow_synthetic is False). Says which."""
    cache = getattr(cfg, "_datasets", None)
    if cache is None:
        cache = {}
        try:
            cfg._datasets = cache
        except AttributeError:
            pass
    for name in prefer:
        if name not in cache:
            cache[name] = load_dataset(name, getattr(cfg, "data_dir", None))
        if cache[name] is not None:
            return cache[name]
    if not allow_synthetic:
        return None
    if "synthetic" not in cache:
        cache["synthetic"] = synthetic_dataset()
    return cache["synthetic"]


def batches(x, y, batch_size, count=None, seed=0):
    """Contiguous (x, y) mini-batches cut from a shuffled copy; at most
    `count` of them (at least one, wrapping around when the data are
    smaller than a batch)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    n_batches = max(1, len(x) // batch_size)
    if count is not None:
        n_batches = min(n_batches, count)
    out = []
    for index in range(n_batches):
        picked = np.take(order, np.arange(index * batch_size,
                                          (index + 1) * batch_size),
                         mode="wrap")
        out.append((np.ascontiguousarray(x[picked]),
                    np.ascontiguousarray(y[picked])))
    return out


class Cycle:
    """Endless round-robin over a list (of prepared mini-batches)."""

    def __init__(self, items):
        self.items = items
        self.index = -1

    def next(self):
        self.index = (self.index + 1) % len(self.items)
        return self.items[self.index]


def cycling_impl(name, step, batches):
    """An Impl (library `name`) whose unit of work is `step(*batch)` on the
    next of `batches` (tuples of arguments), round-robin."""
    feed = Cycle(batches)
    return Impl(name, name, lambda: step(*feed.next()))


# --------------------------------------------------------------------------
# Progress and command-line parsing helpers


def make_progress(stream=None, enabled=True):
    """A progress callable: prints '[  12.3 s] message' to stderr."""
    start = time.perf_counter()
    stream = stream or sys.stderr

    def progress(message):
        if enabled:
            print(f"[{time.perf_counter() - start:7.1f} s] {message}",
                  file=stream, flush=True)
    return progress


def parse_int_list(text, name="value"):
    """'1,2,4' -> [1, 2, 4]; '1..2048' -> powers of two 1, 2, 4, ..., 2048."""
    values = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        if ".." in part:
            low, high = (int(v) for v in part.split(".."))
            value = low
            while value <= high:
                values.append(value)
                value *= 2
        else:
            values.append(int(part))
    if not values or min(values) < 1:
        raise ValueError(f"{name}: expected positive integers like 1,2,4 or "
                         f"1..2048, got {text!r}")
    return values


def powers_of_two(low, high):
    return parse_int_list(f"{low}..{high}")
