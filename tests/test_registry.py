"""mlp/_registry.py: the one table of activation and loss names."""
import pytest

from mlp import _core
from mlp._registry import ACTIVATIONS, LOSS_ALIASES, activation_name, canonical_loss, \
    get_activation, get_loss


@pytest.mark.parametrize("alias, name", [
    ("identity", "linear"), ("linear", "linear"), ("logistic", "sigmoid"), ("silu", "swish"),
    ("relu", "relu"), ("leaky_relu", "leaky_relu"), ("elu", "elu"), ("tanh", "tanh"),
    ("softmax", "softmax"),
])
def test_activation_aliases(alias, name):
    kind, _ = get_activation(alias)
    assert activation_name(kind) == name


def test_activation_default_alphas():
    assert get_activation("leaky_relu") == (_core.Activation.LEAKY_RELU, 0.01)
    assert get_activation("elu") == (_core.Activation.ELU, 1.0)


def test_every_core_activation_is_named():
    # __members__ works both for a pybind11 enum and for an enum.IntEnum
    assert {kind for kind, _ in ACTIVATIONS.values()} == set(_core.Activation.__members__.values())


def test_unknown_activation_lists_valid_names():
    with pytest.raises(ValueError, match="unknown activation 'gelu' for activation; valid names: "
                                         "'identity', 'linear', 'relu'"):
        get_activation("gelu")
    with pytest.raises(TypeError, match="activation must be a string"):
        get_activation(3)


@pytest.mark.parametrize("alias, name", list(LOSS_ALIASES.items()))
def test_loss_aliases(alias, name):
    assert canonical_loss(alias) == name
    assert get_loss(alias) == get_loss(name)


def test_unknown_loss_lists_valid_names():
    with pytest.raises(ValueError, match="unknown loss 'hinge' for loss_fn; valid names: 'mse'"):
        get_loss("hinge")
    with pytest.raises(TypeError, match="loss_fn must be a string"):
        get_loss(None)
