"""Every CUDA operation (mlp._core.cuda_ops) against the CPU operation of the same name.

float64 must agree to 1e-10 and float32 to a few ulps of the values' scale: the two sides differ
only in the order of their sums. Both dense_forward paths are checked: the cuBLASLt epilogue
(bias, bias+ReLU) and the plain GEMM followed by the fused bias+activation kernel; the counters
(mlp._core.cuda_stats) show that the epilogue path really ran (float32) or fell back with a
reason. Both dense_backward paths too: the bias gradient in the dW GEMM's epilogue, and GEMM +
GEMV. Last, the operations from several threads at once (they share one context).
"""
from __future__ import annotations

import numpy as np
import pytest

from mlp import _core

A = _core.ActivationKind
L = _core.LossKind
cuda = _core.cuda_ops

DTYPES = ["float32", "float64"]
# softmax last: ACTS[:-1] are the element-wise ones
ACTS = [(A.IDENTITY, 0.0), (A.RELU, 0.0), (A.LEAKY_RELU, 0.01), (A.ELU, 1.0), (A.SIGMOID, 0.0),
        (A.TANH, 0.0), (A.SWISH, 0.0), (A.SELU, 0.0), (A.MISH, 0.0), (A.GELU, 0.0),
        (A.GELU_TANH, 0.0), (A.SOFTMAX, 0.0)]
SHAPES = [(1, 1, 1), (7, 3, 5), (33, 64, 10), (300, 130, 64), (257, 784, 129)]  # (n, in, out)


def tol(dtype, scale=1.0):
    return dict(rtol=2e-5, atol=2e-5 * scale) if dtype == "float32" else dict(rtol=1e-10, atol=1e-10 * scale)


def close(got, expected, dtype, what, scale=None):
    expected = np.asarray(expected)
    if scale is None:
        scale = float(np.max(np.abs(expected))) if expected.size else 1.0
    np.testing.assert_allclose(got, expected, err_msg=f"{what} ({dtype}, shape {expected.shape})",
                               **tol(dtype, max(scale, 1.0)))


def data(rng, shape, dtype, low=-2.0, high=2.0):
    return np.ascontiguousarray(rng.uniform(low, high, shape).astype(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
@pytest.mark.parametrize("m, n, k", [(1, 1, 1), (5, 7, 3), (64, 64, 64), (300, 129, 257), (1024, 10, 784)])
def test_gemm(rng, dtype, ta, tb, m, n, k):
    a = data(rng, (k, m) if ta else (m, k), dtype)
    b = data(rng, (n, k) if tb else (k, n), dtype)
    got = cuda.gemm(a, b, ta, tb)
    close(got, _core.gemm(a, b, ta, tb), dtype, "gemm", scale=k)


def test_gemm_tf32_is_close_and_can_be_switched_off(rng):
    a, b = data(rng, (256, 512), "float32"), data(rng, (512, 128), "float32")
    exact = _core.gemm(a, b)
    _core.cuda_set_tf32(True)
    assert _core.cuda_tf32()
    approx = cuda.gemm(a, b)
    _core.cuda_set_tf32(False)
    np.testing.assert_allclose(approx, exact, rtol=0, atol=2e-2 * np.abs(exact).max())
    close(cuda.gemm(a, b), exact, "float32", "gemm after TF32 off", scale=512)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act, alpha", ACTS)
@pytest.mark.parametrize("rows, cols", [(1, 1), (3, 10), (129, 33), (64, 300)])
def test_activation_forward_and_backward(rng, dtype, act, alpha, rows, cols):
    z = data(rng, (rows, cols), dtype, -6, 6)
    a = _core.activation_forward(z, act, alpha)
    close(cuda.activation_forward(z, act, alpha), a, dtype, f"activation_forward {act.name}")
    da = data(rng, (rows, cols), dtype)
    close(cuda.activation_backward(z, a, da, act, alpha), _core.activation_backward(z, a, da, act, alpha),
          dtype, f"activation_backward {act.name}")


@pytest.mark.parametrize("lt", [True, False], ids=["cublaslt-epilogue", "gemm+kernel"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act, alpha", ACTS)
@pytest.mark.parametrize("n, fan_in, fan_out", SHAPES)
def test_dense_forward(rng, lt, dtype, act, alpha, n, fan_in, fan_out):
    _core.cuda_set_lt_epilogues(lt)
    x = data(rng, (n, fan_in), dtype)
    w = data(rng, (fan_in, fan_out), dtype, -1 / np.sqrt(fan_in), 1 / np.sqrt(fan_in))
    b = data(rng, (fan_out,), dtype)
    z_ref, a_ref = _core.dense_forward(x, w, b, act, alpha)
    _core.cuda_reset_stats()
    z, a = cuda.dense_forward(x, w, b, act, alpha)
    close(z, z_ref, dtype, f"dense_forward z {act.name}")
    close(a, a_ref, dtype, f"dense_forward a {act.name}")
    # Without z: the hidden layers' path (ReLU through cuBLASLt's bias+ReLU epilogue).
    none, a_only = cuda.dense_forward(x, w, b, act, alpha, want_z=False)
    assert none is None
    close(a_only, a_ref, dtype, f"dense_forward a without z {act.name}")
    assert_epilogues(_core.cuda_stats(), lt, dtype, calls=2, kind="epilogue")


def assert_epilogues(stats, lt, dtype, calls, kind):
    """Every call took the fused path (float32: cuBLASLt must run it) or a counted fallback with
    its reason kept (float64, which cuBLASLt may refuse); none did with the epilogues off."""
    runs, fallbacks = stats[f"{kind}_runs"], stats[f"{kind}_fallbacks"]
    if not lt:
        assert runs == fallbacks == 0, stats
        return
    if dtype == "float32":
        assert fallbacks == 0 and runs == calls, f"the cuBLASLt {kind} path did not run: {stats['last_fallback']}"
    # A refused bias+ReLU plan tries the bias-only one next: one more attempt, counted too.
    assert runs + fallbacks >= calls and runs <= calls, stats
    if fallbacks:
        assert stats["last_fallback"] and stats["lt_plan_failures"] > 0, stats


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act, alpha", ACTS[:-1])
@pytest.mark.parametrize("g_is_dz", [True, False])
@pytest.mark.parametrize("need_dx", [True, False])
@pytest.mark.parametrize("n, fan_in, fan_out", SHAPES)
@pytest.mark.parametrize("lt", [True, False], ids=["cublaslt-bgrad", "gemm+gemv"])
def test_dense_backward(rng, lt, dtype, act, alpha, g_is_dz, need_dx, n, fan_in, fan_out):
    _core.cuda_set_lt_epilogues(lt)
    x = data(rng, (n, fan_in), dtype)
    w = data(rng, (fan_in, fan_out), dtype, -1 / np.sqrt(fan_in), 1 / np.sqrt(fan_in))
    b = data(rng, (fan_out,), dtype)
    z, a = _core.dense_forward(x, w, b, act, alpha)
    g = data(rng, (n, fan_out), dtype)
    ref = _core.dense_backward(x, w, z, a, g, act, alpha, g_is_dz, need_dx)
    _core.cuda_reset_stats()
    got = cuda.dense_backward(x, w, z, a, g, act, alpha, g_is_dz, need_dx)
    for name, r, o, scale in zip(("dw", "db", "dx"), ref, got, (n, n, fan_out)):
        if r is None:
            assert o is None, f"dense_backward {name}: expected None"
        else:
            close(o, r, dtype, f"dense_backward {name} {act.name}", scale=scale)
    stats = _core.cuda_stats()
    if lt:  # the bias gradient in the dW GEMM's epilogue, or a counted fallback with its reason
        assert stats["bgrad_runs"] + stats["bgrad_fallbacks"] == 1, stats
        assert stats["bgrad_fallbacks"] == 0 or stats["last_fallback"], stats
    else:
        assert stats["bgrad_runs"] == stats["bgrad_fallbacks"] == 0, stats


@pytest.mark.parametrize("n, fan_in, fan_out", SHAPES + [(4096, 64, 64), (1024, 1024, 1024)])
def test_the_bias_gradient_epilogue_runs_for_float32(rng, n, fan_in, fan_out):
    """cuBLASLt's bias-gradient epilogue really runs (float32, aligned buffers) and matches."""
    x = data(rng, (n, fan_in), "float32")
    w = data(rng, (fan_in, fan_out), "float32")
    z, a = _core.dense_forward(x, w, np.zeros(fan_out, np.float32), A.IDENTITY, 0.0)
    dz = data(rng, (n, fan_out), "float32")
    ref = _core.dense_backward(x, w, z, a, dz, A.IDENTITY, 0.0, True, False)
    _core.cuda_reset_stats()
    got = cuda.dense_backward(x, w, z, a, dz, A.IDENTITY, 0.0, True, False)
    close(got[0], ref[0], "float32", "dw", scale=n)
    close(got[1], ref[1], "float32", "db", scale=n)
    stats = _core.cuda_stats()
    assert stats["bgrad_runs"] == 1, f"the bias-gradient epilogue did not run: {stats['last_fallback']}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("prev_act, prev_alpha", [a for a in ACTS if a[0] != A.SOFTMAX])
def test_dense_backward_fuses_the_previous_derivative(rng, dtype, prev_act, prev_alpha):
    n, fan_in, fan_out = 65, 40, 17
    prev_z = data(rng, (n, fan_in), dtype, -3, 3)
    prev_a = _core.activation_forward(prev_z, prev_act, prev_alpha)
    w = data(rng, (fan_in, fan_out), dtype)
    b = np.zeros(fan_out, dtype)
    z, a = _core.dense_forward(prev_a, w, b, A.IDENTITY, 0.0)
    dz = data(rng, (n, fan_out), dtype)
    dw_ref, db_ref, dx_ref = _core.dense_backward(prev_a, w, z, a, dz, A.IDENTITY, 0.0, True, True)
    dprev_ref = _core.activation_backward(prev_z, prev_a, dx_ref, prev_act, prev_alpha)
    dw, db, dprev = cuda.dense_backward(prev_a, w, z, a, dz, A.IDENTITY, 0.0, True, True,
                                        prev_act=prev_act, prev_alpha=prev_alpha, prev_z=prev_z, prev_a=prev_a)
    close(dw, dw_ref, dtype, "fused dense_backward dw", scale=n)
    close(db, db_ref, dtype, "fused dense_backward db", scale=n)
    close(dprev, dprev_ref, dtype, f"fused dense_backward dx * {prev_act.name}'", scale=fan_out)


LOSSES = [(L.MSE, A.IDENTITY, 0.0), (L.MSE, A.SIGMOID, 0.0), (L.MSE, A.TANH, 0.0), (L.MSE, A.RELU, 0.0),
          (L.MSE, A.SWISH, 0.0), (L.MSE, A.MISH, 0.0), (L.MSE, A.GELU, 0.0),
          (L.MSE, A.GELU_TANH, 0.0), (L.CATEGORICAL_CROSS_ENTROPY, A.SOFTMAX, 0.0),
          (L.BINARY_CROSS_ENTROPY, A.SIGMOID, 0.0), (L.POISSON, A.IDENTITY, 0.0)]


def targets(rng, loss, n, c, dtype):
    if loss == L.CATEGORICAL_CROSS_ENTROPY:
        return np.eye(c, dtype=dtype)[rng.integers(0, c, n)]
    if loss == L.BINARY_CROSS_ENTROPY:
        return rng.integers(0, 2, (n, c)).astype(dtype)
    if loss == L.POISSON:
        return rng.poisson(2.0, (n, c)).astype(dtype)
    return data(rng, (n, c), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss, act, alpha", LOSSES)
@pytest.mark.parametrize("n, c", [(1, 1), (10, 3), (1000, 10), (37, 100)])
@pytest.mark.parametrize("weighted", [False, True])
def test_losses(rng, dtype, loss, act, alpha, n, c, weighted):
    z = data(rng, (n, c), dtype, -4, 4)
    a = _core.activation_forward(z, act, alpha)
    y = targets(rng, loss, n, c, dtype)
    sw = data(rng, (n,), dtype, 0.1, 3.0) if weighted else None
    scale = 0.5
    close(cuda.loss_forward(z, a, y, loss, sw, scale), _core.loss_forward(z, a, y, loss, sw, scale), dtype,
          f"loss_forward {loss.name}", scale=1.0)
    close(cuda.loss_backward(z, a, y, loss, act, alpha, sw, scale),
          _core.loss_backward(z, a, y, loss, act, alpha, sw, scale), dtype, f"loss_backward {loss.name}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("momentum, nesterov", [(0.0, False), (0.9, False), (0.9, True)])
@pytest.mark.parametrize("n", [1, 1000, 300_001])
def test_sgd_step(rng, dtype, momentum, nesterov, n):
    p, g, v = data(rng, (n,), dtype), data(rng, (n,), dtype), data(rng, (n,), dtype)
    p_ref, v_ref = p.copy(), v.copy()
    _core.sgd_step(p_ref, g, v_ref, 0.1, momentum, nesterov)
    cuda.sgd_step(p, g, v, 0.1, momentum, nesterov)
    close(p, p_ref, dtype, "sgd_step params")
    close(v, v_ref, dtype, "sgd_step velocity")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("t", [1, 10])
@pytest.mark.parametrize("n", [1, 1000, 300_001])
def test_adam_step(rng, dtype, t, n):
    p, g = data(rng, (n,), dtype), data(rng, (n,), dtype)
    m, v = data(rng, (n,), dtype), data(rng, (n,), dtype, 0.0, 1.0)
    refs = [x.copy() for x in (p, m, v)]
    _core.adam_step(*refs[:1], g, *refs[1:], 1e-3, 0.9, 0.999, 1e-8, t)
    cuda.adam_step(p, g, m, v, 1e-3, 0.9, 0.999, 1e-8, t)
    for name, got, ref in zip(("params", "m", "v"), (p, m, v), refs):
        close(got, ref, dtype, f"adam_step {name}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, cols, count", [(1, 1, 1), (100, 3, 50), (5000, 784, 1024), (10, 64, 0)])
def test_gather_rows(rng, dtype, n, cols, count):
    x = data(rng, (n, cols), dtype)
    rows = rng.integers(0, n, count)
    np.testing.assert_array_equal(cuda.gather_rows(x, rows), x[rows], err_msg="gather_rows")


def test_gather_rows_refuses_bad_indices(rng):
    x = data(rng, (4, 2), "float32")
    with pytest.raises(ValueError, match="out of range"):
        cuda.gather_rows(x, np.array([0, 4]))


def test_device_name():
    name = _core.cuda_device_name(0)
    assert "sm_" in name
    with pytest.raises(ValueError):
        _core.cuda_device_name(_core.cuda_device_count())


def test_operations_from_several_threads_at_once(rng):
    """The operations share one process-wide context (plans, ones vector, stream) and run without
    the GIL: calls from 8 threads at once must each get their own, correct, result."""
    import threading

    shapes = [(n, i, o) for n, i, o in SHAPES if n > 1] * 4
    cases = []
    for k, (n, fan_in, fan_out) in enumerate(shapes):
        x = data(rng, (n, fan_in), "float32")
        w = data(rng, (fan_in, fan_out), "float32", -0.2, 0.2)
        b = data(rng, (fan_out,), "float32")
        g = data(rng, (n, fan_out), "float32")
        z, a = _core.dense_forward(x, w, b, A.RELU, 0.0)
        cases.append((x, w, b, g, z, a, _core.dense_backward(x, w, z, a, g, A.RELU, 0.0, False, True)))
    errors = []

    def work(k):
        try:
            for _ in range(5):
                x, w, b, g, z, a, ref = cases[k]
                _, got_a = cuda.dense_forward(x, w, b, A.RELU, 0.0, want_z=False)
                np.testing.assert_allclose(got_a, a, rtol=2e-5, atol=2e-5 * max(1.0, float(np.abs(a).max())))
                for r, o in zip(ref, cuda.dense_backward(x, w, z, a, g, A.RELU, 0.0, False, True)):
                    np.testing.assert_allclose(o, r, rtol=2e-5, atol=2e-5 * x.shape[0])
                np.testing.assert_allclose(cuda.gemm(x, w), _core.gemm(x, w), rtol=2e-5, atol=2e-5 * x.shape[1])
        except Exception as e:  # collected: an assertion in a thread would be lost
            errors.append(f"thread {k}: {e}")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(cases))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
