"""`plot_history`: the training curves of a Model or an estimator, drawn with matplotlib.

matplotlib is an optional extra (``pip install "mlp[plot]"``); it is imported only when a plot is
asked for, so ``import mlp`` never pays for it.
"""
from __future__ import annotations

import math

__all__ = ["plot_history"]


def _import_pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError('plot_history needs matplotlib: pip install "mlp[plot]"') from None
    return plt


def _series(values) -> tuple[list, list] | None:
    """(epochs, values) without the epochs that have no value; None when nothing is left."""
    if not values:
        return None
    points = [(i + 1, float(v)) for i, v in enumerate(values)
              if v is not None and math.isfinite(float(v))]
    if not points:
        return None
    return [p[0] for p in points], [p[1] for p in points]


def _curves(model):
    """The loss curves and the score curves to draw, each a list of (label, series)."""
    from .model import Model

    if isinstance(model, Model):
        history = model.history
        if not history or not history.get("loss"):
            raise ValueError("the model has no training history: call model.fit(...) first")
        losses = [("training loss", history.get("loss")),
                  ("validation loss", history.get("val_loss"))]
        scores = [("training accuracy", history.get("accuracy")),
                  ("validation accuracy", history.get("val_accuracy"))]
        score_name = "accuracy"
    else:
        history = getattr(model, "history_", None)
        if history is None and getattr(model, "loss_curve_", None) is not None:
            history = {"loss": model.loss_curve_}
        if not history or not history.get("loss"):
            raise ValueError(f"the {type(model).__name__} has no training history: fit it first "
                             f"(expected a Model, MLPClassifier or MLPRegressor)")
        losses = [("training loss", history.get("loss")),
                  ("validation loss", history.get("val_loss"))]
        try:
            from sklearn.base import is_classifier

            score_name = "accuracy" if is_classifier(model) else "R²"
        except ImportError:  # pragma: no cover - estimators need scikit-learn anyway
            score_name = "score"
        scores = [(f"validation {score_name}", history.get("val_score"))]
    losses = [(label, s) for label, values in losses if (s := _series(values)) is not None]
    scores = [(label, s) for label, values in scores if (s := _series(values)) is not None]
    return losses, scores, score_name


def plot_history(model, *, title: str | None = None, figsize=None):
    """Draw the loss per epoch, and the validation curves when there are any.

    Parameters
    ----------
    model : Model, MLPClassifier or MLPRegressor
        After a fit: a Model's ``history`` or an estimator's ``history_`` is drawn (training
        and validation loss on the left; accuracy, validation accuracy or R² on the right when
        recorded).
    title : str, optional
        The figure's title; by default the model's class name.
    figsize : (float, float), optional
        Inches; by default 5 x 3.5 per panel.

    Returns
    -------
    matplotlib.figure.Figure
        Save it with ``fig.savefig("curve.png")``. It is made through pyplot, which falls back
        to the non-interactive Agg backend when there is no display.

    Raises
    ------
    ImportError
        If matplotlib is not installed (``pip install "mlp[plot]"``).
    ValueError
        If there is no training history yet.

    Examples
    --------
    >>> fig = mlp.plot_history(clf)      # doctest: +SKIP
    >>> fig.savefig("curve.png")         # doctest: +SKIP
    """
    losses, scores, score_name = _curves(model)
    plt = _import_pyplot()
    panels = 2 if scores else 1
    fig, axes = plt.subplots(1, panels, figsize=figsize or (5.0 * panels, 3.5), squeeze=False)
    ax = axes[0][0]
    for label, (epochs, values) in losses:
        ax.plot(epochs, values, label=label, marker="." if len(epochs) < 30 else None)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if all(v > 0 for _, (_, values) in losses for v in values):
        # Losses fall by orders of magnitude; a log axis keeps the late epochs readable.
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend()
    if scores:
        ax = axes[0][1]
        for label, (epochs, values) in scores:
            ax.plot(epochs, values, label=label, marker="." if len(epochs) < 30 else None)
        ax.set_xlabel("epoch")
        ax.set_ylabel(score_name)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(title if title is not None else type(model).__name__)
    fig.tight_layout()
    return fig
