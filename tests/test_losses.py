"""mlp/losses.py: the spec's Loss class; the values are means over samples (DESIGN.md)."""
import numpy as np
import pytest

from mlp import Loss, _core
from mlp.losses import get_loss


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _numeric_grad(f, z, h=1e-6):
    g = np.zeros_like(z)
    for idx in np.ndindex(*z.shape):
        zp, zm = z.copy(), z.copy()
        zp[idx] += h
        zm[idx] -= h
        g[idx] = (f(zp) - f(zm)) / (2 * h)
    return g


def test_spec_interface():
    loss = Loss("mse")
    assert loss.name == "mse"
    assert callable(loss.loss) and callable(loss.loss_derivative)
    y, p = np.array([[1.0], [0.0]]), np.array([[0.5], [0.5]])
    assert loss.forward(y, p) == loss.loss(y, p) == pytest.approx(0.25)
    np.testing.assert_array_equal(loss.backward(y, p), loss.loss_derivative(y, p))
    assert get_loss("mse") == (loss.loss, loss.loss_derivative)


def test_mse_is_the_mean_over_samples_and_outputs():
    rng = np.random.default_rng(0)
    y, p = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    loss = Loss("mse")
    assert loss.forward(y, p) == pytest.approx(np.sum((y - p) ** 2) / 18, rel=1e-12)
    np.testing.assert_allclose(loss.backward(y, p), _numeric_grad(lambda q: loss.forward(y, q), p),
                               rtol=1e-6, atol=1e-9)


def test_categorical_cross_entropy_and_fused_derivative():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(5, 4))
    y = np.eye(4)[rng.integers(0, 4, size=5)]
    loss = Loss("categorical_cross_entropy")
    p = _softmax(z)
    assert loss.forward(y, p) == pytest.approx(-np.sum(y * np.log(p)) / 5, rel=1e-12)
    # backward is dL/dz through the softmax: the pair's derivatives are computed together
    np.testing.assert_allclose(loss.backward(y, p),
                               _numeric_grad(lambda q: loss.forward(y, _softmax(q)), z),
                               rtol=1e-6, atol=1e-9)


def test_binary_cross_entropy_and_fused_derivative():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(6, 2))
    y = rng.integers(0, 2, size=(6, 2)).astype(float)
    loss = Loss("binary_cross_entropy")
    p = 1 / (1 + np.exp(-z))
    expected = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert loss.forward(y, p) == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(loss.backward(y, p),
                               _numeric_grad(lambda q: loss.forward(y, 1 / (1 + np.exp(-q))), z),
                               rtol=1e-6, atol=1e-9)


def test_saturated_predictions_give_finite_loss():
    y = np.array([[1.0, 0.0]])
    assert np.isfinite(Loss("categorical_cross_entropy").forward(y, np.array([[0.0, 1.0]])))
    assert np.isfinite(Loss("binary_cross_entropy").forward(y, np.array([[0.0, 1.0]])))


@pytest.mark.parametrize("name, canonical", [
    ("mean_squared_error", "mse"),
    ("categorical_crossentropy", "categorical_cross_entropy"),
    ("binary_crossentropy", "binary_cross_entropy"),
])
def test_aliases(name, canonical):
    assert Loss(name).name == canonical
    assert Loss(name).loss is Loss(canonical).loss


def test_unknown_and_bad_names():
    with pytest.raises(ValueError, match="unknown loss 'hinge'.*valid names: 'mse'"):
        Loss("hinge")
    with pytest.raises(TypeError, match="must be a string"):
        Loss(None)


def test_shapes():
    loss = Loss("mse")
    assert loss.forward([1.0, 2.0], [[1.0], [2.0]]) == 0.0  # (N,) against (N, 1)
    with pytest.raises(ValueError, match="y_true and y_pred must have the same shape"):
        loss.forward(np.ones((2, 2)), np.ones((2, 3)))


@pytest.mark.parametrize("name, act", [
    ("mse", _core.ActivationKind.TANH),
    ("categorical_cross_entropy", _core.ActivationKind.SOFTMAX),
    ("binary_cross_entropy", _core.ActivationKind.SIGMOID),
])
def test_numpy_loss_matches_the_core_convention(name, act):
    # The numpy Loss and the core's loss_forward(scale=Loss.scale) must agree, so the two
    # training paths and the reported numbers use one convention.
    rng = np.random.default_rng(3)
    z = rng.normal(size=(8, 3))
    a = _core.activation_forward(z, act, 0.0)
    y = np.eye(3)[rng.integers(0, 3, size=8)]
    loss = Loss(name)
    core = _core.loss_forward(z, a, y, loss.kind, None, loss.scale(3))
    assert core == pytest.approx(loss.forward(y, a), rel=1e-9)
    if name != "mse":
        dz = _core.loss_backward(z, a, y, loss.kind, act, 0.0, None, loss.scale(3))
        np.testing.assert_allclose(dz, loss.backward(y, a), rtol=1e-9, atol=1e-12)
