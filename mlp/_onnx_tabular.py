"""The ONNX graph of a fitted TabularClassifier or TabularRegressor, preprocessing included.

One graph input per column of the training table, named as the column (``x0``, ``x1``, ... for
an array without names), each of shape (N, 1):

- a numeric column: ``tensor(double)``; NaN or an infinity is a missing value;
- a categorical column: ``tensor(string)``; a string that is not one of the training categories
  (an unseen one, or the empty string standing for a missing value) takes the reserved slot.

The preprocessing runs in double precision, as `TablePreprocessor.transform` does, and becomes
the network's float32 input in the same layout (embedded codes, scaled numeric columns, their
piecewise-linear encodings, missing indicators, one-hot blocks); `network_nodes` adds the
network (embeddings, ensemble members, their mean), and a calibrated classifier's temperature.
Outputs mirror `predict` and `predict_proba`: ``label`` and ``probabilities`` for the classifier, ``predictions`` for the
regressor.

Not expressible here, and refused with a TypeError: ``numeric_scaling='quantile'`` (the normal
quantile function it ends with is no ONNX operator).
"""
from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._onnx_graph import _label_values, network_nodes

_BATCH = "N"
# |v| past this, v / sqrt(1 + (v / 3)**2) is 3 to double precision; clipping there first keeps
# (v / 3)**2 finite (the Python path takes the limit the same way).
_CLIP_LIMIT = 1e150


def column_names(pre) -> list:
    """The graph's input names: the training table's column names, or x0, x1, ..."""
    return list(pre.feature_names_) if pre.feature_names_ else \
        [f"x{j}" for j in range(pre.n_features_in_)]


def tabular_graph(g, tp, model):
    """Fill `g` (an onnx_export._Graph) for `model`; returns (g, inputs, outputs)."""
    from onnx import helper

    check_is_fitted(model, "preprocessor_")
    pre = model.preprocessor_
    if pre.numeric_scaling == "quantile":
        raise TypeError("to_onnx: numeric_scaling='quantile' cannot be exported: the normal "
                        "quantile function it ends with is no ONNX operator; refit with "
                        "numeric_scaling='robust'")
    names = column_names(pre)
    if len(set(names)) != len(names):
        raise TypeError("to_onnx: the column names repeat, and each must name one graph input")
    inputs = [helper.make_tensor_value_info(
        name, tp.DOUBLE if kind == "numeric" else tp.STRING, [_BATCH, 1])
        for name, kind in zip(names, pre.kinds_)]
    features = preprocessing_nodes(g, tp, pre, names)
    spec, params = model._export_network()
    out = network_nodes(g, spec, params, features)
    if model._task == "classification":
        outputs = _classifier_outputs(g, helper, tp, model, out)
    else:
        outputs = _regressor_outputs(g, helper, tp, model, out)
    return g, inputs, outputs


def preprocessing_nodes(g, tp, pre, names: list) -> str:
    """The network's input, float32 (N, pre.n_outputs), from the column inputs `names`."""
    f64 = lambda v: np.asarray(v, dtype=np.float64)  # noqa: E731
    zero, one, three = (g.const(f64(v), n) for v, n in ((0.0, "zero"), (1.0, "one"),
                                                        (3.0, "three")))
    embedded, numeric, encoded, indicators, onehot = [], [], [], [], []
    codes = {j: _codes_nodes(g, tp, pre.categories_[j], names[j], j)
             for j, kind in enumerate(pre.kinds_) if kind != "numeric"}
    for j in pre.embedded:
        embedded.append(g.node("Cast", [codes[j]], hint=f"code{j}", to=tp.DOUBLE))
    for j in pre.numeric:
        x = names[j]
        bad = g.node("Or", [g.node("IsNaN", [x]), g.node("IsInf", [x])], hint=f"missing{j}")
        filled = g.node("Where", [bad, g.const(f64(pre.median_[j]), f"median{j}"), x],
                        hint=f"filled{j}")
        v = g.node("Div", [g.node("Sub", [filled, g.const(f64(pre.median_[j]), f"m{j}")]),
                           g.const(f64(pre.scale_[j]), f"scale{j}")], hint=f"robust{j}")
        v = g.node("Clip", [v, g.const(f64(-_CLIP_LIMIT), "lo"), g.const(f64(_CLIP_LIMIT), "hi")])
        w = g.node("Div", [v, three])
        numeric.append(g.node("Div", [v, g.node("Sqrt", [g.node("Add", [
            one, g.node("Mul", [w, w])])])], hint=f"scaled{j}"))
        if j in pre.edges_:
            edges = pre.edges_[j]
            t = g.node("Div", [g.node("Sub", [filled, g.const(f64(edges[:-1]), f"lo{j}")]),
                               g.const(f64(np.diff(edges)), f"width{j}")])
            encoded.append(g.node("Clip", [t, zero, one], hint=f"ple{j}"))
        if j in pre.indicator_:
            indicators.append((pre.indicator_.index(j),
                               g.node("Cast", [bad], hint=f"indicator{j}", to=tp.DOUBLE)))
    for j in pre.onehot:
        k = len(pre.categories_[j])
        if k:
            hit = g.node("Equal", [codes[j], g.const(np.arange(k, dtype=np.int64), f"levels{j}")])
            onehot.append(g.node("Cast", [hit], hint=f"onehot{j}", to=tp.DOUBLE))
    parts = embedded + numeric + encoded + [t for _, t in sorted(indicators)] + onehot
    joined = parts[0] if len(parts) == 1 else g.node("Concat", parts, hint="table", axis=1)
    return g.node("Cast", [joined], hint="features", to=tp.FLOAT)


def _codes_nodes(g, tp, cats: list, x: str, j: int) -> str:
    """int64 (N, 1): each string's index in `cats`, len(cats) for any other string."""
    if not cats:  # no category in training: every value takes the reserved slot 0
        from onnx import helper
        value = helper.make_tensor("reserved", tp.INT64, [1], [0])
        return g.node("ConstantOfShape", [g.node("Shape", [x])], hint=f"codes{j}", value=value)
    out = g.name(f"codes{j}")
    g.nodes.append(_label_encoder(x, out, cats, g.name("LabelEncoder")))
    return out


def _label_encoder(x: str, out: str, cats: list, name: str):
    from onnx import helper
    return helper.make_node("LabelEncoder", [x], [out], name=name, domain="ai.onnx.ml",
                            keys_strings=list(cats), values_int64s=list(range(len(cats))),
                            default_int64=len(cats))


def _tempered_nodes(g, tp, p: str, t: float, binary: bool) -> str:
    """The calibrated probabilities (TabularClassifier's `tempered`): softmax(log p / t), or
    sigmoid(logit p / t) for a binary problem's one column."""
    f32 = lambda v, n: g.const(np.asarray(v, dtype=np.float32), n)  # noqa: E731
    inv_t = f32(1.0 / t, "inverse_temperature")
    if binary:
        q = g.node("Clip", [p, f32(1e-7, "p_lo"), f32(1.0 - 1e-7, "p_hi")])
        logit = g.node("Log", [g.node("Div", [q, g.node("Sub", [f32(1.0, "one_t"), q])])])
        return g.node("Sigmoid", [g.node("Mul", [logit, inv_t])], hint="calibrated")
    z = g.node("Log", [g.node("Clip", [p, f32(1e-12, "p_lo")])])
    return g.node("Softmax", [g.node("Mul", [z, inv_t])], hint="calibrated", axis=1)


def _classifier_outputs(g, helper, tp, model, p: str) -> list:
    classes = _label_values(np.asarray(model.classes_))
    k = len(classes)
    if k > 1 and model.temperature_ != 1.0:
        p = _tempered_nodes(g, tp, p, model.temperature_, binary=k == 2)
    label_type = tp.STRING if classes.dtype == object else \
        helper.np_dtype_to_tensor_dtype(classes.dtype)
    flat = g.const(np.array([-1], dtype=np.int64), "flat")
    if k == 1:  # one class in training: probability 1, that class
        nothing = g.node("Sub", [p, p])
        g.node("Add", [nothing, g.const(np.array(1.0, dtype=np.float32), "one_f")],
               output="probabilities")
        index = g.node("Cast", [g.node("Reshape", [nothing, flat])], to=tp.INT64)
    elif k == 2:  # [1 - p, p]; the class of p > 0.5
        one = g.const(np.array(1.0, dtype=np.float32), "one_f")
        half = g.const(np.array(0.5, dtype=np.float32), "half")
        g.node("Concat", [g.node("Sub", [one, p]), p], output="probabilities", axis=1)
        index = g.node("Reshape", [g.node("Cast", [g.node("Greater", [p, half])], to=tp.INT64),
                                   flat], hint="index")
    else:
        g.node("Identity", [p], output="probabilities")
        index = g.node("ArgMax", [p], hint="index", axis=1, keepdims=0)
    g.node("Gather", [g.const(classes, "classes"), index], output="label", axis=0)
    n_proba = 1 if k == 1 else max(k, 2)
    return [helper.make_tensor_value_info("label", label_type, [_BATCH]),
            helper.make_tensor_value_info("probabilities", tp.FLOAT, [_BATCH, n_proba])]


def _regressor_outputs(g, helper, tp, model, z: str) -> list:
    k = len(np.atleast_1d(model._y_mean))
    y = g.node("Cast", [z], to=tp.DOUBLE)
    y = g.node("Add", [g.node("Mul", [y, g.const(np.asarray(model._y_scale, np.float64).reshape(-1),
                                                  "y_scale")]),
                       g.const(np.asarray(model._y_mean, np.float64).reshape(-1), "y_mean")])
    if model._y_1d:
        g.node("Reshape", [y, g.const(np.array([-1], dtype=np.int64), "flat")],
               output="predictions")
        return [helper.make_tensor_value_info("predictions", tp.DOUBLE, [_BATCH])]
    g.node("Identity", [y], output="predictions")
    return [helper.make_tensor_value_info("predictions", tp.DOUBLE, [_BATCH, k])]
