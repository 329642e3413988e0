"""`Model`: the spec's functional model with compile / fit / evaluate / predict / summary.

A model whose layers are all built-in is handed to one ``mlp._core.Network``, which runs whole
epochs in C++; the Dense layers' ``weights`` and ``bias`` become views into its parameters so
that they always show the trained values. A model holding a user's own layer trains through
`mlp._python_path` instead.
"""
from __future__ import annotations

import math

import numpy as np

from . import _core
from ._device import resolve_device
from ._metrics import METRICS, check_metrics
from ._progress import ProgressBar
from ._python_path import PythonTrainer, _plain_dense
from ._registry import activation_name
from ._validation import check_array, check_bool, check_dtype, check_learning_rate, \
    check_network_size, check_positive_int, check_seed, check_X_y
from .layers import Activation, Dense, Layer, output_size_of
from .losses import Loss
from .optimizers import get_optimizer

_SOFTMAX = _core.Activation.SOFTMAX
_SIGMOID = _core.Activation.SIGMOID
_IDENTITY = _core.Activation.IDENTITY


def _effective_activation(layer: Layer):
    """The built-in activation a layer ends with, or None (a user's layer or activation)."""
    act = layer.activation if isinstance(layer, Dense) else layer if isinstance(layer, Activation) else None
    return act.kind if act is not None and act.is_builtin else None


class Model:
    """A chain of layers from `inputs` to `outputs`, trained as one network.

    Parameters
    ----------
    inputs : Layer
        The first layer; a Dense layer here needs ``input_size``.
    outputs : Layer
        The last layer, reached from `inputs` by calling each layer on the previous one.

    Attributes
    ----------
    layers : list of Layer
        From input to output.
    history : dict of str to list of float
        Per-epoch values of the last `fit`: 'loss', and 'val_loss', 'accuracy', 'val_accuracy'
        when asked for.

    Raises
    ------
    TypeError
        If `inputs` or `outputs` is not a Layer.
    ValueError
        If `outputs` is not chained to `inputs`, a layer appears twice, or the input size is
        unknown.

    Examples
    --------
    >>> inputs = Dense(input_size=2, output_size=16, activation='tanh')
    >>> x = Dense(output_size=8, activation='relu')(inputs)
    >>> outputs = Dense(output_size=1, activation='sigmoid')(x)
    >>> model = Model(inputs, outputs)
    >>> model.compile(loss_fn='mse')
    >>> loss = model.fit(np.array([[0, 0], [0, 1], [1, 0], [1, 1]]), np.array([0, 1, 1, 0]), 10, 0.1)
    """

    def __init__(self, inputs: Layer, outputs: Layer) -> None:
        for name, layer in (("inputs", inputs), ("outputs", outputs)):
            if not isinstance(layer, Layer):
                raise TypeError(f"{name} must be a Layer, got {type(layer).__name__}")
        layers, seen, layer = [], set(), outputs
        while True:
            if id(layer) in seen:
                raise ValueError(f"the layer {layer!r} appears twice in the chain; create a new "
                                 f"layer for each position")
            seen.add(id(layer))
            layers.append(layer)
            if layer is inputs:
                break
            layer = getattr(layer, "_prev", None)
            if layer is None:
                raise ValueError("outputs is not chained to inputs: call each layer on the "
                                 "previous one, starting from inputs")
        layers.reverse()
        self.layers = layers
        self.inputs, self.outputs = inputs, outputs

        first = layers[0]
        self.input_size = getattr(first, "input_size", None)
        if isinstance(first, Dense) and self.input_size is None:
            raise ValueError("the input layer needs input_size, e.g. Dense(16, input_size=2)")
        self.output_size = output_size_of(outputs)  # None only after a layer of unknown width

        self.loss = None
        self.optimizer = None
        self.metrics: list[str] = []
        self.dtype = None
        self.history: dict[str, list[float]] = {}
        self._net = None
        self._trainer = None

    # -- compile --------------------------------------------------------------------------------
    def compile(self, loss_fn, optimizer="sgd", metrics=None, dtype="float32", device="cpu") -> None:
        """Choose the loss, optimizer, metrics, precision and device, and build the network.

        Parameters
        ----------
        loss_fn : str or Loss
            'mse', 'categorical_cross_entropy' or 'binary_cross_entropy' (or an alias).
        optimizer : str or Optimizer, default='sgd'
            'sgd' (the spec's plain gradient descent), 'momentum', 'nesterov', 'adam', or an
            instance such as ``Adam(beta_1=0.8)``.
        metrics : list of str, optional
            ``['accuracy']`` is supported.
        dtype : {'float32', 'float64'}, default='float32'
            The precision of the weights and of every computation.
        device : {'cpu', 'cuda', 'cuda:N', 'auto'}, default='cpu'
            Where fit, predict and evaluate run. 'cuda' needs a build of mlp with CUDA
            (``mlp.build_info()['cuda']``) and a visible GPU; 'auto' takes the first GPU when
            there is one and the CPU otherwise. The weights stay readable as numpy arrays either
            way (they are copied back after every call), and `to` moves a compiled model.

        Raises
        ------
        ValueError
            If softmax is paired with any loss but categorical cross-entropy (or sits on a hidden
            layer), categorical cross-entropy lacks a softmax output, binary cross-entropy lacks
            a sigmoid output, or a name is unknown; if `device` asks for CUDA where the build has
            no CUDA support or no GPU is visible (the message says which), or for a model with a
            user's own layer, which runs on the CPU only.
        TypeError
            If an argument has the wrong type.

        Notes
        -----
        Compiling again rebuilds the network from the layers' current weights and resets the
        optimizer state.
        """
        loss = loss_fn if isinstance(loss_fn, Loss) else Loss(loss_fn)
        optimizer = get_optimizer(optimizer)
        metrics = check_metrics(metrics)
        dtype = check_dtype(dtype)
        ordinal = resolve_device(device)
        self._check_pairing(loss)

        optimizer.reset()
        stages = self._native_stages()
        if stages is None and ordinal >= 0 and device != "auto":
            raise ValueError(f"device={device!r}: a model with a user's own layer trains through "
                             f"Python, on the CPU only; use device='cpu' or 'auto'")
        if stages is not None:
            self._build_network(stages, loss, optimizer, dtype)
            self._net.to_device(ordinal)
            self._trainer = None
        else:
            self._release_network(dtype)
            self._trainer = PythonTrainer(self.layers, loss, optimizer)
        self.loss, self.optimizer, self.metrics, self.dtype = loss, optimizer, metrics, dtype

    def _check_pairing(self, loss: Loss) -> None:
        # The core fuses softmax with categorical cross-entropy and sigmoid with binary
        # cross-entropy (the derivative is computed from the logits), so these pairings are
        # fixed; refusing the others here beats a silently wrong gradient later.
        for layer in self.layers[:-1]:
            if _effective_activation(layer) == _SOFTMAX:
                raise ValueError("softmax can only be the activation of the last layer, where it "
                                 "goes with loss 'categorical_cross_entropy'")
        out = _effective_activation(self.layers[-1])
        shown = "a custom one" if out is None else repr(activation_name(out))
        if out == _SOFTMAX and loss.name != "categorical_cross_entropy":
            raise ValueError(f"a softmax output goes only with loss 'categorical_cross_entropy' "
                             f"(their derivatives are computed together), got loss {loss.name!r}")
        if loss.name == "categorical_cross_entropy" and out != _SOFTMAX:
            raise ValueError(f"loss 'categorical_cross_entropy' needs a softmax output layer (their "
                             f"derivatives are computed together); the output activation is {shown}")
        if loss.name == "binary_cross_entropy" and out != _SIGMOID:
            raise ValueError(f"loss 'binary_cross_entropy' needs a sigmoid output layer (their "
                             f"derivatives are computed together); the output activation is {shown}")

    def _native_stages(self):
        """[(dense, kind, alpha), ...] when the C++ Network can run the model, else None.

        A standalone built-in activation right after a linear Dense folds into it; a standalone
        linear activation is a no-op. Anything else needs the Python path.
        """
        stages = []
        foldable = False
        for layer in self.layers:
            if _plain_dense(layer) and layer.activation.is_builtin:
                kind = layer.activation.kind
                stages.append((layer, kind, layer.activation.alpha))
                foldable = kind == _IDENTITY
            elif isinstance(layer, Activation) and layer.is_builtin and stages:
                if layer.kind == _IDENTITY:
                    continue
                if not foldable:
                    return None
                stages[-1] = (stages[-1][0], layer.kind, layer.alpha)
                foldable = False
            else:
                return None
        return stages or None

    def _build_network(self, stages, loss: Loss, optimizer, dtype: np.dtype) -> None:
        denses = [dense for dense, _, _ in stages]
        sizes = [denses[0].input_size] + [dense.output_size for dense in denses]
        check_network_size(sizes, dtype, "the model")
        net = _core.Network(sizes, [kind for _, kind, _ in stages],
                            [float(alpha) for _, _, alpha in stages], loss.kind,
                            loss.scale(sizes[-1]), dtype.name)
        with np.errstate(over="ignore"):
            for i, dense in enumerate(denses):
                net.weight(i)[...] = dense.weights
                net.bias(i)[...] = dense.bias
        for i, dense in enumerate(denses):
            # The layer's arrays become views into the network, so training updates them and an
            # assignment to layer.weights reaches the network.
            dense._weights = net.weight(i)
            dense._bias = net.bias(i)
            dense.dweights = dense.dbias = None
        optimizer._configure(net)
        self._net = net

    def _release_network(self, dtype: np.dtype) -> None:
        # On the Python path every Dense owns its arrays, in the compiled precision.
        for layer in self.layers:
            if isinstance(layer, Dense) and layer.weights is not None:
                layer._weights = np.array(layer.weights, dtype=dtype)
                layer._bias = np.array(layer.bias, dtype=dtype)
                layer.dweights = layer.dbias = None
        self._net = None

    @property
    def device(self) -> str:
        """'cpu' or 'cuda:N': where the compiled model runs ('cpu' before compile)."""
        return self._net.device if self._net is not None else "cpu"

    def to(self, device) -> "Model":
        """Move the compiled model to `device` ('cpu', 'cuda', 'cuda:N' or 'auto').

        The weights, the optimizer state and the history are kept, so training goes on where it
        stopped. Returns the model.

        Raises
        ------
        ValueError
            If the model is not compiled, or as `compile` for `device`.
        """
        self._require_compiled("to")
        ordinal = resolve_device(device)
        if self._net is None:
            if ordinal >= 0 and device != "auto":
                raise ValueError(f"device={device!r}: a model with a user's own layer trains "
                                 f"through Python, on the CPU only")
            return self
        self._net.to_device(ordinal)
        return self

    @property
    def native(self) -> bool:
        """True when the compiled model trains in the C++ Network (every layer built-in)."""
        return self._net is not None

    def _require_compiled(self, method: str) -> None:
        if self.loss is None:
            raise ValueError(f"call model.compile(loss_fn=...) before model.{method}()")

    # -- data -----------------------------------------------------------------------------------
    def _xy(self, x, y, x_name="x", y_name="y"):
        return check_X_y(x, y, dtype=self.dtype, n_features=self.input_size,
                         n_outputs=self.output_size, x_name=x_name, y_name=y_name)

    def _validation_data(self, validation_data):
        if validation_data is None:
            return None
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise TypeError("validation_data must be a tuple (x_val, y_val)")
        return self._xy(*validation_data, x_name="validation_data[0]", y_name="validation_data[1]")

    # -- training -------------------------------------------------------------------------------
    def fit(self, x, y, epochs, learning_rate, print_loss=False, batch_size=32, shuffle=True,
            validation_data=None, seed=None, *, progress=None) -> float:
        """Train the model.

        Parameters
        ----------
        x : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples, n_outputs), or (n_samples,) for one output
        epochs : int
            Passes over the data, >= 1.
        learning_rate : float
            > 0.
        print_loss : bool, default=False
            Print the loss (and validation values) after every epoch.
        batch_size : int, default=32
            Samples per update; ``len(x)`` or more gives full-batch gradient descent.
        shuffle : bool, default=True
            Visit the samples in a new random order each epoch.
        validation_data : tuple (x_val, y_val), optional
            Evaluated after every epoch into ``history['val_loss']`` (and metrics).
        seed : int, optional
            Seeds the shuffling. Without it a seed is drawn from ``np.random``, so
            ``np.random.seed`` makes the whole fit repeatable.
        progress : bool, optional
            Draw a progress bar on stderr: True always, False never, None (default) only when
            the fit is predicted to take more than 2 seconds and `print_loss` is False.

        Returns
        -------
        float
            The last epoch's mean training loss (L2 penalty included).

        Raises
        ------
        ValueError
            If the model is not compiled, the data is bad (NaN, infinity, wrong shape or width,
            empty), or an argument is out of range.
        TypeError
            If the data is not numeric or an argument has the wrong type.
        FloatingPointError
            If the loss becomes non-finite; the update that caused it is not applied.

        Notes
        -----
        Ctrl-C stops the fit with KeyboardInterrupt within a few batches; the model keeps the
        epochs already done and stays usable.
        """
        self._require_compiled("fit")
        epochs = check_positive_int(epochs, "epochs")
        lr = check_learning_rate(learning_rate)
        print_loss = check_bool(print_loss, "print_loss")
        batch_size = check_positive_int(batch_size, "batch_size")
        shuffle = check_bool(shuffle, "shuffle")
        seed = check_seed(seed)
        if progress is not None:
            progress = check_bool(progress, "progress")
        x, y = self._xy(x, y)
        val = self._validation_data(validation_data)
        if seed is None:
            seed = int(np.random.randint(0, 2**62, dtype=np.int64))
        batch_size = min(batch_size, x.shape[0])

        if self._net is not None:
            self._net.set_seed(seed)
            rng = None
        else:
            rng = np.random.default_rng(seed)

        keys = ["loss"] + self.metrics
        if val is not None:
            keys += ["val_loss"] + [f"val_{m}" for m in self.metrics]
        self.history = {key: [] for key in keys}
        bar = ProgressBar(epochs, force=False if print_loss else progress)
        loss = math.nan
        try:
            for epoch in range(1, epochs + 1):
                if self._net is not None:
                    loss = self._net.train_epoch(x, y, None, batch_size, shuffle, lr)
                else:
                    loss = self._trainer.train_epoch(x, y, batch_size, shuffle, lr, rng)
                if not math.isfinite(loss):
                    raise FloatingPointError(
                        f"the training loss became non-finite in epoch {epoch}: the fit diverged. "
                        f"The update that caused it was not applied and the weights are finite; "
                        f"try a smaller learning_rate (got {lr:g}) or scale the data")
                record = {"loss": float(loss)}
                if self.metrics:
                    pred = self._predict(x)
                    record.update({name: METRICS[name](y, pred) for name in self.metrics})
                if val is not None:
                    record.update({f"val_{k}": v for k, v in self._evaluate(*val).items()})
                for key, value in record.items():
                    self.history[key].append(value)
                if print_loss:
                    shown = " - ".join(f"{k}: {v:.4f}" if k.endswith("accuracy") else f"{k}: {v:.6g}"
                                       for k, v in record.items())
                    print(f"Epoch {epoch}/{epochs} - {shown}", flush=True)
                bar.update(epoch, loss)
        finally:
            bar.close()
            if self._net is not None:
                # A GPU keeps x between epochs; the next fit may pass the same array, changed.
                self._net.release_data()
        return float(loss)

    # -- inference ------------------------------------------------------------------------------
    def _predict(self, x: np.ndarray) -> np.ndarray:
        if self._net is not None:
            return self._net.predict(x)
        trainer = self._trainer or PythonTrainer(self.layers, Loss("mse"), get_optimizer("sgd"))
        return trainer.forward(x)

    def predict(self, x) -> np.ndarray:
        """The output for `x`.

        Parameters
        ----------
        x : array-like of shape (n_samples, n_features)

        Returns
        -------
        numpy.ndarray of shape (n_samples, n_outputs)
            In the compiled dtype (float32 before compile).

        Raises
        ------
        ValueError, TypeError
            If `x` is not a finite numeric 2-D array of the model's input width.
        """
        dtype = self.dtype if self.dtype is not None else self._weights_dtype()
        x = check_array(x, "x", dtype=dtype, n_columns=self.input_size)
        return self._predict(x)

    def _weights_dtype(self) -> np.dtype:
        for layer in self.layers:
            if isinstance(layer, Dense):
                return layer.weights.dtype
        return np.dtype(np.float32)

    def _evaluate(self, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        if self._net is not None:
            result = {"loss": float(self._net.loss(x, y, None))}
        else:
            result = {"loss": self._trainer.evaluate_loss(x, y)}
        if self.metrics:
            pred = self._predict(x)
            result.update({name: METRICS[name](y, pred) for name in self.metrics})
        return result

    def evaluate(self, x, y):
        """The loss (L2 penalty included) and metrics on `x`, `y`, without training.

        Parameters
        ----------
        x : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples, n_outputs), or (n_samples,) for one output

        Returns
        -------
        float or dict
            The loss when no metrics were compiled in, else ``{'loss': ..., 'accuracy': ...}``.

        Raises
        ------
        ValueError, TypeError
            If the model is not compiled or the data is bad.
        """
        self._require_compiled("evaluate")
        result = self._evaluate(*self._xy(x, y))
        return result["loss"] if not self.metrics else result

    # -- description ----------------------------------------------------------------------------
    def count_params(self) -> int:
        """The total number of trainable parameters.

        Examples
        --------
        >>> inputs = Dense(64, input_size=100, activation='relu')
        >>> x = Dense(32, activation='relu')(inputs)
        >>> Model(inputs, Dense(10, activation='softmax')(x)).count_params()
        8874
        """
        return int(sum(layer.count_params() for layer in self.layers))

    def summary(self, print_fn=print) -> None:
        """Print the layers, their output shapes and parameter counts, and the total.

        Parameters
        ----------
        print_fn : callable, default=print
            Called once per line.
        """
        rows = [("Layer (type)", "Output shape", "Activation", "Params")]
        for i, layer in enumerate(self.layers):
            cls = type(layer).__name__
            size = output_size_of(layer)
            act = layer.activation if isinstance(layer, Dense) else layer if isinstance(layer, Activation) else None
            rows.append((f"{cls.lower()}_{i} ({cls})", f"(None, {size if size is not None else '?'})",
                         "" if act is None else act.name, f"{layer.count_params():,}"))
        widths = [max(len(row[c]) for row in rows) for c in range(4)]
        rule = "-" * (sum(widths) + 6)

        def fmt(row):
            return "  ".join(cell.ljust(w) if c < 3 else cell.rjust(w)
                             for c, (cell, w) in enumerate(zip(row, widths)))

        print_fn(rule)
        print_fn(fmt(rows[0]))
        print_fn(rule)
        for row in rows[1:]:
            print_fn(fmt(row))
        print_fn(rule)
        print_fn(f"Total params: {self.count_params():,}")
        if self.loss is not None:
            path = "native C++ network" if self.native else "Python path (custom layers)"
            print_fn(f"Compiled: loss {self.loss.name!r}, optimizer {self.optimizer!r}, "
                     f"{self.dtype.name}, {path}")
        else:
            print_fn("Not compiled")

    # -- persistence ----------------------------------------------------------------------------
    def save(self, path) -> None:
        """Write the model to one file that `mlp.load` reads back.

        The file holds the layers, the compile settings, the weights, the optimizer state and
        the history, so the loaded model predicts identically and keeps training where this one
        stopped. It is a zip of JSON and raw arrays, never a pickle (see `mlp.io`).

        Parameters
        ----------
        path : str, path-like or binary file object

        Raises
        ------
        TypeError
            If the model holds a user's own layer, activation or optimizer: only built-in ones
            can be described without code (pickle such a model instead).

        Examples
        --------
        >>> model.save("xor.mlp")            # doctest: +SKIP
        >>> same = mlp.load("xor.mlp")       # doctest: +SKIP
        """
        from .io import save

        save(self, path)

    def __getstate__(self):
        # Pickle carries the same description as the file (mlp._state), because the native
        # Network cannot be pickled and the Dense layers' weights are views into it. A model with
        # a user's own layer has no native Network, so it pickles its attributes as they are.
        from . import _state

        try:
            state = _state.get_state(self)
        except _state.UnsupportedError:
            return {"attributes": self.__dict__.copy(), "buffers": self._optimizer_buffers()}
        return {"mlp_state": state.meta, "arrays": state.arrays, "objects": state.objects}

    def __setstate__(self, state) -> None:
        from . import _state

        if "attributes" in state:
            self.__dict__.update(state["attributes"])
            if self.optimizer is not None:
                # The Python path keys its buffers by id(param), which unpickling changes.
                self.optimizer._state = {id(getattr(self.layers[i], part)): buffers
                                         for (i, part), buffers in state["buffers"].items()}
            return
        restored = _state.restore(state["mlp_state"], _state.dict_fetcher(state["arrays"]))
        self.__dict__.update(restored.__dict__)
        self.__dict__.update(state.get("objects", {}))

    def _optimizer_buffers(self) -> dict:
        """The Python path's optimizer buffers by (layer index, 'weights' | 'bias')."""
        found = {}
        if self.optimizer is not None:
            for i, layer in enumerate(self.layers):
                if isinstance(layer, Dense):
                    for part in ("weights", "bias"):
                        buffers = self.optimizer._state.get(id(getattr(layer, part)))
                        if buffers is not None:
                            found[(i, part)] = buffers
        return found

    def __repr__(self) -> str:
        return f"Model({len(self.layers)} layers, {self.count_params()} params)"

