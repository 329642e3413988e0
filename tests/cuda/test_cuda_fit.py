"""Whole fits on CUDA against the same fits on the CPU: same initial weights, same seed, so the
same batches in the same order (both use the core's epoch_order). Per-epoch losses must agree
within float32 (or float64) tolerance; then the GPU-trained model must predict, pickle, save and
move to the CPU like any other.
"""
from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

import mlp
from mlp import Adam, Dense, Model, _core

RTOL = {"float32": 1e-4, "float64": 1e-10}

# name: (hidden layers [(width, activation)], output activation, loss, optimizer)
CASES = {
    "relu-softmax-cce-adam": ([(32, "relu"), (16, "relu")], "softmax", "categorical_cross_entropy", "adam"),
    "tanh-sigmoid-bce-momentum": ([(24, "tanh")], "sigmoid", "binary_cross_entropy", "momentum"),
    "swish-elu-mse-nesterov": ([(20, "swish"), (12, "elu")], "linear", "mse", "nesterov"),
    "leaky-sigmoid-mse-sgd": ([(16, "leaky_relu")], "sigmoid", "mse", "sgd"),
    "gelu-mish-selu-softmax-cce-adam": ([(24, "gelu"), (16, "mish"), (12, "selu")], "softmax",
                                        "categorical_cross_entropy", "adam"),
    "gelu_tanh-mse-momentum": ([(20, "gelu_tanh")], "gelu_tanh", "mse", "momentum"),
}


def dataset(n=500, features=12, classes=4, seed=0):
    r = np.random.default_rng(seed)
    x = r.standard_normal((n, features))
    labels = (x[:, :classes] + 0.3 * r.standard_normal((n, classes))).argmax(1)
    return x, labels


def targets(case, labels, classes=4):
    _, out_act, loss, _ = CASES[case]
    if loss == "categorical_cross_entropy":
        return np.eye(classes)[labels]
    if loss == "binary_cross_entropy":
        return (labels[:, None] % 2 == 0).astype(float)
    return np.stack([labels / classes, (labels % 2).astype(float)], axis=1)


def build(case, n_in, n_out, device, dtype):
    hidden, out_act, loss, optimizer = CASES[case]
    np.random.seed(0)  # the same initial weights for every device
    inputs = layer = Dense(input_size=n_in, output_size=hidden[0][0], activation=hidden[0][1])
    for width, act in hidden[1:]:
        layer = Dense(output_size=width, activation=act)(layer)
    outputs = Dense(output_size=n_out, activation=out_act)(layer)
    model = Model(inputs, outputs)
    model.compile(loss_fn=loss, optimizer=optimizer, dtype=dtype, device=device)
    return model


def weights(model):
    return [np.array(a) for layer in model.layers for a in (layer.weights, layer.bias)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("batch_size, shuffle", [(32, True), (50, True), (64, False), (500, False)])
def test_model_fit_matches_the_cpu(dtype, case, batch_size, shuffle):
    x, labels = dataset()
    y = targets(case, labels)
    lr = 0.01 if CASES[case][3] == "adam" else 0.05
    cpu = build(case, x.shape[1], y.shape[1], "cpu", dtype)
    gpu = build(case, x.shape[1], y.shape[1], "cuda", dtype)
    assert gpu.device == "cuda:0" and cpu.device == "cpu"
    for model in (cpu, gpu):
        model.fit(x, y, 6, lr, batch_size=batch_size, shuffle=shuffle, seed=7, validation_data=(x[:50], y[:50]))
    np.testing.assert_allclose(gpu.history["loss"], cpu.history["loss"], rtol=RTOL[dtype],
                               err_msg=f"{case}: per-epoch training loss, GPU vs CPU")
    np.testing.assert_allclose(gpu.history["val_loss"], cpu.history["val_loss"], rtol=RTOL[dtype],
                               err_msg=f"{case}: per-epoch validation loss, GPU vs CPU")
    scale = 10 * RTOL[dtype]
    np.testing.assert_allclose(gpu.predict(x), cpu.predict(x), rtol=scale, atol=scale,
                               err_msg=f"{case}: predictions after the fit")


def test_a_gpu_trained_model_predicts_pickles_saves_and_moves(tmp_path):
    x, labels = dataset()
    y = targets("relu-softmax-cce-adam", labels)
    model = build("relu-softmax-cce-adam", x.shape[1], y.shape[1], "cuda", "float32")
    model.fit(x, y, 3, 0.01, seed=1)
    on_gpu = model.predict(x)
    # The Dense layers' arrays are the network's host copy, current after every call.
    manual = x.astype(np.float32)
    for layer in model.layers:
        manual = manual @ layer.weights + layer.bias
        manual = np.maximum(manual, 0) if layer is not model.layers[-1] else manual
    manual = np.exp(manual - manual.max(1, keepdims=True))
    np.testing.assert_allclose(on_gpu, manual / manual.sum(1, keepdims=True), rtol=1e-4, atol=1e-6)

    restored = pickle.loads(pickle.dumps(model))
    assert restored.device == "cpu"
    np.testing.assert_allclose(restored.predict(x), on_gpu, rtol=1e-4, atol=1e-6)
    model.save(tmp_path / "m.mlp")
    loaded = mlp.load(tmp_path / "m.mlp")
    assert loaded.device == "cpu"
    np.testing.assert_allclose(loaded.predict(x), on_gpu, rtol=1e-4, atol=1e-6)

    # Moving keeps the weights and the optimizer state: training goes on where it stopped.
    twin = pickle.loads(pickle.dumps(model))
    assert model.to("cpu") is model and model.device == "cpu"
    np.testing.assert_allclose(model.predict(x), on_gpu, rtol=1e-4, atol=1e-6)
    model.to("cuda")
    assert model.device == "cuda:0"
    model.fit(x, y, 2, 0.01, seed=5)
    twin.fit(x, y, 2, 0.01, seed=5)
    np.testing.assert_allclose(model.history["loss"], twin.history["loss"], rtol=1e-4)


def test_data_changed_in_place_between_fits_is_uploaded_again():
    x, labels = dataset()
    y = targets("leaky-sigmoid-mse-sgd", labels)
    x = x.astype(np.float32)  # already the network's dtype: fit passes this very array
    cpu = build("leaky-sigmoid-mse-sgd", x.shape[1], y.shape[1], "cpu", "float32")
    gpu = build("leaky-sigmoid-mse-sgd", x.shape[1], y.shape[1], "cuda", "float32")
    for model in (cpu, gpu):
        model.fit(x, y, 2, 0.05, seed=1)
    x *= 2.0
    for model in (cpu, gpu):
        model.fit(x, y, 2, 0.05, seed=2)
    np.testing.assert_allclose(gpu.history["loss"], cpu.history["loss"], rtol=1e-4)


def test_divergence_stops_with_finite_weights_as_on_the_cpu():
    x, labels = dataset()
    y = targets("swish-elu-mse-nesterov", labels) * 1e3
    for device in ("cpu", "cuda"):
        model = build("swish-elu-mse-nesterov", x.shape[1], y.shape[1], device, "float32")
        with pytest.raises(FloatingPointError, match="non-finite"):
            model.fit(x, y, 50, 1e3, batch_size=16, seed=0)
        assert all(np.isfinite(w).all() for w in weights(model)), device


def test_tf32_fit_is_close():
    x, labels = dataset()
    y = targets("relu-softmax-cce-adam", labels)
    cpu = build("relu-softmax-cce-adam", x.shape[1], y.shape[1], "cpu", "float32")
    cpu.fit(x, y, 3, 0.01, seed=1)
    _core.cuda_set_tf32(True)
    gpu = build("relu-softmax-cce-adam", x.shape[1], y.shape[1], "cuda", "float32")
    gpu.fit(x, y, 3, 0.01, seed=1)
    np.testing.assert_allclose(gpu.history["loss"], cpu.history["loss"], rtol=2e-2)


@pytest.mark.parametrize("lt", [True, False], ids=["cublaslt-epilogue", "gemm+kernel"])
def test_fit_without_the_cublaslt_epilogues(lt):
    _core.cuda_set_lt_epilogues(lt)
    x, labels = dataset()
    y = targets("relu-softmax-cce-adam", labels)
    cpu = build("relu-softmax-cce-adam", x.shape[1], y.shape[1], "cpu", "float32")
    gpu = build("relu-softmax-cce-adam", x.shape[1], y.shape[1], "cuda", "float32")
    for model in (cpu, gpu):
        model.fit(x, y, 3, 0.01, seed=1)
    np.testing.assert_allclose(gpu.history["loss"], cpu.history["loss"], rtol=1e-4)


# --- the core Network directly: sample weights, L2, chunked loss_and_grad and predict -------------

def core_pair(sizes, acts, loss, scale, dtype="float32", seed=0):
    nets = []
    r = np.random.default_rng(seed)
    for device in (-1, 0):
        net = _core.Network(sizes, acts, [0.01 if a == _core.ActivationKind.LEAKY_RELU else 0.0 for a in acts],
                            loss, scale, dtype)
        nets.append(net)
    params = r.standard_normal(nets[0].n_params) * 0.3
    for net, device in zip(nets, (-1, 0)):
        net.params[...] = params
        net.set_l2(1e-3, True)
        net.set_optimizer(_core.OptimizerKind.ADAM)
        net.set_seed(11)
        net.to_device(device)
    return nets


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_core_train_epoch_with_sample_weights_and_l2(dtype):
    A = _core.ActivationKind
    cpu, gpu = core_pair([7, 33, 3], [A.TANH, A.SOFTMAX], _core.LossKind.CATEGORICAL_CROSS_ENTROPY, 1.0, dtype)
    assert gpu.device == "cuda:0"
    r = np.random.default_rng(1)
    x = r.standard_normal((1001, 7)).astype(dtype)
    y = np.eye(3, dtype=dtype)[r.integers(0, 3, 1001)]
    sw = r.uniform(0.2, 2.0, 1001).astype(dtype)
    for epoch in range(4):
        lc = cpu.train_epoch(x, y, sw, 64, True, 0.01)
        lg = gpu.train_epoch(x, y, sw, 64, True, 0.01)
        np.testing.assert_allclose(lg, lc, rtol=RTOL[dtype], err_msg=f"epoch {epoch} loss")
    gpu.release_data()
    assert gpu.step == cpu.step
    np.testing.assert_allclose(gpu.params, cpu.params, rtol=1e-3 if dtype == "float32" else 1e-9,
                               atol=1e-5 if dtype == "float32" else 1e-12)
    for a, b in zip(gpu.optimizer_state(), cpu.optimizer_state()):
        np.testing.assert_allclose(a, b, rtol=1e-3 if dtype == "float32" else 1e-9, atol=1e-7)


def test_core_loss_and_grad_over_several_chunks_and_predict():
    A = _core.ActivationKind
    cpu, gpu = core_pair([5, 8, 2], [A.RELU, A.IDENTITY], _core.LossKind.MSE, 0.25, "float64")
    r = np.random.default_rng(2)
    n = 150_000  # more rows than one device chunk holds
    x = r.standard_normal((n, 5))
    y = r.standard_normal((n, 2))
    sw = r.uniform(0.5, 1.5, n)
    lc, gc = cpu.loss_and_grad(x, y, sw)
    lg, gg = gpu.loss_and_grad(x, y, sw)
    np.testing.assert_allclose(lg, lc, rtol=1e-10)
    np.testing.assert_allclose(gg, gc, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gpu.loss(x, y, None), cpu.loss(x, y, None), rtol=1e-10)
    np.testing.assert_allclose(gpu.predict(x), cpu.predict(x), rtol=1e-10, atol=1e-12)
    gpu.release_data()
    gpu.to_device(-1)
    assert gpu.device == "cpu"
    np.testing.assert_array_equal(gpu.predict(x[:10]), cpu.predict(x[:10]))


# --- the estimators --------------------------------------------------------------------------

def estimator_pair(cls, **params):
    pytest.importorskip("sklearn")
    est = getattr(mlp, cls)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning of the short fits
        return est(device="cpu", **params), est(device="cuda", **params)


@pytest.mark.parametrize("params", [
    dict(solver="adam", alpha=1e-3, max_iter=8),
    dict(solver="sgd", momentum=0.9, nesterovs_momentum=True, learning_rate_init=0.05, max_iter=8),
    dict(solver="adam", early_stopping=True, max_iter=8, n_iter_no_change=50),
    dict(solver="lbfgs", max_iter=30),
], ids=["adam-l2", "nesterov", "early-stopping", "lbfgs"])
@pytest.mark.parametrize("cls", ["MLPClassifier", "MLPRegressor"])
def test_estimators_match_the_cpu(cls, params):
    x, labels = dataset(n=400)
    y = labels if cls == "MLPClassifier" else labels / 4.0
    sw = np.random.default_rng(3).uniform(0.5, 2.0, len(y))
    cpu, gpu = estimator_pair(cls, hidden_layer_sizes=(24, 12), random_state=0, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cpu.fit(x, y, sample_weight=sw)
        gpu.fit(x, y, sample_weight=sw)
    assert gpu._device == "cuda:0"
    if params["solver"] == "lbfgs":  # many iterations of a quasi-Newton method: compare loosely
        assert abs(gpu.loss_ - cpu.loss_) <= 1e-3 * abs(cpu.loss_) + 1e-6
    else:
        np.testing.assert_allclose(gpu.loss_curve_, cpu.loss_curve_, rtol=1e-4)
        np.testing.assert_allclose(gpu.predict(x), cpu.predict(x), rtol=1e-3, atol=1e-4)
    restored = pickle.loads(pickle.dumps(gpu))
    np.testing.assert_allclose(restored.predict(x), gpu.predict(x), rtol=1e-4, atol=1e-5)
