"""mlp: fast multilayer perceptrons, a C++ core under a Keras-like API.

>>> from mlp import Dense, Model
>>> inputs = Dense(input_size=2, output_size=16, activation='tanh')
>>> outputs = Dense(output_size=1, activation='sigmoid')(inputs)
>>> model = Model(inputs, outputs)
>>> model.compile(loss_fn='mse')
"""
from importlib.util import find_spec as _find_spec

from . import _openmp_env  # noqa: F401  (must precede the first import of _core)
from ._build_info import build_info
from ._device import cuda_device_count
from ._version import __version__
from .layers import ELU, GELU, SELU, Activation, Dense, Layer, LeakyReLU, Linear, Mish, ReLU, \
    Sigmoid, Softmax, Swish, Tanh
from .layers_extra import Concatenate, Dropout, Embedding
from .io import load
from .losses import Loss
from .model import Model
from .onnx_export import to_onnx
from .optimizers import SGD, Adam, AdamW, Momentum
from . import schedules
from .plot import plot_history

__all__ = [
    # layers and activations (the spec's API)
    "Layer",
    "Activation",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "Linear",
    "LeakyReLU",
    "ELU",
    "Swish",
    "SELU",
    "Mish",
    "GELU",
    "Dense",
    "Dropout",
    "Embedding",
    "Concatenate",
    # losses, models, optimizers, schedules
    "Loss",
    "Model",
    "SGD",
    "Momentum",
    "Adam",
    "AdamW",
    "schedules",
    # saving, loading, exporting, plotting
    "load",
    "to_onnx",
    "plot_history",
    # about the build and the machine
    "build_info",
    "cuda_device_count",
    "__version__",
]

# --- scikit-learn estimators --------------------------------------------------------------------
# MLPClassifier and MLPRegressor (mlp/sklearn.py) need scikit-learn and scipy, which the core API
# does not: numpy is its only runtime requirement. When both are installed, the estimators are
# imported like everything else, and any error in doing so is raised. When one is missing,
# `import mlp` still works, and asking for an estimator says what to install.
_MISSING = [name for name in ("sklearn", "scipy") if _find_spec(name) is None]
if not _MISSING:
    from .sklearn import MLPClassifier, MLPRegressor
    from .tabular import TabularClassifier, TabularRegressor
    from ._skl2onnx import register_skl2onnx, register_when_imported as _skl2onnx_hook

    _skl2onnx_hook()  # registers with skl2onnx when it is (or once it gets) imported; cheap
    __all__ += ["MLPClassifier", "MLPRegressor", "TabularClassifier", "TabularRegressor",
                "register_skl2onnx"]


def __getattr__(name):
    if name in ("MLPClassifier", "MLPRegressor", "TabularClassifier", "TabularRegressor",
                "register_skl2onnx") and _MISSING:
        raise ImportError(f"mlp.{name} needs scikit-learn and scipy ({' and '.join(_MISSING)} "
                          f"not installed): pip install \"mlp[sklearn]\"")
    raise AttributeError(f"module 'mlp' has no attribute {name!r}")
