"""Callbacks: objects the training engine calls once at the end of every epoch, on both fronts.

A callback is any object with a method ``on_epoch_end(owner, epoch, logs)``, where `owner` is
the estimator or the Model being fitted and `epoch` counts from 0; returning True stops training
after that epoch. Pass callbacks as ``MLPClassifier(callbacks=[...])`` / ``MLPRegressor(...)``
or ``Model.fit(..., callbacks=[...])``. ``logs`` holds the epoch's figures:

- ``loss``: the mean training loss;
- an estimator's ``val_loss`` and ``val_score`` (None without validation data), or a Model's
  metrics (``accuracy``) and, with ``validation_data``, ``val_loss`` and ``val_<metric>``;
- ``learning_rate`` (None for L-BFGS) and ``time`` (seconds since the fit began).

Optional ``on_train_begin(owner)`` and ``on_train_end(owner)`` are called when present, and a
subclass of `Callback` is first told the epochs the fit plans, ``set_params({'epochs': n})``.
See mlp/_engine.py.
"""
from __future__ import annotations

import math
import sys
import time

import numpy as np

__all__ = ["Callback", "EarlyStopping", "ProgressBar"]


class Callback:
    """Base class: override the hooks you need (all are optional).

    It takes no parameters. In every hook, ``estimator`` is what is being trained: an
    ``MLPClassifier`` / ``MLPRegressor``, or a ``Model``.
    """

    def set_params(self, params):
        """Called before `on_train_begin` with what the fit plans: ``{'epochs': n}``.

        Parameters
        ----------
        params : dict
        """

    def on_train_begin(self, estimator):
        """Called once before the first epoch of a fit.

        Parameters
        ----------
        estimator : MLPClassifier, MLPRegressor or Model
            What the fit trains.
        """

    def on_epoch_end(self, estimator, epoch, logs):
        """Called after every epoch; return True to stop training.

        Parameters
        ----------
        estimator : MLPClassifier, MLPRegressor or Model
            What the fit trains.
        epoch : int
            The epoch just finished, counted from 0 in this fit.
        logs : dict of str to float or None
            Its figures: 'loss', 'learning_rate', 'time' and those of the front (see the
            module's docstring); a copy, so changing it affects nothing.
        """
        return False

    def on_train_end(self, estimator):
        """Called once after the last epoch of a fit.

        Parameters
        ----------
        estimator : MLPClassifier, MLPRegressor or Model
            What the fit trained.
        """


class EarlyStopping(Callback):
    """Stop when a monitored figure stops improving, and restore the best weights.

    Works on both fronts: ``MLPClassifier(callbacks=[...])`` and ``Model.fit(...,
    callbacks=[...])``.

    Parameters
    ----------
    monitor : str, default='val_loss'
        The figure to watch: any key of the epoch's logs but 'learning_rate' and 'time', such
        as 'loss', 'val_loss', an estimator's 'val_score', or a Model's metrics ('accuracy',
        'val_accuracy'). The ``val_*`` figures need validation data (an estimator's
        ``eval_set=`` or ``early_stopping=True``, a Model's ``validation_data=``); a figure the
        fit does not report raises ValueError at the end of the first epoch.
    patience : int, default=10
        How many consecutive epochs without improvement end training: it stops at the
        ``patience``-th such epoch (0 stops at the first, as 1 does).
    min_delta : float, default=0.0
        An epoch improves only when it beats the best value so far by more than this (>= 0).
    restore_best_weights : bool, default=True
        When the fit ends, early or not, put back the weights of the best epoch; False keeps
        the last epoch's. (An estimator fitted with ``early_stopping=True`` then puts back the
        weights of its own best validation score.)
    mode : {'auto', 'min', 'max'}, default='auto'
        Whether smaller ('min') or larger ('max') values are better; 'auto' takes larger for
        names ending in 'score' or 'accuracy' and smaller for all others (losses).

    Attributes
    ----------
    best_ : float or None
        The best value seen in the last fit.
    best_epoch_ : int or None
        Its epoch, counted from 0.

    Examples
    --------
    >>> from mlp import MLPClassifier
    >>> from mlp.callbacks import EarlyStopping
    >>> clf = MLPClassifier(callbacks=[EarlyStopping(monitor="val_loss", patience=5)])
    """

    def __init__(self, monitor="val_loss", patience=10, min_delta=0.0, restore_best_weights=True,
                 mode="auto"):
        if not isinstance(monitor, str) or not monitor or monitor in ("learning_rate", "time"):
            raise ValueError(f"monitor must name a figure of the epoch's logs, such as 'val_loss', "
                             f"'val_score', 'loss' or 'val_accuracy', got {monitor!r}")
        if not isinstance(patience, (int, np.integer)) or isinstance(patience, bool) or patience < 0:
            raise ValueError(f"patience must be an integer >= 0, got {patience!r}")
        if not isinstance(min_delta, (int, float)) or not math.isfinite(min_delta) or min_delta < 0:
            raise ValueError(f"min_delta must be a finite number >= 0, got {min_delta!r}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        self.monitor = monitor
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.restore_best_weights = bool(restore_best_weights)
        self.mode = mode

    def _sign(self) -> float:
        """+1 when larger is better, -1 when smaller is."""
        if self.mode != "auto":
            return 1.0 if self.mode == "max" else -1.0
        larger = self.monitor.endswith(("score", "accuracy"))
        return 1.0 if larger else -1.0

    def on_train_begin(self, estimator):
        self.best_ = None
        self.best_epoch_ = None
        self.wait_ = 0
        self._best_params = None

    def on_epoch_end(self, estimator, epoch, logs):
        value = logs.get(self.monitor)
        if value is None:
            if self.monitor.startswith("val_"):
                raise ValueError(
                    f"EarlyStopping(monitor={self.monitor!r}) needs validation data: pass "
                    "eval_set=(X_val, y_val) to an estimator's fit (or set early_stopping=True), "
                    "or validation_data=(x_val, y_val) to Model.fit")
            known = ", ".join(repr(k) for k, v in logs.items() if v is not None)
            raise ValueError(f"EarlyStopping(monitor={self.monitor!r}): this fit reports no such "
                             f"figure; it has {known}")
        sign = self._sign()
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


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


class ProgressBar(Callback):
    """A progress bar over epochs: tqdm's when it is installed, else a text line redrawn in place.

    The text line reads ``Epoch 12/100 [###---------] 12% loss=0.0123 val_loss=0.02 ETA
    0:00:05``. ``Model.fit`` draws one of these by itself when a fit is predicted to take more
    than 2 seconds (``progress=None``).

    Parameters
    ----------
    total : int or None, default=None
        Expected epochs; by default the fit's own (an estimator's ``max_iter``, a Model's
        ``epochs``).
    file : file-like or None, default=None
        Where the bar is drawn; None means ``sys.stderr`` at the start of each fit.
    min_seconds : float, default=0.0
        Draw only once the epochs done so far predict a fit longer than this (and `settle`
        seconds have passed, since the first epoch carries one-off costs). 0 draws from the
        first epoch. An automatic bar (min_seconds > 0) is always the text line.
    settle : float, default=0.5
        With ``min_seconds > 0``: the seconds to wait before the prediction is trusted, since
        the first epoch carries one-off costs. Unused when ``min_seconds`` is 0.
    """

    width = 24

    def __init__(self, total=None, file=None, min_seconds=0.0, settle=0.5):
        self.total = total
        self.file = file
        self.min_seconds = min_seconds
        self.settle = settle
        self._planned = None

    def set_params(self, params):
        self._planned = params.get("epochs")

    def on_train_begin(self, estimator):
        total = self.total if self.total is not None else self._planned
        out = self.file if self.file is not None else sys.stderr
        tqdm = None
        if not self.min_seconds:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                pass
        self._bar = tqdm(total=total, file=out, unit="epoch") if tqdm is not None else None
        self._total, self._out = total, out
        self._start = time.perf_counter()
        self._active = not self.min_seconds
        # A terminal redraws in place, so it can be refreshed often; a log file gets one line per
        # refresh, so an automatic bar refreshes it rarely.
        isatty = getattr(out, "isatty", lambda: False)()
        self._interval = 0.1 if isatty or not self.min_seconds else 5.0
        self._last_draw, self._pending, self._drawn = -math.inf, None, False

    def on_epoch_end(self, estimator, epoch, logs):
        shown = {k: logs[k] for k in ("loss", "val_loss", "val_score", "val_accuracy")
                 if logs.get(k) is not None}
        if self._bar is not None:
            # refresh=False: tqdm redraws at its own pace (mininterval), not on every epoch
            self._bar.set_postfix({k: f"{v:.4g}" for k, v in shown.items()}, refresh=False)
            self._bar.update(1)
            return False
        done_epochs = epoch + 1
        now = time.perf_counter()
        per_epoch = (now - self._start) / done_epochs
        last = done_epochs == self._total
        if not self._active:
            self._active = (now - self._start >= self.settle and not last and self._total
                            and per_epoch * self._total > self.min_seconds)
            if not self._active:
                return False
        figures = " ".join(f"{k}={v:.4g}" for k, v in shown.items())
        if self._total:
            done = min(self.width, int(self.width * done_epochs / self._total))
            eta = _clock(per_epoch * max(self._total - done_epochs, 0))
            line = (f"Epoch {done_epochs}/{self._total} [{'#' * done}{'-' * (self.width - done)}]"
                    f" {100 * done_epochs // self._total:3d}% {figures} ETA {eta}")
        else:
            line = f"Epoch {done_epochs} {figures}"
        self._pending = f"\r{line}   "
        if now - self._last_draw >= self._interval or last:
            self._draw(now)  # at most ten lines a second, however short the epochs
        return False

    def _draw(self, now):
        self._out.write(self._pending)
        self._out.flush()
        self._pending, self._last_draw, self._drawn = None, now, True

    def on_train_end(self, estimator):
        if self._bar is not None:
            self._bar.close()
            return
        if self._pending is not None and self._active:  # the last line the rate limit held back
            self._draw(time.perf_counter())
        if self._drawn:
            self._out.write("\n")
            self._out.flush()
