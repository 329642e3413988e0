"""Ctrl-C during a native fit: the C++ loop notices within a few batches, raises
KeyboardInterrupt in Python, and leaves a model that predicts and can keep training.

Python itself raises KeyboardInterrupt between two calls into C++, so a fit of many short epochs
would stop promptly even if the C++ loop never looked at the signal. Each test here therefore
interrupts a single epoch sized to last 10 s or more (timed on this machine first), 0.3 s into
it: only the C++ loop's own check of the signal can stop it within a second, and the batches it
ran must be fewer than the epoch's.
"""
import time

import numpy as np
import pytest

from mlp import Dense, Model, _core

LONG_EPOCH_S = 10.0   # the interrupted epoch would last at least this long
NOTICED_WITHIN_S = 1.0


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _long_fit_setup(rows):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, 16)).astype(np.float32)
    y = np.tanh(x[:, :4].sum(axis=1, keepdims=True)).astype(np.float32)
    inputs = Dense(256, input_size=16, activation="relu", seed=0)
    outputs = Dense(1, seed=1)(Dense(256, activation="relu", seed=2)(inputs))
    model = Model(inputs, outputs)
    model.compile("mse")
    return model, x, y


def test_keyboard_interrupt_stops_one_long_model_epoch_within_a_second(interrupt_after, rows_for_seconds):
    model, x, y = _long_fit_setup(500)
    rows = rows_for_seconds(LONG_EPOCH_S, lambda n: _timed(
        lambda: model.fit(x[:n], y[:n], 1, 1e-6, batch_size=1, progress=False)))
    model, x, y = _long_fit_setup(rows)
    assert model.native
    timer = interrupt_after(0.3)
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, 1, 0.001, batch_size=1, progress=False)  # one epoch of `rows` batches
    noticed = time.perf_counter() - timer.fired
    assert noticed < NOTICED_WITHIN_S, f"the fit took {noticed:.2f} s to notice Ctrl-C"
    assert 0 < model._net.step < rows  # stopped inside the epoch, after some batches
    pred = model.predict(x[:100])
    assert pred.shape == (100, 1) and np.isfinite(pred).all()
    assert np.isfinite(model.fit(x[:256], y[:256], 1, 0.001, progress=False))


def test_keyboard_interrupt_in_network_train_epoch_keeps_finished_batches(interrupt_after, rows_for_seconds):
    net = _core.Network([8, 256, 256, 1], [_core.ActivationKind.TANH] * 2 + [_core.ActivationKind.IDENTITY],
                        [0.0] * 3, _core.LossKind.MSE, 1.0, "float64")
    rng = np.random.default_rng(1)
    net.params[...] = rng.standard_normal(net.n_params) * 0.05
    net.set_optimizer(_core.OptimizerKind.SGD)
    x = rng.standard_normal((500, 8))
    y = rng.standard_normal((500, 1))
    rows = rows_for_seconds(LONG_EPOCH_S, lambda n: _timed(
        lambda: net.train_epoch(x[:n], y[:n], None, 1, True, 1e-6)))
    x = rng.standard_normal((rows, 8))
    y = rng.standard_normal((rows, 1))
    before, step0 = net.params.copy(), net.step
    timer = interrupt_after(0.3)
    with pytest.raises(KeyboardInterrupt):
        net.train_epoch(x, y, None, 1, True, 1e-4)  # a single call: `rows` batches of one row
    noticed = time.perf_counter() - timer.fired
    assert noticed < NOTICED_WITHIN_S, f"train_epoch took {noticed:.2f} s to notice Ctrl-C"
    assert 0 < net.step - step0 < rows  # some batches were applied and kept, not all
    assert np.isfinite(net.params).all() and not np.array_equal(net.params, before)
    assert net.predict(x[:5]).shape == (5, 1)
