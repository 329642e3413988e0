"""Reliability: divergence, numerical range, threads, interrupts, memory and determinism.

- A diverging fit stops at once: Model raises FloatingPointError, the estimators raise
  scikit-learn's ValueError ("Solver produced non-finite parameter weights"); either way the
  weights stay finite (the step that diverged is never applied) and the model keeps working.
- 1e30, -1e30 and denormals stay finite through every activation and loss, forward and backward.
- predict from 8 Python threads at once on one model equals the serial results; fits of two models
  in two threads run concurrently (the GIL is released) and equal serial fits.
- Ctrl-C during a fit leaves a model that predicts, saves, loads and trains again.
- 100 fit/predict cycles, and 50 rounds of refused calls, leave the resident memory flat.
- The same seed gives bit-identical weights across runs, processes and thread counts.

No test asserts on speed. The Ctrl-C tests bound the time between the interrupt and the fit's
end (1 s) during an epoch timed here first to last 10 s or more.
"""
from __future__ import annotations

import gc
import math
import os
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import numpy as np
import pytest

import mlp
import reference as ref
from mlp import Dense, Layer, Loss, Model, _core
from mlp.sklearn import MLPClassifier, MLPRegressor

A = _core.ActivationKind
ALL_ACTS = list(A.__members__.values())
HIDDEN = ["identity", "relu", "leaky_relu", "elu", "logistic", "tanh", "swish"]


def finite(obj) -> bool:
    """Every weight and bias of a Model or an estimator is finite."""
    if isinstance(obj, Model):
        arrays = [a for layer in obj.layers if isinstance(layer, Dense) for a in (layer.weights, layer.bias)]
    else:
        arrays = obj.coefs_ + obj.intercepts_
    return all(np.isfinite(a).all() for a in arrays)


def small_model(n_in=4, hidden=8, n_out=1, act="tanh", out=None, loss="mse", seed=0, optimizer="sgd"):
    first = Dense(hidden, input_size=n_in, activation=act, seed=seed)
    model = Model(first, Dense(n_out, activation=out, seed=seed + 1)(first))
    model.compile(loss, optimizer=optimizer)
    return model


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 4))
    y_reg = X @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.1 * rng.standard_normal(300)
    y_clf = (X[:, 0] + X[:, 1] ** 2 > 0.5).astype(int) + (X[:, 2] > 1).astype(int)
    return X, y_reg, y_clf


# ------------------------------------------------------------------------------ divergence

class Scale(Layer):
    """A user's own layer: the model trains through the Python path."""

    def forward(self, input):
        self.input, self.output = input, input * 2.0
        return self.output

    def backward(self, output_error, learning_rate):
        return output_error * 2.0


@pytest.mark.parametrize("path", ["native", "python"])
def test_model_divergence_raises_a_clear_error_and_keeps_finite_weights(data, path):
    X, y, _ = data
    first = Dense(16, input_size=4, activation="relu", seed=0)
    hidden = Scale()(first) if path == "python" else first
    model = Model(first, Dense(1, seed=1)(hidden))
    model.compile("mse")
    assert model.native == (path == "native")
    with pytest.raises(FloatingPointError, match="non-finite.*diverged.*smaller learning_rate"):
        model.fit(X, y * 1e6, 50, 1e3, progress=False)
    assert finite(model)
    # The weights an epoch older than the divergence: their outputs are finite too (the last
    # step applied before the refused one made the float32 outputs overflow, into NaN).
    assert np.isfinite(model.predict(X)).all()
    # It keeps working: a sane learning rate trains it again.
    model.compile("mse")
    for layer in model.layers:
        if isinstance(layer, Dense):
            layer.create_weights()
    assert math.isfinite(model.fit(X, y, 5, 0.01, progress=False))
    assert np.isfinite(model.predict(X)).all()


@pytest.mark.filterwarnings("ignore:overflow encountered in multiply:RuntimeWarning:test_reliability")  # Scale
@pytest.mark.parametrize("path,dtype", [("native", "float32"), ("native", "float64"), ("python", "float32")])
def test_model_divergence_puts_back_exactly_the_weights_the_previous_epoch_started_from(path, dtype):
    # A linear unit on constant rows, full-batch gradient descent: each epoch multiplies the
    # output by 1 - 4 lr = -10, so the loss stays finite for dozens of epochs and then overflows.
    first = Dense(1, input_size=1, seed=0)
    model = Model(first, Scale()(first)) if path == "python" else Model(first, first)
    model.compile("mse", dtype=dtype)
    lr = 2.75 if path == "native" else 2.75 / 4  # the Scale layer doubles the output
    starts = [model._get_flat_params()]  # the weights each epoch starts from

    class Record:
        def on_epoch_end(self, model, epoch, logs):
            starts.append(model._get_flat_params())
            return False

    with pytest.raises(FloatingPointError, match="non-finite in epoch") as excinfo:
        model.fit(np.ones((8, 1)), np.zeros((8, 1)), 1000, lr, batch_size=8, shuffle=False,
                  callbacks=[Record()], progress=False)
    diverged = len(starts) - 1  # epochs completed before the one that diverged (0-based index)
    assert f"in epoch {diverged + 1}:" in str(excinfo.value)
    assert diverged >= 10, "the fit should diverge only after many finite epochs"
    # Put back: the start of the epoch before the diverged one, bit for bit; not the last
    # epoch's end (its outputs were the ones about to overflow).
    np.testing.assert_array_equal(model._get_flat_params(), starts[diverged - 1])
    assert not np.array_equal(model._get_flat_params(), starts[diverged])
    assert np.isfinite(model.predict(np.ones((3, 1)))).all()


def test_network_refuses_the_diverging_step_and_keeps_the_previous_weights():
    net = _core.Network([3, 4, 1], [A.TANH, A.IDENTITY], [0.0, 0.0], _core.LossKind.MSE, 1.0, "float32")
    net.params[...] = np.random.default_rng(0).uniform(-1, 1, net.n_params)
    net.set_optimizer(_core.OptimizerKind.SGD)
    x = np.ones((8, 3), np.float32)
    y = np.full((8, 1), 1e18, np.float32)  # the first loss is finite, the step overflows
    before = net.params.copy()
    assert math.isnan(net.train_epoch(x, y, None, 8, False, 1e25))
    np.testing.assert_array_equal(net.params, before)  # the refused step changed nothing


@pytest.mark.parametrize("kind,solver", [("clf", "sgd"), ("clf", "adam"), ("reg", "sgd"),
                                         ("reg", "adam"), ("reg", "lbfgs")])
def test_estimator_divergence_raises_and_keeps_the_last_finite_weights(data, kind, solver):
    X, y_reg, y_clf = data
    if kind == "clf":
        # float32: weights grown by steps of 1e12 push the logits of 1e30 inputs beyond 3.4e38
        est = MLPClassifier((16,), solver=solver, learning_rate_init=1e12, max_iter=20, random_state=0)
        Xd, y = (X * 1e30).astype(np.float32), y_clf
    else:  # targets whose squared error overflows float64 (L-BFGS has no learning rate)
        est = MLPRegressor(hidden_layer_sizes=(16,), solver=solver, learning_rate_init=10.0,
                           max_iter=20, random_state=0)
        Xd, y = X, y_reg * 1e200
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)  # ConvergenceWarning
        with pytest.raises(ValueError, match="Solver produced non-finite parameter weights"):
            est.fit(Xd, y)
    assert finite(est)
    assert est.predict(X).shape == (len(X),)
    # The estimator is not broken: refitting on sane data works and warns no more.
    est.set_params(learning_rate_init=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)  # ConvergenceWarning
        warnings.simplefilter("error", category=RuntimeWarning)
        est.fit(X, y_clf if kind == "clf" else y_reg)
    assert finite(est)


def test_partial_fit_divergence_raises_and_keeps_the_weights_before_it(data):
    X, y, _ = data
    est = MLPRegressor(hidden_layer_sizes=(8,), solver="sgd", random_state=0).partial_fit(X, y)
    good = [c.copy() for c in est.coefs_]
    with pytest.raises(ValueError, match="Solver produced non-finite parameter weights"):
        est.partial_fit(X, y * 1e200)  # its squared error overflows float64
    assert finite(est)
    # Nothing of the diverging step was applied (the first batch already failed).
    for a, b in zip(est.coefs_, good):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------------------ no NaN out of finite input

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_and_sigmoid_of_infinite_logits_are_finite_probabilities(dtype):
    inf = np.inf
    z = np.array([[inf, 1.0, -inf], [inf, inf, 0.0], [-inf, -inf, -inf], [-inf, 3.0, 2.0]], dtype=dtype)
    p = _core.activation_forward(z, A.SOFTMAX, 0.0)
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(p[0], [1, 0, 0], atol=1e-30)  # the overflowed logit takes it all
    np.testing.assert_allclose(p[1], [0.5, 0.5, 0], atol=1e-30)  # shared between the two
    np.testing.assert_allclose(p[2], [1 / 3] * 3, rtol=1e-6)  # nothing to tell them apart
    s = _core.activation_forward(z, A.SIGMOID, 0.0)
    assert np.isfinite(s).all() and ((s >= 0) & (s <= 1)).all()
    assert s[0, 0] == 1 and s[0, 2] < 1e-30


def _overflowing_classifier(output):
    # Weights that are finite, but whose float32 logits overflow on inputs of 1e4.
    inputs = Dense(3, input_size=2, seed=0)
    width = 3 if output == "softmax" else 1
    model = Model(inputs, Dense(width, activation=output, seed=1)(inputs))
    model.compile("categorical_cross_entropy" if output == "softmax" else "binary_cross_entropy",
                  optimizer="sgd")
    model.layers[0].weights = np.full((2, 3), 10.0)
    model.layers[1].weights = np.full((3, width), 1e37) * np.array([1.0, -1.0, 0.5][:width])
    return model


@pytest.mark.parametrize("output", ["softmax", "sigmoid"])
def test_predict_of_overflowing_logits_gives_finite_probabilities(output):
    model = _overflowing_classifier(output)
    x = np.array([[1e4, 1e4], [-1e4, -1e4], [0.0, 0.0]])
    p = model.predict(x)
    assert np.isfinite(p).all(), p
    if output == "softmax":
        np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("output", ["softmax", "sigmoid"])
def test_a_fit_whose_outputs_overflow_on_its_batch_diverges(output):
    # The logits of the training batch are infinite: the loss is not finite, so the fit stops
    # with FloatingPointError before applying that step, rather than leaving NaN predictions.
    model = _overflowing_classifier(output)
    before = [layer.weights.copy() for layer in model.layers]
    x = np.array([[1e4, 1e4], [2e4, 1e4]])
    y = np.array([[0, 0, 1], [0, 1, 0]]) if output == "softmax" else np.array([[0.0], [1.0]])
    with pytest.raises(FloatingPointError, match="non-finite"):
        model.fit(x, y, 3, 0.1, batch_size=2, progress=False)
    for layer, w in zip(model.layers, before):
        np.testing.assert_array_equal(layer.weights, w)


def test_a_diverged_regressor_still_predicts_finite_values(data):
    # Linear outputs have no softmax to bound them: the weights put back after a divergence must
    # be ones whose outputs on the training data are finite.
    X, y, _ = data
    est = MLPRegressor(hidden_layer_sizes=(16,), solver="sgd", learning_rate_init=10.0,
                       max_iter=20, random_state=0)
    with pytest.raises(ValueError, match="non-finite parameter weights"):
        est.fit(X, y * 1e6)
    assert np.isfinite(est.predict(X)).all()


# scikit-learn's input checks sum the rows; 3e38 + 3e38 overflows there, with numpy's warning.
@pytest.mark.filterwarnings("ignore:invalid value encountered in reduce:RuntimeWarning")
def test_estimator_fit_on_overflowing_inputs_raises_scikit_learns_error():
    X = np.array([[3e38, 3e38], [-3e38, 3e38], [3e38, -3e38], [-3e38, -3e38]] * 5, dtype=np.float32)
    y = [0, 1, 1, 0] * 5
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    with pytest.raises(ValueError, match="Solver produced non-finite parameter weights"):
        clf.fit(X, y)
    assert finite(clf)
    assert np.isfinite(clf.predict_proba(X)).all()


# ------------------------------------------------------------------------------ numerical range

EXTREMES = {"float32": [1e30, -1e30, 1e-40, -1.4e-45, 1.2e-38, 0.0, -0.0, 3e38, -3e38],
            "float64": [1e30, -1e30, 5e-324, -1e-310, 2.2e-308, 0.0, 1e300, -1e300]}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("act", ALL_ACTS, ids=lambda a: a.name.lower())
def test_extreme_inputs_stay_finite_through_every_activation(act, dtype):
    z = np.array([EXTREMES[dtype]], dtype=dtype)
    z = np.vstack([z, z[:, ::-1]])
    alpha = {A.LEAKY_RELU: 0.01, A.ELU: 1.0}.get(act, 0.0)
    a = _core.activation_forward(z, act, alpha)
    assert np.isfinite(a).all(), (act, a)
    da = np.ones_like(z)
    dz = _core.activation_backward(z, a, da, act, alpha)
    assert np.isfinite(dz).all(), (act, dz)
    # Bounded activations stay in their range even at the extremes.
    if act in (A.SIGMOID, A.SOFTMAX):
        assert ((a >= 0) & (a <= 1)).all()
    if act == A.TANH:
        assert (np.abs(a) <= 1).all()
    # And the values are right where float64 can say (the extremes within 1e30).
    sane = np.abs(z.astype(np.float64)) <= 1e30
    want = ref.activation_forward(np.where(sane, z, 0).astype(np.float64), act, alpha)
    if act != A.SOFTMAX:
        np.testing.assert_allclose(a[sane], want[sane], rtol=1e-5, atol=1e-30)


LOSS_CASES = [(_core.LossKind.MSE, act) for act in ALL_ACTS if act != A.SOFTMAX] + [
    (_core.LossKind.CATEGORICAL_CROSS_ENTROPY, A.SOFTMAX), (_core.LossKind.BINARY_CROSS_ENTROPY, A.SIGMOID),
    (_core.LossKind.POISSON, A.IDENTITY)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss,act", LOSS_CASES, ids=lambda v: v.name.lower())
def test_extreme_logits_stay_finite_through_every_loss(loss, act, dtype):
    logits = np.array([[1e30, -1e30, 0.0], [-1e30, 1e30, 1e-40], [5e-39, 0.0, -1e30]], dtype=dtype)
    alpha = {A.LEAKY_RELU: 0.01, A.ELU: 1.0}.get(act, 0.0)
    a = _core.activation_forward(logits, act, alpha)
    targets = {_core.LossKind.CATEGORICAL_CROSS_ENTROPY: np.eye(3)[[1, 0, 2]],
               _core.LossKind.BINARY_CROSS_ENTROPY: np.array([[0, 1, 1], [1, 0, 0], [1, 1, 0]]),
               _core.LossKind.POISSON: np.array([[0, 3, 1], [2, 0, 5], [1, 1, 0]])}
    y = targets.get(loss, np.array([[1e30, 0, -1], [0, 1e30, 1], [2, 0, -1e30]])).astype(dtype)
    for sw in (None, np.array([1.0, 1e-30, 3.0], dtype=dtype)):
        value = _core.loss_forward(logits, a, y, loss, sw, 1.0)
        grad = _core.loss_backward(logits, a, y, loss, act, alpha, sw, 1.0)
        assert math.isfinite(value), (loss, act, value)
        assert np.isfinite(grad).all(), (loss, act, grad)


@pytest.mark.parametrize("name", ["mse", "binary_cross_entropy", "categorical_cross_entropy"])
def test_the_numpy_losses_stay_finite_at_the_extremes(name):
    y = np.array([[1.0, 0.0], [0.0, 1.0]])
    pred = {"mse": np.array([[1e30, -1e30], [5e-324, -1e30]]),
            "binary_cross_entropy": np.array([[0.0, 1.0], [1e-300, 1 - 1e-16]]),
            "categorical_cross_entropy": np.array([[0.0, 1.0], [5e-324, 1.0]])}[name]
    loss = Loss(name)
    assert math.isfinite(loss.forward(y, pred))
    assert np.isfinite(loss.backward(y, pred)).all()


@pytest.mark.parametrize("act", HIDDEN)
def test_extreme_inputs_through_whole_models_and_estimators(data, act):
    X, y_reg, y_clf = data
    extreme = np.array([[1e30, -1e30, 1e-40, 0.0], [-1e30, 1e30, 5e-324, 1e-30], [1e-30, 0, 0, -1e30]])
    name = {"logistic": "sigmoid", "identity": "linear"}.get(act, act)
    for out, loss in ((None, "mse"), ("softmax", "categorical_cross_entropy"), ("sigmoid", "binary_cross_entropy")):
        model = small_model(act=name, out=out, loss=loss, n_out=3 if out == "softmax" else 1)
        pred = model.predict(extreme)
        assert np.isfinite(pred).all(), (act, out, pred)
        y = np.eye(3)[[0, 1, 2]] if out == "softmax" else np.ones((3, 1))
        assert math.isfinite(model.evaluate(extreme, y))
    clf = MLPClassifier((8,), activation=act, max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        clf.fit(X, y_clf)
    proba = clf.predict_proba(extreme)
    assert np.isfinite(proba).all() and np.allclose(proba.sum(axis=1), 1.0)


# ------------------------------------------------------------------------------ threads

def _run_in_threads(n, fn):
    """Run fn(i) in n threads released together; return their results in order."""
    results, errors = [None] * n, []
    barrier = threading.Barrier(n)

    def work(i):
        try:
            barrier.wait()
            results[i] = fn(i)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


@pytest.mark.parametrize("kind", ["model", "clf", "reg"])
def test_predict_from_8_threads_at_once_equals_serial(data, kind):
    X, y_reg, y_clf = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        if kind == "model":
            est = small_model(hidden=64)
            est.fit(X, y_reg, 3, 0.01, progress=False)
            predict = est.predict
        elif kind == "clf":
            est = MLPClassifier((64, 32), max_iter=20, random_state=0).fit(X, y_clf)
            predict = est.predict_proba
        else:
            est = MLPRegressor(hidden_layer_sizes=(64,), max_iter=20, random_state=0).fit(X, y_reg)
            predict = est.predict
    rng = np.random.default_rng(1)
    inputs = [rng.standard_normal((int(n), 4)) for n in rng.integers(1, 3000, size=8)]
    serial = [predict(x) for x in inputs]

    def many(i):
        return [predict(inputs[(i + k) % 8]) for k in range(8)]

    for i, outputs in enumerate(_run_in_threads(8, many)):
        for k, out in enumerate(outputs):
            np.testing.assert_array_equal(out, serial[(i + k) % 8])


def test_fits_of_two_models_in_two_threads_equal_serial_fits(data):
    X, y_reg, y_clf = data
    make = [lambda: MLPClassifier((32,), max_iter=15, random_state=1),
            lambda: MLPRegressor(hidden_layer_sizes=(32, 16), max_iter=15, random_state=2)]
    targets = [y_clf, y_reg]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        serial = [make[i]().fit(X, targets[i]) for i in range(2)]
        parallel = _run_in_threads(2, lambda i: make[i]().fit(X, targets[i]))
    for a, b in zip(serial, parallel):
        for ca, cb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
            np.testing.assert_array_equal(ca, cb)


class _Watched:
    """Stands in for a front's native network: forwards everything, and reports when its
    `method` is entered and when the native call returns."""

    def __init__(self, net, method, inside, state):
        self._net, self._method, self._inside, self._state = net, method, inside, state

    def __getattr__(self, name):
        attr = getattr(self._net, name)
        if name != self._method:
            return attr

        def watched(*args, **kwargs):
            self._inside.set()
            out = attr(*args, **kwargs)
            self._state["returned"] = True
            return out

        return watched


def _main_thread_ran_inside(owner, method, call):
    """Whether the main thread got to run while another thread, running call(), was inside the
    native `owner._net.<method>` (owner: a Model or an estimator; or a Network, watched as is).
    With a huge switch interval a thread holding the GIL is never made to hand it over, so the
    main thread can only run meanwhile if the native call released the GIL; the Python code
    around it, even numpy work that releases the GIL, does not count. No timing is asserted: the
    call is only long compared with waking up."""
    inside, state = threading.Event(), {"returned": False}
    if isinstance(owner, _core.Network):
        target = _Watched(owner, method, inside, state)
    else:
        target = owner
        owner._net = _Watched(owner._net, method, inside, state)

    old = sys.getswitchinterval()
    sys.setswitchinterval(100.0)
    try:
        thread = threading.Thread(target=call, args=(target,))
        thread.start()
        inside.wait()
        returned_when_main_ran = state["returned"]
        thread.join()
    finally:
        sys.setswitchinterval(old)
        if not isinstance(owner, _core.Network):
            owner._net = owner._net._net
    return not returned_when_main_ran


def test_a_native_fit_releases_the_gil():
    net = _core.Network([32, 64, 1], [A.TANH, A.IDENTITY], [0.0, 0.0], _core.LossKind.MSE, 1.0, "float64")
    net.params[...] = np.random.default_rng(0).uniform(-0.2, 0.2, net.n_params)
    net.set_optimizer(_core.OptimizerKind.SGD)
    net.set_threads(1)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((40000, 32)), rng.standard_normal((40000, 1))
    # 40000 single-row batches
    assert _main_thread_ran_inside(net, "train_epoch", lambda n: n.train_epoch(x, y, None, 1, True, 1e-4)), \
        "the main thread could not run during train_epoch"


@pytest.mark.parametrize("kind", ["network", "model", "estimator"])
def test_predict_releases_the_gil(kind):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50_000, 32))
    if kind == "network":
        owner = _core.Network([32, 256, 1], [A.TANH, A.IDENTITY], [0.0, 0.0], _core.LossKind.MSE, 1.0, "float64")
        owner.params[...] = rng.uniform(-0.2, 0.2, owner.n_params)
    elif kind == "model":
        first = Dense(256, input_size=32, activation="tanh", seed=0)
        owner = Model(first, Dense(1, seed=1)(first))
        owner.compile("mse", dtype="float64")
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            owner = MLPRegressor(hidden_layer_sizes=(256,), max_iter=1, random_state=0).fit(x[:100], x[:100, 0])
    expected = owner.predict(x[:10])
    assert _main_thread_ran_inside(owner, "predict", lambda o: o.predict(x)), \
        "the main thread could not run during the native predict"
    np.testing.assert_array_equal(owner.predict(x[:10]), expected)  # the network is back in place


def _subprocess_env(**extra):
    """The environment of a child python that imports this mlp (run it with cwd=tmp_path:
    `python -c` puts the working directory first on sys.path, and a source checkout's mlp/
    holds no compiled extension when mlp is installed elsewhere)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.dirname(os.path.dirname(mlp.__file__)),
                                                      env.get("PYTHONPATH")]))
    env.update(extra)
    return env


BUSY_CORE_SCRIPT = textwrap.dedent("""
    import os, sys
    os.sched_setaffinity(0, {int(c) for c in sys.argv[1].split(",")})  # before OpenMP starts
    import numpy as np
    from mlp import _core
    A = _core.ActivationKind
    net = _core.Network([32, 128, 128, 1], [A.TANH, A.TANH, A.IDENTITY], [0.0] * 3,
                        _core.LossKind.MSE, 1.0, "float32")
    net.params[...] = np.random.default_rng(0).uniform(-0.1, 0.1, net.n_params)
    net.set_optimizer(_core.OptimizerKind.SGD)
    assert _core.max_threads() == 2
    rng = np.random.default_rng(1)
    x = rng.standard_normal((20000, 32)).astype(np.float32)
    y = rng.standard_normal((20000, 1)).astype(np.float32)
    chosen = []
    for epoch in range(10):  # auto mode (set_threads never called): batches of 64 rows, 2 shards
        net.train_epoch(x, y, None, 64, True, 1e-4)
        chosen.append(net.last_threads)
    print(",".join(map(str, chosen)))
""")


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs two CPUs and sched_setaffinity (Linux)")
def test_auto_threads_switch_to_one_when_another_process_holds_a_core(tmp_path):
    # Two CPUs; a busy loop holds the second. Per-batch barriers then wait for the thread that
    # shares its CPU with the loop, and auto mode must notice and run on one thread (measured
    # here: two threads about 6x slower than one). Nothing is asserted about an idle machine,
    # since CI shares its cores with other jobs.
    a, b = sorted(os.sched_getaffinity(0))[:2]
    busy = subprocess.Popen([sys.executable, "-c", f"import os\nos.sched_setaffinity(0, {{{b}}})\nwhile True: pass"])
    try:
        time.sleep(0.2)
        done = subprocess.run([sys.executable, "-c", BUSY_CORE_SCRIPT, f"{a},{b}"], capture_output=True, text=True,
                              env=_subprocess_env(OMP_NUM_THREADS="2"), timeout=300, cwd=tmp_path)
    finally:
        busy.kill()
        busy.wait()
    assert done.returncode == 0, done.stderr
    chosen = [int(c) for c in done.stdout.split(",")]
    # The first epoch probes both counts; after it, most epochs must end on one thread.
    assert sum(c == 1 for c in chosen[2:]) >= 6, f"threads chosen per epoch: {chosen}"


def _fit_in_worker(seed):
    """A fit inside a joblib worker: its environment's cap, the core's thread limit, and the
    threads the fit's last batches ran on."""
    X = np.random.default_rng(seed).standard_normal((4000, 16))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        est = MLPRegressor(hidden_layer_sizes=(256,), max_iter=2, batch_size=512, random_state=seed).fit(X, X[:, 0])
    return os.environ.get("OMP_NUM_THREADS"), _core.max_threads(), est._net.last_threads


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores")
def test_fits_in_joblib_workers_use_their_share_of_the_cores():
    joblib = pytest.importorskip("joblib")
    # What GridSearchCV(n_jobs=2) runs on: loky workers, to which joblib gives
    # OMP_NUM_THREADS = cpu_count // n_jobs (unless the parent set it already).
    share = int(os.environ.get("OMP_NUM_THREADS") or max(joblib.cpu_count() // 2, 1))
    results = joblib.Parallel(n_jobs=2, backend="loky")(joblib.delayed(_fit_in_worker)(s) for s in range(2))
    for env, limit, used in results:
        assert env == str(share)
        assert limit == share and 1 <= used <= share, (env, limit, used)


def test_threadpoolctl_limits_cap_a_fit():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if _core.max_threads() < 2:
        pytest.skip("a single thread already")
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert _core.max_threads() == 1
        assert mlp.build_info()["threads"] == 1
        X = np.random.default_rng(0).standard_normal((4000, 16))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            est = MLPRegressor(hidden_layer_sizes=(256,), max_iter=2, batch_size=512, random_state=0).fit(X, X[:, 0])
        assert est._net.last_threads == 1
    assert _core.max_threads() >= 2


# ------------------------------------------------------------------------------ interrupts

# One epoch sized to last 10 s or more, interrupted 0.3 s in: Python raises KeyboardInterrupt
# between calls into C++ anyway, so only a single long epoch shows the C++ loop's own check.
def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _interrupt_data(rows, kind="reg"):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((rows, 16))
    y = (X[:, 0] > 0).astype(int) if kind == "clf" else np.tanh(X[:, :3].sum(axis=1))
    return X, y


def test_ctrl_c_during_model_fit_leaves_a_model_that_predicts_saves_and_fits(tmp_path, interrupt_after,
                                                                            rows_for_seconds):
    def make():
        first = Dense(256, input_size=16, activation="tanh", seed=0)
        model = Model(first, Dense(1, seed=1)(Dense(128, activation="relu", seed=2)(first)))
        model.compile("mse", optimizer="adam")
        return model

    X, y = _interrupt_data(500)
    X = X.astype(np.float32)
    probe = make()
    rows = rows_for_seconds(10.0, lambda n: _timed(
        lambda: probe.fit(X[:n], y[:n], 1, 1e-6, batch_size=1, progress=False)))
    X, y = _interrupt_data(rows)
    X = X.astype(np.float32)
    model = make()
    timer = interrupt_after(0.3)
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, y, 1, 1e-3, batch_size=1, progress=False)
    assert time.perf_counter() - timer.fired < 1.0
    assert 0 < model._net.step < rows
    assert finite(model)
    pred = model.predict(X[:50])
    assert np.isfinite(pred).all()
    path = tmp_path / "interrupted.mlp"
    model.save(path)
    loaded = mlp.load(path)
    np.testing.assert_array_equal(loaded.predict(X[:50]), pred)
    assert math.isfinite(loaded.fit(X[:500], y[:500], 2, 1e-3, progress=False))
    assert math.isfinite(model.fit(X[:500], y[:500], 2, 1e-3, progress=False))


@pytest.mark.parametrize("kind", ["clf", "reg"])
def test_ctrl_c_during_estimator_fit_keeps_a_usable_estimator(tmp_path, kind, interrupt_after, rows_for_seconds):
    params = dict(batch_size=1, max_iter=1, tol=0.0, n_iter_no_change=10_000, random_state=0)
    make = (lambda: MLPClassifier((256, 128), **params)) if kind == "clf" else \
        (lambda: MLPRegressor(hidden_layer_sizes=(256, 128), **params))

    def fit(est, X, y):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # ConvergenceWarning after one epoch
            est.fit(X, y)

    X, y = _interrupt_data(500, kind)
    rows = rows_for_seconds(10.0, lambda n: _timed(lambda: fit(make(), X[:n], y[:n])))
    X, y = _interrupt_data(rows, kind)
    est = make()
    timer = interrupt_after(0.3)
    with pytest.warns(UserWarning, match="interrupted"):  # scikit-learn's behaviour: warn, keep
        est.fit(X, y)
    assert time.perf_counter() - timer.fired < 1.0
    assert 0 < est._net.step < rows
    assert finite(est)
    pred = est.predict(X[:50])
    est.save(tmp_path / "est.mlp")
    loaded = mlp.load(tmp_path / "est.mlp")
    np.testing.assert_array_equal(loaded.predict(X[:50]), pred)
    loaded.set_params(batch_size="auto", max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        loaded.fit(X[:500], y[:500])
        est.partial_fit(X[:500], y[:500])
    assert finite(loaded) and finite(est)


# ------------------------------------------------------------------------------ memory

def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


needs_proc = pytest.mark.skipif(
    not os.path.exists("/proc/self/statm") or bool(os.environ.get("MLP_SANITIZED")),
    reason="needs Linux /proc, and no AddressSanitizer (its quarantine holds freed memory)")


def _growth(cycle, warmup, cycles):
    """RSS growth over `cycles` calls of cycle(i), after `warmup` calls. Each call's garbage is
    collected at once: a Model holds reference cycles, and piles of them waiting for the cyclic
    collector would raise the peak, which the allocator then keeps. (gc.freeze: the collections
    skip the objects that existed before, so that each one is quick.)"""
    gc.collect()
    gc.freeze()
    try:
        for i in range(warmup):
            cycle(i)
            gc.collect()
        before = rss_bytes()
        for i in range(cycles):
            cycle(warmup + i)
            gc.collect()
        return rss_bytes() - before
    finally:
        gc.unfreeze()


# The resident size may not grow by this much over the cycles of a test. Without a leak it stays
# within about 0.2 MiB here. The inputs are sized so that keeping one converted copy of them a
# cycle (or a call), or one Network a cycle, grows it three times as much or more.
RSS_LIMIT = 4 * 2**20


@needs_proc
def test_rss_stays_flat_over_100_fit_predict_cycles():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, 16))  # 250 KiB; its float32 copy (a Model's input) 125 KiB
    y_reg = X[:, :4] @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.1 * rng.standard_normal(2000)
    y_clf = (X[:, 0] + X[:, 1] ** 2 > 0.5).astype(int) + (X[:, 2] > 1).astype(int)

    def cycle(i):  # a Model, and in turn a classifier (adam) or a regressor (L-BFGS)
        # A Network of 4.6k parameters with Adam's state, shard gradients and scratch: ~0.5 MiB.
        model = small_model(n_in=16, hidden=256, seed=i, optimizer="adam")
        model.fit(X, y_reg, 2, 1e-3, batch_size=64, progress=False, validation_data=(X[:200], y_reg[:200]))
        model.predict(X)
        if i % 2:
            MLPClassifier((64,), max_iter=2, random_state=i).fit(X, y_clf).predict_proba(X)
        else:
            MLPRegressor(hidden_layer_sizes=(64,), solver="lbfgs", max_iter=3, random_state=i).fit(X, y_reg).predict(X)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        growth = _growth(cycle, warmup=10, cycles=100)
    print(f"\nRSS growth over 100 fit/predict cycles: {growth / 2**20:.2f} MiB")
    assert growth < RSS_LIMIT, f"RSS grew by {growth / 2**20:.1f} MiB over 100 cycles"


@needs_proc
@pytest.mark.filterwarnings("ignore:invalid value encountered in reduce:RuntimeWarning:numpy")
def test_refused_calls_free_what_they_allocated(data):
    X, y_reg, _ = data
    model = small_model()
    clf = MLPRegressor(hidden_layer_sizes=(8,), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        clf.fit(X, y_reg)
    big = np.random.default_rng(0).standard_normal((16000, 4))  # 500 KiB, its float32 copy 250
    nan = big.copy()
    nan[-1, -1] = np.nan
    huge = np.full((16000, 4), 1e300)
    strings = big[:2000].astype(object).astype(str)
    net = _core.Network([4, 8, 1], [A.RELU, A.IDENTITY], [0.0, 0.0], _core.LossKind.MSE, 1.0, "float64")
    calls = [
        lambda: model.fit(nan, big[:, 0], 1, 0.1),
        lambda: model.predict(big[:, :3]),
        lambda: model.predict(strings),
        lambda: model.predict(huge),
        lambda: clf.predict(nan),
        lambda: clf.fit(big, big[:, 0] * np.inf),
        lambda: clf.partial_fit(big[:, :3], big[:, 0]),
        lambda: Dense(10**6, input_size=10**6),
        lambda: _core.Network([4, 2**31, 4], [0, 0], [0.0, 0.0], 0, 1.0, "float64"),
        lambda: net.train_epoch(big, big[:, :1].copy(), None, 0, True, 0.1),
        lambda: net.predict(np.asfortranarray(big)),
        lambda: _core.gemm(big, big.astype(np.float32)),
    ]

    def cycle(i):
        for call in calls:
            with pytest.raises((ValueError, TypeError)):
                call()

    growth = _growth(cycle, warmup=10, cycles=50)
    print(f"\nRSS growth over 50 x {len(calls)} refused calls: {growth / 2**20:.2f} MiB")
    assert growth < RSS_LIMIT, f"RSS grew by {growth / 2**20:.1f} MiB"


# ------------------------------------------------------------------------------ determinism

def _coefs(est):
    return [c.copy() for c in est.coefs_ + est.intercepts_]


def _fit_estimator(kind, n_threads=None, eval_set=False, X=None, y=None):
    params = dict(max_iter=8, random_state=7, n_threads=n_threads, early_stopping=eval_set)
    est = MLPClassifier((48, 24), **params) if kind == "clf" else MLPRegressor(hidden_layer_sizes=(48,), **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return est.fit(X, y)


@pytest.mark.parametrize("kind", ["clf", "reg"])
@pytest.mark.parametrize("early_stopping", [False, True])
def test_same_random_state_bit_identical_across_runs_and_thread_counts(data, kind, early_stopping):
    X, y_reg, y_clf = data
    X = np.vstack([X] * 4)  # batches of 200 rows: several shards per batch
    y = np.concatenate([y_clf if kind == "clf" else y_reg] * 4)
    first = _coefs(_fit_estimator(kind, None, early_stopping, X, y))
    for n_threads in (None, 1, 2, 3):
        again = _coefs(_fit_estimator(kind, n_threads, early_stopping, X, y))
        for a, b in zip(first, again):
            np.testing.assert_array_equal(a, b, err_msg=f"n_threads={n_threads}")


def test_a_larger_earlier_call_does_not_change_training():
    # A thread's scratch buffers keep the size of the largest call so far; training must not
    # depend on them (it once chunked shards by their capacity, see csrc/network.cpp chunk_for).
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((300, 64)).astype(np.float32), rng.standard_normal((300, 64)).astype(np.float32)
    xb, yb = rng.standard_normal((8192, 64)).astype(np.float32), rng.standard_normal((8192, 64)).astype(np.float32)

    def train(threads, big_call_first):
        net = _core.Network([64, 256, 64], [A.TANH, A.IDENTITY], [0.0, 0.0], _core.LossKind.MSE, 1.0, "float32")
        net.params[...] = np.random.default_rng(1).standard_normal(net.n_params) * 0.1
        net.set_optimizer(_core.OptimizerKind.SGD)
        net.set_threads(threads)
        if big_call_first:
            net.loss(xb, yb, None)
        net.set_seed(3)
        for _ in range(3):
            net.train_epoch(x, y, None, 300, True, 0.01)
        return net.params.copy()

    base = train(1, False)
    for threads, big in ((1, True), (2, False), (2, True), (0, True)):
        np.testing.assert_array_equal(train(threads, big), base, err_msg=f"threads={threads} big={big}")


def test_model_seed_bit_identical_across_runs_and_thread_counts(data):
    X, y_reg, _ = data
    results = []
    for threads in (0, 1, 2, 0):
        model = small_model(hidden=64, seed=3, optimizer="adam")
        model._net.set_threads(threads)
        model.fit(X, y_reg, 4, 1e-3, batch_size=128, seed=11, progress=False)
        results.append(np.concatenate([layer.weights.ravel() for layer in model.layers]))
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


SCRIPT = textwrap.dedent("""
    import sys, warnings
    import numpy as np
    from mlp import Dense, Model
    from mlp.sklearn import MLPClassifier
    rng = np.random.default_rng(0)
    X = rng.standard_normal((600, 6)); y = (X[:, 0] * X[:, 1] > 0).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = MLPClassifier((32, 16), max_iter=6, random_state=5).fit(X, y)
    first = Dense(16, input_size=6, activation="relu", seed=1)
    model = Model(first, Dense(1, activation="sigmoid", seed=2)(first))
    model.compile("binary_cross_entropy", optimizer="adam")
    model.fit(X, y, 3, 1e-2, seed=9, progress=False)
    parts = clf.coefs_ + clf.intercepts_ + [l.weights for l in model.layers] + [l.bias for l in model.layers]
    sys.stdout.write(np.concatenate([np.ravel(p) for p in parts]).astype(np.float64).tobytes().hex())
""")


def test_same_seed_bit_identical_across_processes_and_omp_thread_counts(data, tmp_path):
    outputs = []
    for omp in ("1", None):  # one thread, and the default (all cores, automatic)
        env = _subprocess_env()
        env.pop("OMP_NUM_THREADS", None)
        if omp:
            env["OMP_NUM_THREADS"] = omp
        # cwd=tmp_path: `python -c` puts the working directory first on sys.path, and a source
        # checkout's mlp/ there holds no compiled extension when mlp is installed elsewhere.
        done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env,
                              timeout=300, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    assert outputs[0] and all(out == outputs[0] for out in outputs[1:])
