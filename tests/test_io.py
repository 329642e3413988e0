"""Save / load (mlp.io) and pickling, which share one state (mlp/_format.py and each class's
_to_state / _from_state).

Round trips must predict bit for bit and keep training exactly as the original would; a crafted,
truncated or garbled file must give a ValueError, never a crash, code execution or a huge
allocation.
"""
from __future__ import annotations

import copy
import io
import json
import pickle
import struct
import zipfile

import numpy as np
import pytest

import mlp
from mlp import ELU, GELU, SELU, Dense, LeakyReLU, Layer, Mish, Model, Sigmoid
from mlp import io as mlp_io

sklearn = pytest.importorskip("sklearn")
from sklearn.datasets import load_diabetes, load_iris  # noqa: E402

from mlp import MLPClassifier, MLPRegressor  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

ACTIVATIONS = ["identity", "relu", "leaky_relu", "elu", "logistic", "tanh", "swish", "selu",
               "mish", "gelu", "gelu_tanh"]


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), y


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return X * 10, (y - y.mean()) / y.std()


def roundtrip(obj):
    """Save to memory and load back."""
    buf = io.BytesIO()
    mlp_io.save(obj, buf)
    buf.seek(0)
    return mlp.load(buf)


def archive_bytes(obj) -> bytes:
    buf = io.BytesIO()
    mlp_io.save(obj, buf)
    return buf.getvalue()


def rewrite(data: bytes, *, meta=None, drop=(), replace=None, compress=None) -> bytes:
    """A copy of an archive with meta.json edited (a function of the dict), members dropped or
    replaced (name -> bytes), or members recompressed (name -> compress_type)."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            if info.filename in drop:
                continue
            content = src.read(info.filename)
            if info.filename == "meta.json" and meta is not None:
                content = json.dumps(meta(json.loads(content))).encode()
            if replace and info.filename in replace:
                content = replace[info.filename]
            method = (compress or {}).get(info.filename, zipfile.ZIP_STORED)
            dst.writestr(info.filename, content, compress_type=method)
    return out.getvalue()


def load_bytes(data: bytes):
    return mlp.load(io.BytesIO(data))


def assert_same_weights(a, b):
    for x, y in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(x, y)


def make_model(hidden_act="relu", out="softmax", n_in=4, n_out=3, seed=0):
    inputs = Dense(8, input_size=n_in, activation=hidden_act, seed=seed)
    x = Dense(6, activation=hidden_act, seed=seed + 1)(inputs)
    outputs = Dense(n_out, activation=out, seed=seed + 2)(x)
    return Model(inputs, outputs)


# ------------------------------------------------------------------------------------------------
# Round trips: every activation, both estimators and a Model, float32 and float64
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_classifier_roundtrip_every_activation(iris, activation, dtype):
    X, y = iris
    X = X.astype(dtype)
    clf = MLPClassifier(hidden_layer_sizes=(8, 5), activation=activation, max_iter=5,
                        random_state=0).fit(X, y)
    loaded = roundtrip(clf)
    assert type(loaded) is MLPClassifier
    assert loaded.coefs_[0].dtype == dtype
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    assert loaded.get_params() == clf.get_params()


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_regressor_roundtrip_every_activation(diabetes, activation, dtype):
    X, y = diabetes
    X = X.astype(dtype)
    reg = MLPRegressor(hidden_layer_sizes=(8,), activation=activation, max_iter=5,
                       random_state=0).fit(X, y)
    loaded = roundtrip(reg)
    assert type(loaded) is MLPRegressor
    np.testing.assert_array_equal(loaded.predict(X), reg.predict(X))
    assert loaded.score(X, y) == reg.score(X, y)


@pytest.mark.parametrize("activation", ACTIVATIONS + ["softmax"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_model_roundtrip_every_activation(iris, activation, dtype):
    X, y = iris
    if activation == "softmax":
        model = make_model("tanh", "softmax")
        model.compile("categorical_cross_entropy", optimizer="adam", metrics=["accuracy"],
                      dtype=dtype)
        target = np.eye(3)[y]
    else:
        model = make_model(activation, activation, n_out=2)
        model.compile("mse", optimizer="momentum", dtype=dtype)
        target = np.eye(3)[y][:, :2]
    model.fit(X, target, 3, 0.01, seed=0, validation_data=(X[:20], target[:20]))
    loaded = roundtrip(model)
    assert type(loaded) is Model
    assert loaded.native and loaded.dtype == model.dtype
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.history == model.history
    assert [type(a) for a in loaded.layers] == [type(a) for a in model.layers]
    assert loaded.count_params() == model.count_params()


def test_classifier_label_types(iris):
    X, y = iris
    names = np.array(["setosa", "versicolor", "virginica"])
    cases = {
        "str": names[y],
        "object": names[y].astype(object),
        "float": y * 2.0,
        "bool": y == 2,
        "negative int": y - 5,
        "binary str": np.where(y == 2, "yes", "no"),
    }
    for label, target in cases.items():
        clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0).fit(X, target)
        loaded = roundtrip(clf)
        np.testing.assert_array_equal(loaded.classes_, clf.classes_, err_msg=label)
        assert loaded.classes_.dtype == clf.classes_.dtype, label
        np.testing.assert_array_equal(loaded.predict(X), clf.predict(X), err_msg=label)
        np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def test_multilabel_classifier(iris):
    X, y = iris
    Y = np.column_stack([y == 0, y == 1, X[:, 0] > 0]).astype(int)
    clf = MLPClassifier(hidden_layer_sizes=(6,), max_iter=5, random_state=0).fit(X, Y)
    loaded = roundtrip(clf)
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    loaded.partial_fit(X, Y)
    clf.partial_fit(X, Y)
    assert_same_weights(loaded, clf)


def test_poisson_and_multioutput_regressors(diabetes):
    X, y = diabetes
    counts = np.round(np.exp(y))
    reg = MLPRegressor(loss="poisson", hidden_layer_sizes=(6,), max_iter=5,
                       random_state=0).fit(X, counts)
    loaded = roundtrip(reg)
    assert loaded.out_activation_ == "exp"
    np.testing.assert_array_equal(loaded.predict(X), reg.predict(X))
    assert loaded.loss_ == reg.loss_

    Y = np.column_stack([y, -y, y ** 2])
    reg = MLPRegressor(hidden_layer_sizes=(6,), max_iter=5, random_state=0).fit(X, Y)
    loaded = roundtrip(reg)
    assert loaded.predict(X).shape == (len(X), 3)
    np.testing.assert_array_equal(loaded.predict(X), reg.predict(X))


def test_fitted_attributes_survive(iris):
    pd = pytest.importorskip("pandas")
    X, y = iris
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=8, random_state=0,
                        early_stopping=True, validation_fraction=0.2).fit(frame, y)
    loaded = roundtrip(clf)
    for name in ("n_iter_", "t_", "loss_", "loss_curve_", "best_loss_", "validation_scores_",
                 "best_validation_score_", "n_layers_", "n_outputs_", "out_activation_",
                 "n_features_in_", "history_"):
        assert getattr(loaded, name) == getattr(clf, name), name
    assert list(loaded.feature_names_in_) == ["a", "b", "c", "d"]
    np.testing.assert_array_equal(loaded.predict(frame), clf.predict(frame))


def test_hyperparameters_that_json_lacks(iris):
    X, y = iris
    clf = MLPClassifier(hidden_layer_sizes=(5, 4), activation=["tanh", "elu"], max_iter=3,
                        class_weight={0: 2.0, 1: 1.0, 2: 0.5},
                        random_state=np.random.RandomState(3),
                        n_threads=1, batch_size=16).fit(X, y)
    loaded = roundtrip(clf)
    params, original = loaded.get_params(), clf.get_params()
    rs_loaded, rs_original = params.pop("random_state"), original.pop("random_state")
    assert params == original
    assert isinstance(params["hidden_layer_sizes"], tuple)
    # The generator keeps its exact state, and stays the one the estimator draws from.
    assert rs_loaded.randint(1 << 30) == rs_original.randint(1 << 30)
    assert loaded._random_state is loaded.random_state


def test_unfitted_estimator_and_uncompiled_model():
    clf = MLPClassifier(hidden_layer_sizes=(3, 2), alpha=0.5)
    loaded = roundtrip(clf)
    assert loaded.get_params() == clf.get_params()
    assert not hasattr(loaded, "coefs_")

    inputs = Dense(3, input_size=2, activation=LeakyReLU(0.2), seed=1)
    outputs = ELU(0.5)(Dense(2, seed=2)(inputs))
    model = Model(inputs, outputs)
    loaded = roundtrip(model)
    assert loaded.loss is None
    x = np.array([[0.5, -1.0], [2.0, 0.1]])
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.layers[0].activation.alpha == 0.2 and loaded.layers[2].alpha == 0.5


def test_loading_leaves_numpys_global_random_state_alone(iris):
    model = make_model()
    model.compile("categorical_cross_entropy")
    data = archive_bytes(model)
    np.random.seed(7)
    before = np.random.get_state()[1].copy()
    load_bytes(data)
    np.testing.assert_array_equal(np.random.get_state()[1], before)


# ------------------------------------------------------------------------------------------------
# Training goes on exactly as it would have
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("settings", [
    dict(solver="adam"),
    dict(solver="sgd", momentum=0.9, nesterovs_momentum=True),
    dict(solver="sgd", momentum=0.0, learning_rate="invscaling"),
])
def test_partial_fit_and_warm_start_continue_exactly(iris, settings):
    X, y = iris
    clf = MLPClassifier(hidden_layer_sizes=(6,), max_iter=4, random_state=0,
                        learning_rate_init=0.01, **settings).fit(X, y)
    loaded = roundtrip(clf)
    for est in (clf, loaded):
        est.partial_fit(X, y)
        est.partial_fit(X[:50], y[:50])
    assert_same_weights(loaded, clf)
    assert loaded.loss_curve_ == clf.loss_curve_ and loaded.t_ == clf.t_

    for est in (clf, loaded):
        est.set_params(warm_start=True, max_iter=3)
        est.fit(X, y)
    assert_same_weights(loaded, clf)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def test_regressor_continues_from_file(tmp_path, diabetes):
    X, y = diabetes
    reg = MLPRegressor(hidden_layer_sizes=(6,), max_iter=4, random_state=1)
    reg.fit(X.astype(np.float32), y)
    path = tmp_path / "reg.mlp"
    reg.save(path)
    loaded = mlp.load(path)
    loaded.partial_fit(X.astype(np.float32), y)
    reg.partial_fit(X.astype(np.float32), y)
    assert_same_weights(loaded, reg)


def test_lbfgs_estimator(iris):
    X, y = iris
    clf = MLPClassifier(solver="lbfgs", hidden_layer_sizes=(5,), max_iter=10,
                        random_state=0).fit(X, y)
    loaded = roundtrip(clf)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert loaded.history_ == clf.history_
    loaded.set_params(warm_start=True).fit(X, y)  # keeps training without complaint


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adam"])
def test_model_fit_continues_exactly(iris, optimizer, tmp_path):
    X, y = iris
    target = np.eye(3)[y]
    model = make_model()
    model.compile("categorical_cross_entropy", optimizer=optimizer)
    model.fit(X, target, 3, 0.01, seed=1)
    model.save(tmp_path / "m.mlp")
    loaded = mlp.load(tmp_path / "m.mlp")
    assert repr(loaded.optimizer) == repr(model.optimizer)
    for m in (model, loaded):
        m.fit(X, target, 2, 0.01, seed=2)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_model_roundtrip_keeps_the_newer_activation_classes(iris, dtype):
    """SELU, Mish and both GELUs as Dense activations and as standalone layers come back as the
    same classes (GELU with its approximate), predicting bit for bit, and train on exactly."""
    X, y = iris
    inputs = Dense(8, input_size=4, activation=GELU(approximate="tanh"), seed=0)
    x = Dense(7, activation=SELU(), seed=1)(inputs)
    x = Mish()(Dense(6, seed=2)(x))  # folds into the linear Dense before it
    x = Dense(5, activation=GELU(), seed=3)(x)
    outputs = Dense(3, activation="softmax", seed=4)(x)
    model = Model(inputs, outputs)
    model.compile("categorical_cross_entropy", optimizer="adam", dtype=dtype)
    target = np.eye(3)[y]
    model.fit(X, target, 2, 0.01, seed=0)
    loaded = roundtrip(model)
    assert [type(a) for a in loaded.layers] == [type(a) for a in model.layers]
    names = [layer.activation.name if isinstance(layer, Dense) else layer.name
             for layer in loaded.layers]
    assert names == ["gelu_tanh", "selu", "linear", "mish", "gelu", "softmax"]
    assert loaded.native  # the standalone Mish folded into the linear Dense before it
    assert repr(loaded.layers[0].activation) == "GELU(approximate='tanh')"
    assert loaded.layers[0].activation.approximate == "tanh"
    assert loaded.layers[4].activation.approximate is False
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    for m in (model, loaded):
        m.fit(X, target, 2, 0.01, seed=5)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_gelu_class_and_name_must_agree_in_a_file(iris):
    """A GELU entry whose name is not one of the two GELUs is refused, naming the field."""
    inputs = Dense(3, input_size=4, activation=GELU(approximate="tanh"), seed=0)
    model = Model(inputs, Dense(2, activation="sigmoid", seed=1)(inputs))
    data = archive_bytes(model)
    assert load_bytes(data).layers[0].activation.name == "gelu_tanh"

    def edit(meta, name):
        text = json.dumps(meta)
        assert text.count('"gelu_tanh"') == 1
        return json.loads(text.replace('"gelu_tanh"', json.dumps(name)))

    with pytest.raises(ValueError, match="activation"):
        load_bytes(rewrite(data, meta=lambda m: edit(m, "selu")))


def test_model_on_the_python_path(iris):
    # ReLU after a relu Dense cannot fold into the native network: the Python path, whose
    # optimizer buffers are keyed by id(param), is saved by layer instead.
    X, y = iris
    inputs = Dense(5, input_size=4, activation="relu", seed=0)
    x = Sigmoid()(inputs)
    outputs = Dense(1, activation="sigmoid", seed=1)(x)
    model = Model(inputs, outputs)
    model.compile("binary_cross_entropy", optimizer="adam")
    assert not model.native
    model.fit(X, y == 1, 2, 0.05, seed=0)
    loaded = roundtrip(model)
    assert not loaded.native
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    for m in (model, loaded):
        m.fit(X, y == 1, 2, 0.05, seed=3)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


# ------------------------------------------------------------------------------------------------
# Pickle and joblib go through the same state
# ------------------------------------------------------------------------------------------------
def test_pickle_and_joblib(iris, tmp_path):
    joblib = pytest.importorskip("joblib")
    from mlp.callbacks import EarlyStopping

    X, y = iris
    stopper = EarlyStopping(monitor="loss", patience=50)
    clf = MLPClassifier(hidden_layer_sizes=(6,), max_iter=5, random_state=0,
                        callbacks=[stopper]).fit(X, y)
    clf.note = "kept"  # a user's own attribute rides along with pickle
    for loaded in (pickle.loads(pickle.dumps(clf)), copy.deepcopy(clf)):
        np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
        assert type(loaded.callbacks[0]) is EarlyStopping  # pickle keeps what a file cannot
        assert loaded.note == "kept"
        loaded.partial_fit(X, y)
    joblib.dump(clf, tmp_path / "clf.joblib")
    loaded = joblib.load(tmp_path / "clf.joblib", mmap_mode="r")
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    loaded.partial_fit(X, y)  # read-only memory-mapped arrays were copied into the network

    with pytest.warns(UserWarning, match=r"not plain data"):
        # a file cannot hold them: callbacks are dropped silently, other objects with a warning
        warn_clf = MLPClassifier(random_state=np.random.RandomState(np.random.PCG64(0)))
        mlp_io.save(warn_clf, io.BytesIO())
    assert roundtrip(clf).callbacks is None

    model = make_model()
    model.compile("categorical_cross_entropy", optimizer="adam")
    model.fit(X, np.eye(3)[y], 2, 0.01, seed=0)
    loaded = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.layers[0].weights.base is not None  # views into the rebuilt native network


def test_pickle_keeps_invalid_parameters_for_fit_to_report():
    clf = MLPClassifier(max_iter=-1)
    loaded = pickle.loads(pickle.dumps(clf))
    assert loaded.max_iter == -1
    with pytest.raises(ValueError, match="max_iter"):
        loaded.fit([[0.0], [1.0]], [0, 1])


class Scale(Layer):
    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def forward(self, input):
        self.input = input
        self.output = input * self.factor
        return self.output

    def backward(self, output_error, learning_rate):
        return output_error * self.factor


def test_custom_layers_pickle_but_cannot_be_saved():
    inputs = Dense(3, input_size=2, seed=0)
    outputs = Dense(1, seed=1)(Scale(2.0)(inputs))
    model = Model(inputs, outputs)
    model.compile("mse", optimizer="momentum")
    with pytest.raises(TypeError, match="user's own layer"):
        mlp_io.save(model, io.BytesIO())
    x = np.array([[1.0, 2.0], [0.5, -1.0], [2.0, 0.0]])
    model.fit(x, x[:, :1], 2, 0.01, seed=0)
    loaded = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    for m in (model, loaded):  # momentum buffers follow the unpickled weights
        m.fit(x, x[:, :1], 2, 0.01, seed=1)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    with pytest.raises(TypeError, match="expected an mlp Model"):
        mlp_io.save(object(), io.BytesIO())


# ------------------------------------------------------------------------------------------------
# Untrusted files
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved(iris):
    X, y = iris
    clf = MLPClassifier(hidden_layer_sizes=(6,), max_iter=3, random_state=0).fit(X, y)
    return archive_bytes(clf)


def test_the_file_is_a_plain_zip_of_json_and_raw_arrays(saved):
    zf = zipfile.ZipFile(io.BytesIO(saved))
    meta = json.loads(zf.read("meta.json"))
    assert (meta["format"], meta["format_version"], meta["kind"]) == ("mlp", 1, "MLPClassifier")
    assert meta["hyperparameters"]["callbacks"] is None
    assert meta["fitted"]["classes_"] == {"dtype": "int64", "values": [0, 1, 2]}
    assert meta["optimizer"]["kind"] == "adam" and meta["optimizer"]["n_arrays"] == 2
    for name, spec in meta["arrays"].items():
        raw = zf.read(f"arrays/{name}.bin")
        assert len(raw) == np.dtype(spec["dtype"]).itemsize * int(np.prod(spec["shape"]))
    assert not any(b"pickle" in zf.read(n) for n in zf.namelist() if n.endswith(".json"))


def test_missing_path_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        mlp.load(tmp_path / "nope.mlp")
    with pytest.raises(OSError):
        mlp.load(tmp_path)


@pytest.mark.parametrize("content", [b"", b"hello", b"PK\x03\x04" + b"\0" * 40,
                                     b"\x80\x04\x95" + b"\0" * 64])
def test_not_a_zip(content, tmp_path):
    path = tmp_path / "bad.mlp"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not an mlp model file"):
        mlp.load(path)


def test_truncated_files(saved):
    for cut in sorted({1, 10, 100, len(saved) // 3, len(saved) // 2, len(saved) - 200,
                       len(saved) - 30, len(saved) - 1}):
        with pytest.raises(ValueError):
            load_bytes(saved[:cut])


def test_garbled_array_bytes_fail_the_checksum(saved):
    data = bytearray(saved)
    start = bytes(data).index(b"arrays/coefs/0.bin") + len("arrays/coefs/0.bin") + 8
    data[start] ^= 0xFF
    with pytest.raises(ValueError, match="corrupt|CRC"):
        load_bytes(bytes(data))


def test_random_corruption_gives_only_value_errors(saved):
    rng = np.random.default_rng(0)
    outcomes = set()
    for _ in range(300):
        data = bytearray(saved)
        for pos in rng.integers(0, len(data), size=rng.integers(1, 4)):
            data[pos] = rng.integers(0, 256)
        try:
            load_bytes(bytes(data))
            outcomes.add("loaded")
        except ValueError:
            outcomes.add("ValueError")
    assert "ValueError" in outcomes


def test_wrong_format_newer_version_and_kind(saved):
    with pytest.raises(ValueError, match="not an mlp model"):
        load_bytes(rewrite(saved, meta=lambda m: {**m, "format": "keras"}))
    with pytest.raises(ValueError, match=r"format version 2.*[Uu]pgrade mlp"):
        load_bytes(rewrite(saved, meta=lambda m: {**m, "format_version": 2, "new": "field"}))
    for bad in (0, "1", 1.0, None):
        with pytest.raises(ValueError, match="format_version"):
            load_bytes(rewrite(saved, meta=lambda m: {**m, "format_version": bad}))
    with pytest.raises(ValueError, match="kind"):
        load_bytes(rewrite(saved, meta=lambda m: {**m, "kind": "os.system"}))
    with pytest.raises(ValueError, match="unknown field"):
        load_bytes(rewrite(saved, meta=lambda m: {**m, "extra": 1}))
    with pytest.raises(ValueError, match="JSON"):
        load_bytes(rewrite(saved, replace={"meta.json": b"{not json"}))
    with pytest.raises(ValueError, match="JSON"):
        load_bytes(rewrite(saved, replace={"meta.json": b'{"format": NaN}'}))
    with pytest.raises(ValueError):
        load_bytes(rewrite(saved, replace={"meta.json": b"[" * 100_000 + b"]" * 100_000}))
    with pytest.raises(ValueError, match="meta.json"):
        load_bytes(rewrite(saved, drop=("meta.json",)))


def _set(path, value):
    def edit(meta):
        node = meta
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        return meta
    return edit


@pytest.mark.parametrize("path, value, match", [
    (("arrays", "coefs/0", "shape"), [4, 7], "declared"),
    (("arrays", "coefs/0", "dtype"), "<f4", "declared"),
    (("dtype",), "float16", "dtype"),
    (("architecture", "sizes"), [4, 7, 3], "architecture.sizes"),
    (("architecture", "sizes"), [4, 2**40, 3], "layer widths|integer"),
    (("architecture", "activations"), ["tanh", "softmax"], "activations"),
    (("fitted", "n_features_in_"), 5, "sizes"),
    (("fitted", "n_outputs_"), 2, "sizes|classes"),
    (("fitted", "classes_"), {"dtype": "int64", "values": [0, 1]}, "classes"),
    (("fitted", "classes_"), {"dtype": "datetime64", "values": [0, 1, 2]}, "dtype"),
    (("fitted", "classes_"), {"dtype": "<U1", "values": ["a", "bb", "c"]}, "characters"),
    (("fitted", "loss_curve_"), ["x"], "number"),
    (("fitted", "t_"), -1, "t_"),
    (("fitted", "_label_binarizer"), {"y_type": "continuous", "sparse_input": False}, "y_type"),
    (("hyperparameters", "max_iter"), -5, "max_iter"),
    (("hyperparameters", "hidden_layer_sizes"), {"$tuple": [7]}, "sizes"),
    (("hyperparameters", "evil"), "__import__('os')", "unknown parameter"),
    (("hyperparameters", "activation"), {"$pickle": "gASV"}, "known tag"),
    (("optimizer", "kind"), "sgd", "solver"),
    (("optimizer", "n_arrays"), 1, "n_arrays"),
    (("optimizer", "step"), -3, "step"),
    (("optimizer", "settings"), {"beta_1": 0.5, "beta_2": 0.999, "epsilon": 1e-8}, "settings"),
    (("arrays", "coefs/9"), {"dtype": "<f8", "shape": [1]}, "no use for"),
])
def test_inconsistent_fields(saved, path, value, match):
    with pytest.raises(ValueError, match=match):
        load_bytes(rewrite(saved, meta=_set(path, value)))


def test_missing_and_oversized_members(saved):
    with pytest.raises(ValueError, match="arrays/optimizer/1.bin is missing"):
        load_bytes(rewrite(saved, drop=("arrays/optimizer/1.bin",)))
    big = np.zeros(10_000, dtype="<f4").tobytes()
    with pytest.raises(ValueError, match="holds 40000 bytes, but the architecture needs"):
        load_bytes(rewrite(saved, replace={"arrays/coefs/0.bin": big}))
    with pytest.raises(ValueError, match="holds 4 bytes"):
        load_bytes(rewrite(saved, replace={"arrays/intercepts/1.bin": b"\0" * 4}))
    with pytest.raises(ValueError, match="compression method"):
        load_bytes(rewrite(saved, compress={"arrays/coefs/0.bin": zipfile.ZIP_BZIP2}))
    # Deflated members are fine, as any zip tool may write them.
    model = load_bytes(rewrite(saved, compress={n: zipfile.ZIP_DEFLATED for n in
                                                zipfile.ZipFile(io.BytesIO(saved)).namelist()}))
    assert model.n_layers_ == 3


def _patch_central_size(data: bytes, member: str, size: int) -> bytes:
    """Make the central directory claim `size` uncompressed bytes for `member` (a lying header,
    as a zip bomb has)."""
    data = bytearray(data)
    pos = data.index(b"PK\x01\x02")
    while True:
        name_len = struct.unpack_from("<H", data, pos + 28)[0]
        name = bytes(data[pos + 46:pos + 46 + name_len]).decode()
        if name == member:
            struct.pack_into("<I", data, pos + 24, size)
            return bytes(data)
        extra, comment = struct.unpack_from("<HH", data, pos + 30)
        pos += 46 + name_len + extra + comment


def test_zip_bombs_are_refused_before_reading(saved, monkeypatch):
    deflated = rewrite(saved, compress={"meta.json": zipfile.ZIP_DEFLATED})
    # A member claiming far more than the archive could unpack to, under the meta.json cap.
    with pytest.raises(ValueError, match="not a genuine mlp file"):
        load_bytes(_patch_central_size(deflated, "meta.json", 60 << 20))
    with pytest.raises(ValueError, match="more than"):
        load_bytes(_patch_central_size(deflated, "meta.json", 2**32 - 1))
    # A real bomb: highly compressible meta.json beyond the cap.
    monkeypatch.setattr(mlp_io, "_MAX_META_BYTES", 10_000)
    bomb = rewrite(saved, replace={"meta.json": b" " * 20_000},
                   compress={"meta.json": zipfile.ZIP_DEFLATED})
    with pytest.raises(ValueError, match="more than the 10000 allowed"):
        load_bytes(bomb)
    # An array member whose stored size points past the end of the file.
    with pytest.raises(ValueError, match="past the end|truncated|holds"):
        load_bytes(_patch_central_size(saved, "arrays/coefs/0.bin", 2**31))


def test_model_files_are_checked_too(iris):
    model = make_model()
    model.compile("categorical_cross_entropy", optimizer="adam")
    model.fit(iris[0], np.eye(3)[iris[1]], 1, 0.01, seed=0)
    data = archive_bytes(model)
    cases = [
        (("architecture", "layers", 1, "input_size"), 9, "declared|match"),
        (("architecture", "layers", 0, "type"), "Lambda", "Dense"),
        (("architecture", "layers", 0, "activation", "class"), "Evil", "class"),
        (("architecture", "layers", 0, "activation", "name"), "softmax", "consistent|softmax"),
        (("optimizer", "class"), "Pickle", "optimizer.class"),
        (("optimizer", "settings"), {"beta_1": 7}, "compiled settings"),
        (("hyperparameters", "loss"), "mse", "compiled settings|softmax"),
        (("hyperparameters", "native"), False, "native"),
        (("fitted", "history"), {"loss": "x"}, "list"),
    ]
    for path, value, match in cases:
        with pytest.raises(ValueError, match=match):
            load_bytes(rewrite(data, meta=_set(path, value)))


def test_saving_replaces_files_atomically(tmp_path, iris):
    X, y = iris
    path = tmp_path / "clf.mlp"
    path.write_bytes(b"old")
    MLPClassifier(hidden_layer_sizes=(3,), max_iter=2, random_state=0).fit(X, y).save(str(path))
    assert mlp.load(path).n_layers_ == 3
    assert [p.name for p in tmp_path.iterdir()] == ["clf.mlp"]  # no temporary file left over


def _leaf_paths(node, path=()):
    """Every value's path in a JSON tree (only the first item of a list is descended into)."""
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaf_paths(value, path + (key,))
    elif isinstance(node, list) and node:
        yield from _leaf_paths(node[0], path + (0,))


def _json_kind(value) -> str:
    """The kind of a meta.json value: 'null', 'bool', 'number' (a {'$float': ...} tag too), 'str',
    'list', 'dict', or a tag's name ('$tuple', '$random_state', ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list):
        return "list"
    if len(value) == 1 and next(iter(value)).startswith("$"):
        return "number" if "$float" in value else next(iter(value))
    return "dict"


# Kinds a field may hold besides the one this file has: scikit-learn's own parameter rules (a
# bool is a number to them; these parameters take None, 'auto' or an int), and fitted attributes
# that are None without validation data or before an epoch with a validation score.
_OTHER_KINDS = {
    ("hyperparameters", "random_state"): {"null", "bool", "$random_state"},
    ("hyperparameters", "n_threads"): {"number", "bool"},
    ("hyperparameters", "class_weight"): {"str", "dict", "$dict"},
    ("hyperparameters", "callbacks"): {"list"},
    ("hyperparameters", "batch_size"): {"number", "bool"},
    ("hyperparameters", "verbose"): {"number"},
    ("fitted", "best_loss_"): {"number"},
    ("fitted", "validation_scores_"): {"null"},
    ("fitted", "best_validation_score_"): {"null"},
    ("architecture", "layers", 0, "seed"): {"null"},
    ("hyperparameters", "metrics"): {"null"},
    # None (the default) or a number: the decoupled decay and the clipping bound.
    ("hyperparameters", "weight_decay"): {"number"},
    ("hyperparameters", "clipnorm"): {"number"},
    ("optimizer", "settings", "clipnorm"): {"number"},
}
_NUMBER_PARAMETERS = ("alpha", "learning_rate_init", "max_fun", "max_iter", "momentum",
                      "n_iter_no_change", "power_t", "tol", "beta_1", "beta_2", "epsilon",
                      "validation_fraction")


def _accepted_kinds(path, saved) -> set:
    kinds = {_json_kind(saved)} | _OTHER_KINDS.get(tuple(path), set())
    if path[0] == "hyperparameters" and len(path) == 2 and path[1] in _NUMBER_PARAMETERS:
        kinds.add("bool")  # scikit-learn's parameter validation counts True as the number 1
    if path[:2] in (("fitted", "history_"), ("fitted", "history")) and len(path) == 4:
        kinds.add("null")  # an epoch without that figure
    if path[:2] == ("fitted", "validation_scores_") and len(path) == 3:
        kinds.add("null")
    return kinds


@pytest.mark.parametrize("kind", ["classifier", "model"])
def test_every_field_replaced_by_junk_gives_a_value_error(iris, kind):
    # Every field of meta.json in turn holds each junk value. A value of a kind the field never
    # holds (a string for a number, a list for a flag, anything for a string...) must be refused
    # with ValueError; a value of a kind it may hold (another number, None where None is allowed)
    # may load. Never any other exception.
    X, y = iris
    if kind == "classifier":
        obj = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0,
                            early_stopping=True).fit(X, np.array(["a", "b", "c"])[y])
    else:
        obj = make_model("elu", "softmax")
        obj.compile("categorical_cross_entropy", optimizer="momentum", metrics=["accuracy"])
        obj.fit(X, np.eye(3)[y], 1, 0.01, seed=0)
    data = archive_bytes(obj)
    meta = json.loads(zipfile.ZipFile(io.BytesIO(data)).read("meta.json"))
    junk = [None, -1, 0, 2**70, 1e308, "x", True, [], {}, [1, "a"], {"$float": "nan"}]
    loaded, other, refused = [], [], 0
    for path in list(_leaf_paths(meta))[1:]:
        saved = meta
        for key in path:
            saved = saved[key]
        accepted = _accepted_kinds(path, saved)
        for value in junk:
            try:
                load_bytes(rewrite(data, meta=_set(path, value)))
            except ValueError:
                refused += 1
                continue
            except Exception as exc:  # noqa: BLE001 - anything else is a bug
                other.append((path, value, type(exc).__name__, str(exc)[:100]))
                continue
            if _json_kind(value) not in accepted:
                loaded.append((path, saved, value))
    assert not other, other[:5]
    assert not loaded, f"{len(loaded)} junk values of the wrong kind loaded: {loaded[:8]}"
    assert refused > 5 * len(list(_leaf_paths(meta)))  # most junk is refused


def test_plain_data_encoding_round_trips():
    from mlp import _format

    value = {"a": (1, 2.5, None), "inf": float("inf"), "nan_list": [float("-inf")],
             "keys": {0: "zero", 1.5: True}, "$odd": "key", "rs": np.random.RandomState(1),
             "arr": np.array([1, 2], dtype=np.int32)}
    decoded = _format.decode(json.loads(json.dumps(_format.encode(value), allow_nan=False)), "x")
    assert decoded["a"] == (1, 2.5, None) and decoded["inf"] == float("inf")
    assert decoded["keys"] == {0: "zero", 1.5: True} and decoded["$odd"] == "key"
    assert decoded["rs"].randint(1000) == np.random.RandomState(1).randint(1000)
    assert decoded["arr"].dtype == np.int32
