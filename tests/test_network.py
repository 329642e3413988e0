"""The native mlp._core.Network against tests/reference.py: its layout and views, predict, the
training step of every optimizer, the epoch loss, determinism, threads, divergence, optimizer
state and bad input."""
from __future__ import annotations

import gc
import math

import numpy as np
import pytest

import reference as ref
from mlp import _core

A = _core.ActivationKind
L = _core.LossKind
O = _core.OptimizerKind

ACTS = list(A.__members__.values())  # pybind11 enums are not iterable
DTYPES = ["float32", "float64"]
TOL = {"float32": (1e-4, 1e-5), "float64": (1e-10, 1e-12)}  # (rtol, atol relative to scale)


def check(what, got, want, dtype):
    rtol, atol = TOL[dtype]
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{what} [{dtype}]: shape {got.shape}, expected {want.shape}"
    scale = max(1.0, float(np.abs(want).max())) if want.size else 1.0
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol * scale,
                               err_msg=f"{what} [{dtype}, shape {want.shape}]")


def check_scalar(what, got, want, dtype):
    rtol, atol = TOL[dtype]
    assert isinstance(got, float), f"{what}: returned {type(got).__name__}, not float"
    assert abs(got - want) <= rtol * abs(want) + atol, \
        f"{what} [{dtype}]: got {got!r}, want {want!r}"


def make_data(spec, n, dtype, weighted=False, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, spec.sizes[0])).astype(dtype)
    y = ref.make_targets(rng, spec.loss, (n, spec.sizes[-1])).astype(dtype)
    sw = rng.uniform(0.2, 3.0, size=n).astype(dtype) if weighted else None
    return x, y, sw


REGRESSION = ref.NetSpec([4, 8, 3], [A.TANH, A.IDENTITY], [0.0, 0.0], L.MSE, scale=0.5 / 3)


# ------------------------------------------------------------------------------ construction


@pytest.mark.parametrize("dtype", DTYPES)
def test_construction(dtype):
    sizes = [5, 4, 6, 2]
    net = _core.Network(sizes, [A.RELU, A.TANH, A.IDENTITY], [0.0, 0.0, 0.0], L.MSE, 1.0, dtype)
    assert net.dtype == dtype
    assert net.n_layers == 3
    assert list(net.sizes) == sizes
    assert net.n_params == 5 * 4 + 4 + 4 * 6 + 6 + 6 * 2 + 2 == ref.NetSpec(sizes, [0] * 3).n_params
    assert net.step == 0
    p = net.params
    assert p.shape == (net.n_params,) and p.dtype == np.dtype(dtype)
    assert p.flags.c_contiguous and p.flags.writeable
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        assert net.weight(i).shape == (fan_in, fan_out) and net.weight(i).dtype == np.dtype(dtype)
        assert net.bias(i).shape == (fan_out,) and net.bias(i).dtype == np.dtype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_weight_and_bias_are_views_into_params(make_network, dtype):
    spec = ref.NetSpec([3, 7, 1, 2], [A.RELU, A.SIGMOID, A.IDENTITY])
    net = make_network(spec, dtype)
    params = net.params
    for i, (w0, b0, b1) in enumerate(spec.offsets()):
        w, b = net.weight(i), net.bias(i)
        assert np.shares_memory(w, params) and np.shares_memory(b, params), f"layer {i}"
        # layout: W_i row-major at w0, then b_i
        np.testing.assert_array_equal(w.ravel(), params[w0:b0], err_msg=f"weight({i}) layout")
        np.testing.assert_array_equal(b, params[b0:b1], err_msg=f"bias({i}) layout")
        # writing through the view changes params ...
        w[...] = np.arange(w.size, dtype=dtype).reshape(w.shape) + 100 * i
        np.testing.assert_array_equal(params[w0:b0], np.arange(w.size) + 100 * i)
        b[...] = -1.0 - i
        np.testing.assert_array_equal(params[b0:b1], -1.0 - i)
        # ... and writing params changes a fresh view
        params[w0] = 42.5
        params[b1 - 1] = -42.5
        assert net.weight(i)[0, 0] == 42.5 and net.bias(i)[-1] == -42.5


def test_views_keep_the_network_alive(make_network):
    spec = ref.NetSpec([3, 5, 2], [A.TANH, A.IDENTITY])
    params = make_network(spec, "float64").params
    weight = make_network(spec, "float32").weight(1)
    gc.collect()
    params[:] = 2.0
    weight[:] = 3.0
    assert params.sum() == 2.0 * spec.n_params
    assert weight.sum() == 3.0 * 5 * 2


@pytest.mark.parametrize("args", [
    pytest.param(([3], [], [], L.MSE, 1.0, "float32"), id="no layer"),
    pytest.param(([3, 2], [A.RELU, A.RELU], [0.0, 0.0], L.MSE, 1.0, "float32"), id="activations"),
    pytest.param(([3, 2], [A.RELU], [0.0, 0.0], L.MSE, 1.0, "float32"), id="alphas"),
    pytest.param(([3, 0, 2], [A.RELU, A.RELU], [0.0, 0.0], L.MSE, 1.0, "float32"), id="zero size"),
    pytest.param(([0, 2], [A.RELU], [0.0], L.MSE, 1.0, "float32"), id="zero input"),
    pytest.param(([3, -2, 2], [A.RELU, A.RELU], [0.0, 0.0], L.MSE, 1.0, "float32"), id="negative"),
    pytest.param(([3, 2], [A.RELU], [0.0], L.MSE, 1.0, "int32"), id="int32"),
    pytest.param(([3, 2], [A.RELU], [0.0], L.MSE, 1.0, "float16"), id="float16"),
    pytest.param(([3, 2], [A.RELU], [0.0], L.MSE, 1.0, "banana"), id="unknown dtype"),
    pytest.param(([3, 2], [99], [0.0], L.MSE, 1.0, "float32"), id="unknown activation"),
    pytest.param(([3, 2], [A.RELU], [0.0], 17, 1.0, "float32"), id="unknown loss"),
])
def test_bad_construction_raises(args):
    with pytest.raises((ValueError, TypeError)):
        _core.Network(*args)


def test_layer_index_out_of_range(make_network):
    net = make_network(REGRESSION)
    for call in (lambda: net.weight(2), lambda: net.bias(2), lambda: net.weight(10**6)):
        with pytest.raises((IndexError, ValueError)):
            call()


# ---------------------------------------------------------------------------------- predict


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 3, 17, 257])
@pytest.mark.parametrize("out_act", ACTS, ids=[a.name.lower() for a in ACTS])
def test_predict_matches_reference(make_network, out_act, n, dtype):
    loss = L.CATEGORICAL_CROSS_ENTROPY if out_act == A.SOFTMAX else L.MSE
    spec = ref.NetSpec([5, 31, 7, 3], [A.ELU, A.SWISH, out_act],
                       [0.7, 0.0, 0.1 if out_act == A.LEAKY_RELU else 0.0], loss)
    net = make_network(spec, dtype, seed=n)
    x, _, _ = make_data(spec, n, dtype, seed=n)
    got = net.predict(x)
    assert got.dtype == np.dtype(dtype)
    check(f"predict({out_act.name}, n={n})", got, ref.network_predict(spec, net.params, x), dtype)


# ---------------------------------------------------------------------------------- training

OPTIMIZERS = {
    "sgd": (dict(kind=O.SGD), lambda n: ref.SGD(n)),
    "momentum": (dict(kind=O.SGD, momentum=0.9), lambda n: ref.SGD(n, 0.9)),
    "nesterov": (dict(kind=O.SGD, momentum=0.8, nesterov=True), lambda n: ref.SGD(n, 0.8, True)),
    "adam": (dict(kind=O.ADAM), lambda n: ref.Adam(n)),
    "adam_custom": (dict(kind=O.ADAM, beta1=0.8, beta2=0.99, eps=1e-6),
                    lambda n: ref.Adam(n, 0.8, 0.99, 1e-6)),
}
L2 = {"no_l2": (0.0, True), "l2_per_sample": (0.2, True), "l2_absolute": (0.05, False)}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("l2", list(L2))
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_full_batch_sgd_step_is_minus_lr_times_gradient(make_network, weighted, l2, dtype):
    spec = ref.NetSpec(REGRESSION.sizes, REGRESSION.activations, REGRESSION.alphas,
                       REGRESSION.loss, REGRESSION.scale, *L2[l2])
    net = make_network(spec, dtype)
    net.set_optimizer(O.SGD)
    x, y, sw = make_data(spec, 19, dtype, weighted)
    p0 = net.params.copy()
    want_loss, grad = ref.network_loss_and_grad(spec, p0, x, y, sw)
    lr = 0.05
    got_loss = net.train_epoch(x, y, sw, len(x), False, lr)
    check_scalar("train_epoch loss (full batch)", got_loss, want_loss, dtype)
    check("params after one full-batch SGD step", net.params, ref.f64(p0) - lr * grad, dtype)
    assert net.step == 1


@pytest.mark.parametrize("dtype", DTYPES)
def test_full_batch_adam_step(make_network, dtype):
    spec = ref.NetSpec([4, 8, 3], [A.RELU, A.SOFTMAX], [0.0, 0.0], L.CATEGORICAL_CROSS_ENTROPY,
                       scale=1.0, l2=0.1)
    net = make_network(spec, dtype)
    net.set_optimizer(O.ADAM, beta1=0.9, beta2=0.999, eps=1e-8)
    x, y, sw = make_data(spec, 19, dtype, weighted=True)
    p0 = net.params.copy()
    _, grad = ref.network_loss_and_grad(spec, p0, x, y, sw)
    want, _, _ = ref.adam_step(p0, grad, np.zeros_like(grad), np.zeros_like(grad),
                               0.01, 0.9, 0.999, 1e-8, 1)
    net.train_epoch(x, y, sw, len(x), False, 0.01)
    check("params after one full-batch Adam step", net.params, want, dtype)
    assert net.step == 1


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("l2", ["no_l2", "l2_per_sample"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("opt", list(OPTIMIZERS))
def test_epochs_match_reference(make_network, opt, weighted, l2, dtype):
    """Two epochs of 23 rows in batches of 5 (5, 5, 5, 5, 3), shuffle=False. The epoch loss is
    the mean of the batch losses (each before its update) weighted by each batch's weight sum."""
    spec = ref.NetSpec([6, 9, 4, 2], [A.SWISH, A.LEAKY_RELU, A.SIGMOID], [0.0, 0.1, 0.0],
                       L.BINARY_CROSS_ENTROPY, scale=0.5, l2=L2[l2][0], per_sample=L2[l2][1])
    settings, make_ref_opt = OPTIMIZERS[opt]
    net = make_network(spec, dtype)
    net.set_optimizer(**settings)
    x, y, sw = make_data(spec, 23, dtype, weighted)
    params, ref_opt = net.params.copy(), make_ref_opt(spec.n_params)
    lr = 0.01 if opt.startswith("adam") else 0.1
    for epoch in range(2):
        got = net.train_epoch(x, y, sw, 5, False, lr)
        params, want = ref.network_train_epoch(spec, params, x, y, sw, 5, lr, ref_opt)
        check_scalar(f"{opt} epoch {epoch} loss", got, want, dtype)
        check(f"{opt} params after epoch {epoch}", net.params, params, dtype)
        assert net.step == 5 * (epoch + 1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_loss_matches_reference(make_network, dtype):
    spec = ref.NetSpec([6, 9, 3], [A.TANH, A.SOFTMAX], [0.0, 0.0], L.CATEGORICAL_CROSS_ENTROPY,
                       scale=1.0, l2=0.3, per_sample=True)
    net = make_network(spec, dtype)
    x, y, sw = make_data(spec, 33, dtype, weighted=True)
    check_scalar("Network.loss", net.loss(x, y, sw), ref.network_loss(spec, net.params, x, y, sw),
                 dtype)
    value, grad = net.loss_and_grad(x, y, sw)
    want_value, want_grad = ref.network_loss_and_grad(spec, net.params, x, y, sw)
    check_scalar("Network.loss_and_grad loss", value, want_value, dtype)
    assert grad.dtype == np.dtype(dtype)
    check("Network.loss_and_grad grad", grad, want_grad, dtype)


def test_full_batch_shuffle_changes_nothing(make_network):
    """With one batch, the order of its rows does not matter (up to float rounding)."""
    x, y, _ = make_data(REGRESSION, 40, "float64")
    nets = [make_network(REGRESSION, "float64") for _ in range(2)]
    nets[1].set_seed(3)
    losses = [net.train_epoch(x, y, None, 40, shuffle, 0.1)
              for net, shuffle in zip(nets, [False, True])]
    assert losses[0] == pytest.approx(losses[1], rel=1e-12)
    check("full batch, shuffled vs not", nets[1].params, nets[0].params, "float64")


# ---------------------------------------------------------------------------- determinism


def test_same_seed_same_params_bit_for_bit(make_network):
    x, y, _ = make_data(REGRESSION, 50, "float32")

    def train(seed, shuffle=True):
        net = make_network(REGRESSION, "float32")
        net.set_optimizer(O.SGD, momentum=0.9)
        net.set_seed(seed)
        losses = [net.train_epoch(x, y, None, 8, shuffle, 0.05) for _ in range(4)]
        return net.params.copy(), losses

    p1, l1 = train(7)
    p2, l2 = train(7)
    np.testing.assert_array_equal(p1, p2, err_msg="same seed, different params")
    assert l1 == l2
    p3, _ = train(8)
    assert not np.array_equal(p1, p3), "different seeds gave identical params"
    p4, _ = train(7, shuffle=False)
    assert not np.array_equal(p1, p4), "shuffle=True gave the params of shuffle=False"


@pytest.mark.parametrize("dtype", DTYPES)
def test_thread_counts_agree(make_network, dtype):
    spec = ref.NetSpec([20, 64, 33, 3], [A.RELU, A.TANH, A.SOFTMAX], [0.0] * 3,
                       L.CATEGORICAL_CROSS_ENTROPY, scale=1.0, l2=0.01)
    x, y, sw = make_data(spec, 257, dtype, weighted=True)
    results = {}
    for threads in (1, 2, 0):
        net = make_network(spec, dtype)
        net.set_optimizer(O.ADAM)
        net.set_threads(threads)
        pred = net.predict(x)
        value, grad = net.loss_and_grad(x, y, sw)
        losses = [net.train_epoch(x, y, sw, 64, False, 1e-3) for _ in range(2)]
        results[threads] = (pred, value, grad, losses, net.params.copy())
    for threads in (2, 0):
        pred, value, grad, losses, params = results[threads]
        pred1, value1, grad1, losses1, params1 = results[1]
        check(f"predict, {threads} threads vs 1", pred, pred1, dtype)
        check_scalar(f"loss, {threads} threads vs 1", value, value1, dtype)
        check(f"gradient, {threads} threads vs 1", grad, grad1, dtype)
        for a, b in zip(losses, losses1):
            check_scalar(f"epoch loss, {threads} threads vs 1", a, b, dtype)
        check(f"params after training, {threads} threads vs 1", params, params1, dtype)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("n,batch_size", [(65, 64), (66, 64), (33, 32), (97, 32), (257, 64)])
def test_small_trailing_batch(make_network, n, batch_size, threads):
    """The last batch has fewer rows than threads (or just a few): it must still be split right."""
    spec = ref.NetSpec([20, 64, 33, 3], [A.RELU, A.TANH, A.SOFTMAX], [0.0] * 3,
                       L.CATEGORICAL_CROSS_ENTROPY, scale=1.0)
    x, y, _ = make_data(spec, n, "float64")
    net = make_network(spec, "float64")
    net.set_optimizer(O.SGD)
    net.set_threads(threads)
    params, want = ref.network_train_epoch(spec, net.params.copy(), x, y, None, batch_size, 0.1,
                                           ref.SGD(spec.n_params))
    check_scalar(f"epoch loss, {n} rows in batches of {batch_size}, {threads} threads",
                 net.train_epoch(x, y, None, batch_size, False, 0.1), want, "float64")
    check(f"params, {n} rows in batches of {batch_size}, {threads} threads", net.params, params,
          "float64")


# ----------------------------------------------------------------------------- divergence


@pytest.mark.parametrize("dtype,big", [("float32", 1e30), ("float64", 1e200)])
def test_non_finite_loss_returns_nan_and_keeps_params(make_network, dtype, big):
    spec = ref.NetSpec([2, 3, 1], [A.IDENTITY, A.IDENTITY], [0.0, 0.0], L.MSE)
    net = make_network(spec, dtype)
    net.weight(0)[...] = big / 1e20
    net.set_optimizer(O.SGD)
    x = np.full((6, 2), big, dtype=dtype)
    y = np.zeros((6, 1), dtype=dtype)
    before = net.params.copy()
    loss = net.train_epoch(x, y, None, 3, False, 0.1)
    assert math.isnan(loss), f"expected NaN for an overflowing loss, got {loss!r}"
    np.testing.assert_array_equal(net.params, before, err_msg="the failing update was applied")
    assert np.isfinite(net.params).all()
    assert net.step == 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_divergence_stops_with_finite_params(make_network, dtype):
    spec = ref.NetSpec([3, 4, 1], [A.IDENTITY, A.IDENTITY], [0.0, 0.0], L.MSE)
    net = make_network(spec, dtype)
    net.set_optimizer(O.SGD)
    x, y, _ = make_data(spec, 40, dtype)
    losses = []
    for _ in range(50):
        losses.append(net.train_epoch(x, y, None, 4, False, 1e3))
        assert np.isfinite(net.params).all(), f"params not finite after epoch losses {losses}"
        if math.isnan(losses[-1]):
            break
    assert math.isnan(losses[-1]), f"lr = 1000 never diverged: {losses}"


# -------------------------------------------------------------------------- optimizer state


@pytest.mark.parametrize("opt", ["momentum", "nesterov", "adam"])
def test_optimizer_state_round_trip(make_network, opt):
    settings, _ = OPTIMIZERS[opt]
    n_buffers = 2 if settings["kind"] == O.ADAM else 1
    x, y, _ = make_data(REGRESSION, 23, "float64")
    net = make_network(REGRESSION, "float64")
    net.set_optimizer(**settings)
    net.train_epoch(x, y, None, 5, False, 0.01)
    state, step = net.optimizer_state(), net.step
    assert step == 5
    assert isinstance(state, list) and len(state) == n_buffers
    for s in state:
        assert s.shape == (net.n_params,) and s.dtype == np.float64 and np.any(s != 0)
    # copies, not views
    state[0][:] = 0.0
    assert np.any(net.optimizer_state()[0] != 0)

    other = make_network(REGRESSION, "float64", params=net.params.copy())
    other.set_optimizer(**settings)
    other.set_optimizer_state(net.optimizer_state(), step)
    assert other.step == step
    for a, b in zip(other.optimizer_state(), net.optimizer_state()):
        np.testing.assert_array_equal(a, b)
    ours = net.train_epoch(x, y, None, 5, False, 0.01)
    assert other.train_epoch(x, y, None, 5, False, 0.01) == ours
    np.testing.assert_array_equal(other.params, net.params)

    with pytest.raises((ValueError, TypeError)):
        other.set_optimizer_state([s[:-1].copy() for s in net.optimizer_state()], step)
    with pytest.raises((ValueError, TypeError)):
        other.set_optimizer_state(net.optimizer_state() + [np.zeros(net.n_params)], step)
    with pytest.raises((ValueError, TypeError)):
        other.set_optimizer_state([s.astype(np.float32) for s in net.optimizer_state()], step)

    net.reset_optimizer_state()
    assert net.step == 0
    assert all(not np.any(s) for s in net.optimizer_state())
    other.set_optimizer(**settings)  # choosing the rule again resets the state too
    assert all(not np.any(s) for s in other.optimizer_state())


# -------------------------------------------------------------------------------- bad input


def _bad_calls(net):
    f4 = np.float32
    x = np.ones((5, 4), f4)
    y = np.ones((5, 3), f4)
    sw = np.ones(5, f4)
    return {
        "x width": lambda: net.train_epoch(np.ones((5, 3), f4), y, None, 2, False, 0.1),
        "y rows": lambda: net.train_epoch(x, y[:4], None, 2, False, 0.1),
        "y width": lambda: net.train_epoch(x, np.ones((5, 2), f4), None, 2, False, 0.1),
        "batch_size 0": lambda: net.train_epoch(x, y, None, 0, False, 0.1),
        "batch_size negative": lambda: net.train_epoch(x, y, None, -2, False, 0.1),
        "x float64": lambda: net.train_epoch(x.astype(np.float64), y, None, 2, False, 0.1),
        "y float64": lambda: net.train_epoch(x, y.astype(np.float64), None, 2, False, 0.1),
        "x int": lambda: net.train_epoch(x.astype(np.int32), y, None, 2, False, 0.1),
        "x 1-D": lambda: net.train_epoch(x[0], y[0], None, 2, False, 0.1),
        "x non-contiguous": lambda: net.train_epoch(np.ones((5, 8), f4)[:, ::2], y, None, 2, False,
                                                    0.1),
        "sample_weight length": lambda: net.train_epoch(x, y, sw[:4], 2, False, 0.1),
        "sample_weight dtype": lambda: net.train_epoch(x, y, sw.astype(np.float64), 2, False, 0.1),
        "predict x width": lambda: net.predict(np.ones((5, 5), f4)),
        "predict x float64": lambda: net.predict(x.astype(np.float64)),
        "predict x 3-D": lambda: net.predict(x[None]),
        "loss y rows": lambda: net.loss(x, y[:3], None),
        "loss x width": lambda: net.loss(np.ones((5, 2), f4), y, None),
        "loss_and_grad y width": lambda: net.loss_and_grad(x, np.ones((5, 4), f4), None),
        "loss_and_grad sample_weight": lambda: net.loss_and_grad(x, y, np.ones(6, f4)),
        "set_threads negative": lambda: net.set_threads(-1),
        "set_optimizer_state wrong count": lambda: net.set_optimizer_state(
            [np.zeros(net.n_params, f4)] * 3, 0),
    }


BAD_CALLS = sorted(_bad_calls(None))


@pytest.mark.parametrize("case", BAD_CALLS)
def test_bad_input_raises(make_network, case):
    net = make_network(ref.NetSpec([4, 6, 3], [A.RELU, A.IDENTITY]), "float32")
    net.set_optimizer(O.SGD)
    before = net.params.copy()
    with pytest.raises((ValueError, TypeError)):
        _bad_calls(net)[case]()
    np.testing.assert_array_equal(net.params, before)


def test_empty_input_does_not_crash(make_network):
    """Zero rows either work or raise ValueError; never crash."""
    net = make_network(ref.NetSpec([4, 6, 3], [A.RELU, A.IDENTITY]), "float32")
    x, y = np.zeros((0, 4), np.float32), np.zeros((0, 3), np.float32)
    try:
        assert net.predict(x).shape == (0, 3)
    except ValueError:
        pass
    try:
        net.train_epoch(x, y, None, 4, True, 0.1)
    except ValueError:
        pass
    assert np.isfinite(net.params).all()


def test_read_only_inputs_are_accepted(make_network):
    """x, y and sample_weight are only read: a read-only array (a memory map, a cached dataset)
    works, and gives the same result as a writable copy."""
    spec = ref.NetSpec([4, 6, 3], [A.RELU, A.IDENTITY])
    x, y, sw = make_data(spec, 10, "float32", weighted=True)
    frozen = [a.copy() for a in (x, y, sw)]
    for a in frozen:
        a.flags.writeable = False
    nets = [make_network(spec, "float32") for _ in range(2)]
    frozen_loss = nets[0].train_epoch(*frozen, 4, False, 0.1)
    assert frozen_loss == nets[1].train_epoch(x, y, sw, 4, False, 0.1)
    np.testing.assert_array_equal(nets[0].params, nets[1].params)
    np.testing.assert_array_equal(nets[0].predict(frozen[0]), nets[1].predict(x))
    assert nets[0].loss(*frozen) == nets[1].loss(x, y, sw)


def test_weights_bit_identical_across_thread_counts():
    """Shards, not threads, fix the summation order: 1, 2 and 'auto' threads give the same bits."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1000, 12)).astype(np.float32)
    y = rng.standard_normal((1000, 3)).astype(np.float32)
    sw = rng.uniform(0.5, 2.0, 1000).astype(np.float32)
    results = []
    for threads in (1, 2, 0, 3):
        net = _core.Network([12, 40, 24, 3], [A.TANH, A.RELU, A.IDENTITY], [0.0] * 3, L.MSE, 0.5, "float32")
        net.params[...] = np.random.default_rng(0).standard_normal(net.n_params).astype(np.float32) * 0.2
        net.set_optimizer(_core.OptimizerKind.ADAM)
        net.set_l2(1e-3, True)
        net.set_seed(11)
        net.set_threads(threads)
        # Auto mode (0) times segments of batches when an epoch has 4 or more (batch 200: 5;
        # batch 50: 20, and past 8 epochs it re-times the slower count on a few batches), and
        # whole epochs below that (batch 400: 3 batches). None of it may change a bit.
        losses = [net.train_epoch(x, y, sw, 200, True, 1e-3) for _ in range(4)]
        losses += [net.train_epoch(x, y, sw, 50, True, 1e-3) for _ in range(10)]
        losses += [net.train_epoch(x, y, sw, 400, True, 1e-3) for _ in range(2)]
        loss, grad = net.loss_and_grad(x, y, sw)
        results.append((net.params.copy(), losses, loss, grad))
    for params, losses, loss, grad in results[1:]:
        np.testing.assert_array_equal(params, results[0][0])
        np.testing.assert_array_equal(grad, results[0][3])
        assert losses == results[0][1] and loss == results[0][2]
