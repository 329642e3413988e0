"""Files and pickles written by an earlier mlp load today, predict as they did, and keep training.

The fixtures in tests/data/format_v1 were written by the code before the training engine and the
per-class state replaced mlp/_state.py (see make_fixtures.py there).
"""
import os
import pickle

import numpy as np
import pandas as pd
import pytest

import mlp

pytest.importorskip("sklearn")

HERE = os.path.join(os.path.dirname(__file__), "data", "format_v1")


def _same_outputs(actual, desired):
    # The weights load bit for bit; the outputs may still differ by an ulp where the kernel set
    # (AVX-512, AVX2, baseline) or the build (the sanitizer run) differs from the one that wrote
    # the fixtures.
    np.testing.assert_allclose(actual, desired, rtol=1e-6, atol=1e-7)


@pytest.fixture(scope="module")
def expected():
    with np.load(os.path.join(HERE, "expected.npz")) as data:
        return {k: data[k] for k in data.files}


def _frame(X):
    return pd.DataFrame(X, columns=["a", "b", "c", "d"])


def _check_classifier(clf, expected):
    assert isinstance(clf, mlp.MLPClassifier)
    assert list(clf.feature_names_in_) == ["a", "b", "c", "d"]
    assert list(clf.classes_) == ["cat", "dog", "owl"]
    _same_outputs(clf.predict_proba(_frame(expected["X"])), expected["clf_proba"])
    np.testing.assert_array_equal(clf.predict(_frame(expected["X"])).astype(str),
                                  expected["clf_labels"])
    before = clf.t_
    clf.partial_fit(_frame(expected["X"]), expected["clf_labels"])
    assert clf.t_ == before + len(expected["X"])


def _check_regressor(reg, expected):
    assert isinstance(reg, mlp.MLPRegressor)
    assert reg.coefs_[0].dtype == np.float32 and reg.n_outputs_ == 2
    _same_outputs(reg.predict(expected["Xr"]), expected["reg_pred"])
    reg.partial_fit(expected["Xr"], reg.predict(expected["Xr"]))


def _check_model(model, expected):
    assert isinstance(model, mlp.Model)
    assert [type(layer).__name__ for layer in model.layers] == ["Dense", "ReLU", "Dense"]
    assert model.dtype == np.float64 and model.loss.name == "binary_cross_entropy"
    assert set(model.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(model.history["loss"]) == 5
    _same_outputs(model.predict(expected["X"]), expected["model_pred"])
    y = (expected["X"][:, :2] > 0).astype(float)
    model.fit(expected["X"], y, 1, 0.01, seed=0)  # keeps training from the saved Adam state


@pytest.mark.parametrize("name, check", [("classifier", _check_classifier),
                                         ("regressor", _check_regressor),
                                         ("model", _check_model)])
def test_file_from_format_v1_loads(name, check, expected):
    check(mlp.load(os.path.join(HERE, f"{name}.mlp")), expected)


def test_pickles_from_format_v1_load(expected):
    with open(os.path.join(HERE, "pickles.pkl"), "rb") as f:
        objects = pickle.load(f)
    _check_classifier(objects["classifier"], expected)
    _check_regressor(objects["regressor"], expected)
    _check_model(objects["model"], expected)
