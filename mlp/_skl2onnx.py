"""skl2onnx support: mlp's MLPClassifier and MLPRegressor inside scikit-learn pipelines.

`register_skl2onnx` gives skl2onnx a parser, a shape calculator and a converter for each
estimator, so that ``skl2onnx.to_onnx(make_pipeline(StandardScaler(), clf), X[:1])`` converts the
whole pipeline. The graph of the network is the one `mlp.to_onnx` writes (MatMul + Add + the
activation per layer, from ``est._export_network()``), with skl2onnx's conventions for what goes
in and out:

- MLPClassifier: ``label`` and ``probabilities``, then skl2onnx's ZipMap by default (options
  ``zipmap`` True / False / 'columns', ``nocl`` and ``output_class_labels`` work as for
  scikit-learn's classifiers). Labels are int64 for integer, boolean and (integral) float
  classes, strings for string classes; a multilabel estimator's label is its 0/1 int64 matrix.
  A classifier fitted on a single class has two probability columns and one class, which ZipMap
  cannot pair: convert it with ``zipmap=False``.
- MLPRegressor: one float tensor of shape (N, n_outputs), (N, 1) for a single output, as
  skl2onnx writes every regressor (``predict`` returns (N,) there).

The graph computes in the input's precision, as skl2onnx's converters for scikit-learn's MLPs do:
in float64 for a double input (a float64 network then matches its predict to rounding), in
float32 for a float input, which an int64, int32 or boolean input is cast to. Probabilities and
predictions have that type, except that probabilities going into ZipMap (the default) are cast
to float, the only type ZipMap takes. (`mlp.to_onnx` always computes in float32.) onnxruntime
has no double LeakyRelu or Elu, so a double graph writes those two with Relu, Min, Exp and Mul.

Registration is automatic: `mlp/__init__` calls `register_when_imported`, which registers at once
when skl2onnx is already imported and otherwise when it is first imported. Importing skl2onnx
takes about a second (it loads onnx and much of scikit-learn), so `import mlp` never does it.
"""
from __future__ import annotations

import sys
import warnings
from types import SimpleNamespace

import numpy as np

from ._limits import EXP_LIMIT
from ._onnx_graph import _Graph, _label_values, network_nodes
from .onnx_export import _classifier_head

__all__ = ["register_skl2onnx"]

# The aliases skl2onnx knows the two estimators by ("library name followed by model name").
CLASSIFIER_ALIAS = "MlpMLPClassifier"
REGRESSOR_ALIAS = "MlpMLPRegressor"
_CLASSIFIER_OPTIONS = {"zipmap": [True, False, "columns"], "nocl": [True, False],
                       "output_class_labels": [False, True]}


def register_skl2onnx() -> None:
    """Register MLPClassifier and MLPRegressor with skl2onnx.

    After this, ``skl2onnx.to_onnx`` converts them, alone or as steps of a pipeline. It runs by
    itself when skl2onnx is imported (or at ``import mlp`` when skl2onnx already is), so calling
    it is needed only where that did not happen, e.g. after skl2onnx was reloaded. Calling it
    again does no harm.

    Raises
    ------
    ImportError
        If skl2onnx is not installed (``pip install "mlp[onnx]"``).

    Examples
    --------
    >>> import skl2onnx                                                     # doctest: +SKIP
    >>> from sklearn.pipeline import make_pipeline                          # doctest: +SKIP
    >>> from sklearn.preprocessing import StandardScaler                    # doctest: +SKIP
    >>> pipe = make_pipeline(StandardScaler(), mlp.MLPClassifier()).fit(X, y)  # doctest: +SKIP
    >>> proto = skl2onnx.to_onnx(pipe, X[:1], options={"zipmap": False})    # doctest: +SKIP
    """
    try:
        from skl2onnx import update_registered_converter
    except ImportError:
        raise ImportError('register_skl2onnx needs the skl2onnx package: '
                          'pip install "mlp[onnx]"') from None
    from .sklearn import MLPClassifier, MLPRegressor

    update_registered_converter(MLPClassifier, CLASSIFIER_ALIAS, _classifier_shapes,
                                _convert_classifier, parser=_parse_classifier,
                                options=_CLASSIFIER_OPTIONS)
    update_registered_converter(MLPRegressor, REGRESSOR_ALIAS, _regressor_shapes,
                                _convert_regressor)


# ------------------------------------------------------------------------------------------------
# Registering when skl2onnx is imported
# ------------------------------------------------------------------------------------------------
def register_when_imported() -> None:
    """Register now if skl2onnx is imported, else as soon as it is (without importing it)."""
    if sys.modules.get("skl2onnx") is not None:
        _register_or_warn()
    elif "skl2onnx" not in sys.modules and not any(isinstance(f, _Skl2onnxFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Skl2onnxFinder())


def _register_or_warn() -> None:
    # Runs inside someone's `import skl2onnx`: a failure here must not break that import.
    try:
        register_skl2onnx()
    except Exception as exc:  # noqa: BLE001
        warnings.warn(f"mlp could not register its estimators with skl2onnx ({exc!r}); "
                      f"mlp.register_skl2onnx() raises the error", UserWarning, stacklevel=2)


class _Skl2onnxFinder:
    """A meta path finder that only watches for the top-level `skl2onnx` import.

    It asks the other finders for skl2onnx's spec and wraps the loader, so that the converters
    are registered once the package has finished executing. It stays in place: a spec asked for
    without an import (``importlib.util.find_spec``) registers nothing, and a later import of
    skl2onnx anew registers again.
    """

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "skl2onnx":
            return None
        for finder in list(sys.meta_path):
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _RegisteringLoader(spec.loader)
        return spec


class _RegisteringLoader:
    """Delegates to skl2onnx's own loader, registering mlp's converters after it ran."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        # Put the real loader back, so that nothing sees this one once the import is done.
        module.__loader__ = self._loader
        if getattr(module, "__spec__", None) is not None:
            module.__spec__.loader = self._loader
        _register_or_warn()

    def __getattr__(self, name):
        if name == "_loader":  # not set yet (a copy being made): no recursion
            raise AttributeError(name)
        return getattr(self._loader, name)


# ------------------------------------------------------------------------------------------------
# Parser and shape calculators
# ------------------------------------------------------------------------------------------------
def _check_fitted(est) -> None:
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(est, "coefs_")


def _parse_classifier(scope, model, inputs, custom_parsers=None):
    """skl2onnx's parser for classifiers (label, probabilities, then ZipMap as the options say),
    after checking that the estimator is fitted, which that parser would only report as "no
    known ways to retrieve the number of classes"."""
    from skl2onnx._parse import _parse_sklearn_classifier

    _check_fitted(model)
    return _parse_sklearn_classifier(scope, model, inputs, custom_parsers=custom_parsers)


def _input_checks(operator, n_outputs: int):
    """The estimator, the batch dimension and the tensor type the graph computes in (double for
    a double input, else float), after checking the operator's one input."""
    from skl2onnx.common.data_types import (
        BooleanTensorType,
        DoubleTensorType,
        FloatTensorType,
        Int32TensorType,
        Int64TensorType,
    )

    est = operator.raw_operator
    name = type(est).__name__
    _check_fitted(est)
    if len(operator.inputs) != 1 or len(operator.outputs) != n_outputs:
        raise ValueError(f"{name} takes one input and gives {n_outputs} output(s) in an ONNX "
                         f"graph, got {len(operator.inputs)} and {len(operator.outputs)}")
    kind = operator.inputs[0].type
    accepted = (FloatTensorType, DoubleTensorType, Int64TensorType, Int32TensorType,
                BooleanTensorType)
    if not isinstance(kind, accepted):
        raise TypeError(f"{name} needs a float, double, int64, int32 or boolean tensor as its "
                        f"input, got {kind!r}")
    shape = kind.shape or None  # None or []: unknown
    if shape is not None and len(shape) != 2:
        raise ValueError(f"{name} needs a 2-D input (N, {est.n_features_in_}), got shape "
                         f"{list(shape)}")
    width = shape[1] if shape is not None else None
    if isinstance(width, (int, np.integer)) and width != est.n_features_in_:
        raise ValueError(f"{name} was fitted on {est.n_features_in_} features; its ONNX input "
                         f"has {width}")
    real = DoubleTensorType if isinstance(kind, DoubleTensorType) else FloatTensorType
    return est, operator.inputs[0].get_first_dimension(), real


def _labels(scope, est) -> np.ndarray:
    """The class labels the graph outputs: int64 or strings, as skl2onnx's classifiers give.

    ``nocl=True`` makes them the class indices (skl2onnx's get_label_classes reads the option).
    """
    from skl2onnx.common.utils_classifier import get_label_classes

    labels = _label_values(np.asarray(get_label_classes(scope, est)))
    if labels.dtype.kind == "b":
        return labels.astype(np.int64)
    if labels.dtype.kind == "f":
        if not np.all(labels == np.round(labels)):
            raise ValueError(f"skl2onnx gives int64 or string labels: float classes_ "
                             f"{labels.tolist()} are not all integers (mlp.to_onnx keeps them "
                             f"as floats)")
        return labels.astype(np.int64)
    return labels


def _classifier_shapes(operator) -> None:
    from skl2onnx.common.data_types import (
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
    )

    est, n, real = _input_checks(operator, 2)
    zipmap = operator.scope_inst.get_options(est, {"zipmap": True})["zipmap"]
    if zipmap is True:  # ZipMap takes float tensors only
        real = FloatTensorType
    k = est.n_outputs_
    if est._multilabel:
        operator.outputs[0].type = Int64TensorType([n, k])
        operator.outputs[1].type = real([n, k])
        return
    labels = _labels(operator.scope_inst, est)
    if len(est.classes_) == 1 and zipmap is not False:
        raise ValueError("this MLPClassifier was fitted on one class: its two probability "
                         "columns cannot be zipped with one label; convert it with "
                         "options={id(clf): {'zipmap': False}}")
    label_type = StringTensorType if labels.dtype == object else Int64TensorType
    operator.outputs[0].type = label_type([n])
    operator.outputs[1].type = real([n, 2 if k == 1 else k])


def _regressor_shapes(operator) -> None:
    est, n, real = _input_checks(operator, 1)
    operator.outputs[0].type = real([n, est.n_outputs_])


# ------------------------------------------------------------------------------------------------
# Converters
# ------------------------------------------------------------------------------------------------
class _ContainerGraph(_Graph):
    """`mlp.onnx_export._Graph`'s interface over skl2onnx's scope and container, so that the
    activations' ONNX forms and the classifier head write into a skl2onnx graph.

    `outputs` maps the head's fixed output names (``label``, ``probabilities``, ...) to the
    names skl2onnx gave the operator's outputs. `dtype` is the precision the graph computes in:
    floating constants and weights are stored in it.
    """

    def __init__(self, scope, container, outputs: dict, dtype):
        from onnx import helper, numpy_helper

        # the main domain's opset skl2onnx converts to (13, the lowest mlp exports, if unknown)
        opset = getattr(container, "target_opset", None)
        super().__init__(helper, numpy_helper, int(opset) if opset else 13)
        self.scope, self.container, self.outputs = scope, container, outputs
        self.dtype = np.dtype(dtype)

    def name(self, hint: str) -> str:
        return self.scope.get_unique_variable_name(hint)

    def const(self, value: np.ndarray, hint: str) -> str:
        from onnx import TensorProto

        value = np.asarray(value)
        if value.dtype.kind == "f":
            value = value.astype(self.dtype)
        name = self.name(hint)
        if value.dtype == object:  # strings: no raw data, so values rather than a TensorProto
            content = [str(v).encode("utf-8") for v in value.ravel()]
            self.container.add_initializer(name, TensorProto.STRING, list(value.shape), content)
        else:
            tensor = self.numpy_helper.from_array(value, name)
            self.container.add_initializer(name, tensor.data_type, list(value.shape), tensor)
        return name

    def node(self, op: str, inputs: list, hint: str | None = None, output: str | None = None,
             **attrs) -> str:
        if self.dtype == np.float64:
            if op in ("LeakyRelu", "Elu", "Selu"):
                return self._double_activation(op, inputs[0], attrs["alpha"],
                                               attrs.get("gamma", 1.0), hint, output)
            if op == "Softplus":
                return self._double_softplus(inputs[0], hint, output)
            if op == "Mish":  # its double kernel is opset 18's only; after, it needs Softplus
                x = inputs[0]
                tanh = self._add("Tanh", [self._double_softplus(x, None, None)])
                return self._add("Mul", [x, tanh], hint, output)
            if op == "Erf":
                return self._float_erf(inputs[0], hint, output)
        return self._add(op, inputs, hint, output, **attrs)

    def _add(self, op: str, inputs: list, hint: str | None = None, output: str | None = None,
             **attrs) -> str:
        out = self.outputs[output] if output is not None else self.name(hint or op.lower())
        self.container.add_node(op, inputs, [out], name=self.scope.get_unique_operator_name(op),
                                **attrs)
        return out

    def _double_activation(self, op: str, x: str, alpha: float, gamma: float, hint,
                           output) -> str:
        """LeakyRelu, Elu or Selu from operators onnxruntime runs in double (it runs none of
        them): relu(x) + alpha * min(x, 0), relu(x) + alpha * (exp(min(x, 0)) - 1), and gamma
        times the latter."""
        negative = self.node("Min", [x, self.const(np.array(0.0), "zero")])
        if op in ("Elu", "Selu"):
            negative = self.node("Sub", [self.node("Exp", [negative]),
                                         self.const(np.array(1.0), "one")])
        scaled = self.node("Mul", [self.const(np.array(alpha), "alpha"), negative])
        if op != "Selu":
            return self.node("Add", [self.node("Relu", [x]), scaled], hint=hint, output=output)
        return self.node("Mul", [self.const(np.array(gamma), "gamma"),
                                 self.node("Add", [self.node("Relu", [x]), scaled])],
                         hint=hint, output=output)

    def _double_softplus(self, x: str, hint: str | None, output: str | None) -> str:
        """Softplus, which onnxruntime runs in float only: relu(x) + log(1 + exp(-|x|))."""
        tail = self.node("Exp", [self.node("Neg", [self.node("Abs", [x])])])
        log = self.node("Log", [self.node("Add", [tail, self.const(np.array(1.0), "one")])])
        return self.node("Add", [self.node("Relu", [x]), log], hint=hint, output=output)

    def _float_erf(self, x: str, hint, output) -> str:
        """Erf, which onnxruntime runs in float only: through a float32 cast and back (erf to
        float32's precision, a relative 1e-7, in a graph otherwise in double)."""
        from onnx import TensorProto

        erf = self._add("Erf", [self.node("Cast", [x], to=TensorProto.FLOAT)])
        return self.node("Cast", [erf], hint=hint, output=output, to=TensorProto.DOUBLE)

    def dense(self, x: str, weights: np.ndarray, bias: np.ndarray, i: int) -> str:
        # _Graph.dense stores float32; here the weights keep the graph's precision
        w = self.const(np.asarray(weights, dtype=self.dtype), f"W{i}")
        b = self.const(np.asarray(bias, dtype=self.dtype), f"B{i}")
        return self.node("Add", [self.node("MatMul", [x, w]), b], hint=f"z{i}")


def _graph(scope, operator, container, outputs: tuple) -> _ContainerGraph:
    """A graph computing in double for a double input, else in float32, whose `outputs` are
    the operator's. An output of another precision (float probabilities for ZipMap) is written
    under a name of its own and cast by `_finish`."""
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    double = isinstance(operator.inputs[0].type, DoubleTensorType)
    names, casts = {}, []
    for key, variable in zip(outputs, operator.outputs):
        names[key] = variable.full_name
        if double and isinstance(variable.type, FloatTensorType):
            names[key] = scope.get_unique_variable_name(key)
            casts.append((names[key], variable.full_name))
    g = _ContainerGraph(scope, container, names, np.float64 if double else np.float32)
    g.casts = casts
    return g


def _finish(g: _ContainerGraph) -> None:
    from onnx import TensorProto

    for source, target in g.casts:
        g.container.add_node("Cast", [source], [target], to=TensorProto.FLOAT,
                             name=g.scope.get_unique_operator_name("Cast"))


def _network(g: _ContainerGraph, operator):
    """The fitted network's layers, from the operator's input to the output activation; and
    its NetworkSpec."""
    from onnx import TensorProto
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    x = operator.inputs[0].full_name
    if not isinstance(operator.inputs[0].type, (FloatTensorType, DoubleTensorType)):
        x = g.node("Cast", [x], hint="input_float", to=TensorProto.FLOAT)
    spec, params = operator.raw_operator._export_network()
    return network_nodes(g, spec, params, x), spec


def _convert_classifier(scope, operator, container) -> None:
    from onnx import TensorProto

    est = operator.raw_operator
    g = _graph(scope, operator, container, ("label", "probabilities"))
    p, _ = _network(g, operator)
    # The head reads n_outputs_, _multilabel and classes_: give it the labels skl2onnx expects.
    classes = None if est._multilabel else _labels(scope, est)
    view = SimpleNamespace(n_outputs_=est.n_outputs_, _multilabel=est._multilabel,
                           classes_=classes)
    _classifier_head(g, g.helper, g.numpy_helper, TensorProto, view, p, "N")
    _finish(g)


def _convert_regressor(scope, operator, container) -> None:
    est = operator.raw_operator
    g = _graph(scope, operator, container, ("predictions",))
    z, spec = _network(g, operator)
    if est.out_activation_ == "exp":
        # the poisson loss's link, clamped as predict clamps it (and as float32 must)
        limit = min(EXP_LIMIT[spec.dtype], EXP_LIMIT[g.dtype.name])
        z = g.node("Exp", [g.node("Min", [z, g.const(np.array(limit), "exp_limit")])],
                   hint="exp")
    g.node("Identity", [z], output="predictions")
    _finish(g)
