"""The tabular benchmark: every peer on every data set, 80/20 splits, several seeds, a time limit a fit.

    python benchmarks/tabular/run.py                       # everything: all sets, all peers, 3 seeds
    python benchmarks/tabular/run.py --datasets titanic,credit --peers hgb,lightgbm --seeds 1
    python benchmarks/tabular/run.py --report-only         # the report again, from the saved CSV
    python benchmarks/tabular/run.py --quick               # a first look: 1 seed, sets cut to 5,000 rows

Per data set and seed: a stratified (classification) 80/20 split with ``random_state=seed``; each
peer fits a fresh estimator on the 80% in its own worker process and predicts the 20%. A fit and its
prediction must finish within ``--timeout`` seconds, or the worker is killed and the cell is "did not
finish" (the peer's later seeds on that set are then not tried). Classification is scored by
accuracy and log-loss (class probabilities clipped to [1e-15, 1] and renormalized; a class that a
training split lacks gets probability 0 before the clip), regression by RMSE and R^2 on the target's
own scale. Every result is appended to the CSV as soon as it is known, so a stopped run continues
where it stopped: a (data set, peer, seed) already there is skipped, unless it failed, or did not
finish under a shorter time limit than this run's.

The Markdown report (``report(csv)``) is printed and written beside the CSV (``.md``).
"""
from __future__ import annotations

import argparse
import csv
import datetime as _dt
import math
import os
import sys
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Union

_ROOT = Path(__file__).resolve().parents[2]
if __package__ in (None, "") and str(_ROOT) not in sys.path:
    sys.path.append(str(_ROOT))  # appended, so an installed mlp still wins over the source tree

import numpy as np
import pandas as pd

from benchmarks.tabular import datasets as ds
from benchmarks.tabular import peers as pr
from benchmarks.tabular.worker import Worker, fit_predict

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results.csv"
QUICK_OUT = HERE / "results_quick.csv"
QUICK_MAX_ROWS = 5000
EPS = 1e-15

FIELDS = ["dataset", "task", "peer", "seed", "status", "fit_s", "predict_s", "accuracy", "log_loss",
          "rmse", "r2", "n_train", "n_test", "n_features", "n_classes", "timeout_s", "threads",
          "max_rows", "load_avg", "note", "finished_at"]

# metric -> (higher is better, tasks it applies to, heading)
METRICS = {
    "accuracy": (True, "classification", "Accuracy (higher is better)"),
    "log_loss": (False, "classification", "Log-loss (lower is better)"),
    "rmse": (False, "regression", "RMSE (lower is better)"),
    "r2": (True, "regression", "R² (higher is better)"),
}
# the two metrics over all sets: a score (accuracy / R²) and a loss (log-loss / RMSE)
COMBINED = {"score": {"classification": "accuracy", "regression": "r2"},
            "loss": {"classification": "log_loss", "regression": "rmse"}}


# ---------------------------------------------------------------- splits and scores

def encode_labels(y: pd.Series):
    """Class codes 0..K-1 over the whole data set (so that a split's missing class still counts)."""
    codes, classes = pd.factorize(y, sort=True)
    return codes.astype(np.int64), np.asarray(classes)


def split(X: pd.DataFrame, y: np.ndarray, task: str, seed: int, test_size: float = 0.2):
    from sklearn.model_selection import train_test_split
    stratify = None
    if task != "regression":
        counts = np.bincount(y)
        if counts[counts > 0].min() >= 2:
            stratify = y
    idx_train, idx_test = train_test_split(np.arange(len(X)), test_size=test_size, random_state=seed,
                                           stratify=stratify)
    return (X.iloc[idx_train].reset_index(drop=True), y[idx_train],
            X.iloc[idx_test].reset_index(drop=True), y[idx_test])


def score(task: str, y_test: np.ndarray, pred: np.ndarray, classes=None, n_classes: Optional[int] = None) -> dict:
    """accuracy + log_loss from class probabilities (columns ordered as ``classes``, the codes the
    estimator saw), or rmse + r2 from predictions."""
    y_test = np.asarray(y_test)
    if task == "regression":
        pred = np.asarray(pred, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(pred)):
            return dict(rmse=math.inf, r2=-math.inf)
        err = pred - y_test
        ss_tot = float(np.sum((y_test - y_test.mean()) ** 2))
        return dict(rmse=float(np.sqrt(np.mean(err ** 2))),
                    r2=float(1.0 - np.sum(err ** 2) / ss_tot) if ss_tot > 0 else float("nan"))
    proba = np.asarray(pred, dtype=np.float64)
    if classes is None:
        classes = np.arange(proba.shape[1])
    classes = np.asarray(classes).astype(np.int64)
    k = int(n_classes if n_classes is not None else max(int(classes.max()), int(y_test.max())) + 1)
    if proba.ndim == 1:  # a bare positive-class probability
        proba = np.column_stack([1.0 - proba, proba])
    full = np.zeros((len(y_test), k))
    full[:, classes] = np.nan_to_num(proba, nan=0.0)
    full = np.clip(full, EPS, 1.0)
    full /= full.sum(axis=1, keepdims=True)
    return dict(accuracy=float(np.mean(full.argmax(axis=1) == y_test)),
                log_loss=float(-np.mean(np.log(full[np.arange(len(y_test)), y_test]))))


# ---------------------------------------------------------------- the CSV

def read_results(path) -> pd.DataFrame:
    """The raw results, one row per (data set, peer, seed): the last one written wins."""
    df = pd.read_csv(path, keep_default_na=True)
    for c in FIELDS:
        if c not in df.columns:
            df[c] = np.nan
    df["note"] = df["note"].astype(object).where(df["note"].notna(), "").astype(str)
    df = df.drop_duplicates(["dataset", "peer", "seed"], keep="last").reset_index(drop=True)
    return df


def _append(path: Path, row: dict):
    new = not path.exists() or path.stat().st_size == 0
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        if new:
            w.writeheader()
        w.writerow({k: ("" if v is None else v) for k, v in row.items()})
        f.flush()


def _cap(v) -> str:
    """A row cap as the CSV keeps it: digits, or "" for none."""
    if v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == "":
        return ""
    return str(int(float(v)))


def _done(existing: Optional[pd.DataFrame], timeout: float, max_rows) -> Dict[tuple, str]:
    """Keys of the results this run keeps (and does not redo)."""
    if existing is None or existing.empty:
        return {}
    keep = {}
    for r in existing.itertuples(index=False):
        if _cap(r.max_rows) != _cap(max_rows):
            continue  # another row cap (say --quick): redo
        if r.status == "ok":
            keep[(r.dataset, r.peer, int(r.seed))] = "ok"
        elif r.status == "dnf":
            limit = float(r.timeout_s) if pd.notna(r.timeout_s) else 0.0
            if timeout and 0 < timeout <= limit:
                keep[(r.dataset, r.peer, int(r.seed))] = "dnf"
    return keep


# ---------------------------------------------------------------- the run

def _resolve_peers(peers) -> List[pr.Peer]:
    out = []
    for p in (peers if peers is not None else pr.DEFAULT_PEERS):
        out.append(pr.get(p) if isinstance(p, str) else p)
    return out


def run(datasets: Optional[Sequence[str]] = None, peers: Optional[Sequence[Union[str, pr.Peer]]] = None,
        seeds: Union[int, Sequence[int]] = 3, timeout: float = 600.0, out: Union[str, Path] = DEFAULT_OUT,
        threads: Optional[int] = None, max_rows: Optional[int] = ds.MAX_ROWS, in_process: bool = False,
        log: Callable[[str], None] = print) -> pd.DataFrame:
    """Runs the benchmark, appending to ``out``; returns the results read back from it.

    ``peers``: names from ``peers.PEERS`` or ``Peer`` objects; an unavailable one is skipped with a
    message. ``seeds``: a count (seeds 0..n-1) or the seeds themselves. ``timeout``: seconds for a
    fit and its prediction (0: no limit). ``threads``: given to every peer that has a thread
    parameter, and the worker's BLAS/OpenMP pools are limited to it (default: the machine's cores).
    ``in_process``: no worker processes (no time limit either): for debugging.
    """
    out = Path(out)
    names = list(datasets) if datasets is not None else list(ds.SUITE)
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    threads = int(threads) if threads else (os.cpu_count() or 1)
    runnable = []
    for p in _resolve_peers(peers):
        why = p.unavailable()
        if why is None:
            runnable.append(p)
        else:
            log(f"skipping peer {p.name} ({p.label}): {why}")
    if not runnable:
        raise SystemExit("no peer can run here")
    existing = read_results(out) if out.exists() and out.stat().st_size else None
    done = _done(existing, timeout, max_rows)
    workers = {p.name: Worker(threads) for p in runnable}
    try:
        for name in names:
            d = ds.get(name)
            if not d.available():
                log(f"skipping data set {name}: needs `pip install {d.requires}`")
                continue
            todo = [(s, p) for s in seed_list for p in runnable if (name, p.name, s) not in done]
            if not todo:
                log(f"{name}: all done already")
                continue
            try:
                X, y_raw = d.load(max_rows)
            except Exception as e:  # noqa: BLE001 - a broken data set must not stop the others
                log(f"skipping data set {name}: it did not load ({type(e).__name__}: {e})")
                continue
            if d.is_classification:
                y, classes = encode_labels(y_raw)
                n_classes = len(classes)
            else:
                y, n_classes = np.asarray(y_raw, dtype=np.float64), None
            log(f"{name}: {d.task}, {len(X):,} rows x {X.shape[1]} columns")
            stopped = {p.name for p in runnable
                       if any(done.get((name, p.name, s)) == "dnf" for s in seed_list)}
            for seed in seed_list:
                if all((name, p.name, seed) in done for p in runnable):
                    continue
                X_train, y_train, X_test, y_test = split(X, y, d.task, seed)
                for p in runnable:
                    key = (name, p.name, seed)
                    if key in done:
                        continue
                    row = dict(dataset=name, task=d.task, peer=p.name, seed=seed, n_train=len(X_train),
                               n_test=len(X_test), n_features=X.shape[1], n_classes=n_classes,
                               timeout_s=timeout, threads=threads,
                               max_rows="" if max_rows is None else max_rows)
                    if p.name in stopped:
                        row.update(status="dnf", note="not run: an earlier seed did not finish")
                    else:
                        if in_process:
                            try:
                                status, payload = "ok", fit_predict(p, d.task, seed, threads, X_train, y_train, X_test)
                            except Exception as e:  # noqa: BLE001 - recorded, the run goes on
                                status, payload = "error", f"{type(e).__name__}: {e}"
                        else:
                            status, payload = workers[p.name].run(timeout, p, d.task, seed, X_train, y_train, X_test)
                        if status == "ok":
                            fit_s, predict_s, pred, est_classes = payload
                            row.update(status="ok", fit_s=round(fit_s, 4), predict_s=round(predict_s, 4),
                                       **score(d.task, y_test, pred, est_classes, n_classes))
                        else:
                            row.update(status=status, note=str(payload).strip().replace("\n", " | ")[:500])
                            if status == "dnf":
                                stopped.add(p.name)
                    row["finished_at"] = _dt.datetime.now().isoformat(timespec="seconds")
                    row["load_avg"] = _load()
                    _append(out, row)
                    log(_row_line(row))
    finally:
        for w in workers.values():
            w.close()
    return read_results(out)


def _load():
    """The machine's 1-minute load average as the result arrives: timings taken while other work
    ran (load above the core count) are not worth much, and the report says how loaded it was."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):  # pragma: no cover - not on Unix
        return None


def _row_line(r: dict) -> str:
    head = f"  {r['dataset']:14s} {r['peer']:12s} seed {r['seed']}: "
    if r["status"] != "ok":
        return head + f"{r['status'].upper()} {r.get('note', '')[:160]}"
    if r["task"] == "regression":
        m = f"rmse {r['rmse']:.4g}  r2 {r['r2']:.4f}"
    else:
        m = f"acc {r['accuracy']:.4f}  logloss {r['log_loss']:.4f}"
    return head + f"{m}  fit {r['fit_s']:.2f} s  predict {r['predict_s']:.3f} s"


# ---------------------------------------------------------------- the report

def _order(values: Iterable[str], preferred: Sequence[str]) -> List[str]:
    values = list(dict.fromkeys(values))
    preferred = list(dict.fromkeys(preferred))
    return [v for v in preferred if v in values] + [v for v in values if v not in preferred]


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (data set, peer): seed means, and whether the peer finished the set (every seed
    that ran on the set finished with a result)."""
    seeds_per_set = df.groupby("dataset")["seed"].nunique()
    rows = []
    for (dset, peer), g in df.groupby(["dataset", "peer"], sort=False):
        ok = g[g["status"] == "ok"]
        n_ok, n_all = len(ok), int(seeds_per_set[dset])
        statuses = set(g["status"])
        if n_ok == n_all:
            state = "ok"
        elif "dnf" in statuses:
            state = "dnf"
        elif "error" in statuses:
            state = "error"
        else:
            state = "partial"
        row = dict(dataset=dset, peer=peer, task=g["task"].iloc[0], state=state, seeds_ok=n_ok, seeds=n_all,
                   n_train=g["n_train"].iloc[0], timeout_s=g["timeout_s"].max(),
                   note="; ".join(sorted({n for n in g["note"] if n})))
        for c in ("fit_s", "predict_s", *METRICS):
            row[c] = pd.to_numeric(ok[c], errors="coerce").mean() if n_ok else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def _kind(task: str) -> str:
    return "regression" if task == "regression" else "classification"


def rank_table(summary: pd.DataFrame, sets: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """Ranks (1 = best) per (data set, peer) and metric, among the peers that finished that set;
    ties share their average rank. Columns: the metrics, "score" and "loss"."""
    s = summary if sets is None else summary[summary["dataset"].isin(list(sets))]
    s = s[s["state"] == "ok"]
    out = []
    for dset, g in s.groupby("dataset", sort=False):
        kind = _kind(g["task"].iloc[0])
        r = pd.DataFrame({"dataset": dset, "peer": g["peer"].values})
        for m, (higher, applies, _) in METRICS.items():
            if applies == kind:
                # rounded first, so that float noise in a seed mean (0.9 + 0.8) / 2 != 0.85 is no rank
                r[m] = g[m].round(10).rank(ascending=not higher, method="average").values
            else:
                r[m] = np.nan
        for c, by_kind in COMBINED.items():
            r[c] = r[by_kind[kind]]
        out.append(r)
    if not out:
        return pd.DataFrame(columns=["dataset", "peer", *METRICS, *COMBINED])
    return pd.concat(out, ignore_index=True)


def mean_ranks(summary: pd.DataFrame, sets: Optional[Sequence[str]] = None,
               peers: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """Mean rank per peer and metric over the sets it finished (index: peer); "sets" counts them."""
    ranks = rank_table(summary, sets)
    peers = list(peers) if peers is not None else _order(summary["peer"], pr.DEFAULT_PEERS)
    res = ranks.groupby("peer")[[*METRICS, *COMBINED]].mean().reindex(peers)
    res["sets"] = ranks.groupby("peer")["dataset"].nunique().reindex(peers).fillna(0).astype(int)
    return res


def _geomean(x) -> float:
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x) & (x > 0)]
    return float(np.exp(np.mean(np.log(x)))) if len(x) else float("nan")


def time_table(summary: pd.DataFrame, reference: str, peers: Sequence[str]) -> pd.DataFrame:
    """Per peer: geometric-mean fit/predict seconds over its finished sets, and the geometric mean
    over the sets both it and ``reference`` finished of its time divided by the reference's."""
    ok = summary[summary["state"] == "ok"]
    fit = ok.pivot(index="dataset", columns="peer", values="fit_s")
    pred = ok.pivot(index="dataset", columns="peer", values="predict_s")
    rows = []
    for p in peers:
        if p not in fit.columns:
            rows.append(dict(peer=p, sets=0))
            continue
        both = fit[[p]].dropna().index
        if reference in fit.columns:
            both = fit.loc[both, reference].dropna().index
        row = dict(peer=p, sets=int(fit[p].notna().sum()), fit_s=_geomean(fit[p]), predict_s=_geomean(pred[p]),
                   common=len(both))
        if reference in fit.columns and len(both):
            row["fit_rel"] = _geomean(fit.loc[both, p] / fit.loc[both, reference])
            row["predict_rel"] = _geomean(pred.loc[both, p] / pred.loc[both, reference])
        rows.append(row)
    return pd.DataFrame(rows).set_index("peer")


def _fmt(x, digits=4) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "–" if x is None or np.isnan(x) else ("inf" if x > 0 else "-inf")
    return f"{x:.{digits}f}"


def _fmt_s(x) -> str:
    if x is None or not np.isfinite(x):
        return "–"
    return f"{x:.3g}" if x < 100 else f"{x:.0f}"


def _metric_fmt(m: str, x) -> str:
    if m == "rmse":
        return "–" if not np.isfinite(x) else f"{x:.4g}"
    return _fmt(x)


def _md_table(header: List[str], rows: List[List[str]], align: Optional[List[str]] = None) -> List[str]:
    align = align or ["---"] + ["---:"] * (len(header) - 1)
    return ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |",
            *("| " + " | ".join(r) + " |" for r in rows)]


def report(results_csv: Union[str, Path], reference: str = pr.REFERENCE) -> str:
    """The Markdown report of a results CSV: per-set tables (seed means), mean ranks per metric (over
    all sets, and again on the sets where each peer that missed some finished), fit/predict times."""
    df = read_results(results_csv)
    if df.empty:
        return "# Tabular benchmark\n\nNo results yet.\n"
    summary = summarize(df)
    sets = _order(summary["dataset"], ds.SUITE + list(ds.DATASETS))
    peers = _order(summary["peer"], pr.DEFAULT_PEERS)
    labels = {p: pr.label(p) for p in peers}
    cell = {(r.dataset, r.peer): r for r in summary.itertuples(index=False)}
    task_of = dict(zip(summary["dataset"], summary["task"]))
    finished = {p: [s for s in sets if (s, p) in cell and cell[(s, p)].state == "ok"] for p in peers}
    if reference not in peers:
        ref_note = f"{pr.label(reference)} has no results here: times are relative to {labels[peers[0]]}'s"
        reference = peers[0]
    else:
        ref_note = ""
    seeds = sorted(int(s) for s in df["seed"].unique())
    timeouts = sorted({float(t) for t in df["timeout_s"].dropna()})
    threads = sorted({int(t) for t in df["threads"].dropna()})
    caps = sorted({_cap(c) for c in df["max_rows"]}, key=lambda c: (c == "", int(c) if c else 0))

    L = ["# Tabular benchmark results", ""]
    L.append(f"{len(sets)} data sets, {len(peers)} peers, seeds {', '.join(map(str, seeds))}; "
             f"80/20 splits; time limit a fit {', '.join(f'{t:g}' for t in timeouts)} s; "
             f"threads {', '.join(map(str, threads))}; rows capped at {', '.join(c or 'none' for c in caps)}. "
             f"From `{Path(results_csv).name}` ({len(df)} results).")
    load = pd.to_numeric(df["load_avg"], errors="coerce").dropna()
    if len(load):
        L.append("")
        L.append(f"1-minute load average when the results came in: median {load.median():.1f}, max {load.max():.1f} "
                 f"(this machine: {os.cpu_count()} cores); "
                 f"{int((load > (os.cpu_count() or 1) + 0.5).sum())} of {len(load)} results came in above the core count, "
                 "whose times other work inflated.")
    L.append("")

    # -- mean ranks
    L += ["## Mean rank", "",
          "Within each data set the peers that finished it (every seed within the time limit) are ranked by "
          "the seed-averaged metric, 1 = best, ties sharing their average rank; a peer's mean is over the "
          "sets it finished (*sets*). *score* is accuracy on classification and R² on regression, *loss* "
          "log-loss and RMSE.", ""]
    L += _rank_lines(summary, None, peers, labels, len(sets))
    for p in peers:
        if 0 < len(finished[p]) < len(sets):
            n = len(finished[p])
            L += ["", f"### On the {n} set{'s' if n != 1 else ''} where {labels[p]} finished", "",
                  ", ".join(finished[p]) + ".", ""]
            L += _rank_lines(summary, finished[p], peers, labels, len(finished[p]))

    # -- times
    tt = time_table(summary, reference, peers)
    L += ["", "## Fit and predict time", "",
          f"Geometric means over the sets each peer finished; the ratios are geometric means, over the sets "
          f"both finished, of the peer's seconds divided by {labels[reference]}'s." + (f" ({ref_note}.)" if ref_note else ""), ""]
    rows = []
    for p in peers:
        r = tt.loc[p]
        rows.append([labels[p], f"{int(r['sets'])}/{len(sets)}", _fmt_s(r.get("fit_s", np.nan)),
                     _ratio(r, "fit_rel"), _fmt_s(r.get("predict_s", np.nan)), _ratio(r, "predict_rel")])
    L += _md_table(["peer", "sets finished", "geo-mean fit s", f"fit / {labels[reference]}",
                    "geo-mean predict s", f"predict / {labels[reference]}"], rows)

    # -- where each peer finished
    L += ["", "## Where each peer finished", ""]
    rows = []
    for p in peers:
        missing = [s for s in sets if s not in finished[p]]
        why = []
        for s in missing:
            c = cell.get((s, p))
            why.append(f"{s} ({'not run' if c is None else _state_word(c.state)})")
        rows.append([labels[p], f"{len(finished[p])}/{len(sets)}", ", ".join(why) or "–"])
    L += _md_table(["peer", "finished", "not finished"], rows, ["---", "---:", "---"])

    # -- per data set
    L += ["", "## Per data set", "", "Means over the seeds; **bold**: the best of the row; DNF: did not finish "
          "within the time limit; err: failed (see the CSV's note).", ""]
    head = ["data set", "train rows", *(labels[p] for p in peers)]
    for m, (higher, applies, title) in METRICS.items():
        msets = [s for s in sets if _kind(task_of[s]) == applies]
        if not msets:
            continue
        rows = []
        for s in msets:
            vals = {p: cell[(s, p)] for p in peers if (s, p) in cell}
            okv = [getattr(c, m) for c in vals.values() if c.state == "ok" and np.isfinite(getattr(c, m))]
            best = (max(okv) if higher else min(okv)) if okv else None
            row = [s, f"{int(next(iter(vals.values())).n_train):,}"]
            for p in peers:
                c = vals.get(p)
                if c is None:
                    row.append("")
                elif c.state != "ok":
                    row.append(_state_word(c.state, short=True))
                else:
                    v = _metric_fmt(m, getattr(c, m))
                    row.append(f"**{v}**" if best is not None and getattr(c, m) == best else v)
            rows.append(row)
        L += [f"### {title}", ""] + _md_table(head, rows) + [""]
    for col, title in (("fit_s", "Fit seconds"), ("predict_s", "Predict seconds")):
        rows = []
        for s in sets:
            vals = {p: cell[(s, p)] for p in peers if (s, p) in cell}
            row = [s, f"{int(next(iter(vals.values())).n_train):,}"]
            for p in peers:
                c = vals.get(p)
                row.append("" if c is None else (_fmt_s(getattr(c, col)) if c.state == "ok"
                                                  else _state_word(c.state, short=True)))
            rows.append(row)
        L += [f"### {title}", ""] + _md_table(head, rows) + [""]
    return "\n".join(L).rstrip() + "\n"


def _ratio(r: pd.Series, key: str) -> str:
    return f"{r[key]:.3g}x" if key in r and pd.notna(r[key]) else "–"


def _state_word(state: str, short: bool = False) -> str:
    return {"dnf": "DNF" if short else "did not finish", "error": "err" if short else "failed",
            "partial": "part" if short else "not all seeds"}.get(state, state)


def _rank_lines(summary, sets, peers, labels, n_sets) -> List[str]:
    mr = mean_ranks(summary, sets, peers)
    cols = [("score", "score"), ("loss", "loss"), ("accuracy", "accuracy"), ("log_loss", "log-loss"),
            ("rmse", "RMSE"), ("r2", "R²")]
    present = [(c, h) for c, h in cols if mr[c].notna().any()]
    best = {c: mr[c].min() for c, _ in present}
    rows = []
    for p in peers:
        r = mr.loc[p]
        vals = []
        for c, _ in present:
            v = r[c]
            s = "–" if pd.isna(v) else f"{v:.2f}"
            vals.append(f"**{s}**" if pd.notna(v) and v == best[c] else s)
        rows.append([labels[p], *vals, f"{int(r['sets'])}/{n_sets}"])
    return _md_table(["peer", *(h for _, h in present), "sets"], rows)


# ---------------------------------------------------------------- CLI

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", help=f"comma-separated (default: the suite: {','.join(ds.SUITE)})")
    ap.add_argument("--peers", help=f"comma-separated (default: all: {','.join(pr.DEFAULT_PEERS)})")
    ap.add_argument("--seeds", type=int, default=None, help="number of seeds, 0..n-1 (default 3; --quick: 1)")
    ap.add_argument("--timeout", type=float, default=None,
                    help="seconds a fit + predict may take, 0 = no limit (default 600; --quick: 120)")
    ap.add_argument("--threads", type=int, default=None, help="threads a peer (default: all cores)")
    ap.add_argument("--max-rows", type=int, default=None,
                    help=f"cap each set at this many rows, fixed-seed sample (default {ds.MAX_ROWS}; --quick: {QUICK_MAX_ROWS})")
    ap.add_argument("--quick", action="store_true", help="a first look: 1 seed, sets capped at "
                    f"{QUICK_MAX_ROWS} rows, 120 s limit, results to {QUICK_OUT.name}")
    ap.add_argument("--out", default=None, help=f"results CSV, appended to (default {DEFAULT_OUT.name} beside this file)")
    ap.add_argument("--report", default=None, help="where to write the Markdown report (default: the CSV's name with .md)")
    ap.add_argument("--report-only", action="store_true", help="only rebuild the report from the CSV")
    ap.add_argument("--in-process", action="store_true", help="no worker processes, no time limit (debugging)")
    ap.add_argument("--list", action="store_true", help="list the data sets and peers, and whether they can run")
    a = ap.parse_args(argv)

    if a.list:
        for name in ds.DATASETS:
            d = ds.DATASETS[name]
            print(f"data set {name:14s} {d.task:10s} {'suite' if d.in_suite else 'extra'}  "
                  f"{'ok' if d.available() else 'needs ' + str(d.requires)}  {d.source}")
        for name, why in pr.status().items():
            print(f"peer     {name:14s} {'ok' if why is None else why}")
        return 0
    out = Path(a.out) if a.out else (QUICK_OUT if a.quick else DEFAULT_OUT)
    rep = Path(a.report) if a.report else out.with_suffix(".md")
    if not a.report_only:
        run(datasets=a.datasets.split(",") if a.datasets else None,
            peers=pr.split_names(a.peers) if a.peers else None,
            seeds=a.seeds if a.seeds is not None else (1 if a.quick else 3),
            timeout=a.timeout if a.timeout is not None else (120.0 if a.quick else 600.0),
            out=out, threads=a.threads,
            max_rows=a.max_rows if a.max_rows is not None else (QUICK_MAX_ROWS if a.quick else ds.MAX_ROWS),
            in_process=a.in_process)
    text = report(out)
    rep.write_text(text)
    print()
    print(text)
    print(f"(report written to {rep})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
