"""One thread against two, on an idle core pair and with a core held by another process.

The figures of docs/performance.md's "Shards" section: case 2 of bench_fit.py (regression
100000x20, hidden (64, 64), Adam, batch 200, float32) trained with n_threads=1, n_threads=2 and
n_threads=None (auto), first on two idle CPUs, then while a busy-loop process holds the second
of them. The script pins itself (and so its OpenMP threads) to the two CPUs before mlp loads.
Each figure is the median ms per epoch of --repeats fits of --epochs epochs.

    python benchmarks/bench_threads.py
    python benchmarks/bench_threads.py --quick      # fewer rows and fits (a smoke run)
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import warnings

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2:
        print("bench_threads.py needs two CPUs and sched_setaffinity (Linux)")
        return 1
    cpus = sorted(os.sched_getaffinity(0))[:2]
    os.sched_setaffinity(0, set(cpus))
    os.environ["OMP_NUM_THREADS"] = "2"

    from sklearn.datasets import make_regression

    import mlp
    from mlp import MLPRegressor

    n = 20000 if args.quick else 100000
    repeats = 2 if args.quick else args.repeats
    X, y = make_regression(n_samples=n, n_features=20, noise=1.0, random_state=0)
    X, y = X.astype(np.float32), ((y - y.mean()) / y.std()).astype(np.float32)
    info = mlp.build_info()
    print(f"mlp {info['version']}, {info['simd']} kernels, CPUs {cpus}; regression {n}x20, "
          f"hidden (64, 64), Adam, batch 200, {args.epochs} epochs, median of {repeats} fits")

    def ms_per_epoch(n_threads):
        times = []
        for _ in range(repeats):
            est = MLPRegressor(hidden_layer_sizes=(64, 64), solver="adam", batch_size=200,
                               max_iter=args.epochs, tol=0.0, n_iter_no_change=10**9,
                               random_state=0, n_threads=n_threads)
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est.fit(X, y)
            times.append((time.perf_counter() - start) / args.epochs * 1e3)
        return statistics.median(times), est._net.last_threads

    print(f"{'':28s}{'1 thread':>10s}{'2 threads':>11s}{'auto':>8s}  (auto's last choice)")
    for label, busy_cpu in (("idle", None), (f"CPU {cpus[1]} held by a busy loop", cpus[1])):
        busy = None
        if busy_cpu is not None:
            busy = subprocess.Popen([sys.executable, "-c",
                                     f"import os\nos.sched_setaffinity(0, {{{busy_cpu}}})\nwhile True: pass"])
            time.sleep(0.5)
        try:
            one, _ = ms_per_epoch(1)
            two, _ = ms_per_epoch(2)
            auto, chosen = ms_per_epoch(None)
        finally:
            if busy is not None:
                busy.kill()
                busy.wait()
        print(f"{label:28s}{one:8.1f}ms{two:9.1f}ms{auto:6.1f}ms  ({chosen} thread{'s' * (chosen != 1)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
