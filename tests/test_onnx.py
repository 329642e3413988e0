"""ONNX export (mlp/onnx_export.py): the graph run by onnxruntime matches predict / predict_proba.

Models are trained in float32, as the exported graph computes, so the only differences left are
the summation order of the two engines: 1e-5 (relative, and absolute for probabilities).
"""
from __future__ import annotations

import sys

import numpy as np
import pytest

import mlp
from mlp import ELU, GELU, SELU, Dense, LeakyReLU, Mish, Model, ReLU

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("sklearn")
from sklearn.datasets import load_diabetes, load_digits, load_iris  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402

from mlp import MLPClassifier, MLPRegressor  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

ACTIVATIONS = ["identity", "relu", "leaky_relu", "elu", "logistic", "tanh", "swish", "selu",
               "mish", "gelu", "gelu_tanh"]
TOL = dict(rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return ((X - X.mean(0)) / X.std(0)).astype(np.float32), y


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return (X * 10).astype(np.float32), y


def run(proto, X):
    """Check the graph, run it in onnxruntime, return {output name: array}."""
    onnx.checker.check_model(proto, full_check=True)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"]
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {"input": np.asarray(X, dtype=np.float32)})))


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_classifier_every_activation(digits, activation):
    X, y = digits
    clf = MLPClassifier(hidden_layer_sizes=(24, 12), activation=activation, max_iter=15,
                        random_state=0).fit(X, y)
    out = run(mlp.to_onnx(clf), X)
    np.testing.assert_allclose(out["probabilities"], clf.predict_proba(X), **TOL)
    np.testing.assert_array_equal(out["label"], clf.predict(X))
    assert out["label"].dtype == np.int64


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_regressor_every_activation(diabetes, activation):
    X, y = diabetes
    reg = MLPRegressor(hidden_layer_sizes=(16,), activation=activation, max_iter=30,
                       learning_rate_init=0.01, random_state=0).fit(X, y)
    out = run(mlp.to_onnx(reg), X)
    assert out["predictions"].shape == (len(X),)
    np.testing.assert_allclose(out["predictions"], reg.predict(X), **TOL)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_model_every_activation(iris, activation):
    X, y = iris
    np.random.seed(0)
    inputs = Dense(12, input_size=4, activation=activation)
    outputs = Dense(3, activation="softmax")(Dense(8, activation=activation)(inputs))
    model = Model(inputs, outputs)
    model.compile("categorical_cross_entropy", optimizer="adam")
    model.fit(X, np.eye(3)[y], 5, 0.01, seed=0)
    out = run(mlp.to_onnx(model), X)
    np.testing.assert_allclose(out["output"], model.predict(X), **TOL)


def test_model_with_standalone_activations_and_parameters(iris):
    X, _ = iris
    inputs = Dense(6, input_size=4, seed=0)
    x = LeakyReLU(0.3)(inputs)
    x = Dense(5, activation=ELU(0.7), seed=1)(x)
    x = ReLU()(Dense(4, seed=2)(x))
    outputs = Dense(2, activation="sigmoid", seed=3)(x)
    model = Model(inputs, outputs)  # not compiled: the layers' own weights are exported
    out = run(mlp.to_onnx(model), X)
    np.testing.assert_allclose(out["output"], model.predict(X), **TOL)


def _ops(proto):
    return [n.op_type for n in proto.graph.node]


@pytest.mark.parametrize("opset", [13, 17, 18])
def test_newer_activations_forms_by_opset(iris, opset):
    """selu is ONNX's Selu with the core's constants; mish is Mish from opset 18 and
    Softplus + Tanh + Mul before; gelu is built on Erf and gelu_tanh on Tanh (no Gelu, which is
    opset 20's). Every form matches predict."""
    X, _ = iris
    inputs = Dense(6, input_size=4, activation=SELU(), seed=0)
    x = Dense(6, activation=Mish(), seed=1)(inputs)
    x = Dense(6, activation=GELU(), seed=2)(x)
    outputs = Dense(3, activation=GELU(approximate="tanh"), seed=3)(x)
    model = Model(inputs, outputs)
    proto = mlp.to_onnx(model, opset=opset)
    ops = _ops(proto)
    assert ops.count("Selu") == 1 and "Erf" in ops and "Gelu" not in ops
    if opset >= 18:
        assert "Mish" in ops and "Softplus" not in ops
    else:
        assert "Mish" not in ops and "Softplus" in ops
    (selu,) = [n for n in proto.graph.node if n.op_type == "Selu"]
    attrs = {a.name: a.f for a in selu.attribute}
    assert attrs["alpha"] == pytest.approx(1.6732632423543772, rel=1e-7)
    assert attrs["gamma"] == pytest.approx(1.0507009873554805, rel=1e-7)
    np.testing.assert_allclose(run(proto, X)["output"], model.predict(X), **TOL)


@pytest.mark.parametrize("name", ["selu", "mish", "gelu", "gelu_tanh"])
@pytest.mark.parametrize("opset", [17, 18])
def test_newer_activations_at_extreme_inputs(name, opset):
    """Through an identity Dense, inputs up to +-1e30 (x^3 overflows float32 in gelu_tanh's
    graph): the graph and predict agree and neither has a NaN. (The absolute floor is for
    onnxruntime's side: its Selu is 0 at -1e-30, its gelu_tanh graph sums 1 + tanh(u).)"""
    layer = Dense(1, input_size=1, activation=name, seed=0)
    model = Model(layer, layer)
    layer.weights = [[1.0]]
    layer.bias = [0.0]
    X = np.array([-1e30, -1e10, -1e4, -50.0, -3.0, -1e-30, 0.0, 1e-30, 3.0, 50.0, 1e4, 1e10,
                  1e30], dtype=np.float32).reshape(-1, 1)
    got = run(mlp.to_onnx(model, opset=opset), X)["output"]
    want = model.predict(X)
    assert not np.isnan(got).any() and not np.isnan(want).any()
    np.testing.assert_allclose(got, want, **TOL)


def test_string_binary_and_multilabel_classifiers(iris, digits):
    X, y = iris
    names = np.array(["setosa", "versicolor", "virginica"])
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=0).fit(X, names[y])
    out = run(mlp.to_onnx(clf), X)
    assert out["label"].dtype == object  # a string tensor gathered from the classes
    np.testing.assert_array_equal(out["label"], clf.predict(X))
    np.testing.assert_allclose(out["probabilities"], clf.predict_proba(X), **TOL)

    binary = np.where(y == 2, "yes", "no")
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=0).fit(X, binary)
    out = run(mlp.to_onnx(clf), X)
    assert out["probabilities"].shape == (len(X), 2)
    np.testing.assert_allclose(out["probabilities"], clf.predict_proba(X), **TOL)
    np.testing.assert_array_equal(out["label"], clf.predict(X))

    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=0).fit(X, y == 1)
    np.testing.assert_array_equal(run(mlp.to_onnx(clf), X)["label"], clf.predict(X))

    Xd, yd = digits
    Y = np.column_stack([yd % 2 == 0, yd > 4, yd == 7]).astype(int)
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=15, random_state=0).fit(Xd, Y)
    out = run(mlp.to_onnx(clf), Xd)
    np.testing.assert_array_equal(out["label"], clf.predict(Xd))
    np.testing.assert_allclose(out["probabilities"], clf.predict_proba(Xd), **TOL)


def test_poisson_and_multioutput_regressors(diabetes):
    X, y = diabetes
    reg = MLPRegressor(loss="poisson", hidden_layer_sizes=(8,), max_iter=30,
                       learning_rate_init=0.01, random_state=0).fit(X, y)
    proto = mlp.to_onnx(reg)
    assert "Exp" in [n.op_type for n in proto.graph.node]
    np.testing.assert_allclose(run(proto, X)["predictions"], reg.predict(X), **TOL)

    Y = np.column_stack([y, y / 2 + 1])
    reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=30, learning_rate_init=0.01,
                       random_state=0).fit(X, Y)
    out = run(mlp.to_onnx(reg), X)
    assert out["predictions"].shape == (len(X), 2)
    np.testing.assert_allclose(out["predictions"], reg.predict(X), **TOL)


def test_float64_models_export_float32_weights(digits):
    X, y = digits
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=10, random_state=0).fit(
        X.astype(np.float64), y)
    proto = mlp.to_onnx(clf)
    float_inits = [t for t in proto.graph.initializer if t.name.startswith(("W", "B"))]
    assert float_inits and all(t.data_type == onnx.TensorProto.FLOAT for t in float_inits)
    out = run(proto, X)
    np.testing.assert_allclose(out["probabilities"], clf.predict_proba(X), rtol=1e-4, atol=1e-5)


def test_graph_interface(digits):
    X, y = digits
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(X, y)
    proto = mlp.to_onnx(clf, name="digits")
    assert proto.graph.name == "digits" and proto.producer_name == "mlp"
    batch = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param and not batch.dim_value  # a dynamic batch dimension
    assert [o.name for o in proto.graph.output] == ["label", "probabilities"]
    ops = {n.op_type for n in proto.graph.node}
    assert {"MatMul", "Add", "Relu", "Softmax", "ArgMax", "Gather"} <= ops
    for rows in (1, 7):  # any batch size runs
        out = run(proto, X[:rows])
        np.testing.assert_array_equal(out["label"], clf.predict(X[:rows]))


def test_errors(iris, monkeypatch):
    with pytest.raises(NotFittedError):
        mlp.to_onnx(MLPClassifier())
    with pytest.raises(TypeError, match="expected an mlp Model"):
        mlp.to_onnx("model")
    with pytest.raises(ValueError, match="opset"):
        mlp.to_onnx(_tiny_model(), opset=11)

    class Twice(mlp.Layer):
        def forward(self, input):
            return input * 2

        def backward(self, output_error, learning_rate):
            return output_error * 2

    inputs = Dense(2, input_size=2, seed=0)
    with pytest.raises(TypeError, match="user's own layer"):
        mlp.to_onnx(Model(inputs, Twice()(inputs)))

    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r'pip install "mlp\[onnx\]"'):
        mlp.to_onnx(_tiny_model())


def _tiny_model():
    inputs = Dense(2, input_size=2, seed=0)
    return Model(inputs, Dense(1, seed=1)(inputs))
