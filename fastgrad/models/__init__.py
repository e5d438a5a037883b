"""DeepLearnToolbox-style models on fastgrad's Tensor ops and optimisers.

    NN   feed-forward network (nnsetup, nntrain, nntest)   fastgrad.models.nn
    SAE  stacked denoising autoencoders (saesetup, saetrain) ...models.sae
    CAE  convolutional autoencoder (caesetup, caetrain)    ...models.cae
    CNN  convolutional network (cnnsetup, cnntrain)        ...models.cnn
    RBM, DBN  restricted Boltzmann machines, deep belief nets ...models.rbm/dbn

Names are imported on first use, so a model module is loaded (and its
dependencies checked) only when it is needed.
"""
import importlib

_MODULES = {"NN": "nn", "SAE": "sae", "CAE": "cae", "CNN": "cnn",
            "RBM": "rbm", "DBN": "dbn"}

__all__ = sorted(_MODULES)


def __getattr__(name):
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module 'fastgrad.models' has no attribute "
                             f"{name!r}")
    value = getattr(importlib.import_module(f"fastgrad.models.{module}"),
                    name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_MODULES))
