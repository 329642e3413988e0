"""mlp/_spec.py: the one table of activations and losses, and the network description."""
import numpy as np
import pytest

from mlp import _core, _spec
from mlp._spec import LayerSpec, NetworkSpec

_CORE_ACTIVATION = _core.ActivationKind


@pytest.mark.parametrize("alias, name", [
    ("identity", "linear"), ("linear", "linear"), ("logistic", "sigmoid"), ("silu", "swish"),
    ("relu", "relu"), ("leaky_relu", "leaky_relu"), ("elu", "elu"), ("tanh", "tanh"),
    ("softmax", "softmax"), ("selu", "selu"), ("mish", "mish"), ("gelu", "gelu"),
    ("gelu_tanh", "gelu_tanh"),
])
def test_activation_aliases(alias, name):
    assert _spec.activation(alias).name == name


def test_which_activations_take_alpha():
    assert {a.name: a.alpha for a in _spec.ACTIVATIONS if a.takes_alpha} == \
        {"leaky_relu": 0.01, "elu": 1.0}


def test_every_core_activation_has_one_row():
    # __members__ works both for a pybind11 enum and for an enum.IntEnum
    kinds = [int(a.kind) for a in _spec.ACTIVATIONS]
    assert len(kinds) == len(set(kinds))
    assert set(kinds) == {int(k) for k in _CORE_ACTIVATION.__members__.values()}
    for a in _spec.ACTIVATIONS:
        assert _spec.activation_of_kind(a.kind) is a
        assert a.init in ("he", "glorot", "lecun") and a.glorot_factor in (2.0, 6.0)


def test_newer_activations_rows():
    rows = {a.name: a for a in _spec.ACTIVATIONS}
    assert {name: rows[name].init for name in ("selu", "mish", "gelu", "gelu_tanh")} == \
        {"selu": "lecun", "mish": "he", "gelu": "he", "gelu_tanh": "he"}
    # the values saved files hold: appended after softmax, the first eight unchanged
    assert [int(rows[n].kind) for n in ("linear", "relu", "leaky_relu", "elu", "sigmoid", "tanh",
                                        "swish", "softmax", "selu", "mish", "gelu",
                                        "gelu_tanh")] == list(range(12))
    for name in ("selu", "mish", "gelu", "gelu_tanh"):
        assert not rows[name].takes_alpha
    # names are case-sensitive, as for every other activation
    with pytest.raises(ValueError, match="unknown activation 'GELU'"):
        _spec.activation("GELU")


def test_unknown_activation_lists_valid_names():
    with pytest.raises(ValueError, match="unknown activation 'hardswish' for activation; valid "
                                         "names: 'identity', 'linear', 'relu'.*'gelu_tanh'"):
        _spec.activation("hardswish")
    with pytest.raises(TypeError, match="activation must be a string"):
        _spec.activation(3)


@pytest.mark.parametrize("alias, name", [
    ("mse", "mse"), ("mean_squared_error", "mse"),
    ("categorical_cross_entropy", "categorical_cross_entropy"),
    ("categorical_crossentropy", "categorical_cross_entropy"),
    ("binary_cross_entropy", "binary_cross_entropy"), ("binary_crossentropy", "binary_cross_entropy"),
])
def test_loss_aliases(alias, name):
    assert _spec.loss(alias).name == name
    assert _spec.loss(alias).kind == _spec.loss(name).kind


def test_unknown_loss_lists_valid_names():
    with pytest.raises(ValueError, match="unknown loss 'hinge' for loss_fn; valid names: 'mse'"):
        _spec.loss("hinge")
    with pytest.raises(ValueError, match="unknown loss 'poisson'"):  # the regressor's own
        _spec.loss("poisson")
    with pytest.raises(TypeError, match="loss_fn must be a string"):
        _spec.loss(None)


def test_folding_standalone_activations():
    spec = NetworkSpec(3, (LayerSpec(4, "linear"), LayerSpec(None, "relu"),
                           LayerSpec(2, "linear"), LayerSpec(None, "linear")))
    folded = spec.folded()
    assert folded.layers == (LayerSpec(4, "relu"), LayerSpec(2, "linear"))
    assert folded.sizes == [3, 4, 2] and spec.sizes == [3, 4, 2]
    # an activation after a non-linear one, or before any Dense, has no per-layer kernel
    assert NetworkSpec(3, (LayerSpec(4, "tanh"), LayerSpec(None, "relu"))).folded() is None
    assert NetworkSpec(3, (LayerSpec(None, "relu"), LayerSpec(4, "linear"))).folded() is None


def test_build_makes_the_described_network():
    spec = NetworkSpec.dense([5, 7, 3], ["tanh", "softmax"], loss="categorical_cross_entropy",
                             dtype="float64")
    net = spec.build()
    assert list(net.sizes) == [5, 7, 3] and net.dtype == "float64"
    assert net.n_params == spec.n_params == 5 * 7 + 7 + 7 * 3 + 3
    x = np.random.default_rng(0).normal(size=(4, 5))
    assert np.allclose(net.predict(x).sum(axis=1), 1.0)  # the softmax output is there
    with pytest.raises(ValueError, match="only Dense layers"):
        NetworkSpec(5, (LayerSpec(None, "relu"),), loss="mse").build()
    with pytest.raises(ValueError, match="layer width"):
        NetworkSpec.dense([5, 2**31 + 1], ["linear"], loss="mse").build()


def test_summary_rows():
    spec = NetworkSpec(3, (LayerSpec(4, "linear"), LayerSpec(None, "relu"), LayerSpec(2, "sigmoid")))
    assert spec.summary_rows() == [("Dense", 4, "linear", 16), ("Activation", 4, "relu", 0),
                                   ("Dense", 2, "sigmoid", 10)]
