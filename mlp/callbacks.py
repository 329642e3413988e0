"""Callbacks for the scikit-learn estimators: objects called once at the end of every epoch.

A callback is any object with a method ``on_epoch_end(estimator, epoch, logs)``; returning True
stops training after that epoch. ``logs`` holds the epoch's figures: ``loss`` (training loss),
``val_loss`` and ``val_score`` (when validation data exists, else None), ``learning_rate`` and
``time`` (seconds since fit started). Optional ``on_train_begin(estimator)`` and
``on_train_end(estimator)`` methods are called when present.
"""
from __future__ import annotations

import math
import sys
import time

import numpy as np

__all__ = ["Callback", "EarlyStopping", "ProgressBar"]


class Callback:
    """Base class: override the hooks you need (all are optional)."""

    def on_train_begin(self, estimator):
        """Called once before the first epoch of a fit."""

    def on_epoch_end(self, estimator, epoch, logs):
        """Called after every epoch; return True to stop training."""
        return False

    def on_train_end(self, estimator):
        """Called once after the last epoch of a fit."""


class EarlyStopping(Callback):
    """Stop when a monitored figure stops improving, and restore the best weights.

    Parameters
    ----------
    monitor : {'val_loss', 'val_score', 'loss'}, default='val_loss'
        The figure to watch. ``val_*`` need validation data (``eval_set=`` or
        ``early_stopping=True``).
    patience : int, default=10
        Epochs without improvement before stopping.
    min_delta : float, default=0.0
        Smallest change that counts as an improvement.
    restore_best_weights : bool, default=True
        Put back the weights of the best epoch when training stops.

    Examples
    --------
    >>> from mlp import MLPClassifier
    >>> from mlp.callbacks import EarlyStopping
    >>> clf = MLPClassifier(callbacks=[EarlyStopping(monitor="val_loss", patience=5)])
    """

    def __init__(self, monitor="val_loss", patience=10, min_delta=0.0, restore_best_weights=True):
        if monitor not in ("val_loss", "val_score", "loss"):
            raise ValueError(f"monitor must be 'val_loss', 'val_score' or 'loss', got {monitor!r}")
        if not isinstance(patience, (int, np.integer)) or isinstance(patience, bool) or patience < 0:
            raise ValueError(f"patience must be an integer >= 0, got {patience!r}")
        if not isinstance(min_delta, (int, float)) or not math.isfinite(min_delta) or min_delta < 0:
            raise ValueError(f"min_delta must be a finite number >= 0, got {min_delta!r}")
        self.monitor = monitor
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.restore_best_weights = bool(restore_best_weights)

    def on_train_begin(self, estimator):
        self.best_ = None
        self.best_epoch_ = None
        self.wait_ = 0
        self._best_params = None

    def on_epoch_end(self, estimator, epoch, logs):
        value = logs.get(self.monitor)
        if value is None:
            raise ValueError(
                f"EarlyStopping(monitor={self.monitor!r}) needs validation data: pass "
                "eval_set=(X_val, y_val) to fit or set early_stopping=True"
            )
        sign = 1.0 if self.monitor == "val_score" else -1.0  # larger is better after the sign
        if self.best_ is None or sign * (value - self.best_) > self.min_delta:
            self.best_, self.best_epoch_, self.wait_ = value, epoch, 0
            if self.restore_best_weights:
                self._best_params = estimator._get_flat_params()
            return False
        self.wait_ += 1
        return self.wait_ >= self.patience

    def on_train_end(self, estimator):
        if self.restore_best_weights and self._best_params is not None:
            estimator._set_flat_params(self._best_params)


class ProgressBar(Callback):
    """A progress bar over epochs, through tqdm when it is installed, else a text line.

    Parameters
    ----------
    total : int or None, default=None
        Expected epochs; defaults to the estimator's ``max_iter``.
    file : file-like, default=sys.stderr
    """

    def __init__(self, total=None, file=None):
        self.total = total
        self.file = file

    def on_train_begin(self, estimator):
        total = self.total if self.total is not None else getattr(estimator, "max_iter", None)
        out = self.file if self.file is not None else sys.stderr
        try:
            from tqdm.auto import tqdm
        except ImportError:
            tqdm = None
        self._bar = tqdm(total=total, file=out, unit="epoch") if tqdm is not None else None
        self._total, self._out = total, out
        self._last_draw, self._pending = 0.0, None

    def on_epoch_end(self, estimator, epoch, logs):
        shown = {k: logs[k] for k in ("loss", "val_loss", "val_score") if logs.get(k) is not None}
        if self._bar is not None:
            # refresh=False: tqdm redraws at its own pace (mininterval), not on every epoch
            self._bar.set_postfix({k: f"{v:.4g}" for k, v in shown.items()}, refresh=False)
            self._bar.update(1)
        else:
            figures = " ".join(f"{k}={v:.4g}" for k, v in shown.items())
            of = f"/{self._total}" if self._total else ""
            self._pending = f"\repoch {epoch + 1}{of} {figures}   "
            now = time.monotonic()
            if now - self._last_draw >= 0.1 or epoch + 1 == self._total:
                self._draw(now)  # at most ten lines a second, however short the epochs
        return False

    def _draw(self, now):
        self._out.write(self._pending)
        self._out.flush()
        self._pending, self._last_draw = None, now

    def on_train_end(self, estimator):
        if self._bar is not None:
            self._bar.close()
        else:
            if self._pending is not None:  # the last epoch's line, when the rate limit held it back
                self._draw(time.monotonic())
            self._out.write("\n")
