"""The spec's layers: `Layer`, `Activation` and its subclasses, and `Dense`.

Each layer's own forward/backward runs through the C++ kernels one call at a time; that is the
slow path a Model takes only when it holds a user's own Layer subclass. A Model of built-in
layers hands the whole chain to ``mlp._core.Network`` instead, and the Dense layers' ``weights``
and ``bias`` then become views into the network's parameter buffer.
"""
from __future__ import annotations

import math

import numpy as np

from . import _core, _format, _spec
from ._limits import MAX_WIDTH, SEED_LIMIT, check_allocation
from ._validation import as_float, check_array, check_learning_rate, check_non_negative_float, \
    check_seed, check_width

_LINEAR = _spec.activation("linear").kind


def _as_batch(a, name: str, dtype=None) -> tuple[np.ndarray, bool]:
    """Convert a layer input to a C-contiguous 2-D float array; a 1-D input is one sample.

    Returns the array and whether the input was 1-D (so the caller can hand back the same rank).
    No NaN check here: this runs on every batch of the slow path, where the data was checked once
    at fit and a NaN produced inside the network is reported by the loss instead.
    """
    arr = np.asarray(a)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be an array of real numbers, got dtype {arr.dtype}")
    if dtype is None:
        dtype = arr.dtype if arr.dtype in (np.float32, np.float64) else np.float64
    one_sample = arr.ndim == 1
    if one_sample:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 1-D (one sample) or 2-D (n_samples, n_features), "
                         f"got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    return as_float(arr, dtype, name), one_sample


def _as_error(output_error, output: np.ndarray | None, layer: Layer) -> np.ndarray:
    """Convert the error arriving at backward to the shape and dtype of the forward output."""
    if output is None:
        raise RuntimeError(f"{type(layer).__name__}.backward was called before forward")
    g = np.asarray(output_error)
    if g.dtype.kind not in "biuf":
        raise TypeError(f"output_error must be an array of real numbers, got dtype {g.dtype}")
    if g.size != output.size or (g.ndim == 2 and g.shape != output.shape) or g.ndim > 2:
        raise ValueError(f"output_error must have the shape of the forward output {output.shape}, "
                         f"got {g.shape}")
    return np.ascontiguousarray(g.reshape(output.shape), dtype=output.dtype)


class Layer:
    """Base class of every layer, as in the spec.

    A layer takes an input, applies a transformation and produces an output. Subclasses implement
    `forward`, `backward` and `update`; calling a layer on the previous one chains it into a model.

    Attributes
    ----------
    input : numpy.ndarray or None
        The last input seen by `forward`.
    output : numpy.ndarray or None
        The last output returned by `forward`.

    Examples
    --------
    A user's own layer; a Model holding it trains through the slower Python path.

    >>> class Scale(Layer):
    ...     def __init__(self, factor):
    ...         super().__init__()
    ...         self.factor = factor
    ...     def forward(self, input):
    ...         self.input = input
    ...         self.output = input * self.factor
    ...         return self.output
    ...     def backward(self, output_error, learning_rate):
    ...         return output_error * self.factor
    ...     def update(self, learning_rate):
    ...         pass
    """

    def __init__(self) -> None:
        self.input = None
        self.output = None
        self._prev = None

    def forward(self, input):
        """Compute the output for `input` (n_samples, n_features) and store both."""
        raise NotImplementedError

    def backward(self, output_error, learning_rate):
        """Take dL/d(output), store the parameter gradients, and return dL/d(input)."""
        raise NotImplementedError

    def update(self, learning_rate):
        """Apply the stored gradients to the parameters, scaled by `learning_rate`."""
        raise NotImplementedError

    def __call__(self, prev: Layer) -> Layer:
        """Chain this layer after `prev` and return this layer.

        Parameters
        ----------
        prev : Layer
            The layer whose output feeds this one.

        Returns
        -------
        Layer
            ``self``, so that chains read ``x = Dense(8)(x)``.

        Raises
        ------
        TypeError
            If `prev` is not a Layer.
        ValueError
            If `prev` is this layer itself.
        """
        if not isinstance(prev, Layer):
            raise TypeError(f"a layer must be called on the previous Layer, got {type(prev).__name__}")
        if prev is self:
            raise ValueError("a layer cannot be chained after itself")
        self._connect(prev)
        return self

    def _connect(self, prev: Layer) -> None:
        self._prev = prev

    def compute_output_size(self, input_size: int) -> int | None:
        """The width of this layer's output for an input of width `input_size`.

        The default keeps the width, as an element-wise layer does. Override it in a layer that
        changes the width, so that a Dense chained after it can infer its ``input_size``.
        """
        return input_size

    def count_params(self) -> int:
        """The number of trainable parameters (0 unless a subclass says otherwise)."""
        return 0


def output_size_of(layer: Layer) -> int | None:
    """The output width of `layer` as far as the chain behind it tells, or None if unknown."""
    chain = []
    while layer is not None and not isinstance(layer, Dense):
        chain.append(layer)
        layer = getattr(layer, "_prev", None)
        if len(chain) > 100_000:  # a cycle of layers; Model reports it properly
            return None
    if layer is not None:
        size = layer.output_size
    else:
        size = getattr(chain[-1], "input_size", None) if chain else None
    for link in reversed(chain):
        if size is None:
            return None
        size = link.compute_output_size(size)
    return size


class Activation(Layer):
    """An activation function as a layer: element-wise (row-wise for softmax), no parameters.

    It can stand in a chain on its own (``x = ReLU()(x)``) or be attached to a Dense layer
    (``Dense(8, activation=ReLU())`` or ``activation='relu'``).

    Parameters
    ----------
    activation : str
        A registered name: 'linear'/'identity', 'relu', 'leaky_relu', 'elu',
        'sigmoid'/'logistic', 'tanh', 'swish'/'silu', 'selu', 'mish', 'gelu', 'gelu_tanh' or
        'softmax'. A user's subclass that implements `forward` and `backward` itself may leave
        it out.
    alpha : float, optional
        leaky_relu's negative slope (default 0.01) or elu's saturation value (default 1.0).

    Raises
    ------
    ValueError
        If the name is unknown (the message lists the valid ones), or `alpha` is given for an
        activation without one.
    TypeError
        If the name is not a string.

    Examples
    --------
    >>> Activation("relu").forward(np.array([[-1.0, 2.0]]))
    array([[0., 2.]])
    """

    def __init__(self, activation: str | None = None, alpha: float | None = None) -> None:
        super().__init__()
        if activation is None:
            if not self._overrides_math():
                raise TypeError("Activation needs a name, e.g. Activation('relu'), or a subclass "
                                "that implements forward and backward")
            self.kind, self.alpha, self.name = None, alpha, type(self).__name__.lower()
            return
        info = _spec.activation(activation)
        self.kind, self.name = info.kind, info.name
        if alpha is None:
            alpha = info.alpha or 0.0
        elif not info.takes_alpha:
            takes = " and ".join(repr(a.name) for a in _spec.ACTIVATIONS if a.takes_alpha)
            raise ValueError(f"alpha only applies to {takes}, not {activation!r}")
        self.alpha = check_non_negative_float(alpha, "alpha")

    def _overrides_math(self) -> bool:
        cls = type(self)
        return cls.forward is not Activation.forward or cls.backward is not Activation.backward

    @property
    def is_builtin(self) -> bool:
        """True when the C++ kernels compute this activation (a Model can then run natively)."""
        return self.kind is not None and not self._overrides_math()

    def forward(self, input):
        """Apply the activation.

        Parameters
        ----------
        input : array-like of shape (n_samples, n_features) or (n_features,)

        Returns
        -------
        numpy.ndarray
            Same shape; float32 input stays float32, anything else becomes float64.
        """
        x, one_sample = _as_batch(input, "input")
        self.input = x
        self.output = _core.activation_forward(x, self.kind, self.alpha)
        return self.output[0] if one_sample else self.output

    def backward(self, output_error, learning_rate=None):
        """Return dL/d(input) from dL/d(output).

        For softmax this is the full row-wise Jacobian product; a Model pairing softmax with
        categorical cross-entropy skips it and uses the fused derivative instead.

        Parameters
        ----------
        output_error : array-like, the shape of the last output
        learning_rate : float, optional
            Unused (an activation has no parameters); kept for the spec's signature.
        """
        g = _as_error(output_error, self.output, self)
        dx = _core.activation_backward(self.input, self.output, g, self.kind, self.alpha)
        return dx[0] if np.ndim(output_error) == 1 else dx

    def update(self, learning_rate=None):
        """Nothing to update: an activation has no parameters."""

    def __repr__(self) -> str:
        if self.kind is not None and _spec.activation_of_kind(self.kind).takes_alpha:
            return f"{type(self).__name__}(alpha={self.alpha!r})"
        return f"{type(self).__name__}()"

    # -- description and state ------------------------------------------------------------------
    def _layer_spec(self) -> _spec.LayerSpec | None:
        """This activation as a standalone layer of a NetworkSpec; None for a user's own."""
        if not self._is_saveable():
            return None
        return _spec.LayerSpec(None, self.name, float(self.alpha))

    def _is_saveable(self) -> bool:
        return BUILTIN_ACTIVATIONS.get(type(self).__name__) is type(self) and self.is_builtin

    def _to_config(self, where: str) -> dict:
        """``{'class', 'name', 'alpha'}``; a user's own activation cannot be described."""
        if not self._is_saveable():
            raise _format.UnsupportedError(
                f"{where} is a {type(self).__name__}, a user's own activation; only the built-in "
                f"activations can be saved")
        return {"class": type(self).__name__, "name": self.name, "alpha": float(self.alpha)}

    @staticmethod
    def _from_config(spec, where: str) -> "Activation":
        """The activation `spec` (untrusted, from `_to_config`) describes."""
        _format.check_keys(spec, where, required=("class", "name", "alpha"))
        cls_name = _format.check_choice(spec["class"], f"{where}.class", tuple(BUILTIN_ACTIVATIONS))
        name = _format.check_str(spec["name"], f"{where}.name")
        alpha = _format.check_float(spec["alpha"], f"{where}.alpha")
        try:
            info = _spec.activation(name, f"{where}.name")
            cls = BUILTIN_ACTIVATIONS[cls_name]
            if cls_name == "Activation":
                act = cls(name, alpha if info.takes_alpha else None)
            elif cls_name in _ALPHA_CLASSES:
                act = cls(alpha)
            elif cls_name == "GELU":
                act = cls(approximate="tanh" if name == "gelu_tanh" else False)
            else:
                act = cls()
        except (TypeError, ValueError) as exc:
            raise ValueError(f"invalid mlp state: {where}: {exc}") from None
        if act.name != name or act.alpha != (alpha if info.takes_alpha else (info.alpha or 0.0)):
            _format.fail(where, f"a consistent {cls_name} (name {act.name!r}, alpha "
                                f"{act.alpha!r})", spec)
        return act


class ReLU(Activation):
    """``max(0, x)``."""

    def __init__(self) -> None:
        super().__init__("relu")


class Sigmoid(Activation):
    """``1 / (1 + exp(-x))``, a value in (0, 1)."""

    def __init__(self) -> None:
        super().__init__("sigmoid")


class Softmax(Activation):
    """``exp(x_i) / sum_j exp(x_j)`` over each row: a probability distribution.

    Use it only on the last layer, together with the 'categorical_cross_entropy' loss: their
    derivatives are computed together.
    """

    def __init__(self) -> None:
        super().__init__("softmax")


class Tanh(Activation):
    """``tanh(x)``, a value in (-1, 1)."""

    def __init__(self) -> None:
        super().__init__("tanh")


class Linear(Activation):
    """The identity ``x``; a Dense layer without an activation uses it."""

    def __init__(self) -> None:
        super().__init__("linear")


class LeakyReLU(Activation):
    """``x`` for x > 0, else ``alpha * x``.

    Parameters
    ----------
    alpha : float, default=0.01
        The slope for negative inputs, >= 0.
    """

    def __init__(self, alpha: float = 0.01) -> None:
        super().__init__("leaky_relu", alpha)


class ELU(Activation):
    """``x`` for x > 0, else ``alpha * (exp(x) - 1)``.

    Parameters
    ----------
    alpha : float, default=1.0
        The value approached for large negative inputs is ``-alpha``; >= 0.
    """

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__("elu", alpha)


class Swish(Activation):
    """``x * sigmoid(x)``, also called SiLU."""

    def __init__(self) -> None:
        super().__init__("swish")


class SELU(Activation):
    """``scale * x`` for x > 0, else ``scale * alpha * (exp(x) - 1)``, with the fixed
    ``alpha = 1.6732632...`` and ``scale = 1.0507009...`` of self-normalising networks
    (Klambauer et al., 2017). A Dense layer ending in it starts from LeCun-normal weights
    (standard deviation ``sqrt(1 / input_size)``), which that self-normalisation assumes.
    """

    def __init__(self) -> None:
        super().__init__("selu")


class Mish(Activation):
    """``x * tanh(softplus(x))`` = ``x * tanh(log(1 + exp(x)))`` (Misra, 2019)."""

    def __init__(self) -> None:
        super().__init__("mish")


class GELU(Activation):
    """The Gaussian error linear unit ``x * Phi(x)``, Phi the standard normal distribution
    function (Hendrycks & Gimpel, 2016).

    Parameters
    ----------
    approximate : False or 'tanh', default=False
        False (or 'none') computes ``0.5 * x * (1 + erf(x / sqrt(2)))`` exactly, the
        activation 'gelu'; 'tanh' (or True) the approximation
        ``0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3)))``, the activation
        'gelu_tanh', as ``torch.nn.GELU(approximate='tanh')`` does.

    Raises
    ------
    ValueError
        If `approximate` is none of these.

    Examples
    --------
    >>> GELU().name, GELU(approximate="tanh").name
    ('gelu', 'gelu_tanh')
    """

    def __init__(self, approximate=False) -> None:
        if isinstance(approximate, (bool, np.bool_)):
            name = "gelu_tanh" if approximate else "gelu"
        elif isinstance(approximate, str) and approximate in ("none", "tanh"):
            name = "gelu_tanh" if approximate == "tanh" else "gelu"
        else:
            raise ValueError(f"approximate must be False (or 'none') for the erf form, or 'tanh' "
                             f"(or True) for the tanh approximation, got {approximate!r}")
        super().__init__(name)

    @property
    def approximate(self):
        """False for the erf form, 'tanh' for the tanh approximation."""
        return "tanh" if self.name == "gelu_tanh" else False

    def __repr__(self) -> str:
        return "GELU(approximate='tanh')" if self.approximate else "GELU()"


# The activation classes a file can name, by class name.
BUILTIN_ACTIVATIONS = {cls.__name__: cls for cls in (Activation, ReLU, Sigmoid, Softmax, Tanh,
                                                     Linear, LeakyReLU, ELU, Swish, SELU, Mish,
                                                     GELU)}
_ALPHA_CLASSES = ("LeakyReLU", "ELU")


def _resolve_activation(activation) -> Activation:
    if activation is None:
        return Linear()
    if isinstance(activation, str):
        return Activation(activation)
    if isinstance(activation, Activation):
        return activation
    raise TypeError(f"activation must be None, a name such as 'relu', or an Activation instance, "
                    f"got {type(activation).__name__}")


class Dense(Layer):
    """A fully connected layer: ``output = act(input @ weights + bias)``.

    Parameters
    ----------
    output_size : int
        The number of neurons, >= 1.
    input_size : int, optional
        The input width. Leave it out on every layer but the first: calling the layer on the
        previous one infers it.
    activation : str or Activation, optional
        A name such as ``'relu'`` or an instance such as ``ReLU()``; None means linear.
    seed : int, optional
        Draw the initial weights from ``np.random.default_rng(seed)``. Without it they come from
        numpy's global random state, so ``np.random.seed`` makes a model repeatable.

    Attributes
    ----------
    weights : numpy.ndarray of shape (input_size, output_size)
    bias : numpy.ndarray of shape (output_size,)
    dweights, dbias : numpy.ndarray or None
        The gradients from the last `backward`.

    Raises
    ------
    TypeError, ValueError
        If a size is not an integer in [1, 2**31], the weights could never fit in this machine's
        memory, or the activation is unknown.

    Examples
    --------
    >>> inputs = Dense(input_size=2, output_size=16, activation='tanh')
    >>> x = Dense(output_size=8, activation='relu')(inputs)
    >>> x.weights.shape
    (16, 8)
    """

    def __init__(self, output_size: int, input_size: int | None = None, activation=None,
                 seed: int | None = None) -> None:
        super().__init__()
        self.output_size = check_width(output_size, "output_size")
        self.input_size = None if input_size is None else check_width(input_size, "input_size")
        self.activation = _resolve_activation(activation)
        self.seed = check_seed(seed)
        self._weights = None
        self._bias = None
        self._z = None
        self.dweights = None
        self.dbias = None
        if self.input_size is not None:
            self.create_weights()

    # -- chaining -------------------------------------------------------------------------------
    def _connect(self, prev: Layer) -> None:
        size = output_size_of(prev)
        if size is None:
            if self.input_size is None:
                raise ValueError(f"cannot infer input_size after {type(prev).__name__}: its output "
                                 f"width is unknown; give Dense(..., input_size=...)")
        elif self.input_size is None:
            self.input_size = size
            self.create_weights()
        elif self.input_size != size:
            raise ValueError(f"input_size={self.input_size} does not match the previous layer's "
                             f"output width {size}")
        self._prev = prev

    def compute_output_size(self, input_size: int | None = None) -> int:
        return self.output_size

    # -- parameters -----------------------------------------------------------------------------
    def create_weights(self) -> None:
        """Create (or redraw in place) the weight and bias arrays.

        Glorot uniform for sigmoid, tanh, softmax and linear layers, with bound
        ``sqrt(f / (fan_in + fan_out))``, f = 6, or 2 for sigmoid as scikit-learn does; the bias
        is drawn within the same bound. He uniform for the ReLU family, ELU, swish, mish and
        both GELUs, with bound ``sqrt(6 / fan_in)`` and a zero bias. LeCun normal for SELU:
        standard deviation ``sqrt(1 / fan_in)``, zero bias. Drawn from ``np.random`` unless
        `seed` was given.

        Raises
        ------
        ValueError
            If the input size is not known yet, or the weights could never fit in memory.
        """
        if self.input_size is None:
            raise ValueError("input_size is not known yet; give it, or chain the layer first")
        fan_in, fan_out = self.input_size, self.output_size
        # The draw below is float64: 8 bytes per weight before the float32 copy.
        check_allocation(8 * (fan_in + 1) * fan_out,
                         f"the weights of Dense(output_size={fan_out}, input_size={fan_in})")
        rng = np.random if self.seed is None else np.random.default_rng(self.seed)
        uniform = rng.uniform
        act = self.activation
        info = _spec.activation_of_kind(act.kind) if act.kind is not None else \
            _spec.activation("linear")
        if info.init == "lecun":
            w = rng.normal(0.0, math.sqrt(1.0 / fan_in), (fan_in, fan_out))
            b = np.zeros(fan_out)
        elif info.init == "he":
            bound = math.sqrt(6.0 / fan_in)
            w = uniform(-bound, bound, (fan_in, fan_out))
            b = np.zeros(fan_out)
        else:
            bound = math.sqrt(info.glorot_factor / (fan_in + fan_out))
            w = uniform(-bound, bound, (fan_in, fan_out))
            b = uniform(-bound, bound, fan_out)
        if self._weights is not None and self._weights.shape == w.shape:
            # Redraw in place: the arrays may be views into a compiled Network.
            self._weights[...] = w
            self._bias[...] = b
        else:
            self._weights = np.ascontiguousarray(w, dtype=np.float32)
            self._bias = np.ascontiguousarray(b, dtype=np.float32)

    def _check_param(self, value, name: str, current: np.ndarray | None) -> np.ndarray:
        if current is None:
            raise ValueError(f"{name} cannot be set before input_size is known")
        arr = check_array(value, name, dtype=current.dtype, ndim=current.ndim)
        if arr.shape != current.shape:
            expected = "(input_size, output_size)" if name == "weights" else "(output_size,)"
            raise ValueError(f"{name} must have shape {current.shape} {expected}, got {arr.shape}")
        return arr

    @property
    def weights(self) -> np.ndarray | None:
        """The weight matrix, shape (input_size, output_size); None until input_size is known."""
        return self._weights

    @weights.setter
    def weights(self, value) -> None:
        # Copy into the existing array rather than rebinding it: after compile it is a view into
        # the Network's parameters, and rebinding would silently detach it.
        self._weights[...] = self._check_param(value, "weights", self._weights)

    @property
    def bias(self) -> np.ndarray | None:
        """The bias vector, shape (output_size,); None until input_size is known."""
        return self._bias

    @bias.setter
    def bias(self, value) -> None:
        self._bias[...] = self._check_param(value, "bias", self._bias)

    def count_params(self) -> int:
        """``input_size * output_size + output_size``.

        Raises
        ------
        ValueError
            If the input size is not known yet.
        """
        if self.input_size is None:
            raise ValueError("input_size is not known yet; chain the layer or give input_size")
        return self.input_size * self.output_size + self.output_size

    # -- computation ----------------------------------------------------------------------------
    def forward(self, input):
        """Compute ``act(input @ weights + bias)``.

        Parameters
        ----------
        input : array-like of shape (n_samples, input_size) or (input_size,)

        Returns
        -------
        numpy.ndarray of shape (n_samples, output_size) (or (output_size,)), in the weights' dtype.

        Raises
        ------
        ValueError
            If the input width is not input_size.
        """
        if self._weights is None:
            raise RuntimeError("the layer has no weights yet; give input_size or chain it first")
        x, one_sample = _as_batch(input, "input", self._weights.dtype)
        if x.shape[1] != self.input_size:
            raise ValueError(f"input has {x.shape[1]} features but the layer expects "
                             f"input_size={self.input_size}")
        act = self.activation
        if act.is_builtin:
            z, a = _core.dense_forward(x, self._weights, self._bias, act.kind, act.alpha)
        else:
            z, _ = _core.dense_forward(x, self._weights, self._bias, _LINEAR, 0.0)
            a = np.ascontiguousarray(act.forward(z), dtype=z.dtype)
        self.input, self._z, self.output = x, z, a
        return a[0] if one_sample else a

    def backward(self, output_error, learning_rate=None):
        """Store dL/dweights and dL/dbias and return dL/d(input).

        Parameters
        ----------
        output_error : array-like
            dL/d(output), the shape of the last output.
        learning_rate : float, optional
            Unused: the step is taken by `update`. Kept for the spec's signature.

        Returns
        -------
        numpy.ndarray
            dL/d(input), the shape of the last input.
        """
        dx = self._backward(output_error)
        return dx[0] if np.ndim(output_error) == 1 else dx

    def _backward(self, g, g_is_dz: bool = False, need_dx: bool = True):
        # g_is_dz: the Model passes the fused softmax/sigmoid-with-loss derivative, which is
        # already dL/dz, so the activation's own derivative must not be applied again.
        g = _as_error(g, self.output, self)
        act = self.activation
        if act.is_builtin:
            dw, db, dx = _core.dense_backward(self.input, self._weights, self._z, self.output, g,
                                              act.kind, act.alpha, g_is_dz, need_dx)
        else:
            dz = g if g_is_dz else np.ascontiguousarray(act.backward(g, None), dtype=g.dtype)
            dw, db, dx = _core.dense_backward(self.input, self._weights, self._z, self._z, dz,
                                              _LINEAR, 0.0, True, need_dx)
        self.dweights, self.dbias = dw, db
        return dx

    def update(self, learning_rate):
        """Take one plain gradient-descent step: ``weights -= learning_rate * dweights`` (and bias).

        Raises
        ------
        RuntimeError
            If `backward` has not run yet.
        """
        lr = check_learning_rate(learning_rate)
        if self.dweights is None:
            raise RuntimeError("Dense.update was called before backward")
        self._weights -= self._weights.dtype.type(lr) * self.dweights
        self._bias -= self._bias.dtype.type(lr) * self.dbias

    def __repr__(self) -> str:
        return (f"Dense(output_size={self.output_size}, input_size={self.input_size}, "
                f"activation={self.activation.name!r})")

    # -- description and state ------------------------------------------------------------------
    def _is_plain(self) -> bool:
        """The built-in math (a subclass may have replaced forward or backward)."""
        cls = type(self)
        return (cls.forward is Dense.forward and cls.backward is Dense.backward
                and cls._backward is Dense._backward)

    def _layer_spec(self) -> _spec.LayerSpec | None:
        """This layer in a NetworkSpec; None when its math or its activation is a user's own."""
        if type(self) is not Dense or not self.activation._is_saveable():
            return None
        return _spec.LayerSpec(self.output_size, self.activation.name,
                               float(self.activation.alpha))

    def _to_config(self, where: str) -> dict:
        if type(self) is not Dense:
            raise _format.UnsupportedError(f"{where} is a {type(self).__name__}, a user's own "
                                           f"layer; only Dense and the built-in activations can "
                                           f"be saved")
        return {"type": "Dense", "output_size": self.output_size, "input_size": self.input_size,
                "activation": self.activation._to_config(f"the activation of {where}"),
                "seed": self.seed}

    @classmethod
    def _from_config(cls, spec, where: str, fetch) -> "Dense":
        """The layer `spec` (untrusted, from `_to_config`) describes, with the weights and bias
        that ``fetch(shape_of_weights, shape_of_bias)`` returns (checked against its widths)."""
        _format.check_keys(spec, where, required=("type", "output_size", "input_size",
                                                  "activation", "seed"))
        out = _format.check_int(spec["output_size"], f"{where}.output_size", 1, MAX_WIDTH)
        inp = _format.check_int(spec["input_size"], f"{where}.input_size", 1, MAX_WIDTH)
        seed = spec["seed"]
        if seed is not None:
            _format.check_int(seed, f"{where}.seed", 0, SEED_LIMIT - 1)
        act = Activation._from_config(spec["activation"], f"{where}.activation")
        weights, bias = fetch((inp, out), (out,))
        # Built without input_size so that no initial weights are drawn (nor numpy's global
        # random state touched); the stored ones are put in place directly.
        layer = cls(out, activation=act)
        layer.input_size, layer.seed = inp, seed
        layer._weights, layer._bias = weights, bias
        return layer

    def _adopt(self, weights: np.ndarray, bias: np.ndarray) -> None:
        """Use `weights` and `bias` as this layer's arrays (a compiled Network's views, or the
        layer's own copies when a Model leaves the native path)."""
        self._weights, self._bias = weights, bias
        self.dweights = self.dbias = None
