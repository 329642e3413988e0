"""mlp/tabular.py: TabularClassifier / TabularRegressor and their preprocessing."""
from __future__ import annotations

import io
import pickle

import numpy as np
import pytest

import mlp
from mlp.tabular import TablePreprocessor, _Table

pd = pytest.importorskip("pandas")

FAST = dict(max_epochs=8, random_state=0, hidden_layer_sizes=(32, 32))


def table(n=300, seed=0):
    """Numeric (with missing values), a 3-level and a 15-level categorical, a bool; the label
    depends on all of them."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(n)
    b = rng.standard_normal(n) * 100 + 50
    small = rng.choice(["x", "y", "z"], n)
    big = rng.integers(0, 15, n)
    flag = rng.random(n) < 0.5
    logit = a + (small == "y") * 1.5 - (big % 3 == 0) * 1.0 + flag * 0.5
    y = np.where(logit + 0.3 * rng.standard_normal(n) > 0.4, "yes", "no")
    b[::9] = np.nan
    X = pd.DataFrame({"a": a, "b": b, "small": pd.Categorical(small),
                      "big": pd.Series([f"c{v}" for v in big], dtype=object), "flag": flag})
    return X, y, logit


# ---- preprocessing ---------------------------------------------------------------------------
def test_preprocessing_by_its_definition():
    X, _, _ = table()
    pre = TablePreprocessor(None, onehot_max_categories=9).fit(_Table(X))
    assert pre.kinds_ == ["numeric", "numeric", "onehot", "embedding", "onehot"]
    assert pre.indicator_ == [1]
    out = pre.transform(_Table(X))
    # Layout: the embedded column's codes, then a, b, b's missing indicator, then one-hot blocks.
    assert out.shape == (len(X), 1 + 2 + 1 + 3 + 2)
    b = X["b"].to_numpy()
    present = b[~np.isnan(b)]
    q25, med, q75 = np.percentile(present, [25, 50, 75])
    v = (b - med) / (q75 - q25)
    expected = np.where(np.isnan(b), 0.0, v / np.sqrt(1 + (v / 3) ** 2))
    np.testing.assert_allclose(out[:, 2], expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(out[:, 3], np.isnan(b))
    assert np.abs(out[:, 1:3]).max() < 3.0  # smooth clipping bounds every value by 3
    cats = sorted(set(X["big"]))
    np.testing.assert_array_equal(out[:, 0], [cats.index(v) for v in X["big"]])
    np.testing.assert_array_equal(out[:, 4:7], np.eye(3)[X["small"].cat.codes.to_numpy()])


def test_unseen_and_missing_categories_take_the_reserved_slot():
    X, _, _ = table()
    pre = TablePreprocessor().fit(_Table(X))
    new = X.iloc[:3].copy()
    new["small"] = pd.Categorical(["w", None, "x"])
    new["big"] = ["never seen", None, "c3"]
    new["b"] = [np.nan, np.inf, 1.0]
    out = pre.transform(_Table(new))
    assert out[0, 0] == out[1, 0] == len(pre.categories_[3])  # the embedding's reserved row
    np.testing.assert_array_equal(out[:2, 4:7], 0.0)  # one-hot: all zeros
    np.testing.assert_array_equal(out[2, 4:7], [1, 0, 0])
    np.testing.assert_array_equal(out[:2, 2], 0.0)
    np.testing.assert_array_equal(out[:, 3], [1, 1, 0])


def test_quantile_scaling_and_piecewise_linear_encoding_by_their_definitions():
    from scipy.stats import norm
    X, _, _ = table()
    pre = TablePreprocessor(numeric_scaling="quantile", ple_bins=4).fit(_Table(X))
    out = pre.transform(_Table(X))
    # Layout: the code, a, b, a's 4 bins, b's 4 bins, b's indicator, the one-hot blocks.
    assert pre.encoded == [0, 1] and out.shape == (len(X), 1 + 2 + 8 + 1 + 3 + 2)
    b = X["b"].to_numpy()
    present = np.sort(b[~np.isnan(b)])
    filled = np.where(np.isnan(b), np.median(present), b)
    # quantile: the normal score of the value's rank among the training values (n <= 1000, so
    # every value is a reference quantile); ties take the middle of their run
    rank = np.array([(np.searchsorted(present, v, "left") + np.searchsorted(present, v, "right")
                      - 1) / 2 for v in filled]) / (len(present) - 1)
    np.testing.assert_allclose(out[:, 2], norm.ppf(np.clip(rank, 1e-7, 1 - 1e-7)),
                               rtol=1e-5, atol=1e-5)
    # piecewise-linear: edges at the 0, 25, 50, 75, 100th percentiles (values of the column);
    # bins below the value read 1, above it 0, its own bin the position inside
    edges = np.percentile(present, [0, 25, 50, 75, 100], method="lower")
    for t in range(4):
        expected = np.clip((filled - edges[t]) / (edges[t + 1] - edges[t]), 0, 1)
        np.testing.assert_allclose(out[:, 7 + t], expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(out[:, 11], np.isnan(b))
    # a column with fewer than 3 distinct edges gets no encoding
    few = pd.DataFrame({"c": np.tile([0.0, 1.0], 50)})
    assert TablePreprocessor(ple_bins=8).fit(_Table(few)).encoded == []
    for bad, match in (({"numeric_scaling": "minmax"}, "numeric_scaling must be one of"),
                       ({"ple_bins": 1}, "ple_bins must be 0"), ({"ple_bins": -1}, "ple_bins")):
        with pytest.raises(ValueError, match=match):
            TablePreprocessor(**bad).fit(_Table(X))


def test_fit_transform_reads_each_categorical_column_once(monkeypatch):
    X, _, _ = table()
    reads = []
    original = _Table.values
    monkeypatch.setattr(_Table, "values", lambda self, j: reads.append(j) or original(self, j))
    rows = [np.arange(0, 300, 2), np.arange(1, 300, 2)]
    pre = TablePreprocessor(ple_bins=4)
    train, val = pre.fit_transform(_Table(X), rows)
    # the categorical columns (2, 3, 4) once: their codes are kept; a numeric column is read
    # again to fill each part (a view of a float column, not a conversion)
    assert sorted(reads) == [0, 0, 0, 1, 1, 1, 2, 3, 4]
    monkeypatch.setattr(_Table, "values", original)
    # the same as fitting on the first part and converting each part afterwards
    ref = TablePreprocessor(ple_bins=4).fit(_Table(X.iloc[rows[0]]))
    np.testing.assert_array_equal(train, ref.transform(_Table(X.iloc[rows[0]])))
    np.testing.assert_array_equal(val, ref.transform(_Table(X.iloc[rows[1]])))


def test_a_dict_of_columns_is_a_table():
    X, y, _ = table()
    columns = {name: X[name].to_numpy(dtype=object if name in ("small", "big", "flag")
                                      else float) for name in X.columns}
    a = mlp.TabularClassifier(**FAST).fit(columns, y)
    b = mlp.TabularClassifier(**FAST).fit(X, y)
    assert list(a.feature_names_in_) == list(X.columns)
    np.testing.assert_array_equal(a.predict_proba(columns), b.predict_proba(X))
    with pytest.raises(ValueError, match="1-D columns of one length"):
        a.predict({"a": [1.0, 2.0], "b": [1.0]})
    with pytest.raises(TypeError, match="string keys"):
        a.predict({0: [1.0]})


def test_arrays_with_categorical_features():
    X, y, _ = table()
    arr = X.to_numpy(dtype=object)
    for spec in ([2, 3, 4], ["small", "big", "flag"], [False, False, True, True, True]):
        source = X if isinstance(spec[0], str) else arr
        clf = mlp.TabularClassifier(categorical_features=spec, **FAST).fit(source, y)
        assert clf.preprocessor_.kinds_[2:] != ["numeric"] * 3
    with pytest.raises(ValueError, match="categorical_features: column index 9"):
        mlp.TabularClassifier(categorical_features=[9], **FAST).fit(arr, y)
    with pytest.raises(ValueError, match="no column named 'nope'"):
        mlp.TabularClassifier(categorical_features=["nope"], **FAST).fit(X, y)
    with pytest.raises(ValueError, match="not numbers; mark the column categorical"):
        mlp.TabularClassifier(categorical_features=[2], **FAST).fit(arr, y)


# ---- the estimators --------------------------------------------------------------------------
def test_classifier_learns_a_mixed_table_and_round_trips(tmp_path):
    X, y, _ = table(600)
    clf = mlp.TabularClassifier(random_state=0, max_epochs=40).fit(X.iloc[:450], y[:450])
    assert clf.score(X.iloc[450:], y[450:]) > 0.8
    assert list(clf.classes_) == ["no", "yes"]
    proba = clf.predict_proba(X.iloc[450:])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert set(clf.history_) == {"loss", "val_loss", "val_score", "learning_rate", "time"}
    assert len(clf.history_["loss"]) == clf.n_iter_ == 40
    assert clf.history_["val_score"][clf.best_epoch_] == max(clf.history_["val_score"])
    path = tmp_path / "t.mlp"
    clf.save(path)
    for other in (mlp.load(path), pickle.loads(pickle.dumps(clf))):
        np.testing.assert_array_equal(other.predict_proba(X), clf.predict_proba(X))
        assert other.get_params() == clf.get_params()


def test_regressor_learns_and_scales_targets_back(tmp_path):
    X, _, logit = table(500)
    y = 1000.0 + 300.0 * logit
    reg = mlp.TabularRegressor(random_state=0, max_epochs=40).fit(X.iloc[:400], y[:400])
    assert reg.score(X.iloc[400:], y[400:]) > 0.7
    assert abs(reg.predict(X).mean() - y.mean()) < 0.2 * y.std()  # back on the scale of y
    reg.save(tmp_path / "r.mlp")
    np.testing.assert_array_equal(mlp.load(tmp_path / "r.mlp").predict(X), reg.predict(X))
    two = mlp.TabularRegressor(**FAST).fit(X, np.column_stack([y, -y]))
    assert two.predict(X).shape == (len(X), 2)


def test_seeded_fits_are_repeatable_and_eval_set_replaces_the_split():
    X, y, _ = table()
    a = mlp.TabularClassifier(**FAST).fit(X, y).predict_proba(X)
    b = mlp.TabularClassifier(**FAST).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    clf = mlp.TabularClassifier(**FAST).fit(X.iloc[:200], y[:200], eval_set=(X.iloc[200:],
                                                                               y[200:]))
    assert len(clf.history_["val_loss"]) == 8
    none = mlp.TabularClassifier(validation_fraction=0.0, **FAST).fit(X, y)
    assert none.history_["val_loss"] == [None] * 8 and none.best_epoch_ == 7


def test_polars_frames():
    pl = pytest.importorskip("polars")
    X, y, _ = table()
    frame = pl.DataFrame({"a": X["a"].to_numpy(), "b": X["b"].to_numpy(),
                          "small": X["small"].astype(str).to_list(),
                          "big": X["big"].to_list(), "flag": X["flag"].to_list()})
    from_polars = mlp.TabularClassifier(**FAST).fit(frame, y)
    from_pandas = mlp.TabularClassifier(**FAST).fit(X.astype({"small": object}), y)
    np.testing.assert_allclose(from_polars.predict_proba(frame), from_pandas.predict_proba(X),
                               rtol=1e-5, atol=1e-6)


def test_in_a_pipeline_and_grid_search():
    from sklearn.model_selection import GridSearchCV
    X, y, _ = table()
    grid = GridSearchCV(mlp.TabularClassifier(**FAST), {"dropout": [0.0, 0.2]}, cv=2).fit(X, y)
    assert grid.best_params_["dropout"] in (0.0, 0.2)


def test_check_estimator():
    from sklearn.utils.estimator_checks import check_estimator
    for est in (mlp.TabularClassifier(random_state=0, max_epochs=30),
                mlp.TabularRegressor(random_state=0, max_epochs=30)):
        failed = [r for r in check_estimator(est, on_fail=None) if r["status"] == "failed"]
        assert not failed, [(r["check_name"], str(r["exception"])[:200]) for r in failed]


@pytest.mark.parametrize("params, exc, match", [
    ({"dropout": 1.0}, ValueError, "dropout must be in"),
    ({"weight_decay": -1}, ValueError, "weight_decay"),
    ({"learning_rate": 0}, ValueError, "learning_rate must be a finite number > 0"),
    ({"lr_schedule": "fast"}, ValueError, "lr_schedule must be one of"),
    ({"hidden_layer_sizes": (0,)}, ValueError, "hidden_layer_sizes"),
    ({"activation": "softmax"}, ValueError, "softmax"),
    ({"activation": "nope"}, ValueError, "unknown activation"),
    ({"validation_fraction": 1.0}, ValueError, "validation_fraction"),
    ({"max_epochs": 0}, ValueError, "max_epochs"),
    ({"label_smoothing": 1.0}, ValueError, "label_smoothing"),
    ({"random_state": -1}, ValueError, "random_state"),
])
def test_bad_settings_name_themselves(params, exc, match):
    X, y, _ = table(50)
    with pytest.raises(exc, match=match):
        mlp.TabularClassifier(**{**FAST, **params}).fit(X, y)


def test_bad_input():
    X, y, _ = table(50)
    clf = mlp.TabularClassifier(**FAST).fit(X, y)
    with pytest.raises(ValueError, match="X has 4 features, but TabularClassifier is expecting 5"):
        clf.predict(X.iloc[:, :4])
    with pytest.raises(ValueError, match="column names differ"):
        clf.predict(X[["b", "a", "small", "big", "flag"]])
    with pytest.raises(ValueError, match="y has 49 labels but X has 50 rows"):
        mlp.TabularClassifier(**FAST).fit(X, y[:49])
    with pytest.raises(ValueError, match="y contains NaN"):
        mlp.TabularRegressor(**FAST).fit(X, np.full(50, np.nan))


def test_ensemble_members_train_together():
    X, y, _ = table(200)
    clf = mlp.TabularClassifier(n_ensemble=4, **FAST).fit(X, y)
    assert clf._net.ensemble == 4
    adapters = clf._net.adapters()
    assert adapters.shape == (4, clf._spec.first_width)
    assert not np.isin(adapters, [-1.0, 1.0]).all()  # trained away from their random signs
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match="n_ensemble"):
        mlp.TabularClassifier(n_ensemble=0, **FAST).fit(X, y)


def _onnx_feed(pre, X):
    """The graph's inputs from a DataFrame: (N, 1) doubles or strings per column; a missing
    category becomes the empty string (not a training category here, so the reserved slot)."""
    feed = {}
    for j, name in enumerate(X.columns):
        col = X[name]
        if pre.kinds_[j] == "numeric":
            feed[name] = col.to_numpy(dtype=np.float64).reshape(-1, 1)
        else:
            feed[name] = np.array(["" if pd.isna(v) else str(v) for v in col],
                                  dtype=object).reshape(-1, 1)
    return feed


def _unseen(X):
    new = X.iloc[:40].copy()
    new["small"] = pd.Categorical(["w", None, "x", "y"] * 10)
    new["big"] = ["never seen", None] * 10 + list(X["big"].iloc[:20])
    new.loc[new.index[:5], "b"] = np.nan
    new.loc[new.index[5], "b"] = np.inf
    new.loc[new.index[6], "a"] = 1e200
    return new


@pytest.mark.parametrize("params", [
    dict(), dict(ple_bins=8), dict(n_ensemble=3, ple_bins=4), dict(activation="mish"),
    dict(calibrate=True, ple_bins=4),
])
def test_onnx_round_trip_with_the_preprocessing(params, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    X, y, _ = table()
    for est, three in ((mlp.TabularClassifier(**FAST, **params), False),
                       (mlp.TabularClassifier(**FAST, **params), True),
                       (mlp.TabularRegressor(**FAST, **{k: v for k, v in params.items()
                                                         if k != "calibrate"}), False)):
        target = y if not isinstance(est, mlp.TabularRegressor) else X["a"].to_numpy() * 5 + 1
        if three:
            target = np.where(X["a"] > 0.5, "high", target)
        est.fit(X, target)
        if params.get("calibrate") and not isinstance(est, mlp.TabularRegressor):
            assert est.temperature_ != 1.0
        # the file's model, not only the one in memory, exports the same graph
        est.save(tmp_path / "m.mlp")
        proto = mlp.to_onnx(mlp.load(tmp_path / "m.mlp"))
        sess = ort.InferenceSession(proto.SerializeToString())
        assert [i.name for i in sess.get_inputs()] == list(X.columns)
        new = _unseen(X)
        for data in (X, new):
            out = dict(zip([o.name for o in sess.get_outputs()],
                           sess.run(None, _onnx_feed(est.preprocessor_, data))))
            if isinstance(est, mlp.TabularRegressor):
                np.testing.assert_allclose(out["predictions"], est.predict(data), rtol=1e-5,
                                           atol=1e-5)
            else:
                np.testing.assert_allclose(out["probabilities"], est.predict_proba(data),
                                           rtol=1e-5, atol=1e-6)
                assert list(out["label"]) == list(est.predict(data))


def test_onnx_arrays_and_what_cannot_be_exported():
    ort = pytest.importorskip("onnxruntime")
    X, y, _ = table()
    arr = X[["a", "b"]].to_numpy()
    reg = mlp.TabularRegressor(**FAST).fit(arr, np.column_stack([X["a"], -X["a"]]))
    sess = ort.InferenceSession(mlp.to_onnx(reg).SerializeToString())
    assert [i.name for i in sess.get_inputs()] == ["x0", "x1"]
    pred, = sess.run(None, {"x0": arr[:, :1], "x1": arr[:, 1:]})
    assert pred.shape == (len(X), 2)
    np.testing.assert_allclose(pred, reg.predict(arr), rtol=1e-5, atol=1e-5)
    with pytest.raises(TypeError, match="numeric_scaling='quantile' cannot be exported"):
        mlp.to_onnx(mlp.TabularClassifier(**FAST, numeric_scaling="quantile").fit(X, y))
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError):
        mlp.to_onnx(mlp.TabularClassifier())


def test_the_device_is_checked_before_any_work():
    X, y, _ = table(60)
    if mlp.build_info()["cuda"]:
        pytest.skip("this build has CUDA: tests/cuda checks device='cuda'")
    for params in (dict(device="cuda"), dict(device="cuda", n_ensemble=2)):
        with pytest.raises(ValueError, match="device='cuda': this build of mlp has no CUDA"):
            mlp.TabularClassifier(**FAST, **params).fit(X, y)
    with pytest.raises(ValueError, match="device must be"):
        mlp.TabularRegressor(**FAST, device="gpu").fit(X, X["a"])
    assert mlp.TabularClassifier(**FAST, device="auto").fit(X, y)._device == -1


def test_the_kept_epoch_is_the_best_by_the_validation_metric():
    X, y, _ = table()
    for metric in ("accuracy", "log_loss"):
        clf = mlp.TabularClassifier(**{**FAST, "max_epochs": 12}, val_metric=metric).fit(X, y)
        acc, loss = np.array(clf.history_["val_score"]), np.array(clf.history_["val_loss"])
        if metric == "log_loss":
            assert clf.best_epoch_ == int(np.argmin(loss))
        else:
            tied = np.flatnonzero(acc == acc.max())
            assert clf.best_epoch_ == tied[np.argmin(loss[tied])]
        assert clf.best_score_ == acc[clf.best_epoch_]
    reg = mlp.TabularRegressor(**{**FAST, "max_epochs": 30}, batch_size=32).fit(X, X["a"] * 3)
    r2 = np.array(reg.history_["val_score"])
    assert reg.best_score_ == r2.max() and reg.best_epoch_ == int(np.argmax(r2)) and r2.max() > 0.5
    with pytest.raises(ValueError, match="val_metric must be"):
        mlp.TabularClassifier(val_metric="auc").fit(X, y)


def test_calibration_lowers_the_validation_log_loss_and_keeps_every_class():
    from sklearn.metrics import log_loss
    X, y, _ = table(600, seed=2)
    X_val, y_val = X.iloc[400:], y[400:]
    three = np.where(X["a"] > 0.8, "high", y)
    for target in (y, three):
        plain = mlp.TabularClassifier(**FAST, calibrate=False).fit(X.iloc[:400], target[:400],
                                                  eval_set=(X_val, target[400:]))
        cal = mlp.TabularClassifier(**FAST, calibrate=True).fit(
            X.iloc[:400], target[:400], eval_set=(X_val, target[400:]))
        assert plain.temperature_ == 1.0 and cal.temperature_ != 1.0
        # the same network (calibration comes after the fit), classes unchanged
        np.testing.assert_array_equal(cal.predict(X_val), plain.predict(X_val))
        before = log_loss(target[400:], plain.predict_proba(X_val), labels=plain.classes_)
        after = log_loss(target[400:], cal.predict_proba(X_val), labels=cal.classes_)
        assert after < before
        np.testing.assert_allclose(cal.predict_proba(X_val).sum(axis=1), 1.0)
        # by its definition: softmax(log p / T) of the uncalibrated probabilities
        p = plain.predict_proba(X_val)
        z = np.log(p) / cal.temperature_
        q = np.exp(z - z.max(axis=1, keepdims=True))
        np.testing.assert_allclose(cal.predict_proba(X_val), q / q.sum(axis=1, keepdims=True),
                                   rtol=1e-6, atol=1e-9)
        # saved and loaded with it; pickled too
        again = pickle.loads(pickle.dumps(cal))
        assert again.temperature_ == cal.temperature_
        np.testing.assert_array_equal(again.predict_proba(X_val), cal.predict_proba(X_val))
    with pytest.raises(TypeError, match="calibrate must be True or False"):
        mlp.TabularClassifier(calibrate="yes").fit(X, y)


@pytest.mark.parametrize("edit, match", [
    (lambda e: e.reverse(), "strictly increasing"),
    (lambda e: e.__setitem__(0, "x"), r"edges\[0\]\[0\] must be a number, got .x."),
    (lambda e: e.__setitem__(slice(None), e[:2]), "at least 3"),
])
def test_a_file_with_bad_bin_edges_is_refused(edit, match):
    from test_io import load_bytes, rewrite  # the archive editor of the file-format tests

    def bad_edges(meta):
        edit(meta["fitted"]["preprocessor"]["edges"][0][1])
        return meta

    X, y, _ = table(200)
    buf = io.BytesIO()
    mlp.TabularClassifier(**FAST).fit(X, y).save(buf)
    with pytest.raises(ValueError, match=match):
        load_bytes(rewrite(buf.getvalue(), meta=bad_edges))
