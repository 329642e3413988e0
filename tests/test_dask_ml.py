"""dask-ml: ``dask_ml.wrappers.Incremental`` trains mlp's estimators block by block through
``partial_fit``, on a real (in-process) local Dask cluster.

Without shuffling, Incremental's fit is one ``partial_fit`` per block of the dask array, in order:
the result must equal, bit for bit, the same estimator given the same blocks in memory, and that
reaches a high score on a separable problem (one ``partial_fit`` alone, or none, does not).
"""
from __future__ import annotations

import numpy as np
import pytest

distributed = pytest.importorskip("distributed", reason="needs dask and distributed (the [test] extra)")
da = pytest.importorskip("dask.array", reason="needs dask and distributed (the [test] extra)")
try:  # dask-ml, and pyarrow under it (dask_ml imports dask.dataframe, which needs pyarrow)
    from dask_ml import wrappers
except ImportError as exc:
    pytest.skip(f"needs dask-ml (pip install dask-ml), which cannot be imported here: {exc}",
                allow_module_level=True)

from sklearn.metrics import mean_squared_error, r2_score  # noqa: E402

from mlp import MLPClassifier, MLPRegressor  # noqa: E402

N, FEATURES, CHUNK = 3000, 8, 500
KW = dict(hidden_layer_sizes=(16,), learning_rate_init=0.01, batch_size=100, random_state=0)


@pytest.fixture(scope="module")
def client():
    # One in-process worker with one thread: the blocks are fitted one after the other, as the
    # chain of partial_fit tasks requires; no worker process has to import mlp.
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                       dashboard_address=None)
    with cluster, distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2 * N, FEATURES))
    w = rng.normal(size=FEATURES)
    margin = X @ w
    keep = np.abs(margin) > 0.25 * np.abs(margin).mean()  # a gap between the classes
    X, margin = X[keep][:N], margin[keep][:N]
    assert len(X) == N
    return X, (margin > 0).astype(np.int64), margin / margin.std()


def _in_memory(est, X, y, passes=1, **kwargs):
    """The same estimator, partial_fit over the same blocks in the same order, in memory."""
    for _ in range(passes):
        for start in range(0, len(X), CHUNK):
            est.partial_fit(X[start:start + CHUNK], y[start:start + CHUNK], **kwargs)
    return est


def _assert_same_weights(a, b):
    assert a.t_ == b.t_
    assert a.loss_curve_ == b.loss_curve_
    for u, v in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(u, v)


def _partial_fit_tasks(tasks):
    # dask-ml's graph: key (fit-<token>, -1) holds the estimator, (fit-<token>, i) is the
    # partial_fit of the i-th block
    return [t["key"] for t in tasks.data
            if isinstance(t["key"], tuple) and str(t["key"][0]).startswith("fit-") and t["key"][1] >= 0]


def test_incremental_classifier_trains_each_block_through_partial_fit(client, data):
    X, y, _ = data
    Xd, yd = da.from_array(X, chunks=(CHUNK, FEATURES)), da.from_array(y, chunks=CHUNK)
    assert Xd.numblocks == (N // CHUNK, 1)

    inc = wrappers.Incremental(MLPClassifier(**KW), scoring="accuracy", shuffle_blocks=False)
    with distributed.get_task_stream(client) as tasks:
        inc.fit(Xd, yd, classes=[0, 1])
    # one partial_fit task per block ran on the cluster's worker
    assert len(_partial_fit_tasks(tasks)) == N // CHUNK
    assert {t["worker"] for t in tasks.data} == set(client.scheduler_info()["workers"])

    est = inc.estimator_
    assert isinstance(est, MLPClassifier) and est.t_ == N and len(est.loss_curve_) == N // CHUNK
    memory = _in_memory(MLPClassifier(**KW), X, y, classes=[0, 1])
    _assert_same_weights(est, memory)

    predicted = inc.predict(Xd)
    assert isinstance(predicted, da.Array)
    np.testing.assert_array_equal(predicted.compute(), memory.predict(X))
    np.testing.assert_array_equal(inc.predict_proba(Xd).compute(), memory.predict_proba(X))
    score = inc.score(Xd, yd)
    assert score == memory.score(X, y)
    # the blocks were learned: far above what the first block alone gives
    first_block = MLPClassifier(**KW).partial_fit(X[:CHUNK], y[:CHUNK], classes=[0, 1])
    assert score >= 0.95 > first_block.score(X, y) + 0.05


def test_incremental_partial_fit_continues_from_the_last_pass(client, data):
    X, y, _ = data
    Xd, yd = da.from_array(X, chunks=(CHUNK, FEATURES)), da.from_array(y, chunks=CHUNK)
    inc = wrappers.Incremental(MLPClassifier(**KW), shuffle_blocks=False)
    for _ in range(2):
        inc.partial_fit(Xd, yd, classes=[0, 1])
    assert inc.estimator_.t_ == 2 * N
    memory = _in_memory(MLPClassifier(**KW), X, y, passes=2, classes=[0, 1])
    _assert_same_weights(inc.estimator_, memory)
    assert inc.score(Xd, yd) == memory.score(X, y) > 0.97


def test_incremental_with_shuffled_blocks_sees_every_block(client, data):
    X, y, _ = data
    Xd, yd = da.from_array(X, chunks=(CHUNK, FEATURES)), da.from_array(y, chunks=CHUNK)
    inc = wrappers.Incremental(MLPClassifier(**KW), random_state=0)  # shuffle_blocks=True
    inc.fit(Xd, yd, classes=[0, 1])
    assert inc.estimator_.t_ == N and len(inc.estimator_.loss_curve_) == N // CHUNK
    assert inc.score(Xd, yd) >= 0.95


def test_incremental_regressor_matches_in_memory_partial_fit(client, data):
    X, _, target = data
    Xd, yd = da.from_array(X, chunks=(CHUNK, FEATURES)), da.from_array(target, chunks=CHUNK)
    # not scoring="r2": dask_ml.metrics.r2_score fails on dask >= 2025.2 for every estimator
    # ("cannot broadcast shape (nan,) to shape (nan,)", dask/dask-ml#1012)
    inc = wrappers.Incremental(MLPRegressor(**KW), scoring="neg_mean_squared_error",
                               shuffle_blocks=False)
    inc.fit(Xd, yd)
    memory = _in_memory(MLPRegressor(**KW), X, target)
    _assert_same_weights(inc.estimator_, memory)
    predicted = inc.predict(Xd).compute()
    np.testing.assert_array_equal(predicted, memory.predict(X))
    first_block = MLPRegressor(**KW).partial_fit(X[:CHUNK], target[:CHUNK])
    assert r2_score(target, predicted) == memory.score(X, target) > 0.85 > first_block.score(X, target)
    assert inc.score(Xd, yd) == pytest.approx(-mean_squared_error(target, predicted), rel=1e-12)
