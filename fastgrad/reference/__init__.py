"""Pure-NumPy references of every compiled kernel, with the same signatures.

Each module of this package covers one area; this package gathers their
public functions so the tests can find `reference.<kernel name>`.
"""
import importlib
import pkgutil

for _info in pkgutil.iter_modules(__path__):
    _module = importlib.import_module(f"{__name__}.{_info.name}")
    for _name in getattr(_module, "__all__", ()):
        globals()[_name] = getattr(_module, _name)
del _info, _module, _name
