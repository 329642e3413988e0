"""mlp/layers.py: Layer, the activations and Dense against float64 numpy references."""
import math

import numpy as np
import pytest

from mlp import ELU, GELU, SELU, Activation, Dense, Layer, LeakyReLU, Linear, Mish, ReLU, Sigmoid, \
    Softmax, Swish, Tanh


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


_ERF = np.vectorize(math.erf)
_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


# name -> float64 reference of the forward pass
REFERENCE = {
    "linear": lambda z: z,
    "relu": lambda z: np.maximum(z, 0.0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
    "elu": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0.0))),
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "swish": lambda z: z * _sigmoid(z),
    "softmax": _softmax,
    "selu": lambda z: _SELU_SCALE * np.where(z > 0, z, _SELU_ALPHA * np.expm1(np.minimum(z, 0.0))),
    "mish": lambda z: z * np.tanh(np.log1p(np.exp(z))),
    "gelu": lambda z: 0.5 * z * (1.0 + _ERF(z / math.sqrt(2.0))),
    "gelu_tanh": lambda z: 0.5 * z * (1.0 + np.tanh(math.sqrt(2.0 / math.pi)
                                                    * (z + 0.044715 * z ** 3))),
}
CLASSES = {"linear": Linear, "relu": ReLU, "leaky_relu": LeakyReLU, "elu": ELU, "sigmoid": Sigmoid,
           "tanh": Tanh, "swish": Swish, "softmax": Softmax, "selu": SELU, "mish": Mish,
           "gelu": GELU, "gelu_tanh": lambda: GELU(approximate="tanh")}


def _inputs(rng, shape=(5, 3)):
    z = rng.normal(size=shape) * 2
    # Keep away from the kinks of relu/leaky_relu/elu so the finite differences are smooth.
    return np.where(np.abs(z) < 0.1, 0.5, z)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_activation_forward_matches_reference(name):
    z = _inputs(np.random.default_rng(0))
    for act in (Activation(name), CLASSES[name]()):
        out = act.forward(z)
        np.testing.assert_allclose(out, REFERENCE[name](z), rtol=1e-12, atol=1e-14,
                                   err_msg=f"{name} forward, shape {z.shape}")
        assert act.input is not None and act.output is out


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_activation_backward_is_the_jacobian_product(name):
    rng = np.random.default_rng(1)
    z = _inputs(rng)
    da = rng.normal(size=z.shape)
    act = CLASSES[name]()
    act.forward(z)
    dz = act.backward(da, 0.1)
    # central differences of sum(da * f(z)) in float64
    h = 1e-6
    numeric = np.zeros_like(z)
    for idx in np.ndindex(*z.shape):
        zp, zm = z.copy(), z.copy()
        zp[idx] += h
        zm[idx] -= h
        numeric[idx] = np.sum(da * (REFERENCE[name](zp) - REFERENCE[name](zm))) / (2 * h)
    np.testing.assert_allclose(dz, numeric, rtol=1e-6, atol=1e-8, err_msg=f"{name} backward")


def test_activation_keeps_float32_and_one_sample_rank():
    out = ReLU().forward(np.array([[-1.0, 2.0]], dtype=np.float32))
    assert out.dtype == np.float32
    act = Tanh()
    out = act.forward([-1, 0, 1])  # a list of ints: one sample
    assert out.shape == (3,) and out.dtype == np.float64
    assert act.backward(np.ones(3), 0.1).shape == (3,)
    np.testing.assert_allclose(Softmax().forward([1.0, 1.0]), [0.5, 0.5])


def test_activation_alpha():
    z = np.array([[-2.0, 3.0]])
    np.testing.assert_allclose(LeakyReLU(alpha=0.2).forward(z), [[-0.4, 3.0]])
    np.testing.assert_allclose(ELU(alpha=2.0).forward(z), [[2.0 * math.expm1(-2.0), 3.0]])
    np.testing.assert_allclose(Activation("leaky_relu", alpha=0.5).forward(z), [[-1.0, 3.0]])
    assert LeakyReLU().alpha == 0.01 and ELU().alpha == 1.0
    with pytest.raises(ValueError, match="alpha only applies to 'leaky_relu' and 'elu'"):
        Activation("relu", alpha=0.1)
    with pytest.raises(ValueError, match="alpha must be a finite number >= 0"):
        LeakyReLU(alpha=float("nan"))


def test_activation_names_and_errors():
    assert Activation("logistic").name == "sigmoid" and Activation("silu").name == "swish"
    assert Activation("identity").name == "linear"
    with pytest.raises(ValueError, match="unknown activation 'hardswish'.*valid names: .*'relu'"):
        Activation("hardswish")
    with pytest.raises(TypeError, match="activation must be a string"):
        Activation(1)
    with pytest.raises(TypeError, match="Activation needs a name"):
        Activation()
    with pytest.raises(RuntimeError, match="backward was called before forward"):
        ReLU().backward(np.ones((1, 1)), 0.1)
    act = ReLU()
    act.forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match="output_error must have the shape of the forward output"):
        act.backward(np.ones((3, 2)), 0.1)
    with pytest.raises(TypeError, match="input must be an array of real numbers"):
        act.forward([["a"]])


def test_newer_activation_classes():
    for cls, name in ((SELU, "selu"), (Mish, "mish"), (GELU, "gelu")):
        act = cls()
        assert act.name == name and act.is_builtin and act.alpha == 0.0
        assert repr(act) == f"{cls.__name__}()"
        assert Activation(name).kind == act.kind
        with pytest.raises(ValueError, match=f"alpha only applies to .* not '{name}'"):
            Activation(name, alpha=0.5)
    assert GELU().approximate is False and GELU(False).name == "gelu"
    assert GELU(approximate="none").name == "gelu"
    tanh = GELU(approximate="tanh")
    assert tanh.name == "gelu_tanh" and tanh.approximate == "tanh"
    assert repr(tanh) == "GELU(approximate='tanh')"
    assert GELU(approximate=True).name == "gelu_tanh"
    assert Activation("gelu_tanh").kind == tanh.kind != GELU().kind
    for bad in ("erf", "Tanh", 1, None, 0.5):
        with pytest.raises(ValueError, match="approximate must be False .* or 'tanh'"):
            GELU(approximate=bad)
    # the two GELUs differ by up to ~1e-3 (their largest gap is near |z| = 2)
    z = np.linspace(-4, 4, 81)
    gap = np.abs(GELU().forward(z) - tanh.forward(z)).max()
    assert 1e-4 < gap < 1e-3


@pytest.mark.parametrize("name", ["selu", "mish", "gelu", "gelu_tanh"])
def test_newer_activations_as_dense_strings_and_instances(name):
    x = np.random.default_rng(3).normal(size=(6, 4))
    by_name = Dense(5, input_size=4, activation=name, seed=0)
    by_class = Dense(5, input_size=4, activation=CLASSES[name](), seed=0)
    assert by_name.activation.name == by_class.activation.name == name
    np.testing.assert_array_equal(by_name.weights, by_class.weights)
    out = by_name.forward(x)
    np.testing.assert_allclose(out, REFERENCE[name](x @ by_name.weights.astype(np.float64)
                                                    + by_name.bias), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(by_class.forward(x), out)
    assert repr(by_name) == f"Dense(output_size=5, input_size=4, activation={name!r})"


def test_activation_has_no_parameters():
    act = Sigmoid()
    act.update(0.1)  # nothing to do, but callable as the spec's Layer API requires
    assert act.count_params() == 0


def test_layer_base_is_the_spec_interface():
    layer = Layer()
    assert layer.input is None and layer.output is None
    for call in (lambda: layer.forward(1), lambda: layer.backward(1, 0.1), lambda: layer.update(0.1)):
        with pytest.raises(NotImplementedError):
            call()
    with pytest.raises(TypeError, match="a layer must be called on the previous Layer"):
        layer("not a layer")
    with pytest.raises(ValueError, match="cannot be chained after itself"):
        layer(layer)
    assert layer.compute_output_size(7) == 7


# -- Dense ----------------------------------------------------------------------------------------

def test_dense_shapes_and_chaining():
    inputs = Dense(input_size=2, output_size=16, activation="tanh")
    x = Dense(output_size=8, activation="relu")(inputs)
    assert x.input_size == 16
    assert x.weights.shape == (16, 8) and x.bias.shape == (8,)
    # chaining through a standalone activation keeps the width
    y = Dense(3)(ReLU()(x))
    assert y.input_size == 8
    assert Dense(5, input_size=8)(x).input_size == 8
    with pytest.raises(ValueError, match="input_size=9 does not match the previous layer's output width 8"):
        Dense(5, input_size=9)(x)


def test_dense_needs_input_size_after_a_layer_of_unknown_width():
    class Opaque(Layer):
        def compute_output_size(self, input_size):
            return None

    with pytest.raises(ValueError, match="cannot infer input_size after Opaque"):
        Dense(3)(Opaque())
    assert Dense(3, input_size=4)(Opaque()).input_size == 4


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"output_size": 0}, ValueError, "output_size must be an integer >= 1"),
    ({"output_size": -3}, ValueError, "output_size must be an integer >= 1"),
    ({"output_size": 2.0}, TypeError, "output_size must be an integer"),
    ({"output_size": 2, "input_size": 0}, ValueError, "input_size must be an integer >= 1"),
    ({"output_size": 2, "activation": "nope"}, ValueError, "unknown activation 'nope'"),
    ({"output_size": 2, "activation": 3}, TypeError, "activation must be None, a name"),
    ({"output_size": 2, "activation": Dense(1)}, TypeError, "activation must be None, a name"),
    ({"output_size": 2, "seed": -1}, ValueError, "seed must be in"),
])
def test_dense_rejects(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        Dense(**kwargs)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_dense_forward_backward_match_reference(name):
    rng = np.random.default_rng(2)
    layer = Dense(4, input_size=3, activation=name, seed=0)
    layer.weights = rng.normal(size=(3, 4))
    layer.bias = rng.normal(size=4)
    x = rng.normal(size=(7, 3))
    w, b = layer.weights.astype(np.float64), layer.bias.astype(np.float64)
    x32 = x.astype(np.float32).astype(np.float64)
    out = layer.forward(x)
    assert out.dtype == np.float32 and out.shape == (7, 4)
    np.testing.assert_allclose(out, REFERENCE[name](x32 @ w + b), rtol=1e-5, atol=1e-5,
                               err_msg=f"Dense({name}) forward, x (7, 3)")

    da = rng.normal(size=(7, 4))
    dx = layer.backward(da, 0.1)
    # reference dz through the activation layer (its backward was checked above), then the GEMMs
    act = Activation(name)
    act.forward(x32 @ w + b)
    dz = act.backward(da)
    np.testing.assert_allclose(layer.dweights, x32.T @ dz, rtol=1e-4, atol=1e-4, err_msg=f"{name} dW")
    np.testing.assert_allclose(layer.dbias, dz.sum(axis=0), rtol=1e-4, atol=1e-4, err_msg=f"{name} db")
    np.testing.assert_allclose(dx, dz @ w.T, rtol=1e-4, atol=1e-4, err_msg=f"{name} dx")


def test_dense_update_is_a_plain_gradient_step():
    layer = Dense(2, input_size=3, activation="tanh", seed=1)
    with pytest.raises(RuntimeError, match="update was called before backward"):
        layer.update(0.1)
    w0, b0 = layer.weights.copy(), layer.bias.copy()
    layer.forward(np.ones((4, 3)))
    layer.backward(np.ones((4, 2)), 0.5)
    layer.update(0.5)
    np.testing.assert_allclose(layer.weights, w0 - np.float32(0.5) * layer.dweights, rtol=1e-6)
    np.testing.assert_allclose(layer.bias, b0 - np.float32(0.5) * layer.dbias, rtol=1e-6)
    with pytest.raises(ValueError, match="learning_rate must be a finite number > 0"):
        layer.update(-1.0)


def test_dense_one_sample_and_width_errors():
    layer = Dense(2, input_size=3)
    assert layer.forward([1, 2, 3]).shape == (2,)
    assert layer.backward([1.0, 1.0], 0.1).shape == (3,)
    with pytest.raises(ValueError, match="input has 4 features but the layer expects input_size=3"):
        layer.forward(np.ones((2, 4)))
    with pytest.raises(RuntimeError, match="no weights yet"):
        Dense(2).forward(np.ones((1, 1)))


def test_dense_weights_assignment():
    layer = Dense(3, input_size=2)
    original = layer.weights
    layer.weights = [[1, 2, 3], [4, 5, 6]]
    assert layer.weights is original  # copied into the existing array
    np.testing.assert_array_equal(layer.weights, [[1, 2, 3], [4, 5, 6]])
    layer.bias = np.array([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(layer.bias, [1, 2, 3])
    with pytest.raises(ValueError, match=r"weights must have shape \(2, 3\) \(input_size, output_size\), got \(3, 2\)"):
        layer.weights = np.ones((3, 2))
    with pytest.raises(ValueError, match=r"bias must have shape \(3,\) \(output_size,\), got \(2,\)"):
        layer.bias = np.ones(2)
    with pytest.raises(ValueError, match="weights must be a 2-D array"):
        layer.weights = np.ones(6)
    with pytest.raises(ValueError, match="weights contains NaN"):
        layer.weights = np.full((2, 3), np.nan)
    with pytest.raises(ValueError, match="weights cannot be set before input_size is known"):
        Dense(3).weights = np.ones((2, 3))


def test_dense_initialisation_schemes():
    fan_in, fan_out = 50, 30
    glorot = math.sqrt(6 / (fan_in + fan_out))
    for name in ("tanh", "softmax", "linear"):
        layer = Dense(fan_out, input_size=fan_in, activation=name, seed=0)
        assert np.abs(layer.weights).max() <= glorot
        assert np.abs(layer.weights).max() > 0.9 * glorot  # uses the whole range
        assert np.abs(layer.bias).max() <= glorot and np.any(layer.bias != 0)
    sigmoid = Dense(fan_out, input_size=fan_in, activation="sigmoid", seed=0)
    bound = math.sqrt(2 / (fan_in + fan_out))  # scikit-learn's factor for logistic
    assert bound * 0.9 < np.abs(sigmoid.weights).max() <= bound
    for name in ("relu", "leaky_relu", "elu", "swish", "mish", "gelu", "gelu_tanh"):
        layer = Dense(fan_out, input_size=fan_in, activation=name, seed=0)
        he = math.sqrt(6 / fan_in)
        assert he * 0.9 < np.abs(layer.weights).max() <= he
        assert np.all(layer.bias == 0)
    # selu: LeCun normal, N(0, 1 / fan_in), zero bias; 1500 draws pin the spread to ~4%
    layer = Dense(fan_out, input_size=fan_in, activation="selu", seed=0)
    std = layer.weights.astype(np.float64).std()
    assert abs(std / math.sqrt(1 / fan_in) - 1) < 0.1
    assert np.abs(layer.weights).max() > math.sqrt(6 / fan_in)  # not bounded like a uniform
    assert abs(layer.weights.mean()) < 0.1 * math.sqrt(1 / fan_in) and np.all(layer.bias == 0)
    np.random.seed(1)
    first = Dense(fan_out, input_size=fan_in, activation=SELU()).weights.copy()
    np.random.seed(1)
    np.testing.assert_array_equal(Dense(fan_out, input_size=fan_in, activation="selu").weights,
                                  first)  # numpy's global state, like the other rules


def test_dense_weights_follow_numpy_global_seed():
    np.random.seed(42)
    a = Dense(4, input_size=3, activation="relu")
    b = Dense(2, activation="tanh")(a)
    np.random.seed(42)
    c = Dense(4, input_size=3, activation="relu")
    d = Dense(2, activation="tanh")(c)
    np.testing.assert_array_equal(a.weights, c.weights)
    np.testing.assert_array_equal(b.weights, d.weights)
    np.testing.assert_array_equal(b.bias, d.bias)
    assert not np.array_equal(Dense(4, input_size=3).weights, Dense(4, input_size=3).weights)


def test_dense_seed_ignores_global_state():
    np.random.seed(1)
    a = Dense(4, input_size=3, seed=7)
    np.random.seed(2)
    b = Dense(4, input_size=3, seed=7)
    np.testing.assert_array_equal(a.weights, b.weights)
    state = np.random.get_state()[1].copy()
    Dense(4, input_size=3, seed=7)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # global state untouched


def test_create_weights_redraws_in_place():
    layer = Dense(3, input_size=2)
    w = layer.weights
    before = w.copy()
    layer.create_weights()
    assert layer.weights is w and not np.array_equal(w, before)
    with pytest.raises(ValueError, match="input_size is not known yet"):
        Dense(3).create_weights()


def test_dense_activation_instance_and_count_params():
    relu = ReLU()
    layer = Dense(4, input_size=3, activation=relu)
    assert layer.activation is relu and layer.activation.name == "relu"
    assert Dense(4, input_size=3).activation.name == "linear"
    assert layer.count_params() == 16
    with pytest.raises(ValueError, match="input_size is not known yet"):
        Dense(2).count_params()
    assert "activation='relu'" in repr(layer)


def test_dense_with_a_custom_activation():
    class Cube(Activation):
        def forward(self, input):
            self.input = np.asarray(input)
            self.output = self.input ** 3
            return self.output

        def backward(self, output_error, learning_rate=None):
            return output_error * 3 * self.input ** 2

    layer = Dense(2, input_size=2, activation=Cube(), seed=0)
    assert not layer.activation.is_builtin
    x = np.array([[0.5, -1.0]], dtype=np.float32)
    z = x @ layer.weights + layer.bias
    np.testing.assert_allclose(layer.forward(x), z ** 3, rtol=1e-6)
    layer.backward(np.ones((1, 2)), 0.1)
    np.testing.assert_allclose(layer.dbias, 3 * z[0] ** 2, rtol=1e-5)
