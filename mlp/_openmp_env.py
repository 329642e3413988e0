"""OpenMP settings applied before the core loads (imported first by mlp/__init__.py).

The training loop synchronizes its threads two or three times per batch. libgomp's default is to
spin for a long time at each barrier; when another process holds one of the cores, the spinning
thread then burns the time slice that the thread it waits for needs, and a 1 ms epoch can take
hundreds. A short spin keeps barriers fast on an idle machine and yields the core on a busy one.
A user's own GOMP_SPINCOUNT or OMP_WAIT_POLICY always wins.
"""
import os

if "GOMP_SPINCOUNT" not in os.environ and "OMP_WAIT_POLICY" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = "20000"
