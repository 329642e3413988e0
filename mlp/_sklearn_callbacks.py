"""scikit-learn's callback API (``sklearn.callback``, scikit-learn >= 1.9) on mlp's estimators.

scikit-learn 1.9 lets an estimator report its fit as a tree of tasks: ``est.set_callbacks(
ProgressBar(), ScoringMonitor(scoring=...))`` registers callbacks that are told when each task
begins and ends, may score a copy of the estimator as it stood at that point, and may ask the
fit to stop. Meta-estimators (Pipeline, GridSearchCV) graft the task trees of the estimators
they fit onto their own and hand their auto-propagated callbacks (ProgressBar) down.

mlp has one training loop, `mlp._engine.Engine`, so the whole mapping lives in one engine
callback, `SklearnCallbackBridge`, plus a decorator around the estimators' shared ``_fit``:

- the decorator (`with_sklearn_callbacks`) makes the bridge for the call, with the data as the
  caller gave it, ends the root task once the fit is complete (so the final bookkeeping, e.g.
  the best weights of ``early_stopping``, is what gets scored) and tears the callbacks down
  whatever happens (scikit-learn's ``with_callbacks``);
- the estimator's ``_engine`` appends `sklearn_bridge_callbacks(self)` to the engine's
  callbacks, after mlp's own stopping rules and ``callbacks=``;
- the bridge, told the planned epochs by the engine (``set_params({'epochs': n})``), opens the
  root task at ``on_train_begin`` (``max_subtasks=n``: one subtask per epoch, or per L-BFGS
  iteration), and one subtask per epoch. The engine has no epoch-begin hook, so the next
  epoch's subtask is opened at the end of the previous one, and one left open when the fit
  ends early (a stopping rule, divergence, L-BFGS converging) is closed empty at
  ``on_train_end``, as scikit-learn's own L-BFGS bridge does. What a callback's
  ``on_fit_task_end`` returns is the engine's stop flag.

``partial_fit`` is one task tree per call: a root task ``'partial_fit'`` with one epoch.

Where scikit-learn is older than 1.9, `SklearnCallbackSupportMixin.set_callbacks` raises an
ImportError saying so, and the decorator and `sklearn_bridge_callbacks` do nothing.
"""
from __future__ import annotations

import functools
import inspect
import weakref

import numpy as np

from .callbacks import Callback

try:
    from sklearn.callback import CallbackSupportMixin as _CallbackSupportMixin
    from sklearn.callback import with_callbacks as _with_callbacks
except ImportError:  # scikit-learn < 1.9
    _CallbackSupportMixin = None
    _with_callbacks = None

__all__ = ["HAS_SKLEARN_CALLBACKS", "SklearnCallbackBridge", "SklearnCallbackSupportMixin",
           "sklearn_bridge_callbacks", "with_sklearn_callbacks"]

#: Whether the installed scikit-learn has ``sklearn.callback`` (1.9 or later).
HAS_SKLEARN_CALLBACKS = _CallbackSupportMixin is not None


def _sklearn_version() -> str:
    import sklearn

    return getattr(sklearn, "__version__", "unknown")


class _CallbacksUnavailable:
    """``set_callbacks`` for a scikit-learn without ``sklearn.callback``: a clear error."""

    def set_callbacks(self, *callbacks):
        """Set scikit-learn callbacks (``sklearn.callback``); needs scikit-learn >= 1.9.

        Parameters
        ----------
        *callbacks : callback instances

        Raises
        ------
        ImportError
            Always: the installed scikit-learn has no callback API.
        """
        raise ImportError(
            f"{type(self).__name__}.set_callbacks needs scikit-learn >= 1.9 (the sklearn.callback "
            f"module); scikit-learn {_sklearn_version()} is installed. Upgrade scikit-learn, or "
            f"use mlp's own callbacks: {type(self).__name__}(callbacks=[...]) (see mlp.callbacks).")


if HAS_SKLEARN_CALLBACKS:
    class SklearnCallbackSupportMixin(_CallbackSupportMixin):
        """``set_callbacks`` and the callback context of scikit-learn's CallbackSupportMixin.

        It goes before ``BaseEstimator`` in the bases. With scikit-learn older than 1.9 the
        same name is a mixin whose ``set_callbacks`` raises an ImportError.
        """
else:
    class SklearnCallbackSupportMixin(_CallbacksUnavailable):
        """``set_callbacks`` raising an ImportError: scikit-learn < 1.9 has no callback API."""


# The bridge of the fit now running on each estimator, made by `with_sklearn_callbacks` and
# handed to the engine by `sklearn_bridge_callbacks`. Kept out of the estimator's __dict__ so
# that nothing of it reaches a pickle, a saved file or the copies callbacks are given.
_ACTIVE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _uses_callbacks(est) -> bool:
    """Whether a fit of `est` has scikit-learn callbacks to serve: its own, or a
    meta-estimator's context to attach its task tree to."""
    return bool(getattr(est, "_skl_callbacks", None)) or hasattr(est, "_parent_callback_ctx")


def _snapshot(est, n_epochs: int, loss=None):
    """The attributes a copy of `est` needs to predict as `est` does now: copies of the weights
    (the estimator rebuilds its native network from them, see ``_sync_network``) and the
    counters of the epochs trained so far in this fit. None (no copy) before it has weights."""
    if getattr(est, "coefs_", None) is None:
        return None
    attrs = {
        "coefs_": [np.array(c, copy=True) for c in est.coefs_],
        "intercepts_": [np.array(b, copy=True) for b in est.intercepts_],
        "_optimizer_ready": False,  # the copy's network has no optimizer state of its own
        "n_iter_": int(n_epochs),
    }
    if loss is not None:
        attrs["loss_"] = float(loss)
    if isinstance(getattr(est, "loss_curve_", None), list):
        attrs["loss_curve_"] = list(est.loss_curve_)
    return attrs


class SklearnCallbackBridge(Callback):
    """Engine callback driving scikit-learn's callback contexts for one fit of an estimator.

    Parameters
    ----------
    estimator : MLPClassifier or MLPRegressor
        The estimator being fitted: it must have scikit-learn's ``_init_callback_context``
        (`SklearnCallbackSupportMixin`).
    X, y : array-like
        The data as the fit received it: what scoring callbacks (``ScoringMonitor``) score the
        copies of the estimator on.
    sample_weight : array-like or None, default=None
        Passed to the callbacks as ``metadata={'sample_weight': ...}`` when not None.
    task_name : str, default='fit'
        The name of the root task ('partial_fit' for one call of partial_fit).
    max_subtasks : int or None, default=None
        The most epochs this fit can run; None takes what the engine plans
        (``set_params({'epochs': n})``), or leaves it unknown.

    Notes
    -----
    ``on_train_begin`` opens the root task (``_init_callback_context``, which also sets the
    callbacks up) and the first epoch's subtask; ``on_epoch_end`` ends the epoch's subtask,
    giving the callbacks a copy of the estimator at that epoch, opens the next one and returns
    whether a callback asked to stop; ``on_train_end`` closes a subtask left open. The root
    task is ended by `finish`, once the fit is complete.
    """

    def __init__(self, estimator, X, y, sample_weight=None, *, task_name="fit", max_subtasks=None):
        if not HAS_SKLEARN_CALLBACKS:
            raise ImportError(f"SklearnCallbackBridge needs scikit-learn >= 1.9 (the sklearn.callback "
                              f"module); scikit-learn {_sklearn_version()} is installed")
        if not callable(getattr(estimator, "_init_callback_context", None)):
            raise TypeError(f"SklearnCallbackBridge: {type(estimator).__name__} has no "
                            f"_init_callback_context; mix SklearnCallbackSupportMixin into it")
        if not isinstance(task_name, str):
            raise TypeError(f"task_name must be a str, got {type(task_name).__name__}")
        if max_subtasks is not None and (not isinstance(max_subtasks, (int, np.integer))
                                         or isinstance(max_subtasks, bool)):
            raise TypeError(f"max_subtasks must be an int or None, got {max_subtasks!r}")
        if max_subtasks is not None and max_subtasks < 0:
            raise ValueError(f"max_subtasks must be >= 0, got {max_subtasks}")
        self.X = X
        self.y = y
        self.metadata = None if sample_weight is None else {"sample_weight": sample_weight}
        self.task_name = task_name
        self.max_subtasks = None if max_subtasks is None else int(max_subtasks)
        self._planned = None    # the epochs the engine plans (set_params)
        self._limit = None      # the most subtasks of the root task
        self.root = None        # the root context, once on_train_begin ran
        self._epoch_ctx = None  # the subtask of the epoch under way
        self.n_epochs = 0       # epochs ended in this fit

    def _data(self) -> dict:
        return {"X": self.X, "y": self.y, "metadata": self.metadata}

    def _subtask_name(self, est) -> str:
        return "lbfgs-iter" if getattr(est, "solver", None) == "lbfgs" else "epoch"

    def _open_epoch(self, est):
        ctx = self.root.subcontext(task_name=self._subtask_name(est))
        n_done = self.n_epochs
        ctx.call_on_fit_task_begin(estimator=est, **self._data(),
                                   reconstruction_attributes=lambda: _snapshot(est, n_done))
        return ctx

    # -- engine hooks ---------------------------------------------------------------------------
    def set_params(self, params):
        epochs = params.get("epochs") if isinstance(params, dict) else None
        self._planned = None if epochs is None else int(epochs)

    def on_train_begin(self, est):
        if self.root is not None:
            raise RuntimeError("SklearnCallbackBridge serves one fit: make a new one for each")
        limit = self.max_subtasks if self.max_subtasks is not None else self._planned
        self.root = est._init_callback_context(task_name=self.task_name, max_subtasks=limit)
        self.root.call_on_fit_task_begin(estimator=est, **self._data())
        self._limit = limit
        if limit is None or limit > 0:
            self._epoch_ctx = self._open_epoch(est)

    def on_epoch_end(self, est, epoch, logs):
        ctx, self._epoch_ctx = self._epoch_ctx, None
        if ctx is None:  # more epochs than announced: nothing to report them under
            return False
        self.n_epochs += 1
        n_done, loss = self.n_epochs, (logs or {}).get("loss")
        stop = ctx.call_on_fit_task_end(
            estimator=est, **self._data(),
            reconstruction_attributes=lambda: _snapshot(est, n_done, loss))
        if not stop and (self._limit is None or n_done < self._limit):
            self._epoch_ctx = self._open_epoch(est)
        return bool(stop)

    def on_train_end(self, est):
        # The subtask opened for an epoch that never ran: ended empty, so every begin has its end.
        ctx, self._epoch_ctx = self._epoch_ctx, None
        if ctx is not None:
            ctx.call_on_fit_task_end(estimator=est)

    # -- after the fit --------------------------------------------------------------------------
    def finish(self, est) -> None:
        """End the root task with the fitted estimator (call it once the fit returned)."""
        if self.root is not None and self._epoch_ctx is None:
            self.root.call_on_fit_task_end(estimator=est, **self._data(),
                                           reconstruction_attributes={})


def sklearn_bridge_callbacks(est) -> list:
    """The engine callbacks serving scikit-learn callbacks in the fit of `est` now running: a
    list with its `SklearnCallbackBridge` the first time a fit wrapped by
    `with_sklearn_callbacks` asks, else an empty list (no scikit-learn callbacks, older
    scikit-learn, or no such fit)."""
    if not HAS_SKLEARN_CALLBACKS:
        return []
    try:
        entry = _ACTIVE.get(est)
    except TypeError:  # not weak-referenceable: it was never registered
        return []
    if entry is None or entry["handed"]:
        return []
    entry["handed"] = True
    return [entry["bridge"]]


def _bridged_fit(est, fit_method, bridge, args, kwargs):
    # Run by scikit-learn's with_callbacks, which tears the callbacks set up by the bridge down.
    _ACTIVE[est] = {"bridge": bridge, "handed": False}
    try:
        result = fit_method(est, *args, **kwargs)
    finally:
        _ACTIVE.pop(est, None)
    bridge.finish(est)
    return result


_managed_fit = _with_callbacks(_bridged_fit) if HAS_SKLEARN_CALLBACKS else None


def with_sklearn_callbacks(fit_method):
    """Decorator for an estimator's fit method (``_fit``, or ``fit`` / ``partial_fit``) serving
    the scikit-learn callbacks of the call.

    The method's arguments named ``X``, ``y`` and ``sample_weight`` are what callbacks receive;
    ``incremental=True`` (or a method named ``partial_fit``) names the root task
    'partial_fit'. The engine built during the call must take `sklearn_bridge_callbacks(self)`
    among its callbacks. Without scikit-learn callbacks (none set, none propagated by a
    meta-estimator) the method runs as it is; with scikit-learn < 1.9 it is returned unchanged.
    """
    if not callable(fit_method):
        raise TypeError(f"with_sklearn_callbacks decorates a method, got {fit_method!r}")
    if not HAS_SKLEARN_CALLBACKS:
        return fit_method
    signature = inspect.signature(fit_method)

    @functools.wraps(fit_method)
    def wrapper(est, *args, **kwargs):
        if not _uses_callbacks(est) or _ACTIVE.get(est) is not None:
            return fit_method(est, *args, **kwargs)  # nothing to serve, or a nested call
        try:
            bound = signature.bind(est, *args, **kwargs)
        except TypeError:
            return fit_method(est, *args, **kwargs)  # the method's own error for a bad call
        bound.apply_defaults()
        given = bound.arguments
        incremental = bool(given.get("incremental", fit_method.__name__ == "partial_fit"))
        bridge = SklearnCallbackBridge(est, given.get("X"), given.get("y"),
                                       given.get("sample_weight"),
                                       task_name="partial_fit" if incremental else "fit")
        return _managed_fit(est, fit_method, bridge, args, kwargs)

    return wrapper
