"""The CUDA backend's failures, lifetimes, threads and scale, on a GPU:

- the fused cuBLASLt paths really run in a fit (counted by mlp._core.cuda_stats), and the
  debug-sync mode (MLP_CUDA_SYNC=1) gives the same results;
- out of memory is a MemoryError naming the bytes, and the network stays usable;
- the device copy of the weights and optimizer state stays resident between calls, and Python's
  assignments between epochs still reach the device;
- cuda:1 while device 0 is current; two threads on one network; two networks in parallel;
  100 compile/fit/delete cycles with the device memory flat; Ctrl-C mid-epoch;
- batches of 8192 and more, 1024-wide layers, chunked full batches and the benchmark's shapes;
  unshuffled batches at odd offsets; poisson, multi-output BCE and sample weights;
- two identical fits bit for bit.
Every comparison is against the CPU backend, from the same weights and seed.
"""
from __future__ import annotations

import _thread
import gc
import threading
import time

import numpy as np
import pytest

import mlp
from mlp import _core

A = _core.ActivationKind
LK = _core.LossKind
O = _core.OptimizerKind
RTOL = {"float32": 1e-4, "float64": 1e-10}


def dataset(n=600, features=12, classes=4, seed=0):
    r = np.random.default_rng(seed)
    x = r.standard_normal((n, features))
    labels = (x[:, :classes] + 0.3 * r.standard_normal((n, classes))).argmax(1)
    return x, np.eye(classes)[labels]


def relu_model(n_in, n_out, device, dtype="float32", hidden=(32, 16), out_act="softmax",
               loss="categorical_cross_entropy", optimizer="adam"):
    np.random.seed(0)  # the same initial weights for every device
    inputs = layer = mlp.Dense(input_size=n_in, output_size=hidden[0], activation="relu")
    for width in hidden[1:]:
        layer = mlp.Dense(output_size=width, activation="relu")(layer)
    model = mlp.Model(inputs, mlp.Dense(output_size=n_out, activation=out_act)(layer))
    model.compile(loss_fn=loss, optimizer=optimizer, dtype=dtype, device=device)
    return model


def twins(*args, **kwargs):
    return relu_model(*args, device="cpu", **kwargs), relu_model(*args, device="cuda", **kwargs)


def core_net(sizes, acts, loss, dtype, device, params, optimizer=O.ADAM, seed=11):
    net = _core.Network(sizes, acts, [0.0] * len(acts), loss, 1.0, dtype)
    net.params[...] = params
    net.set_optimizer(optimizer)
    net.set_seed(seed)
    net.to_device(device)
    return net


def core_twins(sizes, acts, loss, dtype="float64", seed=0, **kw):
    r = np.random.default_rng(seed)
    n = _core.Network(sizes, acts, [0.0] * len(acts), loss, 1.0, dtype).n_params
    params = r.standard_normal(n) * 0.3
    return core_net(sizes, acts, loss, dtype, -1, params, **kw), core_net(sizes, acts, loss, dtype, 0, params, **kw)


# --- the fused paths run, and are counted ---------------------------------------------------------

def test_a_fit_runs_the_fused_epilogues_and_counts_its_launches(stats):
    x, y = dataset()
    model = relu_model(12, 4, "cuda")
    n_layers, batch, epochs = 3, 50, 2
    model.fit(x, y, epochs, 0.01, batch_size=batch, seed=1, progress=False)
    s = stats()
    steps = epochs * -(-len(x) // batch)
    # Every dense forward of every batch ran its bias (+ReLU) in the cuBLASLt epilogue.
    assert s["epilogue_fallbacks"] == 0, s["last_fallback"]
    assert s["epilogue_runs"] == steps * n_layers, s
    # Every dense backward: the bias gradient in the dW GEMM, or a counted fallback with its reason.
    assert s["bgrad_runs"] + s["bgrad_fallbacks"] == steps * n_layers, s
    assert s["bgrad_fallbacks"] == 0 or s["last_fallback"], s
    assert s["launches"] > steps and s["lt_plans"] >= 2
    # The second epoch found the weights and optimizer state on the device already.
    assert s["resident_hits"] >= 3, s


def test_the_epilogues_off_run_none():
    _core.cuda_set_lt_epilogues(False)
    _core.cuda_reset_stats()
    x, y = dataset()
    relu_model(12, 4, "cuda").fit(x, y, 1, 0.01, batch_size=64, seed=1, progress=False)
    s = _core.cuda_stats()
    assert s["epilogue_runs"] == s["epilogue_fallbacks"] == s["bgrad_runs"] == s["bgrad_fallbacks"] == 0, s


def test_debug_sync_mode_gives_the_same_fit():
    x, y = dataset()
    plain = relu_model(12, 4, "cuda")
    plain.fit(x, y, 2, 0.01, batch_size=32, seed=3, progress=False)
    _core.cuda_set_sync(True)
    assert _core.cuda_sync()
    synced = relu_model(12, 4, "cuda")
    synced.fit(x, y, 2, 0.01, batch_size=32, seed=3, progress=False)
    _core.cuda_set_sync(False)
    assert synced.history == plain.history
    np.testing.assert_array_equal(synced._net.params, plain._net.params)


# --- out of memory --------------------------------------------------------------------------------

def test_out_of_memory_is_a_memory_error_and_the_network_stays_usable():
    x, y = dataset()
    cpu, gpu = twins(12, 4)
    for m in (cpu, gpu):
        m.fit(x, y, 1, 0.01, batch_size=32, seed=1, progress=False)
    big_x, big_y = dataset(n=200_000, seed=5)
    held = _core.cuda_stats()["device_bytes"]
    _core.cuda_set_alloc_limit(held + (1 << 20))  # no room for the new data
    with pytest.raises(MemoryError, match=r"out of memory: asked for .* \(\d+ bytes\) for the training data"):
        gpu.fit(big_x, big_y, 1, 0.01, batch_size=32, seed=2, progress=False)
    _core.cuda_set_alloc_limit(0)
    # Nothing of the refused call stays: both go on from the same state.
    for m in (cpu, gpu):
        m.fit(x, y, 2, 0.01, batch_size=32, seed=2, progress=False)
    np.testing.assert_allclose(gpu.history["loss"], cpu.history["loss"], rtol=RTOL["float32"])
    np.testing.assert_allclose(gpu.predict(x), cpu.predict(x), rtol=1e-3, atol=1e-4)


def test_out_of_memory_for_the_scratch_leaves_the_network_usable():
    x, y = dataset()
    cpu, gpu = twins(12, 4)
    for m in (cpu, gpu):
        m.fit(x, y, 1, 0.01, batch_size=16, seed=1, progress=False)
    # Room for the data (38 KB) but not for the scratch of 600-row batches (over 150 KB).
    _core.cuda_set_alloc_limit(_core.cuda_stats()["device_bytes"] + (64 << 10))
    with pytest.raises(MemoryError, match=r"bytes\) for (the batch input|the backward scratch|a layer's)"):
        gpu.fit(x, y, 1, 0.01, batch_size=600, seed=2, progress=False)  # a larger batch: more scratch
    _core.cuda_set_alloc_limit(0)
    for m in (cpu, gpu):
        m.fit(x, y, 2, 0.01, batch_size=600, seed=2, progress=False)
        m.fit(x, y, 1, 0.01, batch_size=16, seed=3, progress=False)
    np.testing.assert_allclose(gpu.history["loss"], cpu.history["loss"], rtol=RTOL["float32"])


# --- residency --------------------------------------------------------------------------------------

def test_weights_and_state_assigned_between_epochs_reach_the_device():
    x, y = dataset()
    cpu, gpu = twins(12, 4)
    r = np.random.default_rng(9)
    new_w = r.standard_normal(cpu.layers[1].weights.shape) * 0.1
    for m in (cpu, gpu):
        m.fit(x, y, 1, 0.01, batch_size=32, seed=1, progress=False)
        m.layers[1].weights = new_w  # a view into the host network's parameters
        m.fit(x, y, 1, 0.01, batch_size=32, seed=2, progress=False)
        m._net.params[:5] = 0.25
        state = [s * 0.5 for s in m._net.optimizer_state()]
        m._net.set_optimizer_state(state, m._net.step)
        m.fit(x, y, 2, 0.01, batch_size=32, seed=3, progress=False)
    np.testing.assert_allclose(gpu.history["loss"], cpu.history["loss"], rtol=RTOL["float32"])
    np.testing.assert_allclose(gpu._net.params, cpu._net.params, rtol=1e-3, atol=1e-5)


def test_a_cpu_roundtrip_between_fits_is_seen():
    x, y = dataset()
    cpu, gpu = twins(12, 4)
    for m in (cpu, gpu):
        m.fit(x, y, 1, 0.01, batch_size=32, seed=1, progress=False)
    gpu.to("cpu")
    for m in (cpu, gpu):
        m.fit(x, y, 1, 0.01, batch_size=32, seed=2, progress=False)
    gpu.to("cuda")
    for m in (cpu, gpu):
        m.fit(x, y, 1, 0.01, batch_size=32, seed=3, progress=False)
    np.testing.assert_allclose(gpu.history["loss"], cpu.history["loss"], rtol=RTOL["float32"])


# --- devices, threads, lifetimes ---------------------------------------------------------------

@pytest.mark.skipif(_core.cuda_device_count() == 1, reason="needs two CUDA devices (one is visible)")
def test_cuda_1_while_device_0_is_current():
    x, y = dataset()
    assert _core.cuda_current_device() == 0
    cpu = relu_model(12, 4, "cpu")
    gpu = relu_model(12, 4, "cuda:1")
    assert gpu.device == "cuda:1"
    for m in (cpu, gpu):
        m.fit(x, y, 2, 0.01, batch_size=32, seed=1, progress=False)
    assert _core.cuda_current_device() == 0  # every call restores the caller's device
    np.testing.assert_allclose(gpu.history["loss"], cpu.history["loss"], rtol=RTOL["float32"])
    np.testing.assert_allclose(gpu.predict(x), cpu.predict(x), rtol=1e-3, atol=1e-4)
    del gpu
    gc.collect()
    assert _core.cuda_current_device() == 0


def run_threads(fns):
    errors = []

    def wrap(fn):
        try:
            fn()
        except Exception as e:
            errors.append(repr(e))

    threads = [threading.Thread(target=wrap, args=(fn,)) for fn in fns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_two_threads_on_one_network():
    """Calls on one network are serialized: two threads of 3 epochs each make 6 epochs, as 6 in a
    row on the CPU (every epoch has the same data; each takes the generator's next order)."""
    cpu, gpu = core_twins([7, 24, 3], [A.TANH, A.SOFTMAX], LK.CATEGORICAL_CROSS_ENTROPY)
    r = np.random.default_rng(1)
    x = r.standard_normal((1000, 7))
    y = np.eye(3)[r.integers(0, 3, 1000)]
    for _ in range(6):
        cpu.train_epoch(x, y, None, 50, True, 0.01)

    def three():
        for _ in range(3):
            gpu.train_epoch(x, y, None, 50, True, 0.01)
            gpu.predict(x[:10])

    run_threads([three, three])
    assert gpu.step == cpu.step
    np.testing.assert_allclose(gpu.params, cpu.params, rtol=1e-9, atol=1e-12)


def test_two_networks_in_parallel():
    pairs = [core_twins([7, 24, 3], [A.RELU, A.SOFTMAX], LK.CATEGORICAL_CROSS_ENTROPY, seed=s) for s in (0, 1)]
    r = np.random.default_rng(2)
    x = r.standard_normal((2000, 7))
    y = np.eye(3)[r.integers(0, 3, 2000)]
    for cpu, _ in pairs:
        for _ in range(4):
            cpu.train_epoch(x, y, None, 32, True, 0.01)
    run_threads([lambda g=g: [g.train_epoch(x, y, None, 32, True, 0.01) for _ in range(4)] for _, g in pairs])
    for cpu, gpu in pairs:
        np.testing.assert_allclose(gpu.params, cpu.params, rtol=1e-9, atol=1e-12)


def test_100_compile_fit_delete_cycles_keep_the_device_memory_flat():
    x, y = dataset(n=256)

    def cycle():
        model = relu_model(12, 4, "cuda")
        model.fit(x, y, 1, 0.01, batch_size=64, seed=1, progress=False)
        model.predict(x)
        del model
        gc.collect()

    for _ in range(5):  # warm-up: the runtime's and cuBLAS's own first allocations
        cycle()
    held = _core.cuda_stats()["device_bytes"]
    free0 = _core.cuda_mem_info(0)[0]
    for _ in range(100):
        cycle()
    assert _core.cuda_stats()["device_bytes"] == held, "mlp holds more device memory after the cycles"
    free1 = _core.cuda_mem_info(0)[0]
    assert free0 - free1 < 64 << 20, f"cudaMemGetInfo: {(free0 - free1) / 2**20:.1f} MiB less free after 100 cycles"


def test_ctrl_c_mid_epoch_stops_quickly_and_leaves_a_usable_model():
    r = np.random.default_rng(0)
    x = r.standard_normal((20000, 32)).astype(np.float32)
    y = np.tanh(x[:, :4].sum(axis=1, keepdims=True)).astype(np.float32)
    model = relu_model(32, 1, "cuda", hidden=(64, 64), out_act="linear", loss="mse")
    timer = threading.Timer(0.5, _thread.interrupt_main)
    timer.start()
    start = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, 1000, 0.001, batch_size=1, progress=False)  # 20000 batches an epoch
    elapsed = time.perf_counter() - start
    timer.join()
    assert elapsed < 5.0, f"the fit took {elapsed:.2f} s to notice Ctrl-C"
    assert model._net.step > 0
    assert all(np.isfinite(layer.weights).all() for layer in model.layers)
    pred = model.predict(x[:100])
    assert pred.shape == (100, 1) and np.isfinite(pred).all()
    assert np.isfinite(model.fit(x[:256], y[:256], 1, 0.001, progress=False))


def test_divergence_stops_queueing_the_epoch(stats):
    x, y = dataset(n=4000)
    for device in ("cpu", "cuda"):
        model = relu_model(12, 4, device, loss="mse", out_act="linear", optimizer="sgd")
        with pytest.raises(FloatingPointError, match="non-finite"):
            model.fit(x, y * 1e6, 3, 1e6, batch_size=8, seed=0, progress=False)
        assert all(np.isfinite(layer.weights).all() for layer in model.layers), device
    assert stats()["early_stops"] >= 1


# --- scale, shapes, offsets -------------------------------------------------------------------

@pytest.mark.parametrize("n, features, hidden, classes, batch, epochs", [
    (20000, 64, (1024, 1024), 10, 8192, 2),        # batch >= 8192, 1024-wide layers
    (20000, 64, (1024, 1024), 10, 20000, 2),       # a full batch larger than one device chunk
    (20000, 64, (64, 64, 64, 64), 1, 4096, 3),     # the benchmark's case (a)
    (4096, 784, (1024, 1024), 10, 1024, 2),        # the benchmark's case (b)
], ids=["batch8192-1024wide", "full-batch-chunked", "bench-a", "bench-b"])
def test_large_batches_and_wide_layers_match_the_cpu(n, features, hidden, classes, batch, epochs):
    r = np.random.default_rng(4)
    x = r.standard_normal((n, features)).astype(np.float32)
    if classes == 1:
        y = np.sin(x[:, :8].sum(1, keepdims=True)).astype(np.float32)
        kw = dict(out_act="linear", loss="mse")
    else:
        y = np.eye(classes, dtype=np.float32)[(x[:, :classes] + 0.5 * r.standard_normal((n, classes))).argmax(1)]
        kw = {}
    cpu, gpu = twins(features, classes, hidden=hidden, **kw)
    _core.cuda_reset_stats()
    for m in (cpu, gpu):
        m.fit(x, y, epochs, 1e-3, batch_size=batch, seed=1, progress=False)
    np.testing.assert_allclose(gpu.history["loss"], cpu.history["loss"], rtol=2e-3)
    np.testing.assert_allclose(gpu.predict(x[:2000]), cpu.predict(x[:2000]), rtol=1e-2, atol=1e-3)
    s = _core.cuda_stats()
    assert s["epilogue_fallbacks"] == 0, s["last_fallback"]
    if batch == n and hidden[0] == 1024:
        assert s["chunked_batches"] == epochs, s


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_unshuffled_batches_at_odd_offsets(dtype):
    """Batches of 77 rows of 7 columns start at odd element offsets: unaligned for cuBLASLt."""
    r = np.random.default_rng(5)
    x = r.standard_normal((1001, 7))
    y = np.eye(3)[r.integers(0, 3, 1001)]
    cpu, gpu = twins(7, 3, dtype=dtype, hidden=(19, 13))
    _core.cuda_reset_stats()
    for m in (cpu, gpu):
        m.fit(x, y, 3, 0.01, batch_size=77, shuffle=False, seed=1, progress=False)
    np.testing.assert_allclose(gpu.history["loss"], cpu.history["loss"], rtol=RTOL[dtype])
    s = _core.cuda_stats()
    steps, layers = 3 * 13, 3
    assert s["epilogue_runs"] + s["epilogue_fallbacks"] >= steps * layers, s


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", ["poisson", "bce-3-outputs"])
@pytest.mark.parametrize("shuffle", [True, False])
def test_poisson_and_multi_output_bce_with_sample_weights(dtype, case, shuffle):
    r = np.random.default_rng(6)
    x = r.standard_normal((900, 5)).astype(dtype)
    sw = r.uniform(0.2, 3.0, 900).astype(dtype)
    if case == "poisson":
        sizes, acts, loss = [5, 16, 2], [A.TANH, A.IDENTITY], LK.POISSON
        y = r.poisson(np.exp(0.3 * x[:, :2]), (900, 2)).astype(dtype)
    else:
        sizes, acts, loss = [5, 16, 3], [A.RELU, A.SIGMOID], LK.BINARY_CROSS_ENTROPY
        y = (r.uniform(size=(900, 3)) < 0.3 + 0.4 * (x[:, :3] > 0)).astype(dtype)
    cpu, gpu = core_twins(sizes, acts, loss, dtype)
    for epoch in range(4):
        lc = cpu.train_epoch(x, y, sw, 64, shuffle, 0.01)
        lg = gpu.train_epoch(x, y, sw, 64, shuffle, 0.01)
        np.testing.assert_allclose(lg, lc, rtol=RTOL[dtype], err_msg=f"{case} epoch {epoch}")
    np.testing.assert_allclose(gpu.loss(x, y, sw), cpu.loss(x, y, sw), rtol=RTOL[dtype])
    np.testing.assert_allclose(gpu.params, cpu.params, rtol=1e-3 if dtype == "float32" else 1e-9,
                               atol=1e-5 if dtype == "float32" else 1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_two_identical_fits_are_bit_identical(dtype):
    x, y = dataset(n=3000)
    runs = []
    for _ in range(2):
        model = relu_model(12, 4, "cuda", dtype=dtype, hidden=(64, 32))
        model.fit(x, y, 3, 0.01, batch_size=256, seed=4, progress=False)
        runs.append((model.history, model._net.params.copy(), model.predict(x)))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    np.testing.assert_array_equal(runs[0][2], runs[1][2])
