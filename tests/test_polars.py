"""polars inputs: a polars DataFrame / Series works wherever a numpy array or pandas frame does.

Every fit on polars data is compared with the same fit (same random_state or seed) on the numpy
array the frame holds: the predictions must be identical, not merely close. The checks of column
names at predict time must behave exactly as scikit-learn's own estimator behaves for pandas.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

pl = pytest.importorskip("polars", reason="needs polars (the [test] extra)")
pytest.importorskip("sklearn", reason="needs scikit-learn (the [test] extra)")

from sklearn import neural_network  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from mlp import Dense, MLPClassifier, MLPRegressor, Model  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

COLUMNS = ["alpha", "beta", "gamma", "delta"]
SMALL = dict(hidden_layer_sizes=(8,), max_iter=20, learning_rate_init=0.03, batch_size=32, random_state=0)


def _data(n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(COLUMNS)))
    labels = np.array(["cat", "dog", "eel"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)]
    target = X @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.1 * rng.normal(size=n)
    return X, labels, target


def _frame(X, columns=COLUMNS):
    return pl.DataFrame(X, schema=list(columns))


@pytest.fixture(scope="module")
def data():
    X, labels, target = _data()
    return X, labels, target, _frame(X)


def _same_fit(est_np, est_pl):
    """The fitted weights of two estimators are equal, bit for bit."""
    assert est_np.n_iter_ == est_pl.n_iter_
    assert est_np.loss_ == est_pl.loss_
    for a, b in zip(est_np.coefs_ + est_np.intercepts_, est_pl.coefs_ + est_pl.intercepts_):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ fit / predict / score ----
def test_classifier_on_polars_matches_numpy(data):
    X, labels, _, df = data
    y_pl = pl.Series("label", labels)
    est_np = MLPClassifier(**SMALL).fit(X, labels)
    est_pl = MLPClassifier(**SMALL).fit(df, y_pl)

    _same_fit(est_np, est_pl)
    assert list(est_pl.feature_names_in_) == COLUMNS
    assert est_pl.feature_names_in_.dtype == object
    assert est_pl.n_features_in_ == 4
    assert not hasattr(est_np, "feature_names_in_")
    np.testing.assert_array_equal(est_pl.classes_, ["cat", "dog", "eel"])
    np.testing.assert_array_equal(est_pl.predict(df), est_np.predict(X))
    np.testing.assert_array_equal(est_pl.predict_proba(df), est_np.predict_proba(X))
    np.testing.assert_array_equal(est_pl.predict_log_proba(df), est_np.predict_log_proba(X))
    assert est_pl.score(df, y_pl) == est_np.score(X, labels)
    assert est_pl.score(df, y_pl) > 0.6  # it learned something: the comparison is not vacuous


def test_regressor_on_polars_matches_numpy(data):
    X, _, target, df = data
    y_pl = pl.Series("target", target)
    est_np = MLPRegressor(**SMALL).fit(X, target)
    est_pl = MLPRegressor(**SMALL).fit(df, y_pl)

    _same_fit(est_np, est_pl)
    assert list(est_pl.feature_names_in_) == COLUMNS
    np.testing.assert_array_equal(est_pl.predict(df), est_np.predict(X))
    assert est_pl.predict(df).shape == (len(X),)
    assert est_pl.score(df, y_pl) == est_np.score(X, target)
    assert est_pl.score(df, y_pl) > 0.5


def test_regressor_with_a_polars_frame_of_two_targets(data):
    X, _, target, df = data
    Y = np.column_stack([target, -target])
    est_np = MLPRegressor(**SMALL).fit(X, Y)
    est_pl = MLPRegressor(**SMALL).fit(df, pl.DataFrame(Y, schema=["up", "down"]))
    _same_fit(est_np, est_pl)
    assert est_pl.predict(df).shape == (len(X), 2)
    np.testing.assert_array_equal(est_pl.predict(df), est_np.predict(X))


def test_polars_int_and_float32_columns_fit_like_their_numpy_arrays(data):
    X, labels, _, _ = data
    X_int = np.round(X * 10).astype(np.int64)
    df = pl.DataFrame({name: X_int[:, i] for i, name in enumerate(COLUMNS)})
    assert df.dtypes == [pl.Int64] * 4
    est_np = MLPClassifier(**SMALL).fit(X_int, labels)
    est_pl = MLPClassifier(**SMALL).fit(df, pl.Series(labels))
    _same_fit(est_np, est_pl)
    np.testing.assert_array_equal(est_pl.predict_proba(df), est_np.predict_proba(X_int))

    # scikit-learn's validate_data keeps float32 for a pandas frame but converts a polars Float32
    # frame to float64 (it reads the dtypes of pandas frames only); mlp does as scikit-learn's
    # own estimator does, and fits as it would on the float64 array of the same values.
    X32 = X.astype(np.float32)
    df32 = _frame(X32).cast(pl.Float32)
    y = (labels == "dog").astype(float)
    reference = neural_network.MLPRegressor(hidden_layer_sizes=(2,), max_iter=1).fit(df32, y)
    est_pl = MLPRegressor(**SMALL).fit(df32, pl.Series(y))
    assert est_pl.coefs_[0].dtype == reference.coefs_[0].dtype == np.float64
    _same_fit(MLPRegressor(**SMALL).fit(X32.astype(np.float64), y), est_pl)
    assert MLPRegressor(**SMALL).fit(X32, y).coefs_[0].dtype == np.float32


def test_polars_nulls_are_refused_like_nan(data):
    X, labels, _, _ = data
    df = _frame(X).with_columns(pl.when(pl.int_range(pl.len()) == 3).then(None)
                                .otherwise(pl.col("beta")).alias("beta"))
    assert df["beta"].null_count() == 1
    with pytest.raises(ValueError, match="NaN"):
        MLPClassifier(**SMALL).fit(df, labels)
    est = MLPClassifier(**SMALL).fit(_frame(X), labels)
    with pytest.raises(ValueError, match="NaN"):
        est.predict(df)


# ------------------------------------------------------------------ partial_fit ---------------
def test_classifier_partial_fit_over_polars_slices_matches_numpy(data):
    X, labels, _, df = data
    y_pl = pl.Series("label", labels)
    classes = np.unique(labels)
    est_np = MLPClassifier(**SMALL)
    est_pl = MLPClassifier(**SMALL)
    for start in range(0, len(X), 40):
        est_np.partial_fit(X[start:start + 40], labels[start:start + 40], classes=classes)
        est_pl.partial_fit(df.slice(start, 40), y_pl.slice(start, 40), classes=classes)
        _same_fit(est_np, est_pl)
    assert list(est_pl.feature_names_in_) == COLUMNS
    np.testing.assert_array_equal(est_pl.predict_proba(df), est_np.predict_proba(X))
    # a later slice with its columns reordered is refused, as by any scikit-learn partial_fit
    with pytest.raises(ValueError, match="same order"):
        est_pl.partial_fit(df.select(COLUMNS[::-1]).slice(0, 40), y_pl.slice(0, 40))


def test_regressor_partial_fit_over_polars_slices_matches_numpy(data):
    X, _, target, df = data
    y_pl = pl.Series("target", target)
    est_np = MLPRegressor(**SMALL)
    est_pl = MLPRegressor(**SMALL)
    for _ in range(3):
        for start in range(0, len(X), 40):
            est_np.partial_fit(X[start:start + 40], target[start:start + 40])
            est_pl.partial_fit(df.slice(start, 40), y_pl.slice(start, 40))
    _same_fit(est_np, est_pl)
    np.testing.assert_array_equal(est_pl.predict(df), est_np.predict(X))
    assert list(est_pl.feature_names_in_) == COLUMNS


# ------------------------------------------------------------------ eval_set ------------------
@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_eval_set_of_polars_data_matches_numpy(data, cls):
    X, labels, target, df = data
    y = labels if cls is MLPClassifier else target
    X_val, _, val_target = _data(n=40, seed=1)
    y_val = np.array(["cat", "dog", "eel"])[np.arange(40) % 3] if cls is MLPClassifier else val_target
    est_np = cls(**SMALL).fit(X, y, eval_set=(X_val, y_val))
    est_pl = cls(**SMALL).fit(df, pl.Series(y), eval_set=(_frame(X_val), pl.Series("y", y_val)))

    _same_fit(est_np, est_pl)
    assert len(est_pl.history_["val_loss"]) == est_pl.n_iter_
    assert est_pl.history_["val_loss"] == est_np.history_["val_loss"]
    assert est_pl.history_["val_score"] == est_np.history_["val_score"]

    # early stopping on a polars eval_set stops where it does on numpy
    kw = dict(SMALL, max_iter=200, early_stopping=True, n_iter_no_change=3)
    est_np = cls(**kw).fit(X, y, eval_set=(X_val, y_val))
    est_pl = cls(**kw).fit(df, pl.Series(y), eval_set=(_frame(X_val), pl.Series("y", y_val)))
    assert est_pl.n_iter_ == est_np.n_iter_ < 200
    np.testing.assert_array_equal(est_pl.predict(df), est_np.predict(X))


def test_eval_set_with_other_columns_is_checked_like_predict(data):
    X, labels, _, df = data
    X_val = _frame(X[:30]).select(COLUMNS[::-1])
    with pytest.raises(ValueError, match="same order as they were in fit"):
        MLPClassifier(**SMALL).fit(df, labels, eval_set=(X_val, labels[:30]))


# ------------------------------------------------------------------ feature-name checks -------
# Each case turns the training frame (of the columns COLUMNS) into what predict is given.
def _reordered(fr, lib):
    return fr[COLUMNS[::-1]] if lib == "pandas" else fr.select(COLUMNS[::-1])


def _renamed(fr, lib):
    return fr.rename(columns={"beta": "BETA"}) if lib == "pandas" else fr.rename({"beta": "BETA"})


def _dropped(fr, lib):
    return fr.drop(columns="delta") if lib == "pandas" else fr.drop("delta")


def _extra(fr, lib):
    return fr.assign(epsilon=1.0) if lib == "pandas" else fr.with_columns(epsilon=pl.lit(1.0))


def _numpy(fr, lib):
    return fr.to_numpy()


def _default_names(fr, lib):  # pandas' 0..3, polars' column_0..column_3
    return type(fr)(fr.to_numpy())


def _same(fr, lib):
    return fr


CASES = [_same, _reordered, _renamed, _dropped, _extra, _numpy, _default_names]


def _outcome(est, X):
    """What predict does with X: its warnings, or the exception it raises (type and message)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            est.predict(X)
        except Exception as exc:  # noqa: BLE001 (the exception is what is compared)
            return "raises", type(exc), str(exc)
    return "warns", sorted((w.category.__name__, str(w.message)) for w in caught)


def _fitted(cls, X, y):
    est = cls(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


@pytest.mark.parametrize("case", CASES, ids=lambda f: f.__name__.strip("_"))
@pytest.mark.parametrize("name", ["MLPClassifier", "MLPRegressor"])
def test_feature_names_are_checked_as_scikit_learn_checks_pandas(data, name, case):
    pd = pytest.importorskip("pandas", reason="the reference behaviour is scikit-learn's on pandas")
    X, labels, target, df = data
    y = labels if name == "MLPClassifier" else target
    ours, theirs = {"MLPClassifier": MLPClassifier, "MLPRegressor": MLPRegressor}[name], \
        getattr(neural_network, name)
    got = _outcome(_fitted(ours, df, y), case(df, "polars"))

    # scikit-learn's own estimator, fitted on the polars frame, given the same polars input
    assert got == _outcome(_fitted(theirs, df, y), case(df, "polars"))
    # ... and on pandas frames, where mlp too behaves as it does on polars; except for default
    # column names: pandas' are the ints 0..3, no feature names at all (a warning), while
    # polars' are the strings column_0..column_3 (an error)
    if case is not _default_names:
        pdf = pd.DataFrame(X, columns=COLUMNS)
        assert got == _outcome(_fitted(theirs, pdf, y), case(pdf, "pandas"))
        assert got == _outcome(_fitted(ours, pdf, y), case(pdf, "pandas"))

    # every case but the unchanged frame (and numpy's warning) is refused
    assert (got[0] == "raises") == (case not in (_same, _numpy))
    if got[0] == "raises":
        assert got[1] is ValueError and "feature names should match" in got[2]
    elif case is _same:
        assert got == ("warns", [])
    else:
        message = f"X does not have valid feature names, but {name} was fitted with feature names"
        assert got == ("warns", [("UserWarning", message)])


def test_polars_frame_after_a_numpy_fit_warns_as_scikit_learn_does(data):
    X, labels, _, df = data
    reference = _fitted(neural_network.MLPClassifier, X, labels)
    ours = _fitted(MLPClassifier, X, labels)
    expected = _outcome(reference, df)
    assert expected[0] == "warns" and "X has feature names" in expected[1][0][1]
    assert _outcome(ours, df) == expected


# ------------------------------------------------------------------ Pipeline ------------------
@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_pipeline_with_standard_scaler_on_polars_matches_numpy(data, cls):
    X, labels, target, df = data
    y = labels if cls is MLPClassifier else target
    # polars hands over a Fortran-ordered array, and StandardScaler's means of its columns differ
    # from those of a C-ordered copy in the last bit; the numpy reference is that same array.
    X_f = df.to_numpy()
    assert X_f.flags.f_contiguous and np.array_equal(X_f, X)
    pipe_np = make_pipeline(StandardScaler(), cls(**SMALL)).fit(X_f, y)
    pipe_pl = make_pipeline(StandardScaler(), cls(**SMALL)).fit(df, pl.Series(y))
    assert list(pipe_pl.feature_names_in_) == COLUMNS
    _same_fit(pipe_np[-1], pipe_pl[-1])
    np.testing.assert_array_equal(pipe_pl.predict(df), pipe_np.predict(X_f))
    assert pipe_pl.score(df, pl.Series(y)) == pipe_np.score(X_f, y)
    assert pipe_pl.score(df, pl.Series(y)) > 0.8
    with pytest.raises(ValueError, match="same order"):
        pipe_pl.predict(df.select(COLUMNS[::-1]))

    # with polars output the scaler hands the estimator a polars frame, names and all
    pipe_out = make_pipeline(StandardScaler(), cls(**SMALL)).set_output(transform="polars")
    pipe_out.fit(df, pl.Series(y))
    assert list(pipe_out[-1].feature_names_in_) == COLUMNS
    _same_fit(pipe_np[-1], pipe_out[-1])
    np.testing.assert_array_equal(pipe_out.predict(df), pipe_np.predict(X_f))
    if cls is MLPClassifier:
        np.testing.assert_array_equal(pipe_out.predict_proba(df), pipe_np.predict_proba(X_f))


# ------------------------------------------------------------------ the spec's Model ----------
def _model():
    inputs = Dense(input_size=4, output_size=8, activation="tanh", seed=1)
    outputs = Dense(output_size=1, activation="sigmoid", seed=2)(inputs)
    model = Model(inputs, outputs)
    model.compile(loss_fn="binary_cross_entropy")
    return model


def test_spec_model_fits_and_predicts_polars_like_numpy(data):
    X, labels, _, df = data
    y = (labels == "dog").astype(float)
    model_np, model_pl, model_pl2 = _model(), _model(), _model()
    loss_np = model_np.fit(X, y, 30, 0.5, seed=0)
    loss_pl = model_pl.fit(df, pl.Series("y", y), 30, 0.5, seed=0)            # y (N,)
    loss_pl2 = model_pl2.fit(df, pl.DataFrame({"y": y}), 30, 0.5, seed=0)     # y (N, 1)

    assert math.isfinite(loss_np) and loss_pl == loss_np and loss_pl2 == loss_np
    assert model_pl.history == model_np.history
    pred = model_np.predict(X)
    assert pred.shape == (len(X), 1)
    np.testing.assert_array_equal(model_pl.predict(df), pred)
    np.testing.assert_array_equal(model_pl2.predict(df), pred)
    np.testing.assert_array_equal(model_np.predict(df), pred)  # a numpy-trained model, polars x
    assert ((pred[:, 0] > 0.5) == (y > 0.5)).mean() > 0.7
    assert model_pl.evaluate(df, pl.Series(y)) == model_np.evaluate(X, y)


def test_spec_model_validation_data_and_errors_with_polars(data):
    X, labels, _, df = data
    y = (labels == "dog").astype(float)
    model_np, model_pl = _model(), _model()
    model_np.fit(X[:80], y[:80], 5, 0.5, seed=0, validation_data=(X[80:], y[80:]))
    model_pl.fit(df[:80], pl.Series(y[:80]), 5, 0.5, seed=0,
                 validation_data=(df[80:], pl.Series(y[80:])))
    assert model_pl.history["val_loss"] == model_np.history["val_loss"]

    # the spec Model does not look at names: only the width is checked
    with pytest.raises(ValueError, match="x has 3 columns but 4 were expected"):
        model_pl.predict(df.drop("delta"))
    with pytest.raises(ValueError, match="x contains NaN"):
        model_pl.predict(df.with_columns(pl.lit(None, dtype=pl.Float64).alias("beta")))
    with pytest.raises(TypeError, match="x must hold"):
        model_pl.predict(df.with_columns(pl.lit("a").alias("beta")))
