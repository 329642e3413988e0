"""The one description of a network, and the one table of activations and losses.

`ACTIVATIONS` and `LOSSES` hold everything the Python side knows about each: its names, whether it
takes a parameter, how a layer before it is initialised, and its ONNX form. A new activation is
one row here plus its C++ functor (csrc/activations.hpp) and kernel tests.

`NetworkSpec` describes a network as plain values: the input width, each layer (its width, or
None for a standalone activation, its activation and that activation's parameter), the loss and
its scale, and the dtype. Both fronts build their `_core.Network` from one (`NetworkSpec.build`);
the saved file, the ONNX export, the command line and `Model.summary` read it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from . import _core
from ._limits import count_params
from ._validation import check_network_size

_Act = _core.ActivationKind
_Loss = _core.LossKind
# The optimizers the core runs (mlp.optimizers and the estimators configure them by these).
OPTIMIZER_KIND = _core.OptimizerKind


# ------------------------------------------------------------------------------------------------
# Activations
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ActivationInfo:
    """One row of the activation table.

    name : the canonical spelling (the spec's), shown in summaries and saved in files.
    aliases : the other names accepted for it.
    kind : the core's enum value.
    alpha : the default parameter, or None when the activation takes none (leaky_relu's slope,
        elu's saturation value).
    init : how a Dense layer ending in it draws its first weights: 'he' (uniform, bound
        sqrt(6 / fan_in), zero bias), 'glorot' (uniform, bound sqrt(glorot_factor / (fan_in
        + fan_out)), bias within the same bound) or 'lecun' (normal, standard deviation
        sqrt(1 / fan_in), zero bias: what selu's self-normalisation assumes).
    glorot_factor : 6, or 2 for the sigmoid (scikit-learn's rule; its estimators use Glorot
        for every activation).
    onnx : ``onnx(graph, x, alpha) -> name`` adds the activation's nodes to an ONNX graph
        (see `mlp.onnx_export`; ``graph.opset`` is the operator set the graph declares).
    """

    name: str
    aliases: tuple
    kind: object
    alpha: float | None
    init: str
    glorot_factor: float
    onnx: Callable

    @property
    def takes_alpha(self) -> bool:
        return self.alpha is not None


def _onnx_swish(g, x, alpha):  # x * sigmoid(x): no Swish operator before opset 24
    return g.node("Mul", [x, g.node("Sigmoid", [x])], hint="swish")


def _onnx_selu(g, x, alpha):  # ONNX's Selu with the core's constants (its defaults are float32)
    return g.node("Selu", [x], alpha=float(_core.SELU_ALPHA), gamma=float(_core.SELU_SCALE))


def _onnx_mish(g, x, alpha):  # Mish from opset 18; before it x * tanh(softplus(x))
    if g.opset >= 18:
        return g.node("Mish", [x])
    return g.node("Mul", [x, g.node("Tanh", [g.node("Softplus", [x])])], hint="mish")


def _const(g, value, hint):  # a float32 scalar (a skl2onnx graph converts it to its precision)
    return g.const(np.array(value, dtype=np.float32), hint)


def _onnx_gelu(g, x, alpha):
    # 0.5 x (1 + erf(x / sqrt(2))) from Erf, as every opset has it (Gelu itself is opset 20's)
    erf = g.node("Erf", [g.node("Mul", [x, _const(g, 0.5 ** 0.5, "sqrt_half")])])
    half_x = g.node("Mul", [x, _const(g, 0.5, "half")])
    return g.node("Mul", [half_x, g.node("Add", [erf, _const(g, 1.0, "one")])], hint="gelu")


def _onnx_gelu_tanh(g, x, alpha):
    # 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))); x^3 is x * x * x (no Pow), which
    # overflows to inf for huge x, and then tanh saturates to +-1 as it should
    cube = g.node("Mul", [g.node("Mul", [x, x]), x])
    inner = g.node("Add", [x, g.node("Mul", [cube, _const(g, 0.044715, "gelu_cubic")])])
    t = g.node("Tanh", [g.node("Mul", [inner, _const(g, (2.0 / math.pi) ** 0.5, "sqrt_2_pi")])])
    half_x = g.node("Mul", [x, _const(g, 0.5, "half")])
    return g.node("Mul", [half_x, g.node("Add", [t, _const(g, 1.0, "one")])], hint="gelu_tanh")


ACTIVATIONS: tuple[ActivationInfo, ...] = (
    ActivationInfo("linear", ("identity",), _Act.IDENTITY, None, "glorot", 6.0,
                   lambda g, x, alpha: x),
    ActivationInfo("relu", (), _Act.RELU, None, "he", 6.0,
                   lambda g, x, alpha: g.node("Relu", [x])),
    ActivationInfo("leaky_relu", (), _Act.LEAKY_RELU, 0.01, "he", 6.0,
                   lambda g, x, alpha: g.node("LeakyRelu", [x], alpha=float(alpha))),
    ActivationInfo("elu", (), _Act.ELU, 1.0, "he", 6.0,
                   lambda g, x, alpha: g.node("Elu", [x], alpha=float(alpha))),
    ActivationInfo("sigmoid", ("logistic",), _Act.SIGMOID, None, "glorot", 2.0,
                   lambda g, x, alpha: g.node("Sigmoid", [x])),
    ActivationInfo("tanh", (), _Act.TANH, None, "glorot", 6.0,
                   lambda g, x, alpha: g.node("Tanh", [x])),
    ActivationInfo("swish", ("silu",), _Act.SWISH, None, "he", 6.0, _onnx_swish),
    ActivationInfo("softmax", (), _Act.SOFTMAX, None, "glorot", 6.0,
                   lambda g, x, alpha: g.node("Softmax", [x], axis=-1)),
    ActivationInfo("selu", (), _Act.SELU, None, "lecun", 6.0, _onnx_selu),
    ActivationInfo("mish", (), _Act.MISH, None, "he", 6.0, _onnx_mish),
    ActivationInfo("gelu", (), _Act.GELU, None, "he", 6.0, _onnx_gelu),
    ActivationInfo("gelu_tanh", (), _Act.GELU_TANH, None, "he", 6.0, _onnx_gelu_tanh),
)

# Every accepted spelling, in the order error messages list them.
_ACTIVATION_NAMES: dict[str, ActivationInfo] = {}
for _info in ACTIVATIONS:
    for _name in _info.aliases + (_info.name,):
        _ACTIVATION_NAMES[_name] = _info
_ACTIVATION_BY_KIND = {int(info.kind): info for info in ACTIVATIONS}


def _lookup(table: dict, name, argument: str, what: str):
    if not isinstance(name, str):
        raise TypeError(
            f"{argument} must be a string naming {what}, got {type(name).__name__} {name!r}"
        )
    try:
        return table[name]
    except KeyError:
        valid = ", ".join(repr(n) for n in table)
        raise ValueError(f"unknown {what} {name!r} for {argument}; valid names: {valid}") from None


def activation(name, argument: str = "activation") -> ActivationInfo:
    """The table row of an activation name or alias.

    Raises
    ------
    TypeError
        If `name` is not a string.
    ValueError
        If `name` is unknown; the message lists the valid names.
    """
    return _lookup(_ACTIVATION_NAMES, name, argument, "activation")


def activation_of_kind(kind) -> ActivationInfo:
    """The table row of a core enum value."""
    return _ACTIVATION_BY_KIND[int(kind)]


# ------------------------------------------------------------------------------------------------
# Losses
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LossInfo:
    """One row of the loss table.

    name : the canonical spelling. aliases : the others accepted. kind : the core's enum value.
    output : the output activation the core fuses the loss with (its derivative is computed from
        the logits), or None when any output goes.
    spec_api : whether the spec's `Loss` offers it (poisson is the regressor's only).
    """

    name: str
    aliases: tuple
    kind: object
    output: str | None
    spec_api: bool = True


LOSSES: tuple[LossInfo, ...] = (
    LossInfo("mse", ("mean_squared_error",), _Loss.MSE, None),
    LossInfo("categorical_cross_entropy", ("categorical_crossentropy",),
             _Loss.CATEGORICAL_CROSS_ENTROPY, "softmax"),
    LossInfo("binary_cross_entropy", ("binary_crossentropy",), _Loss.BINARY_CROSS_ENTROPY,
             "sigmoid"),
    LossInfo("poisson", (), _Loss.POISSON, None, spec_api=False),
)

_SPEC_LOSS_NAMES: dict[str, LossInfo] = {}
for _info in LOSSES:
    if _info.spec_api:
        for _name in (_info.name,) + _info.aliases:
            _SPEC_LOSS_NAMES[_name] = _info
_LOSS_BY_NAME = {info.name: info for info in LOSSES}


def loss(name, argument: str = "loss_fn") -> LossInfo:
    """The table row of a loss name or alias the spec's API offers (errors as `activation`)."""
    return _lookup(_SPEC_LOSS_NAMES, name, argument, "loss")


# ------------------------------------------------------------------------------------------------
# The network description
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LayerSpec:
    """One layer: a Dense of `units` outputs ending in `activation`, or (units None) a standalone
    activation. `alpha` is the activation's parameter, 0.0 for those that take none. `dropout`
    is the rate of the dropout applied to the layer's output in training (a standalone Dropout
    layer is a linear activation with a rate)."""

    units: int | None
    activation: str
    alpha: float = 0.0
    dropout: float = 0.0

    @property
    def info(self) -> ActivationInfo:
        return _ACTIVATION_NAMES[self.activation]

    @property
    def is_dense(self) -> bool:
        return self.units is not None

    @property
    def is_dropout(self) -> bool:
        """A standalone Dropout layer."""
        return self.units is None and self.dropout > 0.0


@dataclass(frozen=True)
class EmbeddingSpec:
    """Column `column` of the input holds integer codes in [0, rows); the first Dense layer sees
    row ``code`` of a (rows, width) table in its place."""

    column: int
    rows: int
    width: int


@dataclass(frozen=True)
class NetworkSpec:
    """A network as plain values (see the module's docstring).

    n_inputs : int
    layers : tuple of LayerSpec, input to output.
    loss : str or None
        A canonical name of `LOSSES` ('mse', 'categorical_cross_entropy',
        'binary_cross_entropy', 'poisson'); None for a Model not compiled yet.
    loss_scale : float
        The factor the core applies to its per-sample sum over outputs: 1/O makes a mean over
        outputs, 0.5/O is scikit-learn's half squared error, 1 a sum over classes.
    dtype : {'float32', 'float64'}
    """

    n_inputs: int
    layers: tuple
    loss: str | None = None
    loss_scale: float = 1.0
    dtype: str = "float32"
    embeddings: tuple = ()
    label_smoothing: float = 0.0
    ensemble: int = 1

    # embeddings : tuple of EmbeddingSpec
    #     The embedded columns of the input, in the order their tables feed the first Dense
    #     layer (the other columns follow in their order); see `first_width`.
    # label_smoothing : float
    #     Targets y become y (1 - ls) + ls / K in the cross-entropies (K classes; 2 for binary).
    # ensemble : int
    #     Members per sample (1: none): each sees its input times a learned adapter (k,
    #     first_width) through the shared layers; predictions are the members' mean.

    @classmethod
    def dense(cls, sizes, activations, alphas=None, **kwargs) -> "NetworkSpec":
        """A chain of Dense layers with widths ``[in, h1, ..., out]``, one activation each."""
        alphas = alphas if alphas is not None else [0.0] * len(activations)
        layers = tuple(LayerSpec(int(units), act, float(alpha))
                       for units, act, alpha in zip(sizes[1:], activations, alphas))
        return cls(int(sizes[0]), layers, **kwargs)

    @property
    def first_width(self) -> int:
        """The first Dense layer's input width: the embeddings' widths, then the other columns."""
        return (self.n_inputs - len(self.embeddings)
                + sum(e.width for e in self.embeddings))

    @property
    def sizes(self) -> list:
        """``[first_width, units of each Dense layer...]`` (first_width is n_inputs without
        embeddings)."""
        return [self.first_width] + [layer.units for layer in self.layers if layer.is_dense]

    @property
    def n_outputs(self) -> int:
        return self.sizes[-1]

    @property
    def n_params(self) -> int:
        return (count_params(self.sizes) + sum(e.rows * e.width for e in self.embeddings)
                + (self.ensemble * self.first_width if self.ensemble > 1 else 0))

    def folded(self) -> "NetworkSpec | None":
        """The same network as Dense layers only, or None when that cannot be.

        A standalone activation right after a linear Dense folds into it; a standalone linear
        activation is dropped. Anything else (an activation after a non-linear one, or before
        the first Dense) has no one-kernel-per-layer form.

        A standalone Dropout folds into the Dense layer before it (its output is what is
        dropped); nothing may fold into a layer after its dropout.
        """
        out = []
        for layer in self.layers:
            if layer.is_dense:
                out.append(layer)
            elif layer.is_dropout:
                if not out or out[-1].dropout > 0.0:
                    return None
                out[-1] = replace(out[-1], dropout=layer.dropout)
            elif layer.activation == "linear":
                continue
            elif out and out[-1].activation == "linear" and out[-1].dropout == 0.0:
                out[-1] = replace(out[-1], activation=layer.activation, alpha=layer.alpha)
            else:
                return None
        return replace(self, layers=tuple(out)) if out else None

    def build(self, n_threads: int = 0, what: str = "the network"):
        """A new ``_core.Network`` of this description (weights uninitialised).

        Raises
        ------
        ValueError
            If a width is out of range or training it could never fit in memory, or the spec
            has a standalone activation (see `folded`) or no loss.
        """
        if any(not layer.is_dense for layer in self.layers) or self.loss is None:
            raise ValueError(f"{what}: only Dense layers with a loss build a native network")
        sizes = self.sizes
        check_network_size(sizes, self.dtype, what)
        net = _core.Network(sizes, [layer.info.kind for layer in self.layers],
                            [float(layer.alpha) for layer in self.layers],
                            _LOSS_BY_NAME[self.loss].kind, float(self.loss_scale), self.dtype,
                            [(e.column, e.rows, e.width) for e in self.embeddings],
                            self.n_inputs if self.embeddings else 0, int(self.ensemble))
        net.set_threads(int(n_threads))
        if any(layer.dropout for layer in self.layers):
            if self.layers[-1].dropout:
                raise ValueError(f"{what}: dropout cannot follow the output layer")
            net.set_dropout([float(layer.dropout) for layer in self.layers])
        if self.label_smoothing:
            net.set_label_smoothing(float(self.label_smoothing))
        return net

    def summary_rows(self) -> list:
        """``(kind, units, activation, params)`` per layer, for a printed summary."""
        rows, width = [], self.n_inputs
        if self.embeddings:
            width = self.first_width
            rows.append(("Concatenate", width, "",
                         sum(e.rows * e.width for e in self.embeddings)))
        for layer in self.layers:
            if layer.is_dense:
                rows.append(("Dense", layer.units, layer.activation,
                             width * layer.units + layer.units))
                width = layer.units
            elif layer.is_dropout:
                rows.append(("Dropout", width, f"rate {layer.dropout:g}", 0))
            else:
                rows.append(("Activation", width, layer.activation, 0))
        return rows


def table_lines(rows, indent: str = "") -> list:
    """Rows of strings as aligned lines: every column left-aligned but the last (a count)."""
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    last = len(widths) - 1
    return [indent + "  ".join(cell.ljust(w) if c < last else cell.rjust(w)
                               for c, (cell, w) in enumerate(zip(row, widths)))
            for row in rows]
