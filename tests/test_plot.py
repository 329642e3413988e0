"""plot_history (mlp/plot.py), rendered off-screen with matplotlib's Agg backend."""
from __future__ import annotations

import sys

import numpy as np
import pytest

import mlp
from mlp import Dense, Model

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

pytest.importorskip("sklearn")
from sklearn.datasets import load_iris  # noqa: E402

from mlp import MLPClassifier, MLPRegressor  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), y


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_estimator_with_validation_renders_a_png(iris, tmp_path):
    X, y = iris
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=0)
    clf.fit(X[::2], y[::2], eval_set=(X[1::2], y[1::2]))
    fig = mlp.plot_history(clf)
    assert isinstance(fig, matplotlib.figure.Figure)
    loss_ax, score_ax = fig.axes
    assert [line.get_label() for line in loss_ax.get_lines()] == ["training loss",
                                                                  "validation loss"]
    np.testing.assert_allclose(loss_ax.get_lines()[0].get_ydata(), clf.history_["loss"])
    assert score_ax.get_ylabel() == "accuracy"
    path = tmp_path / "curve.png"
    fig.savefig(path)
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 5000


def test_model_history_and_loss_only_histories(iris, tmp_path):
    X, y = iris
    inputs = Dense(8, input_size=4, activation="relu", seed=0)
    model = Model(inputs, Dense(3, activation="softmax", seed=1)(inputs))
    model.compile("categorical_cross_entropy", optimizer="adam", metrics=["accuracy"])
    model.fit(X, np.eye(3)[y], 5, 0.01, validation_data=(X[:30], np.eye(3)[y[:30]]), seed=0)
    fig = mlp.plot_history(model, title="iris")
    assert len(fig.axes) == 2 and fig._suptitle.get_text() == "iris"
    assert len(fig.axes[1].get_lines()) == 2  # accuracy and validation accuracy

    reg = MLPRegressor(solver="lbfgs", hidden_layer_sizes=(4,), max_iter=15,
                       random_state=0).fit(X, X[:, 0])
    fig = mlp.plot_history(reg)
    assert len(fig.axes) == 1 and len(fig.axes[0].get_lines()) == 1
    fig.savefig(tmp_path / "lbfgs.png")
    assert (tmp_path / "lbfgs.png").read_bytes().startswith(PNG_SIGNATURE)


def test_errors(monkeypatch):
    with pytest.raises(ValueError, match="fit it first"):
        mlp.plot_history(MLPClassifier())
    inputs = Dense(2, input_size=2)
    with pytest.raises(ValueError, match="call model.fit"):
        mlp.plot_history(Model(inputs, Dense(1)(inputs)))

    clf = MLPClassifier(max_iter=2, random_state=0).fit([[0.0], [1.0]], [0, 1])
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r'pip install "mlp\[plot\]"'):
        mlp.plot_history(clf)
