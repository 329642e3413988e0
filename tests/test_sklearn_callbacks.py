"""scikit-learn's callback API (sklearn.callback, scikit-learn >= 1.9) on the mlp estimators:
set_callbacks, one subtask per epoch (or L-BFGS iteration), copies of the estimator at each
epoch for scoring callbacks, stopping, propagation from Pipeline and GridSearchCV, teardown,
and the clear error where scikit-learn is older (mlp/_sklearn_callbacks.py).

Until mlp/sklearn.py takes the integration, the estimators under test are the subclasses
below, which apply it exactly as the real classes will (see `_with_bridge`)."""
from __future__ import annotations

import contextlib
import importlib.util
import io
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import log_loss, mean_squared_error  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import mlp  # noqa: E402
import mlp._sklearn_callbacks as skcb  # noqa: E402
from mlp._sklearn_callbacks import (  # noqa: E402
    HAS_SKLEARN_CALLBACKS,
    SklearnCallbackBridge,
    sklearn_bridge_callbacks,
    with_sklearn_callbacks,
)
from mlp.callbacks import Callback  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
needs_callbacks = pytest.mark.skipif(not HAS_SKLEARN_CALLBACKS,
                                     reason="scikit-learn < 1.9 has no sklearn.callback")

if HAS_SKLEARN_CALLBACKS:
    from sklearn.callback import ProgressBar, ScoringMonitor


# ------------------------------------------------------------------------------------------------
# The estimators under test. Once mlp/sklearn.py has the integration, this block (down to the
# END line) becomes:  from mlp import MLPClassifier, MLPRegressor
# ------------------------------------------------------------------------------------------------
from mlp import MLPClassifier, MLPRegressor  # noqa: E402

INTEGRATED = MLPClassifier is mlp.MLPClassifier


def _classes(n=120, seed=0):
    r = np.random.default_rng(seed)
    X = r.standard_normal((n, 5))
    y = (X[:, 0] + X[:, 1] ** 2 > 0.8).astype(int) + (X[:, 2] > 0.7).astype(int)
    return X, y


def _targets(n=120, seed=0):
    r = np.random.default_rng(seed)
    X = r.standard_normal((n, 4))
    return X, np.sin(X[:, 0]) + X[:, 1] * X[:, 2] + 0.1 * r.standard_normal(n)


def _clf(**kw):
    params = {"hidden_layer_sizes": (8,), "max_iter": 6, "random_state": 0, "learning_rate_init": 0.01}
    return MLPClassifier(**{**params, **kw})


def _reg(**kw):
    params = {"hidden_layer_sizes": (8,), "max_iter": 6, "random_state": 0, "learning_rate_init": 0.01}
    return MLPRegressor(**{**params, **kw})


class Recorder:
    """A FitCallback (scikit-learn's protocol) that records every hook, keeps each epoch's
    fitted_estimator with its predictions at that time, and asks to stop after the epoch
    `stop_at` (0-based) of the mlp estimator."""

    def __init__(self, X=None, stop_at=None, fail_at=None):
        self.X = X
        self.stop_at = stop_at
        self.fail_at = fail_at
        self.events = []
        self.snapshots = []  # (task_id, fitted_estimator, its output then)

    def setup(self, estimator, context):
        self.events.append(("setup", type(estimator).__name__, context.task_name))

    def teardown(self, estimator, context):
        self.events.append(("teardown", type(estimator).__name__, context.task_name))

    def on_fit_task_begin(self, estimator, context, *, X=None, y=None, metadata=None,
                          fitted_estimator=None):
        self.events.append(("begin", context.estimator_name, context.task_name, context.task_id,
                            X is not None))

    def on_fit_task_end(self, estimator, context, *, X=None, y=None, metadata=None,
                        fitted_estimator=None):
        self.events.append(("end", context.estimator_name, context.task_name, context.task_id,
                            X is not None))
        is_epoch = context.task_name in ("epoch", "lbfgs-iter")
        if is_epoch and fitted_estimator is not None and self.X is not None:
            self.snapshots.append((context.task_id, fitted_estimator,
                                   np.array(_output(fitted_estimator, self.X))))
        if is_epoch and context.task_id == self.fail_at:
            raise RuntimeError("callback failed")
        return is_epoch and context.task_id == self.stop_at

    def of(self, kind, task_names=("epoch", "lbfgs-iter")):
        return [e for e in self.events if e[0] == kind and e[2] in task_names]


class AutoRecorder(Recorder):
    """The same, auto-propagated by meta-estimators to every nesting level."""

    max_propagation_depth = None


class EpochLog(Callback):
    """mlp's own callback: the planned epochs, and the estimator's output after every epoch."""

    def __init__(self, X, stop_at=None):
        self.X = X
        self.stop_at = stop_at
        self.planned = None
        self.outputs = []

    def set_params(self, params):
        self.planned = params["epochs"]

    def on_epoch_end(self, est, epoch, logs):
        self.outputs.append(np.array(_output(est, self.X)))
        return epoch == self.stop_at


def _output(est, X):
    return est.predict_proba(X) if hasattr(est, "predict_proba") else est.predict(X)


@contextlib.contextmanager
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _no_fit_state_left(est):
    for name in ("_callback_fit_ctx", "_skl_callbacks_to_teardown", "_parent_callback_ctx"):
        assert name not in est.__dict__, name
    assert sklearn_bridge_callbacks(est) == []


# ------------------------------------------------------------------------------------------------
# set_callbacks and the task tree
# ------------------------------------------------------------------------------------------------
@needs_callbacks
def test_set_callbacks_as_scikit_learn():
    est = _clf()
    rec = Recorder()
    assert est.set_callbacks(rec) is est
    assert est._skl_callbacks == [rec]
    with pytest.raises(TypeError, match="FitCallback"):
        est.set_callbacks(object())
    with pytest.raises(TypeError, match="FitCallback"):
        est.set_callbacks(Recorder)  # a class, not an instance
    est.set_callbacks()
    assert not hasattr(est, "_skl_callbacks")
    # mlp's own callbacks= parameter is another thing altogether
    assert est.get_params()["callbacks"] is None


@needs_callbacks
@pytest.mark.parametrize("make", [_clf, _reg], ids=["classifier", "regressor"])
@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_one_subtask_per_epoch(make, solver):
    X, y = (_classes if make is _clf else _targets)()
    rec = Recorder()
    est = make(solver=solver, max_iter=5).set_callbacks(rec)
    est.fit(X, y)
    name = type(est).__name__
    sub = "lbfgs-iter" if solver == "lbfgs" else "epoch"
    n = est.n_iter_
    assert 1 <= n <= 5
    ev = rec.events
    assert ev[0] == ("setup", name, "fit")
    assert ev[1] == ("begin", name, "fit", 0, True)
    assert ev[-2] == ("end", name, "fit", 0, True)
    assert ev[-1] == ("teardown", name, "fit")
    begins, ends = rec.of("begin"), rec.of("end")
    assert all(e[2] == sub for e in begins + ends)
    # one subtask per epoch with the data; at most one more, opened for an epoch that never ran
    # (L-BFGS converging) and closed empty
    with_data = [e for e in ends if e[4]]
    assert [e[3] for e in with_data] == list(range(n))
    assert len(begins) == len(ends) <= 5
    if solver == "lbfgs":
        assert len(ends) - len(with_data) in (0, 1)
    else:
        assert len(ends) == n == 5
    assert len(est.history_["loss"]) == n
    _no_fit_state_left(est)


@needs_callbacks
def test_lbfgs_converging_early_closes_the_iteration_it_did_not_run():
    X, y = _classes()
    rec = Recorder()
    est = _clf(solver="lbfgs", max_iter=50, tol=0.1).set_callbacks(rec).fit(X, y)
    assert est.n_iter_ < 50
    ends = [(e[3], e[4]) for e in rec.of("end")]
    assert ends == [(k, True) for k in range(est.n_iter_)] + [(est.n_iter_, False)]
    assert len(rec.of("begin")) == est.n_iter_ + 1


@needs_callbacks
def test_root_task_plans_max_iter_subtasks():
    seen = []

    class Root(Recorder):
        def on_fit_task_begin(self, estimator, context, **kw):
            if context.parent is None:
                seen.append((context.task_name, context.max_subtasks))

    X, y = _classes()
    _clf(max_iter=4).set_callbacks(Root()).fit(X, y)
    _clf(max_iter=3, solver="lbfgs").set_callbacks(Root()).fit(X, y)
    _clf().set_callbacks(Root()).partial_fit(X, y, classes=[0, 1, 2])
    assert seen == [("fit", 4), ("fit", 3), ("partial_fit", 1)]


# ------------------------------------------------------------------------------------------------
# What the callbacks get at each epoch
# ------------------------------------------------------------------------------------------------
@needs_callbacks
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_scoring_monitor_scores_each_epoch_as_the_estimator_was(solver):
    X, y = _classes()
    log = EpochLog(X)
    monitor = ScoringMonitor(scoring="neg_log_loss")
    est = _clf(solver=solver, callbacks=[log]).set_callbacks(monitor)
    est.fit(X, y)
    rows = monitor.get_logs().data
    epochs = [r for r in rows if r["task_name"] != "fit"]
    assert len(epochs) == est.n_iter_ == len(log.outputs)
    assert [r["task_id_path"] for r in epochs] == [(0, k) for k in range(est.n_iter_)]
    expected = [-log_loss(y, p) for p in log.outputs]  # the live estimator, scored at each epoch
    assert_allclose([r["neg_log_loss"] for r in epochs], expected, rtol=1e-9)
    assert len(set(expected)) == len(expected)  # the epochs differ: the check can fail
    (root,) = [r for r in rows if r["task_name"] == "fit"]
    assert root["task_id_path"] == (0,)
    assert root["neg_log_loss"] == pytest.approx(-log_loss(y, est.predict_proba(X)), rel=1e-9)


@needs_callbacks
def test_scoring_monitor_regressor_with_sample_weight():
    X, y = _targets()
    w = np.linspace(0.5, 2.0, len(y))
    log = EpochLog(X)
    monitor = ScoringMonitor(scoring="neg_mean_squared_error")
    est = _reg(callbacks=[log]).set_callbacks(monitor).fit(X, y, sample_weight=w)
    epochs = [r for r in monitor.get_logs().data if r["task_name"] == "epoch"]
    expected = [-mean_squared_error(y, p, sample_weight=w) for p in log.outputs]
    assert_allclose([r["neg_mean_squared_error"] for r in epochs], expected, rtol=1e-9)
    unweighted = [-mean_squared_error(y, p) for p in log.outputs]
    assert not np.allclose(expected, unweighted)  # the weights did reach the scorer
    assert len(epochs) == est.n_iter_


@needs_callbacks
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_fitted_estimator_is_a_copy_frozen_at_its_epoch(solver):
    X, y = _classes()
    rec = Recorder(X)
    est = _clf(solver=solver, max_iter=5).set_callbacks(rec)
    with _quiet():
        est.fit(X, y)
    assert [s[0] for s in rec.snapshots] == list(range(est.n_iter_))
    for k, (task_id, snap, then) in enumerate(rec.snapshots):
        assert snap is not est and snap.n_iter_ == k + 1
        assert_array_equal(_output(snap, X), then)  # training on did not move the copy
        assert not any(np.shares_memory(a, b) for a in snap.coefs_ for b in est.coefs_)
    outputs = [s[2] for s in rec.snapshots]
    assert not np.allclose(outputs[0], outputs[-1])
    assert_allclose(outputs[-1], est.predict_proba(X), rtol=1e-12)
    # The copy at epoch k is what a fit of k epochs gives.
    with _quiet():
        short = _clf(solver=solver, max_iter=2).fit(X, y)
    assert_allclose(outputs[1], short.predict_proba(X), rtol=1e-10)


@needs_callbacks
def test_early_stopping_root_task_scores_the_restored_weights():
    X, y = _classes(200)
    monitor = ScoringMonitor(scoring="neg_log_loss")
    est = _clf(early_stopping=True, n_iter_no_change=2, max_iter=60, learning_rate_init=0.05,
               hidden_layer_sizes=(32,), tol=0.0).set_callbacks(monitor)
    est.fit(X, y)
    rows = monitor.get_logs().data
    (root,) = [r for r in rows if r["task_name"] == "fit"]
    final = -log_loss(y, est.predict_proba(X))
    assert root["neg_log_loss"] == pytest.approx(final, rel=1e-9)
    assert len(rows) - 1 == est.n_iter_


# ------------------------------------------------------------------------------------------------
# Stopping, mlp's own callbacks, partial_fit, errors
# ------------------------------------------------------------------------------------------------
@needs_callbacks
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_callback_returning_true_stops_the_fit(solver):
    X, y = _classes()
    rec = Recorder(stop_at=2)
    est = _clf(solver=solver, max_iter=20, tol=0.0).set_callbacks(rec)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # a requested stop is no failure
        est.fit(X, y)
    assert est.n_iter_ == 3
    assert len(est.history_["loss"]) == 3
    # no subtask is opened after the one that asked to stop
    assert [e[3] for e in rec.of("begin")] == [0, 1, 2]
    assert [e[3] for e in rec.of("end")] == [0, 1, 2]
    assert rec.events[-2][:3] == ("end", "MLPClassifier", "fit")


@needs_callbacks
def test_mlp_callbacks_alongside():
    X, y = _classes()
    log = EpochLog(X, stop_at=1)  # mlp's own callback stops after epoch 1
    rec = Recorder(X)
    est = _clf(max_iter=7, callbacks=[log]).set_callbacks(rec).fit(X, y)
    assert log.planned == 7 and len(log.outputs) == 2 == est.n_iter_
    # the sklearn callbacks saw both epochs, then the subtask opened for epoch 2 closed empty
    assert [(e[3], e[4]) for e in rec.of("end")] == [(0, True), (1, True), (2, False)]
    assert len(rec.of("begin")) == 3
    for (_, _, then), live in zip(rec.snapshots, log.outputs):
        assert_array_equal(then, live)
    # and the other way round: the sklearn callback stops, mlp's callback saw the same epochs
    log2, rec2 = EpochLog(X), Recorder(stop_at=0)
    est = _clf(max_iter=7, callbacks=[log2]).set_callbacks(rec2).fit(X, y)
    assert est.n_iter_ == 1 == len(log2.outputs)


@needs_callbacks
def test_partial_fit_is_one_run_per_call():
    X, y = _classes()
    monitor = ScoringMonitor(scoring="accuracy")
    est = _clf().set_callbacks(monitor)
    est.partial_fit(X, y, classes=[0, 1, 2])
    est.partial_fit(X, y)
    est.partial_fit(X, y)
    runs = monitor.get_logs(select="all")
    assert len(runs) == 3
    for run in runs:
        assert [(r["task_name"], r["task_id_path"]) for r in run.data] == [
            ("partial_fit", (0,)), ("epoch", (0, 0))]
    assert runs[-1].data[1]["accuracy"] == pytest.approx(est.score(X, y))
    _no_fit_state_left(est)


@needs_callbacks
def test_teardown_runs_when_the_fit_fails():
    X, y = _classes()
    rec = Recorder(fail_at=1)
    est = _clf().set_callbacks(rec)
    with pytest.raises(RuntimeError, match="callback failed"):
        est.fit(X, y)
    assert rec.events[-1] == ("teardown", "MLPClassifier", "fit")
    assert ("end", "MLPClassifier", "fit", 0, True) not in rec.events  # the fit did not complete
    _no_fit_state_left(est)
    # An error before training starts: nothing was set up, nothing to tear down.
    rec = Recorder()
    with pytest.raises(ValueError):
        _clf().set_callbacks(rec).fit(X, y[:-1])
    assert rec.events == []
    # The estimator fits again afterwards.
    rec = Recorder()
    est.set_callbacks(rec).fit(X, y)
    assert rec.events[-1][0] == "teardown"


@needs_callbacks
@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_a_diverging_fit_closes_its_tasks(solver):
    X, y = _targets()
    rec = Recorder()
    est = _reg(solver=solver, learning_rate_init=10.0, max_iter=20).set_callbacks(rec)
    raised = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            est.fit(X, y * 1e200)  # its squared error overflows float64
        except ValueError:  # the estimators' error for a diverged fit
            raised = True
    assert est.n_iter_ < 20
    begins, ends = rec.of("begin"), rec.of("end")
    assert len(begins) == len(ends) == est.n_iter_ + 1  # the epoch that diverged, closed empty
    assert not ends[-1][4]
    assert (("end", "MLPRegressor", "fit", 0, True) in rec.events) is not raised
    assert rec.events[-1] == ("teardown", "MLPRegressor", "fit")
    _no_fit_state_left(est)


@needs_callbacks
def test_no_sklearn_callbacks_no_context():
    X, y = _classes()
    est = _clf(max_iter=2).fit(X, y)
    _no_fit_state_left(est)
    assert not hasattr(est, "_skl_callbacks")


# ------------------------------------------------------------------------------------------------
# Meta-estimators
# ------------------------------------------------------------------------------------------------
def _final_estimator_paths(rec, estimator_name):
    return [e for e in rec.events if e[0] == "end" and e[1] == estimator_name]


@needs_callbacks
def test_pipeline_propagates_auto_propagated_callbacks():
    X, y = _classes()
    # Scikit-learn's own estimator first: the propagation this relies on.
    rec = AutoRecorder()
    with _quiet():
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=3)).set_callbacks(rec).fit(X, y)
    assert any(e[1] == "LogisticRegression" and e[2] == "lbfgs-iter" for e in rec.events)

    rec = AutoRecorder(X=None)
    pipe = make_pipeline(StandardScaler(), _clf(max_iter=4)).set_callbacks(rec)
    pipe.fit(X, y)
    mlp_step = pipe[-1]
    assert [e for e in rec.events if e[0] == "setup"] == [("setup", "Pipeline", "fit")]
    assert rec.events[-1] == ("teardown", "Pipeline", "fit")
    epochs = [e for e in rec.of("end") if e[1] == "MLPClassifier"]
    assert [e[3] for e in epochs] == list(range(mlp_step.n_iter_)) == [0, 1, 2, 3]
    # the step's root task is grafted onto the pipeline's: the step's fit is task 1 of it
    assert ("end", "MLPClassifier", "fit", 1, True) in rec.events
    _no_fit_state_left(mlp_step)
    assert not hasattr(mlp_step, "_skl_callbacks")  # the propagated callback was taken back


@needs_callbacks
def test_scoring_monitor_on_a_pipeline_step():
    X, y = _classes()
    monitor = ScoringMonitor(scoring="accuracy")
    step = _clf(max_iter=3).set_callbacks(monitor)
    pipe = make_pipeline(StandardScaler(), step).fit(X, y)
    rows = monitor.get_logs().data
    assert [r["task_id_path"] for r in rows] == [(0, 1), (0, 1, 0), (0, 1, 1), (0, 1, 2)]
    assert rows[0]["estimator_name"] == "MLPClassifier"
    assert rows[0]["accuracy"] == pytest.approx(pipe.score(X, y))  # scored on the scaled data


@needs_callbacks
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_grid_search_propagates_into_each_candidate(solver):
    X, y = _classes()
    grid = {"alpha": [1e-4, 1e-2]}
    # Scikit-learn's own estimator first: its candidate and refit fits get the callback.
    rec = AutoRecorder()
    with _quiet():
        GridSearchCV(LogisticRegression(max_iter=2), {"C": [0.1, 1.0]}, cv=2).set_callbacks(
            rec).fit(X, y)
    assert len([e for e in rec.events if e[:3] == ("end", "LogisticRegression", "fit")]) == 5

    rec = AutoRecorder()
    search = GridSearchCV(_clf(solver=solver, max_iter=3), grid, cv=2).set_callbacks(rec)
    with _quiet():
        search.fit(X, y)
    roots = [e for e in rec.events if e[:3] == ("end", "MLPClassifier", "fit")]
    assert len(roots) == 2 * 2 + 1  # 2 candidates x 2 folds, and the refit
    assert len([e for e in rec.of("end") if e[1] == "MLPClassifier" and e[4]]) >= 5
    assert [e[0] for e in rec.events].count("setup") == 1
    assert rec.events[-1] == ("teardown", "GridSearchCV", "fit")
    _no_fit_state_left(search.best_estimator_)


@needs_callbacks
def test_grid_search_over_a_pipeline():
    X, y = _classes()
    rec = AutoRecorder()
    pipe = make_pipeline(StandardScaler(), _clf(max_iter=2))
    with _quiet():
        GridSearchCV(pipe, {"mlpclassifier__alpha": [1e-4, 1e-2]}, cv=2).set_callbacks(rec).fit(X, y)
    epochs = [e for e in rec.of("end") if e[1] == "MLPClassifier" and e[4]]
    assert len(epochs) == 5 * 2


@needs_callbacks
def test_progress_bar_runs(capsys):
    pytest.importorskip("rich")
    X, y = _classes()
    for solver in ("adam", "lbfgs"):
        _clf(solver=solver, max_iter=3).set_callbacks(ProgressBar()).fit(X, y)
    make_pipeline(StandardScaler(), _clf(max_iter=3)).set_callbacks(ProgressBar()).fit(X, y)
    est = _clf()
    est.set_callbacks(ProgressBar())
    est.partial_fit(X, y, classes=[0, 1, 2])
    out = capsys.readouterr().out
    assert "MLPClassifier - fit" in out
    assert "MLPClassifier - partial_fit" in out
    assert "Pipeline - fit-final-estimator | MLPClassifier - fit" in out


# ------------------------------------------------------------------------------------------------
# State: clone, pickle, mlp's files
# ------------------------------------------------------------------------------------------------
@needs_callbacks
def test_clone_shares_callbacks_as_scikit_learn_does():
    rec = Recorder()
    lr = LogisticRegression().set_callbacks(rec)
    est = _clf().set_callbacks(rec)
    # scikit-learn 1.9's clone hands the same callback instances on (a GridSearchCV candidate
    # keeps the callbacks set on the estimator); the mlp estimators follow it.
    assert clone(lr)._skl_callbacks == [rec]
    assert clone(est)._skl_callbacks == [rec]
    assert clone(est)._skl_callbacks[0] is rec
    assert not hasattr(clone(_clf()), "_skl_callbacks")


@needs_callbacks
def test_pickle_and_files_with_callbacks_set(tmp_path):
    X, y = _classes()
    monitor = ScoringMonitor(scoring="accuracy")
    est = _clf(max_iter=3).set_callbacks(monitor, Recorder()).fit(X, y)
    back = pickle.loads(pickle.dumps(est))
    assert_array_equal(back.predict_proba(X), est.predict_proba(X))
    assert [type(cb).__name__ for cb in back._skl_callbacks] == ["ScoringMonitor", "Recorder"]
    _no_fit_state_left(back)
    back.fit(X, y)  # the unpickled callbacks work
    assert len(back._skl_callbacks[0].get_logs().data) == 1 + back.n_iter_
    path = tmp_path / "clf.mlp"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # callbacks are dropped from files without a warning
        est.save(path)
    loaded = mlp.load(path)
    assert not hasattr(loaded, "_skl_callbacks")
    assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
    # a file written while the callbacks ran (an mlp callback saving a checkpoint)
    saved = io.BytesIO()

    class Checkpoint(Callback):
        def on_epoch_end(self, est, epoch, logs):
            if epoch == 1:
                est.save(saved)

    _clf(max_iter=3, callbacks=[Checkpoint()]).set_callbacks(Recorder()).fit(X, y)
    saved.seek(0)
    mid = mlp.load(saved)
    assert "_callback_fit_ctx" not in mid.__dict__ and not hasattr(mid, "_skl_callbacks")


# ------------------------------------------------------------------------------------------------
# The pieces on their own, and scikit-learn < 1.9
# ------------------------------------------------------------------------------------------------
@needs_callbacks
def test_bridge_checks_its_arguments():
    X, y = _classes()
    with pytest.raises(TypeError, match="_init_callback_context"):
        SklearnCallbackBridge(object(), X, y)
    with pytest.raises(TypeError, match="task_name"):
        SklearnCallbackBridge(_clf(), X, y, task_name=3)
    with pytest.raises(TypeError, match="max_subtasks"):
        SklearnCallbackBridge(_clf(), X, y, max_subtasks=2.5)
    with pytest.raises(ValueError, match="max_subtasks"):
        SklearnCallbackBridge(_clf(), X, y, max_subtasks=-1)
    with pytest.raises(TypeError, match="decorates a method"):
        with_sklearn_callbacks(3)


@needs_callbacks
def test_bridge_serves_one_fit():
    X, y = _classes()
    est = _clf()
    bridge = SklearnCallbackBridge(est, X, y)
    est.set_callbacks(Recorder())
    bridge.on_train_begin(est)
    with pytest.raises(RuntimeError, match="one fit"):
        bridge.on_train_begin(est)


def _load_without_sklearn_callback(monkeypatch):
    """A fresh copy of mlp._sklearn_callbacks imported as if scikit-learn were older than 1.9."""
    monkeypatch.setitem(sys.modules, "sklearn.callback", None)  # import fails
    spec = importlib.util.spec_from_file_location("mlp._sklearn_callbacks_old", skcb.__file__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_older_scikit_learn_gives_a_clear_error(monkeypatch):
    old = _load_without_sklearn_callback(monkeypatch)
    assert old.HAS_SKLEARN_CALLBACKS is False

    class Old(old.SklearnCallbackSupportMixin, mlp.MLPClassifier):
        def _engine(self, *args, **kwargs):
            engine = super()._engine(*args, **kwargs)
            engine.callbacks.extend(old.sklearn_bridge_callbacks(self))
            return engine

        _fit = old.with_sklearn_callbacks(mlp.sklearn._BaseMLP._fit)

    est = Old(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    with pytest.raises(ImportError, match=r"set_callbacks needs scikit-learn >= 1\.9"):
        est.set_callbacks(object())
    assert Old._fit is mlp.sklearn._BaseMLP._fit  # the decorator changes nothing
    X, y = _classes()
    est.fit(X, y)  # and the estimator fits as ever
    assert old.sklearn_bridge_callbacks(est) == []
    with pytest.raises(ImportError, match="scikit-learn >= 1.9"):
        old.SklearnCallbackBridge(est, X, y)


@pytest.mark.skipif(not INTEGRATED, reason="mlp/sklearn.py does not have the integration yet")
def test_real_estimators_on_older_scikit_learn(tmp_path):
    # scikit-learn's own modules are imported first, then sklearn.callback is taken away: mlp
    # then sees a scikit-learn without the callback API.
    code = ("import sys\n"
            "import sklearn.linear_model, sklearn.model_selection, sklearn.pipeline\n"
            "sys.modules['sklearn.callback'] = None\n"
            "import numpy as np, mlp\n"
            "X = np.random.default_rng(0).standard_normal((40, 3))\n"
            "y = (X[:, 0] > 0).astype(int)\n"
            "est = mlp.MLPClassifier(hidden_layer_sizes=(4,), max_iter=3).fit(X, y)\n"
            "assert est.n_iter_ == 3\n"
            "try:\n"
            "    est.set_callbacks()\n"
            "except ImportError as exc:\n"
            "    print(exc)\n")
    # Away from the source tree, whose mlp/ (first on the path of `python -c`) has no extension.
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "MLPClassifier.set_callbacks needs scikit-learn >= 1.9" in done.stdout
