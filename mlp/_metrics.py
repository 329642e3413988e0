"""Metrics a Model can report besides its loss, by name."""
from __future__ import annotations

import numpy as np


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The fraction of samples whose predicted class is the true one.

    With one output the class is ``value > 0.5`` (a sigmoid's probability); with several it is
    the argmax of the row (one-hot targets, softmax probabilities).
    """
    if y_pred.shape[1] == 1:
        return float(np.mean((y_pred[:, 0] > 0.5) == (y_true[:, 0] > 0.5)))
    return float(np.mean(np.argmax(y_pred, axis=1) == np.argmax(y_true, axis=1)))


METRICS = {"accuracy": accuracy, "acc": accuracy}


def check_metrics(metrics) -> list[str]:
    """Return the canonical metric names for None, one name, or a list of names.

    Raises
    ------
    TypeError
        If `metrics` is not None, a string or a list/tuple of strings.
    ValueError
        If a name is unknown; the message lists the valid ones.
    """
    if metrics is None:
        return []
    if isinstance(metrics, str):
        metrics = [metrics]
    if not isinstance(metrics, (list, tuple)):
        raise TypeError(f"metrics must be None or a list of names such as ['accuracy'], "
                        f"got {type(metrics).__name__}")
    names = []
    for name in metrics:
        if not isinstance(name, str) or name not in METRICS:
            valid = ", ".join(repr(n) for n in METRICS)
            raise ValueError(f"unknown metric {name!r} in metrics; valid names: {valid}")
        canonical = "accuracy" if name == "acc" else name
        if canonical not in names:
            names.append(canonical)
    return names
