"""A peer's fits run in a worker process, so that one that runs past the time limit can be stopped.

``Worker`` keeps one process per peer and sends it one fit at a time: the peer (pickled by
reference), the task, the seed and the train/test split. The child builds a fresh estimator, times
``fit`` and then ``predict_proba`` (classification) or ``predict`` (regression) with
``time.perf_counter``, and sends the predictions back. The time limit starts when the child says
the estimator is built (so the interpreter's start, reading the data and the peer's imports are not
counted): when no answer comes within ``timeout`` seconds of that (fit and predict together) the
parent kills the process; the next fit starts a new one.
"""
from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
import traceback
from multiprocessing.connection import Connection
from typing import Optional

import numpy as np

# The child is a fresh interpreter (no fork: the peers' OpenMP/BLAS/torch thread pools do not survive
# one; and not multiprocessing's spawn either, which re-runs the parent's __main__, impossible from a
# notebook or stdin) that takes the parent's sys.path and talks over two pipes of its own, so that
# whatever a peer prints cannot get in the way.
_BOOT = ("import sys, json, os; sys.path[:] = json.loads(os.environ.pop('MLP_BENCH_SYS_PATH')); "
         "from benchmarks.tabular.worker import _main; _main()")
START_TIMEOUT = 600.0  # seconds for a worker to start, read a task and build its estimator
_HERE = os.path.dirname(os.path.abspath(__file__))


def fit_predict(peer, task, seed, threads, X_train, y_train, X_test, started=None):
    """Runs in whatever process calls it. Returns (fit_s, predict_s, predictions, classes).
    ``started()``, when given, is called once the estimator is built, right before the fit."""
    est = peer.build(task, seed, threads)
    if started is not None:
        started()
    t0 = time.perf_counter()
    est.fit(X_train, y_train)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    if task == "regression":
        pred = np.asarray(est.predict(X_test), dtype=np.float64).reshape(-1)
        classes = None
    else:
        pred = np.asarray(est.predict_proba(X_test), dtype=np.float64)
        classes = np.asarray(est.classes_)
    predict_s = time.perf_counter() - t0
    return fit_s, predict_s, pred, classes


def _main():
    fd_in, fd_out = int(sys.argv[1]), int(sys.argv[2])
    threads = None if sys.argv[3] == "none" else int(sys.argv[3])
    _loop(Connection(fd_in, writable=False), Connection(fd_out, readable=False), threads)


def _loop(conn, out, threads):
    import warnings
    warnings.filterwarnings("ignore")
    limiter = None
    if threads is not None:
        try:
            from threadpoolctl import threadpool_limits
            limiter = threadpool_limits(int(threads))  # BLAS and OpenMP pools of this process
        except Exception:  # pragma: no cover - threadpoolctl comes with scikit-learn
            pass
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        except Exception as e:  # the task did not unpickle here (a peer defined where this process cannot import it)
            out.send(("error", f"the worker could not read the task: {type(e).__name__}: {e}"))
            continue
        if msg is None:
            return
        try:
            result = ("ok", fit_predict(*msg, started=lambda: out.send(("started", None))))
        except BaseException as e:  # report anything, including a peer's SystemExit
            result = ("error", f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=8)}")
        try:
            out.send(result)
        except (BrokenPipeError, OSError):  # the parent is gone
            return
        del msg
        gc.collect()
    del limiter


class Worker:
    """One peer's worker process, started on first use and after a kill."""

    def __init__(self, threads: Optional[int] = None):
        self.threads = threads
        self.proc = None
        self.conn = None
        self.send_conn = None

    def _start(self):
        p2c_r, p2c_w = os.pipe()
        c2p_r, c2p_w = os.pipe()
        # without this folder itself (there when run.py runs as a script): its datasets.py would hide
        # any installed package of that name from the peers
        path = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
        env = dict(os.environ, MLP_BENCH_SYS_PATH=json.dumps(path))
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _BOOT, str(p2c_r), str(c2p_w), str(self.threads or "none")],
                pass_fds=(p2c_r, c2p_w), stdin=subprocess.DEVNULL, env=env)
        finally:
            os.close(p2c_r)
            os.close(c2p_w)
        self.send_conn = Connection(p2c_w, readable=False)
        self.conn = Connection(c2p_r, writable=False)

    def run(self, timeout, peer, task, seed, X_train, y_train, X_test):
        """Returns ("ok", (fit_s, predict_s, pred, classes)), ("error", message) or ("dnf", message)."""
        if self.proc is None or self.proc.poll() is not None:
            self.close(kill=True)
            self._start()
        try:
            self.send_conn.send((peer, task, seed, self.threads, X_train, y_train, X_test))
        except (BrokenPipeError, OSError) as e:
            self.close(kill=True)
            return "error", f"worker unreachable: {e}"
        try:
            if not self.conn.poll(START_TIMEOUT):
                self.close(kill=True)
                return "error", f"the worker did not start the fit within {START_TIMEOUT:g} s"
            msg = self.conn.recv()
            if msg[0] != "started":  # an error before the fit (building the estimator, reading the task)
                return msg
            t0 = time.monotonic()
            if not self.conn.poll(timeout if timeout and timeout > 0 else None):
                self.close(kill=True)
                return "dnf", f"no result within {timeout:g} s (stopped after {time.monotonic() - t0:.0f} s)"
            return self.conn.recv()
        except (EOFError, OSError):
            try:
                code = self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                code = None
            self.close(kill=True)
            return "error", f"worker died (exit code {code}; out of memory?)"

    def close(self, kill: bool = False):
        if self.proc is None:
            return
        if kill:
            self.proc.kill()
        else:
            try:
                self.send_conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for c in (self.send_conn, self.conn):
            try:
                c.close()
            except OSError:
                pass
        self.proc = self.conn = self.send_conn = None
