"""The state of a persistable object as plain data, and the checks that read it back.

One description serves both ways a model leaves the process: `mlp.io` writes it as
``meta.json`` plus raw little-endian arrays inside a zip file, and pickling (joblib,
GridSearchCV workers, dask) carries the same dict and arrays. Both come back through `restore`,
one validating path, so a pickle and a file are checked alike. Nothing here needs pickle: every
value is JSON (with a few tagged forms for tuples, non-finite floats, non-string dict keys and
RandomState) or an array of float32/float64 whose shape the architecture dictates before it is
read.

This module imports no class that it stores. Each persistable class writes and reads its own
part (``_to_state`` / ``_from_state``) and registers itself under its ``meta["kind"]`` with
`register`; `restore` finds it there.
"""
from __future__ import annotations

import math
import numbers
from typing import Callable, NamedTuple

import numpy as np

from ._limits import MAX_LAYERS, MAX_WIDTH
from ._version import __version__

FORMAT = "mlp"
FORMAT_VERSION = 1

# The kinds of object a file can hold; each class registers itself (see `register`).
KINDS = ("Model", "MLPClassifier", "MLPRegressor", "TabularClassifier", "TabularRegressor")

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
class Unencodable(Exception):
    pass


def encode(value):
    """Turn plain data into JSON-able values; raise Unencodable for anything else.

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
            raise Unencodable("a RandomState over a bit generator other than MT19937")
        return {"$random_state": {"keys": state["state"]["key"].tolist(),
                                  "pos": int(state["state"]["pos"]),
                                  "has_gauss": int(state["has_gauss"]),
                                  "cached_gaussian": encode(float(state["gauss"]))}}
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf" and value.ndim == 1:
        return {"$array": {"dtype": value.dtype.name, "values": encode(value.tolist())}}
    raise Unencodable(type(value).__name__)


def fail(where: str, expected: str, got=None, *, show=True):
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
            fail(where, "a finite number or a {'$float': ...} tag", value)
        return value
    if isinstance(value, list):
        return [decode(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, dict):
        fail(where, "JSON data", value)
    if len(value) == 1:
        (tag, body), = value.items()
        if tag.startswith("$"):
            return _decode_tag(tag, body, f"{where}.{tag}")
    for key in value:
        if key.startswith("$"):
            fail(where, "an object without '$' keys outside a one-key tag", key)
    return {k: decode(v, f"{where}.{k}") for k, v in value.items()}


def _decode_tag(tag: str, body, where: str):
    if tag == "$float":
        if body not in ("nan", "inf", "-inf"):
            fail(where, "'nan', 'inf' or '-inf'", body)
        return float(body)
    if tag == "$tuple":
        if not isinstance(body, list):
            fail(where, "a list", body)
        return tuple(decode(body, where))
    if tag == "$dict":
        if not isinstance(body, list) or not all(isinstance(p, list) and len(p) == 2 for p in body):
            fail(where, "a list of [key, value] pairs", body)
        out = {}
        for i, (k, v) in enumerate(body):
            k = decode(k, f"{where}[{i}][0]")
            if isinstance(k, (list, dict)):
                fail(f"{where}[{i}][0]", "a hashable key", k)
            out[k] = decode(v, f"{where}[{i}][1]")
        return out
    if tag == "$random_state":
        return _decode_random_state(body, where)
    if tag == "$array":
        if not isinstance(body, dict) or set(body) != {"dtype", "values"}:
            fail(where, "{'dtype': ..., 'values': [...]}", body)
        dtype = check_choice(body["dtype"], f"{where}.dtype", NUMERIC_DTYPES)
        values = decode(body["values"], f"{where}.values")
        if not isinstance(values, list) or not all(
                isinstance(v, (bool, int, float)) for v in values):
            fail(f"{where}.values", "a flat list of numbers", values)
        try:
            return np.array(values, dtype=dtype)
        except (OverflowError, ValueError):
            fail(f"{where}.values", f"numbers that fit {dtype}", values)
    fail(where, "a known tag ($float, $tuple, $dict, $random_state, $array)", tag)


NUMERIC_DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                  "uint64", "float32", "float64")


def _decode_random_state(body, where: str) -> np.random.RandomState:
    if not isinstance(body, dict) or set(body) != {"keys", "pos", "has_gauss", "cached_gaussian"}:
        fail(where, "{'keys', 'pos', 'has_gauss', 'cached_gaussian'}", body)
    keys = body["keys"]
    if (not isinstance(keys, list) or len(keys) != 624
            or not all(type(k) is int and 0 <= k < 2**32 for k in keys)):
        fail(f"{where}.keys", "624 integers in [0, 2**32)", keys, show=False)
    pos = check_int(body["pos"], f"{where}.pos", 0, 624)
    has_gauss = check_int(body["has_gauss"], f"{where}.has_gauss", 0, 1)
    gauss = check_float(decode(body["cached_gaussian"], where), f"{where}.cached_gaussian")
    rs = np.random.RandomState()
    rs.set_state(("MT19937", np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
    return rs


# -- typed field checks (untrusted values) --------------------------------------------------------
def check_int(value, where: str, lo: int | None = None, hi: int | None = None) -> int:
    if type(value) is not int or (lo is not None and value < lo) or (hi is not None and value > hi):
        span = f" in [{lo}, {hi}]" if hi is not None else f" >= {lo}" if lo is not None else ""
        fail(where, f"an integer{span}", value)
    return value


def check_float(value, where: str) -> float:
    if type(value) not in (int, float):
        fail(where, "a number", value)
    return float(value)


def check_bool(value, where: str) -> bool:
    if type(value) is not bool:
        fail(where, "true or false", value)
    return value


def check_str(value, where: str) -> str:
    if not isinstance(value, str):
        fail(where, "a string", value)
    return value


def check_choice(value, where: str, choices) -> str:
    if value not in choices:
        fail(where, "one of " + ", ".join(repr(c) for c in choices), value)
    return value


def check_dict(value, where: str) -> dict:
    if not isinstance(value, dict):
        fail(where, "an object", value)
    return value


def check_keys(d: dict, where: str, required=(), optional=()) -> dict:
    check_dict(d, where)
    missing = [k for k in required if k not in d]
    if missing:
        raise ValueError(f"invalid mlp state: {where} lacks the field {missing[0]!r}")
    unknown = [k for k in d if k not in required and k not in optional]
    if unknown:
        raise ValueError(f"invalid mlp state: {where} has an unknown field {unknown[0]!r}")
    return d


def check_float_list(value, where: str, allow_none: bool = False) -> list:
    if not isinstance(value, list):
        fail(where, "a list of numbers", value)
    for i, v in enumerate(value):
        if not (v is None and allow_none):
            check_float(v, f"{where}[{i}]")
    return [None if v is None else float(v) for v in value]


def check_history(value, where: str) -> dict:
    check_dict(value, where)
    return {check_str(k, where): check_float_list(v, f"{where}.{k}", allow_none=True)
            for k, v in value.items()}


def check_optional_float(value, where: str):
    return None if value is None else check_float(value, where)


# ------------------------------------------------------------------------------------------------
# Arrays: declared in meta['arrays'], checked against what the architecture needs
# ------------------------------------------------------------------------------------------------
Fetch = Callable[[str, str, tuple], np.ndarray]


def declare(arrays: dict, name: str, arr: np.ndarray) -> None:
    arrays[name] = np.ascontiguousarray(arr)


def array_table(arrays: dict) -> dict:
    return {name: {"dtype": _LITTLE[a.dtype.name], "shape": list(a.shape)}
            for name, a in arrays.items()}


def fetch_array(meta: dict, fetch: Fetch, name: str, dtype: str, shape: tuple) -> np.ndarray:
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


def check_sizes(value, where: str) -> list:
    if not isinstance(value, list) or not 2 <= len(value) <= MAX_LAYERS + 1:
        fail(where, f"a list of 2 to {MAX_LAYERS + 1} layer widths", value)
    return [check_int(s, f"{where}[{i}]", 1, MAX_WIDTH) for i, s in enumerate(value)]


def header(kind: str, dtype) -> dict:
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind,
            "mlp_version": __version__, "dtype": dtype}


def check_header(meta) -> dict:
    """Check the format name and version first, so an old mlp explains a newer file clearly."""
    if not isinstance(meta, dict):
        fail("meta.json", "a JSON object", type(meta).__name__)
    if meta.get("format") != FORMAT:
        raise ValueError(f"not an mlp model: meta.json has format {meta.get('format')!r}, "
                         f"expected {FORMAT!r}")
    version = meta.get("format_version")
    if type(version) is not int or version < 1:
        fail("format_version", "a positive integer", version)
    if version > FORMAT_VERSION:
        raise ValueError(
            f"this model file has format version {version}, written by a newer mlp "
            f"({meta.get('mlp_version', 'unknown version')!s:.40}); this mlp {__version__} reads "
            f"format version {FORMAT_VERSION} and older. Upgrade mlp to load it: "
            f"pip install --upgrade mlp")
    check_keys(meta, "meta.json",
               required=("format", "format_version", "kind", "dtype", "architecture",
                         "hyperparameters", "fitted", "optimizer", "arrays"),
               optional=("mlp_version",))
    if "mlp_version" in meta:
        check_str(meta["mlp_version"], "mlp_version")
    check_choice(meta["kind"], "kind", KINDS)
    if meta["kind"] not in _KINDS:
        raise ValueError(f"this file holds an {meta['kind']}, which needs scikit-learn: "
                         f'pip install "mlp[sklearn]"')
    if meta["dtype"] is not None:
        check_choice(meta["dtype"], "dtype", ("float32", "float64"))
    table = check_dict(meta["arrays"], "arrays")
    for name, spec in table.items():
        check_keys(spec, f"arrays.{name}", required=("dtype", "shape"))
    return meta


# ------------------------------------------------------------------------------------------------
# The kind registry, and the way back
# ------------------------------------------------------------------------------------------------
_KINDS: dict = {}


def register(kind: str):
    """Class decorator: `restore` builds ``meta["kind"] == kind`` through this class's
    ``_from_state(meta, fetch, check_params)``; the class writes it with ``_to_state()``."""
    def deco(cls):
        _KINDS[kind] = cls
        cls._state_kind = kind
        return cls
    return deco


def kind_of(obj) -> str | None:
    """The registered kind of `obj`, or None when it is no persistable mlp object."""
    for kind, cls in _KINDS.items():
        if isinstance(obj, cls):
            return kind
    return None


def get_state(obj) -> State:
    """Describe a registered object (a Model, MLPClassifier, MLPRegressor) as plain data.

    Raises
    ------
    TypeError
        If `obj` is none of those, or holds what plain data cannot describe (a user's own layer,
        activation or optimizer).
    """
    if kind_of(obj) is None:
        names = ", ".join(_KINDS) or "Model"
        raise TypeError(f"expected an mlp {names}, got {type(obj).__name__}")
    return obj._to_state()


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
        The class to build (a subclass when unpickling one); by default the registered one.
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
    base = _KINDS[meta["kind"]]
    if cls is not None and not issubclass(cls, base):
        raise ValueError(f"invalid mlp state: it describes a {meta['kind']}, not a "
                         f"{cls.__name__}")
    used = set()

    def recording_fetch(name, dtype, shape):
        used.add(name)
        return fetch(name, dtype, shape)

    obj = (cls or base)._from_state(meta, recording_fetch, check_params)
    unused = sorted(set(meta["arrays"]) - used)
    if unused:
        raise ValueError(f"invalid mlp state: the 'arrays' table declares {unused[0]!r}, which "
                         f"the architecture has no use for")
    return obj


def pickle_state(state: State) -> dict:
    """What ``__getstate__`` returns: the file's description plus the objects a file leaves out
    (callbacks, a user's own attributes), which pickle can hold."""
    return {"mlp_state": state.meta, "arrays": state.arrays, "objects": state.objects}


def unpickle_into(obj, state: dict, check_params: bool = True) -> None:
    """``__setstate__``: rebuild through `restore` and take over the rebuilt object's attributes."""
    restored = restore(state["mlp_state"], dict_fetcher(state["arrays"]), cls=type(obj),
                       check_params=check_params)
    obj.__dict__.update(restored.__dict__)
    obj.__dict__.update(state.get("objects", {}))
