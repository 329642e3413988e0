"""The building blocks of mlp's ONNX graphs, shared by `onnx_export` (the Model and the
MLP estimators), `_onnx_tabular` (the tabular estimators) and `_skl2onnx` (skl2onnx's
converter): a graph under construction, the network's nodes (embeddings, ensemble members, Dense
layers and activations), and class labels as an ONNX tensor."""
from __future__ import annotations

import numpy as np

# Opset 17 has every operator used here with today's semantics (Softmax over one axis since 13)
# and is read by onnxruntime 1.13 onwards; IR version 8 is what that opset requires.
DEFAULT_OPSET = 17
IR_VERSION = 8


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
