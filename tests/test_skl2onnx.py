"""skl2onnx support (mlp/_skl2onnx.py): pipelines ending in an mlp estimator convert whole, and
onnxruntime's outputs match predict / predict_proba.

The pipelines are fitted on float64 data, as scikit-learn users do, and converted with a float64
input, so the networks and the graphs compute in float64; a float32 case checks the other
precision. The tolerance is 1e-5 (relative, and absolute for probabilities) throughout.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import mlp

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
skl2onnx = pytest.importorskip("skl2onnx")
from sklearn.datasets import load_diabetes, load_iris  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from mlp import MLPClassifier, MLPRegressor  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

TOL = {"rtol": 1e-5, "atol": 1e-5}
ACTIVATIONS = ["identity", "relu", "leaky_relu", "elu", "logistic", "tanh", "swish", "selu",
               "mish", "gelu", "gelu_tanh"]
NAMES = np.array(["setosa", "versicolor", "virginica"])


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return X, y  # float64, unscaled: the pipeline's StandardScaler does that


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return X * 10, y


def classifier(X, y, **kw):
    params = {"hidden_layer_sizes": (8,), "max_iter": 30, "random_state": 0}
    params.update(kw)
    return make_pipeline(StandardScaler(), MLPClassifier(**params)).fit(X, y)


def run(proto, X, dtype=np.float64):
    """Check the graph, run it in onnxruntime, return {output name: value}."""
    onnx.checker.check_model(proto, full_check=True)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    (feed,) = [i.name for i in session.get_inputs()]
    return dict(zip(names, session.run(None, {feed: np.asarray(X, dtype=dtype)})))


def no_zipmap(pipe):
    return {id(pipe.steps[-1][1]): {"zipmap": False}}


# ---- classifiers -----------------------------------------------------------------------------
@pytest.mark.parametrize("target", ["multiclass", "binary", "strings", "bool", "floats"])
def test_classifier_pipeline_probability_tensor(iris, target):
    X, y = iris
    y = {"multiclass": y, "binary": (y > 0).astype(int) * 3 + 2, "strings": NAMES[y],
         "bool": y == 1, "floats": y.astype(float) + 1}[target]
    pipe = classifier(X, y)
    out = run(skl2onnx.to_onnx(pipe, X[:1], options=no_zipmap(pipe)), X)
    assert list(out) == ["label", "probabilities"]
    np.testing.assert_allclose(out["probabilities"], pipe.predict_proba(X), **TOL)
    assert out["probabilities"].dtype == np.float64  # the input's precision
    # skl2onnx's label types: strings for string classes, int64 for every numeric kind
    assert out["label"].dtype == (object if target == "strings" else np.int64)
    assert out["label"].shape == (len(X),)
    np.testing.assert_array_equal(out["label"], pipe.predict(X))


@pytest.mark.parametrize("target", ["multiclass", "binary", "strings"])
def test_classifier_pipeline_zipmap_default(iris, target):
    X, y = iris
    y = {"multiclass": y, "binary": NAMES[(y > 0).astype(int)], "strings": NAMES[y]}[target]
    pipe = classifier(X, y)
    out = run(skl2onnx.to_onnx(pipe, X[:1]), X)
    assert list(out) == ["output_label", "output_probability"]
    np.testing.assert_array_equal(out["output_label"], pipe.predict(X))
    classes = pipe.classes_
    rows = out["output_probability"]
    assert len(rows) == len(X)
    assert all(sorted(row) == sorted(classes.tolist()) for row in rows)
    got = np.array([[row[c] for c in classes.tolist()] for row in rows])
    np.testing.assert_allclose(got, pipe.predict_proba(X), **TOL)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_classifier_every_activation(iris, activation):
    X, y = iris
    pipe = classifier(X, y, hidden_layer_sizes=(6, 5), activation=activation)
    out = run(skl2onnx.to_onnx(pipe, X[:1], options=no_zipmap(pipe)), X)
    np.testing.assert_allclose(out["probabilities"], pipe.predict_proba(X), **TOL)
    np.testing.assert_array_equal(out["label"], pipe.predict(X))


def test_classifier_float32_input_and_bare_estimator(iris):
    X, y = iris
    X32 = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=30, random_state=0).fit(X32, y)
    proto = skl2onnx.to_onnx(clf, X32[:1], options={id(clf): {"zipmap": False}})
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    out = run(proto, X32, np.float32)
    np.testing.assert_allclose(out["probabilities"], clf.predict_proba(X32), **TOL)
    np.testing.assert_array_equal(out["label"], clf.predict(X32))


def test_classifier_int64_input_is_cast(iris):
    X, y = iris
    Xi = np.round(X * 10).astype(np.int64)
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=0).fit(Xi, y)
    out = run(skl2onnx.to_onnx(clf, Xi[:1], options={id(clf): {"zipmap": False}}), Xi, np.int64)
    np.testing.assert_allclose(out["probabilities"], clf.predict_proba(Xi), **TOL)


@pytest.mark.parametrize("zipmap", [False, True])
def test_multilabel(iris, zipmap):
    X, y = iris
    Y = np.stack([y == 0, y == 2, X[:, 0] > 5.8], axis=1).astype(int)
    pipe = classifier(X, Y)
    options = None if zipmap else no_zipmap(pipe)
    out = run(skl2onnx.to_onnx(pipe, X[:1], options=options), X)
    label, proba = out.values()
    assert label.dtype == np.int64 and label.shape == Y.shape
    np.testing.assert_array_equal(label, pipe.predict(X))
    if zipmap:
        proba = np.array([[row[c] for c in range(3)] for row in proba])
    np.testing.assert_allclose(proba, pipe.predict_proba(X), **TOL)


def test_one_class_needs_zipmap_false(iris):
    X, _ = iris
    y = np.full(len(X), 7)
    pipe = classifier(X, y, max_iter=5)
    out = run(skl2onnx.to_onnx(pipe, X[:1], options=no_zipmap(pipe)), X)
    np.testing.assert_allclose(out["probabilities"], pipe.predict_proba(X), **TOL)
    np.testing.assert_array_equal(out["label"], pipe.predict(X))
    with pytest.raises(ValueError, match="one class.*zipmap"):
        skl2onnx.to_onnx(pipe, X[:1])


def test_classifier_options_columns_nocl_and_class_labels(iris):
    X, y = iris
    pipe = classifier(X, NAMES[y])
    proba = pipe.predict_proba(X)
    clf = id(pipe.steps[-1][1])
    out = run(skl2onnx.to_onnx(pipe, X[:1], options={clf: {"zipmap": "columns"}}), X)
    assert list(out) == ["output_label"] + [f"s{name}" for name in NAMES]
    for j, name in enumerate(NAMES):
        np.testing.assert_allclose(out[f"s{name}"], proba[:, j], **TOL)
    # nocl: class indices instead of the labels
    out = run(skl2onnx.to_onnx(pipe, X[:1], options={clf: {"zipmap": False, "nocl": True}}), X)
    np.testing.assert_array_equal(out["label"], np.argmax(proba, axis=1))
    # output_class_labels: the classes as one more output
    out = run(skl2onnx.to_onnx(
        pipe, X[:1], options={clf: {"zipmap": False, "output_class_labels": True}}), X)
    assert list(out) == ["label", "probabilities", "class_labels"]
    np.testing.assert_array_equal(out["class_labels"], NAMES)


def test_target_opset_13(iris):
    X, y = iris
    pipe = classifier(X, y, activation="swish")
    proto = skl2onnx.to_onnx(pipe, X[:1], options=no_zipmap(pipe), target_opset=13)
    assert {o.domain: o.version for o in proto.opset_import}[""] == 13
    out = run(proto, X)
    np.testing.assert_allclose(out["probabilities"], pipe.predict_proba(X), **TOL)


@pytest.mark.parametrize("target_opset", [13, 18])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_newer_activations_in_both_precisions(iris, target_opset, dtype):
    """onnxruntime runs neither Selu, Softplus nor Erf in double (nor Mish, but at opset 18): a
    float64 graph spells selu and mish in operators it runs, and takes erf through float32; a
    float32 graph uses the operators themselves."""
    X, y = iris
    pipe = classifier(X, y, hidden_layer_sizes=(6, 5, 4), activation=["selu", "mish", "gelu"])
    proto = skl2onnx.to_onnx(pipe, X[:1].astype(dtype), options=no_zipmap(pipe),
                             target_opset=target_opset)
    ops = [n.op_type for n in proto.graph.node]
    double = dtype == np.float64
    assert ("Selu" in ops) != double
    assert ("Mish" in ops) == (target_opset >= 18 and not double)
    assert ("Softplus" in ops) == (target_opset < 18 and not double)
    assert "Erf" in ops and ("Cast" in ops) == double
    out = run(proto, X, dtype)
    np.testing.assert_allclose(out["probabilities"], pipe.predict_proba(X), **TOL)
    np.testing.assert_array_equal(out["label"], pipe.predict(X))


# ---- regressors ------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["single", "multi", "poisson"])
def test_regressor_pipeline(diabetes, case):
    X, y = diabetes
    kw = {"hidden_layer_sizes": (10,), "max_iter": 40, "learning_rate_init": 0.01,
          "random_state": 0}
    if case == "multi":
        y = np.stack([y, X[:, 0] - X[:, 1]], axis=1)
    if case == "poisson":
        kw.update(loss="poisson", learning_rate_init=0.001)
        y = y / 100
    pipe = make_pipeline(StandardScaler(), MLPRegressor(**kw)).fit(X, y)
    out = run(skl2onnx.to_onnx(pipe, X[:1]), X)
    (pred,) = out.values()
    # skl2onnx writes every regressor's output as (N, n_outputs), (N, 1) for one output
    expected = pipe.predict(X).reshape(len(X), -1)
    assert pred.shape == expected.shape and pred.dtype == np.float64
    np.testing.assert_allclose(pred, expected, **TOL)


@pytest.mark.parametrize("activation", ["relu", "elu", "swish"])
def test_regressor_activations(diabetes, activation):
    X, y = diabetes
    pipe = make_pipeline(StandardScaler(), MLPRegressor(
        hidden_layer_sizes=(8, 6), activation=activation, max_iter=30, learning_rate_init=0.01,
        random_state=0)).fit(X, y)
    (pred,) = run(skl2onnx.to_onnx(pipe, X[:1]), X).values()
    np.testing.assert_allclose(pred[:, 0], pipe.predict(X), **TOL)


# ---- bad input -------------------------------------------------------------------------------
def test_unfitted_estimators_raise(iris):
    X, _ = iris
    for est in (MLPClassifier(), MLPRegressor()):
        with pytest.raises(NotFittedError):
            skl2onnx.to_onnx(est, X[:1])


def test_wrong_input_width_and_type(iris):
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    X, y = iris
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="fitted on 4 features.*has 3"):
        skl2onnx.convert_sklearn(clf, initial_types=[("X", FloatTensorType([None, 3]))])
    with pytest.raises(TypeError, match="float, double, int64, int32 or boolean"):
        skl2onnx.convert_sklearn(clf, initial_types=[("X", StringTensorType([None, 4]))])


# ---- registration ----------------------------------------------------------------------------
def test_register_is_public_and_idempotent():
    from skl2onnx._supported_operators import sklearn_operator_name_map

    assert "register_skl2onnx" in mlp.__all__
    mlp.register_skl2onnx()
    mlp.register_skl2onnx()
    assert sklearn_operator_name_map[MLPClassifier] == "MlpMLPClassifier"
    assert sklearn_operator_name_map[MLPRegressor] == "MlpMLPRegressor"


def test_registers_at_once_when_skl2onnx_is_loaded(monkeypatch):
    # `import mlp` with skl2onnx already imported: register_when_imported registers at once.
    from skl2onnx._supported_operators import sklearn_operator_name_map

    monkeypatch.delitem(sklearn_operator_name_map, MLPClassifier)
    monkeypatch.delitem(sklearn_operator_name_map, MLPRegressor)
    mlp._skl2onnx.register_when_imported()
    assert sklearn_operator_name_map[MLPClassifier] == "MlpMLPClassifier"
    assert sklearn_operator_name_map[MLPRegressor] == "MlpMLPRegressor"


def test_registration_failure_inside_an_import_warns(monkeypatch):
    def broken():
        raise RuntimeError("incompatible skl2onnx")

    monkeypatch.setattr(mlp._skl2onnx, "register_skl2onnx", broken)
    with pytest.warns(UserWarning, match="incompatible skl2onnx.*register_skl2onnx"):
        mlp._skl2onnx._register_or_warn()


def test_register_without_skl2onnx_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "skl2onnx", None)
    with pytest.raises(ImportError, match=r'pip install "mlp\[onnx\]"'):
        mlp.register_skl2onnx()


_FRESH_PROCESS = """
import importlib.util
import sys
import mlp
assert "skl2onnx" not in sys.modules and "onnx" not in sys.modules
assert importlib.util.find_spec("skl2onnx") is not None  # looking is no import
import skl2onnx
assert skl2onnx.__spec__.loader is skl2onnx.__loader__
assert type(skl2onnx.__loader__).__module__ != "mlp._skl2onnx"
import numpy as np
X = np.random.default_rng(0).standard_normal((30, 3))
clf = mlp.MLPClassifier(hidden_layer_sizes=(4,), max_iter=2).fit(X, X[:, 0] > 0)
skl2onnx.to_onnx(clf, X[:1])
print("converted")
"""


def test_import_mlp_then_skl2onnx_needs_no_user_step():
    # import mlp does not import skl2onnx (about a second), yet registers once it is imported.
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", _FRESH_PROCESS],
                          capture_output=True, text=True, check=False,
                          cwd=os.path.dirname(os.path.abspath(__file__)), timeout=120)
    assert done.returncode == 0, done.stderr
    assert "converted" in done.stdout
