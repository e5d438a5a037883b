"""GEMM kernel vs numpy.matmul: GFLOP/s side by side, MLP shapes and squares.

Shapes (m, k, n), C (m x n) := op(A) (m x k) op(B) (k x n):
  fwd      (B, 784, 100)  X W^T       x (B, 784), W (100, 784): trans_b,
                          as ops.linear's forward calls it
  bwd_w    (784, B, 100)  X^T dY      x (B, 784), dY (B, 100): trans_a
  bwd_x    (B, 100, 784)  dY W        dY (B, 100), W (100, 784)
  square   (N, N, N)      A B         N in 256, 512, 1024, 2048
for B in DEFAULT_BATCH_SIZES (or --batch-sizes), float32 and float64 (the
suite always measures both dtypes; --dtype does not narrow it), at each
--threads count (fastgrad and NumPy's BLAS both limited to it). NumPy gets
the same operands as views (W.T, X.T), so OpenBLAS sees its transpose
flags and copies nothing. Timing: bench.common.time_alternating (fastgrad
and NumPy in turn, a pause between them, median of >= 5 timed runs after
warm-up, min and max kept). Run NumPy's side with OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE unset (env -u ...); the table header says which OpenBLAS
kernel ran.
"""
import numpy as np

from bench import common

NAME = "gemm"
DEFAULT_BATCH_SIZES = [1, 8, 32, 100, 256, 1024, 4096]
QUICK_BATCH_SIZES = [1, 32, 256]
SQUARES = [256, 512, 1024, 2048]
QUICK_SQUARES = [256, 512]
DTYPES = ["float32", "float64"]
N_IN, N_OUT = 784, 100

COLUMNS = [
    ("op", "op"), ("m", "m"), ("k", "k"), ("n", "n"), ("dtype", "dtype"),
    ("threads", "thr"),
    ("fastgrad_gflops", "fastgrad GF/s", ".1f"),
    ("fastgrad_gflops_min", "min", ".1f"),
    ("fastgrad_gflops_max", "max", ".1f"),
    ("numpy_gflops", "numpy GF/s", ".1f"),
    ("numpy_gflops_min", "min", ".1f"),
    ("numpy_gflops_max", "max", ".1f"),
    ("ratio", "fastgrad/numpy", ".2f"),
]


def blas_description():
    """Which BLAS NumPy's matmul runs (threadpoolctl), as one line."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "NumPy BLAS: unknown (threadpoolctl not installed)"
    parts = [f"{info.get('internal_api')} {info.get('version')} "
             f"kernel={info.get('architecture')} "
             f"threads={info.get('num_threads')}"
             for info in threadpool_info() if info.get("user_api") == "blas"]
    return "NumPy BLAS: " + ("; ".join(parts) if parts else "none found")


def problems(batch_sizes, squares):
    """(op, m, k, n, shape of a, shape of b, trans_a, trans_b)."""
    for batch in batch_sizes:
        yield "fwd", batch, N_IN, N_OUT, (batch, N_IN), (N_OUT, N_IN), 0, 1
        yield "bwd_w", N_IN, batch, N_OUT, (batch, N_IN), (batch, N_OUT), 1, 0
        yield "bwd_x", batch, N_OUT, N_IN, (batch, N_OUT), (N_OUT, N_IN), 0, 0
    for size in squares:
        yield "square", size, size, size, (size, size), (size, size), 0, 0


def measure(op, m, k, n, a_shape, b_shape, trans_a, trans_b, dtype,
            n_threads, quick, rng):
    """One row: fastgrad's gemm and numpy.matmul on the same operands."""
    from fastgrad import _kernels

    a = rng.uniform(-1, 1, a_shape).astype(dtype)
    b = rng.uniform(-1, 1, b_shape).astype(dtype)
    c_fastgrad = np.empty((m, n), dtype)
    c_numpy = np.empty((m, n), dtype)
    op_a = a.T if trans_a else a
    op_b = b.T if trans_b else b

    def run_fastgrad():
        _kernels.gemm(a, b, c_fastgrad, trans_a, trans_b)

    def run_numpy():
        np.matmul(op_a, op_b, out=c_numpy)

    with common.threads(n_threads):
        timings = common.time_alternating(
            [common.Impl("fastgrad", "fastgrad", run_fastgrad),
             common.Impl("numpy", "numpy", run_numpy)], quick=quick)
    scale = np.finfo(dtype).eps * k * 8
    if not np.allclose(c_fastgrad, c_numpy, rtol=scale, atol=scale):
        raise AssertionError(f"gemm bench: fastgrad and numpy disagree on "
                             f"{op} {m}x{k}x{n} {dtype}")
    gflop = 2.0 * m * k * n / 1e9
    fast, peer = timings["fastgrad"], timings["numpy"]
    return {
        "suite": NAME, "op": op, "m": m, "k": k, "n": n, "dtype": dtype,
        "threads": n_threads, "trans_a": bool(trans_a),
        "trans_b": bool(trans_b),
        "fastgrad_gflops": gflop / fast.median,
        "fastgrad_gflops_min": gflop / fast.max,
        "fastgrad_gflops_max": gflop / fast.min,
        "numpy_gflops": gflop / peer.median,
        "numpy_gflops_min": gflop / peer.max,
        "numpy_gflops_max": gflop / peer.min,
        "ratio": peer.median / fast.median,
        "fastgrad_ms": 1e3 * fast.median, "numpy_ms": 1e3 * peer.median,
        "runs": len(fast.runs),
        "batch_size": None if op == "square" else (k if op == "bwd_w" else m),
    }


def run(cfg):
    """Measure every shape; print one table; return the rows."""
    batch_sizes = cfg.batch_sizes or (QUICK_BATCH_SIZES if cfg.quick
                                      else DEFAULT_BATCH_SIZES)
    squares = QUICK_SQUARES if cfg.quick else SQUARES
    rng = np.random.default_rng(getattr(cfg, "seed", 0))
    cases = list(problems(batch_sizes, squares))
    rows = []
    for n_threads in cfg.threads:
        for dtype in DTYPES:
            for case in cases:
                cfg.progress(f"gemm {case[0]} {case[1]}x{case[2]}x{case[3]} "
                             f"{dtype} threads={n_threads}")
                rows.append(measure(*case, dtype, n_threads, cfg.quick, rng))
    with common.threads(max(cfg.threads)):
        blas = blas_description()
    from fastgrad import _kernels
    simd = {512: "AVX-512", 256: "AVX2"}.get(_kernels.gemm_simd_width(),
                                             "portable C")
    common.print_table(
        f"GEMM: fastgrad vs numpy.matmul, GFLOP/s (median, min, max of "
        f">= {common.REPEATS} runs; ratio of medians)\n"
        f"fastgrad kernels: {simd}; {blas}", rows, COLUMNS)
    return rows


if __name__ == "__main__":
    # Stand-alone use: python -m bench.suites.gemm [--quick]
    import argparse
    import sys

    import fastgrad

    quick = "--quick" in sys.argv
    run(argparse.Namespace(batch_sizes=None,
                           threads=[fastgrad.get_num_threads()],
                           dtype="float32", compare={"numpy"}, quick=quick,
                           out_dir=None, data_dir=None,
                           progress=common.make_progress()))
