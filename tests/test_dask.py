"""Scale-out: GridSearchCV over mlp's estimators on a real local Dask cluster.

Two worker processes of one thread each run the search through joblib's 'dask' backend; the best
parameters and every mean test score must equal a serial run's, bit for bit (the fits are
deterministic for a given random_state, whichever process or thread count runs them).
"""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

distributed = pytest.importorskip("distributed", reason="needs dask and distributed (the [test] extra)")
pytest.importorskip("dask", reason="needs dask and distributed (the [test] extra)")
joblib = pytest.importorskip("joblib")

from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import mlp  # noqa: E402
from mlp import MLPClassifier  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

GRID = {"mlpclassifier__hidden_layer_sizes": [(16,), (32,)],
        "mlpclassifier__alpha": [1e-4, 1e-1]}


def search():
    pipe = make_pipeline(StandardScaler(), MLPClassifier(max_iter=15, random_state=0))
    return GridSearchCV(pipe, GRID, cv=3)


@pytest.fixture(scope="module")
def client():
    # Worker processes import mlp from wherever this process does (an installed wheel, or the
    # source tree through PYTHONPATH).
    root = os.path.dirname(os.path.dirname(mlp.__file__))
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [root, old]))
    try:
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=None)
        with cluster, distributed.Client(cluster) as c:
            yield c
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = old


def test_grid_search_on_a_local_dask_cluster_matches_a_serial_run(client):
    X, y = load_digits(return_X_y=True)
    X, y = X[:600], y[:600]
    serial = search().fit(X, y)

    start = time.perf_counter()
    with distributed.get_task_stream(client) as tasks, joblib.parallel_backend("dask"):
        on_dask = search().fit(X, y)
    elapsed = time.perf_counter() - start
    print(f"\nGridSearchCV of {len(on_dask.cv_results_['params']) * 3} fits on 2 Dask workers: "
          f"{elapsed:.1f} s")

    # The fits really ran on the two workers, in other processes, which imported mlp.
    assert len({task["worker"] for task in tasks.data}) == 2
    assert all(client.run(lambda: __import__("sys").modules.get("mlp") is not None).values())
    assert all(pid != os.getpid() for pid in client.run(os.getpid).values())
    assert on_dask.best_params_ == serial.best_params_
    np.testing.assert_array_equal(on_dask.cv_results_["mean_test_score"],
                                  serial.cv_results_["mean_test_score"])
    for i in range(3):
        np.testing.assert_array_equal(on_dask.cv_results_[f"split{i}_test_score"],
                                      serial.cv_results_[f"split{i}_test_score"])
    # The refitted best estimator predicts exactly as the serial one.
    np.testing.assert_array_equal(on_dask.predict_proba(X[:50]), serial.predict_proba(X[:50]))
