"""mlp.MLPClassifier / mlp.MLPRegressor against issue 3: a drop-in for sklearn.neural_network.

Parity first (scikit-learn's estimator checks, constructor, fitted attributes, methods, targets,
inputs, messages, solvers), then what scikit-learn lacks (class_weight, activations, eval_set,
history_, n_threads, device), composition (Pipeline + GridSearchCV, clone, pickle, warm_start,
threadpoolctl), bad input, and cross-validated accuracy against scikit-learn's MLP.
Callbacks are in test_callbacks.py.
"""
from __future__ import annotations

import inspect
import pickle
import re
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

pytest.importorskip("sklearn")
scipy_sparse = pytest.importorskip("scipy.sparse")

import sklearn.neural_network as sk_nn  # noqa: E402
from sklearn.base import clone, is_classifier  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, make_classification  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.metrics import recall_score  # noqa: E402
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.class_weight import compute_sample_weight  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import mlp  # noqa: E402
from mlp import MLPClassifier, MLPRegressor  # noqa: E402

# Most fits here are deliberately cut short; the warning is the subject of its own tests.
no_convergence_warning = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
pytestmark = no_convergence_warning


# ------------------------------------------------------------------------------------------------
# data


def _standardize(X):
    return (X - X.mean(axis=0)) / X.std(axis=0)


_IRIS_X, _IRIS_Y = load_iris(return_X_y=True)
IRIS_X = _standardize(_IRIS_X)
IRIS_Y = _IRIS_Y
_DIGITS_X, _DIGITS_Y = load_digits(return_X_y=True)
DIGITS_X = _DIGITS_X[:400] / 16.0
DIGITS_Y = _DIGITS_Y[:400]


def _regression(n=120, n_features=4, n_outputs=1, seed=0):
    r = np.random.default_rng(seed)
    X = r.standard_normal((n, n_features))
    W = r.standard_normal((n_features, n_outputs))
    Y = np.tanh(X @ W) + 0.1 * r.standard_normal((n, n_outputs))
    return X, (Y[:, 0] if n_outputs == 1 else Y)


def _split(X, y, n_train, seed=0):
    idx = np.random.default_rng(seed).permutation(len(X))
    tr, va = idx[:n_train], idx[n_train:]
    return X[tr], y[tr], X[va], y[va]


# ------------------------------------------------------------------------------------------------
# the package exports them, and scikit-learn's own checks pass with none expected to fail


def test_exported_from_package():
    assert "MLPClassifier" in mlp.__all__ and "MLPRegressor" in mlp.__all__
    assert mlp.MLPClassifier is MLPClassifier and mlp.MLPRegressor is MLPRegressor


@parametrize_with_checks([MLPClassifier(max_iter=100), MLPRegressor(max_iter=100)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# ------------------------------------------------------------------------------------------------
# constructor


@pytest.mark.parametrize("ours, theirs, extra", [
    (MLPClassifier, sk_nn.MLPClassifier, {"class_weight", "n_threads", "device", "callbacks",
                                          "dropout", "weight_decay", "clipnorm",
                                          "label_smoothing"}),
    (MLPRegressor, sk_nn.MLPRegressor, {"n_threads", "device", "callbacks", "dropout",
                                        "weight_decay", "clipnorm"}),
], ids=["classifier", "regressor"])
def test_constructor_parameters_match_sklearn(ours, theirs, extra):
    mine = inspect.signature(ours).parameters
    ref = inspect.signature(theirs).parameters
    for name, p in ref.items():
        assert name in mine, f"{ours.__name__} lacks scikit-learn's parameter {name!r}"
        assert mine[name].default == p.default, (
            f"{ours.__name__}({name}=...) defaults to {mine[name].default!r}, scikit-learn's to {p.default!r}")
        # Same positional/keyword-only split, so positional calls mean the same thing.
        assert mine[name].kind == p.kind, f"{ours.__name__}({name}): {mine[name].kind} vs {p.kind}"
    # scikit-learn's positional parameters come in the same order (MLPRegressor's first is loss).
    positional = [n for n, p in ref.items() if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert list(mine)[:len(positional)] == positional
    assert set(mine) - set(ref) == extra


def test_init_only_stores_parameters():
    # Validation happens in fit (scikit-learn's convention; STYLE.md 8).
    clf = MLPClassifier(hidden_layer_sizes=(0,), solver="nope", learning_rate_init=-1.0)
    assert clf.get_params()["solver"] == "nope"
    with pytest.raises(ValueError):
        clf.fit(IRIS_X, IRIS_Y)


# ------------------------------------------------------------------------------------------------
# fitted attributes


def test_fitted_attributes_multiclass():
    n, d = IRIS_X.shape
    clf = MLPClassifier(hidden_layer_sizes=(7, 5), max_iter=15, random_state=0).fit(IRIS_X, IRIS_Y)
    assert_array_equal(clf.classes_, [0, 1, 2])
    assert clf.n_features_in_ == d
    assert not hasattr(clf, "feature_names_in_")  # only for inputs with string column names
    assert clf.n_iter_ == 15
    assert clf.n_layers_ == 4
    assert clf.n_outputs_ == 3
    assert clf.out_activation_ == "softmax"
    assert [c.shape for c in clf.coefs_] == [(d, 7), (7, 5), (5, 3)]
    assert [b.shape for b in clf.intercepts_] == [(7,), (5,), (3,)]
    assert len(clf.loss_curve_) == clf.n_iter_
    assert np.isfinite(clf.loss_) and clf.loss_ == clf.loss_curve_[-1]
    assert clf.best_loss_ == min(clf.loss_curve_)
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]
    assert clf.t_ == n * clf.n_iter_  # samples seen
    assert clf.validation_scores_ is None and clf.best_validation_score_ is None


def test_fitted_attributes_binary_and_multilabel():
    binary = MLPClassifier(hidden_layer_sizes=(6,), max_iter=5, random_state=0).fit(IRIS_X, IRIS_Y == 2)
    assert_array_equal(binary.classes_, [False, True])
    assert binary.n_outputs_ == 1 and binary.out_activation_ == "logistic"
    assert binary.coefs_[-1].shape == (6, 1)

    Y = np.column_stack([IRIS_Y == 0, IRIS_Y == 1, IRIS_X[:, 0] > 0]).astype(int)
    multilabel = MLPClassifier(hidden_layer_sizes=(6,), max_iter=5, random_state=0).fit(IRIS_X, Y)
    assert_array_equal(multilabel.classes_, [0, 1, 2])
    assert multilabel.n_outputs_ == 3 and multilabel.out_activation_ == "logistic"


@pytest.mark.parametrize("loss, n_outputs, out_activation", [
    ("squared_error", 1, "identity"), ("squared_error", 2, "identity"), ("poisson", 1, "exp"),
])
def test_fitted_attributes_regressor(loss, n_outputs, out_activation):
    X, y = _regression(n_outputs=n_outputs)
    if loss == "poisson":
        y = np.exp(y)
    reg = MLPRegressor(loss=loss, hidden_layer_sizes=(6,), max_iter=5, random_state=0).fit(X, y)
    assert reg.n_outputs_ == n_outputs
    assert reg.out_activation_ == out_activation
    assert reg.coefs_[-1].shape == (6, n_outputs)
    assert reg.predict(X).shape == y.shape
    assert np.isfinite(reg.loss_)
    if loss == "poisson":
        assert (reg.predict(X) > 0).all()


def test_feature_names_from_dataframe():
    pd = pytest.importorskip("pandas")
    columns = ["sepal_l", "sepal_w", "petal_l", "petal_w"]
    df = pd.DataFrame(IRIS_X, columns=columns)
    clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0).fit(df, IRIS_Y)
    assert_array_equal(clf.feature_names_in_, columns)
    same = MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0).fit(IRIS_X, IRIS_Y)
    assert_allclose(clf.predict_proba(df), same.predict_proba(IRIS_X), rtol=1e-12)
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(df.rename(columns={"petal_w": "other"}))


# ------------------------------------------------------------------------------------------------
# the loss they report is scikit-learn's, and its gradient is the one they step along


def _one_full_batch_step(estimator, X, y, seed=1):
    """Set known weights, take one full-batch plain SGD step, return (start, end) weights."""
    estimator.set_params(solver="sgd", momentum=0.0, batch_size=len(X), max_iter=1, shuffle=False,
                         random_state=0)
    estimator.fit(X, y)  # builds the layers; the weights are replaced next
    r = np.random.default_rng(seed)
    estimator.coefs_ = [0.5 * r.standard_normal(c.shape) for c in estimator.coefs_]
    estimator.intercepts_ = [0.5 * r.standard_normal(b.shape) for b in estimator.intercepts_]
    start = [c.copy() for c in estimator.coefs_ + estimator.intercepts_]
    estimator.set_params(warm_start=True).fit(X, y)
    end = [np.asarray(c).copy() for c in estimator.coefs_ + estimator.intercepts_]
    return start, end


_rng = np.random.default_rng(7)
_STEP_X = _rng.standard_normal((20, 3))
_STEP_TARGETS = {
    "multiclass": ("MLPClassifier", _rng.integers(0, 3, 20)),
    "binary": ("MLPClassifier", _rng.integers(0, 2, 20)),
    "multilabel": ("MLPClassifier", _rng.integers(0, 2, (20, 3))),
    "regression": ("MLPRegressor", _rng.standard_normal(20)),
}


@pytest.mark.parametrize("target", list(_STEP_TARGETS))
def test_one_step_and_loss_match_sklearn(target):
    # From the same weights, one full-batch SGD step moves ours exactly as scikit-learn's, and
    # loss_ (the loss at the start of the step, L2 term included) is the same number.
    kind, y = _STEP_TARGETS[target]
    params = dict(hidden_layer_sizes=(5,), activation="tanh", alpha=0.1, learning_rate_init=0.1)
    ours, theirs = getattr(mlp, kind)(**params), getattr(sk_nn, kind)(**params)
    start, end_ours = _one_full_batch_step(ours, _STEP_X, y)
    start_ref, end_theirs = _one_full_batch_step(theirs, _STEP_X, y)
    for a, b in zip(start, start_ref):
        assert_array_equal(a, b)
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-12)
    for i, (a, b) in enumerate(zip(end_ours, end_theirs)):
        assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=f"{target}: parameter block {i}")


_INIT_X = np.random.default_rng(5).standard_normal((30, 4))
_INIT_CASES = {
    "multiclass-relu": ("MLPClassifier", dict(hidden_layer_sizes=(7,)), _INIT_X, np.arange(30) % 3),
    "binary-logistic": ("MLPClassifier", dict(hidden_layer_sizes=(6, 5), activation="logistic"),
                        _INIT_X, np.arange(30) % 2),
    "multilabel-tanh": ("MLPClassifier", dict(hidden_layer_sizes=(4,), activation="tanh"),
                        _INIT_X, np.random.default_rng(6).integers(0, 2, (30, 3))),
    "regression-logistic-deep": ("MLPRegressor", dict(hidden_layer_sizes=(8, 4, 3), activation="logistic"),
                                 _INIT_X, _INIT_X[:, 0]),
    "regression-float32-2-outputs": ("MLPRegressor", dict(hidden_layer_sizes=(5,)),
                                     _INIT_X.astype(np.float32), _INIT_X[:, :2]),
    "no-hidden-layer-logistic": ("MLPClassifier", dict(hidden_layer_sizes=(), activation="logistic"),
                                 _INIT_X, np.arange(30) % 3),
    "early-stopping": ("MLPRegressor", dict(hidden_layer_sizes=(3,), early_stopping=True),
                       _INIT_X, _INIT_X[:, 1]),
}


@pytest.mark.parametrize("random_state", [0, 42])
@pytest.mark.parametrize("case", list(_INIT_CASES))
def test_same_random_state_draws_the_same_initial_weights_as_sklearn(case, random_state):
    # The README: both libraries draw the initial weights the same way from the same random_state.
    # scikit-learn has no "initialize only", so both take one epoch of plain SGD at a rate of
    # 1e-300, which moves no weight (w + 1e-300 g == w): coefs_ are the initial draws.
    kind, params, X, y = _INIT_CASES[case]
    params = dict(params, solver="sgd", momentum=0.0, learning_rate_init=1e-300, max_iter=1,
                  shuffle=False, random_state=random_state)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = getattr(mlp, kind)(**params).fit(X, y)
        theirs = getattr(sk_nn, kind)(**params).fit(X, y)
    assert len(ours.coefs_) == len(theirs.coefs_)
    for i, (a, b) in enumerate(zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_)):
        assert a.dtype == b.dtype, f"{case}: parameter block {i}"
        assert_array_equal(a, b, err_msg=f"{case}: parameter block {i}")


def _tanh_net_loss(theta, shapes, X, Y, alpha):
    """scikit-learn's regression loss: half the squared error, averaged over samples AND outputs,
    plus alpha / (2 n) times the squared weights (not the biases). Float64 NumPy reference."""
    blocks, at = [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        blocks.append(theta[at:at + size].reshape(shape))
        at += size
    n_layers = len(shapes) // 2
    coefs, intercepts = blocks[:n_layers], blocks[n_layers:]
    a = X
    for i, (W, b) in enumerate(zip(coefs, intercepts)):
        a = a @ W + b
        if i < n_layers - 1:
            a = np.tanh(a)
    l2 = sum((W ** 2).sum() for W in coefs)
    return 0.5 * np.mean((a - Y) ** 2) + 0.5 * alpha * l2 / len(X)


@pytest.mark.parametrize("alpha", [0.0, 0.1])
@pytest.mark.parametrize("n_outputs", [1, 2, 3])
def test_multioutput_regression_gradient_is_the_loss_gradient(n_outputs, alpha):
    # scikit-learn's multi-output gradient is n_outputs times the gradient of the loss it reports
    # (scikit-learn issue 8349). Ours must be the gradient of loss_: one full-batch plain SGD step
    # from theta0 must equal -lr * (central-difference gradient of loss_ at theta0).
    r = np.random.default_rng(3)
    X = r.standard_normal((16, 3))
    Y = r.standard_normal((16, n_outputs))
    y = Y[:, 0] if n_outputs == 1 else Y
    lr = 0.05
    reg = MLPRegressor(hidden_layer_sizes=(4,), activation="tanh", alpha=alpha, learning_rate_init=lr,
                       n_threads=1)
    start, end = _one_full_batch_step(reg, X, y)
    shapes = [b.shape for b in start]
    theta0 = np.concatenate([b.ravel() for b in start])
    theta1 = np.concatenate([b.ravel() for b in end])

    loss0 = _tanh_net_loss(theta0, shapes, X, Y, alpha)
    assert reg.loss_ == pytest.approx(loss0, rel=1e-12), "loss_ is not half the mean squared error"

    eps = 1e-6
    grad = np.empty_like(theta0)
    for k in range(theta0.size):
        e = np.zeros_like(theta0)
        e[k] = eps
        grad[k] = (_tanh_net_loss(theta0 + e, shapes, X, Y, alpha)
                   - _tanh_net_loss(theta0 - e, shapes, X, Y, alpha)) / (2 * eps)
    assert_allclose(theta1 - theta0, -lr * grad, rtol=1e-6, atol=1e-10,
                    err_msg=f"step != -lr * d(loss_)/d(theta) with {n_outputs} outputs, alpha={alpha}")


# ------------------------------------------------------------------------------------------------
# methods


def test_predict_proba_log_proba_score_multiclass():
    clf = MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, max_iter=100,
                        random_state=0).fit(IRIS_X, IRIS_Y)
    proba = clf.predict_proba(IRIS_X)
    assert proba.shape == (150, 3)
    assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert (proba >= 0).all()
    assert_allclose(clf.predict_log_proba(IRIS_X), np.log(proba), rtol=1e-12)
    pred = clf.predict(IRIS_X)
    assert_array_equal(pred, clf.classes_[proba.argmax(axis=1)])
    assert clf.score(IRIS_X, IRIS_Y) == pytest.approx(np.mean(pred == IRIS_Y))
    assert clf.score(IRIS_X, IRIS_Y) > 0.9


def test_binary_string_labels():
    labels = np.where(IRIS_Y == 0, "setosa", "other")
    clf = MLPClassifier(hidden_layer_sizes=(8,), learning_rate_init=0.01, max_iter=50,
                        random_state=0).fit(IRIS_X, labels)
    assert_array_equal(clf.classes_, ["other", "setosa"])
    proba = clf.predict_proba(IRIS_X)
    assert proba.shape == (150, 2)
    assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert set(clf.predict(IRIS_X)) <= {"other", "setosa"}
    assert clf.score(IRIS_X, labels) > 0.95


def test_multilabel_indicator_targets():
    Y = np.column_stack([IRIS_Y == 0, IRIS_Y == 2, IRIS_X[:, 1] > 0]).astype(int)
    clf = MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, max_iter=200,
                        random_state=0).fit(IRIS_X, Y)
    pred = clf.predict(IRIS_X)
    assert pred.shape == Y.shape
    assert set(np.unique(pred)) <= {0, 1}
    proba = clf.predict_proba(IRIS_X)
    assert proba.shape == Y.shape  # one probability per label, not a distribution over labels
    assert ((proba >= 0) & (proba <= 1)).all()
    assert_array_equal(pred, (proba > 0.5).astype(int))
    assert clf.score(IRIS_X, Y) > 0.8  # subset accuracy


def test_get_set_params():
    clf = MLPClassifier()
    assert clf.get_params()["hidden_layer_sizes"] == (100,)
    assert clf.set_params(hidden_layer_sizes=(3,), alpha=0.5, class_weight="balanced") is clf
    params = clf.get_params()
    assert params["hidden_layer_sizes"] == (3,) and params["alpha"] == 0.5
    assert params["class_weight"] == "balanced"
    clf.fit(IRIS_X, IRIS_Y)
    assert clf.coefs_[0].shape == (4, 3)


def test_sample_weight_equals_repeating_rows():
    # Full-batch plain SGD: integer weights must train exactly like repeated rows, and weight 0
    # exactly like a dropped row.
    X, y = IRIS_X[::5], IRIS_Y[::5]
    w = np.tile([0, 1, 2], len(X))[:len(X)]
    params = dict(hidden_layer_sizes=(5,), solver="sgd", momentum=0.0, shuffle=False, max_iter=5,
                  learning_rate_init=0.1, random_state=0, n_threads=1)
    weighted = MLPClassifier(batch_size=len(X), **params).fit(X, y, sample_weight=w)
    Xr, yr = np.repeat(X, w, axis=0), np.repeat(y, w)
    repeated = MLPClassifier(batch_size=len(Xr), **params).fit(Xr, yr)
    for a, b in zip(weighted.coefs_ + weighted.intercepts_, repeated.coefs_ + repeated.intercepts_):
        assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    assert weighted.loss_ == pytest.approx(repeated.loss_, rel=1e-10)


def test_sample_weight_changes_the_fit():
    w = np.where(IRIS_Y == 1, 10.0, 1.0)
    params = dict(hidden_layer_sizes=(8,), max_iter=20, random_state=0)
    a = MLPClassifier(**params).fit(IRIS_X, IRIS_Y)
    b = MLPClassifier(**params).fit(IRIS_X, IRIS_Y, sample_weight=w)
    assert not np.allclose(a.coefs_[0], b.coefs_[0])


def test_partial_fit_classifier():
    clf = MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, random_state=0)
    with pytest.raises(ValueError, match="classes"):
        clf.partial_fit(IRIS_X, IRIS_Y)
    # the first batch lacks class 2; classes= announces it
    clf.partial_fit(IRIS_X[:100], IRIS_Y[:100], classes=[0, 1, 2])
    assert_array_equal(clf.classes_, [0, 1, 2])
    assert clf.predict_proba(IRIS_X).shape == (150, 3)
    first = clf.loss_
    for _ in range(30):
        clf.partial_fit(IRIS_X, IRIS_Y)
    assert clf.t_ == 100 + 30 * 150
    assert len(clf.loss_curve_) == 31
    assert clf.loss_ < first
    assert clf.score(IRIS_X, IRIS_Y) > 0.8
    with pytest.raises(ValueError, match="classes"):
        clf.partial_fit(IRIS_X, IRIS_Y, classes=[0, 1])
    with pytest.raises(ValueError):
        clf.partial_fit(IRIS_X[:5], [0, 1, 2, 3, 4])  # labels never announced


def test_partial_fit_regressor():
    X, y = _regression()
    reg = MLPRegressor(hidden_layer_sizes=(8,), learning_rate_init=0.01, random_state=0)
    for _ in range(20):
        reg.partial_fit(X, y)
    assert len(reg.loss_curve_) == 20
    assert reg.loss_curve_[-1] < reg.loss_curve_[0]


@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_partial_fit_unavailable_with_lbfgs(Estimator):
    est = Estimator(solver="lbfgs")
    assert not hasattr(est, "partial_fit")
    with pytest.raises(AttributeError, match="partial_fit"):
        est.partial_fit(IRIS_X, IRIS_Y)


def test_epoch_counters_match_sklearn():
    # n_iter_, t_ and loss_curve_ count the same way through partial_fit, warm starts and refits.
    def run(module):
        counts = []
        clf = module.MLPClassifier(hidden_layer_sizes=(5,), max_iter=4, random_state=0)
        for _ in range(3):
            clf.partial_fit(IRIS_X, IRIS_Y, classes=[0, 1, 2])
        counts.append((clf.n_iter_, clf.t_, len(clf.loss_curve_)))
        clf = module.MLPClassifier(hidden_layer_sizes=(5,), max_iter=4, random_state=0, warm_start=True)
        clf.fit(IRIS_X, IRIS_Y).fit(IRIS_X, IRIS_Y)
        counts.append((clf.n_iter_, clf.t_, len(clf.loss_curve_)))
        clf.partial_fit(IRIS_X, IRIS_Y)
        counts.append((clf.n_iter_, clf.t_, len(clf.loss_curve_)))
        clf = module.MLPClassifier(hidden_layer_sizes=(5,), max_iter=4, random_state=0)
        clf.fit(IRIS_X, IRIS_Y).fit(IRIS_X, IRIS_Y)
        counts.append((clf.n_iter_, clf.t_, len(clf.loss_curve_)))
        return counts

    assert run(mlp) == run(sk_nn)


# ------------------------------------------------------------------------------------------------
# inputs


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_sparse_input_same_as_dense(fmt):
    X = DIGITS_X[:150]
    y = DIGITS_Y[:150]
    Xs = scipy_sparse.csr_matrix(X).asformat(fmt)
    params = dict(hidden_layer_sizes=(8,), max_iter=10, random_state=0, n_threads=1)
    dense = MLPClassifier(**params).fit(X, y)
    sparse = MLPClassifier(**params).fit(Xs, y)
    assert_allclose(sparse.predict_proba(Xs), dense.predict_proba(X), rtol=1e-12)
    assert_allclose(dense.predict_proba(Xs), dense.predict_proba(X), rtol=1e-12)
    assert_array_equal(sparse.predict(Xs), dense.predict(X))


def test_sparse_input_regressor():
    X, y = _regression()
    X[X < 0.3] = 0.0
    params = dict(hidden_layer_sizes=(8,), max_iter=10, random_state=0, n_threads=1)
    dense = MLPRegressor(**params).fit(X, y)
    sparse = MLPRegressor(**params).fit(scipy_sparse.csr_matrix(X), y)
    assert_allclose(sparse.predict(scipy_sparse.csr_matrix(X)), dense.predict(X), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype):
    X = IRIS_X.astype(dtype)
    clf = MLPClassifier(hidden_layer_sizes=(8,), learning_rate_init=0.01, max_iter=30,
                        random_state=0).fit(X, IRIS_Y)
    assert all(c.dtype == dtype for c in clf.coefs_)
    assert all(b.dtype == dtype for b in clf.intercepts_)
    assert clf.predict_proba(X).dtype == dtype
    assert clf.score(X, IRIS_Y) > 0.6
    Xr, yr = _regression()
    reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=20, random_state=0).fit(Xr.astype(dtype), yr)
    assert reg.coefs_[0].dtype == dtype
    assert reg.predict(Xr.astype(dtype)).dtype == dtype


def test_float32_close_to_float64():
    params = dict(hidden_layer_sizes=(8,), max_iter=20, random_state=0, n_threads=1)
    p64 = MLPClassifier(**params).fit(IRIS_X, IRIS_Y).predict_proba(IRIS_X)
    p32 = MLPClassifier(**params).fit(IRIS_X.astype(np.float32), IRIS_Y).predict_proba(
        IRIS_X.astype(np.float32))
    assert_allclose(p32, p64, atol=1e-3)


def test_list_input_and_integer_X():
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    clf.fit(_DIGITS_X[:100].astype(int).tolist(), _DIGITS_Y[:100].tolist())
    assert clf.coefs_[0].dtype == np.float64
    assert clf.predict(_DIGITS_X[:3].astype(int)).shape == (3,)


# ------------------------------------------------------------------------------------------------
# messages: ConvergenceWarning and verbose


@pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_convergence_warning_when_max_iter_reached(solver):
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        MLPClassifier(hidden_layer_sizes=(5,), solver=solver, max_iter=3, random_state=0).fit(IRIS_X, IRIS_Y)
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        MLPRegressor(hidden_layer_sizes=(5,), solver=solver, max_iter=3, random_state=0).fit(*_regression())


@pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")
def test_no_convergence_warning_when_stopped_by_tol():
    # tol so large that no epoch counts as an improvement: stops when scikit-learn's does.
    params = dict(hidden_layer_sizes=(5,), tol=1e6, n_iter_no_change=3, max_iter=100, random_state=0)
    clf = MLPClassifier(**params).fit(IRIS_X, IRIS_Y)
    assert clf.n_iter_ == sk_nn.MLPClassifier(**params).fit(IRIS_X, IRIS_Y).n_iter_ < 100


def test_verbose_prints_like_sklearn(capsys):
    clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=4, verbose=True, random_state=0)
    clf.fit(IRIS_X, IRIS_Y)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("Iteration")]
    assert len(lines) == 4
    for i, (line, loss) in enumerate(zip(lines, clf.loss_curve_), start=1):
        assert re.fullmatch(rf"Iteration {i}, loss = \d+\.\d{{8}}", line), line
        assert float(line.split("= ")[1]) == pytest.approx(loss, abs=1e-8)


def test_not_verbose_prints_nothing(capsys):
    MLPClassifier(hidden_layer_sizes=(5,), max_iter=4, random_state=0).fit(IRIS_X, IRIS_Y)
    assert capsys.readouterr().out == ""


# ------------------------------------------------------------------------------------------------
# solvers


def test_lbfgs_fits_iris():
    clf = MLPClassifier(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=200, random_state=0)
    with warnings.catch_warnings():
        # scipy's deprecations (e.g. of L-BFGS-B's iprint) must not reach the user.
        warnings.simplefilter("error", DeprecationWarning)
        clf.fit(IRIS_X, IRIS_Y)
    assert clf.score(IRIS_X, IRIS_Y) > 0.9
    assert np.isfinite(clf.loss_)
    assert 1 <= clf.n_iter_ <= 200
    assert_allclose(clf.predict_proba(IRIS_X).sum(axis=1), 1.0)


def test_lbfgs_regressor():
    X, y = _regression()
    reg = MLPRegressor(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=200, random_state=0).fit(X, y)
    assert reg.score(X, y) > 0.9
    assert np.isfinite(reg.loss_)


@pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")
def test_lbfgs_convergence_warning():
    with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge"):
        clf = MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=2, random_state=0)
        clf.fit(IRIS_X, IRIS_Y)
    assert clf.n_iter_ <= 2


@pytest.mark.parametrize("solver, params", [
    ("adam", dict(learning_rate_init=0.01)),
    ("sgd", dict(learning_rate="constant", learning_rate_init=0.1)),
    ("sgd", dict(learning_rate="invscaling", learning_rate_init=0.5, power_t=0.25)),
    ("sgd", dict(learning_rate="adaptive", learning_rate_init=0.1)),
    ("sgd", dict(learning_rate_init=0.1, momentum=0.9, nesterovs_momentum=False)),
    ("sgd", dict(learning_rate_init=0.1, momentum=0.9, nesterovs_momentum=True)),
    ("sgd", dict(learning_rate_init=0.2, momentum=0.0)),
], ids=["adam", "sgd-constant", "sgd-invscaling", "sgd-adaptive", "sgd-momentum", "sgd-nesterov",
        "sgd-plain"])
@pytest.mark.parametrize("data", ["iris", "digits"])
def test_stochastic_solvers_learn(solver, params, data):
    X, y, epochs = (IRIS_X, IRIS_Y, 150) if data == "iris" else (DIGITS_X, DIGITS_Y, 60)
    clf = MLPClassifier(hidden_layer_sizes=(32,), solver=solver, max_iter=epochs, random_state=0, **params)
    clf.fit(X, y)
    assert clf.score(X, y) > 0.9, f"{solver} {params} on {data}: {clf.score(X, y):.3f}"


def test_invscaling_learning_rate_schedule():
    # scikit-learn: lr = learning_rate_init / (t_ + 1) ** power_t, updated after every epoch.
    clf = MLPClassifier(hidden_layer_sizes=(5,), solver="sgd", learning_rate="invscaling",
                        learning_rate_init=0.5, power_t=0.5, max_iter=4, random_state=0)
    clf.fit(IRIS_X, IRIS_Y)
    expected = [0.5] + [0.5 / (150 * k + 1) ** 0.5 for k in (1, 2, 3)]
    assert_allclose(clf.history_["learning_rate"], expected, rtol=1e-12)


def test_adaptive_learning_rate_divides_by_five():
    clf = MLPClassifier(hidden_layer_sizes=(5,), solver="sgd", learning_rate="adaptive",
                        learning_rate_init=0.1, tol=1e6, n_iter_no_change=2, max_iter=12, random_state=0)
    clf.fit(IRIS_X, IRIS_Y)
    rates = sorted(set(clf.history_["learning_rate"]), reverse=True)
    assert_allclose(rates[:3], [0.1, 0.02, 0.004])


# ------------------------------------------------------------------------------------------------
# early stopping (scikit-learn's) and eval_set


def test_early_stopping_attributes():
    clf = MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, early_stopping=True,
                        n_iter_no_change=5, max_iter=200, random_state=0).fit(IRIS_X, IRIS_Y)
    assert clf.best_loss_ is None
    assert len(clf.validation_scores_) == clf.n_iter_ == len(clf.loss_curve_)
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.n_iter_ < 200
    assert all(0.0 <= s <= 1.0 for s in clf.validation_scores_)


def test_early_stopping_keeps_the_best_epoch_weights():
    Xt, yt, Xv, yv = _split(DIGITS_X, DIGITS_Y, 300)
    params = dict(hidden_layer_sizes=(32,), learning_rate_init=0.05, n_iter_no_change=5, max_iter=200,
                  random_state=0, n_threads=1)
    clf = MLPClassifier(early_stopping=True, **params).fit(Xt, yt, eval_set=(Xv, yv))
    scores = clf.validation_scores_
    assert len(scores) == clf.n_iter_ < 200
    assert scores[-1] < max(scores), "the run must end past its best epoch for this test to bite"
    assert clf.score(Xv, yv) == max(scores)
    assert clf.best_validation_score_ == max(scores)
    assert clf.history_["val_score"] == scores
    # The weights are exactly those after the (first) best epoch: the same run cut there.
    best_epochs = int(np.argmax(scores)) + 1
    cut = MLPClassifier(**{**params, "max_iter": best_epochs}).fit(Xt, yt, eval_set=(Xv, yv))
    for a, b in zip(clf.coefs_ + clf.intercepts_, cut.coefs_ + cut.intercepts_):
        assert_array_equal(a, b)


def test_early_stopping_regressor():
    X, y = _regression(n=200)
    Xt, yt, Xv, yv = _split(X, y, 150)
    reg = MLPRegressor(hidden_layer_sizes=(32,), learning_rate_init=0.05, early_stopping=True,
                       n_iter_no_change=5, max_iter=200, random_state=0).fit(Xt, yt, eval_set=(Xv, yv))
    assert reg.score(Xv, yv) == pytest.approx(max(reg.validation_scores_), rel=1e-12)


def test_eval_set_fills_history():
    Xt, yt, Xv, yv = _split(IRIS_X, IRIS_Y, 100)
    clf = MLPClassifier(hidden_layer_sizes=(8,), learning_rate_init=0.01, max_iter=12, random_state=0)
    clf.fit(Xt, yt, eval_set=(Xv, yv))
    h = clf.history_
    assert set(h) == {"loss", "val_loss", "val_score", "learning_rate", "time"}
    assert all(len(v) == clf.n_iter_ == 12 for v in h.values())
    assert h["loss"] == clf.loss_curve_
    assert all(np.isfinite(h["val_loss"])) and all(0 <= s <= 1 for s in h["val_score"])
    assert h["val_score"][-1] == clf.score(Xv, yv)
    # val_loss is the reported loss (mean log-loss + L2) on the validation data
    p = clf.predict_proba(Xv)
    l2 = 0.5 * clf.alpha * sum((c ** 2).sum() for c in clf.coefs_) / len(Xv)
    assert h["val_loss"][-1] == pytest.approx(-np.mean(np.log(p[np.arange(len(yv)), yv])) + l2, rel=1e-6)
    assert h["learning_rate"] == [0.01] * 12
    assert np.all(np.diff(h["time"]) >= 0) and h["time"][0] >= 0


def test_history_without_validation_data():
    clf = MLPRegressor(hidden_layer_sizes=(8,), max_iter=6, random_state=0).fit(*_regression())
    h = clf.history_
    assert set(h) == {"loss", "val_loss", "val_score", "learning_rate", "time"}
    assert all(len(v) == 6 for v in h.values())
    assert h["loss"] == clf.loss_curve_


def test_eval_set_shape_errors():
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2)
    with pytest.raises(ValueError):
        clf.fit(IRIS_X, IRIS_Y, eval_set=(IRIS_X[:10, :3], IRIS_Y[:10]))
    with pytest.raises(ValueError):
        clf.fit(IRIS_X, IRIS_Y, eval_set=(IRIS_X[:10], IRIS_Y[:9]))


# ------------------------------------------------------------------------------------------------
# class_weight


def _imbalanced():
    X, y = make_classification(n_samples=400, n_features=6, n_informative=3, weights=[0.9, 0.1],
                               class_sep=0.6, flip_y=0.0, random_state=0)
    return _standardize(X), y


def test_class_weight_raises_minority_recall():
    X, y = _imbalanced()
    params = dict(hidden_layer_sizes=(16,), learning_rate_init=0.01, max_iter=60, random_state=0)
    recall = {}
    for cw in [None, "balanced", {0: 1.0, 1: 9.0}]:
        clf = MLPClassifier(class_weight=cw, **params).fit(X, y)
        recall[str(cw)] = recall_score(y, clf.predict(X), pos_label=1)
    assert recall["balanced"] > recall["None"] + 0.05, recall
    assert recall[str({0: 1.0, 1: 9.0})] > recall["None"] + 0.05, recall


def test_class_weight_balanced_is_sample_weight():
    X, y = _imbalanced()
    params = dict(hidden_layer_sizes=(8,), max_iter=10, random_state=0, n_threads=1)
    a = MLPClassifier(class_weight="balanced", **params).fit(X, y)
    b = MLPClassifier(**params).fit(X, y, sample_weight=compute_sample_weight("balanced", y))
    for u, v in zip(a.coefs_, b.coefs_):
        assert_allclose(u, v, rtol=1e-12)
    # and multiplies a given sample_weight
    w = np.linspace(0.5, 2.0, len(y))
    c = MLPClassifier(class_weight={0: 1.0, 1: 3.0}, **params).fit(X, y, sample_weight=w)
    d = MLPClassifier(**params).fit(X, y, sample_weight=w * np.where(y == 1, 3.0, 1.0))
    for u, v in zip(c.coefs_, d.coefs_):
        assert_allclose(u, v, rtol=1e-12)


def test_class_weight_unknown_class():
    with pytest.raises(ValueError, match="class_weight"):
        MLPClassifier(class_weight={0: 1.0, 7: 2.0}, max_iter=2).fit(IRIS_X, IRIS_Y)


def test_class_weight_bad_value():
    with pytest.raises(ValueError, match="class_weight"):
        MLPClassifier(class_weight="heavy", max_iter=2).fit(IRIS_X, IRIS_Y)


# ------------------------------------------------------------------------------------------------
# activations: every one of the core, or one per hidden layer


_ACTIVATIONS = {
    "identity": lambda z: z,
    "logistic": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0.0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
    "elu": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0.0))),
    "swish": lambda z: z / (1.0 + np.exp(-z)),
    "silu": lambda z: z / (1.0 + np.exp(-z)),
}


def _numpy_predict_proba(clf, X, activations):
    a = X
    for i, (W, b) in enumerate(zip(clf.coefs_, clf.intercepts_)):
        a = a @ W + b
        if i < len(activations):
            a = _ACTIVATIONS[activations[i]](a)
    a = np.exp(a - a.max(axis=1, keepdims=True))
    return a / a.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("activation", list(_ACTIVATIONS))
def test_every_activation_fits(activation):
    clf = MLPClassifier(hidden_layer_sizes=(16,), activation=activation, learning_rate_init=0.01,
                        max_iter=100, random_state=0).fit(IRIS_X, IRIS_Y)
    assert np.isfinite(clf.loss_)
    assert clf.score(IRIS_X, IRIS_Y) > 0.85
    # coefs_/intercepts_ with the named function give predict_proba
    assert_allclose(clf.predict_proba(IRIS_X), _numpy_predict_proba(clf, IRIS_X, [activation] * 1),
                    rtol=1e-9, atol=1e-12)


def test_activation_per_hidden_layer():
    acts = ["tanh", "leaky_relu", "elu"]
    clf = MLPClassifier(hidden_layer_sizes=(8, 8, 8), activation=acts, learning_rate_init=0.01,
                        max_iter=100, random_state=0).fit(IRIS_X, IRIS_Y)
    assert clf.score(IRIS_X, IRIS_Y) > 0.85
    assert_allclose(clf.predict_proba(IRIS_X), _numpy_predict_proba(clf, IRIS_X, acts), rtol=1e-9,
                    atol=1e-12)
    reg = MLPRegressor(hidden_layer_sizes=(8, 8), activation=("swish", "relu"), max_iter=5,
                       random_state=0).fit(*_regression())
    assert np.isfinite(reg.loss_)


def test_activation_list_wrong_length():
    with pytest.raises(ValueError, match="activation"):
        MLPClassifier(hidden_layer_sizes=(8, 8), activation=["relu"], max_iter=2).fit(IRIS_X, IRIS_Y)
    with pytest.raises(ValueError, match="activation"):
        MLPRegressor(hidden_layer_sizes=(8,), activation=["relu", "tanh"], max_iter=2).fit(*_regression())


def test_unknown_activation_lists_valid_names():
    with pytest.raises(ValueError, match="activation") as info:
        MLPClassifier(activation="gelu_fancy", max_iter=2).fit(IRIS_X, IRIS_Y)
    message = str(info.value)
    assert "gelu_fancy" in message
    for name in ["identity", "logistic", "tanh", "relu", "leaky_relu", "elu", "swish"]:
        assert name in message, f"{name!r} missing from {message!r}"


# ------------------------------------------------------------------------------------------------
# n_threads and device


def test_n_threads():
    params = dict(hidden_layer_sizes=(32,), max_iter=10, random_state=0)
    one = MLPClassifier(n_threads=1, **params).fit(DIGITS_X, DIGITS_Y)
    again = MLPClassifier(n_threads=1, **params).fit(DIGITS_X, DIGITS_Y)
    default = MLPClassifier(n_threads=None, **params).fit(DIGITS_X, DIGITS_Y)
    two = MLPClassifier(n_threads=2, **params).fit(DIGITS_X, DIGITS_Y)
    for a, b in zip(one.coefs_ + one.intercepts_, again.coefs_ + again.intercepts_):
        assert_array_equal(a, b)  # bit-identical
    for clf in (default, two):
        assert all(np.isfinite(c).all() for c in clf.coefs_)
        assert np.isfinite(clf.loss_)
        # The core sums per-shard gradients in shard order, so the thread count changes nothing.
        for a, b in zip(clf.coefs_ + clf.intercepts_, one.coefs_ + one.intercepts_):
            assert_array_equal(a, b)
    with pytest.raises(ValueError, match="n_threads"):
        MLPClassifier(n_threads=0, max_iter=2).fit(IRIS_X, IRIS_Y)


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_device_cpu_and_auto(device):
    clf = MLPClassifier(hidden_layer_sizes=(8,), device=device, max_iter=5, random_state=0).fit(IRIS_X, IRIS_Y)
    ref = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(IRIS_X, IRIS_Y)
    assert_allclose(clf.predict_proba(IRIS_X), ref.predict_proba(IRIS_X), rtol=1e-8)


@pytest.mark.skipif(mlp.build_info().get("cuda", False), reason="this build has CUDA")
def test_device_cuda_without_cuda_build():
    with pytest.raises(ValueError, match="build") as info:
        MLPClassifier(device="cuda", max_iter=2).fit(IRIS_X, IRIS_Y)
    assert "device" in str(info.value)


def test_device_unknown():
    with pytest.raises(ValueError, match="device"):
        MLPClassifier(device="tpu", max_iter=2).fit(IRIS_X, IRIS_Y)


# ------------------------------------------------------------------------------------------------
# composition


def test_grid_search_in_pipeline_with_two_jobs():
    pipe = make_pipeline(StandardScaler(), MLPClassifier(max_iter=40, random_state=0, n_threads=1))
    grid = {"mlpclassifier__hidden_layer_sizes": [(4,), (16,)],
            "mlpclassifier__learning_rate_init": [0.001, 0.05]}
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    parallel = GridSearchCV(pipe, grid, cv=cv, n_jobs=2).fit(_IRIS_X, _IRIS_Y)
    serial = GridSearchCV(pipe, grid, cv=cv, n_jobs=1).fit(_IRIS_X, _IRIS_Y)
    assert set(parallel.best_params_) == set(grid)
    assert parallel.best_params_ == serial.best_params_
    assert_array_equal(parallel.cv_results_["mean_test_score"], serial.cv_results_["mean_test_score"])
    assert parallel.best_score_ > 0.9
    assert_array_equal(parallel.predict(_IRIS_X), serial.predict(_IRIS_X))


def test_clone_is_unfitted_with_equal_params():
    clf = MLPClassifier(hidden_layer_sizes=(6, 3), activation=["tanh", "elu"], class_weight="balanced",
                        n_threads=1, max_iter=5, random_state=0).fit(IRIS_X, IRIS_Y)
    copy = clone(clf)
    assert copy.get_params() == clf.get_params()
    assert not hasattr(copy, "coefs_") and not hasattr(copy, "classes_")
    copy.fit(IRIS_X, IRIS_Y)
    assert_array_equal(copy.predict_proba(IRIS_X), clf.predict_proba(IRIS_X))


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_pickle_round_trip_predicts_and_continues(solver):
    clf = MLPClassifier(hidden_layer_sizes=(8,), solver=solver, max_iter=10, random_state=0,
                        n_threads=1).fit(IRIS_X, IRIS_Y)
    restored = pickle.loads(pickle.dumps(clf))
    assert_array_equal(restored.predict_proba(IRIS_X), clf.predict_proba(IRIS_X))
    assert restored.get_params() == clf.get_params()
    for name in ("loss_", "n_iter_", "t_", "n_layers_", "n_outputs_", "out_activation_"):
        assert getattr(restored, name) == getattr(clf, name), name
    assert_array_equal(restored.classes_, clf.classes_)
    # The optimizer's state (Adam moments, momentum velocities) travels too: both continue alike.
    clf.partial_fit(IRIS_X, IRIS_Y)
    restored.partial_fit(IRIS_X, IRIS_Y)
    for a, b in zip(clf.coefs_ + clf.intercepts_, restored.coefs_ + restored.intercepts_):
        assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_pickle_regressor_float32():
    X, y = _regression()
    reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X.astype(np.float32), y)
    restored = pickle.loads(pickle.dumps(reg))
    assert restored.coefs_[0].dtype == np.float32
    assert_array_equal(restored.predict(X.astype(np.float32)), reg.predict(X.astype(np.float32)))


def test_warm_start_continues():
    params = dict(hidden_layer_sizes=(16,), learning_rate_init=0.01, max_iter=10, random_state=0)
    clf = MLPClassifier(warm_start=True, **params).fit(IRIS_X, IRIS_Y)
    first = list(clf.loss_curve_)
    clf.fit(IRIS_X, IRIS_Y)
    second = clf.loss_curve_[len(first):]
    assert len(second) == 10
    assert second[0] < first[0]
    assert second[0] < first[-1] * 1.05  # picks up where it left off
    cold = MLPClassifier(**params).fit(IRIS_X, IRIS_Y)
    cold.fit(IRIS_X, IRIS_Y)
    assert cold.loss_curve_ == first  # without warm_start a refit starts over


def test_user_set_coefs_are_used():
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0).fit(IRIS_X, IRIS_Y)
    clf.coefs_ = [np.zeros_like(c) for c in clf.coefs_]
    clf.intercepts_ = [np.zeros_like(b) for b in clf.intercepts_]
    assert_allclose(clf.predict_proba(IRIS_X), 1.0 / 3.0)


def test_fit_under_threadpool_limits():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    params = dict(hidden_layer_sizes=(32,), max_iter=5, random_state=0)
    one_thread = MLPClassifier(n_threads=1, **params).fit(DIGITS_X, DIGITS_Y)
    with threadpoolctl.threadpool_limits(1):
        # n_threads=None means "as many as allowed": the limit must reach the core ...
        assert mlp._core.max_threads() == 1
        limited = MLPClassifier(**params).fit(DIGITS_X, DIGITS_Y)
    assert np.isfinite(limited.loss_)
    # ... and the fit is the single-thread one.
    for a, b in zip(limited.coefs_, one_thread.coefs_):
        assert_array_equal(a, b)


# ------------------------------------------------------------------------------------------------
# bad input: a ValueError that names the culprit


def _nan_X():
    X = IRIS_X.copy()
    X[3, 2] = np.nan
    return X


def _inf_X():
    X = IRIS_X.copy()
    X[3, 2] = np.inf
    return X


@pytest.mark.parametrize("make, fit_kwargs, match", [
    (lambda: MLPClassifier(max_iter=2), dict(X=_nan_X()), r"\bX\b.*NaN"),
    (lambda: MLPClassifier(max_iter=2), dict(X=_inf_X()), r"\bX\b.*infinity"),
    (lambda: MLPRegressor(max_iter=2), dict(X=_nan_X()), r"\bX\b.*NaN"),
    (lambda: MLPClassifier(hidden_layer_sizes=(5, 0), max_iter=2), {}, "hidden_layer_sizes"),
    (lambda: MLPClassifier(hidden_layer_sizes=0, max_iter=2), {}, "hidden_layer_sizes"),
    (lambda: MLPClassifier(hidden_layer_sizes=(-3,), max_iter=2), {}, "hidden_layer_sizes"),
    (lambda: MLPClassifier(learning_rate_init=0.0, max_iter=2), {}, "learning_rate_init"),
    (lambda: MLPClassifier(learning_rate_init=-0.1, max_iter=2), {}, "learning_rate_init"),
    (lambda: MLPRegressor(learning_rate_init=0.0, max_iter=2), {}, "learning_rate_init"),
    (lambda: MLPClassifier(batch_size=0, max_iter=2), {}, "batch_size"),
    (lambda: MLPClassifier(max_iter=0), {}, "max_iter"),
    (lambda: MLPClassifier(alpha=-1.0, max_iter=2), {}, "alpha"),
    (lambda: MLPClassifier(momentum=1.5, solver="sgd", max_iter=2), {}, "momentum"),
    (lambda: MLPClassifier(validation_fraction=1.0, early_stopping=True, max_iter=2), {},
     "validation_fraction"),
    (lambda: MLPClassifier(solver="newton", max_iter=2), {}, "solver"),
    (lambda: MLPRegressor(solver="newton", max_iter=2), {}, "solver"),
    (lambda: MLPClassifier(learning_rate="cosine_restarts", max_iter=2), {}, "learning_rate"),
    (lambda: MLPRegressor(loss="absolute_error", max_iter=2), {}, "loss"),
    (lambda: MLPClassifier(max_iter=2), dict(sample_weight=-np.ones(150)), "sample_weight"),
    (lambda: MLPClassifier(max_iter=2), dict(sample_weight=np.zeros(150)), "(?i)sample.weight"),
    (lambda: MLPClassifier(max_iter=2), dict(sample_weight=np.ones(10)), "(?i)sample.weight"),
    (lambda: MLPRegressor(max_iter=2), dict(sample_weight=np.zeros(150)), "(?i)sample.weight"),
    (lambda: MLPRegressor(loss="poisson", max_iter=2), dict(y=IRIS_X[:, 0]), "poisson"),
], ids=["nan-X", "inf-X", "nan-X-regressor", "hidden-zero", "hidden-int-zero", "hidden-negative",
        "lr-zero", "lr-negative", "lr-zero-regressor", "batch-zero", "max-iter-zero", "alpha-negative",
        "momentum-above-1", "validation-fraction-1", "solver", "solver-regressor", "learning-rate",
        "loss", "sample-weight-negative", "sample-weight-zero", "sample-weight-length",
        "sample-weight-zero-regressor", "poisson-negative-y"])
def test_bad_input_raises_value_error_naming_it(make, fit_kwargs, match):
    estimator = make()
    kwargs = {"X": IRIS_X, "y": IRIS_Y if is_classifier(estimator) else IRIS_X[:, 0] ** 2, **fit_kwargs}
    X, y = kwargs.pop("X"), kwargs.pop("y")
    with pytest.raises(ValueError, match=match):
        estimator.fit(X, y, **kwargs)


def test_wrong_number_of_features_at_predict():
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2).fit(IRIS_X, IRIS_Y)
    for method in (clf.predict, clf.predict_proba, clf.predict_log_proba):
        with pytest.raises(ValueError, match="features"):
            method(IRIS_X[:, :3])
    reg = MLPRegressor(hidden_layer_sizes=(4,), max_iter=2).fit(*_regression(n_features=4))
    with pytest.raises(ValueError, match="features"):
        reg.predict(np.ones((3, 5)))


def test_nan_at_predict():
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2).fit(IRIS_X, IRIS_Y)
    with pytest.raises(ValueError, match="NaN"):
        clf.predict(_nan_X())


def test_predict_before_fit():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        MLPClassifier().predict(IRIS_X)
    with pytest.raises(NotFittedError):
        MLPRegressor().predict(IRIS_X)


def test_regression_target_for_classifier():
    with pytest.raises(ValueError, match="(?i)label|target"):
        MLPClassifier(max_iter=2).fit(IRIS_X, IRIS_X[:, 0])


# ------------------------------------------------------------------------------------------------
# accuracy: no worse than scikit-learn's MLP on the same folds


@pytest.mark.parametrize("load", [load_iris, load_breast_cancer], ids=["iris", "breast_cancer"])
def test_cross_validated_accuracy_not_worse_than_sklearn(load):
    X, y = load(return_X_y=True)
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    params = dict(hidden_layer_sizes=(32,), max_iter=300, random_state=0)
    # n_threads=1 changes no arithmetic that matters here (only the order of a sum); it keeps
    # the test quick on a busy 2-core machine, where two OpenMP threads on tiny batches crawl.
    ours = cross_val_score(make_pipeline(StandardScaler(), MLPClassifier(n_threads=1, **params)), X, y,
                           cv=cv).mean()
    theirs = cross_val_score(make_pipeline(StandardScaler(), sk_nn.MLPClassifier(**params)), X, y,
                             cv=cv).mean()
    assert ours >= theirs - 0.01, f"{load.__name__}: ours {ours:.4f}, scikit-learn {theirs:.4f}"


def test_cross_validated_r2_not_worse_than_sklearn():
    X, y = _regression(n=200, n_features=5)
    cv = KFold(5, shuffle=True, random_state=0)
    params = dict(hidden_layer_sizes=(32,), max_iter=300, random_state=0)
    ours = cross_val_score(make_pipeline(StandardScaler(), MLPRegressor(n_threads=1, **params)), X, y,
                           cv=cv).mean()
    theirs = cross_val_score(make_pipeline(StandardScaler(), sk_nn.MLPRegressor(**params)), X, y,
                             cv=cv).mean()
    assert ours >= theirs - 0.01, f"ours {ours:.4f}, scikit-learn {theirs:.4f}"


@pytest.mark.parametrize("labels", [np.array([3, 7]), np.array([0, 1, 2, 5]), np.array(["ant", "bee", "cat"]),
                                    np.array([-1.0, 2.0])])
def test_target_encoding_matches_label_binarizer(labels):
    # The classifier one-hot encodes 1-D labels itself; it must give LabelBinarizer's columns.
    from sklearn.preprocessing import LabelBinarizer

    rng = np.random.default_rng(0)
    y = labels[rng.integers(0, len(labels), 40)]
    y[:len(labels)] = labels  # every class present
    clf = MLPClassifier(hidden_layer_sizes=(3,), max_iter=1)
    got = clf._encode_targets(y)
    np.testing.assert_array_equal(got, LabelBinarizer().fit(y).transform(y).astype(np.float64))
    np.testing.assert_array_equal(clf._encode_targets(y[:5], incremental=True),
                                  LabelBinarizer().fit(y).transform(y[:5]).astype(np.float64))


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("kind", ["clf", "reg"])
def test_float64_fit_follows_scikit_learns_weights(solver, kind):
    # On the CPU the rows are visited in scikit-learn's shuffled order, drawn from the same
    # random_state, so a float64 fit takes scikit-learn's steps, to rounding.
    from sklearn import neural_network as sk

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 6))
    y = (X[:, 0] + X[:, 1] > 0).astype(int) if kind == "clf" else X @ rng.normal(size=6)
    params = dict(hidden_layer_sizes=(7,), solver=solver, batch_size=32, max_iter=6,
                  random_state=3, tol=0.0, n_iter_no_change=10**6, learning_rate_init=0.01)
    ours = (MLPClassifier if kind == "clf" else MLPRegressor)(**params)
    theirs = (sk.MLPClassifier if kind == "clf" else sk.MLPRegressor)(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.fit(X, y)
        theirs.fit(X, y)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)
