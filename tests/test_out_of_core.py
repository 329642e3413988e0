"""Out-of-core training: partial_fit over chunks read from disk reaches the quality of a fit on the
whole array in memory.

The data never has to be in memory at once: a numpy memmap is read a slice at a time, a CSV file
in pieces with pandas. The chunks pass once through StandardScaler.partial_fit for the scaling,
then a few times through the estimator's partial_fit (one epoch over each chunk per call).
"""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_friedman1
from sklearn.preprocessing import StandardScaler

from mlp import MLPClassifier, MLPRegressor

pd = pytest.importorskip("pandas")

CHUNK = 2000
PASSES = 6


def chunks(X, y):
    for start in range(0, len(X), CHUNK):
        yield X[start:start + CHUNK], y[start:start + CHUNK]


def train_out_of_core(est, read_chunks, classes=None):
    """Scale with StandardScaler.partial_fit over one pass, then PASSES passes of partial_fit."""
    scaler = StandardScaler()
    for X, _ in read_chunks():
        scaler.partial_fit(X)
    extra = {} if classes is None else {"classes": classes}
    for _ in range(PASSES):
        for X, y in read_chunks():
            est.partial_fit(scaler.transform(X), y, **extra)
    return scaler, est


@pytest.fixture(scope="module")
def classification(tmp_path_factory):
    X, y = make_classification(n_samples=14000, n_features=20, n_informative=10, n_classes=3,
                               random_state=0)
    path = tmp_path_factory.mktemp("ooc") / "X.npy"
    np.save(path, X[:12000].astype(np.float32))
    return path, y[:12000], X[12000:], y[12000:]


@pytest.fixture(scope="module")
def regression(tmp_path_factory):
    X, y = make_friedman1(n_samples=14000, n_features=8, noise=0.3, random_state=0)
    path = tmp_path_factory.mktemp("ooc") / "train.csv"
    frame = pd.DataFrame(X[:12000], columns=[f"x{i}" for i in range(8)])
    frame["target"] = y[:12000]
    frame.to_csv(path, index=False)
    return path, X[12000:], y[12000:]


def test_partial_fit_over_a_memmap_matches_an_in_memory_fit(classification):
    path, y, X_test, y_test = classification
    X_disk = np.load(path, mmap_mode="r")  # read-only, float32, paged in a chunk at a time
    assert isinstance(X_disk, np.memmap)

    params = dict(hidden_layer_sizes=(64,), learning_rate_init=1e-3, random_state=0)
    scaler, streamed = train_out_of_core(MLPClassifier(**params), lambda: chunks(X_disk, y),
                                         classes=[0, 1, 2])

    X_all = np.asarray(X_disk)
    in_memory = MLPClassifier(max_iter=PASSES, **params)
    with pytest.warns(UserWarning):  # max_iter reached: the same number of epochs on purpose
        in_memory.fit(scaler.transform(X_all), y)

    X_test = scaler.transform(X_test.astype(np.float32))
    acc_streamed = streamed.score(X_test, y_test)
    acc_memory = in_memory.score(X_test, y_test)
    print(f"\nmemmap partial_fit accuracy {acc_streamed:.4f}, in-memory fit {acc_memory:.4f}")
    assert acc_memory > 0.8
    assert acc_streamed >= acc_memory - 0.02
    assert streamed.coefs_[0].dtype == np.float32  # float32 on disk stays float32
    assert streamed.t_ == in_memory.t_ == PASSES * len(y)


def test_partial_fit_over_csv_pieces_matches_an_in_memory_fit(regression):
    path, X_test, y_test = regression

    def read_chunks():
        for frame in pd.read_csv(path, chunksize=CHUNK):
            yield frame.drop(columns="target").to_numpy(), frame["target"].to_numpy()

    params = dict(hidden_layer_sizes=(64,), learning_rate_init=1e-2, random_state=0)
    scaler, streamed = train_out_of_core(MLPRegressor(**params), read_chunks)

    whole = pd.read_csv(path)
    X_all, y_all = whole.drop(columns="target").to_numpy(), whole["target"].to_numpy()
    in_memory = MLPRegressor(max_iter=PASSES, **params)
    with pytest.warns(UserWarning):
        in_memory.fit(scaler.transform(X_all), y_all)

    r2_streamed = streamed.score(scaler.transform(X_test), y_test)
    r2_memory = in_memory.score(scaler.transform(X_test), y_test)
    print(f"\nCSV partial_fit R^2 {r2_streamed:.4f}, in-memory fit {r2_memory:.4f}")
    assert r2_memory > 0.8
    assert r2_streamed >= r2_memory - 0.02
