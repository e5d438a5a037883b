"""fastgrad's batch-size lab: throughput, time-to-accuracy, critical batch.

    python bench/run.py                      # MLP sweep 1..2048, short CNN/RBM
    python bench/run.py --suite mlp --compare torch,numpy --threads 2
    python bench/run.py --suite tta,noise --lr-rule linear,sqrt
    python bench/run.py --suite gemm --json gemm.json

Without arguments it sweeps batch sizes 1, 2, 4, ..., 2048 for the MLP
784-100-10 training step and runs shorter sweeps for the CNN and the RBM,
prints one table per model, and writes results.json and throughput.png to
./bench_out/<timestamp>/ (it prints the folder). Real data is used when found
(mnist10k, Fashion-MNIST), else synthetic data of the same shape; the output
says which. When comparing with NumPy's BLAS, run with
`env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/run.py ...`.
"""
import argparse
import datetime
import os
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/run.py` from anywhere
    # appended, so an installed fastgrad (with its compiled kernels) comes
    # before the source tree; `import bench` still finds this folder
    sys.path.append(str(ROOT))

from bench import common  # noqa: E402
from bench.suites import discover  # noqa: E402

#: Suites of a run without --suite; those after the first run reduced.
DEFAULT_SUITES = ["mlp", "cnn", "rbm"]
#: Suites whose results feed later ones run first (noise reads tta).
ORDER = ["mlp", "cnn", "rbm", "gemm", "bn", "tta", "noise"]
PEERS = {"torch", "numpy", "sklearn"}
LR_RULES = ("linear", "sqrt", "none")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python bench/run.py",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Suites: mlp, cnn, rbm (training throughput), gemm (kernel "
               "vs numpy.matmul), tta (time to accuracy per batch size and "
               "LR rule), noise (gradient noise scale = predicted critical "
               "batch size), bn (batch norm vs batch size).")
    parser.add_argument("--suite", default=None,
                        help="comma-separated suites (default: mlp,cnn,rbm "
                             "with short CNN/RBM sweeps)")
    parser.add_argument("--batch-sizes", default=None,
                        help="e.g. 1,2,4,8 or 1..2048 (powers of two); "
                             "default: each suite's own")
    parser.add_argument("--threads", default=None,
                        help="a thread count or a sweep like 1,2 (default: "
                             "fastgrad.get_num_threads())")
    parser.add_argument("--dtype", default="float32",
                        choices=["float32", "float64"])
    parser.add_argument("--compare", default="",
                        help="peers run side by side: torch,numpy,sklearn "
                             "(missing ones are skipped with a message)")
    parser.add_argument("--json", default=None, help="results file (default "
                        "<out-dir>/results.json)")
    parser.add_argument("--plot", default=None, help="throughput plot "
                        "(default <out-dir>/throughput.png)")
    parser.add_argument("--out-dir", default=None, help="folder for all "
                        "files (default ./bench_out/<timestamp>)")
    parser.add_argument("--data-dir", default=None, help="MNIST-format data "
                        "(default: FASTGRAD_DATA, ~/.cache/fastgrad, ...)")
    parser.add_argument("--quick", action="store_true",
                        help="few sizes, short timings (a smoke run)")
    parser.add_argument("--lr-rule", default="linear,sqrt",
                        help="tta: rule(s) scaling the learning rate with "
                             "batch size: linear, sqrt, none (comma list "
                             "compares them side by side)")
    parser.add_argument("--base-lr", type=float, default=0.05,
                        help="tta/noise: learning rate at --base-batch-size")
    parser.add_argument("--base-batch-size", type=int, default=32)
    parser.add_argument("--target-accuracy", type=float, default=None,
                        help="tta: test accuracy to reach, a fraction "
                             "(default 0.92; 0.85 with --quick)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--list", action="store_true",
                        help="list the suites found and exit")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def make_config(args, progress):
    """The argparse.Namespace every suite's run(cfg) receives."""
    import fastgrad

    compare = {name.strip().lower() for name in args.compare.split(",")
               if name.strip()}
    unknown = compare - PEERS
    if unknown:
        raise SystemExit(f"--compare: unknown peer(s) {sorted(unknown)}; "
                         f"choose from {sorted(PEERS)}")
    rules = [rule.strip() for rule in args.lr_rule.split(",") if rule.strip()]
    bad_rules = [rule for rule in rules if rule not in LR_RULES]
    if bad_rules or not rules:
        raise SystemExit(f"--lr-rule: expected some of {LR_RULES}, got "
                         f"{args.lr_rule!r}")
    try:
        batch_sizes = (common.parse_int_list(args.batch_sizes, "--batch-sizes")
                       if args.batch_sizes else None)
        thread_counts = (common.parse_int_list(args.threads, "--threads")
                         if args.threads else [fastgrad.get_num_threads()])
    except ValueError as error:
        raise SystemExit(str(error)) from None
    if args.target_accuracy is not None and not 0 < args.target_accuracy < 1:
        raise SystemExit(f"--target-accuracy: a fraction in (0, 1), got "
                         f"{args.target_accuracy}")
    if args.base_lr <= 0 or args.base_batch_size < 1:
        raise SystemExit("--base-lr must be > 0 and --base-batch-size >= 1")
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = Path(args.out_dir) if args.out_dir else Path("bench_out") / stamp
    return argparse.Namespace(
        batch_sizes=batch_sizes, threads=thread_counts, dtype=args.dtype,
        compare=compare, quick=args.quick, out_dir=out_dir,
        data_dir=args.data_dir, progress=progress, lr_rules=rules,
        lr_rule=rules[0], base_lr=args.base_lr,
        base_batch_size=args.base_batch_size,
        target_accuracy=args.target_accuracy, seed=args.seed,
        results={}, default_run=False)


def main(argv=None):
    args = build_parser().parse_args(argv)
    suites, errors = discover()
    if args.list:
        for name in sorted(suites, key=lambda n: (ORDER + [n]).index(n)):
            doc = (suites[name].__doc__ or "").strip().split("\n")[0]
            print(f"{name:8s} {doc}")
        for name, error in errors.items():
            print(f"{name:8s} (does not import: {error})")
        return 0
    progress = common.make_progress(enabled=not args.no_progress)
    cfg = make_config(args, progress)
    if args.suite:
        requested = [s.strip() for s in args.suite.split(",") if s.strip()]
    else:
        requested = list(DEFAULT_SUITES)
        cfg.default_run = True
    requested = sorted(dict.fromkeys(requested),
                       key=lambda n: (ORDER + [n]).index(n))
    for name, error in errors.items():
        print(f"note: bench/suites/{name}.py does not import ({error}); "
              f"skipped", file=sys.stderr)

    import fastgrad
    print(f"fastgrad {fastgrad.__version__}, OpenMP "
          f"{'on' if fastgrad.openmp_enabled() else 'OFF (serial build)'}, "
          f"threads {','.join(map(str, cfg.threads))}, {cfg.dtype}; "
          f"output folder {cfg.out_dir}")
    if "numpy" in cfg.compare and any(
            v in os.environ
            for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")):
        print("note: OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE are set; NumPy's BLAS "
              "may be slower than it can be (run with env -u ...)")
    if hasattr(os, "getloadavg") and os.getloadavg()[0] > os.cpu_count():
        print(f"note: the machine is busy (load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores): absolute "
              f"figures are unreliable, compare ratios from this run only"
              + ("" if os.environ.get("OMP_WAIT_POLICY") else
                 "; OpenMP threads that spin while waiting (fastgrad's "
                 "workers spin for about 1 ms) can lose whole time slices "
                 "at every parallel region here, OMP_WAIT_POLICY=passive "
                 "avoids that"))
    cfg.out_dir.mkdir(parents=True, exist_ok=True)

    all_rows, failures, skipped = [], [], []
    start = time.perf_counter()
    for name in requested:
        module = suites.get(name)
        if module is None:
            message = (f"suite {name!r}: bench/suites/{name}.py is not "
                       f"there (or has no NAME/run); skipped")
            if name in errors:
                message = f"suite {name!r} does not import: {errors[name]}"
            print(message + "\n")
            skipped.append(name)
            continue
        suite_cfg = argparse.Namespace(**vars(cfg))
        if cfg.default_run and name != DEFAULT_SUITES[0]:
            suite_cfg.quick = True  # the shorter sweeps of the default run
        progress(f"suite {name} ...")
        suite_start = time.perf_counter()
        try:
            rows = list(module.run(suite_cfg) or [])
        except Exception:
            traceback.print_exc()
            print(f"suite {name!r} FAILED (traceback above)\n")
            failures.append(name)
            continue
        for row in rows:
            row.setdefault("suite", name)
        cfg.results[name] = rows
        all_rows.extend(rows)
        elapsed = time.perf_counter() - suite_start
        progress(f"suite {name} done in {elapsed:.1f} s, {len(rows)} rows")

    json_path = Path(args.json) if args.json else cfg.out_dir / "results.json"
    meta = common.machine_info()
    meta.update(suites=requested, threads=cfg.threads, dtype=cfg.dtype,
                compare=sorted(cfg.compare), quick=cfg.quick,
                skipped=skipped, failed=failures,
                seconds=round(time.perf_counter() - start, 1))
    datasets = getattr(cfg, "_datasets", {})
    meta["data"] = {name: (d.describe() if d is not None else "not found")
                    for name, d in datasets.items()}
    common.write_json(json_path, all_rows, meta)
    plot_path = (Path(args.plot) if args.plot
                 else cfg.out_dir / "throughput.png")
    throughput = {name: rows for name, rows in cfg.results.items()
                  if name in ("mlp", "cnn", "rbm", "bn")}
    plotted = None
    if throughput:
        plotted = common.plot_throughput(
            plot_path, throughput,
            title=f"fastgrad training throughput ({cfg.dtype})")
    print(f"results: {json_path}")
    if plotted:
        print(f"plot:    {plotted}")
    plotted_path = Path(plotted).resolve() if plotted else None
    extra = sorted(p.name for p in cfg.out_dir.glob("*.png")
                   if p.resolve() != plotted_path)
    if extra:
        print(f"other plots in {cfg.out_dir}: {', '.join(extra)}")
    print(f"total {time.perf_counter() - start:.1f} s"
          + (f"; skipped: {', '.join(skipped)}" if skipped else "")
          + (f"; FAILED: {', '.join(failures)}" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
