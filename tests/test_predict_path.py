"""Predict on a few rows (a model serving one request at a time) takes its own path: the GEMM's
unpacked small-m kernel on the calling thread. Its results must be bit-identical to the batched
path's, for every activation, both dtypes, embeddings, and widths past one k block (256)."""
from __future__ import annotations

import numpy as np
import pytest

from mlp import _core

A = _core.ActivationKind
L = _core.LossKind


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("sizes", [[64, 100, 10], [3, 300, 1], [700, 33, 65, 4], [5, 1, 2]])
def test_few_rows_match_the_batched_path(dtype, sizes):
    rng = np.random.default_rng(len(sizes))
    hidden = [a for a in A.__members__.values() if a != A.SOFTMAX]
    for act in hidden:
        acts = [act] * (len(sizes) - 2) + [A.SOFTMAX if sizes[-1] > 1 else A.SIGMOID]
        loss = L.CATEGORICAL_CROSS_ENTROPY if sizes[-1] > 1 else L.BINARY_CROSS_ENTROPY
        net = _core.Network(sizes, acts, [0.1] * len(acts), loss, 1.0, dtype)
        net.params[:] = rng.standard_normal(net.n_params) * 0.2
        x = rng.standard_normal((300, sizes[0])).astype(dtype)
        full = net.predict(x)
        for k in (1, 2, 3, 4, 5, 9):
            for start in (0, 11, 290):
                np.testing.assert_array_equal(net.predict(x[start:start + k]), full[start:start + k],
                                              err_msg=f"{act.name}, {k} rows at {start}")


def test_few_rows_with_embeddings():
    net = _core.Network([2 + 3 + 1, 8, 2], [A.TANH, A.SOFTMAX], [0.0, 0.0],
                        L.CATEGORICAL_CROSS_ENTROPY, 1.0, "float32", [[0, 5, 3], [2, 4, 2]], 3)
    rng = np.random.default_rng(0)
    net.params[:] = rng.standard_normal(net.n_params)
    x = rng.standard_normal((50, 3)).astype(np.float32)
    x[:, 0] = rng.integers(0, 5, 50)
    x[:, 2] = rng.integers(0, 4, 50)
    full = net.predict(x)
    for i in range(50):
        np.testing.assert_array_equal(net.predict(x[i:i + 1]), full[i:i + 1])
    bad = x[:1].copy()
    bad[0, 2] = 4
    with pytest.raises(ValueError, match="embedded column 2"):
        net.predict(bad)


# ---- the estimators' and the Model's fast path: same results, same errors ---------------------
def _fitted(n_classes=10):
    from sklearn.datasets import load_digits

    import mlp

    X, y = load_digits(n_class=n_classes, return_X_y=True)
    X = (X / 16).astype(np.float32)
    return mlp.MLPClassifier(hidden_layer_sizes=(20,), max_iter=5, random_state=0).fit(X, y), X


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("n_classes", [2, 10])
def test_fast_path_gives_what_the_full_path_gives(n_classes):
    clf, X = _fitted(n_classes)
    for rows in (X[:1], X[3:7], X[:64], X[:65]):
        rows = np.ascontiguousarray(rows)
        full = clf._net.predict(rows)  # what the full path computes, through the same core
        np.testing.assert_array_equal(clf.predict_proba(rows)[:, -1], full[:, -1])
        np.testing.assert_array_equal(clf.predict(rows),
                                      clf._label_binarizer.inverse_transform(full))
        # Another dtype, a list, a Fortran array: converted, same answer.
        for other in (rows.astype(np.float64), rows.tolist(), np.asfortranarray(rows)):
            np.testing.assert_array_equal(clf.predict_proba(other), clf.predict_proba(rows))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_fast_path_keeps_every_error():
    clf, X = _fitted()
    bad = X[:2].copy()
    bad[1, 5] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        clf.predict_proba(bad)
    bad[1, 5] = np.inf
    with pytest.raises(ValueError, match="Input X contains infinity"):
        clf.predict(bad)
    with pytest.raises(ValueError, match="X has 63 features, but MLPClassifier is expecting 64"):
        clf.predict(np.ascontiguousarray(X[:1, :63]))
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError):
        clone(clf).predict(X[:1])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_fast_path_keeps_the_feature_name_checks():
    pd = pytest.importorskip("pandas")
    clf, X = _fitted()
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(64)])
    clf.fit(df, np.arange(len(X)) % 10)
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        clf.predict(X[:1])
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(df.iloc[:1, ::-1])


def test_model_fast_path_keeps_every_error():
    import mlp

    first = mlp.Dense(8, input_size=3, activation="relu", seed=0)
    model = mlp.Model(first, mlp.Dense(2, seed=1)(first))
    model.compile("mse")
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    np.testing.assert_array_equal(model.predict(x[:1]), model.predict(x)[:1])
    bad = x[:1].copy()
    bad[0, 1] = np.nan
    with pytest.raises(ValueError, match="x contains NaN or infinity"):
        model.predict(bad)
    with pytest.raises(ValueError, match="x has 2 columns"):
        model.predict(np.ascontiguousarray(x[:1, :2]))
