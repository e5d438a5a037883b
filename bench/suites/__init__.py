"""Benchmark suites: every module here with NAME and run(cfg) is one suite.

Contract (see the team brief): `NAME = "<name>"`, `DEFAULT_BATCH_SIZES` where
meaningful, and `run(cfg) -> list[dict]`, where cfg is an argparse.Namespace
with at least batch_sizes (list[int] or None = the suite's default), threads
(list[int]), dtype ("float32"/"float64"), compare (set of peer names), quick
(bool), out_dir (pathlib.Path), data_dir (path or None) and progress (a
callable taking a str). run() prints its own table with
bench.common.print_table and returns JSON-able rows.
"""
import importlib
import pkgutil


def discover():
    """({name: module}, {module name: import error text}) for the suites.

    A module that fails to import is reported, not fatal, so one broken
    suite does not stop the others."""
    suites, errors = {}, {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        try:
            module = importlib.import_module(f"{__name__}.{info.name}")
        except Exception as error:  # report and carry on
            errors[info.name] = f"{type(error).__name__}: {error}"
            continue
        if hasattr(module, "NAME") and callable(getattr(module, "run", None)):
            suites[module.NAME] = module
    return suites, errors
