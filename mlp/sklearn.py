"""scikit-learn estimators MLPClassifier and MLPRegressor on the native training loop.

They take scikit-learn's constructor parameters with the same names, defaults and meaning, set the
same fitted attributes, and keep scikit-learn's loss conventions (half squared error, log-loss,
L2 term alpha / (2 n) ||W||^2) so ``loss_curve_`` reads like scikit-learn's. Beyond it they add
class weights, every activation of the core (or one per hidden layer), ``eval_set``, callbacks,
``history_`` and ``n_threads``. Each epoch is one call into C++; no Python runs per batch.
"""
from __future__ import annotations

import math
import numbers
import time
import warnings

import numpy as np
from scipy import sparse
from scipy.special import xlogy
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, column_or_1d, validate_data

from . import _core
from ._device import device_name, resolve_device
from ._registry import get_activation
from ._validation import as_float, check_allocation, check_network_size

__all__ = ["MLPClassifier", "MLPRegressor"]

_STOCHASTIC = ("sgd", "adam")


def _validate_data(estimator, *args, **kwargs):
    """scikit-learn's validate_data, with the OverflowError it lets through (an object array
    holding a Python int beyond float64) turned into the ValueError any other bad value gives."""
    try:
        return validate_data(estimator, *args, **kwargs)
    except OverflowError as exc:
        raise ValueError(f"the data holds values too large for float64 ({exc})") from None


class _LbfgsDiverged(Exception):
    """Raised inside L-BFGS's objective when the loss is not finite, to stop the fit at once."""


def _resolve_device(device):
    """'cpu', 'auto', 'cuda' or 'cuda:N' -> the device ordinal, -1 for the CPU (see mlp._device)."""
    return resolve_device(device, "device")


class _BaseMLP(BaseEstimator):
    """Shared fit loop of MLPClassifier and MLPRegressor (not public)."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(numbers.Integral, 1, None, closed="left")],
        "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(numbers.Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(numbers.Real, 0, None, closed="neither")],
        "power_t": [Interval(numbers.Real, 0, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(numbers.Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="left")],
        "beta_1": [Interval(numbers.Real, 0, 1, closed="left")],
        "beta_2": [Interval(numbers.Real, 0, 1, closed="left")],
        "epsilon": [Interval(numbers.Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_fun": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_threads": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "device": [str],
        "callbacks": [None, list, tuple],
    }

    def __init__(self, hidden_layer_sizes, activation, solver, alpha, batch_size, learning_rate,
                 learning_rate_init, power_t, max_iter, shuffle, random_state, tol, verbose,
                 warm_start, momentum, nesterovs_momentum, early_stopping, validation_fraction,
                 beta_1, beta_2, epsilon, n_iter_no_change, max_fun, n_threads, device, callbacks):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.n_threads = n_threads
        self.device = device
        self.callbacks = callbacks

    # ---------------------------------------------------------------- parameters ------------
    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral) and not isinstance(sizes, bool):
            sizes = [sizes]
        try:
            sizes = list(sizes)
        except TypeError:
            raise TypeError(
                f"hidden_layer_sizes must be an int or a sequence of ints, got {sizes!r}"
            ) from None
        for s in sizes:
            if not isinstance(s, numbers.Integral) or isinstance(s, bool) or s < 1:
                raise ValueError(f"hidden_layer_sizes must contain positive integers, got {sizes!r}")
        return [int(s) for s in sizes]

    def _hidden_activations(self, n_hidden):
        acts = self.activation
        if isinstance(acts, str):
            acts = [acts] * n_hidden
        elif isinstance(acts, (list, tuple)):
            if len(acts) != n_hidden:
                raise ValueError(
                    f"activation: a list needs one name per hidden layer ({n_hidden}), got {len(acts)}"
                )
        else:
            raise TypeError(f"activation must be a string or a list of strings, got {acts!r}")
        resolved = []
        for a in acts:
            kind, alpha = get_activation(a, "activation")
            if kind == _core.Activation.SOFTMAX:
                raise ValueError("activation: softmax is only used on the output layer")
            resolved.append((a, kind, alpha))
        return resolved

    def _validate_hyperparameters(self):
        self._validate_params()
        if self.device is not None:
            _resolve_device(self.device)
        if self.callbacks is not None:
            for cb in self.callbacks:
                if not callable(getattr(cb, "on_epoch_end", None)):
                    raise TypeError(f"callbacks: {cb!r} has no on_epoch_end(estimator, epoch, logs) method")

    # ---------------------------------------------------------------- data -------------------
    def _dense(self, X):
        if sparse.issparse(X):
            check_allocation(X.shape[0] * X.shape[1] * X.dtype.itemsize,
                             f"X as a dense array of shape {X.shape}")
            X = X.toarray()
        return np.ascontiguousarray(X)

    def _as_net_dtype(self, X, name="X"):
        return as_float(X, self._net.dtype, name)

    # ---------------------------------------------------------------- network ----------------
    def _build_network(self, n_features, n_outputs, dtype):
        hidden = self._hidden_sizes()
        acts = self._hidden_activations(len(hidden))
        out_kind, loss_kind, scale = self._output_spec(n_outputs)
        sizes = [n_features] + hidden + [n_outputs]
        check_network_size(sizes, dtype, "the network")
        kinds = [k for _, k, _ in acts] + [out_kind]
        alphas = [a for _, _, a in acts] + [0.0]
        net = _core.Network(sizes, [int(k) for k in kinds], alphas, int(loss_kind), scale, np.dtype(dtype).name)
        net.set_l2(float(self.alpha), True)
        n_threads = 0 if self.n_threads is None else int(self.n_threads)
        net.set_threads(n_threads)
        return net, sizes, acts

    def _initialize(self, n_features, n_outputs, dtype):
        self._random_state = check_random_state(self.random_state)
        self._net, sizes, acts = self._build_network(n_features, n_outputs, dtype)
        self.n_outputs_ = n_outputs
        self.n_layers_ = len(sizes)
        # Glorot-uniform as scikit-learn draws it (bound sqrt(6 / (fan_in + fan_out)), 2 instead
        # of 6 for logistic), in the same order from the same RandomState.
        for i in range(len(sizes) - 1):
            name = acts[min(i, len(acts) - 1)][0] if acts else "identity"
            factor = 2.0 if name in ("logistic", "sigmoid") else 6.0
            bound = math.sqrt(factor / (sizes[i] + sizes[i + 1]))
            self._net.weight(i)[...] = self._random_state.uniform(-bound, bound, (sizes[i], sizes[i + 1]))
            self._net.bias(i)[...] = self._random_state.uniform(-bound, bound, sizes[i + 1])
        self._bind_views()
        self.t_ = 0
        if self.solver in _STOCHASTIC:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None
        self.history_ = {"loss": [], "val_loss": [], "val_score": [], "learning_rate": [], "time": []}
        self._optimizer_ready = False

    def _bind_views(self):
        # coefs_/intercepts_ are views into the network's weights: always in sync, no copies.
        n = self._net.n_layers
        self.coefs_ = [self._net.weight(i) for i in range(n)]
        self.intercepts_ = [self._net.bias(i) for i in range(n)]
        self._views = (tuple(self.coefs_), tuple(self.intercepts_))

    def _sync_network(self):
        """Rebuild the network when coefs_/intercepts_ were replaced by the user or unpickled."""
        views = getattr(self, "_views", None)
        if (getattr(self, "_net", None) is not None and views is not None
                and len(views[0]) == len(self.coefs_)
                and all(a is b for a, b in zip(views[0], self.coefs_))
                and all(a is b for a, b in zip(views[1], self.intercepts_))):
            return
        coefs = [np.asarray(c) for c in self.coefs_]
        intercepts = [np.asarray(b) for b in self.intercepts_]
        dtype = getattr(self, "_dtype", coefs[0].dtype)
        self._net, _, _ = self._build_network(coefs[0].shape[0], coefs[-1].shape[1], dtype)
        for i, (c, b) in enumerate(zip(coefs, intercepts)):
            self._net.weight(i)[...] = c
            self._net.bias(i)[...] = b
        state = getattr(self, "_opt_state", None)
        if state is not None:
            self._configure_optimizer()
            try:
                self._net.set_optimizer_state(list(state[0]), int(state[1]))
            except (ValueError, TypeError):
                self._optimizer_ready = False
        else:
            # A fresh network has no optimizer set up: partial_fit must configure one.
            self._optimizer_ready = False
        self._bind_views()

    def _configure_optimizer(self):
        if self.solver == "adam":
            self._net.set_optimizer(_core.Optimizer.ADAM, beta1=float(self.beta_1),
                                    beta2=float(self.beta_2), eps=float(self.epsilon))
        else:
            self._net.set_optimizer(_core.Optimizer.SGD, momentum=float(self.momentum),
                                    nesterov=bool(self.nesterovs_momentum) and self.momentum > 0)
        self._optimizer_ready = True
        self._lr = float(self.learning_rate_init)

    def _get_flat_params(self):
        return self._net.params.copy()

    def _set_flat_params(self, params):
        self._net.params[...] = params

    # ---------------------------------------------------------------- persistence ------------
    def save(self, path):
        """Write the estimator to one file that `mlp.load` reads back.

        The file holds the hyperparameters, the fitted attributes, the weights and the optimizer
        state, so the loaded estimator predicts identically and keeps training with
        ``partial_fit`` or ``warm_start``. It is a zip of JSON and raw arrays, never a pickle
        (see `mlp.io`). Callbacks are not saved: the loaded estimator has ``callbacks=None``.

        Parameters
        ----------
        path : str, path-like or binary file object

        Examples
        --------
        >>> clf.save("clf.mlp")            # doctest: +SKIP
        >>> same = mlp.load("clf.mlp")     # doctest: +SKIP
        """
        from .io import save

        save(self, path)

    def __getstate__(self):
        # The native Network cannot be pickled and coefs_/intercepts_ are views into it, so pickle
        # carries the same plain description as the saved file (mlp._state), plus the objects a
        # file leaves out (callbacks, a user's own attributes), which pickle can hold.
        from . import _state

        state = _state.get_state(self)
        return {"mlp_state": state.meta, "arrays": state.arrays, "objects": state.objects}

    def __setstate__(self, state):
        from . import _state

        if "mlp_state" not in state:  # a pickle from before the shared state: plain attributes
            self.__dict__.update(state)
            self._net = None
            if "coefs_" in state:
                self._sync_network()
            return
        restored = _state.restore(state["mlp_state"], _state.dict_fetcher(state["arrays"]),
                                  cls=type(self), check_params=False)
        self.__dict__.update(restored.__dict__)
        self.__dict__.update(state.get("objects", {}))

    # ---------------------------------------------------------------- fitting ----------------
    def _fit(self, X, y, sample_weight=None, incremental=False, eval_set=None, classes=None):
        self._validate_hyperparameters()
        device = _resolve_device(self.device)
        first_call = not hasattr(self, "coefs_")
        reset = first_call or not (self.warm_start or incremental)
        X, y = _validate_data(self, X, y, accept_sparse=["csr", "csc", "coo"], dtype=(np.float64, np.float32),
                             multi_output=True, y_numeric=not is_classifier(self), reset=reset)
        if is_classifier(self) and y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        X = self._dense(X)
        if X.shape[0] < 1:
            raise ValueError("X: expected at least one sample")
        sample_weight = self._sample_weight(X, y, sample_weight)
        Y = self._encode_targets(y, incremental=incremental and not first_call, classes=classes)
        if reset:
            self._initialize(X.shape[1], Y.shape[1], X.dtype)
        else:
            self._sync_network()
            if Y.shape[1] != self.n_outputs_:
                raise ValueError(f"y: expected {self.n_outputs_} outputs as in the previous fit, got {Y.shape[1]}")
        self._device = device_name(device)
        self._net.to_device(device)
        X = self._as_net_dtype(X)
        Y = as_float(Y, self._net.dtype, "y")
        if sample_weight is not None:
            sample_weight = as_float(sample_weight, self._net.dtype, "sample_weight")
        try:
            if self.solver == "lbfgs":
                self._fit_lbfgs(X, Y, sample_weight, eval_set)
            else:
                self._fit_stochastic(X, Y, y, sample_weight, incremental, eval_set)
        finally:
            # A GPU keeps X between epochs; the next fit may pass the same array, changed.
            self._net.release_data()
        return self

    def _check_solver(self):
        # partial_fit exists only for the stochastic solvers, as in scikit-learn.
        if self.solver not in _STOCHASTIC:
            raise AttributeError(f"partial_fit is only available for stochastic optimizers. "
                                 f"{self.solver} is not stochastic.")
        return True

    def _sample_weight(self, X, y, sample_weight):
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=X.dtype, ensure_non_negative=True)
            if not np.isfinite(sample_weight).all():
                raise ValueError("sample_weight: expected finite values")
            if not sample_weight.sum() > 0:
                raise ValueError("sample_weight: expected weights that sum to a positive number")
        return sample_weight

    def _fit_lbfgs(self, X, Y, sample_weight, eval_set):
        from scipy.optimize import minimize

        net = self._net
        X_val = Y_val = y_val = None
        if eval_set is not None:
            X_val, y_val = self._check_eval_set(eval_set)
            Y_val = as_float(self._encode_targets(y_val, incremental=True), net.dtype, "eval_set y_val")
        offset = self._loss_offset(Y, sample_weight)
        callbacks = self._begin_callbacks()
        start = time.perf_counter()
        # The last accepted iterate: a non-finite loss stops the fit there (see _LbfgsDiverged).
        last = {"x": net.params.astype(np.float64), "loss": math.nan, "nit": 0}

        def fun(p):
            with np.errstate(over="ignore", invalid="ignore"):  # a float32 overflow is caught below
                net.params[...] = p
            loss, grad = net.loss_and_grad(X, Y, sample_weight)
            if not (math.isfinite(loss) and np.isfinite(grad).all()):
                raise _LbfgsDiverged
            return loss + offset, grad.astype(np.float64)

        def iteration_end(intermediate_result):
            # One L-BFGS iteration is this solver's epoch: history_, eval_set and callbacks follow it.
            net.params[...] = intermediate_result.x
            last.update(x=intermediate_result.x.copy(), loss=float(intermediate_result.fun),
                        nit=last["nit"] + 1)
            val_loss, val_score = self._validate(X_val, Y_val, y_val, None)
            self._record(float(intermediate_result.fun), val_loss, val_score, None,
                         time.perf_counter() - start)
            if self._notify_callbacks(callbacks, len(self.history_["loss"]) - 1):
                raise StopIteration

        try:
            res = minimize(fun, net.params.astype(np.float64), method="L-BFGS-B", jac=True,
                           callback=iteration_end,
                           options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol})
            net.params[...] = res.x
        except _LbfgsDiverged:
            net.params[...] = last["x"]
            res = None
        finally:
            self._end_callbacks(callbacks)  # after res.x: EarlyStopping may restore its best weights
        self.t_ = getattr(self, "t_", 0)
        if res is None:
            self.n_iter_, self.loss_ = last["nit"], last["loss"]
            warnings.warn(
                "The training loss became non-finite (diverged); L-BFGS stopped and the weights of "
                "its last finite iteration are kept. Scale the data or raise alpha.", RuntimeWarning)
            return
        self.n_iter_ = int(res.nit)
        self.loss_ = float(res.fun)
        if self.verbose:
            print(f"L-BFGS-B: {res.message} after {self.n_iter_} iterations, loss = {self.loss_:.8f}")
        if res.status == 1:
            warnings.warn(
                f"lbfgs failed to converge after {self.n_iter_} iteration(s) "
                f"(status=1): {res.message}. Increase the number of iterations (max_iter) or "
                "scale the data.", ConvergenceWarning)

    def _begin_callbacks(self):
        callbacks = list(self.callbacks or [])
        for cb in callbacks:
            if hasattr(cb, "on_train_begin"):
                cb.on_train_begin(self)
        return callbacks

    def _notify_callbacks(self, callbacks, epoch):
        stop = False
        for cb in callbacks:
            stop = bool(cb.on_epoch_end(self, epoch, dict(self._last_logs))) or stop
        return stop

    def _end_callbacks(self, callbacks):
        for cb in callbacks:
            if hasattr(cb, "on_train_end"):
                cb.on_train_end(self)

    def _validate(self, X_val, Y_val, y_val, sw_val):
        """(val_loss, val_score) on validation data, or (None, None) without it."""
        if X_val is None:
            return None, None
        val_loss = float(self._net.loss(X_val, Y_val, sw_val)) + self._loss_offset(Y_val, sw_val)
        return val_loss, float(self._score_raw(X_val, y_val, sw_val))

    def _loss_offset(self, Y, sample_weight):
        return 0.0  # the regressor's poisson loss adds its constant term

    def _batch_size(self, n):
        if self.batch_size == "auto":
            return min(200, n)
        if self.batch_size > n:
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going to be "
                          "clipped")
        return int(np.clip(self.batch_size, 1, n))

    def _fit_stochastic(self, X, Y, y_raw, sample_weight, incremental, eval_set):
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        net = self._net
        if not incremental or not getattr(self, "_optimizer_ready", False):
            self._configure_optimizer()
        X_val = Y_val = y_val = sw_val = None
        if eval_set is not None:
            X_val, y_val = self._check_eval_set(eval_set)
        elif self.early_stopping:
            # As scikit-learn: stratify single-output (binary) classification only.
            stratify = Y[:, 0] if is_classifier(self) and self.n_outputs_ == 1 else None
            parts = train_test_split(X, Y, *([sample_weight] if sample_weight is not None else []),
                                     random_state=self._random_state, test_size=self.validation_fraction,
                                     stratify=stratify)
            X, X_val, Y, Y_val = parts[:4]
            if sample_weight is not None:
                sample_weight, sw_val = parts[4], parts[5]
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase 'validation_fraction' "
                                 "or the size of your dataset.")
            X, Y = np.ascontiguousarray(X), np.ascontiguousarray(Y)
            X_val = np.ascontiguousarray(X_val)
            y_val = self._decode(Y_val)
            if sample_weight is not None:
                sample_weight = np.ascontiguousarray(sample_weight)
        if X_val is not None:
            Y_val = as_float(self._encode_targets(y_val, incremental=True), net.dtype, "eval_set y_val")
        n = X.shape[0]
        batch = self._batch_size(n)
        net.set_seed(int(self._random_state.randint(0, 2**62, dtype=np.int64)))
        callbacks = self._begin_callbacks()
        start = time.perf_counter()
        best_params = None
        offset = self._loss_offset(Y, sample_weight)
        self.n_iter_ = 0
        try:
            for _ in range(self.max_iter):
                lr_used = self._lr
                loss = net.train_epoch(X, Y, sample_weight, batch, bool(self.shuffle), self._lr)
                if not math.isfinite(loss):
                    warnings.warn(
                        "The training loss became non-finite (diverged); training stopped and the "
                        "weights of the last finite step are kept. Lower learning_rate_init or "
                        "scale the data.", RuntimeWarning)
                    break
                loss += offset
                self.n_iter_ += 1
                self.loss_ = float(loss)
                self.t_ += n
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
                val_loss, val_score = self._validate(X_val, Y_val, y_val, sw_val)
                self._record(loss, val_loss, val_score, lr_used, time.perf_counter() - start)
                if self.early_stopping:
                    self.validation_scores_.append(val_score)
                    if self.verbose:
                        print("Validation score: %f" % val_score)
                    if val_score < self.best_validation_score_ + self.tol:
                        self._no_improvement_count += 1
                    else:
                        self._no_improvement_count = 0
                    if val_score > self.best_validation_score_:
                        self.best_validation_score_ = val_score
                        best_params = net.params.copy()
                else:
                    if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                        self._no_improvement_count += 1
                    else:
                        self._no_improvement_count = 0
                    if self.loss_curve_[-1] < self.best_loss_:
                        self.best_loss_ = self.loss_curve_[-1]
                if self.solver == "sgd" and self.learning_rate == "invscaling":
                    self._lr = self.learning_rate_init / (self.t_ + 1) ** self.power_t
                stop = self._notify_callbacks(callbacks, self.n_iter_ - 1)
                if self._no_improvement_count > self.n_iter_no_change:
                    what = "Validation score" if self.early_stopping else "Training loss"
                    msg = (f"{what} did not improve more than tol={self.tol:f} for "
                           f"{self.n_iter_no_change} consecutive epochs.")
                    if self.solver == "sgd" and self.learning_rate == "adaptive" and self._lr > 1e-6:
                        self._lr /= 5.0
                        self._no_improvement_count = 0
                        if self.verbose:
                            print(msg + " Setting learning rate to %f" % self._lr)
                    else:
                        if self.verbose:
                            print(msg + " Stopping.")
                        break
                if stop or incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn(
                        "Stochastic Optimizer: Maximum iterations (%d) reached and the optimization "
                        "hasn't converged yet." % self.max_iter, ConvergenceWarning)
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.")
        finally:
            self._end_callbacks(callbacks)
        if self.early_stopping and best_params is not None:
            net.params[...] = best_params

    def _record(self, loss, val_loss, val_score, lr, elapsed):
        logs = {"loss": float(loss), "val_loss": val_loss, "val_score": val_score,
                "learning_rate": None if lr is None else float(lr), "time": float(elapsed)}
        for key, value in logs.items():
            self.history_[key].append(value)
        self._last_logs = logs

    def _check_eval_set(self, eval_set):
        if not isinstance(eval_set, (tuple, list)) or len(eval_set) != 2:
            raise TypeError("eval_set must be a tuple (X_val, y_val)")
        X_val, y_val = eval_set
        X_val = _validate_data(self, X_val, accept_sparse=["csr", "csc", "coo"],
                              dtype=(np.float64, np.float32), reset=False)
        X_val = self._as_net_dtype(self._dense(X_val), "eval_set X_val")
        y_val = np.asarray(y_val)
        if y_val.ndim == 0:
            raise ValueError(f"eval_set: y_val must be an array of {X_val.shape[0]} targets, "
                             f"got {type(eval_set[1]).__name__}")
        if y_val.shape[0] != X_val.shape[0]:
            raise ValueError(f"eval_set: X_val has {X_val.shape[0]} rows but y_val has {y_val.shape[0]}")
        if X_val.shape[0] < 1:
            raise ValueError("eval_set: expected at least one validation sample")
        return X_val, y_val

    # ---------------------------------------------------------------- prediction -------------
    def _forward(self, X):
        check_is_fitted(self, "coefs_")
        self._sync_network()
        X = _validate_data(self, X, accept_sparse=["csr", "csc", "coo"], dtype=(np.float64, np.float32),
                          reset=False)
        return self._net.predict(self._as_net_dtype(self._dense(X)))

    def _predict_raw(self, X):  # validated, dense, network dtype
        return self._net.predict(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier, a drop-in for ``sklearn.neural_network.MLPClassifier``.

    Parameters are scikit-learn's, with the same names, defaults and meaning; see its
    documentation. Additions:

    Parameters
    ----------
    activation : str or list of str, default='relu'
        Any activation of the core ('identity', 'logistic'/'sigmoid', 'tanh', 'relu',
        'leaky_relu', 'elu', 'swish'/'silu'), or a list with one per hidden layer.
    class_weight : None, 'balanced' or dict, default=None
        Weights per class, multiplied into ``sample_weight``.
    n_threads : int or None, default=None
        Threads per fit; None uses all cores (within threadpoolctl/OMP_NUM_THREADS limits).
    device : {'cpu', 'cuda', 'cuda:N', 'auto'}, default='cpu'
        Where fit trains: 'cuda' needs a build with CUDA (``mlp.build_info()['cuda']``) and a
        visible GPU, else ValueError says which is missing; 'auto' takes the GPU when there is
        one and the CPU otherwise. A model fitted on the GPU predicts there; pickled or saved, it
        loads on the CPU.
    callbacks : list, default=None
        Objects with ``on_epoch_end(estimator, epoch, logs)``; see ``mlp.callbacks``.

    Attributes
    ----------
    classes_, loss_, best_loss_, loss_curve_, validation_scores_, best_validation_score_, t_,
    coefs_, intercepts_, n_features_in_, feature_names_in_, n_iter_, n_layers_, n_outputs_,
    out_activation_ : as in scikit-learn.
    history_ : dict of lists
        Per epoch: 'loss', 'val_loss', 'val_score', 'learning_rate', 'time'.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from mlp import MLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=300, random_state=0).fit(X, y)
    >>> clf.score(X, y) > 0.9
    True
    """

    _parameter_constraints = {
        **_BaseMLP._parameter_constraints,
        "activation": [str, list, tuple],
        "class_weight": [None, StrOptions({"balanced"}), dict],
    }

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False,
                 warm_start=False, momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10,
                 max_fun=15000, class_weight=None, n_threads=None, device="cpu", callbacks=None):
        super().__init__(hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
                         alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
                         learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
                         shuffle=shuffle, random_state=random_state, tol=tol,
                         verbose=verbose, warm_start=warm_start, momentum=momentum,
                         nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
                         validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
                         epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun,
                         n_threads=n_threads, device=device, callbacks=callbacks)
        self.class_weight = class_weight

    def _output_spec(self, n_outputs):
        if self._multilabel or n_outputs == 1:
            self.out_activation_ = "logistic"
            return _core.Activation.SIGMOID, _core.Loss.BINARY_CROSS_ENTROPY, 1.0
        self.out_activation_ = "softmax"
        return _core.Activation.SOFTMAX, _core.Loss.CATEGORICAL_CROSS_ENTROPY, 1.0

    def _encode_targets(self, y, incremental=False, classes=None):
        if not incremental:
            target = type_of_target(y, input_name="y")
            if target not in ("binary", "multiclass", "multilabel-indicator"):
                raise ValueError(f"Unknown label type: y is {target}; expected binary, multiclass "
                                 "or multilabel-indicator targets")
            self._label_binarizer = LabelBinarizer()
            if classes is not None:
                self._label_binarizer.fit(np.asarray(classes))
            else:
                self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
            self._multilabel = self._label_binarizer.y_type_.startswith("multilabel")
        else:
            if classes is not None and hasattr(self, "classes_") and not np.array_equal(
                    np.asarray(classes), self.classes_):
                raise ValueError(f"`classes={list(classes)}` is not the same as on last call to "
                                 f"partial_fit, was: {list(self.classes_)}")
            if not self._multilabel and not set(unique_labels(y)) <= set(self.classes_):
                raise ValueError(f"y has classes not in `self.classes_`: expected a subset of "
                                 f"{list(self.classes_)}, got {list(unique_labels(y))}")
        return self._one_hot(y)

    def _one_hot(self, y):
        """The targets as the network's output columns: LabelBinarizer's encoding, computed
        directly for 1-D labels (its transform re-validates y, which costs more than a
        small epoch)."""
        classes = self.classes_
        y = np.asarray(y)
        if self._multilabel or y.ndim != 1 or len(classes) < 2 or y.dtype == object:
            return self._label_binarizer.transform(y).astype(np.float64)
        index = np.searchsorted(classes, y)
        if not np.array_equal(classes[np.minimum(index, len(classes) - 1)], y):
            return self._label_binarizer.transform(y).astype(np.float64)  # its error message
        if len(classes) == 2:
            return (index == 1).astype(np.float64)[:, None]
        out = np.zeros((len(y), len(classes)))
        out[np.arange(len(y)), index] = 1.0
        return out

    def _decode(self, Y):
        return self._label_binarizer.inverse_transform(Y)

    def _sample_weight(self, X, y, sample_weight):
        sample_weight = super()._sample_weight(X, y, sample_weight)
        if self.class_weight is None:
            return sample_weight
        if np.asarray(y).ndim > 1 and np.asarray(y).shape[1] > 1:
            raise ValueError("class_weight is not supported for multilabel targets")
        y = np.asarray(y).ravel()
        classes = np.unique(y)
        if isinstance(self.class_weight, dict):
            unknown = set(self.class_weight) - set(classes.tolist())
            if unknown:
                raise ValueError(f"class_weight: classes {sorted(unknown, key=str)} are not in y "
                                 f"(classes: {classes.tolist()})")
        cw = compute_class_weight(self.class_weight, classes=classes, y=y)
        per_sample = cw[np.searchsorted(classes, y)]
        if sample_weight is not None:
            per_sample = per_sample * sample_weight
        if not per_sample.sum() > 0:
            raise ValueError("class_weight: the resulting sample weights sum to zero")
        return per_sample.astype(X.dtype)

    def fit(self, X, y, sample_weight=None, eval_set=None):
        """Fit the model to data X and labels y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels, or a label indicator matrix for multilabel classification.
        sample_weight : array-like of shape (n_samples,), default=None
        eval_set : tuple (X_val, y_val), default=None
            Validation data scored after every epoch (``history_['val_loss' / 'val_score']``);
            with ``early_stopping=True`` it replaces the internal split.

        Returns
        -------
        self : MLPClassifier
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False, eval_set=eval_set)

    @available_if(lambda self: self._check_solver())
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Update the model with a single epoch over X, y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        classes : array of shape (n_classes,), default=None
            All classes that can appear; required on the first call.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : MLPClassifier
        """
        if not hasattr(self, "coefs_"):
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
        return self._fit(X, y, sample_weight=sample_weight, incremental=True, classes=classes)

    def predict_proba(self, X):
        """Probability estimates, shape (n_samples, n_classes)."""
        out = self._forward(X)
        if self.n_outputs_ == 1 and not self._multilabel:
            p = out[:, 0]
            return np.column_stack([1.0 - p, p])
        return out

    def predict_log_proba(self, X):
        """Log of the probability estimates."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """Predicted class labels."""
        return self._decode(self._forward(X))

    def _score_raw(self, X, y, sample_weight):
        return accuracy_score(y, self._decode(self._predict_raw(X)), sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor, a drop-in for ``sklearn.neural_network.MLPRegressor``.

    Parameters are scikit-learn's (including ``loss`` in {'squared_error', 'poisson'}), plus
    ``activation`` lists, ``n_threads``, ``device`` and ``callbacks`` as in MLPClassifier.
    Multi-output regression uses the gradient of the loss it reports (half the mean squared
    error over outputs), not one ``n_outputs`` times too large.

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from mlp import MLPRegressor
    >>> X, y = make_regression(n_samples=200, n_features=5, random_state=0)
    >>> reg = MLPRegressor(hidden_layer_sizes=(32,), max_iter=500, random_state=0).fit(X, y)
    """

    _parameter_constraints = {
        **_BaseMLP._parameter_constraints,
        "activation": [str, list, tuple],
        "loss": [StrOptions({"squared_error", "poisson"})],
    }

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True, random_state=None,
                 tol=1e-4, verbose=False, warm_start=False, momentum=0.9, nesterovs_momentum=True,
                 early_stopping=False, validation_fraction=0.1, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-8, n_iter_no_change=10, max_fun=15000, n_threads=None, device="cpu",
                 callbacks=None):
        super().__init__(hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
                         alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
                         learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
                         shuffle=shuffle, random_state=random_state, tol=tol,
                         verbose=verbose, warm_start=warm_start, momentum=momentum,
                         nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
                         validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
                         epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun,
                         n_threads=n_threads, device=device, callbacks=callbacks)
        self.loss = loss

    _multilabel = False

    def _output_spec(self, n_outputs):
        if self.loss == "poisson":
            self.out_activation_ = "exp"
            return _core.Activation.IDENTITY, _core.Loss.POISSON, 1.0
        self.out_activation_ = "identity"
        return _core.Activation.IDENTITY, _core.Loss.MSE, 0.5 / n_outputs

    def _encode_targets(self, y, incremental=False, classes=None):
        y = np.asarray(y, dtype=np.float64)
        if y.ndim == 1:
            y = y.reshape(-1, 1)
        if not np.isfinite(y).all():
            raise ValueError("y: expected finite values (no NaN or inf)")
        if self.loss == "poisson" and (y < 0).any():
            raise ValueError("y: loss='poisson' needs non-negative targets")
        return y

    def _decode(self, Y):
        return Y.ravel() if Y.shape[1] == 1 else Y

    def _loss_offset(self, Y, sample_weight):
        # scikit-learn's poisson loss includes the constant sum_k (y log y - y); the core leaves it
        # out (it has no gradient), so it is added back here for comparable loss_ values.
        if self.loss != "poisson":
            return 0.0
        Y = np.asarray(Y, dtype=np.float64)
        per_row = (xlogy(Y, Y) - Y).sum(axis=1)
        return float(np.average(per_row, weights=sample_weight))

    def _link(self, out):
        if self.loss == "poisson":
            limit = 88.0 if out.dtype == np.float32 else 709.0
            return np.exp(np.minimum(out, limit))
        return out

    def fit(self, X, y, sample_weight=None, eval_set=None):
        """Fit the model to data X and targets y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None
        eval_set : tuple (X_val, y_val), default=None
            Validation data scored after every epoch; with ``early_stopping=True`` it replaces
            the internal split.

        Returns
        -------
        self : MLPRegressor
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False, eval_set=eval_set)

    @available_if(lambda self: self._check_solver())
    def partial_fit(self, X, y, sample_weight=None):
        """Update the model with a single epoch over X, y.

        Returns
        -------
        self : MLPRegressor
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict(self, X):
        """Predicted values, shape (n_samples,) or (n_samples, n_outputs)."""
        return self._decode(self._link(self._forward(X)))

    def _score_raw(self, X, y, sample_weight):
        return r2_score(y, self._decode(self._link(self._predict_raw(X))), sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
