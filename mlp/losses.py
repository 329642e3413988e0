"""The spec's `Loss` class and the numpy loss functions behind it.

These numpy versions serve `Loss.forward` / `Loss.backward` and a Model's slow Python path when
the output layer is a user's own; every built-in path computes the loss in C++ from the logits.
All losses are means over samples (DESIGN.md, Contracts).
"""
from __future__ import annotations

import numpy as np

from . import _spec
from ._validation import check_fraction

# Probabilities are clipped this far from 0 and 1 before the log, so that a saturated prediction
# gives a large finite loss rather than inf.
_EPS = 1e-12


def _quiet():
    # Values near float64's limit overflow to inf here exactly as in numpy; the result says so,
    # and numpy's warning (an error under the test settings) would only repeat it.
    return np.errstate(over="ignore", invalid="ignore")


def _real(a, name: str) -> np.ndarray:
    # complex would lose its imaginary part and None would become NaN: both are refused.
    if a is None:
        raise TypeError(f"{name} must be an array of real numbers, got None")
    arr = np.asarray(a)
    if arr.dtype.kind == "O":
        try:
            return arr.astype(np.float64)
        except OverflowError:
            raise ValueError(f"{name} holds values too large for float64") from None
        except (TypeError, ValueError):
            raise TypeError(f"{name} must hold real numbers, got non-numeric values of dtype object") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    return arr.astype(np.float64, copy=False)


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y_true = _real(y_true, "y_true")
    y_pred = _real(y_pred, "y_pred")
    if y_true.shape != y_pred.shape:
        # A 1-D target next to a single-output prediction is the common (N,) vs (N, 1) case.
        if y_true.size == y_pred.size and min(y_true.ndim, y_pred.ndim) == 1:
            y_true = y_true.reshape(y_pred.shape)
        else:
            raise ValueError(f"y_true and y_pred must have the same shape, got {y_true.shape} "
                             f"and {y_pred.shape}")
    if y_pred.size == 0:
        raise ValueError("y_true and y_pred are empty")
    return y_true, y_pred


def _n_samples(y: np.ndarray) -> int:
    return y.shape[0] if y.ndim > 1 else 1


def mse(y_true, y_pred) -> float:
    """Mean squared error: the mean of ``(y_true - y_pred)**2`` over samples and outputs."""
    y_true, y_pred = _pair(y_true, y_pred)
    with _quiet():
        return float(np.mean((y_true - y_pred) ** 2))


def mse_derivative(y_true, y_pred) -> np.ndarray:
    """dMSE/dy_pred: ``2 * (y_pred - y_true) / y_true.size``."""
    y_true, y_pred = _pair(y_true, y_pred)
    with _quiet():
        return 2.0 * (y_pred - y_true) / y_true.size


def categorical_cross_entropy(y_true, y_pred) -> float:
    """``-(1/N) * sum_n sum_k y_true * log(y_pred)``, y_pred being softmax probabilities."""
    y_true, y_pred = _pair(y_true, y_pred)
    with _quiet():
        return float(-np.sum(y_true * np.log(np.clip(y_pred, _EPS, 1.0))) / _n_samples(y_true))


def categorical_cross_entropy_derivative(y_true, y_pred) -> np.ndarray:
    """The fused softmax + cross-entropy derivative dL/dz: ``(y_pred - y_true) / N``.

    This is the derivative with respect to the softmax's *input* (the logits), which is why
    softmax and categorical cross-entropy only go together.
    """
    y_true, y_pred = _pair(y_true, y_pred)
    with _quiet():
        return (y_pred - y_true) / _n_samples(y_true)


def binary_cross_entropy(y_true, y_pred) -> float:
    """The mean over elements of ``-(y log p + (1 - y) log(1 - p))``, p = y_pred in (0, 1)."""
    y_true, y_pred = _pair(y_true, y_pred)
    p = np.clip(y_pred, _EPS, 1.0 - _EPS)
    with _quiet():
        return float(-np.mean(y_true * np.log(p) + (1.0 - y_true) * np.log1p(-p)))


def binary_cross_entropy_derivative(y_true, y_pred) -> np.ndarray:
    """The fused sigmoid + binary cross-entropy derivative dL/dz: ``(y_pred - y_true) / size``."""
    y_true, y_pred = _pair(y_true, y_pred)
    with _quiet():
        return (y_pred - y_true) / y_true.size


_FUNCTIONS = {
    "mse": (mse, mse_derivative),
    "categorical_cross_entropy": (categorical_cross_entropy, categorical_cross_entropy_derivative),
    "binary_cross_entropy": (binary_cross_entropy, binary_cross_entropy_derivative),
}


def get_loss(loss_function: str):
    """Return ``(loss, loss_derivative)`` for a loss name or alias, as the spec's Loss uses.

    Raises
    ------
    TypeError, ValueError
        If the name is not a string or unknown; the message lists the valid names.
    """
    return _FUNCTIONS[_spec.loss(loss_function).name]


class Loss:
    """A loss function and its derivative, as in the spec.

    Parameters
    ----------
    loss_function : str
        'mse' (alias 'mean_squared_error'), 'categorical_cross_entropy' (alias
        'categorical_crossentropy') or 'binary_cross_entropy' (alias 'binary_crossentropy').
    label_smoothing : float, default=0.0
        In [0, 1), for the cross-entropies only (Keras's spelling): the targets become
        ``y * (1 - label_smoothing) + label_smoothing / K``, K the number of classes (2 for
        binary cross-entropy). The native network fuses it into the loss's gradient.

    Attributes
    ----------
    name : str
        The canonical name, e.g. 'categorical_cross_entropy' for the Keras spelling.
    loss, loss_derivative : callable
        ``f(y_true, y_pred)``; the cross-entropy derivatives are the fused ones with respect to
        the logits (see `backward`).

    Raises
    ------
    TypeError, ValueError
        If the name is not a string or unknown; the message lists the valid names.

    Examples
    --------
    >>> Loss("mse").forward(np.array([[1.0], [0.0]]), np.array([[0.5], [0.5]]))
    0.25
    """

    def __init__(self, loss_function: str, label_smoothing: float = 0.0) -> None:
        info = _spec.loss(loss_function)
        self.name = info.name
        self.loss, self.loss_derivative = _FUNCTIONS[info.name]
        self.kind = info.kind
        self.label_smoothing = check_fraction(label_smoothing, "label_smoothing")
        if self.label_smoothing and info.output is None:
            raise ValueError(f"label_smoothing applies to the cross-entropies only, not to "
                             f"{self.name!r}")

    def _smoothed(self, y_true, y_pred):
        if not self.label_smoothing:
            return y_true
        y_true, y_pred = _pair(y_true, y_pred)
        k = 2 if self.name == "binary_cross_entropy" else y_pred.shape[-1]
        return y_true * (1.0 - self.label_smoothing) + self.label_smoothing / k

    def forward(self, y_true, y_pred) -> float:
        """The loss value, a mean over samples (of the smoothed targets)."""
        return self.loss(self._smoothed(y_true, y_pred), y_pred)

    def backward(self, y_true, y_pred) -> np.ndarray:
        """The derivative: dL/dy_pred for mse; for the cross-entropies the fused derivative with
        respect to the softmax's or sigmoid's input, ``(y_pred - y_true) / N`` (per element for
        binary), y_true smoothed."""
        return self.loss_derivative(self._smoothed(y_true, y_pred), y_pred)

    def scale(self, n_outputs: int) -> float:
        """The factor the C++ core applies to its per-sample sum over outputs (see _core.pyi):
        1/O turns mse and binary cross-entropy into means over elements; cross-entropy over
        classes is a sum per sample, so 1."""
        return 1.0 if self.name == "categorical_cross_entropy" else 1.0 / n_outputs

    def __repr__(self) -> str:
        if self.label_smoothing:
            return f"Loss({self.name!r}, label_smoothing={self.label_smoothing!r})"
        return f"Loss({self.name!r})"
