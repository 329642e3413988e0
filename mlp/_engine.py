"""The training loop under every front: epochs, learning rate, figures, callbacks, history.

`Model.fit` and the estimators' stochastic solvers build one `Engine` per fit and call `run`;
L-BFGS, whose iterations scipy drives, calls `begin` / `end_epoch` / `end` itself, so that its
iterations are recorded and reach the callbacks the same way. A batch never enters Python: one
epoch is one call of ``train_epoch``, which runs the whole epoch in C++.

Each epoch's figures are one dict, the *logs*:

``loss``
    The epoch's mean training loss (as the front reports it: the estimators add the constant
    term of the poisson loss).
``val_loss``, ``val_score``, ``accuracy``, ``val_accuracy``, ...
    Whatever the front's ``figures()`` adds (validation loss and score, metrics).
``learning_rate``
    The rate the epoch was trained with (None for L-BFGS).
``time``
    Seconds since the fit began.

The logs go to every callback's ``on_epoch_end(owner, epoch, logs)`` (a true return stops the
fit after that epoch), and to the front's history: `Engine` appends ``logs.get(key)`` to each
list of the history dict it was given, so a Model's ``history`` (Keras's keys) and an
estimator's ``history_`` (loss, val_loss, val_score, learning_rate, time) are filled from the
same record.

Stopping rules (`mlp.callbacks.EarlyStopping`, the estimators' ``n_iter_no_change``), the
progress bar and the fronts' own printing are callbacks too. What differs between the fronts is
given as policies: what a diverged epoch does (``on_divergence``: the Model raises at once; the
estimators stop, and raise scikit-learn's error after the fit unless early stopping restored the
best weights) and what Ctrl-C does (``interrupt``: re-raised, or a warning).
"""
from __future__ import annotations

import math
import time
import warnings
from typing import Callable

from .callbacks import Callback


class Engine:
    """One fit of one network.

    Parameters
    ----------
    owner : object
        The Model or estimator being trained: what callbacks receive. It provides
        ``_get_flat_params()`` and ``_set_flat_params(p)``, through which stopping rules keep and
        restore the best weights.
    train_epoch : callable ``(lr) -> float``
        One pass over the training data at learning rate ``lr``; returns the epoch's mean loss,
        or NaN when it diverged (the update that diverged is never applied).
    learning_rate : float or None
        The rate of the first epoch. Callbacks may change ``engine.learning_rate``.
    schedule : callable ``(epoch, lr) -> lr``, optional
        Evaluated before every epoch (0-based), as Keras's LearningRateScheduler is.
    figures : callable ``() -> dict``, optional
        Extra figures for the logs after every epoch (validation, metrics).
    callbacks : list
        Objects with ``on_epoch_end`` and optionally ``on_train_begin`` / ``on_train_end``.
    history : dict of str to list, optional
        Appended to after every epoch, one value per key (None where the logs lack the key).
    on_divergence : callable ``(epoch, lr) -> None``, optional
        Called when an epoch's loss is not finite; it may raise. The fit stops either way (and
        ``diverged`` tells the caller).
    interrupt : {'raise', 'warn'}
        Ctrl-C re-raises KeyboardInterrupt, or stops the fit with a UserWarning.
    logged_rate : callable ``(lr) -> float``, optional
        The 'learning_rate' an epoch trained at `lr` logs; a per-step schedule (mlp.schedules)
        logs the rate of the epoch's last step. Without it, `lr`.
    """

    def __init__(self, owner, train_epoch: Callable[[float], float], *, learning_rate,
                 schedule: Callable | None = None, figures: Callable[[], dict] | None = None,
                 callbacks=(), history: dict | None = None,
                 on_divergence: Callable[[int, float], None] | None = None,
                 interrupt: str = "raise", logged_rate: Callable[[float], float] | None = None) -> None:
        self.owner = owner
        self.train_epoch = train_epoch
        self.learning_rate = learning_rate
        self.schedule = schedule
        self.figures = figures
        self.callbacks = list(callbacks)
        self.history = history if history is not None else {}
        self.on_divergence = on_divergence
        self.interrupt = interrupt
        self.logged_rate = logged_rate
        self.epoch = 0
        self.logs = None  # the last epoch's
        self.diverged = False
        self.stopped = False
        self._start = None

    # -- the pieces, for a driver of its own (L-BFGS) -------------------------------------------
    def begin(self, max_epochs: int | None = None) -> None:
        """Start the clock, tell mlp's callbacks the planned epochs (``set_params({'epochs':
        n})``, as Keras does) and call every ``on_train_begin``."""
        self._start = time.perf_counter()
        for cb in self.callbacks:
            # Only mlp's own: another object's set_params (a scikit-learn estimator's, say)
            # means something else.
            if isinstance(cb, Callback) and max_epochs is not None:
                cb.set_params({"epochs": int(max_epochs)})
        for cb in self.callbacks:
            begin = getattr(cb, "on_train_begin", None)
            if begin is not None:
                begin(self.owner)

    def end_epoch(self, loss: float, learning_rate=None) -> bool:
        """Record a finished epoch and tell the callbacks; True when one asks to stop."""
        logs = {"loss": float(loss)}
        if self.figures is not None:
            logs.update(self.figures())
        if learning_rate is not None and self.logged_rate is not None:
            learning_rate = self.logged_rate(learning_rate)
        logs["learning_rate"] = None if learning_rate is None else float(learning_rate)
        logs["time"] = time.perf_counter() - self._start
        for key, values in self.history.items():
            values.append(logs.get(key))
        self.logs = logs
        stop = False
        for cb in self.callbacks:
            stop = bool(cb.on_epoch_end(self.owner, self.epoch, dict(logs))) or stop
        self.epoch += 1
        return stop

    def end(self) -> None:
        """Call every ``on_train_end`` (where stopping rules put back the best weights)."""
        for cb in self.callbacks:
            end = getattr(cb, "on_train_end", None)
            if end is not None:
                end(self.owner)

    # -- the loop -------------------------------------------------------------------------------
    def run(self, max_epochs: int) -> float:
        """Train up to `max_epochs` epochs; returns the last finite epoch loss (NaN if none).

        ``self.epoch`` ends as the number of epochs completed, ``self.diverged`` and
        ``self.stopped`` say why the loop ended early.

        A diverged epoch puts back the weights the previous epoch started from (the fit's first
        weights when it diverges in its first epoch). The core never applies the step whose loss
        was not finite, but the step before it, already applied, is what made the outputs
        overflow, and it may have ended the previous epoch; weights an epoch older were followed
        by a whole epoch of finite losses, so their outputs are finite.
        """
        loss = math.nan
        self.begin(max_epochs)
        # The weights at the start of the last two epochs: one copy of the parameters an epoch.
        starts = [self.owner._get_flat_params()]
        try:
            while self.epoch < max_epochs:
                if self.schedule is not None:
                    self.learning_rate = self.schedule(self.epoch, self.learning_rate)
                lr = self.learning_rate
                value = self.train_epoch(lr)
                if not math.isfinite(value):
                    self.diverged = True
                    self.owner._set_flat_params(starts[0])
                    if self.on_divergence is not None:
                        self.on_divergence(self.epoch, lr)
                    break
                loss = value
                if self.end_epoch(value, lr):
                    self.stopped = True
                    break
                starts = [starts[-1], self.owner._get_flat_params()]
        except KeyboardInterrupt:
            if self.interrupt != "warn":
                raise
            warnings.warn("Training interrupted by user.")
        finally:
            self.end()
        return loss
