"""Ctrl-C during a native fit: the C++ loop notices within a few batches, raises
KeyboardInterrupt in Python, and leaves a model that predicts and can keep training."""
import _thread
import threading
import time

import numpy as np
import pytest

from mlp import Dense, Model, _core


def _long_fit_setup():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20000, 32)).astype(np.float32)
    y = np.tanh(x[:, :4].sum(axis=1, keepdims=True)).astype(np.float32)
    inputs = Dense(64, input_size=32, activation="relu", seed=0)
    outputs = Dense(1, seed=1)(Dense(64, activation="relu", seed=2)(inputs))
    model = Model(inputs, outputs)
    model.compile("mse")
    return model, x, y


def _interrupt_after(seconds):
    timer = threading.Timer(seconds, _thread.interrupt_main)
    timer.start()
    return timer


def test_keyboard_interrupt_stops_native_fit_quickly_and_model_stays_usable():
    model, x, y = _long_fit_setup()
    assert model.native
    timer = _interrupt_after(0.3)
    start = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        # batch_size=1: 20000 batches per epoch, far more than 0.3 s of work
        model.fit(x, y, 1000, 0.001, batch_size=1, progress=False)
    elapsed = time.perf_counter() - start
    timer.join()
    assert elapsed < 5.0, f"fit took {elapsed:.2f} s to notice Ctrl-C"
    pred = model.predict(x[:100])
    assert pred.shape == (100, 1) and np.isfinite(pred).all()
    assert np.isfinite(model.fit(x[:256], y[:256], 1, 0.001, progress=False))


def test_keyboard_interrupt_in_network_train_epoch_keeps_finished_batches():
    net = _core.Network([8, 16, 1], [_core.ActivationKind.TANH, _core.ActivationKind.IDENTITY], [0.0, 0.0],
                        _core.LossKind.MSE, 1.0, "float64")
    rng = np.random.default_rng(1)
    net.params[...] = rng.standard_normal(net.n_params) * 0.3
    net.set_optimizer(_core.OptimizerKind.SGD)
    x = rng.standard_normal((200000, 8))
    y = rng.standard_normal((200000, 1))
    before = net.params.copy()
    timer = _interrupt_after(0.2)
    with pytest.raises(KeyboardInterrupt):
        for _ in range(100):
            net.train_epoch(x, y, None, 1, True, 1e-4)
    timer.join()
    assert net.step > 0  # some batches were applied and kept
    assert np.isfinite(net.params).all() and not np.array_equal(net.params, before)
    assert net.predict(x[:5]).shape == (5, 1)
