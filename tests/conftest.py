"""Shared fixtures. Append new fixtures at the end; keep this file small."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng():
    """A fresh, fixed-seed generator per test, so tests do not depend on their order."""
    return np.random.default_rng(12345)


@pytest.fixture
def make_network():
    """Factory: a native mlp._core.Network from a tests/reference.py NetSpec, with its L2 set and
    its params filled (from `params`, or drawn at scale 1/sqrt(fan_in) from `seed`)."""
    from mlp import _core

    def make(spec, dtype="float64", params=None, seed=0):
        net = _core.Network(spec.sizes, [_core.ActivationKind(a) for a in spec.activations],
                            spec.alphas, _core.LossKind(spec.loss), spec.scale, dtype)
        net.set_l2(spec.l2, spec.per_sample)
        if params is None:
            r = np.random.default_rng(seed)
            params = np.concatenate([
                np.concatenate([r.standard_normal(i * o) / np.sqrt(i), 0.1 * r.standard_normal(o)])
                for i, o in zip(spec.sizes[:-1], spec.sizes[1:])])
        net.params[:] = params
        return net

    return make


@pytest.fixture
def interrupt_after():
    """Factory: interrupt_after(seconds) makes a timer thread send the main thread a
    KeyboardInterrupt (what Ctrl-C does) after `seconds`. Returns the timer; its `fired` is the
    time.perf_counter() at which it did (None before). Every timer is joined at teardown."""
    import _thread
    import threading
    import time

    timers = []

    def start(seconds):
        def fire():
            timer.fired = time.perf_counter()
            _thread.interrupt_main()

        timer = threading.Timer(seconds, fire)
        timer.fired = None
        timers.append(timer)
        timer.start()
        return timer

    yield start
    for timer in timers:
        timer.cancel()
        timer.join()


@pytest.fixture
def rows_for_seconds():
    """rows_for_seconds(seconds, run) -> n: how many rows make one epoch of `run(n)` (which trains
    one epoch of batch size 1 on n rows and returns its duration) last at least `seconds`, with a
    margin of 2x, from the fastest of three timed epochs of 500 rows."""
    def size(seconds, run, cap=4_000_000):
        per_row = min(run(500) for _ in range(3)) / 500
        rows = int(min(cap, 2 * seconds / per_row))
        assert rows * per_row >= seconds, f"{cap} rows take only {cap * per_row:.1f} s here"
        return rows

    return size
