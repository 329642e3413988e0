"""Device selection without a GPU: 'cpu' and 'auto' work everywhere, and asking for CUDA where it
cannot run raises a ValueError that says whether the build or the device is missing, or what the
CUDA runtime answered when it failed.

The CUDA kernels themselves are tested in tests/cuda/, which skips without a GPU (only there: any
other runtime error fails them, and so does MLP_REQUIRE_CUDA=1). Here the machine's answers (a
CUDA build? how many devices? which error?) are replaced where a test needs another one, and
tests/cuda is run in a subprocess to check its gate.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest

import mlp
from mlp import Dense, Layer, Model, _core, _device

BUILT = bool(_core.cuda_available())
X = np.random.default_rng(0).standard_normal((64, 3))
Y = (X[:, :1] > 0).astype(float)


REPO = Path(__file__).resolve().parents[1]
NO_DEVICE = dict(error=100, error_name="cudaErrorNoDevice", error_string="no CUDA-capable device is detected",
                 driver_version=13000, runtime_version=13000)
OLD_DRIVER = dict(error=35, error_name="cudaErrorInsufficientDriver",
                  error_string="CUDA driver version is insufficient for CUDA runtime version",
                  driver_version=12020, runtime_version=13000)
NO_DRIVER = dict(OLD_DRIVER, driver_version=0)


class FakeCore:
    """What mlp._device asks of the core: whether CUDA was built, how many devices are visible,
    and what the runtime answered (cuda_device_status)."""

    def __init__(self, built, count, **status):
        self.built, self.count = built, count
        self.status = dict(built=built, count=count if built else 0, error=0, error_name="", error_string="",
                           driver_version=13000 if built else 0, runtime_version=13000 if built else 0)
        self.status.update(status)

    def cuda_available(self):
        return self.built

    def cuda_device_count(self):
        return self.count

    def cuda_device_status(self):
        return dict(self.status)


@pytest.fixture
def machine(monkeypatch):
    def set_machine(built, count, **status):
        monkeypatch.setattr(_device, "_core", FakeCore(built, count, **status))

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


def test_build_info_has_the_device_count_and_error():
    info = mlp.build_info()
    assert info["cuda_devices"] == mlp.cuda_device_count()
    assert info["cuda_error"] is None or isinstance(info["cuda_error"], str)
    if not BUILT:
        assert info["cuda_error"] is None and info["cuda_devices"] == 0


def test_build_info_shows_the_runtime_error(machine):
    machine(True, 0, **OLD_DRIVER)
    info = mlp.build_info()
    assert info["cuda"] is True and info["cuda_devices"] == 0
    assert info["cuda_error"].startswith("cudaErrorInsufficientDriver (35): CUDA driver version is insufficient")
    assert "driver: CUDA 12.2, runtime: CUDA 13.0" in info["cuda_error"]
    machine(True, 0, **NO_DEVICE)
    assert mlp.build_info()["cuda_error"].startswith("cudaErrorNoDevice (100)")
    machine(True, 2)
    assert mlp.build_info()["cuda_error"] is None and mlp.build_info()["cuda_devices"] == 2


def test_device_status_of_this_build():
    status = _device.cuda_status()
    assert set(status) == {"built", "count", "error", "error_name", "error_string", "driver_version",
                           "runtime_version"}
    assert status["built"] is BUILT
    if not BUILT:
        assert status["count"] == 0 and status["error"] == 0
    kind, msg = _device.cuda_problem(status)
    assert kind in ("ok", "no-build", "no-device", "error")
    assert (msg is None) == (kind == "ok")


@pytest.mark.parametrize("built, count, status, kind, words", [
    (False, 0, {}, "no-build", "no CUDA support"),
    (True, 0, NO_DEVICE, "no-device", "cudaErrorNoDevice (100): no CUDA-capable device is detected"),
    (True, 0, NO_DRIVER, "no-device", "no NVIDIA driver is installed (cudaErrorInsufficientDriver (35)"),
    (True, 0, OLD_DRIVER, "error", "the NVIDIA driver is older than the CUDA runtime"),
    (True, 0, dict(error=3, error_name="cudaErrorInitializationError", error_string="initialization error"),
     "error", "the CUDA runtime failed: cudaErrorInitializationError (3): initialization error"),
    (True, 0, {}, "no-device", "reports 0 devices"),
    (True, 1, {}, "ok", None),
])
def test_cuda_problem_tells_a_missing_gpu_from_a_broken_setup(machine, built, count, status, kind, words):
    machine(built, count, **status)
    got, msg = _device.cuda_problem()
    assert got == kind
    if words is None:
        assert msg is None
    else:
        assert words in msg


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


@pytest.mark.parametrize("status", [NO_DEVICE, NO_DRIVER])
def test_cuda_without_a_device_says_what_the_runtime_answered(machine, status):
    machine(True, 0, **status)
    with pytest.raises(ValueError, match="no CUDA device is visible") as info:
        _device.resolve_device("cuda")
    assert status["error_name"] in str(info.value)
    assert _device.resolve_device("auto") == -1


def test_a_broken_cuda_runtime_is_an_error_not_a_missing_device(machine):
    machine(True, 0, **OLD_DRIVER)
    with pytest.raises(ValueError, match="cudaErrorInsufficientDriver") as info:
        _device.resolve_device("cuda:0")
    assert "no CUDA device is visible" not in str(info.value)
    assert "driver: CUDA 12.2" in str(info.value)
    with pytest.warns(RuntimeWarning, match="cudaErrorInsufficientDriver"):
        assert _device.resolve_device("auto") == -1


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


# --- the counters and switches of the CUDA backend exist in every build ------------------------

def test_cuda_stats_and_switches_exist_in_every_build():
    _core.cuda_reset_stats()
    stats = _core.cuda_stats()
    assert set(stats) == {"lt_plans", "lt_plan_failures", "epilogue_runs", "epilogue_fallbacks", "bgrad_runs",
                          "bgrad_fallbacks", "launches", "resident_hits", "uploads", "chunked_batches",
                          "early_stops", "device_bytes", "last_fallback"}
    assert stats["last_fallback"] == ""
    sync = _core.cuda_sync()
    _core.cuda_set_sync(sync)
    _core.cuda_set_alloc_limit(0)
    assert _core.cuda_lt_epilogues() in (True, False)
    if not BUILT:
        assert all(v == 0 for k, v in stats.items() if k != "last_fallback")
        assert _core.cuda_sync() is False
        assert _core.cuda_device_status()["built"] is False


@pytest.mark.skipif(BUILT, reason="this build has CUDA")
def test_cuda_device_queries_raise_without_cuda_build():
    with pytest.raises(ValueError, match="no CUDA support"):
        _core.cuda_mem_info(0)
    with pytest.raises(ValueError, match="no CUDA support"):
        _core.cuda_current_device()


# --- tests/cuda's gate, and the GPU script: run as a user would -------------------------------

def run_cuda_tests(**env):
    """pytest on one test of tests/cuda in a fresh interpreter, with `env` added. It runs in an
    empty folder, so that it imports the mlp this process imported, not the source tree."""
    full = {k: v for k, v in os.environ.items() if k not in ("MLP_REQUIRE_CUDA", "MLP_TEST_CUDA_STATUS")}
    full.update(env)
    cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
           str(REPO / "tests" / "cuda" / "test_cuda_ops.py"), "-k", "test_device_name"]
    with tempfile.TemporaryDirectory() as cwd:
        return subprocess.run(cmd, cwd=cwd, env=full, capture_output=True, text=True, timeout=300)


def machine_kind():
    return _device.cuda_problem()[0]


@pytest.mark.skipif(machine_kind() == "ok", reason="a GPU is visible: tests/cuda runs here")
def test_tests_cuda_skips_with_the_real_reason():
    r = run_cuda_tests()
    kind, msg = _device.cuda_problem()
    if kind == "error":  # a broken CUDA setup fails them (see the next tests)
        assert r.returncode == 1, r.stdout + r.stderr
        return
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 skipped" in r.stdout and msg[:60] in r.stdout, r.stdout


@pytest.mark.skipif(machine_kind() == "ok", reason="a GPU is visible: tests/cuda runs here")
def test_require_cuda_turns_the_skip_into_a_failure():
    r = run_cuda_tests(MLP_REQUIRE_CUDA="1")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "1 failed" in r.stdout, r.stdout
    assert "MLP_REQUIRE_CUDA=1, but the CUDA tests cannot run" in r.stdout, r.stdout
    assert "skipped" not in r.stdout.splitlines()[-1]


def test_an_old_driver_fails_tests_cuda_instead_of_skipping():
    r = run_cuda_tests(MLP_TEST_CUDA_STATUS=json.dumps(OLD_DRIVER))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "CUDA is installed but broken here" in r.stdout and "cudaErrorInsufficientDriver (35)" in r.stdout
    assert "1 failed" in r.stdout, r.stdout


def test_no_device_skips_tests_cuda_with_the_runtime_error():
    r = run_cuda_tests(MLP_TEST_CUDA_STATUS=json.dumps(NO_DEVICE))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 skipped" in r.stdout and "cudaErrorNoDevice (100)" in r.stdout, r.stdout
    r = run_cuda_tests(MLP_TEST_CUDA_STATUS=json.dumps(NO_DEVICE), MLP_REQUIRE_CUDA="1")
    assert r.returncode == 1 and "cudaErrorNoDevice (100)" in r.stdout, r.stdout


@pytest.mark.skipif(machine_kind() == "ok", reason="a GPU is visible: the benchmark measures")
def test_bench_gpu_says_why_it_does_not_measure():
    env = {k: v for k, v in os.environ.items() if k != "MLP_REQUIRE_CUDA"}
    cmd = [sys.executable, str(REPO / "benchmarks" / "bench_gpu.py"), "--quick"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert "bench_gpu: " in r.stdout + r.stderr
    assert r.returncode == (1 if machine_kind() == "error" else 0), r.stdout + r.stderr
    r = subprocess.run(cmd, env=dict(env, MLP_REQUIRE_CUDA="1"), capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "MLP_REQUIRE_CUDA=1" in r.stdout + r.stderr, r.stdout + r.stderr


def test_the_gpu_script_parses_and_the_readme_names_it():
    script = REPO / "scripts" / "gpu_check.sh"
    assert script.exists()
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    for step in ("MLP_CUDA=ON", "MLP_REQUIRE_CUDA=1", "compute-sanitizer", "bench_gpu.py", "summary"):
        assert step in text, step
    readme = (REPO / "README.md").read_text()
    cuda = readme[readme.index("\n## CUDA"):]
    cuda = cuda[:cuda.index("\n## ", 5)]
    assert "scripts/gpu_check.sh" in cuda
