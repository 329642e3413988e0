"""Smoke test of the tabular benchmark's harness (benchmarks/tabular/): the benchmark itself is not run
in CI, this checks the harness on two of scikit-learn's bundled data sets with the peers that CI has
(scikit-learn's MLP, HistGradientBoosting, mlp's MLP estimators, and mlp's tabular estimators when
they exist), the ranking of ``report`` on a hand-made table, and the time limit on a fake peer."""
from __future__ import annotations

import csv
import dataclasses
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.append(str(_ROOT))  # appended: the installed (or sanitized) mlp keeps precedence

from benchmarks.tabular import datasets as bds  # noqa: E402
from benchmarks.tabular import peers as bpr  # noqa: E402
from benchmarks.tabular import run as brun  # noqa: E402

# Small settings, so the smoke run takes seconds: they apply where the estimator has the parameter.
SMALL = {
    "mlp_tabular": {"max_epochs": 10, "hidden_layer_sizes": (32, 32)},
    "mlp_mlp": {"max_iter": 30, "hidden_layer_sizes": (32,)},
    "sklearn_mlp": {"max_iter": 30, "hidden_layer_sizes": (32,)},
    "hgb": {"max_iter": 20},
}


def _small_peers():
    out = []
    for name, params in SMALL.items():
        p = bpr.get(name)
        if p.unavailable() is None:
            out.append(dataclasses.replace(p, params=params))
    return out


def test_smoke_two_datasets(tmp_path):
    out = tmp_path / "results.csv"
    peers = _small_peers()
    names = [p.name for p in peers]
    assert {"mlp_mlp", "sklearn_mlp", "hgb"} <= set(names)
    lines = []
    res = brun.run(datasets=["breast_cancer", "diabetes"], peers=peers, seeds=1, timeout=300, out=out,
                   threads=2, log=lines.append)
    assert len(res) == 2 * len(peers)
    for dset, task in (("breast_cancer", "binary"), ("diabetes", "regression")):
        for peer in names:
            row = res[(res["dataset"] == dset) & (res["peer"] == peer)]
            assert len(row) == 1, (dset, peer)
            r = row.iloc[0]
            assert r["status"] == "ok", (dset, peer, r["note"])
            assert r["task"] == task and r["n_test"] > 0 and r["n_train"] > 3 * r["n_test"]
            assert r["fit_s"] > 0 and r["predict_s"] >= 0
            if task == "binary":
                assert 0.5 < r["accuracy"] <= 1.0 and 0 < r["log_loss"] < 5, (peer, r["accuracy"], r["log_loss"])
            else:
                assert math.isfinite(r["rmse"]) and r["rmse"] > 0 and math.isfinite(r["r2"]), peer
    # the split is 80/20 and stratified
    bc = res[res["dataset"] == "breast_cancer"].iloc[0]
    assert bc["n_test"] == math.ceil(0.2 * 569)
    # the CSV resumes: a second run does nothing and keeps the rows
    again = brun.run(datasets=["breast_cancer", "diabetes"], peers=peers, seeds=1, timeout=300, out=out,
                     threads=2, log=lines.append)
    assert len(again) == len(res)
    with open(out) as f:
        assert sum(1 for _ in csv.DictReader(f)) == len(res)
    text = brun.report(out)
    assert "## Mean rank" in text and "breast_cancer" in text and "diabetes" in text
    for p in peers:
        assert p.label in text


def test_hgb_preprocessing_keeps_at_most_255_levels():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"c": pd.Categorical(rng.integers(0, 400, 3000).astype(str)), "x": rng.normal(size=3000)})
    X.loc[::7, "c"] = np.nan
    capped = bpr.CapCategoryLevels(255).fit(X).transform(X)
    assert capped["c"].nunique() <= 255 and capped["c"].isna().sum() == X["c"].isna().sum()
    est = bpr.get("hgb").build("binary", 0, 1).set_params(model__max_iter=5)
    est.fit(X, rng.integers(0, 2, 3000))


def test_score_with_a_class_missing_from_training():
    # classes 0, 1, 2 exist; the estimator saw only 0 and 2
    y_test = np.array([0, 1, 2, 2])
    proba = np.array([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8], [0.4, 0.6]])
    s = brun.score("multiclass", y_test, proba, classes=np.array([0, 2]), n_classes=3)
    assert s["accuracy"] == pytest.approx(0.75)
    p = np.clip(np.array([0.9, 0.0, 0.8, 0.6]), brun.EPS, 1)
    assert s["log_loss"] == pytest.approx(-np.mean(np.log(p)), rel=1e-6)
    r = brun.score("regression", np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]))
    assert r["rmse"] == pytest.approx(np.sqrt(1 / 3)) and r["r2"] == pytest.approx(0.5)


def _row(dataset, task, peer, seed, status="ok", fit_s=1.0, **metrics):
    return dict(dataset=dataset, task=task, peer=peer, seed=seed, status=status, fit_s=fit_s if status == "ok" else "",
                predict_s=0.01 * fit_s if status == "ok" else "", n_train=80, n_test=20, timeout_s=60, threads=2,
                max_rows="", note="" if status == "ok" else status, **metrics)


def test_report_ranks_ties_and_did_not_finish(tmp_path):
    rows = [
        # set a, binary: mlp_tabular and hgb tie on accuracy (0.85 each, seed means); TabM-D best
        _row("a", "binary", "mlp_tabular", 0, fit_s=1, accuracy=0.9, log_loss=0.3),
        _row("a", "binary", "mlp_tabular", 1, fit_s=1, accuracy=0.8, log_loss=0.5),
        _row("a", "binary", "hgb", 0, fit_s=2, accuracy=0.85, log_loss=0.35),
        _row("a", "binary", "hgb", 1, fit_s=2, accuracy=0.85, log_loss=0.35),
        _row("a", "binary", "tabm_d", 0, fit_s=10, accuracy=0.9, log_loss=0.2),
        _row("a", "binary", "tabm_d", 1, fit_s=10, accuracy=0.9, log_loss=0.2),
        # set b, regression: TabM-D did not finish
        _row("b", "regression", "mlp_tabular", 0, fit_s=2, rmse=1.0, r2=0.9),
        _row("b", "regression", "mlp_tabular", 1, fit_s=2, rmse=1.0, r2=0.9),
        _row("b", "regression", "hgb", 0, fit_s=8, rmse=2.0, r2=0.8),
        _row("b", "regression", "hgb", 1, fit_s=8, rmse=2.0, r2=0.8),
        _row("b", "regression", "tabm_d", 0, status="dnf"),
        _row("b", "regression", "tabm_d", 1, status="dnf"),
        # set c, multiclass: TabM-D failed on one seed, so it did not finish the set either
        _row("c", "multiclass", "mlp_tabular", 0, fit_s=4, accuracy=0.7, log_loss=0.9),
        _row("c", "multiclass", "mlp_tabular", 1, fit_s=4, accuracy=0.7, log_loss=0.9),
        _row("c", "multiclass", "hgb", 0, fit_s=1, accuracy=0.8, log_loss=0.6),
        _row("c", "multiclass", "hgb", 1, fit_s=1, accuracy=0.8, log_loss=0.6),
        _row("c", "multiclass", "tabm_d", 0, fit_s=5, accuracy=0.99, log_loss=0.01),
        _row("c", "multiclass", "tabm_d", 1, status="error"),
    ]
    path = tmp_path / "hand.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    summary = brun.summarize(brun.read_results(path))
    state = {(r.dataset, r.peer): r.state for r in summary.itertuples()}
    assert state[("b", "tabm_d")] == "dnf" and state[("c", "tabm_d")] == "error" and state[("a", "tabm_d")] == "ok"

    mr = brun.mean_ranks(summary)
    expect = {  # peer: accuracy, log_loss, rmse, r2, score, loss, sets
        "mlp_tabular": (2.25, 2.5, 1.0, 1.0, (2.5 + 1 + 2) / 3, (3 + 1 + 2) / 3, 3),
        "hgb": (1.75, 1.5, 2.0, 2.0, (2.5 + 2 + 1) / 3, (2 + 2 + 1) / 3, 3),
        "tabm_d": (1.0, 1.0, np.nan, np.nan, 1.0, 1.0, 1),
    }
    for peer, vals in expect.items():
        got = mr.loc[peer, ["accuracy", "log_loss", "rmse", "r2", "score", "loss", "sets"]].to_numpy(dtype=float)
        np.testing.assert_allclose(got, np.array(vals, dtype=float), equal_nan=True, err_msg=peer)

    only_a = brun.mean_ranks(summary, sets=["a"])
    assert only_a.loc["mlp_tabular", "accuracy"] == 2.5 and only_a.loc["hgb", "accuracy"] == 2.5
    assert only_a.loc["mlp_tabular", "log_loss"] == 3 and only_a.loc["tabm_d", "loss"] == 1

    tt = brun.time_table(summary, "mlp_tabular", ["mlp_tabular", "hgb", "tabm_d"])
    assert tt.loc["hgb", "fit_rel"] == pytest.approx((2 * 4 * 0.25) ** (1 / 3))
    assert tt.loc["tabm_d", "fit_rel"] == pytest.approx(10.0) and tt.loc["tabm_d", "sets"] == 1
    assert tt.loc["mlp_tabular", "fit_rel"] == pytest.approx(1.0)

    text = brun.report(path)
    assert "### On the 1 set where TabM-D finished" in text
    assert "| TabM-D | 1/3 |" in text  # sets finished, in the time table
    assert "b (did not finish), c (failed)" in text
    assert "DNF" in text and "err" in text
    # the hand-made means, as the per-set tables print them
    assert "| a | 80 | 0.8500 | 0.8500 | **0.9000** |" in text


class _Sleepy:
    """A fake estimator whose fit sleeps far past the test's time limit."""

    def __init__(self, seconds):
        self.seconds = seconds

    def fit(self, X, y):
        time.sleep(self.seconds)
        return self


def _sleepy(task, seed, threads):
    return _Sleepy(60.0)


def test_timeout_records_did_not_finish(tmp_path):
    out = tmp_path / "t.csv"
    sleepy = bpr.Peer("sleepy", "sleepy", _sleepy)
    fast = dataclasses.replace(bpr.get("hgb"), params={"max_iter": 5})
    t0 = time.monotonic()
    res = brun.run(datasets=["breast_cancer"], peers=[sleepy, fast], seeds=2, timeout=6, out=out, threads=1,
                   log=lambda s: None)
    took = time.monotonic() - t0
    assert took < 50, took  # the sleeping fit was stopped, not waited for (it sleeps 60 s)
    s = res[res["peer"] == "sleepy"].sort_values("seed")
    assert list(s["status"]) == ["dnf", "dnf"], list(s["note"])
    assert "no result within 6 s" in s["note"].iloc[0]
    assert "not run" in s["note"].iloc[1]  # later seeds of a peer that did not finish are not tried
    assert s["fit_s"].isna().all()
    h = res[res["peer"] == "hgb"]
    assert list(h["status"]) == ["ok", "ok"]
    text = brun.report(out)
    assert "breast_cancer (did not finish)" in text
    # a rerun under the same limit keeps the did-not-finish rows instead of trying again
    t0 = time.monotonic()
    brun.run(datasets=["breast_cancer"], peers=[sleepy, fast], seeds=2, timeout=6, out=out, threads=1,
             log=lambda s: None)
    assert time.monotonic() - t0 < 10


def test_registry_covers_the_suite():
    suite = [bds.get(n) for n in bds.SUITE]
    assert len(suite) >= 10
    assert {d.task for d in suite} == {"binary", "multiclass", "regression"}
    assert set(bpr.DEFAULT_PEERS) >= {"mlp_tabular", "mlp_mlp", "sklearn_mlp", "hgb", "lightgbm", "realmlp_td", "tabm_d"}
    X, y = bds.get("diabetes").load()
    assert isinstance(X["sex"].dtype, pd.CategoricalDtype) and len(X) == len(y) == 442


def test_variant_peers_carry_their_settings_and_pickle():
    import pickle
    assert bpr.split_names("hgb,mlp_tabular[ple_bins=4,hidden_layer_sizes=(8, 8)],lightgbm") == \
        ["hgb", "mlp_tabular[ple_bins=4,hidden_layer_sizes=(8, 8)]", "lightgbm"]
    p = bpr.get("mlp_tabular[ple_bins=4,hidden_layer_sizes=(8, 8),_AUTO_MAX_EPOCHS=3]")
    assert p.name.startswith("mlp_tabular[") and "ple_bins=4" in bpr.label(p.name)
    est = pickle.loads(pickle.dumps(p)).build("binary", 5, 1)  # what the worker receives
    assert (est.ple_bins, est.hidden_layer_sizes, est.random_state) == (4, (8, 8), 5)
    assert est._AUTO_MAX_EPOCHS == 3 and type(est)._AUTO_MAX_EPOCHS != 3
    with pytest.raises(ValueError, match="has no parameter nope"):
        bpr.get("mlp_tabular[nope=1]").build("binary", 0, 1)
    with pytest.raises(ValueError, match="has no parameter _NOPE"):
        bpr.get("mlp_tabular[_NOPE=1]").build("binary", 0, 1)
    with pytest.raises(ValueError, match="key=literal"):
        bpr.get("mlp_tabular[ple_bins=os.system]")
    with pytest.raises(KeyError, match="unknown peer"):
        bpr.get("nope[a=1]")
