"""Whole-network gradient check: Network.loss_and_grad against central differences of
Network.loss in float64, for every hidden activation x (loss, output activation) pairing, with and
without sample weights and L2 (per sample, and not). Plus one single SGD step worked by hand."""
from __future__ import annotations

import numpy as np
import pytest

import reference as ref
from mlp import _core

A = _core.ActivationKind
L = _core.LossKind
O = _core.OptimizerKind

ACTS = list(A.__members__.values())  # pybind11 enums are not iterable
HIDDEN = [a for a in ACTS if a != A.SOFTMAX]
OUTPUTS = [(L.MSE, a) for a in HIDDEN] + [
    (L.CATEGORICAL_CROSS_ENTROPY, A.SOFTMAX),
    (L.BINARY_CROSS_ENTROPY, A.SIGMOID),
    (L.POISSON, A.IDENTITY),
]
ALPHA = {A.LEAKY_RELU: 0.1, A.ELU: 0.7}
# elu with alpha != 1 has a kink in its slope, selu one of scale vs scale * alpha
KINKED = {A.RELU, A.LEAKY_RELU, A.ELU, A.SELU}
# (sample weights?, l2 alpha, per_sample)
VARIANTS = {
    "plain": (False, 0.0, True),
    "weighted": (True, 0.0, True),
    "l2_per_sample": (False, 0.3, True),
    "l2_absolute": (False, 0.3, False),
    "weighted_l2_per_sample": (True, 0.3, True),
    "weighted_l2_absolute": (True, 0.3, False),
}
N_SAMPLES, EPS = 9, 1e-6


def make_problem(hidden, loss, out_act, weighted, l2, per_sample):
    """A 4 -> 6 -> 5 -> 3 network and data whose pre-activations all stay at least 1e-3 away from
    0, so that no central difference straddles ReLU's kink."""
    spec = ref.NetSpec([4, 6, 5, 3], [hidden, hidden, out_act],
                       [ALPHA.get(hidden, 0.0), ALPHA.get(hidden, 0.0), ALPHA.get(out_act, 0.0)],
                       loss, scale=0.4, l2=l2, per_sample=per_sample)
    for seed in range(100):
        rng = np.random.default_rng(seed)
        params = np.concatenate([
            np.concatenate([rng.standard_normal(i * o) / np.sqrt(i), 0.3 * rng.standard_normal(o)])
            for i, o in zip(spec.sizes[:-1], spec.sizes[1:])])
        x = rng.standard_normal((N_SAMPLES, spec.sizes[0]))
        zs, _ = ref.network_forward(spec, params, x)
        checked = [z for z, act in zip(zs, spec.activations) if act in KINKED]
        if all(np.abs(z).min() > 1e-3 for z in checked):
            break
    else:
        raise AssertionError("no seed keeps the pre-activations away from 0")
    y = ref.make_targets(rng, loss, (N_SAMPLES, spec.sizes[-1]))
    sw = rng.uniform(0.2, 3.0, size=N_SAMPLES) if weighted else None
    return spec, params, x, y, sw


def numeric_grad(net, x, y, sw):
    p = net.params
    grad = np.empty(len(p))
    for j in range(len(p)):
        old = p[j]
        p[j] = old + EPS
        up = net.loss(x, y, sw)
        p[j] = old - EPS
        down = net.loss(x, y, sw)
        p[j] = old
        grad[j] = (up - down) / (2 * EPS)
    return grad


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("output", OUTPUTS,
                         ids=[f"{lo.name.lower()}-{a.name.lower()}" for lo, a in OUTPUTS])
@pytest.mark.parametrize("hidden", HIDDEN, ids=[a.name.lower() for a in HIDDEN])
def test_gradient_matches_central_differences(make_network, hidden, output, variant):
    loss, out_act = output
    weighted, l2, per_sample = VARIANTS[variant]
    spec, params, x, y, sw = make_problem(hidden, loss, out_act, weighted, l2, per_sample)
    net = make_network(spec, "float64", params)
    where = f"{hidden.name} hidden, {loss.name} + {out_act.name} output, {variant}"

    value, grad = net.loss_and_grad(x, y, sw)
    assert grad.shape == (spec.n_params,) and grad.dtype == np.float64, where
    assert value == pytest.approx(net.loss(x, y, sw), rel=1e-12), f"loss_and_grad vs loss: {where}"
    ref_value, ref_grad = ref.network_loss_and_grad(spec, params, x, y, sw)
    assert value == pytest.approx(ref_value, rel=1e-10), f"loss vs reference: {where}"

    num = numeric_grad(net, x, y, sw)
    np.testing.assert_array_equal(net.params, params, err_msg=f"params restored: {where}")
    scale = max(1.0, np.abs(num).max())
    np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-7 * scale,
                               err_msg=f"analytic vs central differences: {where}")
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-9, atol=1e-12 * scale,
                               err_msg=f"analytic vs reference backprop: {where}")


def test_every_activation_is_checked_with_every_loss():
    """HIDDEN and OUTPUTS follow the core's enum: a new activation is checked in the hidden
    layers against every loss, and as an MSE output, without a change here."""
    for act in (A.SELU, A.MISH, A.GELU, A.GELU_TANH):
        assert act in HIDDEN and (L.MSE, act) in OUTPUTS
    assert {loss for loss, _ in OUTPUTS} == set(L.__members__.values())


def test_loss_and_grad_returns_a_copy(make_network):
    spec, params, x, y, sw = make_problem(A.TANH, L.MSE, A.IDENTITY, False, 0.0, True)
    net = make_network(spec, "float64", params)
    _, grad = net.loss_and_grad(x, y, sw)
    grad[:] = 123.0
    _, again = net.loss_and_grad(x, y, sw)
    assert not np.shares_memory(grad, net.params)
    assert not (again == 123.0).all()
    np.testing.assert_array_equal(net.params, params)


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-14), ("float32", 1e-6)])
def test_one_sgd_step_by_hand(make_network, dtype, tol):
    """A 2 -> 1 identity network, MSE (scale 1: the mean over samples), two samples, one
    full-batch SGD step with lr = 0.1: every weight moves by exactly -lr * dL/dW."""
    spec = ref.NetSpec([2, 1], [A.IDENTITY], [0.0], L.MSE, scale=1.0)
    # W = [[0.5], [-0.25]], b = [0.1]; flat layout W0 (row-major) then b0
    net = make_network(spec, dtype, np.array([0.5, -0.25, 0.1]))
    net.set_optimizer(O.SGD)
    x = np.array([[1.0, 2.0], [3.0, -1.0]], dtype=dtype)
    y = np.array([[1.0], [0.0]], dtype=dtype)
    # forward:  z1 = 1 * 0.5 + 2 * -0.25 + 0.1 = 0.1        z2 = 3 * 0.5 - 1 * -0.25 + 0.1 = 1.85
    # residual: r = z - y = [-0.9, 1.85]
    # loss:     L = (0.81 + 3.4225) / 2 = 2.11625
    # dL/dz = 2 r / N = [-0.9, 1.85]
    # dL/dW = x^T dL/dz = [1 * -0.9 + 3 * 1.85, 2 * -0.9 - 1 * 1.85] = [4.65, -3.65]
    # dL/db = -0.9 + 1.85 = 0.95
    # step:     W = [0.5 - 0.1 * 4.65, -0.25 + 0.1 * 3.65] = [0.035, 0.115]
    #           b = 0.1 - 0.1 * 0.95 = 0.005
    assert net.loss(x, y, None) == pytest.approx(2.11625, rel=tol)
    value, grad = net.loss_and_grad(x, y, None)
    np.testing.assert_allclose(grad, [4.65, -3.65, 0.95], rtol=tol)
    epoch_loss = net.train_epoch(x, y, None, 2, False, 0.1)
    assert epoch_loss == pytest.approx(2.11625, rel=tol)  # the loss before the step
    np.testing.assert_allclose(net.params, [0.035, 0.115, 0.005], rtol=10 * tol, atol=tol)
    np.testing.assert_allclose(net.weight(0), [[0.035], [0.115]], rtol=10 * tol, atol=tol)
    np.testing.assert_allclose(net.bias(0), [0.005], rtol=10 * tol, atol=tol)
    assert net.step == 1


def test_mse_after_softmax_is_rejected(make_network):
    """The core refuses this pairing (a softmax output goes with categorical cross-entropy only,
    which is what compile and the estimators rely on): the Network is never built."""
    spec, params, x, y, sw = make_problem(A.TANH, L.MSE, A.SOFTMAX, True, 0.0, True)
    with pytest.raises(ValueError, match="softmax output and categorical cross-entropy go together"):
        make_network(spec, "float64", params)
