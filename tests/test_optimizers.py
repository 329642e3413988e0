"""mlp/optimizers.py: the settings, their names, and the Python path's numpy steps."""
import numpy as np
import pytest

from mlp import SGD, Adam, Momentum, _core
from mlp.optimizers import get_optimizer


def test_names_resolve_to_settings():
    assert type(get_optimizer("sgd")) is SGD and get_optimizer("sgd").momentum == 0.0
    assert type(get_optimizer("momentum")) is Momentum and get_optimizer("momentum").momentum == 0.9
    nesterov = get_optimizer("nesterov")
    assert nesterov.nesterov and nesterov.momentum == 0.9
    adam = get_optimizer("adam")
    assert (adam.beta_1, adam.beta_2, adam.epsilon) == (0.9, 0.999, 1e-8)
    mine = Adam(beta_1=0.5)
    assert get_optimizer(mine) is mine
    assert repr(SGD(momentum=0.5)) == "SGD(momentum=0.5, nesterov=False, l2=0.0)"


@pytest.mark.parametrize("make, exc, match", [
    (lambda: Adam(beta_1=1.0), ValueError, "beta_1 must be a number in"),
    (lambda: Adam(beta_2=-0.1), ValueError, "beta_2 must be a number in"),
    (lambda: Adam(epsilon=0), ValueError, "epsilon must be a finite number > 0"),
    (lambda: SGD(momentum=1.5), ValueError, "momentum must be a number in"),
    (lambda: SGD(nesterov="yes"), TypeError, "nesterov must be True or False"),
    (lambda: SGD(l2=-1), ValueError, "l2 must be a finite number >= 0"),
    (lambda: Momentum(momentum=float("nan")), ValueError, "momentum must be a number in"),
    (lambda: get_optimizer("rmsprop"), ValueError, "unknown optimizer 'rmsprop'.*'adam'"),
    (lambda: get_optimizer(None), TypeError, "optimizer must be a name or an Optimizer"),
])
def test_settings_are_checked(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


@pytest.mark.parametrize("opt", [SGD(), SGD(momentum=0.7), SGD(momentum=0.7, nesterov=True),
                                 Adam(), Adam(beta_1=0.5, beta_2=0.9, epsilon=1e-3)],
                         ids=["sgd", "momentum", "nesterov", "adam", "adam-custom"])
def test_numpy_step_matches_core_kernel(opt):
    # The Python path's step and the core's kernel implement the same rule.
    rng = np.random.default_rng(0)
    params = rng.normal(size=11)
    mine, core = params.copy(), params.copy()
    state = [np.zeros(11), np.zeros(11)]
    opt.reset()
    for t in range(1, 4):
        grads = rng.normal(size=11)
        opt._step([(mine, grads, False)], 0.1)
        if isinstance(opt, Adam):
            _core.adam_step(core, grads, state[0], state[1], 0.1, opt.beta_1, opt.beta_2, opt.epsilon, t)
        else:
            _core.sgd_step(core, grads, state[0], 0.1, opt.momentum, opt.nesterov)
        np.testing.assert_allclose(mine, core, rtol=1e-12, atol=1e-15, err_msg=f"{opt!r} step {t}")


def test_l2_is_added_to_weights_only():
    opt = SGD(l2=0.5)
    w, b = np.ones(3), np.ones(3)
    opt._step([(w, np.zeros(3), True), (b, np.zeros(3), False)], 0.1)
    np.testing.assert_allclose(w, 1 - 0.1 * 0.5)
    np.testing.assert_allclose(b, 1.0)
