"""The state of a Model or an estimator as plain data: a JSON-able dict plus named float arrays.

One description serves both ways a model leaves the process. `mlp.io` writes it as ``meta.json``
and raw little-endian arrays inside a zip file; pickling (joblib, GridSearchCV workers, dask)
carries the same dict and arrays. Both come back through `restore`, one validating path, so a
pickle and a file are checked alike. Nothing here needs pickle: every value is JSON (with a few
tagged forms for tuples, non-finite floats, non-string dict keys and RandomState) or an array of
float32/float64 whose shape the architecture dictates before it is read.
"""
from __future__ import annotations

import math
import numbers
import re
from typing import Callable, NamedTuple

import numpy as np

from . import _core
from ._registry import activation_name, get_activation
from ._version import __version__

FORMAT = "mlp"
FORMAT_VERSION = 1

# Widths and depths beyond these are not networks anyone trains on a CPU; refusing them early keeps
# a crafted file from asking for absurd allocations even before the array sizes are checked.
_MAX_WIDTH = 2**31 - 1
_MAX_LAYERS = 4096

_LITTLE = {"float32": "<f4", "float64": "<f8"}


class UnsupportedError(TypeError):
    """The object holds something the state cannot describe (a user's own layer or optimizer)."""


class State(NamedTuple):
    """What `get_state` returns.

    meta : dict
        JSON-able: format, version, kind, architecture, hyperparameters, fitted attributes,
        optimizer settings, and the dtype and shape of every array.
    arrays : dict of str to numpy.ndarray
        Weights, biases and optimizer buffers, by name.
    objects : dict of str to object
        Attributes that plain data cannot hold (callbacks, a user's extra attributes). Pickling
        carries them as they are; the file format leaves them out.
    dropped : list of str
        Hyperparameters that were stored as None because they are not plain data (callbacks
        excluded: those are expected to be left behind).
    """

    meta: dict
    arrays: dict
    objects: dict
    dropped: list


# ------------------------------------------------------------------------------------------------
# Plain data <-> JSON, with tags for what JSON lacks
# ------------------------------------------------------------------------------------------------
class _Unencodable(Exception):
    pass


def encode(value):
    """Turn plain data into JSON-able values; raise _Unencodable for anything else.

    JSON has no tuples, no NaN or infinity, only string keys and no random generators, and
    scikit-learn parameters use all four (hidden_layer_sizes=(100,), best_loss_=inf,
    class_weight={0: 2.0}, random_state=RandomState(0)); each gets a one-key ``{"$tag": ...}``.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        f = float(value)
        return f if math.isfinite(f) else {"$float": repr(f)}
    if isinstance(value, tuple):
        return {"$tuple": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in value):
            return {k: encode(v) for k, v in value.items()}
        return {"$dict": [[encode(k), encode(v)] for k, v in value.items()]}
    if isinstance(value, np.random.RandomState):
        state = value.get_state(legacy=False)
        if not isinstance(state, dict) or state.get("bit_generator") != "MT19937":
            raise _Unencodable("a RandomState over a bit generator other than MT19937")
        return {"$random_state": {"keys": state["state"]["key"].tolist(),
                                  "pos": int(state["state"]["pos"]),
                                  "has_gauss": int(state["has_gauss"]),
                                  "cached_gaussian": encode(float(state["gauss"]))}}
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf" and value.ndim == 1:
        return {"$array": {"dtype": value.dtype.name, "values": encode(value.tolist())}}
    raise _Unencodable(type(value).__name__)


def _fail(where: str, expected: str, got=None, *, show=True):
    shown = ""
    if show:
        text = repr(got)
        shown = f", got {text if len(text) <= 80 else text[:77] + '...'}"
    raise ValueError(f"invalid mlp state: {where} must be {expected}{shown}")


def decode(value, where: str):
    """Inverse of `encode`, for untrusted input: unknown tags and malformed tags are errors."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            _fail(where, "a finite number or a {'$float': ...} tag", value)
        return value
    if isinstance(value, list):
        return [decode(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, dict):
        _fail(where, "JSON data", value)
    if len(value) == 1:
        (tag, body), = value.items()
        if tag.startswith("$"):
            return _decode_tag(tag, body, f"{where}.{tag}")
    for key in value:
        if key.startswith("$"):
            _fail(where, "an object without '$' keys outside a one-key tag", key)
    return {k: decode(v, f"{where}.{k}") for k, v in value.items()}


def _decode_tag(tag: str, body, where: str):
    if tag == "$float":
        if body not in ("nan", "inf", "-inf"):
            _fail(where, "'nan', 'inf' or '-inf'", body)
        return float(body)
    if tag == "$tuple":
        if not isinstance(body, list):
            _fail(where, "a list", body)
        return tuple(decode(body, where))
    if tag == "$dict":
        if not isinstance(body, list) or not all(isinstance(p, list) and len(p) == 2 for p in body):
            _fail(where, "a list of [key, value] pairs", body)
        out = {}
        for i, (k, v) in enumerate(body):
            k = decode(k, f"{where}[{i}][0]")
            if isinstance(k, (list, dict)):
                _fail(f"{where}[{i}][0]", "a hashable key", k)
            out[k] = decode(v, f"{where}[{i}][1]")
        return out
    if tag == "$random_state":
        return _decode_random_state(body, where)
    if tag == "$array":
        if not isinstance(body, dict) or set(body) != {"dtype", "values"}:
            _fail(where, "{'dtype': ..., 'values': [...]}", body)
        dtype = _check_choice(body["dtype"], f"{where}.dtype", _NUMERIC_DTYPES)
        values = decode(body["values"], f"{where}.values")
        if not isinstance(values, list) or not all(
                isinstance(v, (bool, int, float)) for v in values):
            _fail(f"{where}.values", "a flat list of numbers", values)
        try:
            return np.array(values, dtype=dtype)
        except (OverflowError, ValueError):
            _fail(f"{where}.values", f"numbers that fit {dtype}", values)
    _fail(where, "a known tag ($float, $tuple, $dict, $random_state, $array)", tag)


_NUMERIC_DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                   "uint64", "float32", "float64")


def _decode_random_state(body, where: str) -> np.random.RandomState:
    if not isinstance(body, dict) or set(body) != {"keys", "pos", "has_gauss", "cached_gaussian"}:
        _fail(where, "{'keys', 'pos', 'has_gauss', 'cached_gaussian'}", body)
    keys = body["keys"]
    if (not isinstance(keys, list) or len(keys) != 624
            or not all(type(k) is int and 0 <= k < 2**32 for k in keys)):
        _fail(f"{where}.keys", "624 integers in [0, 2**32)", keys, show=False)
    pos = _check_int(body["pos"], f"{where}.pos", 0, 624)
    has_gauss = _check_int(body["has_gauss"], f"{where}.has_gauss", 0, 1)
    gauss = _check_float(decode(body["cached_gaussian"], where), f"{where}.cached_gaussian")
    rs = np.random.RandomState()
    rs.set_state(("MT19937", np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
    return rs


# -- typed field checks (untrusted values) --------------------------------------------------------
def _check_int(value, where: str, lo: int | None = None, hi: int | None = None) -> int:
    if type(value) is not int or (lo is not None and value < lo) or (hi is not None and value > hi):
        span = f" in [{lo}, {hi}]" if hi is not None else f" >= {lo}" if lo is not None else ""
        _fail(where, f"an integer{span}", value)
    return value


def _check_float(value, where: str) -> float:
    if type(value) not in (int, float):
        _fail(where, "a number", value)
    return float(value)


def _check_bool(value, where: str) -> bool:
    if type(value) is not bool:
        _fail(where, "true or false", value)
    return value


def _check_str(value, where: str) -> str:
    if not isinstance(value, str):
        _fail(where, "a string", value)
    return value


def _check_choice(value, where: str, choices) -> str:
    if value not in choices:
        _fail(where, "one of " + ", ".join(repr(c) for c in choices), value)
    return value


def _check_dict(value, where: str) -> dict:
    if not isinstance(value, dict):
        _fail(where, "an object", value)
    return value


def _check_keys(d: dict, where: str, required=(), optional=()) -> dict:
    _check_dict(d, where)
    missing = [k for k in required if k not in d]
    if missing:
        raise ValueError(f"invalid mlp state: {where} lacks the field {missing[0]!r}")
    unknown = [k for k in d if k not in required and k not in optional]
    if unknown:
        raise ValueError(f"invalid mlp state: {where} has an unknown field {unknown[0]!r}")
    return d


def _check_float_list(value, where: str, allow_none: bool = False) -> list:
    if not isinstance(value, list):
        _fail(where, "a list of numbers", value)
    for i, v in enumerate(value):
        if not (v is None and allow_none):
            _check_float(v, f"{where}[{i}]")
    return [None if v is None else float(v) for v in value]


def _check_history(value, where: str) -> dict:
    _check_dict(value, where)
    return {_check_str(k, where): _check_float_list(v, f"{where}.{k}", allow_none=True)
            for k, v in value.items()}


def _check_optional_float(value, where: str):
    return None if value is None else _check_float(value, where)


# ------------------------------------------------------------------------------------------------
# Arrays: declared in meta['arrays'], checked against what the architecture needs
# ------------------------------------------------------------------------------------------------
Fetch = Callable[[str, str, tuple], np.ndarray]


def _declare(arrays: dict, name: str, arr: np.ndarray) -> None:
    arrays[name] = np.ascontiguousarray(arr)


def _array_table(arrays: dict) -> dict:
    return {name: {"dtype": _LITTLE[a.dtype.name], "shape": list(a.shape)}
            for name, a in arrays.items()}


def _fetch(meta: dict, fetch: Fetch, name: str, dtype: str, shape: tuple) -> np.ndarray:
    """The array `name`, after checking that meta.json declares exactly what the architecture
    needs; `fetch` then checks the stored bytes against the same size before reading them."""
    table = meta["arrays"]
    declared = table.get(name)
    if declared is None:
        raise ValueError(f"invalid mlp state: the array {name!r} is missing from meta.json's "
                         f"'arrays' table")
    expected = {"dtype": _LITTLE[dtype], "shape": list(shape)}
    if declared != expected:
        raise ValueError(f"invalid mlp state: the array {name!r} is declared as {declared!r}, "
                         f"but the architecture needs {expected!r}")
    arr = fetch(name, _LITTLE[dtype], tuple(shape))
    # Owned, native-endian, writable: the caller may keep it (a Dense layer's weights).
    return np.array(arr, dtype=np.dtype(dtype), order="C")


def dict_fetcher(arrays) -> Fetch:
    """A `Fetch` over arrays already in memory (the pickle path)."""
    if not isinstance(arrays, dict):
        raise ValueError("invalid mlp state: the arrays must be a dict")

    def fetch(name: str, dtype: str, shape: tuple) -> np.ndarray:
        arr = arrays.get(name)
        if not isinstance(arr, np.ndarray):
            raise ValueError(f"invalid mlp state: the array {name!r} is missing")
        if arr.dtype != np.dtype(dtype) or arr.shape != shape:
            raise ValueError(f"invalid mlp state: the array {name!r} has dtype {arr.dtype} and "
                             f"shape {arr.shape}, expected {np.dtype(dtype)} {shape}")
        return arr

    return fetch


def _check_sizes(value, where: str) -> list:
    if not isinstance(value, list) or not 2 <= len(value) <= _MAX_LAYERS + 1:
        _fail(where, f"a list of 2 to {_MAX_LAYERS + 1} layer widths", value)
    return [_check_int(s, f"{where}[{i}]", 1, _MAX_WIDTH) for i, s in enumerate(value)]


# ------------------------------------------------------------------------------------------------
# The header shared by every kind
# ------------------------------------------------------------------------------------------------
KINDS = ("Model", "MLPClassifier", "MLPRegressor")


def _header(kind: str, dtype) -> dict:
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind,
            "mlp_version": __version__, "dtype": dtype}


def check_header(meta) -> dict:
    """Check the format name and version first, so an old mlp explains a newer file clearly."""
    if not isinstance(meta, dict):
        _fail("meta.json", "a JSON object", type(meta).__name__)
    if meta.get("format") != FORMAT:
        raise ValueError(f"not an mlp model: meta.json has format {meta.get('format')!r}, "
                         f"expected {FORMAT!r}")
    version = meta.get("format_version")
    if type(version) is not int or version < 1:
        _fail("format_version", "a positive integer", version)
    if version > FORMAT_VERSION:
        raise ValueError(
            f"this model file has format version {version}, written by a newer mlp "
            f"({meta.get('mlp_version', 'unknown version')!s:.40}); this mlp {__version__} reads "
            f"format version {FORMAT_VERSION} and older. Upgrade mlp to load it: "
            f"pip install --upgrade mlp")
    _check_keys(meta, "meta.json",
                required=("format", "format_version", "kind", "dtype", "architecture",
                          "hyperparameters", "fitted", "optimizer", "arrays"),
                optional=("mlp_version",))
    _check_choice(meta["kind"], "kind", KINDS)
    if meta["dtype"] is not None:
        _check_choice(meta["dtype"], "dtype", ("float32", "float64"))
    table = _check_dict(meta["arrays"], "arrays")
    for name, spec in table.items():
        _check_keys(spec, f"arrays.{name}", required=("dtype", "shape"))
    return meta


# ------------------------------------------------------------------------------------------------
# Entry points
# ------------------------------------------------------------------------------------------------
def get_state(obj) -> State:
    """Describe a Model, MLPClassifier or MLPRegressor as plain data.

    Raises
    ------
    TypeError
        If `obj` is none of those, or holds a user's own layer, activation or optimizer.
    """
    from .model import Model

    if isinstance(obj, Model):
        return _model_state(obj)
    est_kind = _estimator_kind(obj)
    if est_kind is not None:
        return _estimator_state(obj, est_kind)
    raise TypeError(f"expected an mlp Model, MLPClassifier or MLPRegressor, got "
                    f"{type(obj).__name__}")


def restore(meta, fetch: Fetch, cls=None, *, check_params: bool = True):
    """Rebuild the object `meta` describes; `fetch(name, dtype, shape)` supplies the arrays.

    Parameters
    ----------
    meta : dict
        Untrusted: every field is checked.
    fetch : callable
        Returns the named array; it must check the stored size against ``shape`` before
        allocating anything.
    cls : type, optional
        The class to build (a subclass when unpickling one); by default the one `meta` names.
    check_params : bool, default=True
        Validate an estimator's hyperparameters now. Unpickling passes False: an estimator may
        hold parameters that only its next ``fit`` rejects, and pickling must not change when
        that error comes (GridSearchCV scores such a candidate with ``error_score``).

    Raises
    ------
    ValueError
        If anything is missing, malformed or inconsistent with the architecture.
    """
    meta = check_header(meta)
    kind = meta["kind"]
    used = set()

    def recording_fetch(name, dtype, shape):
        used.add(name)
        return fetch(name, dtype, shape)

    if kind == "Model":
        from .model import Model

        obj = _restore_model(meta, recording_fetch, cls or Model)
    else:
        from . import sklearn as _sk

        base = getattr(_sk, kind)
        if cls is not None and not issubclass(cls, base):
            raise ValueError(f"invalid mlp state: it describes a {kind}, not a {cls.__name__}")
        obj = _restore_estimator(meta, recording_fetch, cls or base, check_params)
    unused = sorted(set(meta["arrays"]) - used)
    if unused:
        raise ValueError(f"invalid mlp state: the 'arrays' table declares {unused[0]!r}, which "
                         f"the architecture has no use for")
    return obj


# ------------------------------------------------------------------------------------------------
# scikit-learn estimators
# ------------------------------------------------------------------------------------------------
def _estimator_kind(obj):
    try:
        from .sklearn import MLPClassifier, MLPRegressor
    except ImportError:  # scikit-learn missing: no estimator can exist either
        return None
    for cls in (MLPClassifier, MLPRegressor):
        if isinstance(obj, cls):
            return cls.__name__
    return None


# Fitted attributes that are plain data, with the check each gets when read back. classes_,
# feature_names_in_, _label_binarizer and the weights are handled on their own.
_FITTED_PLAIN = {
    "n_features_in_": lambda v, w: _check_int(v, w, 1, _MAX_WIDTH),
    "n_outputs_": lambda v, w: _check_int(v, w, 1, _MAX_WIDTH),
    "n_layers_": lambda v, w: _check_int(v, w, 2, _MAX_LAYERS + 1),
    "out_activation_": lambda v, w: _check_choice(v, w, ("identity", "exp", "logistic", "softmax")),
    "_multilabel": _check_bool,
    "t_": lambda v, w: _check_int(v, w, 0),
    "n_iter_": lambda v, w: _check_int(v, w, 0),
    "loss_": _check_float,
    "loss_curve_": _check_float_list,
    "best_loss_": _check_optional_float,
    "validation_scores_": lambda v, w: None if v is None else _check_float_list(v, w, True),
    "best_validation_score_": _check_optional_float,
    "_no_improvement_count": lambda v, w: _check_int(v, w, 0),
    "history_": _check_history,
    "_optimizer_ready": _check_bool,
    "_lr": _check_float,
    "_device": _check_str,
    "_last_logs": lambda v, w: {_check_str(k, w): _check_optional_float(x, f"{w}.{k}")
                                for k, x in _check_dict(v, w).items()},
    "_random_state": lambda v, w: v if isinstance(v, np.random.RandomState) else _fail(
        w, "a {'$random_state': ...} tag", v),
}
_FITTED_OTHER = ("classes_", "feature_names_in_", "_label_binarizer", "_random_state_is_param")
# Attributes rebuilt from the rest (or transient), so neither stored nor carried on.
_ESTIMATOR_DERIVED = {"_net", "_views", "coefs_", "intercepts_", "_dtype", "_opt_state",
                      "_sklearn_version"}

_LOSS_NAMES = {_core.Loss.MSE: "squared_error", _core.Loss.POISSON: "poisson",
               _core.Loss.CATEGORICAL_CROSS_ENTROPY: "log_loss",
               _core.Loss.BINARY_CROSS_ENTROPY: "log_loss"}


def _encode_classes(classes: np.ndarray) -> dict:
    kind = classes.dtype.kind
    if kind in "biuf":
        return {"dtype": classes.dtype.name, "values": encode(classes.tolist())}
    if kind == "U":
        return {"dtype": classes.dtype.str, "values": classes.tolist()}
    if kind == "O" and all(isinstance(c, (str, bool, int, float, np.generic)) for c in classes):
        return {"dtype": "object", "values": encode(classes.tolist())}
    raise UnsupportedError(f"classes_ of dtype {classes.dtype} cannot be saved: labels must be "
                           f"numbers, booleans or strings")


def _decode_classes(value, where: str) -> np.ndarray:
    _check_keys(value, where, required=("dtype", "values"))
    dtype, values = value["dtype"], decode(value["values"], f"{where}.values")
    if not isinstance(values, list) or not values:
        _fail(f"{where}.values", "a non-empty list", values)
    if dtype in _NUMERIC_DTYPES:
        if not all(type(v) in (bool, int, float) for v in values):
            _fail(f"{where}.values", f"numbers for dtype {dtype}", values)
        try:
            return np.array(values, dtype=dtype)
        except (OverflowError, ValueError):
            _fail(f"{where}.values", f"numbers that fit {dtype}", values)
    if dtype == "object":
        if not all(type(v) in (str, bool, int, float) for v in values):
            _fail(f"{where}.values", "strings or numbers", values)
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out
    match = re.fullmatch(r"[<>|=]?U(\d{1,6})", dtype) if isinstance(dtype, str) else None
    if match is None:
        _fail(f"{where}.dtype", "a numeric dtype name, 'object' or a unicode dtype such as '<U5'",
              dtype)
    if not all(isinstance(v, str) and len(v) <= int(match.group(1)) for v in values):
        _fail(f"{where}.values", f"strings of at most {match.group(1)} characters", values)
    return np.array(values, dtype=dtype)


def _estimator_state(est, kind: str) -> State:
    params = est.get_params(deep=False)
    hyper, objects, dropped = {}, {}, []
    for name, value in params.items():
        try:
            if name == "callbacks" and value is not None:
                raise _Unencodable("callbacks")
            hyper[name] = encode(value)
        except _Unencodable:
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
        hidden_acts = est._hidden_activations(len(sizes) - 2)
        out_kind, loss_kind, _ = est._output_spec(sizes[-1])
        architecture = {"sizes": sizes,
                        "activations": [activation_name(k) for _, k, _ in hidden_acts]
                        + [activation_name(out_kind)],
                        "alphas": [float(a) for _, _, a in hidden_acts] + [0.0],
                        "loss": _LOSS_NAMES[loss_kind]}
        fitted = {}
        for name in _FITTED_PLAIN:
            if name in d:
                try:
                    fitted[name] = encode(d[name])
                except _Unencodable:  # a RandomState over PCG64: a file re-seeds the next fit
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
            _declare(arrays, f"coefs/{i}", np.array(net.weight(i)))
            _declare(arrays, f"intercepts/{i}", np.array(net.bias(i)))
        if d.get("_optimizer_ready"):
            buffers = net.optimizer_state()
            optimizer = {"kind": "adam" if est.solver == "adam" else "sgd",
                         "settings": _estimator_optimizer_settings(est), "step": int(net.step),
                         "n_arrays": len(buffers)}
            for j, buf in enumerate(buffers):
                _declare(arrays, f"optimizer/{j}", buf)
    for name, value in d.items():
        if (name not in params and name not in _FITTED_PLAIN and name not in _FITTED_OTHER
                and name not in _ESTIMATOR_DERIVED):
            objects[name] = value
    meta = {**_header(kind, dtype), "architecture": architecture, "hyperparameters": hyper,
            "fitted": fitted, "optimizer": optimizer, "arrays": _array_table(arrays)}
    return State(meta, arrays, objects, dropped)


def _restore_estimator(meta: dict, fetch: Fetch, cls, check_params: bool = True):
    from sklearn.base import is_classifier

    hyper = _check_dict(meta["hyperparameters"], "hyperparameters")
    names = cls._get_param_names()
    unknown = [k for k in hyper if k not in names]
    if unknown:
        raise ValueError(f"invalid mlp state: hyperparameters has an unknown parameter "
                         f"{unknown[0]!r} for {cls.__name__}")
    params = {k: decode(v, f"hyperparameters.{k}") for k, v in hyper.items()}
    try:
        est = cls(**params)
        if check_params:
            est._validate_params()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"invalid mlp state: hyperparameters: {exc}") from None
    fitted = meta["fitted"]
    if fitted is None:
        return est

    _check_keys(fitted, "fitted", required=("n_features_in_", "n_outputs_", "n_layers_",
                                            "out_activation_"),
                optional=tuple(_FITTED_PLAIN) + _FITTED_OTHER)
    dtype = _check_choice(meta["dtype"], "dtype", ("float32", "float64"))
    values = {name: check(decode(fitted[name], f"fitted.{name}"), f"fitted.{name}")
              for name, check in _FITTED_PLAIN.items() if name in fitted}
    n_features, n_outputs = values["n_features_in_"], values["n_outputs_"]

    arch = _check_keys(meta["architecture"], "architecture",
                       required=("sizes", "activations", "alphas", "loss"))
    sizes = _check_sizes(arch["sizes"], "architecture.sizes")
    try:
        hidden = est._hidden_sizes()
        hidden_acts = est._hidden_activations(len(hidden))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"invalid mlp state: hyperparameters: {exc}") from None
    expected_sizes = [n_features] + hidden + [n_outputs]
    if sizes != expected_sizes or values["n_layers_"] != len(sizes):
        raise ValueError(f"invalid mlp state: architecture.sizes {sizes} (n_layers_ "
                         f"{values['n_layers_']}) does not match the hyperparameters and fitted "
                         f"attributes, which give {expected_sizes}")

    if is_classifier(est):
        _restore_labels(est, fitted, values, n_outputs)
    elif any(k in fitted for k in ("classes_", "_label_binarizer")):
        raise ValueError("invalid mlp state: a regressor has no classes_")
    out_kind, loss_kind, _ = est._output_spec(n_outputs)  # sets out_activation_
    names = [activation_name(k) for _, k, _ in hidden_acts] + [activation_name(out_kind)]
    if (arch["activations"] != names or arch["loss"] != _LOSS_NAMES[loss_kind]
            or values["out_activation_"] != est.out_activation_):
        raise ValueError(f"invalid mlp state: architecture activations {arch['activations']!r} / "
                         f"loss {arch['loss']!r} / out_activation_ "
                         f"{values['out_activation_']!r} do not match the hyperparameters, which "
                         f"give {names!r} / {_LOSS_NAMES[loss_kind]!r} / {est.out_activation_!r}")
    alphas = arch["alphas"]
    if alphas != [float(a) for _, _, a in hidden_acts] + [0.0]:
        _fail("architecture.alphas", "the activations' parameters", alphas)

    # Read (and size-check) every array before the network allocates anything.
    coefs = [_fetch(meta, fetch, f"coefs/{i}", dtype, (sizes[i], sizes[i + 1]))
             for i in range(len(sizes) - 1)]
    intercepts = [_fetch(meta, fetch, f"intercepts/{i}", dtype, (sizes[i + 1],))
                  for i in range(len(sizes) - 1)]
    for name, value in values.items():
        if name != "out_activation_":
            setattr(est, name, value)
    if "feature_names_in_" in fitted:
        feature_names = fitted["feature_names_in_"]
        if (not isinstance(feature_names, list) or len(feature_names) != n_features
                or not all(isinstance(n, str) for n in feature_names)):
            _fail("fitted.feature_names_in_", f"{n_features} strings", feature_names)
        est.feature_names_in_ = np.array(feature_names, dtype=object)
    if "_random_state" in values and fitted.get("_random_state_is_param") is True \
            and isinstance(est.random_state, np.random.RandomState):
        est.random_state = est._random_state  # one generator, as before saving

    try:
        est._net, _, _ = est._build_network(n_features, n_outputs, dtype)
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
    from sklearn.preprocessing import LabelBinarizer

    classes = _decode_classes(fitted["classes_"], "fitted.classes_")
    lb_spec = _check_keys(fitted["_label_binarizer"], "fitted._label_binarizer",
                          required=("y_type", "sparse_input"))
    y_type = _check_choice(lb_spec["y_type"], "fitted._label_binarizer.y_type",
                           ("binary", "multiclass", "multilabel-indicator"))
    multilabel = values["_multilabel"]
    if multilabel != (y_type == "multilabel-indicator"):
        _fail("fitted._multilabel", f"{y_type == 'multilabel-indicator'} for y_type {y_type!r}",
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
    lb.sparse_input_ = _check_bool(lb_spec["sparse_input"], "fitted._label_binarizer.sparse_input")
    est.classes_ = classes
    est._label_binarizer = lb
    est._multilabel = multilabel


def _estimator_optimizer_settings(est) -> dict:
    """What _configure_optimizer hands the network, for readers of the file (and a check)."""
    if est.solver == "adam":
        return {"beta_1": float(est.beta_1), "beta_2": float(est.beta_2),
                "epsilon": float(est.epsilon)}
    return {"momentum": float(est.momentum),
            "nesterov": bool(est.nesterovs_momentum) and est.momentum > 0}


def _restore_estimator_optimizer(est, meta: dict, fetch: Fetch, dtype: str, values: dict) -> None:
    spec = meta["optimizer"]
    if spec is None:
        est._optimizer_ready = False
        return
    _check_keys(spec, "optimizer", required=("kind", "settings", "step", "n_arrays"))
    kind = _check_choice(spec["kind"], "optimizer.kind", ("adam", "sgd"))
    if kind != ("adam" if est.solver == "adam" else "sgd") or est.solver == "lbfgs":
        raise ValueError(f"invalid mlp state: optimizer {kind!r} does not match solver "
                         f"{est.solver!r}")
    expected_settings = _estimator_optimizer_settings(est)
    if spec["settings"] != expected_settings:
        _fail("optimizer.settings", f"{expected_settings!r}, as the hyperparameters give",
              spec["settings"])
    step = _check_int(spec["step"], "optimizer.step", 0, 2**62)
    est._configure_optimizer()
    n_params = est._net.n_params
    expected = len(est._net.optimizer_state())
    if spec["n_arrays"] != expected:
        _fail("optimizer.n_arrays", f"{expected} for these optimizer settings", spec["n_arrays"])
    buffers = [_fetch(meta, fetch, f"optimizer/{j}", dtype, (n_params,)) for j in range(expected)]
    est._net.set_optimizer_state(buffers, step)
    if "_lr" in values:
        est._lr = values["_lr"]  # _configure_optimizer reset it to learning_rate_init


# ------------------------------------------------------------------------------------------------
# Model
# ------------------------------------------------------------------------------------------------
def _builtin_activation_classes() -> dict:
    from . import layers

    return {cls.__name__: cls for cls in (layers.Activation, layers.ReLU, layers.Sigmoid,
                                          layers.Softmax, layers.Tanh, layers.Linear,
                                          layers.LeakyReLU, layers.ELU, layers.Swish)}


def _activation_spec(act, where: str) -> dict:
    classes = _builtin_activation_classes()
    if type(act).__name__ not in classes or classes[type(act).__name__] is not type(act) \
            or not act.is_builtin:
        raise UnsupportedError(f"{where} is a {type(act).__name__}, a user's own activation; only "
                               f"the built-in activations can be saved")
    return {"class": type(act).__name__, "name": act.name, "alpha": float(act.alpha)}


def _make_activation(spec, where: str):
    _check_keys(spec, where, required=("class", "name", "alpha"))
    classes = _builtin_activation_classes()
    cls_name = _check_choice(spec["class"], f"{where}.class", tuple(classes))
    name = _check_str(spec["name"], f"{where}.name")
    alpha = _check_float(spec["alpha"], f"{where}.alpha")
    try:
        kind, default_alpha = get_activation(name, f"{where}.name")
        has_alpha = kind in (_core.Activation.LEAKY_RELU, _core.Activation.ELU)
        cls = classes[cls_name]
        if cls_name == "Activation":
            act = cls(name, alpha if has_alpha else None)
        elif cls_name in ("LeakyReLU", "ELU"):
            act = cls(alpha)
        else:
            act = cls()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"invalid mlp state: {where}: {exc}") from None
    if act.name != name or act.alpha != (alpha if has_alpha else default_alpha):
        _fail(where, f"a consistent {cls_name} (name {act.name!r}, alpha {act.alpha!r})", spec)
    return act


def _optimizer_classes() -> dict:
    from .optimizers import SGD, Adam, Momentum

    return {"SGD": SGD, "Momentum": Momentum, "Adam": Adam}


def _model_state(model) -> State:
    from .layers import Dense

    classes = _builtin_activation_classes()
    layers, arrays = [], {}
    dtype = None
    for i, layer in enumerate(model.layers):
        where = f"layer {i} ({type(layer).__name__})"
        if type(layer) is Dense:
            layers.append({"type": "Dense", "output_size": layer.output_size,
                           "input_size": layer.input_size,
                           "activation": _activation_spec(layer.activation,
                                                          f"the activation of {where}"),
                           "seed": layer.seed})
            dtype = dtype or layer.weights.dtype.name
            _declare(arrays, f"layers/{i}/weights", np.array(layer.weights, dtype=dtype))
            _declare(arrays, f"layers/{i}/bias", np.array(layer.bias, dtype=dtype))
        elif classes.get(type(layer).__name__) is type(layer):
            layers.append({"type": "Activation", **_activation_spec(layer, where)})
        else:
            raise UnsupportedError(f"{where} is a user's own layer; only Dense and the built-in "
                                   f"activations can be saved")
    dtype = dtype or "float32"
    compiled = optimizer = None
    if model.loss is not None:
        opt = model.optimizer
        opt_classes = _optimizer_classes()
        if opt_classes.get(type(opt).__name__) is not type(opt):
            raise UnsupportedError(f"the optimizer is a {type(opt).__name__}, a user's own; only "
                                   f"SGD, Momentum and Adam can be saved")
        dtype = model.dtype.name
        compiled = {"loss": model.loss.name, "metrics": list(model.metrics), "native": model.native}
        optimizer = {"class": type(opt).__name__, "settings": encode(opt._params())}
        if model.native:
            buffers = model._net.optimizer_state()
            optimizer.update(step=int(model._net.step), n_arrays=len(buffers))
            for j, buf in enumerate(buffers):
                _declare(arrays, f"optimizer/{j}", buf)
        else:
            # The Python path keys its buffers by id(param); they are stored by layer instead.
            entries = []
            for i, layer in enumerate(model.layers):
                if type(layer) is Dense:
                    for part in ("weights", "bias"):
                        buffers = opt._state.get(id(getattr(layer, part)))
                        if buffers is not None:
                            entries.append([i, part])
                            for j, buf in enumerate(buffers):
                                _declare(arrays, f"optimizer/{i}/{part}/{j}", buf)
            optimizer.update(step=int(opt._t), python_path=entries)
    fitted = {"history": encode(model.history)}
    known = {"layers", "inputs", "outputs", "input_size", "output_size", "loss", "optimizer",
             "metrics", "dtype", "history", "_net", "_trainer"}
    objects = {k: v for k, v in model.__dict__.items() if k not in known}
    meta = {**_header("Model", dtype),
            "architecture": {"layers": layers},
            "hyperparameters": compiled, "fitted": fitted, "optimizer": optimizer,
            "arrays": _array_table(arrays)}
    return State(meta, arrays, objects, [])


def _restore_model(meta: dict, fetch: Fetch, cls):
    from .layers import Dense

    dtype = _check_choice(meta["dtype"], "dtype", ("float32", "float64"))
    arch = _check_keys(meta["architecture"], "architecture", required=("layers",))
    specs = arch["layers"]
    if not isinstance(specs, list) or not 1 <= len(specs) <= 2 * _MAX_LAYERS:
        _fail("architecture.layers", f"a list of 1 to {2 * _MAX_LAYERS} layers", specs,
              show=False)
    layers = []
    prev = None
    for i, spec in enumerate(specs):
        where = f"architecture.layers[{i}]"
        _check_dict(spec, where)
        if spec.get("type") == "Dense":
            _check_keys(spec, where, required=("type", "output_size", "input_size", "activation",
                                               "seed"))
            out = _check_int(spec["output_size"], f"{where}.output_size", 1, _MAX_WIDTH)
            inp = _check_int(spec["input_size"], f"{where}.input_size", 1, _MAX_WIDTH)
            seed = spec["seed"]
            if seed is not None:
                _check_int(seed, f"{where}.seed", 0, 2**63 - 1)
            act = _make_activation(spec["activation"], f"{where}.activation")
            weights = _fetch(meta, fetch, f"layers/{i}/weights", dtype, (inp, out))
            bias = _fetch(meta, fetch, f"layers/{i}/bias", dtype, (out,))
            # Built without input_size so that no initial weights are drawn (nor numpy's global
            # random state touched); the stored ones are put in place directly.
            layer = Dense(out, activation=act)
            layer.input_size, layer.seed = inp, seed
            layer._weights, layer._bias = weights, bias
        elif spec.get("type") == "Activation":
            _check_keys(spec, where, required=("type", "class", "name", "alpha"))
            layer = _make_activation({k: spec[k] for k in ("class", "name", "alpha")}, where)
        else:
            _fail(f"{where}.type", "'Dense' or 'Activation'", spec.get("type"))
        if prev is not None:
            try:
                layer(prev)  # checks that the widths chain
            except ValueError as exc:
                raise ValueError(f"invalid mlp state: {where}: {exc}") from None
        layers.append(layer)
        prev = layer
    try:
        model = cls(layers[0], layers[-1])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"invalid mlp state: architecture: {exc}") from None

    fitted = _check_keys(meta["fitted"], "fitted", required=("history",))
    history = _check_history(decode(fitted["history"], "fitted.history"), "fitted.history")
    compiled = meta["hyperparameters"]
    if compiled is not None:
        _compile_restored(model, meta, compiled, dtype, fetch)
    elif meta["optimizer"] is not None:
        raise ValueError("invalid mlp state: an optimizer without a compiled model")
    model.history = history
    return model


def _compile_restored(model, meta: dict, compiled, dtype: str, fetch: Fetch) -> None:
    from .layers import Dense

    _check_keys(compiled, "hyperparameters", required=("loss", "metrics", "native"))
    spec = _check_keys(meta["optimizer"], "optimizer", required=("class", "settings", "step"),
                       optional=("n_arrays", "python_path"))
    opt_classes = _optimizer_classes()
    opt_cls = opt_classes[_check_choice(spec["class"], "optimizer.class", tuple(opt_classes))]
    settings = _check_dict(decode(spec["settings"], "optimizer.settings"), "optimizer.settings")
    try:
        optimizer = opt_cls(**settings)
        model.compile(_check_str(compiled["loss"], "hyperparameters.loss"), optimizer=optimizer,
                      metrics=compiled["metrics"], dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"invalid mlp state: the compiled settings: {exc}") from None
    if model.native != _check_bool(compiled["native"], "hyperparameters.native"):
        raise ValueError("invalid mlp state: hyperparameters.native does not match the layers")
    step = _check_int(spec["step"], "optimizer.step", 0, 2**62)
    if model.native:
        net = model._net
        expected = len(net.optimizer_state())
        if spec.get("n_arrays") != expected:
            _fail("optimizer.n_arrays", f"{expected} for these optimizer settings",
                  spec.get("n_arrays"))
        buffers = [_fetch(meta, fetch, f"optimizer/{j}", dtype, (net.n_params,))
                   for j in range(expected)]
        net.set_optimizer_state(buffers, step)
        return
    entries = spec.get("python_path")
    if not isinstance(entries, list):
        _fail("optimizer.python_path", "a list of [layer, 'weights' | 'bias']", entries)
    for k, entry in enumerate(entries):
        where = f"optimizer.python_path[{k}]"
        if not isinstance(entry, list) or len(entry) != 2:
            _fail(where, "[layer index, 'weights' | 'bias']", entry)
        i = _check_int(entry[0], f"{where}[0]", 0, len(model.layers) - 1)
        part = _check_choice(entry[1], f"{where}[1]", ("weights", "bias"))
        layer = model.layers[i]
        if type(layer) is not Dense:
            _fail(where, "the index of a Dense layer", entry)
        param = getattr(layer, part)
        model.optimizer._state[id(param)] = [
            _fetch(meta, fetch, f"optimizer/{i}/{part}/{j}", dtype, param.shape) for j in range(2)]
    model.optimizer._t = step
