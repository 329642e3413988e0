"""The one registry of names: activation and loss names map to the C++ enums here.

Every other module (layers, losses, model, the estimators) resolves a user's string through these
functions, so an alias or a new activation is added in exactly one place.
"""
from __future__ import annotations

from . import _core

# name -> (C++ enum, default alpha). alpha is only read by leaky_relu (negative slope) and elu
# (saturation value); the others carry 0.0 so every entry has the same shape.
ACTIVATIONS: dict[str, tuple[_core.Activation, float]] = {
    "identity": (_core.Activation.IDENTITY, 0.0),
    "linear": (_core.Activation.IDENTITY, 0.0),
    "relu": (_core.Activation.RELU, 0.0),
    "leaky_relu": (_core.Activation.LEAKY_RELU, 0.01),
    "elu": (_core.Activation.ELU, 1.0),
    "sigmoid": (_core.Activation.SIGMOID, 0.0),
    "logistic": (_core.Activation.SIGMOID, 0.0),
    "tanh": (_core.Activation.TANH, 0.0),
    "swish": (_core.Activation.SWISH, 0.0),
    "silu": (_core.Activation.SWISH, 0.0),
    "softmax": (_core.Activation.SOFTMAX, 0.0),
}

# The name each enum is shown under (summary, repr, error messages).
ACTIVATION_NAMES: dict[_core.Activation, str] = {
    _core.Activation.IDENTITY: "linear",
    _core.Activation.RELU: "relu",
    _core.Activation.LEAKY_RELU: "leaky_relu",
    _core.Activation.ELU: "elu",
    _core.Activation.SIGMOID: "sigmoid",
    _core.Activation.TANH: "tanh",
    _core.Activation.SWISH: "swish",
    _core.Activation.SOFTMAX: "softmax",
}

# name -> canonical name; the canonical names are the spec's spellings.
LOSS_ALIASES: dict[str, str] = {
    "mse": "mse",
    "mean_squared_error": "mse",
    "categorical_cross_entropy": "categorical_cross_entropy",
    "categorical_crossentropy": "categorical_cross_entropy",
    "binary_cross_entropy": "binary_cross_entropy",
    "binary_crossentropy": "binary_cross_entropy",
}

LOSSES: dict[str, _core.Loss] = {
    "mse": _core.Loss.MSE,
    "categorical_cross_entropy": _core.Loss.CATEGORICAL_CROSS_ENTROPY,
    "binary_cross_entropy": _core.Loss.BINARY_CROSS_ENTROPY,
}


def _lookup(table: dict, name, argument: str, what: str):
    if not isinstance(name, str):
        raise TypeError(
            f"{argument} must be a string naming {what}, got {type(name).__name__} {name!r}"
        )
    try:
        return table[name]
    except KeyError:
        valid = ", ".join(repr(n) for n in table)
        raise ValueError(f"unknown {what} {name!r} for {argument}; valid names: {valid}") from None


def get_activation(name, argument: str = "activation") -> tuple[_core.Activation, float]:
    """Resolve an activation name to its C++ enum and default alpha.

    Parameters
    ----------
    name : str
        One of the keys of ``ACTIVATIONS`` (aliases included).
    argument : str, default="activation"
        The argument name to put in an error message.

    Returns
    -------
    kind : _core.Activation
    alpha : float
        The default parameter (leaky_relu's slope, elu's saturation; 0.0 for the others).

    Raises
    ------
    TypeError
        If `name` is not a string.
    ValueError
        If `name` is unknown; the message lists the valid names.
    """
    return _lookup(ACTIVATIONS, name, argument, "activation")


def activation_name(kind: _core.Activation) -> str:
    """The canonical name of an activation enum, e.g. ``'relu'``."""
    return ACTIVATION_NAMES[_core.Activation(kind)]


def canonical_loss(name, argument: str = "loss_fn") -> str:
    """Resolve a loss name or alias to its canonical spelling.

    Raises
    ------
    TypeError
        If `name` is not a string.
    ValueError
        If `name` is unknown; the message lists the valid names.
    """
    return _lookup(LOSS_ALIASES, name, argument, "loss")


def get_loss(name, argument: str = "loss_fn") -> _core.Loss:
    """Resolve a loss name or alias to its C++ enum (see `canonical_loss`)."""
    return LOSSES[canonical_loss(name, argument)]
