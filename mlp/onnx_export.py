"""Export a Model or an estimator to ONNX: one MatMul + Add + activation per dense layer.

The graph of a Model or an MLP estimator takes ``input``, float32 of shape (N, n_features) with a dynamic batch dimension, and
computes in float32 whatever precision the model was trained in. Its outputs mirror the Python
methods:

- MLPClassifier: ``label`` (what ``predict`` returns: classes_ gathered by index, as int64,
  float64, bool or string tensors; a 0/1 int64 matrix for multilabel) and ``probabilities``
  (``predict_proba``; [1 - p, p] for a binary problem).
- MLPRegressor: ``predictions`` (``predict``: shape (N,) for one output, else (N, k); the poisson
  loss's exp link included).
- Model: ``output``, the last layer's activations (``predict``).

A TabularClassifier or TabularRegressor takes one input per column instead, its preprocessing
in the graph (`_onnx_tabular`). The ``onnx`` package is an optional extra: ``pip install "mlp[onnx]"``.
"""
from __future__ import annotations

import numpy as np

from . import _format
from ._limits import EXP_LIMIT
from ._onnx_graph import DEFAULT_OPSET, IR_VERSION, _Graph, _import_onnx, _label_values, network_nodes
from ._version import __version__

__all__ = ["to_onnx"]

# The tabular estimators' category lookup is ai.onnx.ml's LabelEncoder, with string keys and
# int64 values since version 2.
_ML_OPSET = 2


def to_onnx(model, *, opset: int = DEFAULT_OPSET, name: str | None = None):
    """Export a Model, MLPClassifier, MLPRegressor, TabularClassifier or TabularRegressor as
    an ONNX graph.

    Parameters
    ----------
    model : Model or a fitted estimator
        A fitted estimator, or a Model of built-in layers (compiled or not).
    opset : int, default=17
        The ``ai.onnx`` operator set to declare (13 or later). From 18, mish is exported as the
        ``Mish`` operator; before, as ``x * tanh(softplus(x))``.
    name : str, optional
        The graph's name; defaults to the class name.

    Returns
    -------
    onnx.ModelProto
        Input ``input``: float32 (N, n_features) (a tabular estimator: one (N, 1) input per
        column, double or string). Outputs: ``label`` and ``probabilities`` for a classifier,
        ``predictions`` for a regressor, ``output`` for a Model. Weights are stored
        as float32 even when the model was trained in float64.

    Raises
    ------
    ImportError
        If the onnx package is not installed (``pip install "mlp[onnx]"``).
    TypeError
        If `model` is none of these, a Model holds a user's own layer, or a tabular estimator
        uses what ONNX cannot express (``numeric_scaling='quantile'``).
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
    proto.ir_version = IR_VERSION
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
