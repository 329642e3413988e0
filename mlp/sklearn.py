"""scikit-learn estimators MLPClassifier and MLPRegressor on the native training loop.

They take scikit-learn's constructor parameters with the same names, defaults and meaning, set the
same fitted attributes, and keep scikit-learn's loss conventions (half squared error, log-loss,
L2 term alpha / (2 n) ||W||^2) so ``loss_curve_`` reads like scikit-learn's. Beyond it they add
class weights, every activation of the core (or one per hidden layer), ``eval_set``, callbacks,
``history_`` and ``n_threads``, and the training features of the core (dropout, the solver
'adamw' and decoupled weight decay, gradient clipping, label smoothing, per-step learning-rate
schedules), all off by default. Each epoch is one call into C++; no Python runs per batch.
"""
from __future__ import annotations

import math
import numbers
import re
import warnings
from dataclasses import replace

import numpy as np
from scipy import sparse
from scipy.special import xlogy
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, column_or_1d, validate_data

from . import _format, _spec, schedules
from ._device import device_name, resolve_device
from ._engine import Engine
from ._limits import DRAWN_SEED_LIMIT, EXP_LIMIT, MAX_LAYERS, MAX_STEP, MAX_WIDTH, check_allocation
from ._validation import as_float, ready_rows
from .callbacks import Callback
from .io import save as save_file
from ._sklearn_callbacks import SklearnCallbackSupportMixin, sklearn_bridge_callbacks, \
    with_sklearn_callbacks

__all__ = ["MLPClassifier", "MLPRegressor"]

_STOCHASTIC = ("sgd", "adam", "adamw")
_ADAM_SOLVERS = ("adam", "adamw")  # the core's Adam; 'adamw' differs in its default weight_decay
# weight_decay=None means this for solver='adamw' (PyTorch's and Keras's AdamW default), 0 otherwise.
_ADAMW_DEFAULT_DECAY = 0.01
_HISTORY_KEYS = ("loss", "val_loss", "val_score", "learning_rate", "time")
_OPTIMIZER_KIND = _spec.OPTIMIZER_KIND


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


# ------------------------------------------------------------------------------------------------
# State: what a saved file and a pickle hold (see mlp._format)
# ------------------------------------------------------------------------------------------------
# Fitted attributes that are plain data, with the check each gets when read back. classes_,
# feature_names_in_, _label_binarizer and the weights are handled on their own.
_FITTED_PLAIN = {
    "n_features_in_": lambda v, w: _format.check_int(v, w, 1, MAX_WIDTH),
    "n_outputs_": lambda v, w: _format.check_int(v, w, 1, MAX_WIDTH),
    "n_layers_": lambda v, w: _format.check_int(v, w, 2, MAX_LAYERS + 1),
    "out_activation_": lambda v, w: _format.check_choice(v, w, ("identity", "exp", "logistic", "softmax")),
    "_multilabel": _format.check_bool,
    "t_": lambda v, w: _format.check_int(v, w, 0),
    "n_iter_": lambda v, w: _format.check_int(v, w, 0),
    "loss_": _format.check_float,
    "loss_curve_": _format.check_float_list,
    "best_loss_": _format.check_optional_float,
    "validation_scores_": lambda v, w: None if v is None else _format.check_float_list(v, w, True),
    "best_validation_score_": _format.check_optional_float,
    "_no_improvement_count": lambda v, w: _format.check_int(v, w, 0),
    "history_": _format.check_history,
    "_optimizer_ready": _format.check_bool,
    "_lr": _format.check_float,
    "_device": _format.check_str,
    # Written by files of mlp 0.1.0 before the engine (nothing reads it); still accepted.
    "_last_logs": lambda v, w: {_format.check_str(k, w): _format.check_optional_float(x, f"{w}.{k}")
                                for k, x in _format.check_dict(v, w).items()},
    "_random_state": lambda v, w: v if isinstance(v, np.random.RandomState) else _format.fail(
        w, "a {'$random_state': ...} tag", v),
}
_FITTED_OTHER = ("classes_", "feature_names_in_", "_label_binarizer", "_random_state_is_param")
# Attributes rebuilt from the rest (or transient), so neither stored nor carried on.
_ESTIMATOR_DERIVED = {"_net", "_views", "coefs_", "intercepts_", "_sklearn_version"}

# The core's loss under the name a file records (scikit-learn's).
_LOSS_NAMES = {"mse": "squared_error", "poisson": "poisson",
               "categorical_cross_entropy": "log_loss", "binary_cross_entropy": "log_loss"}


def _architecture(spec: _spec.NetworkSpec) -> dict:
    """The file's 'architecture' entry of an estimator: its NetworkSpec, flattened."""
    return {"sizes": spec.sizes, "activations": [layer.activation for layer in spec.layers],
            "alphas": [float(layer.alpha) for layer in spec.layers],
            "loss": _LOSS_NAMES[spec.loss]}


def _encode_classes(classes: np.ndarray) -> dict:
    kind = classes.dtype.kind
    if kind in "biuf":
        return {"dtype": classes.dtype.name, "values": _format.encode(classes.tolist())}
    if kind == "U":
        return {"dtype": classes.dtype.str, "values": classes.tolist()}
    if kind == "O" and all(isinstance(c, (str, bool, int, float, np.generic)) for c in classes):
        return {"dtype": "object", "values": _format.encode(classes.tolist())}
    raise _format.UnsupportedError(f"classes_ of dtype {classes.dtype} cannot be saved: labels must be "
                                   f"numbers, booleans or strings")


def _decode_classes(value, where: str) -> np.ndarray:
    _format.check_keys(value, where, required=("dtype", "values"))
    dtype, values = value["dtype"], _format.decode(value["values"], f"{where}.values")
    if not isinstance(values, list) or not values:
        _format.fail(f"{where}.values", "a non-empty list", values)
    if dtype in _format.NUMERIC_DTYPES:
        if not all(type(v) in (bool, int, float) for v in values):
            _format.fail(f"{where}.values", f"numbers for dtype {dtype}", values)
        try:
            return np.array(values, dtype=dtype)
        except (OverflowError, ValueError):
            _format.fail(f"{where}.values", f"numbers that fit {dtype}", values)
    if dtype == "object":
        if not all(type(v) in (str, bool, int, float) for v in values):
            _format.fail(f"{where}.values", "strings or numbers", values)
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out
    match = re.fullmatch(r"[<>|=]?U(\d{1,6})", dtype) if isinstance(dtype, str) else None
    if match is None:
        _format.fail(f"{where}.dtype", "a numeric dtype name, 'object' or a unicode dtype such as '<U5'",
                     dtype)
    if not all(isinstance(v, str) and len(v) <= int(match.group(1)) for v in values):
        _format.fail(f"{where}.values", f"strings of at most {match.group(1)} characters", values)
    return np.array(values, dtype=dtype)


def _estimator_state(est) -> _format.State:
    kind = est._state_kind
    params = est.get_params(deep=False)
    hyper, objects, dropped = {}, {}, []
    for name, value in params.items():
        try:
            if name == "callbacks" and value is not None:
                raise _format.Unencodable("callbacks")
            hyper[name] = _format.encode(value)
        except _format.Unencodable:
            hyper[name] = None
            objects[name] = value
            if name != "callbacks":
                dropped.append(name)

    fitted = architecture = optimizer = None
    arrays: dict = {}
    dtype = None
    d = est.__dict__
    if "coefs_" in d:
        est._sync_network()  # a user may have replaced coefs_/intercepts_
        net = est._net
        dtype = net.dtype
        sizes = list(net.sizes)
        architecture = _architecture(est._network_spec(sizes[0], sizes[-1], dtype))
        fitted = {}
        for name in _FITTED_PLAIN:
            if name in d:
                try:
                    fitted[name] = _format.encode(d[name])
                except _format.Unencodable:  # a RandomState over PCG64: a file re-seeds the next fit
                    objects[name] = d[name]
        if "_random_state" in fitted:
            fitted["_random_state_is_param"] = d["_random_state"] is params.get("random_state")
        if "classes_" in d:
            fitted["classes_"] = _encode_classes(np.asarray(d["classes_"]))
            lb = d["_label_binarizer"]
            fitted["_label_binarizer"] = {"y_type": lb.y_type_,
                                          "sparse_input": bool(lb.sparse_input_)}
        if "feature_names_in_" in d:
            fitted["feature_names_in_"] = [str(n) for n in d["feature_names_in_"]]
        for i in range(net.n_layers):
            _format.declare(arrays, f"coefs/{i}", np.array(net.weight(i)))
            _format.declare(arrays, f"intercepts/{i}", np.array(net.bias(i)))
        if d.get("_optimizer_ready"):
            buffers = net.optimizer_state()
            optimizer = {"kind": "adam" if est.solver in _ADAM_SOLVERS else "sgd",
                         "settings": est._optimizer_settings(), "step": int(net.step),
                         "n_arrays": len(buffers)}
            for j, buf in enumerate(buffers):
                _format.declare(arrays, f"optimizer/{j}", buf)
    for name, value in d.items():
        if (name not in params and name not in _FITTED_PLAIN and name not in _FITTED_OTHER
                and name not in _ESTIMATOR_DERIVED):
            objects[name] = value
    meta = {**_format.header(kind, dtype), "architecture": architecture, "hyperparameters": hyper,
            "fitted": fitted, "optimizer": optimizer, "arrays": _format.array_table(arrays)}
    return _format.State(meta, arrays, objects, dropped)


def _restore_estimator(cls, meta: dict, fetch, check_params: bool = True):
    hyper = _format.check_dict(meta["hyperparameters"], "hyperparameters")
    names = cls._get_param_names()
    unknown = [k for k in hyper if k not in names]
    if unknown:
        raise ValueError(f"invalid mlp state: hyperparameters has an unknown parameter "
                         f"{unknown[0]!r} for {cls.__name__}")
    params = {k: _format.decode(v, f"hyperparameters.{k}") for k, v in hyper.items()}
    try:
        est = cls(**params)
        if check_params:
            est._validate_params()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"invalid mlp state: hyperparameters: {exc}") from None
    fitted = meta["fitted"]
    if fitted is None:
        return est

    _format.check_keys(fitted, "fitted", required=("n_features_in_", "n_outputs_", "n_layers_",
                                                   "out_activation_"),
                       optional=tuple(_FITTED_PLAIN) + _FITTED_OTHER)
    dtype = _format.check_choice(meta["dtype"], "dtype", ("float32", "float64"))
    values = {name: check(_format.decode(fitted[name], f"fitted.{name}"), f"fitted.{name}")
              for name, check in _FITTED_PLAIN.items() if name in fitted}
    n_features, n_outputs = values["n_features_in_"], values["n_outputs_"]

    arch = _format.check_keys(meta["architecture"], "architecture",
                              required=("sizes", "activations", "alphas", "loss"))
    sizes = _format.check_sizes(arch["sizes"], "architecture.sizes")
    if is_classifier(est):
        _restore_labels(est, fitted, values, n_outputs)
    elif any(k in fitted for k in ("classes_", "_label_binarizer")):
        raise ValueError("invalid mlp state: a regressor has no classes_")
    try:
        spec = est._network_spec(n_features, n_outputs, dtype)  # sets out_activation_
    except (TypeError, ValueError) as exc:
        raise ValueError(f"invalid mlp state: hyperparameters: {exc}") from None
    expected = _architecture(spec)
    if sizes != expected["sizes"] or values["n_layers_"] != len(sizes):
        raise ValueError(f"invalid mlp state: architecture.sizes {sizes} (n_layers_ "
                         f"{values['n_layers_']}) does not match the hyperparameters and fitted "
                         f"attributes, which give {expected['sizes']}")
    if (arch["activations"] != expected["activations"] or arch["loss"] != expected["loss"]
            or values["out_activation_"] != est.out_activation_):
        raise ValueError(f"invalid mlp state: architecture activations {arch['activations']!r} / "
                         f"loss {arch['loss']!r} / out_activation_ "
                         f"{values['out_activation_']!r} do not match the hyperparameters, which "
                         f"give {expected['activations']!r} / {expected['loss']!r} / "
                         f"{est.out_activation_!r}")
    if arch["alphas"] != expected["alphas"]:
        _format.fail("architecture.alphas", "the activations' parameters", arch["alphas"])

    # Read (and size-check) every array before the network allocates anything.
    coefs = [_format.fetch_array(meta, fetch, f"coefs/{i}", dtype, (sizes[i], sizes[i + 1]))
             for i in range(len(sizes) - 1)]
    intercepts = [_format.fetch_array(meta, fetch, f"intercepts/{i}", dtype, (sizes[i + 1],))
                  for i in range(len(sizes) - 1)]
    for name, value in values.items():
        if name != "out_activation_":
            setattr(est, name, value)
    if "feature_names_in_" in fitted:
        feature_names = fitted["feature_names_in_"]
        if (not isinstance(feature_names, list) or len(feature_names) != n_features
                or not all(isinstance(n, str) for n in feature_names)):
            _format.fail("fitted.feature_names_in_", f"{n_features} strings", feature_names)
        est.feature_names_in_ = np.array(feature_names, dtype=object)
    if "_random_state_is_param" in fitted:
        _format.check_bool(fitted["_random_state_is_param"], "fitted._random_state_is_param")
    if "_random_state" in values and fitted.get("_random_state_is_param") is True \
            and isinstance(est.random_state, np.random.RandomState):
        est.random_state = est._random_state  # one generator, as before saving

    try:
        est._net, _ = est._build_network(n_features, n_outputs, dtype)
    except (TypeError, ValueError, OverflowError) as exc:  # e.g. n_threads beyond a C int
        raise ValueError(f"invalid mlp state: hyperparameters: {exc}") from None
    for i, (c, b) in enumerate(zip(coefs, intercepts)):
        est._net.weight(i)[...] = c
        est._net.bias(i)[...] = b
    est._bind_views()
    _restore_estimator_optimizer(est, meta, fetch, dtype, values)
    return est


def _restore_labels(est, fitted: dict, values: dict, n_outputs: int) -> None:
    for name in ("classes_", "_label_binarizer", "_multilabel"):
        if name not in fitted:
            raise ValueError(f"invalid mlp state: a fitted classifier needs fitted.{name}")
    classes = _decode_classes(fitted["classes_"], "fitted.classes_")
    lb_spec = _format.check_keys(fitted["_label_binarizer"], "fitted._label_binarizer",
                                 required=("y_type", "sparse_input"))
    y_type = _format.check_choice(lb_spec["y_type"], "fitted._label_binarizer.y_type",
                                  ("binary", "multiclass", "multilabel-indicator"))
    multilabel = values["_multilabel"]
    if multilabel != (y_type == "multilabel-indicator"):
        _format.fail("fitted._multilabel", f"{y_type == 'multilabel-indicator'} for y_type {y_type!r}",
                     multilabel)
    n_classes = len(classes)
    if multilabel or n_outputs > 1:
        consistent = n_classes == n_outputs and (n_classes > 2 or multilabel)
    else:
        consistent = n_classes <= 2
    if not consistent:
        raise ValueError(f"invalid mlp state: {n_classes} classes do not fit {n_outputs} "
                         f"network outputs ({y_type})")
    lb = LabelBinarizer()
    lb.classes_ = classes
    lb.y_type_ = y_type
    lb.sparse_input_ = _format.check_bool(lb_spec["sparse_input"], "fitted._label_binarizer.sparse_input")
    est.classes_ = classes
    est._label_binarizer = lb
    est._multilabel = multilabel


def _restore_estimator_optimizer(est, meta: dict, fetch, dtype: str, values: dict) -> None:
    spec = meta["optimizer"]
    if spec is None:
        est._optimizer_ready = False
        return
    _format.check_keys(spec, "optimizer", required=("kind", "settings", "step", "n_arrays"))
    kind = _format.check_choice(spec["kind"], "optimizer.kind", ("adam", "sgd"))
    if kind != ("adam" if est.solver in _ADAM_SOLVERS else "sgd") or est.solver == "lbfgs":
        raise ValueError(f"invalid mlp state: optimizer {kind!r} does not match solver "
                         f"{est.solver!r}")
    expected_settings = est._optimizer_settings()
    if spec["settings"] != expected_settings:
        _format.fail("optimizer.settings", f"{expected_settings!r}, as the hyperparameters give",
                     spec["settings"])
    step = _format.check_int(spec["step"], "optimizer.step", 0, MAX_STEP)
    est._configure_optimizer()
    n_params = est._net.n_params
    expected = len(est._net.optimizer_state())
    if _format.check_int(spec["n_arrays"], "optimizer.n_arrays") != expected:
        _format.fail("optimizer.n_arrays", f"{expected} for these optimizer settings", spec["n_arrays"])
    buffers = [_format.fetch_array(meta, fetch, f"optimizer/{j}", dtype, (n_params,))
               for j in range(expected)]
    est._net.set_optimizer_state(buffers, step)
    if "_lr" in values:
        est._lr = values["_lr"]  # _configure_optimizer reset it to learning_rate_init


# ------------------------------------------------------------------------------------------------
# Training
# ------------------------------------------------------------------------------------------------
class _ToleranceRule(Callback):
    """scikit-learn's bookkeeping and stopping rule for the stochastic solvers, as the engine's
    first callback: n_iter_, loss_, t_, loss_curve_, best_loss_ or validation_scores_ and
    best_validation_score_, the ``tol`` / ``n_iter_no_change`` test (which divides the rate by
    5 with ``learning_rate='adaptive'``), the verbose lines, and with ``early_stopping`` the
    weights of the best validation score (put back by the fit)."""

    def __init__(self, n_samples: int) -> None:
        self.n_samples = n_samples
        self.engine = None
        self.best_params = None

    def on_epoch_end(self, est, epoch, logs):
        loss = logs["loss"]
        est.n_iter_ += 1
        est.loss_ = loss
        est.t_ += self.n_samples
        est.loss_curve_.append(loss)
        if est.verbose:
            print("Iteration %d, loss = %.8f" % (est.n_iter_, loss))
        if est.early_stopping:
            val_score = logs["val_score"]
            est.validation_scores_.append(val_score)
            if est.verbose:
                print("Validation score: %f" % val_score)
            if val_score < est.best_validation_score_ + est.tol:
                est._no_improvement_count += 1
            else:
                est._no_improvement_count = 0
            if val_score > est.best_validation_score_:
                est.best_validation_score_ = val_score
                self.best_params = est._get_flat_params()
        else:
            if loss > est.best_loss_ - est.tol:
                est._no_improvement_count += 1
            else:
                est._no_improvement_count = 0
            if loss < est.best_loss_:
                est.best_loss_ = loss
        if est._no_improvement_count <= est.n_iter_no_change:
            return False
        what = "Validation score" if est.early_stopping else "Training loss"
        msg = (f"{what} did not improve more than tol={est.tol:f} for "
               f"{est.n_iter_no_change} consecutive epochs.")
        if est.solver == "sgd" and est.learning_rate == "adaptive" and self.engine.learning_rate > 1e-6:
            self.engine.learning_rate /= 5.0
            est._no_improvement_count = 0
            if est.verbose:
                print(msg + " Setting learning rate to %f" % self.engine.learning_rate)
            return False
        if est.verbose:
            print(msg + " Stopping.")
        return True


class _BaseMLP(SklearnCallbackSupportMixin, BaseEstimator):
    """Shared fit loop of MLPClassifier and MLPRegressor (not public)."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(numbers.Integral, 1, None, closed="left")],
        "solver": [StrOptions({"lbfgs", "sgd", "adam", "adamw"})],
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(numbers.Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive",
                                      *schedules.ESTIMATOR_SCHEDULES})],
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
        "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left"),
                             Options(numbers.Real, {np.inf})],
        "max_fun": [Interval(numbers.Integral, 1, None, closed="left")],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left"), "array-like"],
        "weight_decay": [None, Interval(numbers.Real, 0, None, closed="left")],
        "clipnorm": [None, Interval(numbers.Real, 0, None, closed="neither")],
        "n_threads": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "device": [str],
        "callbacks": [None, list, tuple],
    }

    def __init__(self, hidden_layer_sizes, activation, solver, alpha, batch_size, learning_rate,
                 learning_rate_init, power_t, max_iter, shuffle, random_state, tol, verbose,
                 warm_start, momentum, nesterovs_momentum, early_stopping, validation_fraction,
                 beta_1, beta_2, epsilon, n_iter_no_change, max_fun, n_threads, device, callbacks,
                 dropout=0.0, weight_decay=None, clipnorm=None):
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
        self.dropout = dropout
        self.weight_decay = weight_decay
        self.clipnorm = clipnorm
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
            info = _spec.activation(a, "activation")
            if info.name == "softmax":
                raise ValueError("activation: softmax is only used on the output layer")
            resolved.append(info)
        return resolved

    def _dropout_rates(self, n_hidden=None):
        """``dropout`` as one rate per hidden layer (`n_hidden` of them, by default as many as
        ``hidden_layer_sizes`` gives).

        Raises
        ------
        TypeError
            If ``dropout`` is neither a number nor a sequence of numbers.
        ValueError
            If a rate is outside [0, 1) or a sequence's length is not the number of hidden
            layers.
        """
        rates = self.dropout
        if isinstance(rates, numbers.Real) and not isinstance(rates, bool):
            rate = float(rates)
            if not 0.0 <= rate < 1.0:  # also refuses NaN
                raise ValueError(f"dropout must be in [0, 1), got {rates!r}")
            n = len(self._hidden_sizes()) if n_hidden is None else n_hidden
            return [rate] * n
        if isinstance(rates, (str, bytes, dict)) or not hasattr(rates, "__len__") \
                or np.ndim(rates) != 1:
            raise TypeError(f"dropout must be a float in [0, 1) or a sequence of them, one per "
                            f"hidden layer, got {rates!r}")
        out = []
        for r in list(rates):
            if not isinstance(r, numbers.Real) or isinstance(r, (bool, np.bool_)):
                raise TypeError(f"dropout: expected numbers in [0, 1), got {r!r} in {rates!r}")
            if not 0.0 <= float(r) < 1.0:
                raise ValueError(f"dropout: rates must be in [0, 1), got {r!r} in {rates!r}")
            out.append(float(r))
        n = len(self._hidden_sizes()) if n_hidden is None else n_hidden
        if len(out) != n:
            raise ValueError(f"dropout: a sequence needs one rate per hidden layer ({n}), got "
                             f"{len(out)}")
        return out

    def _weight_decay(self) -> float:
        """The decoupled weight decay of the optimizer: ``weight_decay``, or for None 0.01 with
        solver='adamw' and 0 otherwise."""
        if self.weight_decay is None:
            return _ADAMW_DEFAULT_DECAY if self.solver == "adamw" else 0.0
        return float(self.weight_decay)

    def _label_smoothing(self) -> float:
        return 0.0  # MLPClassifier's label_smoothing

    def _validate_hyperparameters(self, incremental=False):
        self._validate_params()
        rates = self._dropout_rates()
        if self.solver not in _STOCHASTIC:
            # The training features of the mini-batch loop: L-BFGS takes full-batch steps of
            # its own choosing, so none of them has a meaning there.
            what = [f"{name}={getattr(self, name)!r}" for name, used in (
                ("dropout", any(rates)), ("weight_decay", bool(self.weight_decay)),
                ("clipnorm", self.clipnorm is not None),
                ("learning_rate", self.learning_rate in schedules.ESTIMATOR_SCHEDULES)) if used]
            if what:
                raise ValueError(f"{what[0]} needs a stochastic solver ('sgd', 'adam' or "
                                 f"'adamw'), not solver={self.solver!r}")
        if incremental and self.learning_rate in schedules.ESTIMATOR_SCHEDULES:
            raise ValueError(f"learning_rate={self.learning_rate!r} is a schedule over a fit's "
                             f"max_iter epochs, and partial_fit has no such budget: use fit, or "
                             f"learning_rate='constant' for partial_fit")
        if self.device is not None:
            _resolve_device(self.device)
        if self.callbacks is not None:
            for cb in self.callbacks:
                if not callable(getattr(cb, "on_epoch_end", None)):
                    raise TypeError(f"callbacks: {cb!r} has no on_epoch_end(estimator, epoch, logs) method")

    # ---------------------------------------------------------------- data -------------------
    def _densify(self, X):
        if sparse.issparse(X):
            check_allocation(X.shape[0] * X.shape[1] * X.dtype.itemsize,
                             f"X as a dense array of shape {X.shape}")
            X = X.toarray()
        return np.ascontiguousarray(X)

    def _as_net_dtype(self, X, name="X"):
        return as_float(X, self._net.dtype, name)

    # ---------------------------------------------------------------- network ----------------
    def _network_spec(self, n_features, n_outputs, dtype) -> _spec.NetworkSpec:
        """The network the hyperparameters describe for these widths (sets out_activation_)."""
        hidden = self._hidden_sizes()
        acts = self._hidden_activations(len(hidden))
        rates = self._dropout_rates(len(hidden))
        out_act, loss, scale = self._output_spec(n_outputs)
        spec = _spec.NetworkSpec.dense(
            [n_features] + hidden + [n_outputs], [a.name for a in acts] + [out_act],
            [a.alpha or 0.0 for a in acts] + [0.0], loss=loss, loss_scale=scale,
            dtype=np.dtype(dtype).name, label_smoothing=self._label_smoothing())
        if any(rates):  # each hidden layer's output is dropped in training (never the output's)
            spec = replace(spec, layers=tuple(replace(layer, dropout=rate) for layer, rate
                                              in zip(spec.layers, rates + [0.0])))
        return spec

    def _apply_training_settings(self):
        """Put the current dropout and label_smoothing on an existing network (a warm start or
        partial_fit may follow a set_params); a new one was built with them."""
        net = self._net
        rates = self._dropout_rates(net.n_layers - 1) + [0.0]
        if any(rates) or any(net.dropout):
            net.set_dropout(rates)
        smoothing = self._label_smoothing()
        if smoothing or net.label_smoothing:
            net.set_label_smoothing(smoothing)

    def _build_network(self, n_features, n_outputs, dtype):
        spec = self._network_spec(n_features, n_outputs, dtype)
        net = spec.build(0 if self.n_threads is None else int(self.n_threads), "the network")
        net.set_l2(float(self.alpha), True)
        return net, spec

    def _initialize(self, n_features, n_outputs, dtype):
        self._net, spec = self._build_network(n_features, n_outputs, dtype)
        sizes = spec.sizes
        self.n_outputs_ = n_outputs
        self.n_layers_ = len(sizes)
        # Glorot-uniform as scikit-learn draws it (bound sqrt(6 / (fan_in + fan_out)), 2 instead
        # of 6 for logistic), in the same order from the same RandomState. scikit-learn takes the
        # factor of the hidden activation for every layer, the output layer's included (and with
        # no hidden layer, that of the `activation` parameter all the same).
        n_hidden = len(spec.layers) - 1
        for i in range(len(sizes) - 1):
            factor = (spec.layers[min(i, n_hidden - 1)].info.glorot_factor if n_hidden
                      else 2.0 if self.activation == "logistic" else 6.0)
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
        self.history_ = {key: [] for key in _HISTORY_KEYS}
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
        self._net, _ = self._build_network(coefs[0].shape[0], coefs[-1].shape[1], coefs[0].dtype)
        for i, (c, b) in enumerate(zip(coefs, intercepts)):
            self._net.weight(i)[...] = c
            self._net.bias(i)[...] = b
        # A fresh network has no optimizer set up: partial_fit must configure one.
        self._optimizer_ready = False
        self._bind_views()

    def _optimizer_settings(self) -> dict:
        """What `_configure_optimizer` hands the network (a saved file records it too). The
        decay and clipping settings appear only when they are on, so that a file without them
        (every file before them) reads as their defaults."""
        if self.solver in _ADAM_SOLVERS:
            settings = {"beta_1": float(self.beta_1), "beta_2": float(self.beta_2),
                        "epsilon": float(self.epsilon)}
        else:
            settings = {"momentum": float(self.momentum),
                        "nesterov": bool(self.nesterovs_momentum) and self.momentum > 0}
        weight_decay = self._weight_decay()
        if weight_decay:
            settings["weight_decay"] = weight_decay
        if self.clipnorm is not None:
            settings["clipnorm"] = float(self.clipnorm)
        return settings

    def _configure_optimizer(self):
        settings = self._optimizer_settings()
        extra = {"weight_decay": settings.get("weight_decay", 0.0),
                 "clipnorm": settings.get("clipnorm", 0.0)}
        if self.solver in _ADAM_SOLVERS:
            self._net.set_optimizer(_OPTIMIZER_KIND.ADAM, beta1=settings["beta_1"],
                                    beta2=settings["beta_2"], eps=settings["epsilon"], **extra)
        else:
            self._net.set_optimizer(_OPTIMIZER_KIND.SGD, momentum=settings["momentum"],
                                    nesterov=settings["nesterov"], **extra)
        # A constant factor on every slot until a fit sets a learning-rate schedule.
        for slot in (schedules.SLOT_LEARNING_RATE, schedules.SLOT_WEIGHT_DECAY,
                     schedules.SLOT_DROPOUT):
            schedules.configure(self._net, slot, None, 1)
        self._optimizer_ready = True
        self._lr = float(self.learning_rate_init)

    def _reset_optimizer_state(self):
        """Forget the optimizer's buffers and step, e.g. after the weights were changed by hand
        (the command line folds the input scaling into them)."""
        self._net.reset_optimizer_state()

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
        save_file(self, path)

    def _export_network(self):
        """``(NetworkSpec, [(weights, bias) per layer])`` of the fitted network, for an exporter
        (`mlp.to_onnx`)."""
        check_is_fitted(self, "coefs_")
        self._sync_network()  # coefs_ may have been replaced by the user
        net = self._net
        spec = self._network_spec(net.sizes[0], net.sizes[-1], net.dtype)
        return spec, [(net.weight(i), net.bias(i)) for i in range(net.n_layers)]

    def _to_state(self) -> _format.State:
        """The estimator as plain data (see `mlp._format`)."""
        return _estimator_state(self)

    @classmethod
    def _from_state(cls, meta: dict, fetch, check_params: bool = True):
        """The estimator `meta` (untrusted, checked by `mlp._format.restore`) describes."""
        return _restore_estimator(cls, meta, fetch, check_params)

    def __getstate__(self):
        # The native Network cannot be pickled and coefs_/intercepts_ are views into it, so pickle
        # carries the same plain description as the saved file (mlp._format), plus the objects a
        # file leaves out (callbacks, a user's own attributes), which pickle can hold.
        return _format.pickle_state(self._to_state())

    def __setstate__(self, state):
        _format.unpickle_into(self, state, check_params=False)

    # ---------------------------------------------------------------- fitting ----------------
    @with_sklearn_callbacks
    def _fit(self, X, y, sample_weight=None, incremental=False, eval_set=None):
        self._validate_hyperparameters(incremental)
        device = _resolve_device(self.device)
        # As scikit-learn: a first pass (new weights) unless coefs_ exist and the call continues
        # them (warm_start, or partial_fit).
        reset = not hasattr(self, "coefs_") or not (self.warm_start or incremental)
        X, y = _validate_data(self, X, y, accept_sparse=["csr", "csc", "coo"], dtype=(np.float64, np.float32),
                              multi_output=True, y_numeric=not is_classifier(self), reset=reset)
        if is_classifier(self) and y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        X = self._densify(X)
        if X.shape[0] < 1:
            raise ValueError("X: expected at least one sample")
        sample_weight = self._sample_weight(X, y, sample_weight)
        Y = self._encode_targets(y, incremental=incremental)
        # A new generator from random_state on every call, as scikit-learn draws its own.
        self._random_state = check_random_state(self.random_state)
        if reset:
            self._initialize(X.shape[1], Y.shape[1], X.dtype)
        else:
            self._sync_network()
            if Y.shape[1] != self.n_outputs_:
                raise ValueError(f"y: expected {self.n_outputs_} outputs as in the previous fit, got {Y.shape[1]}")
        self._device = device_name(device)
        self._net.to_device(device)
        if not reset:
            self._apply_training_settings()
        X = self._as_net_dtype(X)
        Y = as_float(Y, self._net.dtype, "y")
        if sample_weight is not None:
            sample_weight = as_float(sample_weight, self._net.dtype, "sample_weight")
        try:
            if self.solver == "lbfgs":
                diverged = self._fit_lbfgs(X, Y, sample_weight, eval_set)
            else:
                diverged = self._fit_stochastic(X, Y, sample_weight, incremental, eval_set)
        finally:
            # A GPU keeps X between epochs; the next fit may pass the same array, changed.
            self._net.release_data()
        if diverged:
            # scikit-learn's error for a fit that diverged. The weights left in place are the last
            # finite ones (the step that diverged is never applied), so the estimator still works.
            raise ValueError("Solver produced non-finite parameter weights. The input data may "
                             "contain large values and need to be preprocessed.")
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

    def _engine(self, train_epoch, lr, X_val, Y_val, y_val, sw_val, rules=(),
                logged_rate=None) -> Engine:
        """The training engine for one fit: validation figures, history_, callbacks."""
        def figures():
            if X_val is None:
                return {"val_loss": None, "val_score": None}
            val_loss = float(self._net.loss(X_val, Y_val, sw_val)) + self._loss_offset(Y_val, sw_val)
            return {"val_loss": val_loss, "val_score": float(self._score_raw(X_val, y_val, sw_val))}

        if not hasattr(self, "history_"):  # coefs_ set by hand, then partial_fit
            self.history_ = {key: [] for key in _HISTORY_KEYS}
        return Engine(self, train_epoch, learning_rate=lr, figures=figures,
                      callbacks=list(rules) + list(self.callbacks or []) + sklearn_bridge_callbacks(self),
                      history=self.history_, interrupt="warn",  # _fit reports a divergence
                      logged_rate=logged_rate)

    def _fit_lbfgs(self, X, Y, sample_weight, eval_set):
        from scipy.optimize import minimize

        net = self._net
        X_val = Y_val = y_val = None
        if eval_set is not None:
            X_val, y_val = self._check_eval_set(eval_set)
            Y_val = as_float(self._encode_targets(y_val, validation=True), net.dtype, "eval_set y_val")
        offset = self._loss_offset(Y, sample_weight)
        engine = self._engine(None, None, X_val, Y_val, y_val, None)  # scipy picks the steps
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
            if engine.end_epoch(float(intermediate_result.fun)):
                raise StopIteration

        engine.begin(self.max_iter)
        try:
            res = minimize(fun, net.params.astype(np.float64), method="L-BFGS-B", jac=True,
                           callback=iteration_end,
                           options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol})
            net.params[...] = res.x
        except _LbfgsDiverged:
            net.params[...] = last["x"]
            res = None
        finally:
            engine.end()  # after res.x: EarlyStopping may restore its best weights
        self.t_ = getattr(self, "t_", 0)
        if res is None:  # diverged: the last finite iterate is in place
            self.n_iter_, self.loss_ = last["nit"], last["loss"]
            return True
        self.n_iter_ = int(res.nit)
        self.loss_ = float(res.fun)
        if self.verbose:
            print(f"L-BFGS-B: {res.message} after {self.n_iter_} iterations, loss = {self.loss_:.8f}")
        if res.status == 1:
            warnings.warn(
                f"lbfgs failed to converge after {self.n_iter_} iteration(s) "
                f"(status=1): {res.message}. Increase the number of iterations (max_iter) or "
                "scale the data.", ConvergenceWarning)
        return False

    def _loss_offset(self, Y, sample_weight):
        return 0.0  # the regressor's poisson loss adds its constant term

    def _batch_size(self, n):
        if self.batch_size == "auto":
            return min(200, n)
        if self.batch_size > n:
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going to be "
                          "clipped")
        return int(np.clip(self.batch_size, 1, n))

    def _fit_stochastic(self, X, Y, sample_weight, incremental, eval_set):
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
            # The labels as scikit-learn passes them: binarized, as booleans (its error on a class
            # too small to split names them so).
            stratify = Y.astype(bool) if is_classifier(self) and self.n_outputs_ == 1 else None
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
            Y_val = as_float(self._encode_targets(y_val, validation=True), net.dtype, "eval_set y_val")
        n = X.shape[0]
        batch = self._batch_size(n)
        offset = self._loss_offset(Y, sample_weight)
        shuffle = bool(self.shuffle)
        if shuffle and net.device == "cpu":
            # scikit-learn's order: each epoch shuffles the last one's with random_state, so the
            # same seed visits the rows as scikit-learn does (and float64 fits follow its weights).
            # (Shuffling in place draws the same permutation as sklearn.utils.shuffle, without
            # an array per epoch.)
            # The dropout masks' seed comes from random_state too, drawn only with dropout so
            # that a fit without it draws exactly what scikit-learn draws.
            if any(net.dropout):
                net.set_seed(int(self._random_state.randint(0, DRAWN_SEED_LIMIT, dtype=np.int64)))
            order = np.arange(n, dtype=np.int64)

            def train_epoch(lr):
                self._random_state.shuffle(order)
                return net.train_epoch(X, Y, sample_weight, batch, False, lr, order) + offset
        else:  # the GPU orders the rows itself, from a seed drawn here
            net.set_seed(int(self._random_state.randint(0, DRAWN_SEED_LIMIT, dtype=np.int64)))

            def train_epoch(lr):
                return net.train_epoch(X, Y, sample_weight, batch, shuffle, lr) + offset

        invscaling = self.solver == "sgd" and self.learning_rate == "invscaling"

        def invscaling_rate():
            return self.learning_rate_init / (self.t_ + 1) ** self.power_t

        # A per-step schedule (learning_rate='cosine', ...) runs in the core, as a factor on the
        # rate of every step, over max_iter epochs of ceil(n / batch) steps.
        lr_schedule = logged_rate = None
        if self.learning_rate in schedules.ESTIMATOR_SCHEDULES:
            total = int(self.max_iter) * math.ceil(n / batch)
            lr_schedule = schedules.for_estimator(self.learning_rate,
                                                  float(self.learning_rate_init), total)
            origin = int(net.step)

            def logged_rate(rate):  # the rate of the epoch's last step
                return rate * lr_schedule.factor(max(0, int(net.step) - origin - 1), total)
        else:
            total = 1
        schedules.configure(net, schedules.SLOT_LEARNING_RATE, lr_schedule, total)

        rule = _ToleranceRule(n)
        engine = self._engine(train_epoch, self._lr, X_val, Y_val, y_val, sw_val, rules=[rule],
                              logged_rate=logged_rate)
        rule.engine = engine
        if invscaling:  # scikit-learn's rate after every epoch, from the samples seen so far
            engine.schedule = lambda epoch, lr: lr if epoch == 0 else invscaling_rate()
        self.n_iter_ = 0
        engine.run(1 if incremental else self.max_iter)
        self._lr = invscaling_rate() if invscaling else engine.learning_rate
        restored = self.early_stopping and rule.best_params is not None
        if restored:
            self._set_flat_params(rule.best_params)
        if engine.diverged and restored:
            warnings.warn(
                "The training loss became non-finite (diverged); training stopped and the "
                "weights of the best validation score are kept. Lower learning_rate_init or "
                "scale the data.", RuntimeWarning)
        if (not incremental and not engine.stopped and not engine.diverged
                and self.n_iter_ == self.max_iter):
            warnings.warn(
                "Stochastic Optimizer: Maximum iterations (%d) reached and the optimization "
                "hasn't converged yet." % self.max_iter, ConvergenceWarning)
        return engine.diverged and not restored

    def _check_eval_set(self, eval_set):
        if not isinstance(eval_set, (tuple, list)) or len(eval_set) != 2:
            raise TypeError("eval_set must be a tuple (X_val, y_val)")
        X_val, y_val = eval_set
        X_val = _validate_data(self, X_val, accept_sparse=["csr", "csc", "coo"],
                               dtype=(np.float64, np.float32), reset=False)
        X_val = self._as_net_dtype(self._densify(X_val), "eval_set X_val")
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
        if "coefs_" in self.__dict__ and "feature_names_in_" not in self.__dict__:
            # The fast path of a fitted model serving a few rows at a time: a C-contiguous array
            # of the network's dtype and width goes straight to the core, which also checks
            # that it is finite. Anything else (a DataFrame, a list, NaN, another dtype or
            # width) takes scikit-learn's validation below, with its usual errors.
            self._sync_network()
            if ready_rows(X, self._net.dtype, self.n_features_in_) is not None:
                out = self._net.predict(X, True)
                if out is not None:
                    return out
        check_is_fitted(self, "coefs_")
        self._sync_network()
        X = _validate_data(self, X, accept_sparse=["csr", "csc", "coo"], dtype=(np.float64, np.float32),
                           reset=False)
        return self._net.predict(self._as_net_dtype(self._densify(X)))

    def _predict_raw(self, X):  # validated, dense, network dtype
        return self._net.predict(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


# ------------------------------------------------------------------------------------------------
# Docstrings: the parameters and attributes the two estimators share are written once, here
# ------------------------------------------------------------------------------------------------
_PARAMETERS_HEADER = """
    Parameters
    ----------
"""

# From hidden_layer_sizes to max_fun, in the order of both signatures.
_TRAINING_PARAMETERS_DOC = """\
    hidden_layer_sizes : array-like of int, or int, default=(100,)
        The widths of the hidden layers, from the input side. An int is one hidden layer; an
        empty tuple leaves none (a linear or logistic model).
    activation : str or list of str, default='relu'
        The hidden layers' activation: 'identity' (or 'linear'), 'logistic' (or 'sigmoid'),
        'tanh', 'relu', 'leaky_relu' (slope 0.01), 'elu' (alpha 1.0), 'swish' (or 'silu'),
        'selu', 'mish', 'gelu' or 'gelu_tanh'. The weights start from scikit-learn's Glorot
        uniform draw whatever the activation.
        One name serves every hidden layer; a list gives one name per hidden layer. The output
        layer's activation follows from the task (see ``out_activation_``).
    solver : {'lbfgs', 'sgd', 'adam', 'adamw'}, default='adam'
        The training algorithm. 'sgd' (gradient descent with momentum), 'adam' and 'adamw' run
        mini-batch epochs in the native loop. 'adamw' is Adam (with ``beta_1``, ``beta_2``,
        ``epsilon``, ``learning_rate_init``) plus decoupled weight decay, 0.01 unless
        ``weight_decay`` says otherwise; it is not scikit-learn's. 'lbfgs' gives the full-batch
        loss and gradient to scipy's L-BFGS-B, which often does best on small data sets; each of
        its iterations counts as an epoch for ``history_`` and the callbacks. ``partial_fit``
        exists for 'sgd', 'adam' and 'adamw'.
    alpha : float, default=0.0001
        Strength of the L2 penalty ``alpha / (2 n) * ||W||^2`` added to the loss, summed over
        the weights (not the intercepts), n being the (weighted) number of samples in the
        mini-batch, or in the whole training set for 'lbfgs'.
    batch_size : int or 'auto', default='auto'
        Samples per mini-batch for 'sgd', 'adam', 'adamw'. 'auto' means ``min(200, n_samples)``; an
        int above n_samples is clipped to it, with a warning. n_samples counts the samples
        trained on, after ``early_stopping`` held its share out. 'lbfgs' uses the full batch.
    learning_rate : {'constant', 'invscaling', 'adaptive', 'cosine', 'warmup_cosine', \
'linear_warmup', 'flat_cosine', 'coslog4'}, default='constant'
        How the step size changes over a fit. scikit-learn's three are used only with
        ``solver='sgd'`` (the other solvers keep ``learning_rate_init``), as in scikit-learn.
        'constant' keeps ``learning_rate_init``. 'invscaling' sets it after every epoch to
        ``learning_rate_init / (t_ + 1) ** power_t``, ``t_`` being the samples trained on so
        far. 'adaptive' keeps it while training improves; whenever the ``tol`` /
        ``n_iter_no_change`` rule would stop the fit it divides the rate by 5 and goes on
        instead, and it stops once the rate is no longer above 1e-6.
        The other five are per-step schedules of ``learning_rate_init`` (`mlp.schedules`),
        evaluated by the core at every mini-batch over the fit's ``max_iter * ceil(n_samples /
        batch_size)`` steps (n_samples after ``early_stopping``'s split), and unlike
        scikit-learn's three they apply to 'sgd', 'adam' and 'adamw' alike: 'cosine' decays
        from ``learning_rate_init`` to 0 along a half cosine, 'warmup_cosine' first ramps up
        linearly over 5% of the steps, 'linear_warmup' ramps up over 5% of the steps and then
        stays, 'flat_cosine' holds for the first half and decays along a cosine over the
        second, 'coslog4' is RealMLP's four cosine cycles on a log scale. An epoch's
        ``history_['learning_rate']`` is the rate of its last step. The ``tol`` /
        ``n_iter_no_change`` rule may still end the fit early, before the schedule does. They
        need a stochastic solver, and ``partial_fit`` (which has no epoch budget) refuses them.
    learning_rate_init : float, default=0.001
        The step size of 'sgd', 'adam' and 'adamw': the first epoch's, and the base value of
        the ``learning_rate`` schedules. Unused by 'lbfgs'.
    power_t : float, default=0.5
        The exponent of the 'invscaling' schedule (``solver='sgd'`` only).
    max_iter : int, default=200
        The most epochs (passes over the training data) one ``fit`` runs with 'sgd' or 'adam';
        when they run out before the stopping rule fires, fit warns with a ConvergenceWarning.
        For 'lbfgs', the most L-BFGS iterations. ``partial_fit`` always runs one epoch.
    shuffle : bool, default=True
        Whether 'sgd', 'adam', 'adamw' go through the samples in a new random order every epoch.
    random_state : int, RandomState instance or None, default=None
        Where the randomness comes from: the initial weights (Glorot-uniform, drawn in
        scikit-learn's order), the ``early_stopping`` split and the seed of the shuffling. Pass
        an int for fits that repeat exactly.
    tol : float, default=1e-4
        For 'sgd', 'adam', 'adamw', the least change that counts as progress: an epoch improves when
        its training loss is at most ``best_loss_ - tol`` (with ``early_stopping``, when the
        validation score is at least ``best_validation_score_ + tol``); see
        ``n_iter_no_change``. For 'lbfgs', scipy's ``gtol``: L-BFGS stops once no component of
        the projected gradient exceeds it.
    verbose : bool, default=False
        Print every epoch's loss (and validation score) and the reason training stopped; with
        'lbfgs', one line when it ends.
    warm_start : bool, default=False
        When True, ``fit`` on a fitted estimator trains on from its current weights and extends
        ``loss_curve_`` and ``history_``, instead of initializing them afresh. The optimizer's
        state (momentum, Adam's moments, the learning rate) does restart. The data must keep
        the number of features and of outputs.
    momentum : float, default=0.9
        For ``solver='sgd'`` only, in [0, 1]: the share of the previous update carried into
        each new one (``v = momentum * v - lr * grad``, then ``w += v``); 0 is plain SGD.
    nesterovs_momentum : bool, default=True
        Use Nesterov's momentum, which steps from the point the velocity leads to, instead of
        the classical one (``solver='sgd'`` with ``momentum > 0`` only).
    early_stopping : bool, default=False
        For 'sgd', 'adam', 'adamw': hold out ``validation_fraction`` of the training data
        (stratified for binary classification) and apply the ``tol`` / ``n_iter_no_change`` rule to the
        score on it (accuracy for MLPClassifier, R^2 for MLPRegressor) instead of the training
        loss. When the fit ends, the weights of the epoch with the best validation score are
        put back. An ``eval_set`` given to ``fit`` is used as the validation data instead of a
        split. ``partial_fit`` refuses it and 'lbfgs' ignores it.
    validation_fraction : float, default=0.1
        The share of the training data, in [0, 1), that ``early_stopping`` holds out; it must
        come to at least 2 samples. Unused without early_stopping or with an ``eval_set``.
    beta_1 : float, default=0.9
        Adam's decay rate, in [0, 1), for its running mean of the gradient (``solver='adam'``
        and 'adamw' only).
    beta_2 : float, default=0.999
        Adam's decay rate, in [0, 1), for its running mean of the squared gradient
        (``solver='adam'`` and 'adamw' only).
    epsilon : float, default=1e-8
        The small positive constant Adam adds to the denominator of its step, so that it never
        divides by zero (``solver='adam'`` and 'adamw' only).
    n_iter_no_change : int, default=10
        For 'sgd', 'adam', 'adamw': once more than this many consecutive epochs have not improved by
        ``tol`` (the training loss, or the validation score with ``early_stopping``), training
        stops, or with ``learning_rate='adaptive'`` the rate is cut. Unused by 'lbfgs'.
    max_fun : int, default=15000
        The most loss-and-gradient evaluations L-BFGS may spend (scipy's ``maxfun``;
        ``solver='lbfgs'`` only). Running out of them, or of ``max_iter``, warns with a
        ConvergenceWarning.
"""

# After max_fun in both signatures: the training features scikit-learn lacks.
_FEATURE_PARAMETERS_DOC = """\
    dropout : float or sequence of float, default=0.0
        Dropout in training: each hidden unit's output is zeroed with this probability at every
        step, and the others are scaled by ``1 / (1 - rate)`` (inverted dropout), so that
        ``predict``, ``score`` and an exported ONNX model use the network as it is, with no
        dropout and no randomness. A float in [0, 1) applies to every hidden layer; a sequence
        gives one rate per hidden layer (its length must be ``len(hidden_layer_sizes)``); the
        output layer is never dropped. The masks come from ``random_state`` (a seeded fit repeats
        exactly, whatever ``n_threads``). 0 (the default) is scikit-learn's training. Needs a
        stochastic solver ('sgd', 'adam' or 'adamw'); ``loss_curve_`` records the loss under
        dropout.
    weight_decay : float or None, default=None
        Decoupled weight decay (Loshchilov & Hutter, the 'W' of AdamW): every step also does
        ``W -= lr * weight_decay * W`` on the weight matrices (not the intercepts), ``lr`` being
        the step's learning rate (scheduled, with a ``learning_rate`` schedule). It is separate
        from ``alpha``, scikit-learn's L2 penalty in the loss, and both may be used. None means
        0.01 for ``solver='adamw'`` and 0 (none) for the others; a float >= 0 sets it for
        'adamw', 'adam' or 'sgd' alike. Needs a stochastic solver when it is above 0.
    clipnorm : float or None, default=None
        Clip the gradient by its global norm: when the norm over all parameters exceeds
        ``clipnorm`` (> 0), the step uses the gradient scaled to that norm (PyTorch's
        ``clip_grad_norm_``; the ``alpha`` term is added after clipping). None never clips.
        Needs a stochastic solver.
"""

_LABEL_SMOOTHING_DOC = """\
    label_smoothing : float, default=0.0
        In [0, 1): train on the targets ``y * (1 - label_smoothing) + label_smoothing / K``
        instead of y, K being the number of classes (2 for binary and for each label of a
        multilabel target), as Keras's ``label_smoothing``. It changes the loss minimized (and
        ``loss_`` / ``loss_curve_`` report that loss), not what ``predict_proba`` returns:
        probabilities that sum to 1, only less confident. Any solver.
"""

# After the class-specific class_weight: the last three parameters of both signatures.
_RUNTIME_PARAMETERS_DOC = """\
    n_threads : int or None, default=None
        CPU threads the native code uses to fit and predict; None uses every core, within the
        limits threadpoolctl or OMP_NUM_THREADS set.
    device : {'cpu', 'cuda', 'cuda:N', 'auto'}, default='cpu'
        Where fit trains: 'cuda' needs a build with CUDA (``mlp.build_info()['cuda']``) and a
        visible GPU, else ValueError says which is missing; 'auto' takes the GPU when there is
        one and the CPU otherwise. A model fitted on the GPU predicts there; pickled or saved, it
        loads on the CPU.
    callbacks : list of callback objects, default=None
        Each one's ``on_epoch_end(estimator, epoch, logs)`` is called after every epoch (every
        L-BFGS iteration), after the built-in ``tol`` rule; returning True stops the fit.
        ``logs`` holds 'loss', 'val_loss', 'val_score', 'learning_rate' and 'time'. Optional
        ``on_train_begin(estimator)`` and ``on_train_end(estimator)`` are called too. See
        ``mlp.callbacks`` (``EarlyStopping``, ``ProgressBar``). Pickling keeps them; ``save``
        does not.
"""

_CLASS_WEIGHT_DOC = """\
    class_weight : dict, 'balanced' or None, default=None
        Weights per class, multiplied into ``sample_weight``. None weighs every class 1. A dict
        maps labels to weights; labels it leaves out weigh 1, and a label not in y is an error.
        'balanced' weighs each class by n_samples / (n_classes * its count in y), so that
        every class counts as much in total. The weights are computed from the y of each
        ``fit`` or ``partial_fit`` call. Not for multilabel targets.
"""

_LOSS_DOC = """\
    loss : {'squared_error', 'poisson'}, default='squared_error'
        The loss minimized. 'squared_error' is half the squared error, averaged over the samples
        and the outputs, under an identity output. 'poisson' is half the Poisson deviance under
        an exponential output (``out_activation_ == 'exp'``), for non-negative targets such as
        counts; ``loss_`` includes its constant term, so it compares with scikit-learn's.
"""

_ATTRIBUTES_HEADER = """
    Attributes
    ----------
"""

_CLASSES_DOC = """\
    classes_ : ndarray of shape (n_classes,)
        The class labels (from the first ``fit``, or ``partial_fit``'s ``classes``).
"""

_FITTED_ATTRIBUTES_DOC = """\
    loss_ : float
        The training loss of the last epoch ('lbfgs': of the final iterate), L2 term included.
    best_loss_ : float or None
        The lowest epoch loss so far; None with ``early_stopping`` (stochastic solvers only).
    loss_curve_ : list of float
        The training loss of every epoch (stochastic solvers only).
    validation_scores_ : list of float or None
        Every epoch's validation score with ``early_stopping``, else None (stochastic
        solvers only).
    best_validation_score_ : float or None
        The best of ``validation_scores_``; None without ``early_stopping`` (stochastic
        solvers only).
    t_ : int
        The number of training samples the stochastic solver has processed (0 for 'lbfgs').
    coefs_ : list of ndarray
        ``coefs_[i]`` is the weight matrix from layer i to layer i + 1 (a view of the network's).
    intercepts_ : list of ndarray
        ``intercepts_[i]`` is the bias vector of layer i + 1.
    n_features_in_ : int
        The number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        The names of X's columns in ``fit``, present only when they are all strings.
    n_iter_ : int
        The epochs (L-BFGS iterations) the last ``fit`` or ``partial_fit`` call ran.
    n_layers_ : int
        The number of layers, the input and output layers included.
    n_outputs_ : int
        The number of output units.
    out_activation_ : str
        The output layer's activation: 'logistic' or 'softmax' (classifier), 'identity' or
        'exp' (regressor).
    history_ : dict of str to list
        One value per epoch since the weights were initialized, under 'loss', 'val_loss' and
        'val_score' (None without validation data), 'learning_rate' (None for 'lbfgs') and
        'time' (seconds since the fit began).
"""


def _estimator_doc(intro: str, examples: str, *, first: str = "", features: str = "",
                   class_weight: str = "", classes: str = "") -> str:
    """An estimator's numpydoc docstring from its own parts and the shared ones above: `first`
    is documented before the shared parameters, `features` (the class's own training
    features) after the shared ones that follow max_fun, then `class_weight`, then n_threads
    (as in the signatures), `classes` before the shared attributes."""
    return (intro + _PARAMETERS_HEADER + first + _TRAINING_PARAMETERS_DOC
            + _FEATURE_PARAMETERS_DOC + features + class_weight + _RUNTIME_PARAMETERS_DOC
            + _ATTRIBUTES_HEADER + classes + _FITTED_ATTRIBUTES_DOC + examples)


_CLASSIFIER_DOC = _estimator_doc(
    """Multi-layer perceptron classifier, a drop-in for ``sklearn.neural_network.MLPClassifier``.

    The parameters are scikit-learn's, with the same names and defaults, plus ``dropout``,
    ``weight_decay``, ``clipnorm``, ``label_smoothing``, ``class_weight``, ``n_threads``,
    ``device``, ``callbacks``, the solver 'adamw', the per-step ``learning_rate`` schedules and
    any activation of the core, or one per hidden layer; at their defaults the estimator
    trains exactly as scikit-learn's. It minimizes the log-loss, under a logistic output for
    binary and multilabel targets and a softmax for more classes. Each epoch is one call into
    C++; no Python runs per batch.
""",
    """
    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from mlp import MLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=300, random_state=0).fit(X, y)
    >>> clf.score(X, y) > 0.9
    True
    """,
    features=_LABEL_SMOOTHING_DOC, class_weight=_CLASS_WEIGHT_DOC, classes=_CLASSES_DOC)

_REGRESSOR_DOC = _estimator_doc(
    """Multi-layer perceptron regressor, a drop-in for ``sklearn.neural_network.MLPRegressor``.

    The parameters are scikit-learn's, with the same names and defaults, plus ``dropout``,
    ``weight_decay``, ``clipnorm``, ``n_threads``, ``device``, ``callbacks``, the solver
    'adamw', the per-step ``learning_rate`` schedules and any activation of the core, or one
    per hidden layer; at their defaults the estimator trains exactly as scikit-learn's.
    Multi-output regression uses the gradient of the loss it reports (half the mean squared
    error over outputs), not one ``n_outputs`` times too large.
""",
    """
    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from mlp import MLPRegressor
    >>> X, y = make_regression(n_samples=200, n_features=5, random_state=0)
    >>> reg = MLPRegressor(hidden_layer_sizes=(32,), max_iter=500, random_state=0).fit(X, y)
    """,
    first=_LOSS_DOC)


@_format.register("MLPClassifier")
class MLPClassifier(ClassifierMixin, _BaseMLP):
    __doc__ = _CLASSIFIER_DOC

    _parameter_constraints = {
        **_BaseMLP._parameter_constraints,
        "activation": [str, list, tuple],
        "label_smoothing": [Interval(numbers.Real, 0, 1, closed="left")],
        "class_weight": [None, StrOptions({"balanced"}), dict],
    }

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False,
                 warm_start=False, momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10,
                 max_fun=15000, dropout=0.0, weight_decay=None, clipnorm=None,
                 label_smoothing=0.0, class_weight=None, n_threads=None, device="cpu",
                 callbacks=None):
        super().__init__(hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
                         alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
                         learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
                         shuffle=shuffle, random_state=random_state, tol=tol,
                         verbose=verbose, warm_start=warm_start, momentum=momentum,
                         nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
                         validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
                         epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun,
                         n_threads=n_threads, device=device, callbacks=callbacks,
                         dropout=dropout, weight_decay=weight_decay, clipnorm=clipnorm)
        self.label_smoothing = label_smoothing
        self.class_weight = class_weight

    def _label_smoothing(self) -> float:
        smoothing = self.label_smoothing
        if isinstance(smoothing, bool) or not isinstance(smoothing, numbers.Real) \
                or not 0.0 <= float(smoothing) < 1.0:
            raise ValueError(f"label_smoothing must be a float in [0, 1), got {smoothing!r}")
        return float(smoothing)

    def _output_spec(self, n_outputs):
        if self._multilabel or n_outputs == 1:
            self.out_activation_ = "logistic"
            return "sigmoid", "binary_cross_entropy", 1.0
        self.out_activation_ = "softmax"
        return "softmax", "categorical_cross_entropy", 1.0

    def _encode_targets(self, y, incremental=False, validation=False):
        """The labels as the network's output columns, after scikit-learn's checks: a new
        LabelBinarizer on a fresh fit; on a warm start the same classes as before; on
        partial_fit (and for validation labels) classes among ``classes_``."""
        if validation:
            self._check_known_classes(y)
        elif not hasattr(self, "classes_") or not (self.warm_start or incremental):
            target = type_of_target(y, input_name="y")
            if target not in ("binary", "multiclass", "multilabel-indicator"):
                raise ValueError(f"Unknown label type: y is {target}; expected binary, multiclass "
                                 "or multilabel-indicator targets")
            self._label_binarizer = LabelBinarizer().fit(y)
            self.classes_ = self._label_binarizer.classes_
            self._multilabel = self._label_binarizer.y_type_.startswith("multilabel")
        elif self.warm_start:
            classes = unique_labels(y)
            if set(classes) != set(self.classes_):
                raise ValueError(f"warm_start can only be used where `y` has the same classes as "
                                 f"in the previous call to fit. Previously got {self.classes_}, "
                                 f"`y` has {classes}")
        else:
            self._check_known_classes(y)
        return self._one_hot(y)

    def _check_known_classes(self, y):
        classes = unique_labels(y)
        if len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
            raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has "
                             f"{self.classes_}. 'y' has {classes}.")

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
        # LabelBinarizer.inverse_transform's own rules (argmax; binary: above 0.5), without its
        # checks, which cost a one-row predict 100 us; other cases go through it.
        lb = self._label_binarizer
        if lb.y_type_ == "multiclass" and Y.ndim == 2 and Y.shape[1] == len(lb.classes_):
            return lb.classes_.take(Y.argmax(axis=1), mode="clip")
        if (lb.y_type_ == "binary" and len(lb.classes_) == 2 and Y.ndim == 2 and Y.shape[1] == 1
                and (lb.neg_label, lb.pos_label) == (0, 1)):
            return lb.classes_[(Y[:, 0] > 0.5).astype(np.intp)]
        return lb.inverse_transform(Y)

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
            The training samples.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels, or a label indicator matrix for multilabel classification.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples, multiplied by ``class_weight``'s; None weighs each 1.
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
            The samples of this step.
        y : array-like of shape (n_samples,)
            Their class labels, each one of ``classes``.
        classes : array of shape (n_classes,), default=None
            All classes that can appear; required on the first call, and on later calls either
            None or the same classes.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples, multiplied by ``class_weight``'s; None weighs each 1.

        Returns
        -------
        self : MLPClassifier
        """
        self._validate_hyperparameters(incremental=True)
        if _check_partial_fit_first_call(self, classes):  # sets classes_ from `classes`
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
            self._multilabel = self._label_binarizer.y_type_.startswith("multilabel")
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict_proba(self, X):
        """Probability estimates.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The samples to score.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Each class's probability, in the order of ``classes_``.
        """
        out = self._forward(X)
        if self.n_outputs_ == 1 and not self._multilabel:
            p = out[:, 0]
            return np.column_stack([1.0 - p, p])
        return out

    def predict_log_proba(self, X):
        """Log of the probability estimates.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The samples.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            The logarithm of ``predict_proba(X)``.
        """
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """Predicted class labels.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The samples to classify.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_classes)
            The most probable class of each sample, or a label indicator matrix for a multilabel
            model.
        """
        return self._decode(self._forward(X))

    def _score_raw(self, X, y, sample_weight):
        out = self._predict_raw(X)
        if not np.isfinite(out).all():
            return math.nan  # as scikit-learn scores a diverged network
        return accuracy_score(y, self._decode(out), sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


@_format.register("MLPRegressor")
class MLPRegressor(RegressorMixin, _BaseMLP):
    __doc__ = _REGRESSOR_DOC

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
                 epsilon=1e-8, n_iter_no_change=10, max_fun=15000, dropout=0.0, weight_decay=None,
                 clipnorm=None, n_threads=None, device="cpu", callbacks=None):
        super().__init__(hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
                         alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
                         learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
                         shuffle=shuffle, random_state=random_state, tol=tol,
                         verbose=verbose, warm_start=warm_start, momentum=momentum,
                         nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
                         validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
                         epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun,
                         n_threads=n_threads, device=device, callbacks=callbacks,
                         dropout=dropout, weight_decay=weight_decay, clipnorm=clipnorm)
        self.loss = loss

    _multilabel = False

    def _output_spec(self, n_outputs):
        if self.loss == "poisson":
            self.out_activation_ = "exp"
            return "linear", "poisson", 1.0
        self.out_activation_ = "identity"
        return "linear", "mse", 0.5 / n_outputs

    def _encode_targets(self, y, incremental=False, validation=False):
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
            return np.exp(np.minimum(out, EXP_LIMIT[out.dtype.name]))
        return out

    def fit(self, X, y, sample_weight=None, eval_set=None):
        """Fit the model to data X and targets y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training samples.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Target values (non-negative for ``loss='poisson'``).
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample weights; None gives every sample weight 1.
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

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training samples of this step.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Their target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample weights; None gives every sample weight 1.

        Returns
        -------
        self : MLPRegressor
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict(self, X):
        """Predicted values.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The samples to predict for.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The predicted targets (for ``loss='poisson'``, the predicted means).
        """
        return self._decode(self._link(self._forward(X)))

    def _score_raw(self, X, y, sample_weight):
        out = self._link(self._predict_raw(X))
        if not np.isfinite(out).all():
            return math.nan  # as scikit-learn scores a diverged network
        return r2_score(y, self._decode(out), sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
