"""mlp's packed GEMM against the BLAS that ships with numpy/SciPy (OpenBLAS), one thread each.

The shapes are the ones the training loop runs: forward X W, backward X^T dZ and dZ W^T, per
shard of a batch, for the benchmark networks. Both sides run single-threaded (threadpoolctl
limits OpenBLAS; mlp's kernel is single-threaded per call), so the figures compare kernels, not
thread pools. The result decides which GEMM the core uses.

    python benchmarks/bench_gemm.py
"""
from __future__ import annotations

import time

import numpy as np
from threadpoolctl import threadpool_limits

from mlp import _core

# (label, m, k, n, trans_a, trans_b)
SHAPES = [
    ("digits fwd 50x64 @ 64x100", 50, 64, 100, False, False),
    ("digits dW 64x50 @ 50x100", 64, 50, 100, True, False),
    ("reg fwd 50x64 @ 64x64", 50, 64, 64, False, False),
    ("reg dX 50x64 @ 64x64^T", 50, 64, 64, False, True),
    ("wide fwd 128x784 @ 784x256", 128, 784, 256, False, False),
    ("wide dW 784x128 @ 128x256", 784, 128, 256, True, False),
    ("wide dX 128x256 @ 256x128^T", 128, 256, 128, False, True),
    ("predict 256x784 @ 784x256", 256, 784, 256, False, False),
    ("square 1024", 1024, 1024, 1024, False, False),
]


def best_time(fn, min_seconds=0.2):
    fn()
    reps, elapsed = 1, 0.0
    while True:
        t = time.perf_counter()
        for _ in range(reps):
            fn()
        elapsed = time.perf_counter() - t
        if elapsed > min_seconds:
            return elapsed / reps
        reps *= 4


def main():
    rng = np.random.default_rng(0)
    print(f"mlp kernel: {_core.gemm_name()}; float32, one thread each; GFLOP/s (higher is better)")
    print(f"{'shape':32s}{'mlp':>9s}{'OpenBLAS':>10s}{'winner':>10s}")
    with threadpool_limits(1):
        for label, m, k, n, ta, tb in SHAPES:
            a = rng.standard_normal((k, m) if ta else (m, k), dtype=np.float32)
            b = rng.standard_normal((n, k) if tb else (k, n), dtype=np.float32)
            opa, opb = (a.T if ta else a), (b.T if tb else b)
            ours = best_time(lambda: _core.gemm(a, b, ta, tb))
            blas = best_time(lambda: opa @ opb)
            flops = 2 * m * k * n
            g_ours, g_blas = flops / ours / 1e9, flops / blas / 1e9
            print(f"{label:32s}{g_ours:9.1f}{g_blas:10.1f}{'mlp' if g_ours >= g_blas else 'OpenBLAS':>10s}")


if __name__ == "__main__":
    main()
