"""Property-based fuzzing (hypothesis) of every public entry point and of the kernels of _core.

Inputs come in random shapes (empty ones included), dtypes (float16/32/64, long double, signed and
unsigned ints, bool, complex, object, str, datetime), memory layouts (C, Fortran, strided,
negative strides from np.flip and [::-1], zero strides from np.broadcast_to, read-only, nested
lists), with NaN, infinity, 1e30, denormals and values beyond float32, huge declared sizes and
wrong types. Every case must end in a correct result, compared with a float64 NumPy forward where
one is defined, or in ValueError / TypeError: never a crash, a hang, another exception (MemoryError,
OverflowError, IndexError...) or a RuntimeWarning from mlp (pytest makes those errors).

The examples are derandomized, so CI runs the same cases every time; MLP_FUZZ_EXAMPLES=<n>
raises the count per test and MLP_FUZZ_RANDOM=1 draws new cases on each run.
"""
from __future__ import annotations

import math
import os
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import reference as ref
from mlp import ELU, Activation, Dense, LeakyReLU, Loss, Model, _core
from mlp.sklearn import MLPClassifier, MLPRegressor

A = _core.ActivationKind
N_ACTS = len(A.__members__)  # codes 0 .. N_ACTS - 1 are valid; N_ACTS is the first that is not

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def fuzz(n: int):
    """Settings for one fuzz test: `n` examples (or MLP_FUZZ_EXAMPLES), no deadline."""
    return settings(
        max_examples=int(os.environ.get("MLP_FUZZ_EXAMPLES", n)),
        deadline=None,
        derandomize=not os.environ.get("MLP_FUZZ_RANDOM"),
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                               HealthCheck.filter_too_much],
    )


def outcome(fn, *args, **kwargs):
    """fn's result, or None when it raised ValueError or TypeError; anything else propagates."""
    try:
        return fn(*args, **kwargs)
    except (ValueError, TypeError):
        return None


def succeeds(fn, *args, **kwargs) -> bool:
    """Whether fn ran without ValueError or TypeError (for functions that return None)."""
    return outcome(lambda: fn(*args, **kwargs) or True) is not None


# --------------------------------------------------------------------------- array generation

FLOATS = ["float16", "float32", "float64", "longdouble"]
INTS = ["int8", "int32", "int64", "uint8", "uint64"]
OTHER = ["bool", "complex64", "complex128", "object", "str", "datetime64[s]"]
ALL_DTYPES = FLOATS + INTS + OTHER
LAYOUTS = ["C", "F", "strided", "flipped", "reversed_rows", "broadcast_rows", "readonly", "list"]

MODERATE = st.floats(-10, 10, allow_nan=False, allow_infinity=False)
EXTREME = [0.0, -0.0, 1e30, -1e30, 1e-30, 5e-324, 1e-40, -1.4e-45, 2.0**-126]
NONFINITE = [math.nan, math.inf, -math.inf]
TOO_BIG_FOR_F32 = [1e39, -1e300]
OBJECTS = [None, "a", "1.5", 10**400, [1.0], {"x": 1}, b"1", 2 + 1j]


def _values(draw, n, dtype, special):
    kind = np.dtype(dtype).kind
    if kind == "f":
        pool = MODERATE if not special else st.one_of(MODERATE, st.sampled_from(special))
        values = draw(st.lists(pool, min_size=n, max_size=n))
        with np.errstate(all="ignore"):  # 1e30 becomes inf in float16: that is part of the test
            return np.array(values, dtype=np.float64).astype(dtype)
    if kind in "iu":
        info = np.iinfo(dtype)
        small = st.integers(max(info.min, -10), min(info.max, 10))
        ints = st.one_of(small, st.sampled_from([info.min, info.max]))
        return np.array(draw(st.lists(ints, min_size=n, max_size=n)), dtype=dtype)
    if kind == "b":
        return np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    if kind == "c":
        c = st.complex_numbers(max_magnitude=10, allow_nan=False, allow_infinity=False)
        return np.array(draw(st.lists(c, min_size=n, max_size=n)), dtype=dtype)
    if kind == "O":
        numbers = st.one_of(MODERATE, st.integers(-10, 10))
        items = st.one_of(numbers, st.sampled_from(OBJECTS)) if special else numbers
        out = np.empty(n, dtype=object)
        for i, v in enumerate(draw(st.lists(items, min_size=n, max_size=n))):
            out[i] = v
        return out
    if kind == "U":
        return np.array(draw(st.lists(st.text("0123456789.-e", max_size=4), min_size=n, max_size=n)),
                        dtype=str)
    if kind == "M":
        return np.array(draw(st.lists(st.integers(0, 10**9), min_size=n, max_size=n)), dtype=dtype)
    raise AssertionError(dtype)


def lay_out(a: np.ndarray, layout: str):
    """The same content as `a` (for broadcast_rows: row 0 repeated) in another memory layout."""
    if a.ndim == 0 or a.size == 0:
        return a.tolist() if layout == "list" and a.ndim else a
    if layout == "F":
        return np.asfortranarray(a)
    if layout == "strided":  # every other element of an array twice as large
        big = np.zeros(tuple(2 * s for s in a.shape), dtype=a.dtype)
        view = big[tuple(slice(None, None, 2) for _ in a.shape)]
        view[...] = a
        return view
    if layout == "flipped":  # negative strides on every axis
        return np.flip(np.flip(a).copy())
    if layout == "reversed_rows":
        return a[::-1].copy()[::-1]
    if layout == "broadcast_rows":  # a zero stride
        return np.broadcast_to(a[:1], a.shape)
    if layout == "readonly":
        b = a.copy()
        b.flags.writeable = False
        return b
    if layout == "list":
        return a.tolist()
    return np.ascontiguousarray(a)


@st.composite
def arrays(draw, shape=None, dtypes=ALL_DTYPES, special=True, layouts=LAYOUTS):
    """An array-like of random dtype, content and layout; `shape` fixes its shape."""
    if shape is None:
        shape = tuple(draw(st.lists(st.integers(0, 4), min_size=0, max_size=3)))
    dtype = draw(st.sampled_from(dtypes))
    pool = None
    if special:
        pool = EXTREME + draw(st.sampled_from([[], NONFINITE])) + draw(st.sampled_from([[], TOO_BIG_FOR_F32]))
    values = _values(draw, int(np.prod(shape, dtype=np.int64)), dtype, pool)
    return lay_out(values.reshape(shape), draw(st.sampled_from(layouts)))


@st.composite
def samples(draw, n_features, **kwargs):
    """Mostly (n, n_features) inputs, sometimes any shape."""
    if draw(st.integers(0, 4)) == 0:
        return draw(arrays(**kwargs))
    n = draw(st.integers(0 if draw(st.booleans()) else 1, 6))
    width = n_features if draw(st.integers(0, 5)) else draw(st.integers(0, n_features + 2))
    return draw(arrays(shape=(n, width), **kwargs))


def as_array(x):
    """np.asarray(x), or None for what numpy cannot make an array of (ragged nested lists)."""
    try:
        return np.asarray(x)
    except ValueError:
        return None


def clean_float(x, max_abs=1e30):
    """x as float64 if it is a valid input (real numbers, all finite, |x| <= max_abs), else None."""
    arr = as_array(x)
    if arr is None or arr.dtype.kind not in "biufO":
        return None
    if arr.dtype.kind == "O":
        if not all(type(v) in (int, float) for v in arr.ravel()):
            return None
    try:
        with np.errstate(all="ignore"):
            out = np.asarray(arr, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        return None
    if not np.isfinite(out).all() or (out.size and np.abs(out).max() > max_abs):
        return None
    if arr.dtype.kind == "f" and np.dtype(arr.dtype).itemsize > 8:  # long double beyond float64
        with np.errstate(all="ignore"):
            if not np.isfinite(arr.astype(np.float64)).all():
                return None
    return out


def assert_close_to_forward(got, expected, bound, what):
    """float32 result against a float64 reference: rtol 1e-4, atol 1e-4 x the magnitude bound."""
    got = np.asarray(got, dtype=np.float64)
    assert got.shape == expected.shape, f"{what}: shape {got.shape} != {expected.shape}"
    bad = ~(np.abs(got - expected) <= 1e-4 * np.abs(expected) + 1e-4 * bound + 1e-30)
    assert not bad.any(), (f"{what}: differs from the float64 NumPy forward at {np.argwhere(bad)[:3]}:"
                           f" {got[bad][:3]} != {expected[bad][:3]}")


# --------------------------------------------------------------------------- models

HIDDEN_ACTS = ["linear", "relu", "leaky_relu", "elu", "sigmoid", "tanh", "swish"]
OUTPUTS = [("linear", "mse"), ("relu", "mse"), ("tanh", "mse"), ("sigmoid", "binary_cross_entropy"),
           ("sigmoid", "mse"), ("softmax", "categorical_cross_entropy")]


@st.composite
def model_specs(draw):
    n_in = draw(st.integers(1, 5))
    hidden = draw(st.lists(st.tuples(st.integers(1, 9), st.sampled_from(HIDDEN_ACTS)), max_size=2))
    out_act, loss = draw(st.sampled_from(OUTPUTS))
    n_out = draw(st.integers(2 if out_act == "softmax" else 1, 4))
    dtype = draw(st.sampled_from(["float32", "float64"]))
    return n_in, hidden + [(n_out, out_act)], loss, dtype, draw(st.integers(0, 2**32 - 1))


def build_model(spec):
    n_in, layers, loss, dtype, seed = spec
    first = Dense(layers[0][0], input_size=n_in, activation=layers[0][1], seed=seed)
    last = first
    for i, (width, act) in enumerate(layers[1:]):
        last = Dense(width, activation=act, seed=seed + i + 1)(last)
    model = Model(first, last)
    model.compile(loss, optimizer="adam", dtype=dtype)
    return model


def model_forward(model, x):
    """float64 forward of the model's current weights, and a bound on each output's magnitude."""
    a, bound = x, np.abs(x)
    for layer in model.layers:
        w, b = layer.weights.astype(np.float64), layer.bias.astype(np.float64)
        kind = layer.activation.kind
        a = ref.activation_forward(a @ w + b, kind, layer.activation.alpha)
        bound = bound @ np.abs(w) + np.abs(b)
        if kind in (A.SIGMOID, A.TANH, A.SOFTMAX):
            bound = np.ones_like(bound)
    return a, bound + 1.0


@fuzz(150)
@given(spec=model_specs(), data=st.data())
def test_model_predict_is_correct_or_refuses(spec, data):
    model = build_model(spec)
    x = data.draw(samples(spec[0]))
    got = outcome(model.predict, x)
    # Valid: real numbers, finite, within the model's dtype, shape (n >= 1, n_features).
    clean = clean_float(x, max_abs=float(np.finfo(spec[3]).max))
    valid = clean is not None and clean.ndim == 2 and clean.size > 0 and clean.shape[1] == spec[0]
    if not valid:
        assert got is None, f"predict accepted an invalid input {x!r}"
        return
    assert got is not None, f"predict refused a valid input {x!r}"
    assert got.dtype == np.dtype(spec[3])
    # The model first converts x to its dtype; the reference starts from the same values.
    expected, bound = model_forward(model, clean.astype(spec[3]).astype(np.float64))
    if np.isfinite(expected).all() and bound.max() < (1e35 if spec[3] == "float32" else 1e300):
        assert_close_to_forward(got, expected, bound, f"Model.predict {spec}")


@fuzz(100)
@given(spec=model_specs(), data=st.data())
def test_model_fit_and_evaluate_train_or_refuse(spec, data):
    model = build_model(spec)
    n_out = spec[1][-1][0]
    x = data.draw(samples(spec[0]))
    y = data.draw(samples(n_out, dtypes=FLOATS + INTS + ["bool", "object", "complex128"]))
    epochs = data.draw(st.sampled_from([1, 2, 0, -1, 1.0, "2", None, True]))
    lr = data.draw(st.sampled_from([0.01, 1e-3, 0.0, -1.0, math.nan, math.inf, "0.1", None]))
    batch = data.draw(st.sampled_from([1, 3, 32, 10**9, 0, 2.5, None]))
    before = [layer.weights.copy() for layer in model.layers]
    try:
        loss = model.fit(x, y, epochs, lr, batch_size=batch, progress=False)
    except (ValueError, TypeError):
        # A refused call changes nothing.
        for layer, w in zip(model.layers, before):
            np.testing.assert_array_equal(layer.weights, w)
        return
    except FloatingPointError:  # divergence: clear error, the weights stay finite
        loss = None
    limit = float(np.finfo(spec[3]).max)
    cx, cy = clean_float(x, limit), clean_float(y, limit)
    assert cx is not None and cy is not None, "fit accepted invalid data"
    assert isinstance(epochs, int) and not isinstance(epochs, bool) and epochs >= 1
    assert all(np.isfinite(layer.weights).all() and np.isfinite(layer.bias).all()
               for layer in model.layers)
    if loss is not None:
        assert math.isfinite(loss)
        assert len(model.history["loss"]) == epochs
        value = model.evaluate(x, y)
        assert isinstance(value, float)


@fuzz(100)
@given(data=st.data())
def test_dense_and_activation_layers_forward_backward(data):
    act = data.draw(st.sampled_from(HIDDEN_ACTS + ["softmax"]))
    n_in, n_out = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 5))
    layer = Dense(n_out, input_size=n_in, activation=act, seed=data.draw(st.integers(0, 99)))
    x = data.draw(samples(n_in))
    got = outcome(layer.forward, x)
    arr = as_array(x)
    # The layer API takes any real array (no NaN check on this per-batch path), 1-D as one sample.
    real = arr is not None and arr.dtype.kind in "biuf"
    with np.errstate(all="ignore"):
        as32 = arr.astype(np.float32) if real else None
    valid = (real and arr.ndim in (1, 2) and arr.size > 0 and arr.shape[-1] == n_in
             and np.array_equal(np.isfinite(as32), np.isfinite(arr)))
    if not valid:
        assert got is None, f"Dense.forward accepted {x!r}"
        return
    assert got is not None, f"Dense.forward refused {x!r}"
    x64 = as32.astype(np.float64).reshape(-1, n_in)
    w, b = layer.weights.astype(np.float64), layer.bias.astype(np.float64)
    if np.isfinite(x64).all():  # (with NaN or inf in x, NaN propagates; nothing to compare)
        expected = ref.activation_forward(x64 @ w + b, layer.activation.kind, layer.activation.alpha)
        bound = np.abs(x64) @ np.abs(w) + np.abs(b) + 1.0
        assert_close_to_forward(np.reshape(got, expected.shape), expected, bound, f"Dense({act})")
    g = data.draw(arrays(shape=np.shape(got), dtypes=FLOATS + ["int32", "complex128", "object"],
                         special=False))
    dx = outcome(layer.backward, g, 0.1)
    g_real = np.asarray(g).dtype.kind in "biuf"
    assert (dx is not None) == g_real, f"Dense.backward with {np.asarray(g).dtype}"
    if dx is not None:
        assert np.shape(dx) == np.shape(x)
        assert layer.dweights.shape == (n_in, n_out) and layer.dbias.shape == (n_out,)
    # The activation on its own, as a layer.
    standalone = {"leaky_relu": LeakyReLU(0.2), "elu": ELU(0.5)}.get(act) or Activation(act)
    out = outcome(standalone.forward, x)
    if out is not None:
        a64 = np.asarray(np.asarray(x), dtype=np.float64).reshape(-1, np.shape(x)[-1])
        want = ref.activation_forward(a64, standalone.kind, standalone.alpha)
        if np.isfinite(a64).all() and np.abs(a64).max() <= 1e30:
            np.testing.assert_allclose(np.reshape(out, want.shape), want, rtol=1e-4,
                                       atol=1e-4 * (np.abs(a64).max() + 1))


@fuzz(100)
@given(name=st.sampled_from(["mse", "binary_cross_entropy", "categorical_cross_entropy"]),
       data=st.data())
def test_loss_forward_backward(name, data):
    loss = Loss(name)
    shape = data.draw(st.sampled_from([(3, 2), (1, 1), (4,), (0, 2), (2, 0, 1)]))
    y_true = data.draw(arrays(shape=shape))
    y_pred = data.draw(arrays(shape=data.draw(st.sampled_from([shape, (2, 3)]))))
    value = outcome(loss.forward, y_true, y_pred)
    grad = outcome(loss.backward, y_true, y_pred)
    t, p = loss_input(y_true), loss_input(y_pred)
    if t is not None and p is not None and t.shape != p.shape and t.size == p.size \
            and min(t.ndim, p.ndim) == 1:
        t = t.reshape(p.shape)  # (N,) against (N, 1)
    if t is None or p is None or t.shape != p.shape or t.size == 0:
        assert value is None and grad is None, f"Loss accepted {y_true!r}, {y_pred!r}"
        return
    assert value is not None and grad is not None
    assert np.shape(grad) == t.shape
    n = t.shape[0] if t.ndim > 1 else 1
    with np.errstate(all="ignore"):
        if name == "mse":
            want = np.mean((t - p) ** 2)
        elif name == "binary_cross_entropy":
            q = np.clip(p, 1e-12, 1 - 1e-12)
            want = -np.mean(t * np.log(q) + (1 - t) * np.log1p(-q))
        else:
            want = -np.sum(t * np.log(np.clip(p, 1e-12, 1.0))) / n
    np.testing.assert_allclose(value, want, rtol=1e-12, equal_nan=True, err_msg=name)


def loss_input(v):
    """What Loss computes with: real data (object arrays of numbers too) as float64, else None."""
    arr = None if v is None else as_array(v)
    if arr is None or arr.dtype.kind not in "biufO":
        return None
    try:
        with np.errstate(all="ignore"):
            return arr.astype(np.float64)
    except (TypeError, ValueError, OverflowError):
        return None


# --------------------------------------------------------------------------- estimators

def _make_data(n=40, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    return X, (X[:, 0] + X[:, 1] > 0).astype(int), X @ np.arange(1.0, d + 1)


@pytest.fixture(scope="module")
def fitted():
    X, y, yr = _make_data()
    out = {}
    for dtype in (np.float32, np.float64):
        out["clf", dtype] = MLPClassifier((6,), max_iter=30, random_state=0).fit(X.astype(dtype), y)
        out["reg", dtype] = MLPRegressor(hidden_layer_sizes=(6,), activation="tanh", max_iter=30,
                                         random_state=0).fit(X.astype(dtype), yr)
    return out


def estimator_forward(est, x):
    a, bound = x, np.abs(x)
    acts = [est.activation] * (len(est.coefs_) - 1) if isinstance(est.activation, str) else list(est.activation)
    for i, (w, b) in enumerate(zip(est.coefs_, est.intercepts_)):
        w, b = w.astype(np.float64), b.astype(np.float64)
        z = a @ w + b
        bound = bound @ np.abs(w) + np.abs(b)
        if i < len(acts):
            name = {"logistic": "sigmoid", "identity": "linear"}.get(acts[i], acts[i])
            a = ref.activation_forward(z, {"linear": 0, "relu": 1, "tanh": 5, "sigmoid": 4}[name])
        else:
            a = {"softmax": ref.softmax, "logistic": ref.sigmoid}.get(est.out_activation_, lambda v: v)(z)
    return a, bound + 1.0


@fuzz(120)
@given(kind=st.sampled_from(["clf", "reg"]), dtype=st.sampled_from([np.float32, np.float64]),
       data=st.data())
def test_estimator_predict_is_correct_or_refuses(fitted, kind, dtype, data):
    est = fitted[kind, dtype]
    x = data.draw(samples(3))
    method = est.predict_proba if kind == "clf" else est.predict
    got = outcome(method, x)
    clean = clean_float(x)
    if clean is not None and clean.ndim == 2 and clean.size > 0 and clean.shape[1] == 3:
        assert got is not None, f"predict refused a valid input {x!r}"
    if got is None:
        return
    # Accepted: x must have been convertible to finite numbers of the right shape.
    with np.errstate(all="ignore"):
        x64 = np.asarray(np.asarray(x).astype(np.float64), dtype=dtype).astype(np.float64)
    assert np.isfinite(x64).all() and x64.ndim == 2 and x64.shape[1] == 3
    expected, bound = estimator_forward(est, x64)
    if kind == "clf" and expected.shape[1] == 1:
        expected = np.hstack([1 - expected, expected])
        bound = np.ones_like(expected)
    assert_close_to_forward(np.reshape(got, expected.shape), expected, bound, f"{kind} {dtype}")


LABELS = [np.array([0, 1, 1, 0, 2, 1]), np.array(["a", "b", "b", "a", "c", "a"], dtype=object),
          np.array([True, False, True, True, False, False])]


@fuzz(80)
@given(kind=st.sampled_from(["clf", "reg"]), solver=st.sampled_from(["adam", "sgd", "lbfgs"]),
       data=st.data())
def test_estimator_fit_trains_or_refuses_and_layout_does_not_matter(kind, solver, data):
    n = data.draw(st.integers(1, 6))
    x = data.draw(arrays(shape=(n, 2) if data.draw(st.integers(0, 4)) else (n,)))
    if kind == "clf":
        y = data.draw(st.sampled_from(LABELS))[:n]
    else:
        y = data.draw(arrays(shape=(n,), dtypes=FLOATS + INTS + ["bool", "object", "str"]))
    sw = data.draw(st.one_of(st.none(), arrays(shape=(n,), dtypes=["float64", "int32", "float32"])))
    params = dict(hidden_layer_sizes=data.draw(st.sampled_from([(3,), (2, 2), ()])), solver=solver,
                  max_iter=3, random_state=0, learning_rate_init=data.draw(st.sampled_from([1e-3, 1e3])))
    make = MLPClassifier if kind == "clf" else MLPRegressor

    def fit(X, Y, W):
        with warnings.catch_warnings():
            # ConvergenceWarning, the divergence warning and scikit-learn's DataConversionWarning
            # are UserWarnings; a RuntimeWarning from mlp stays an error (pyproject.toml).
            warnings.simplefilter("ignore", UserWarning)
            warnings.filterwarnings("error", category=RuntimeWarning, module="mlp")
            return make(**params).fit(X, Y, sample_weight=W)

    est = outcome(fit, x, y, sw)
    if est is None:
        return
    coefs = est.coefs_ + est.intercepts_
    assert all(np.isfinite(c).all() for c in coefs), "a fit left non-finite weights"
    # The same data, C-contiguous and writable, gives bit-identical weights.
    same = fit(*(None if v is None else np.ascontiguousarray(np.asarray(v)) for v in (x, y, sw)))
    for a, b in zip(coefs, same.coefs_ + same.intercepts_):
        np.testing.assert_array_equal(a, b)


@fuzz(60)
@given(kind=st.sampled_from(["clf", "reg"]), data=st.data())
def test_partial_fit_over_fuzzed_chunks(kind, data):
    X, y, yr = _make_data(30)
    target = y if kind == "clf" else yr
    est = MLPClassifier((4,), random_state=0) if kind == "clf" else MLPRegressor(hidden_layer_sizes=(4,), random_state=0)
    clean = MLPClassifier((4,), random_state=0) if kind == "clf" else MLPRegressor(hidden_layer_sizes=(4,), random_state=0)
    extra = {"classes": [0, 1]} if kind == "clf" else {}
    for start in range(0, 30, 10):
        layout = data.draw(st.sampled_from(LAYOUTS))
        chunk = X[start:start + 10]
        bad = data.draw(st.integers(0, 5)) == 0
        if bad:  # a chunk with NaN, a wrong width, or strings: refused, and the model unchanged
            options = [chunk * np.nan, np.full(chunk.shape, "x", dtype=object)]
            if hasattr(est, "coefs_"):
                options.append(chunk[:, :2])
            broken = data.draw(st.sampled_from(options))
            before = None if not hasattr(est, "coefs_") else [c.copy() for c in est.coefs_]
            with pytest.raises((ValueError, TypeError)):
                est.partial_fit(lay_out(broken, layout), target[start:start + 10], **extra)
            if before is not None:
                for a, b in zip(est.coefs_, before):
                    np.testing.assert_array_equal(a, b)
        laid = lay_out(chunk, layout)
        est.partial_fit(laid, target[start:start + 10], **extra)
        clean.partial_fit(np.array(laid), target[start:start + 10], **extra)
    for a, b in zip(est.coefs_ + est.intercepts_, clean.coefs_ + clean.intercepts_):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- sizes and types

@pytest.mark.parametrize("make", [
    lambda: Dense(output_size=10**12),
    lambda: Dense(output_size=10**6, input_size=10**6),
    lambda: Dense(2**31 + 1),
    lambda: Dense(4, input_size=2**40),
    lambda: Dense(10**6)(Dense(10**6, input_size=1)),
    lambda: Dense(2**31, input_size=2**20),
    lambda: MLPClassifier(hidden_layer_sizes=(10**12,)).fit([[0.0], [1.0]], [0, 1]),
    lambda: MLPRegressor(hidden_layer_sizes=(2**31, 2**31)).fit([[0.0], [1.0]], [0, 1]),
    lambda: MLPRegressor(hidden_layer_sizes=(2**30,)).fit([[0.0] * 64] * 2, [0, 1]),
    lambda: _core.Network([2**31, 2**31], [0], [0.0], 0, 1.0, "float32"),
    lambda: _core.Network([10**12, 1], [0], [0.0], 0, 1.0, "float64"),
    lambda: _core.Network([2**20] * 40, [0] * 39, [0.0] * 39, 0, 1.0, "float32"),
], ids=["dense_1e12", "dense_1e6x1e6", "dense_2^31+1", "input_2^40", "chained_1e6", "dense_2^31x2^20",
        "clf_1e12", "reg_2^31x2^31", "reg_2^30", "network_2^31", "network_1e12", "network_deep"])
def test_huge_declared_sizes_are_value_errors_not_memory_errors(make):
    with pytest.raises(ValueError):
        make()


@fuzz(100)
@given(sizes=st.lists(st.one_of(st.integers(-2, 12), st.integers(2**31 + 1, 2**70)), min_size=0, max_size=4),
       acts=st.lists(st.integers(-1, N_ACTS), min_size=0, max_size=4), loss=st.integers(-1, 4),
       scale=st.sampled_from([1.0, 0.5, 0.0, -1.0, math.nan, math.inf]),
       dtype=st.sampled_from(["float32", "float64", "float16", "", "int"]))
def test_network_constructor_checks_everything(sizes, acts, loss, scale, dtype):
    alphas = [0.1] * len(acts)
    net = outcome(_core.Network, sizes, acts, alphas, loss, scale, dtype)
    if net is None:
        return
    assert len(sizes) >= 2 and all(1 <= s <= 12 for s in sizes) and len(acts) == len(sizes) - 1
    assert all(0 <= a < N_ACTS for a in acts)
    assert 0 <= loss <= 3 and math.isfinite(scale) and scale > 0 and dtype in ("float32", "float64")
    assert net.n_params == sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


WRONG = [None, "3", 2.5, -1, 0, 2**70, math.nan, math.inf, True, [1], object(), np.float64(0.5)]


@fuzz(80)
@given(epochs=st.sampled_from([1, 2] + WRONG), lr=st.sampled_from([0.1] + WRONG),
       batch=st.sampled_from([8] + WRONG), shuffle=st.sampled_from([True, False] + WRONG),
       seed=st.sampled_from([None, 0, 2**64 - 1] + WRONG), print_loss=st.sampled_from([False] + WRONG))
def test_model_fit_arguments_of_wrong_type_or_range(epochs, lr, batch, shuffle, seed, print_loss):
    model = build_model((2, [(3, "relu"), (1, "linear")], "mse", "float32", 0))
    x, y = np.ones((4, 2)), np.ones(4)
    if isinstance(epochs, int) and not isinstance(epochs, bool) and epochs > 2:
        epochs = 2  # a huge epoch count is valid, and would only take long
    try:
        result = model.fit(x, y, epochs, lr, print_loss=print_loss, batch_size=batch, shuffle=shuffle,
                           seed=seed, progress=False)
    except FloatingPointError:  # a huge learning rate diverges: a clear error, after valid arguments
        result = math.nan
    except (ValueError, TypeError):
        result = None

    def is_int(v, low):
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= low

    valid = (is_int(epochs, 1) and isinstance(lr, (float, int)) and not isinstance(lr, bool)
             and math.isfinite(lr) and lr > 0 and is_int(batch, 1) and isinstance(shuffle, bool)
             and (seed is None or (is_int(seed, 0) and seed < 2**64)) and isinstance(print_loss, bool))
    assert (result is not None) == valid, (epochs, lr, batch, shuffle, seed, print_loss)



# --------------------------------------------------------------------------- _core kernels
# The private core takes only C-contiguous float32/float64 arrays of one dtype (mlp/_core.pyi);
# anything else must be refused by bindings.cpp with ValueError/TypeError, never read blindly.

KERNEL_DTYPES = ["float32", "float64", "float64", "float32", "float16", "int64", "complex128"]
KERNEL_LAYOUTS = ["C", "C", "C", "F", "flipped", "strided", "broadcast_rows", "readonly"]


@st.composite
def operands(draw, shape, writeable=False):
    """Mostly valid operands (C-contiguous float32/float64 of `shape`), sometimes not."""
    if draw(st.integers(0, 6)) == 0:
        shape = tuple(draw(st.lists(st.integers(0, 3), max_size=3)))
    if draw(st.integers(0, 30)) == 0:
        return draw(st.sampled_from([None, [[1.0]], 1.0]))
    layouts = KERNEL_LAYOUTS if not writeable else ["C", "C", "F", "readonly", "strided"]
    return draw(arrays(shape=shape, dtypes=KERNEL_DTYPES, special=False, layouts=layouts))


def operand(a, ndim, dtype=None, writeable=False) -> bool:
    """a is what the core accepts: a C-contiguous float32/float64 ndarray of ndim dimensions."""
    return (isinstance(a, np.ndarray) and a.dtype.name in ("float32", "float64") and a.ndim == ndim
            and a.flags.c_contiguous and (dtype is None or a.dtype == dtype)
            and (a.flags.writeable or not writeable))


def tol(a):
    return (1e-4, 1e-4) if a.dtype == np.float32 else (1e-10, 1e-10)


@fuzz(100)
@given(m=st.integers(0, 5), k=st.integers(0, 5), n=st.integers(0, 5), ta=st.booleans(),
       tb=st.booleans(), data=st.data())
def test_core_gemm(m, k, n, ta, tb, data):
    a = data.draw(operands((k, m) if ta else (m, k)))
    b = data.draw(operands((n, k) if tb else (k, n)))
    got = outcome(_core.gemm, a, b, ta, tb)
    valid = operand(a, 2) and operand(b, 2, a.dtype) and \
        (a.shape[0] if ta else a.shape[1]) == (b.shape[1] if tb else b.shape[0])
    assert (got is not None) == valid
    if valid:
        rtol, atol = tol(got)
        np.testing.assert_allclose(got, ref.gemm(a, b, ta, tb), rtol=rtol, atol=atol * 100 * (k + 1))


@fuzz(100)
@given(n=st.integers(0, 5), c=st.integers(0, 5), act=st.integers(-1, N_ACTS),
       alpha=st.sampled_from([0.0, 0.1, 1.0]), data=st.data())
def test_core_activation_forward_backward(n, c, act, alpha, data):
    z = data.draw(operands((n, c)))
    got = outcome(_core.activation_forward, z, act, alpha)
    assert (got is not None) == (operand(z, 2) and 0 <= act < N_ACTS)
    if got is None or z.size == 0:  # (the reference's softmax cannot take an empty max)
        assert got is None or got.shape == z.shape
        return
    np.testing.assert_allclose(got, ref.activation_forward(z, act, alpha), *tol(got))
    da = data.draw(operands(z.shape))
    back = outcome(_core.activation_backward, z, got, da, act, alpha)
    assert (back is not None) == (operand(da, 2, z.dtype) and da.shape == z.shape)
    if back is not None:
        np.testing.assert_allclose(back, ref.activation_backward(z, da, act, alpha), *tol(back))


@fuzz(100)
@given(n=st.integers(0, 4), i=st.integers(0, 4), o=st.integers(0, 4), act=st.integers(0, N_ACTS - 1),
       g_is_dz=st.booleans(), need_dx=st.booleans(), data=st.data())
def test_core_dense_forward_backward(n, i, o, act, g_is_dz, need_dx, data):
    x, w, b = (data.draw(operands(s)) for s in ((n, i), (i, o), (o,)))
    got = outcome(_core.dense_forward, x, w, b, act, 0.1)
    valid = (operand(x, 2) and operand(w, 2, x.dtype) and operand(b, 1, x.dtype)
             and w.shape[0] == x.shape[1] and b.shape[0] == w.shape[1])
    assert (got is not None) == valid
    if not valid or got[0].size == 0:  # (the reference's softmax cannot take an empty max)
        return
    z_ref, a_ref = ref.dense_forward(x, w, b, act, 0.1)
    np.testing.assert_allclose(got[0], z_ref, *tol(got[0]))
    np.testing.assert_allclose(got[1], a_ref, *tol(got[1]))
    g = data.draw(operands(got[0].shape))
    back = outcome(_core.dense_backward, x, w, got[0], got[1], g, act, 0.1, g_is_dz, need_dx)
    assert (back is not None) == (operand(g, 2, x.dtype) and g.shape == got[0].shape)
    if back is None:
        return
    dw_ref, db_ref, dx_ref = ref.dense_backward(x, w, got[0], g, act, 0.1, g_is_dz=g_is_dz)
    rtol, atol = tol(back[0])
    rows, outs = x.shape[0], w.shape[1]
    np.testing.assert_allclose(back[0], dw_ref, rtol=rtol, atol=atol * 100 * (rows + 1))
    np.testing.assert_allclose(back[1], db_ref, rtol=rtol, atol=atol * 100 * (rows + 1))
    if need_dx:
        np.testing.assert_allclose(back[2], dx_ref, rtol=rtol, atol=atol * 100 * (outs + 1))
    else:
        assert back[2] is None


@fuzz(100)
@given(n=st.integers(0, 4), c=st.integers(0, 4), loss=st.integers(-1, 4), data=st.data())
def test_core_loss_forward_backward(n, c, loss, data):
    z = data.draw(operands((n, c)))
    y = data.draw(operands((n, c)))
    sw = data.draw(st.one_of(st.none(), operands((n,))))
    act = {1: A.SOFTMAX, 2: A.SIGMOID}.get(loss, A.IDENTITY)
    a = outcome(_core.activation_forward, z, act, 0.0)
    value = outcome(_core.loss_forward, z, a, y, loss, sw, 1.0)
    grad = outcome(_core.loss_backward, z, a, y, loss, act, 0.0, sw, 1.0)
    valid = (operand(z, 2) and operand(y, 2, z.dtype) and y.shape == z.shape and 0 <= loss <= 3
             and (sw is None or (operand(sw, 1, z.dtype) and sw.shape == (z.shape[0],)))
             and (sw.astype(np.float64).sum() if sw is not None else z.shape[0]) > 0)
    assert (value is not None) == valid and (grad is not None) == valid
    if not valid:
        return
    if z.shape[1] == 0:  # no outputs: nothing to lose (the reference's max has no identity)
        assert value == 0.0 and grad.shape == z.shape
        return
    want = ref.loss_forward(z, a, y, loss, sw, 1.0)
    scale = 1.0 + np.abs(ref.loss_elements(z, a, y, loss)).sum() * (
        1.0 if sw is None else np.abs(sw).astype(np.float64).max() / float(np.sum(sw, dtype=np.float64)))
    assert abs(value - want) <= 1e-4 * scale, (value, want)
    rtol, atol = tol(grad)
    np.testing.assert_allclose(grad, ref.loss_backward(z, a, y, loss, act, 0.0, sw, 1.0), rtol=rtol,
                               atol=atol * scale)


@fuzz(60)
@given(size=st.integers(0, 6), momentum=st.sampled_from([0.0, 0.9]), nesterov=st.booleans(),
       t=st.sampled_from([1, 5, 2**40, 0, -1]), data=st.data())
def test_core_optimizer_steps(size, momentum, nesterov, t, data):
    p, v, m = (data.draw(operands((size,), writeable=True)) for _ in range(3))
    g = data.draw(operands((size,)))
    p0, v0, m0 = (np.array(q, copy=True) if isinstance(q, np.ndarray) else q for q in (p, v, m))

    def ok(*arrays, writeable=()):
        return operand(p, 1, writeable=True) and all(
            operand(q, 1, p.dtype, writeable=q is not g) and q.shape == p.shape for q in arrays)

    ran = succeeds(_core.sgd_step, p, g, v, 0.1, momentum, nesterov)
    assert ran == ok(g, v)
    if ran:
        want_p, want_v = ref.sgd_step(p0, g, v0, 0.1, momentum, nesterov)
        np.testing.assert_allclose(p, want_p, *tol(p))
        if momentum:  # plain SGD leaves the velocity alone (_core.pyi)
            np.testing.assert_allclose(v, want_v, *tol(v))
        p0, v0 = p.copy(), v.copy()
    elif isinstance(p, np.ndarray):
        np.testing.assert_array_equal(p, p0)
    ran = succeeds(_core.adam_step, p, g, m, v, 0.01, 0.9, 0.999, 1e-8, t)
    assert ran == (ok(g, m, v) and t >= 1)
    if ran:
        want_p, _, _ = ref.adam_step(p0, g, m0, v0, 0.01, 0.9, 0.999, 1e-8, t)
        np.testing.assert_allclose(p, want_p, *tol(p))


@fuzz(80)
@given(sizes=st.lists(st.integers(1, 6), min_size=2, max_size=4),
       hidden=st.sampled_from([A.RELU, A.TANH, A.SWISH, A.ELU, A.SIGMOID]),
       out=st.sampled_from([(A.IDENTITY, 0), (A.SOFTMAX, 1), (A.SIGMOID, 2), (A.IDENTITY, 3),
                            (A.TANH, 0)]),
       dtype=st.sampled_from(["float32", "float64"]), data=st.data())
def test_core_network_calls(sizes, hidden, out, dtype, data):
    acts = [hidden] * (len(sizes) - 2) + [out[0]]
    net = _core.Network(sizes, acts, [0.1] * len(acts), out[1], 1.0, dtype)
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    net.params[...] = rng.uniform(-0.5, 0.5, net.n_params)
    net.set_optimizer(data.draw(st.sampled_from([_core.OptimizerKind.SGD, _core.OptimizerKind.ADAM])))
    threads = data.draw(st.sampled_from([0, 1, 2, 3, 64, -1]))
    assert succeeds(net.set_threads, threads) == (threads >= 0)
    spec = ref.NetSpec(sizes, [int(a) for a in acts], [0.1] * len(acts), out[1], 1.0)
    n = data.draw(st.integers(0, 5))
    x = data.draw(operands((n, sizes[0])))
    y = data.draw(operands((n, sizes[-1])))
    valid_x = operand(x, 2, np.dtype(dtype)) and x.shape[1] == sizes[0]
    valid_y = valid_x and operand(y, 2, np.dtype(dtype)) and y.shape == (x.shape[0], sizes[-1])
    pred = outcome(net.predict, x)
    assert (pred is not None) == valid_x
    if pred is not None:
        np.testing.assert_allclose(pred, ref.network_predict(spec, net.params, x), *tol(pred))
    lg = outcome(net.loss_and_grad, x, y, None)
    assert (lg is not None) == (valid_y and x.shape[0] > 0)
    if lg is not None:
        loss, grad = ref.network_loss_and_grad(spec, net.params, x, y)
        rtol, atol = tol(lg[1])
        assert abs(lg[0] - loss) <= 1e-4 * (1 + abs(loss))
        np.testing.assert_allclose(lg[1], grad, rtol=rtol, atol=atol * 100)
    before = net.params.copy()
    batch = data.draw(st.sampled_from([1, 2, 64, 0, -3]))
    value = outcome(net.train_epoch, x, y, None, batch, True, 0.01)
    assert (value is not None) == (valid_y and x.shape[0] > 0 and batch > 0)
    if value is None:
        np.testing.assert_array_equal(net.params, before)
    assert np.isfinite(net.params).all()
    index = data.draw(st.integers(-2, 5))
    try:
        w = net.weight(index)
    except IndexError:  # an index out of range; the right exception for it
        assert not 0 <= index < len(sizes) - 1
    else:
        assert w.shape == (sizes[index], sizes[index + 1])
