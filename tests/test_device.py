"""Device selection without a GPU: 'cpu' and 'auto' work everywhere, and asking for CUDA where it
cannot run raises a ValueError that says whether the build or the device is missing.

The CUDA kernels themselves are tested in tests/cuda/, which skips without a GPU. Here the
machine's answers (a CUDA build? how many devices?) are replaced where a test needs another one.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import mlp
from mlp import Dense, Layer, Model, _core, _device

BUILT = bool(_core.cuda_available())
X = np.random.default_rng(0).standard_normal((64, 3))
Y = (X[:, :1] > 0).astype(float)


class FakeCore:
    """What mlp._device asks of the core: whether CUDA was built, how many devices are visible."""

    def __init__(self, built, count):
        self.built, self.count = built, count

    def cuda_available(self):
        return self.built

    def cuda_device_count(self):
        return self.count


@pytest.fixture
def machine(monkeypatch):
    def set_machine(built, count):
        monkeypatch.setattr(_device, "_core", FakeCore(built, count))

    return set_machine


def small_model(device="cpu"):
    np.random.seed(0)  # the same initial weights every time
    inputs = Dense(input_size=3, output_size=8, activation="tanh")
    model = Model(inputs, Dense(output_size=1, activation="sigmoid")(inputs))
    model.compile(loss_fn="binary_cross_entropy", optimizer="adam", device=device)
    return model


# --- what the build and the machine say -------------------------------------------------------

def test_build_info_and_device_count_agree_with_the_core():
    info = mlp.build_info()
    assert info["cuda"] is BUILT
    count = mlp.cuda_device_count()
    assert isinstance(count, int) and count >= 0
    assert count == _core.cuda_device_count()
    if not BUILT:
        assert count == 0


# --- resolve_device: the rules, on every kind of machine -------------------------------------

@pytest.mark.parametrize("built, count, expected", [
    (False, 0, -1), (True, 0, -1), (True, 1, 0), (True, 4, 0)])
def test_auto_takes_the_first_gpu_or_the_cpu(machine, built, count, expected):
    machine(built, count)
    assert _device.resolve_device("auto") == expected
    assert _device.resolve_device("cpu") == -1


@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_without_a_cuda_build_names_the_build(machine, device):
    machine(False, 0)
    with pytest.raises(ValueError, match="this build of mlp has no CUDA support") as info:
        _device.resolve_device(device)
    assert f"device={device!r}" in str(info.value)
    assert "MLP_CUDA=ON" in str(info.value)


@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:1"])
def test_cuda_without_a_device_names_the_device(machine, device):
    machine(True, 0)
    with pytest.raises(ValueError, match="no CUDA device is visible") as info:
        _device.resolve_device(device)
    assert "built with CUDA" in str(info.value)


def test_cuda_ordinals(machine):
    machine(True, 2)
    assert _device.resolve_device("cuda") == 0
    assert _device.resolve_device("cuda:1") == 1
    with pytest.raises(ValueError, match=r"no such CUDA device; 2 visible \(cuda:0 to cuda:1\)"):
        _device.resolve_device("cuda:2")


@pytest.mark.parametrize("device", ["gpu", "tpu", "CUDA", "cuda:", "cuda:-1", "cuda:x", "cuda 0", ""])
def test_unknown_device_strings(device):
    with pytest.raises(ValueError, match=r"device must be 'cpu', 'cuda', 'cuda:N' or 'auto'"):
        _device.resolve_device(device)


@pytest.mark.parametrize("device", [None, 0, 1.0, ["cuda"]])
def test_device_must_be_a_string(device):
    with pytest.raises(TypeError, match="device must be a string"):
        _device.resolve_device(device)


# --- Model.compile(device=...) and Model.to ---------------------------------------------------

def test_model_on_the_cpu_and_auto_without_gpu_agree(machine):
    machine(BUILT, 0)  # whatever this machine has, 'auto' sees no GPU here
    cpu, auto = small_model("cpu"), small_model("auto")
    cpu_loss = cpu.fit(X, Y, 3, 0.01, seed=1)
    auto_loss = auto.fit(X, Y, 3, 0.01, seed=1)
    assert auto.device == "cpu" == cpu.device
    assert auto_loss == cpu_loss
    np.testing.assert_array_equal(auto.predict(X), cpu.predict(X))


@pytest.mark.skipif(BUILT, reason="this build has CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:1"])
def test_model_compile_cuda_without_cuda_build(device):
    with pytest.raises(ValueError, match="this build of mlp has no CUDA support"):
        small_model(device)


def test_model_compile_cuda_without_device(machine):
    machine(True, 0)
    with pytest.raises(ValueError, match="no CUDA device is visible"):
        small_model("cuda")


def test_model_device_before_and_after_compile():
    inputs = Dense(input_size=3, output_size=2)
    model = Model(inputs, Dense(output_size=1)(inputs))
    assert model.device == "cpu"
    with pytest.raises(ValueError, match="compile"):
        model.to("cpu")
    model.compile(loss_fn="mse")
    assert model.to("cpu") is model and model.device == "cpu"
    assert model.to("auto").device in ("cpu", "cuda:0")


class Double(Layer):
    """A user's own layer: the model trains through Python, on the CPU."""

    def forward(self, x):
        return 2 * x

    def backward(self, grad):
        return 2 * grad


def test_a_users_own_layer_runs_on_the_cpu_only(machine):
    machine(True, 1)
    inputs = Dense(input_size=3, output_size=2)
    model = Model(inputs, Double()(inputs))
    with pytest.raises(ValueError, match="user's own layer"):
        model.compile(loss_fn="mse", device="cuda")
    model.compile(loss_fn="mse", device="auto")  # falls back to the CPU
    assert model.device == "cpu" and not model.native


@pytest.mark.skipif(BUILT, reason="this build has CUDA")
def test_core_network_to_device_without_cuda_build():
    net = _core.Network([2, 3, 1], [_core.ActivationKind.RELU, _core.ActivationKind.IDENTITY], [0.0, 0.0],
                        _core.LossKind.MSE, 1.0, "float32")
    assert net.device == "cpu"
    net.to_device(-1)
    net.release_data()
    with pytest.raises(ValueError, match="no CUDA support"):
        net.to_device(0)
    assert net.device == "cpu"
    x = np.ones((4, 2), np.float32)
    assert net.predict(x).shape == (4, 1)  # still usable


@pytest.mark.skipif(BUILT, reason="this build has CUDA")
def test_cuda_ops_raise_without_cuda_build():
    a = np.ones((2, 2), np.float32)
    with pytest.raises(ValueError, match="no CUDA support"):
        _core.cuda_ops.gemm(a, a)
    with pytest.raises(ValueError, match="no CUDA support"):
        _core.cuda_device_name(0)


# --- the estimators' device= ------------------------------------------------------------------

@pytest.mark.parametrize("cls", ["MLPClassifier", "MLPRegressor"])
def test_estimator_device_errors_and_auto(machine, cls):
    pytest.importorskip("sklearn")
    est_cls = getattr(mlp, cls)
    y = Y.ravel()
    machine(False, 0)
    with pytest.raises(ValueError, match="this build of mlp has no CUDA support"):
        est_cls(hidden_layer_sizes=(4,), device="cuda", max_iter=2).fit(X, y)
    machine(True, 0)
    with pytest.raises(ValueError, match="no CUDA device is visible"):
        est_cls(hidden_layer_sizes=(4,), device="cuda:0", max_iter=2).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning after 3 iterations
        auto = est_cls(hidden_layer_sizes=(4,), device="auto", max_iter=3, random_state=0).fit(X, y)
        cpu = est_cls(hidden_layer_sizes=(4,), device="cpu", max_iter=3, random_state=0).fit(X, y)
    assert auto._device == "cpu"
    np.testing.assert_array_equal(auto.predict(X), cpu.predict(X))
