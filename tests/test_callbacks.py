"""Callbacks of the scikit-learn estimators (issue 3): any object with on_epoch_end, which can stop
training; EarlyStopping (restores the best weights); ProgressBar (tqdm when importable)."""
from __future__ import annotations

import io
import sys

import numpy as np
import pytest
from numpy.testing import assert_array_equal

pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402

from mlp import MLPClassifier, MLPRegressor  # noqa: E402
from mlp.callbacks import Callback, EarlyStopping, ProgressBar  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

LOG_KEYS = {"loss", "val_loss", "val_score", "learning_rate", "time"}


def _data(n=160, seed=0):
    """A noisy regression problem that a wide net overfits: validation loss turns back up."""
    r = np.random.default_rng(seed)
    X = r.standard_normal((n, 5))
    y = np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2] + 0.5 * r.standard_normal(n)
    return X[:100], y[:100], X[100:], y[100:]


def _classes(n=150, seed=0):
    r = np.random.default_rng(seed)
    X = r.standard_normal((n, 4))
    y = (X[:, 0] + X[:, 1] ** 2 > 0.5).astype(int) + (X[:, 2] > 1).astype(int)
    return X, y


class Recorder:
    """Not a Callback subclass: only the method matters. Stops after `stop_after` epochs."""

    def __init__(self, stop_after=None):
        self.stop_after = stop_after
        self.calls = []

    def on_epoch_end(self, estimator, epoch, logs):
        self.calls.append((estimator, epoch, dict(logs)))
        return self.stop_after is not None and len(self.calls) >= self.stop_after


# ------------------------------------------------------------------------------------------------
# the protocol


@pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")
def test_callback_stops_training_at_epoch_3():
    X, y = _classes()
    rec = Recorder(stop_after=3)
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=50, random_state=0, callbacks=[rec]).fit(X, y)
    assert clf.n_iter_ == 3
    assert len(clf.loss_curve_) == 3 and all(len(v) == 3 for v in clf.history_.values())
    assert [epoch for _, epoch, _ in rec.calls] == [0, 1, 2]  # 0-based, like Keras
    assert all(est is clf for est, _, _ in rec.calls)


def test_callback_logs():
    X, y, Xv, yv = _data()
    rec = Recorder()
    reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, learning_rate_init=0.01, random_state=0,
                       callbacks=[rec]).fit(X, y, eval_set=(Xv, yv))
    assert len(rec.calls) == reg.n_iter_ == 5
    for epoch, (_, _, logs) in enumerate(rec.calls):
        assert set(logs) == LOG_KEYS
        for key in LOG_KEYS:
            assert logs[key] == reg.history_[key][epoch], key
        assert logs["loss"] == reg.loss_curve_[epoch]
        assert logs["learning_rate"] == 0.01
        assert np.isfinite(logs["val_loss"]) and np.isfinite(logs["val_score"])
    assert rec.calls[-1][2]["val_score"] == pytest.approx(reg.score(Xv, yv), rel=1e-12)
    # without validation data the val_* figures are absent (None), not made up
    rec = Recorder()
    MLPRegressor(hidden_layer_sizes=(8,), max_iter=2, random_state=0, callbacks=[rec]).fit(X, y)
    assert all(logs["val_loss"] is None and logs["val_score"] is None for _, _, logs in rec.calls)


def test_train_begin_and_end_hooks():
    events = []

    class Hooks(Callback):
        def on_train_begin(self, estimator):
            events.append("begin")

        def on_epoch_end(self, estimator, epoch, logs):
            events.append(epoch)
            return False

        def on_train_end(self, estimator):
            events.append("end")

    X, y = _classes()
    MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0, callbacks=[Hooks()]).fit(X, y)
    assert events == ["begin", 0, 1, 2, "end"]


def test_base_callback_never_stops():
    X, y = _classes()
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=7, random_state=0, callbacks=[Callback()]).fit(X, y)
    assert clf.n_iter_ == 7


def test_every_callback_sees_the_stopping_epoch():
    X, y = _classes()
    first, second = Recorder(stop_after=2), Recorder()
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=20, random_state=0,
                        callbacks=[first, second]).fit(X, y)
    assert clf.n_iter_ == 2
    assert len(first.calls) == len(second.calls) == 2


def test_callbacks_with_partial_fit():
    X, y = _classes()
    rec = Recorder()
    clf = MLPClassifier(hidden_layer_sizes=(4,), random_state=0, callbacks=[rec])
    for _ in range(3):
        clf.partial_fit(X, y, classes=[0, 1, 2])
    assert len(rec.calls) == 3


def test_callback_without_on_epoch_end_is_refused():
    X, y = _classes()
    with pytest.raises((TypeError, ValueError), match="callbacks"):
        MLPClassifier(max_iter=2, callbacks=[object()]).fit(X, y)


def test_clone_copies_callbacks():
    es = EarlyStopping(monitor="loss", patience=3)
    clf = MLPClassifier(callbacks=[es])
    copy = clone(clf)
    assert copy.callbacks[0] is not es
    assert copy.callbacks[0].patience == 3 and copy.callbacks[0].monitor == "loss"


# ------------------------------------------------------------------------------------------------
# EarlyStopping


def _regressor(**kw):
    params = dict(hidden_layer_sizes=(128,), learning_rate_init=0.02, alpha=0.0, max_iter=300,
                  random_state=0, n_threads=1)
    params.update(kw)
    return MLPRegressor(**params)


def test_early_stopping_val_loss_stops_and_restores_best_weights():
    X, y, Xv, yv = _data()
    es = EarlyStopping(monitor="val_loss", patience=2)
    reg = _regressor(callbacks=[es]).fit(X, y, eval_set=(Xv, yv))
    val_loss = reg.history_["val_loss"]
    assert reg.n_iter_ < 300, "did not stop early"
    best = int(np.argmin(val_loss))
    assert es.best_epoch_ == best and es.best_ == val_loss[best]
    assert reg.n_iter_ == best + 1 + 2  # stopped after `patience` epochs without improvement
    assert val_loss[-1] > min(val_loss), "the run must end past its best epoch for this test to bite"
    # the restored weights are the best epoch's: their validation loss is the best one ...
    assert 0.5 * np.mean((reg.predict(Xv) - yv) ** 2) == pytest.approx(min(val_loss), rel=1e-9)
    # ... and they are bit for bit those of the same run cut after the best epoch
    cut = _regressor(max_iter=best + 1).fit(X, y, eval_set=(Xv, yv))
    for a, b in zip(reg.coefs_ + reg.intercepts_, cut.coefs_ + cut.intercepts_):
        assert_array_equal(a, b)


def test_early_stopping_without_restore_keeps_last_weights():
    X, y, Xv, yv = _data()
    es = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=False)
    reg = _regressor(callbacks=[es]).fit(X, y, eval_set=(Xv, yv))
    cut = _regressor(max_iter=reg.n_iter_).fit(X, y, eval_set=(Xv, yv))
    for a, b in zip(reg.coefs_, cut.coefs_):
        assert_array_equal(a, b)


def test_early_stopping_val_score_is_maximized():
    X, y, Xv, yv = _data()
    es = EarlyStopping(monitor="val_score", patience=3)
    reg = _regressor(callbacks=[es]).fit(X, y, eval_set=(Xv, yv))
    scores = reg.history_["val_score"]
    assert reg.n_iter_ < 300
    assert es.best_ == max(scores)
    assert reg.score(Xv, yv) == pytest.approx(max(scores), rel=1e-9)


def test_early_stopping_on_training_loss_needs_no_validation_data():
    X, y, _, _ = _data()
    es = EarlyStopping(monitor="loss", patience=1, min_delta=10.0)  # nothing improves by 10
    reg = _regressor(callbacks=[es]).fit(X, y)
    assert reg.n_iter_ == 2


def test_early_stopping_with_internal_validation_split():
    X, y, _, _ = _data()
    es = EarlyStopping(monitor="val_loss", patience=2)
    reg = _regressor(early_stopping=True, validation_fraction=0.2, callbacks=[es]).fit(X, y)
    assert reg.n_iter_ < 300
    assert all(v is not None for v in reg.history_["val_loss"])


@pytest.mark.parametrize("monitor", ["val_loss", "val_score"])
def test_early_stopping_without_validation_data_raises(monitor):
    X, y, _, _ = _data()
    with pytest.raises(ValueError, match="eval_set"):
        _regressor(max_iter=5, callbacks=[EarlyStopping(monitor=monitor)]).fit(X, y)


def test_early_stopping_state_resets_between_fits():
    X, y, Xv, yv = _data()
    es = EarlyStopping(monitor="val_loss", patience=2)
    a = _regressor(callbacks=[es]).fit(X, y, eval_set=(Xv, yv))
    n_first = a.n_iter_
    b = _regressor(callbacks=[es]).fit(X, y, eval_set=(Xv, yv))
    assert b.n_iter_ == n_first


@pytest.mark.parametrize("kwargs", [dict(monitor=""), dict(monitor=3), dict(monitor="time"),
                                    dict(patience=-1), dict(patience=1.5),
                                    dict(min_delta=-0.1), dict(min_delta=float("nan")),
                                    dict(mode="largest")])
def test_early_stopping_bad_arguments(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        EarlyStopping(**kwargs)


# ------------------------------------------------------------------------------------------------
# ProgressBar


def test_progress_bar_with_tqdm(capsys):
    pytest.importorskip("tqdm")
    X, y = _classes()
    out = io.StringIO()
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=6, random_state=0,
                        callbacks=[ProgressBar(file=out)]).fit(X, y)
    text = out.getvalue()
    assert "6/6" in text and "loss" in text
    assert clf.n_iter_ == 6
    assert capsys.readouterr().err == ""  # all of it went to the given file


def test_progress_bar_without_tqdm(monkeypatch, capsys):
    # As if tqdm were not installed: `import tqdm` (and its submodules, which an earlier test may
    # have imported already) raise ImportError.
    for name in ["tqdm", "tqdm.auto"] + [m for m in list(sys.modules) if m.startswith("tqdm.")]:
        monkeypatch.setitem(sys.modules, name, None)
    X, y = _classes()
    out = io.StringIO()
    MLPClassifier(hidden_layer_sizes=(4,), max_iter=6, random_state=0,
                  callbacks=[ProgressBar(file=out)]).fit(X, y, eval_set=(X, y))
    text = out.getvalue()
    assert "Epoch 6/6" in text and "loss=" in text and "val_score=" in text
    assert text.endswith("\n")
    assert capsys.readouterr().err == ""


def test_progress_bar_total():
    X, y = _classes()
    out = io.StringIO()
    MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0,
                  callbacks=[ProgressBar(total=10, file=out)]).fit(X, y)
    assert "3/10" in out.getvalue()


def test_progress_bar_defaults_to_stderr(capsys):
    X, y = _classes()
    MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0, callbacks=[ProgressBar()]).fit(X, y)
    captured = capsys.readouterr()
    assert "3/3" in captured.err and captured.out == ""


def test_lbfgs_iterations_drive_history_eval_set_and_callbacks():
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)

    class StopAtThird(Callback):
        def __init__(self):
            self.epochs = []

        def on_epoch_end(self, estimator, epoch, logs):
            self.epochs.append((epoch, logs["val_score"]))
            return epoch == 2

    stopper = StopAtThird()
    clf = MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=200, random_state=0,
                        callbacks=[stopper])
    clf.fit(X, y, eval_set=(X[::3], y[::3]))
    assert [e for e, _ in stopper.epochs] == [0, 1, 2]
    assert all(0.0 <= score <= 1.0 for _, score in stopper.epochs)
    h = clf.history_
    assert len(h["loss"]) == len(h["val_loss"]) == len(h["val_score"]) == len(h["time"]) == 3
    assert h["time"] == sorted(h["time"]) and h["time"][0] < h["time"][-1]
    assert clf.n_iter_ <= 4
