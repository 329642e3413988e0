"""Export a Model or an estimator to ONNX: one MatMul + Add + activation per dense layer.

The graph takes ``input``, float32 of shape (N, n_features) with a dynamic batch dimension, and
computes in float32 whatever precision the model was trained in. Its outputs mirror the Python
methods:

- MLPClassifier: ``label`` (what ``predict`` returns: classes_ gathered by index, as int64,
  float64, bool or string tensors; a 0/1 int64 matrix for multilabel) and ``probabilities``
  (``predict_proba``; [1 - p, p] for a binary problem).
- MLPRegressor: ``predictions`` (``predict``: shape (N,) for one output, else (N, k); the poisson
  loss's exp link included).
- Model: ``output``, the last layer's activations (``predict``).

The ``onnx`` package is an optional extra: ``pip install "mlp[onnx]"``.
"""
from __future__ import annotations

import numpy as np

from . import _format
from ._limits import EXP_LIMIT
from ._version import __version__

__all__ = ["to_onnx"]

# Opset 17 has every operator used here with today's semantics (Softmax over one axis since 13)
# and is read by onnxruntime 1.13 onwards; IR version 8 is what that opset requires.
DEFAULT_OPSET = 17
_IR_VERSION = 8
# The tabular estimators' category lookup is ai.onnx.ml's LabelEncoder, with string keys and
# int64 values since version 2.
_ML_OPSET = 2


def _import_onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError:
        raise ImportError('to_onnx needs the onnx package: pip install "mlp[onnx]"') from None
    return onnx, helper, numpy_helper


class _Graph:
    """Collects nodes and initializers, handing out fresh tensor names. `opset` is the operator
    set the graph declares (an activation may use a newer operator where it exists)."""

    def __init__(self, helper, numpy_helper, opset: int = DEFAULT_OPSET):
        self.helper, self.numpy_helper = helper, numpy_helper
        self.opset = opset
        self.nodes, self.initializers = [], []
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, value: np.ndarray, hint: str) -> str:
        name = self.name(hint)
        self.initializers.append(self.numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, inputs: list, hint: str | None = None, output: str | None = None,
             **attrs) -> str:
        out = output or self.name(hint or op.lower())
        self.nodes.append(self.helper.make_node(op, inputs, [out], name=self.name(op), **attrs))
        return out

    def dense(self, x: str, weights: np.ndarray, bias: np.ndarray, i: int) -> str:
        w = self.const(np.ascontiguousarray(weights, dtype=np.float32), f"W{i}")
        b = self.const(np.ascontiguousarray(bias, dtype=np.float32), f"B{i}")
        return self.node("Add", [self.node("MatMul", [x, w]), b], hint=f"z{i}")


def network_nodes(g, spec, params, x: str) -> str:
    """Add the network's layers to graph `g` (an `_Graph`, or any object with its ``dense`` and
    ``node``) from tensor `x`; returns the output activation's tensor. `params` holds each Dense
    layer's (weights, bias), then each embedding's table, then for an ensemble the (k, width)
    adapters, as ``_export_network`` gives them. A Dropout layer is the identity at inference,
    so it adds nothing."""
    dense = 0
    n_dense = sum(1 for layer in spec.layers if layer.is_dense)
    if spec.embeddings:
        x = embedding_nodes(g, spec, params[n_dense:n_dense + len(spec.embeddings)], x)
    k = getattr(spec, "ensemble", 1)
    if k > 1:
        x = ensemble_input_nodes(g, params[n_dense + len(spec.embeddings)], x)
    for layer in spec.layers:
        if layer.is_dense:
            x = g.dense(x, *params[dense], dense)
            dense += 1
        x = layer.info.onnx(g, x, layer.alpha)
    if k > 1:
        x = ensemble_mean_nodes(g, k, spec.n_outputs, x)
    return x


def ensemble_input_nodes(g, adapters: np.ndarray, x: str) -> str:
    """(N, width) -> (N * k, width): row i * k + g is row i times adapter g, as the core lays
    members out."""
    k, width = adapters.shape
    r = g.const(np.ascontiguousarray(adapters, dtype=np.float32), "adapters")
    wide = g.node("Unsqueeze", [x, g.const(np.array([1], dtype=np.int64), "axis1")], hint="rows")
    members = g.node("Mul", [wide, r], hint="members")  # (N, k, width)
    shape = g.const(np.array([-1, width], dtype=np.int64), "member_rows")
    return g.node("Reshape", [members, shape], hint="member_input")


def ensemble_mean_nodes(g, k: int, n_out: int, x: str) -> str:
    """(N * k, n_out) -> (N, n_out): the members' mean."""
    shape = g.const(np.array([-1, k, n_out], dtype=np.int64), "by_member")
    members = g.node("Reshape", [x, shape], hint="member_output")
    if g.opset >= 18:  # axes became an input in opset 18
        return g.node("ReduceMean", [members, g.const(np.array([1], dtype=np.int64), "axis1")],
                      hint="mean", keepdims=0)
    return g.node("ReduceMean", [members], hint="mean", axes=[1], keepdims=0)


def embedding_nodes(g, spec, tables, x: str) -> str:
    """The first Dense layer's input from `x`: each embedded column's codes (cast to int64)
    gathered from its table, then the other columns, concatenated. ONNX cannot check the codes:
    one outside a table is the runtime's error, where `predict` raises a ValueError."""
    parts = []
    flat = g.const(np.array([-1], dtype=np.int64), "flat")
    for j, (emb, table) in enumerate(zip(spec.embeddings, tables)):
        col = g.node("Gather", [x, g.const(np.array([emb.column], dtype=np.int64), f"col{j}")],
                     hint=f"codes{j}", axis=1)
        codes = g.node("Cast", [g.node("Reshape", [col, flat])], hint=f"index{j}", to=7)  # int64
        t = g.const(np.ascontiguousarray(table, dtype=np.float32), f"E{j}")
        parts.append(g.node("Gather", [t, codes], hint=f"embedded{j}", axis=0))
    embedded = {e.column for e in spec.embeddings}
    numeric = [c for c in range(spec.n_inputs) if c not in embedded]
    if numeric:
        parts.append(g.node("Gather", [x, g.const(np.array(numeric, dtype=np.int64), "numeric")],
                            hint="numeric", axis=1))
    return g.node("Concat", parts, hint="features", axis=1)


def _label_values(classes: np.ndarray) -> np.ndarray:
    """classes_ as an array ONNX can hold, of the type predict returns."""
    kind = classes.dtype.kind
    if kind == "O":
        if all(isinstance(c, str) for c in classes):
            kind = "U"
        elif all(isinstance(c, (int, np.integer)) and not isinstance(c, (bool, np.bool_))
                 for c in classes):
            kind = "i"
        else:
            raise TypeError("classes_ mixes types; ONNX labels must be all strings or all "
                            "integers (or floats, or booleans)")
    if kind == "U":
        return np.array([str(c) for c in classes], dtype=object)
    if kind in "iu":
        return classes.astype(np.int64)
    if kind in "fb":
        return classes
    raise TypeError(f"classes_ of dtype {classes.dtype} have no ONNX tensor type")


def to_onnx(model, *, opset: int = DEFAULT_OPSET, name: str | None = None):
    """Export a Model, MLPClassifier or MLPRegressor as an ONNX graph.

    Parameters
    ----------
    model : Model, MLPClassifier or MLPRegressor
        A fitted estimator, or a Model of built-in layers (compiled or not).
    opset : int, default=17
        The ``ai.onnx`` operator set to declare (13 or later). From 18, mish is exported as the
        ``Mish`` operator; before, as ``x * tanh(softplus(x))``.
    name : str, optional
        The graph's name; defaults to the class name.

    Returns
    -------
    onnx.ModelProto
        Input ``input``: float32 (N, n_features). Outputs: ``label`` and ``probabilities`` for
        a classifier, ``predictions`` for a regressor, ``output`` for a Model. Weights are stored
        as float32 even when the model was trained in float64.

    Raises
    ------
    ImportError
        If the onnx package is not installed (``pip install "mlp[onnx]"``).
    TypeError
        If `model` is none of the three, or a Model holds a user's own layer.
    sklearn.exceptions.NotFittedError
        If an estimator is not fitted.

    Examples
    --------
    >>> import onnxruntime as ort                                    # doctest: +SKIP
    >>> proto = mlp.to_onnx(clf)                                     # doctest: +SKIP
    >>> sess = ort.InferenceSession(proto.SerializeToString())       # doctest: +SKIP
    >>> labels, proba = sess.run(None, {"input": X.astype("float32")})  # doctest: +SKIP
    """
    onnx, helper, numpy_helper = _import_onnx()
    if type(opset) is not int or opset < 13:
        raise ValueError(f"opset must be an integer >= 13 (Softmax over one axis), got {opset!r}")
    kind = _format.kind_of(model)
    if kind is None:
        raise TypeError(f"expected an mlp Model, MLPClassifier or MLPRegressor, got "
                        f"{type(model).__name__}")
    if kind in ("TabularClassifier", "TabularRegressor"):
        from ._onnx_tabular import tabular_graph

        return _model_proto(helper, kind, name, *tabular_graph(
            _Graph(helper, numpy_helper, opset), onnx.TensorProto, model), opset,
            ml_opset=_ML_OPSET)
    if kind not in ("Model", "MLPClassifier", "MLPRegressor"):
        raise TypeError(f"to_onnx: a {kind} cannot be exported")
    spec, params = model._export_network()

    g = _Graph(helper, numpy_helper, opset)
    x = network_nodes(g, spec, params, "input")
    n_features = spec.n_inputs
    tp = onnx.TensorProto
    batch = "N"
    if kind == "Model":
        n_out = spec.n_outputs
        g.node("Identity", [x], output="output")
        outputs = [helper.make_tensor_value_info("output", tp.FLOAT, [batch, n_out])]
    elif kind == "MLPRegressor":
        outputs = [_regressor_head(g, helper, tp, model, x, batch)]
    else:
        outputs = _classifier_head(g, helper, numpy_helper, tp, model, x, batch)

    inputs = [helper.make_tensor_value_info("input", tp.FLOAT, [batch, n_features])]
    return _model_proto(helper, kind, name, g, inputs, outputs, opset)


def _model_proto(helper, kind: str, name, g: _Graph, inputs: list, outputs: list, opset: int,
                 ml_opset: int | None = None):
    graph = helper.make_graph(g.nodes, name or kind, inputs, outputs, initializer=g.initializers)
    opsets = [helper.make_opsetid("", opset)]
    if ml_opset is not None:
        opsets.append(helper.make_opsetid("ai.onnx.ml", ml_opset))
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="mlp",
                              producer_version=__version__,
                              doc_string=f"mlp {kind} exported by mlp.to_onnx")
    proto.ir_version = _IR_VERSION
    helper.set_model_props(proto, {"mlp_kind": kind})
    return proto


def _regressor_head(g: _Graph, helper, tp, est, z: str, batch: str):
    k = est.n_outputs_
    if est.out_activation_ == "exp":
        limit = g.const(np.array(EXP_LIMIT["float32"], dtype=np.float32), "exp_limit")
        z = g.node("Exp", [g.node("Min", [z, limit])], hint="exp")
    if k == 1:
        shape = g.const(np.array([-1], dtype=np.int64), "flat")
        g.node("Reshape", [z, shape], output="predictions")
        return helper.make_tensor_value_info("predictions", tp.FLOAT, [batch])
    g.node("Identity", [z], output="predictions")
    return helper.make_tensor_value_info("predictions", tp.FLOAT, [batch, k])


def _classifier_head(g: _Graph, helper, numpy_helper, tp, est, p: str, batch: str):
    k = est.n_outputs_
    if est._multilabel:
        half = g.const(np.array(0.5, dtype=np.float32), "half")
        # predict: the 0/1 indicator matrix of p > 0.5 (LabelBinarizer's threshold)
        g.node("Identity", [p], output="probabilities")
        g.node("Cast", [g.node("Greater", [p, half])], output="label", to=tp.INT64)
        return [helper.make_tensor_value_info("label", tp.INT64, [batch, k]),
                helper.make_tensor_value_info("probabilities", tp.FLOAT, [batch, k])]
    classes = _label_values(np.asarray(est.classes_))
    if k == 1:
        # Binary: predict takes classes_[p > 0.5]; predict_proba is [1 - p, p].
        one = g.const(np.array(1.0, dtype=np.float32), "one")
        half = g.const(np.array(0.5, dtype=np.float32), "half")
        g.node("Concat", [g.node("Sub", [one, p]), p], output="probabilities", axis=1)
        flat = g.const(np.array([-1], dtype=np.int64), "flat")
        index = g.node("Reshape", [g.node("Cast", [g.node("Greater", [p, half])], to=tp.INT64),
                                   flat], hint="index")
        if len(classes) == 1:  # one class seen in fit: both outcomes name it
            classes = np.concatenate([classes, classes])
        n_proba = 2
    else:
        g.node("Identity", [p], output="probabilities")
        index = g.node("ArgMax", [p], hint="index", axis=1, keepdims=0)
        n_proba = k
    table = g.const(classes, "classes")
    g.node("Gather", [table, index], output="label", axis=0)
    label_type = helper.np_dtype_to_tensor_dtype(classes.dtype) if classes.dtype != object \
        else tp.STRING
    return [helper.make_tensor_value_info("label", label_type, [batch]),
            helper.make_tensor_value_info("probabilities", tp.FLOAT, [batch, n_proba])]
