"""The estimators' training features beyond scikit-learn (#6175): dropout, solver='adamw' and
decoupled weight_decay, clipnorm, label_smoothing (MLPClassifier) and the per-step
learning_rate schedules.

Every feature defaults to off, and off must leave every fit bit-identical to one that never
names it (and so to scikit-learn's, which test_sklearn.py and test_sklearn_suite.py check).
Where a feature is on, the tests check what it does against the rule it documents: the decay
step ``-lr * weight_decay * W``, the clipped step's norm, the smoothed cross-entropy, the
schedules' factors, and a predict that never drops anything.
"""
from __future__ import annotations

import io
import json
import math
import pickle
import zipfile

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_digits, load_iris  # noqa: E402
from sklearn.model_selection import GridSearchCV, StratifiedKFold  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkMLPClassifier  # noqa: E402

import mlp  # noqa: E402
from mlp import MLPClassifier, MLPRegressor, schedules  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

_X, IRIS_Y = load_iris(return_X_y=True)
IRIS_X = (_X - _X.mean(axis=0)) / _X.std(axis=0)
_DX, _DY = load_digits(return_X_y=True)
DIGITS_X, DIGITS_Y = _DX[:300] / 16.0, _DY[:300]


def _regression(n=120, n_features=4, seed=0):
    r = np.random.default_rng(seed)
    X = r.standard_normal((n, n_features))
    return X, np.tanh(X @ r.standard_normal(n_features)) + 0.1 * r.standard_normal(n)


REG_X, REG_Y = _regression()

OFF = dict(dropout=0.0, weight_decay=None, clipnorm=None)


def _params(est):
    return est.coefs_ + est.intercepts_


def _assert_same_fit(a, b):
    for x, y in zip(_params(a), _params(b)):
        assert_array_equal(x, y)
    assert a.loss_curve_ == b.loss_curve_
    assert a.n_iter_ == b.n_iter_


def _differs(a, b):
    return any(not np.array_equal(x, y) for x, y in zip(_params(a), _params(b)))


def _initial_weights(est, X, y):
    """The weights `est`'s fit starts from: one epoch at a learning rate too small to move a
    float64 weight (lr * grad is below half an ulp of every weight)."""
    first = clone(est).set_params(learning_rate="constant", learning_rate_init=1e-300,
                                  max_iter=1, early_stopping=False)
    return first.fit(X, y)


# ------------------------------------------------------------------------------------------------
# off by default: bit-identical to a fit without the parameters


@pytest.mark.parametrize("make", [
    lambda **kw: MLPClassifier(hidden_layer_sizes=(16,), max_iter=15, random_state=0, **kw),
    lambda **kw: MLPClassifier(hidden_layer_sizes=(8, 8), solver="sgd", learning_rate="invscaling",
                               max_iter=15, random_state=0, **kw),
    lambda **kw: MLPClassifier(hidden_layer_sizes=(8,), solver="sgd", learning_rate="adaptive",
                               early_stopping=True, max_iter=15, random_state=0, **kw),
    lambda **kw: MLPRegressor(hidden_layer_sizes=(8,), max_iter=15, random_state=0, **kw),
], ids=["adam", "sgd-invscaling", "sgd-adaptive-early-stopping", "regressor"])
def test_defaults_leave_the_fit_bit_identical(make):
    regressor = isinstance(make(), MLPRegressor)
    X, y = (REG_X, REG_Y) if regressor else (IRIS_X, IRIS_Y)
    extra = {} if regressor else {"label_smoothing": 0.0}
    plain = make().fit(X, y)
    explicit = make(**OFF, **extra).fit(X, y)
    _assert_same_fit(plain, explicit)
    assert plain.history_["learning_rate"] == explicit.history_["learning_rate"]
    # weight_decay=0.0 is the same as None for every solver but 'adamw'
    zero = make(weight_decay=0.0).fit(X, y)
    _assert_same_fit(plain, zero)


def test_defaults_still_follow_scikit_learn():
    params = dict(hidden_layer_sizes=(10,), max_iter=10, random_state=0)
    ours = MLPClassifier(**params, **OFF, label_smoothing=0.0).fit(IRIS_X, IRIS_Y)
    theirs = SkMLPClassifier(**params).fit(IRIS_X, IRIS_Y)
    for a, b in zip(_params(ours), theirs.coefs_ + theirs.intercepts_):
        assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)


# ------------------------------------------------------------------------------------------------
# dropout


def _numpy_forward(clf, X):
    """predict_proba of a ReLU network with a softmax output, in numpy: no dropout anywhere."""
    h = X
    for W, b in zip(clf.coefs_[:-1], clf.intercepts_[:-1]):
        h = np.maximum(h @ W + b, 0.0)
    z = h @ clf.coefs_[-1] + clf.intercepts_[-1]
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def test_dropout_changes_training_but_not_prediction():
    params = dict(hidden_layer_sizes=(32, 16), max_iter=40, learning_rate_init=0.01,
                  random_state=0)
    plain = MLPClassifier(**params).fit(DIGITS_X, DIGITS_Y)
    dropped = MLPClassifier(dropout=0.3, **params).fit(DIGITS_X, DIGITS_Y)
    assert _differs(plain, dropped)
    assert plain.loss_curve_ != dropped.loss_curve_
    assert list(dropped._net.dropout) == [0.3, 0.3, 0.0]  # the output layer is never dropped
    # predict is deterministic and has no dropout: the plain forward pass of the weights
    first = dropped.predict_proba(DIGITS_X)
    assert_array_equal(dropped.predict_proba(DIGITS_X), first)
    assert_array_equal(dropped.predict(DIGITS_X), dropped.predict(DIGITS_X))
    assert dropped.score(DIGITS_X, DIGITS_Y) == dropped.score(DIGITS_X, DIGITS_Y)
    assert_allclose(first, _numpy_forward(dropped, DIGITS_X), rtol=1e-10, atol=1e-12)
    assert dropped.score(DIGITS_X, DIGITS_Y) > 0.9


def test_dropout_per_layer_rates():
    params = dict(hidden_layer_sizes=(16, 16), max_iter=8, random_state=0)
    plain = MLPClassifier(**params).fit(IRIS_X, IRIS_Y)
    # a sequence of zeros is no dropout at all
    _assert_same_fit(plain, MLPClassifier(dropout=[0.0, 0.0], **params).fit(IRIS_X, IRIS_Y))
    _assert_same_fit(plain, MLPClassifier(dropout=np.zeros(2), **params).fit(IRIS_X, IRIS_Y))
    second = MLPClassifier(dropout=(0.0, 0.5), **params).fit(IRIS_X, IRIS_Y)
    both = MLPClassifier(dropout=0.5, **params).fit(IRIS_X, IRIS_Y)
    assert list(second._net.dropout) == [0.0, 0.5, 0.0]
    assert _differs(second, plain) and _differs(second, both) and _differs(both, plain)
    one = MLPClassifier(hidden_layer_sizes=5, dropout=[0.4], max_iter=3, random_state=0)
    assert list(one.fit(IRIS_X, IRIS_Y)._net.dropout) == [0.4, 0.0]


def test_dropout_seeded_fits_repeat_at_any_thread_count():
    params = dict(hidden_layer_sizes=(24, 12), dropout=[0.2, 0.4], max_iter=6, random_state=3)
    one = MLPClassifier(n_threads=1, **params).fit(DIGITS_X, DIGITS_Y)
    again = MLPClassifier(n_threads=1, **params).fit(DIGITS_X, DIGITS_Y)
    two = MLPClassifier(n_threads=2, **params).fit(DIGITS_X, DIGITS_Y)
    _assert_same_fit(one, again)
    _assert_same_fit(one, two)
    # without shuffling the core's own seed (drawn from random_state) drives the masks
    noshuffle = dict(params, shuffle=False)
    _assert_same_fit(MLPClassifier(n_threads=1, **noshuffle).fit(DIGITS_X, DIGITS_Y),
                     MLPClassifier(n_threads=2, **noshuffle).fit(DIGITS_X, DIGITS_Y))


@pytest.mark.parametrize("shuffle", [True, False])
def test_dropout_masks_come_from_random_state(shuffle):
    # partial_fit steps from the same weights over the same rows (one row: no order to
    # shuffle), with random_state differing: only the masks' seed, drawn from it, can differ.
    def step(dropout, random_state):
        base = MLPRegressor(hidden_layer_sizes=(32,), dropout=dropout, shuffle=shuffle,
                            random_state=0).partial_fit(REG_X, REG_Y)
        return base.set_params(random_state=random_state).partial_fit(REG_X[:1], REG_Y[:1])

    assert _differs(step(0.5, 1), step(0.5, 2))
    _assert_same_fit(step(0.5, 1), step(0.5, 1))
    _assert_same_fit(step(0.0, 1), step(0.0, 2))  # without dropout random_state changes nothing


def test_dropout_in_partial_fit_regressor_and_early_stopping():
    reg = MLPRegressor(hidden_layer_sizes=(16,), dropout=0.2, random_state=0)
    for _ in range(3):
        reg.partial_fit(REG_X, REG_Y)
    assert reg.t_ == 3 * len(REG_X) and np.isfinite(reg.loss_)
    # early stopping scores the validation data as predict does (no dropout), and keeps the
    # weights of the best score
    idx = np.random.default_rng(0).permutation(len(IRIS_X))
    tr, va = idx[:100], idx[100:]
    clf = MLPClassifier(hidden_layer_sizes=(16,), dropout=0.2, early_stopping=True, max_iter=100,
                        learning_rate_init=0.05, random_state=0)
    clf.fit(IRIS_X[tr], IRIS_Y[tr], eval_set=(IRIS_X[va], IRIS_Y[va]))
    assert len(clf.validation_scores_) == clf.n_iter_ < 100
    assert clf.score(IRIS_X[va], IRIS_Y[va]) == clf.best_validation_score_ > 0.9


def test_set_params_between_warm_starts_reaches_the_network():
    clf = MLPClassifier(hidden_layer_sizes=(8,), dropout=0.5, label_smoothing=0.2, warm_start=True,
                        max_iter=3, random_state=0).fit(IRIS_X, IRIS_Y)
    assert list(clf._net.dropout) == [0.5, 0.0] and clf._net.label_smoothing == 0.2
    clf.set_params(dropout=0.0, label_smoothing=0.0).fit(IRIS_X, IRIS_Y)
    assert list(clf._net.dropout) == [0.0, 0.0] and clf._net.label_smoothing == 0.0
    clf.set_params(dropout=[0.25]).partial_fit(IRIS_X, IRIS_Y)
    assert list(clf._net.dropout) == [0.25, 0.0]


# ------------------------------------------------------------------------------------------------
# solver='adamw', weight_decay


def _weight_norm(est):
    return math.sqrt(sum(float(np.sum(W ** 2)) for W in est.coefs_))


def test_adamw_decays_the_weights():
    params = dict(hidden_layer_sizes=(32,), max_iter=30, learning_rate_init=0.01, random_state=0)
    adam = MLPClassifier(solver="adam", **params).fit(DIGITS_X, DIGITS_Y)
    adamw = MLPClassifier(solver="adamw", **params).fit(DIGITS_X, DIGITS_Y)  # 0.01 by default
    strong = MLPClassifier(solver="adamw", weight_decay=0.5, **params).fit(DIGITS_X, DIGITS_Y)
    assert _differs(adam, adamw)
    assert _weight_norm(strong) < _weight_norm(adamw) < _weight_norm(adam)
    assert adamw.score(DIGITS_X, DIGITS_Y) > 0.8
    # adamw is adam plus the decay: without it, the same fit bit for bit, and adam with the
    # decay is adamw
    _assert_same_fit(adam, MLPClassifier(solver="adamw", weight_decay=0.0, **params)
                     .fit(DIGITS_X, DIGITS_Y))
    _assert_same_fit(adamw, MLPClassifier(solver="adam", weight_decay=0.01, **params)
                     .fit(DIGITS_X, DIGITS_Y))
    _assert_same_fit(adamw, MLPClassifier(solver="adamw", weight_decay=0.01, **params)
                     .fit(DIGITS_X, DIGITS_Y))


@pytest.mark.parametrize("solver", ["sgd", "adamw"])
def test_weight_decay_step_is_decoupled(solver):
    # One full-batch step from the same weights with and without decay: the difference is
    # exactly -lr * weight_decay * W on the weight matrices, and nothing on the intercepts.
    lr, wd = 0.05, 0.3
    params = dict(hidden_layer_sizes=(6,), solver=solver, momentum=0.0, alpha=0.0,
                  batch_size=len(REG_X), shuffle=False, learning_rate_init=lr, max_iter=1,
                  random_state=0)
    start = _initial_weights(MLPRegressor(**params), REG_X, REG_Y)
    plain = MLPRegressor(**params, weight_decay=0.0).fit(REG_X, REG_Y)
    decayed = MLPRegressor(**params, weight_decay=wd).fit(REG_X, REG_Y)
    for W0, Wp, Wd in zip(start.coefs_, plain.coefs_, decayed.coefs_):
        assert_allclose(Wd - Wp, -lr * wd * W0, rtol=1e-9, atol=1e-15)
    for bp, bd in zip(plain.intercepts_, decayed.intercepts_):
        assert_array_equal(bp, bd)


def test_weight_decay_with_sgd_shrinks_weights():
    params = dict(hidden_layer_sizes=(16,), solver="sgd", learning_rate_init=0.1, max_iter=20,
                  random_state=0)
    plain = MLPClassifier(**params).fit(IRIS_X, IRIS_Y)
    decayed = MLPClassifier(weight_decay=0.2, **params).fit(IRIS_X, IRIS_Y)
    assert _weight_norm(decayed) < _weight_norm(plain)


# ------------------------------------------------------------------------------------------------
# clipnorm


def test_clipnorm_small_clips_huge_changes_nothing():
    params = dict(hidden_layer_sizes=(16,), max_iter=10, learning_rate_init=0.01, random_state=0)
    plain = MLPClassifier(**params).fit(IRIS_X, IRIS_Y)
    _assert_same_fit(plain, MLPClassifier(clipnorm=1e12, **params).fit(IRIS_X, IRIS_Y))
    clipped = MLPClassifier(clipnorm=1e-3, **params).fit(IRIS_X, IRIS_Y)
    assert _differs(plain, clipped)
    reg_params = dict(hidden_layer_sizes=(8,), solver="sgd", max_iter=5, random_state=0)
    reg = MLPRegressor(**reg_params).fit(REG_X, REG_Y)
    _assert_same_fit(reg, MLPRegressor(clipnorm=1e12, **reg_params).fit(REG_X, REG_Y))
    assert _differs(reg, MLPRegressor(clipnorm=1e-3, **reg_params).fit(REG_X, REG_Y))


def test_clipnorm_bounds_the_step():
    # plain SGD, one full-batch step: the step is lr * the clipped gradient, of norm lr * clipnorm
    lr, clip = 0.1, 1e-3
    params = dict(hidden_layer_sizes=(6,), solver="sgd", momentum=0.0, alpha=0.0,
                  batch_size=len(REG_X), shuffle=False, learning_rate_init=lr, max_iter=1,
                  random_state=0)
    start = _initial_weights(MLPRegressor(**params), REG_X, REG_Y)
    clipped = MLPRegressor(clipnorm=clip, **params).fit(REG_X, REG_Y)
    plain = MLPRegressor(**params).fit(REG_X, REG_Y)
    step = np.concatenate([(a - b).ravel() for a, b in zip(_params(clipped), _params(start))])
    full = np.concatenate([(a - b).ravel() for a, b in zip(_params(plain), _params(start))])
    assert np.linalg.norm(full) > 10 * lr * clip  # the clip is active
    assert_allclose(np.linalg.norm(step), lr * clip, rtol=1e-4)
    assert_allclose(step / np.linalg.norm(step), full / np.linalg.norm(full), atol=1e-9)


# ------------------------------------------------------------------------------------------------
# label_smoothing


def test_label_smoothing_changes_the_loss_and_keeps_probabilities_valid():
    params = dict(hidden_layer_sizes=(16,), max_iter=200, learning_rate_init=0.01, random_state=0)
    plain = MLPClassifier(**params).fit(IRIS_X, IRIS_Y)
    smooth = MLPClassifier(label_smoothing=0.2, **params).fit(IRIS_X, IRIS_Y)
    assert plain.loss_curve_ != smooth.loss_curve_
    assert smooth.loss_ > plain.loss_  # smoothed targets cannot be matched as closely
    proba = smooth.predict_proba(IRIS_X)
    assert proba.shape == (150, 3) and ((proba > 0) & (proba < 1)).all()
    assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    # less confident than the unsmoothed fit, and about as accurate
    assert proba.max(axis=1).mean() < plain.predict_proba(IRIS_X).max(axis=1).mean()
    assert smooth.score(IRIS_X, IRIS_Y) > 0.9


@pytest.mark.parametrize("classes", [3, 2], ids=["softmax", "binary"])
def test_label_smoothing_is_the_smoothed_cross_entropy(classes):
    ls = 0.3
    mask = IRIS_Y < classes
    X, y = IRIS_X[mask], IRIS_Y[mask]
    params = dict(hidden_layer_sizes=(5,), alpha=0.0, batch_size=len(X), max_iter=1,
                  learning_rate_init=1e-300, random_state=0)
    clf = MLPClassifier(label_smoothing=ls, **params).fit(X, y)
    p = clf.predict_proba(X)  # the weights the one epoch's loss was computed at
    target = np.eye(classes)[y] * (1 - ls) + ls / classes
    assert_allclose(clf.loss_curve_[0], -np.mean(np.sum(target * np.log(p), axis=1)), rtol=1e-10)
    plain = MLPClassifier(**params).fit(X, y)
    assert_allclose(plain.loss_curve_[0], -np.mean(np.log(p[np.arange(len(y)), y])), rtol=1e-10)


def test_label_smoothing_with_lbfgs_and_multilabel():
    lbfgs = MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", label_smoothing=0.1,
                          max_iter=30, random_state=0).fit(IRIS_X, IRIS_Y)
    plain = MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=30,
                          random_state=0).fit(IRIS_X, IRIS_Y)
    assert lbfgs.loss_ != plain.loss_ and lbfgs.score(IRIS_X, IRIS_Y) > 0.9
    Y = np.column_stack([IRIS_Y == 0, IRIS_Y == 2, IRIS_X[:, 0] > 0]).astype(int)
    multi = MLPClassifier(hidden_layer_sizes=(8,), label_smoothing=0.1, max_iter=50,
                          random_state=0).fit(IRIS_X, Y)
    proba = multi.predict_proba(IRIS_X)
    assert proba.shape == (150, 3) and ((proba > 0) & (proba < 1)).all()


# ------------------------------------------------------------------------------------------------
# learning_rate schedules


@pytest.mark.parametrize("solver", ["sgd", "adam", "adamw"])
@pytest.mark.parametrize("name", schedules.ESTIMATOR_SCHEDULES)
def test_schedule_names_log_the_rate_of_each_epochs_last_step(name, solver):
    lr, max_iter, batch = 0.01, 12, 32
    clf = MLPClassifier(hidden_layer_sizes=(8,), solver=solver, learning_rate=name,
                        learning_rate_init=lr, batch_size=batch, max_iter=max_iter,
                        n_iter_no_change=max_iter, tol=0.0, random_state=0).fit(IRIS_X, IRIS_Y)
    steps = math.ceil(len(IRIS_X) / batch)  # 5
    total = max_iter * steps
    schedule = schedules.for_estimator(name, lr, total)
    expected = [lr * schedule.factor((e + 1) * steps - 1, total) for e in range(clf.n_iter_)]
    assert clf.n_iter_ == max_iter
    assert_allclose(clf.history_["learning_rate"], expected, rtol=1e-12, atol=1e-18)
    assert np.isfinite(clf.loss_)
    if name != "linear_warmup":  # its 3-step warmup ends within the first epoch
        assert len(set(clf.history_["learning_rate"])) > 1  # the schedule really moves


def test_schedule_spans_the_training_rows_after_the_early_stopping_split():
    lr, max_iter, batch = 0.01, 6, 32
    clf = MLPClassifier(hidden_layer_sizes=(8,), learning_rate="cosine", learning_rate_init=lr,
                        batch_size=batch, early_stopping=True, validation_fraction=0.2,
                        max_iter=max_iter, n_iter_no_change=max_iter, tol=0.0,
                        random_state=0).fit(IRIS_X, IRIS_Y)
    steps = math.ceil(120 / batch)  # 4, where all 150 rows would make 5
    total = max_iter * steps
    schedule = schedules.for_estimator("cosine", lr, total)
    expected = [lr * schedule.factor((e + 1) * steps - 1, total) for e in range(clf.n_iter_)]
    assert_allclose(clf.history_["learning_rate"], expected, rtol=1e-12, atol=1e-18)


@pytest.mark.parametrize("name", schedules.ESTIMATOR_SCHEDULES)
def test_schedule_runs_in_the_core(name):
    # Plain SGD over unshuffled mini-batches replayed in numpy from the same weights: step t
    # moves the weights by -lr * factor(t) * grad, with the factors of the fit's
    # 5 epochs * 6 batches = 30 steps (warmups: 2 steps).
    lr, epochs, batch = 0.2, 5, 20
    params = dict(hidden_layer_sizes=(6,), solver="sgd", momentum=0.0, alpha=0.0,
                  batch_size=batch, shuffle=False, learning_rate_init=lr, max_iter=epochs,
                  n_iter_no_change=epochs, tol=0.0, random_state=0)
    fitted = MLPRegressor(learning_rate=name, **params).fit(REG_X, REG_Y)
    assert fitted.n_iter_ == epochs
    replay = _initial_weights(MLPRegressor(**params), REG_X, REG_Y)
    total = epochs * len(REG_X) // batch
    schedule = schedules.for_estimator(name, lr, total)
    net, Y = replay._net, REG_Y.reshape(-1, 1)
    for t in range(total):
        rows = slice((t * batch) % len(REG_X), (t * batch) % len(REG_X) + batch)
        _, grad = net.loss_and_grad(REG_X[rows], Y[rows], None)
        net.params[...] = net.params - lr * schedule.factor(t, total) * grad
    assert_allclose(fitted._net.params, net.params, rtol=1e-9, atol=1e-12)
    # and not what a constant rate gives
    constant = MLPRegressor(**params).fit(REG_X, REG_Y)
    assert not np.allclose(fitted._net.params, constant._net.params, rtol=1e-6)


def test_schedule_with_warm_start_restarts():
    clf = MLPClassifier(hidden_layer_sizes=(8,), learning_rate="linear_warmup", batch_size=30,
                        max_iter=4, warm_start=True, random_state=0)
    clf.fit(IRIS_X, IRIS_Y)
    first = list(clf.history_["learning_rate"])
    clf.fit(IRIS_X, IRIS_Y)
    assert clf.history_["learning_rate"] == first + first  # each fit runs the schedule anew


def test_partial_fit_refuses_a_schedule():
    for est, args in ((MLPClassifier(learning_rate="cosine"), (IRIS_X, IRIS_Y, np.unique(IRIS_Y))),
                      (MLPRegressor(learning_rate="coslog4"), (REG_X, REG_Y))):
        with pytest.raises(ValueError, match="learning_rate") as info:
            est.partial_fit(*args)
        assert "partial_fit" in str(info.value)
        assert not hasattr(est, "coefs_") and not hasattr(est, "classes_")
    # after a fit, back to a constant rate for partial_fit
    clf = MLPClassifier(hidden_layer_sizes=(8,), learning_rate="cosine", max_iter=3,
                        random_state=0).fit(IRIS_X, IRIS_Y)
    clf.set_params(learning_rate="constant").partial_fit(IRIS_X, IRIS_Y)
    assert clf.history_["learning_rate"][-1] == clf.learning_rate_init


# ------------------------------------------------------------------------------------------------
# bad values


@pytest.mark.parametrize("kwargs, name", [
    (dict(dropout=1.0), "dropout"),
    (dict(dropout=-0.1), "dropout"),
    (dict(dropout=float("nan")), "dropout"),
    (dict(dropout="0.5"), "dropout"),
    (dict(dropout=True), "dropout"),
    (dict(dropout=[0.1]), "dropout"),  # two hidden layers
    (dict(dropout=[0.1, 0.2, 0.3]), "dropout"),
    (dict(dropout=[0.1, 1.0]), "dropout"),
    (dict(dropout=[0.1, -0.5]), "dropout"),
    (dict(dropout=[0.1, float("nan")]), "dropout"),
    (dict(dropout=[0.1, "a"]), "dropout"),
    (dict(dropout=[0.1, None]), "dropout"),
    (dict(dropout=[[0.1, 0.1]]), "dropout"),
    (dict(dropout={"a": 0.1}), "dropout"),
    (dict(dropout=0.2, solver="lbfgs"), "dropout"),
    (dict(dropout=[0.0, 0.2], solver="lbfgs"), "dropout"),
    (dict(solver="adamx"), "solver"),
    (dict(weight_decay=-0.1), "weight_decay"),
    (dict(weight_decay=float("nan")), "weight_decay"),
    (dict(weight_decay=float("inf")), "weight_decay"),
    (dict(weight_decay="0.1"), "weight_decay"),
    (dict(weight_decay=0.1, solver="lbfgs"), "weight_decay"),
    (dict(clipnorm=0.0), "clipnorm"),
    (dict(clipnorm=-1.0), "clipnorm"),
    (dict(clipnorm=float("inf")), "clipnorm"),
    (dict(clipnorm=float("nan")), "clipnorm"),
    (dict(clipnorm="1"), "clipnorm"),
    (dict(clipnorm=1.0, solver="lbfgs"), "clipnorm"),
    (dict(label_smoothing=1.0), "label_smoothing"),
    (dict(label_smoothing=-0.1), "label_smoothing"),
    (dict(label_smoothing=float("nan")), "label_smoothing"),
    (dict(label_smoothing=None), "label_smoothing"),
    (dict(label_smoothing="0.1"), "label_smoothing"),
    (dict(learning_rate="cosine_restarts"), "learning_rate"),
    (dict(learning_rate="cosine", solver="lbfgs"), "learning_rate"),
])
def test_bad_values_raise_naming_the_parameter(kwargs, name):
    clf = MLPClassifier(hidden_layer_sizes=(4, 4), max_iter=2, **kwargs)
    with pytest.raises((ValueError, TypeError), match=name):
        clf.fit(IRIS_X, IRIS_Y)
    assert not hasattr(clf, "coefs_")
    if name != "label_smoothing":
        reg = MLPRegressor(hidden_layer_sizes=(4, 4), max_iter=2, **kwargs)
        with pytest.raises((ValueError, TypeError), match=name):
            reg.fit(REG_X, REG_Y)


def test_label_smoothing_is_for_the_classifier_only():
    with pytest.raises(TypeError, match="label_smoothing"):
        MLPRegressor(label_smoothing=0.1)
    assert "label_smoothing" not in MLPRegressor().get_params()


def test_good_edge_values_are_accepted():
    MLPClassifier(hidden_layer_sizes=(), dropout=0.5, max_iter=2).fit(IRIS_X, IRIS_Y)  # none to drop
    MLPClassifier(hidden_layer_sizes=(), dropout=[], max_iter=2).fit(IRIS_X, IRIS_Y)
    MLPClassifier(hidden_layer_sizes=(4,), dropout=np.float32(0.25), weight_decay=0,
                  clipnorm=np.float64(2.0), label_smoothing=np.float64(0.5), max_iter=2,
                  solver="sgd").fit(IRIS_X, IRIS_Y)
    # zeros are no feature, so lbfgs takes them
    MLPClassifier(hidden_layer_sizes=(4,), solver="lbfgs", dropout=[0.0], weight_decay=0.0,
                  max_iter=2).fit(IRIS_X, IRIS_Y)


# ------------------------------------------------------------------------------------------------
# parameters, persistence, composition


def _all_features(**kw):
    return MLPClassifier(hidden_layer_sizes=(12, 8), solver="adamw", weight_decay=0.05,
                         dropout=[0.1, 0.3], clipnorm=2.0, label_smoothing=0.1,
                         learning_rate="warmup_cosine", learning_rate_init=0.01, max_iter=15,
                         random_state=0, n_threads=1, **kw)


def test_get_params_set_params_clone():
    clf = _all_features()
    params = clf.get_params()
    for name, value in dict(dropout=[0.1, 0.3], weight_decay=0.05, clipnorm=2.0,
                            label_smoothing=0.1, learning_rate="warmup_cosine",
                            solver="adamw").items():
        assert params[name] == value
    defaults = MLPClassifier().get_params()
    assert (defaults["dropout"], defaults["weight_decay"], defaults["clipnorm"],
            defaults["label_smoothing"]) == (0.0, None, None, 0.0)
    assert MLPRegressor().get_params()["dropout"] == 0.0
    copy = clone(clf)
    assert copy.get_params() == params
    clf.fit(IRIS_X, IRIS_Y)
    copy.fit(IRIS_X, IRIS_Y)
    assert_array_equal(copy.predict_proba(IRIS_X), clf.predict_proba(IRIS_X))
    copy.set_params(dropout=0.0, clipnorm=None)
    assert copy.get_params()["dropout"] == 0.0 and copy.get_params()["clipnorm"] is None


def _continue_alike(a, b, X, y):
    for est in (a, b):
        est.set_params(learning_rate="constant").partial_fit(X, y)
    for x, z in zip(_params(a), _params(b)):
        assert_array_equal(x, z)


def test_save_load_and_pickle_round_trips(tmp_path):
    clf = _all_features().fit(IRIS_X, IRIS_Y)
    path = tmp_path / "clf.mlp"
    clf.save(path)
    loaded = mlp.load(path)
    unpickled = pickle.loads(pickle.dumps(clf))
    for other in (loaded, unpickled):
        assert type(other) is MLPClassifier
        assert other.get_params() == clf.get_params()
        assert_array_equal(other.predict_proba(IRIS_X), clf.predict_proba(IRIS_X))
        assert other.history_ == clf.history_
        assert list(other._net.dropout) == [0.1, 0.3, 0.0]
        assert other._net.label_smoothing == 0.1
    # the optimizer (Adam's moments, the decay and clipping settings) carries on as it was
    _continue_alike(clf, loaded, IRIS_X, IRIS_Y)
    _continue_alike(unpickled, mlp.load(path), IRIS_X, IRIS_Y)
    reg = MLPRegressor(hidden_layer_sizes=(8,), solver="sgd", dropout=0.2, weight_decay=0.01,
                       clipnorm=1.0, learning_rate="flat_cosine", max_iter=5,
                       random_state=0).fit(REG_X, REG_Y)
    reg.save(tmp_path / "reg.mlp")
    for other in (mlp.load(tmp_path / "reg.mlp"), pickle.loads(pickle.dumps(reg))):
        assert other.get_params() == reg.get_params()
        assert_array_equal(other.predict(REG_X), reg.predict(REG_X))
    _continue_alike(reg, mlp.load(tmp_path / "reg.mlp"), REG_X, REG_Y)


def _rewrite_meta(data: bytes, edit) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            body = src.read(info.filename)
            if info.filename == "meta.json":
                meta = json.loads(body)
                edit(meta)
                body = json.dumps(meta).encode()
            dst.writestr(info, body)
    return out.getvalue()


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_a_file_without_the_new_parameters_loads(solver):
    # Files written before these parameters lack their keys: they load as the defaults.
    clf = MLPClassifier(hidden_layer_sizes=(6,), solver=solver, max_iter=5,
                        random_state=0).fit(IRIS_X, IRIS_Y)
    buf = io.BytesIO()
    clf.save(buf)
    meta = json.loads(zipfile.ZipFile(io.BytesIO(buf.getvalue())).read("meta.json"))
    new = ("dropout", "weight_decay", "clipnorm", "label_smoothing")
    assert all(name in meta["hyperparameters"] for name in new)
    # with the features off, the optimizer entry is the one earlier files have
    assert set(meta["optimizer"]["settings"]) <= {"beta_1", "beta_2", "epsilon", "momentum",
                                                  "nesterov"}

    def drop(meta):
        for name in new:
            del meta["hyperparameters"][name]

    old = mlp.load(io.BytesIO(_rewrite_meta(buf.getvalue(), drop)))
    assert old.get_params() == clf.get_params()
    assert_array_equal(old.predict_proba(IRIS_X), clf.predict_proba(IRIS_X))
    _continue_alike(pickle.loads(pickle.dumps(clf)), old, IRIS_X, IRIS_Y)


def test_a_file_whose_optimizer_settings_disagree_is_refused(tmp_path):
    clf = MLPClassifier(hidden_layer_sizes=(6,), solver="adamw", max_iter=3,
                        random_state=0).fit(IRIS_X, IRIS_Y)
    buf = io.BytesIO()
    clf.save(buf)

    def change(meta):
        meta["hyperparameters"]["weight_decay"] = 0.5

    with pytest.raises(ValueError, match="optimizer"):
        mlp.load(io.BytesIO(_rewrite_meta(buf.getvalue(), change)))

    def bad_dropout(meta):
        meta["hyperparameters"]["dropout"] = [0.5, 0.5]  # one hidden layer

    with pytest.raises(ValueError, match="dropout"):
        mlp.load(io.BytesIO(_rewrite_meta(buf.getvalue(), bad_dropout)))


def test_grid_search_over_dropout():
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=40, learning_rate_init=0.01,
                        random_state=0, n_threads=1)
    grid = {"dropout": [0.0, 0.2, [0.5]], "solver": ["adam", "adamw"]}
    search = GridSearchCV(clf, grid, cv=StratifiedKFold(3, shuffle=True, random_state=0))
    search.fit(IRIS_X, IRIS_Y)
    assert len(search.cv_results_["params"]) == 6
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_params_["dropout"] in grid["dropout"]
    assert search.best_score_ > 0.8
    # the refit best estimator is the fit of its parameters
    best = clone(clf).set_params(**search.best_params_).fit(IRIS_X, IRIS_Y)
    assert_array_equal(best.predict_proba(IRIS_X), search.best_estimator_.predict_proba(IRIS_X))


def test_onnx_export_of_a_dropout_estimator_matches_predict_proba():
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    X = DIGITS_X.astype(np.float32)
    clf = MLPClassifier(hidden_layer_sizes=(24, 12), dropout=[0.3, 0.1], label_smoothing=0.1,
                        max_iter=15, random_state=0).fit(X, DIGITS_Y)
    proto = mlp.to_onnx(clf)
    onnx.checker.check_model(proto, full_check=True)
    assert not any(node.op_type == "Dropout" for node in proto.graph.node)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    out = dict(zip(names, session.run(None, {"input": X})))
    assert_allclose(out["probabilities"], clf.predict_proba(X), rtol=1e-5, atol=1e-5)
    assert_array_equal(out["label"], clf.predict(X))
