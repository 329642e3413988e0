"""`Model`: the spec's functional model with compile / fit / evaluate / predict / summary.

A model whose layers are all built-in is handed to one ``mlp._core.Network``, which runs whole
epochs in C++; the Dense layers' ``weights`` and ``bias`` become views into its parameters so
that they always show the trained values. A model holding a user's own layer trains through
`mlp._layerwise` instead.
"""
from __future__ import annotations


import numpy as np

import math

from . import _format, _spec, schedules
from ._device import resolve_device
from ._engine import Engine
from ._layerwise import LayerwiseTrainer
from ._limits import DRAWN_SEED_LIMIT, MAX_LAYERS, MAX_STEP
from ._metrics import METRICS, check_metrics
from ._validation import check_array, check_bool, check_dtype, check_learning_rate, \
    check_positive_int, check_seed, check_X_y, ready_rows
from .callbacks import ProgressBar
from .io import save as save_file
from .layers import Activation, Dense, Layer, output_size_of
from .layers_extra import Concatenate, Dropout
from .losses import Loss
from .optimizers import from_config as optimizer_from_config, get_optimizer


def _effective_activation(layer: Layer) -> str | None:
    """The name of the built-in activation a layer ends with, or None (a user's own)."""
    act = layer.activation if isinstance(layer, Dense) else layer if isinstance(layer, Activation) else None
    return act.name if act is not None and act.is_builtin else None


def _check_callbacks(callbacks) -> list:
    if callbacks is None:
        return []
    if not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"callbacks must be a list of callbacks, got {type(callbacks).__name__}")
    for cb in callbacks:
        if not callable(getattr(cb, "on_epoch_end", None)):
            raise TypeError(f"callbacks: {cb!r} has no on_epoch_end(model, epoch, logs) method")
    return list(callbacks)


class _PrintLoss:
    """``print_loss=True``: one line per epoch, ``Epoch 3/10 - loss: 0.25 - accuracy: 0.9``."""

    def __init__(self, epochs: int, keys: list) -> None:
        self.epochs, self.keys = epochs, keys

    def on_epoch_end(self, model, epoch, logs):
        shown = " - ".join(f"{k}: {logs[k]:.4f}" if k.endswith("accuracy") else f"{k}: {logs[k]:.6g}"
                           for k in self.keys)
        print(f"Epoch {epoch + 1}/{self.epochs} - {shown}", flush=True)
        return False


@_format.register("Model")
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
        Per-epoch values of the last `fit`, under Keras's keys: 'loss' (the mean training loss,
        L2 penalty included), each compiled metric ('accuracy'), and with validation data
        'val_loss' and 'val_<metric>'.

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

    # -- description ----------------------------------------------------------------------------
    def network_spec(self) -> _spec.NetworkSpec | None:
        """The model as a `NetworkSpec` (layer by layer, standalone activations included), or
        None when a layer is a user's own. Its loss and dtype are those of `compile` (None and
        float32 before)."""
        concat = self._concatenate
        body = self.layers[1:] if concat is not None else self.layers
        layers = [layer._layer_spec() if isinstance(layer, (Dense, Activation, Dropout)) else None
                  for layer in body]
        if any(layer is None for layer in layers) or self.input_size is None or not layers:
            return None
        embeddings = concat._embedding_specs() if concat is not None else ()
        if self.loss is None:
            return _spec.NetworkSpec(self.input_size, tuple(layers), embeddings=embeddings)
        return _spec.NetworkSpec(self.input_size, tuple(layers), self.loss.name,
                                 self.loss.scale(self.output_size), self.dtype.name,
                                 embeddings=embeddings,
                                 label_smoothing=self.loss.label_smoothing)

    @property
    def _concatenate(self) -> Concatenate | None:
        """The first layer when it is a Concatenate of embeddings."""
        return self.layers[0] if isinstance(self.layers[0], Concatenate) else None

    def _dropout_schedule(self):
        """The one schedule the Dropout layers follow (None when they all have a fixed rate).

        Raises
        ------
        ValueError
            If some follow a schedule and others do not, or the schedules differ in anything but
            their initial rate: the core scales every layer's rate by one factor per step.
        """
        rates = [layer.rate for layer in self.layers if isinstance(layer, Dropout)]
        scheduled = [r for r in rates if isinstance(r, schedules.Schedule)]
        if not scheduled:
            return None
        shape = {k: v for k, v in scheduled[0]._params().items() if k != "initial"}
        if len(scheduled) != len(rates) or any(
                type(r) is not type(scheduled[0])
                or {k: v for k, v in r._params().items() if k != "initial"} != shape
                for r in scheduled):
            raise ValueError("the Dropout layers' rates must all follow schedules of one shape "
                             "(the same class and settings, any initial rate), or all be numbers")
        return scheduled[0]

    # -- compile --------------------------------------------------------------------------------
    def compile(self, loss_fn, optimizer="sgd", metrics=None, dtype="float32", device="cpu") -> None:
        """Choose the loss, optimizer, metrics, precision and device, and build the network.

        Parameters
        ----------
        loss_fn : str or Loss
            'mse', 'categorical_cross_entropy' or 'binary_cross_entropy' (or an alias).
        optimizer : str or Optimizer, default='sgd'
            'sgd' (the spec's plain gradient descent), 'momentum', 'nesterov', 'adam', 'adamw',
            or an instance such as ``Adam(beta_1=0.8)`` or ``AdamW(weight_decay=0.02)``.
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
        if isinstance(self.layers[-1], Dropout):
            raise ValueError("Dropout cannot be the model's last layer: it drops hidden outputs")
        self._dropout_schedule()  # refuses schedules the core cannot follow
        spec = self.network_spec()
        folded = spec.folded() if spec is not None else None
        native_only = [type(layer).__name__ for layer in self.layers
                       if isinstance(layer, (Dropout, Concatenate))]
        if folded is None and native_only:
            raise ValueError(f"{native_only[0]} trains in the native network only, and this model "
                             f"has no native form: it holds a user's own layer, or a Dropout that "
                             f"does not follow a Dense layer (or the activation right after it)")
        if folded is None and ordinal >= 0 and device != "auto":
            raise ValueError(f"device={device!r}: a model with a user's own layer trains through "
                             f"Python, on the CPU only; use device='cpu' or 'auto'")
        if folded is not None:
            folded = _spec.NetworkSpec(folded.n_inputs, folded.layers, loss.name,
                                       loss.scale(folded.n_outputs), dtype.name,
                                       embeddings=folded.embeddings,
                                       label_smoothing=loss.label_smoothing)
            self._build_network(folded, optimizer)
            self._net.to_device(ordinal)
            self._trainer = None
        else:
            self._release_network(dtype)
            self._trainer = LayerwiseTrainer(self.layers, loss, optimizer)
        self.loss, self.optimizer, self.metrics, self.dtype = loss, optimizer, metrics, dtype

    def _check_pairing(self, loss: Loss) -> None:
        # The core fuses softmax with categorical cross-entropy and sigmoid with binary
        # cross-entropy (the derivative is computed from the logits), so these pairings are
        # fixed; refusing the others here beats a silently wrong gradient later.
        for layer in self.layers[:-1]:
            if _effective_activation(layer) == "softmax":
                raise ValueError("softmax can only be the activation of the last layer, where it "
                                 "goes with loss 'categorical_cross_entropy'")
        out = _effective_activation(self.layers[-1])
        shown = "a custom one" if out is None else repr(out)
        needed = _spec.loss(loss.name).output
        if out == "softmax" and loss.name != "categorical_cross_entropy":
            raise ValueError(f"a softmax output goes only with loss 'categorical_cross_entropy' "
                             f"(their derivatives are computed together), got loss {loss.name!r}")
        if needed is not None and out != needed:
            raise ValueError(f"loss {loss.name!r} needs a {needed} output layer (their "
                             f"derivatives are computed together); the output activation is {shown}")

    def _build_network(self, spec: _spec.NetworkSpec, optimizer) -> None:
        net = spec.build(what="the model")
        denses = [layer for layer in self.layers if isinstance(layer, Dense)]
        with np.errstate(over="ignore"):
            for i, dense in enumerate(denses):
                net.weight(i)[...] = dense.weights
                net.bias(i)[...] = dense.bias
        for i, dense in enumerate(denses):
            # The layer's arrays become views into the network, so training updates them and an
            # assignment to layer.weights reaches the network.
            dense._adopt(net.weight(i), net.bias(i))
        if self._concatenate is not None:
            for j, emb in enumerate(self._concatenate.embeddings):
                net.embedding(j)[...] = emb.weights
                emb._adopt(net.embedding(j))
        optimizer._configure(net)
        self._net = net

    def _release_network(self, dtype: np.dtype) -> None:
        # On the Python path every Dense owns its arrays, in the compiled precision.
        for layer in self.layers:
            if isinstance(layer, Dense) and layer.weights is not None:
                layer._adopt(np.array(layer.weights, dtype=dtype), np.array(layer.bias, dtype=dtype))
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
        x, y = check_X_y(x, y, dtype=self.dtype, n_features=self.input_size,
                         n_outputs=self.output_size, x_name=x_name, y_name=y_name)
        if self._concatenate is not None:
            self._concatenate.check_codes(x, x_name)
        return x, y

    def _validation_data(self, validation_data):
        if validation_data is None:
            return None
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise TypeError("validation_data must be a tuple (x_val, y_val)")
        return self._xy(*validation_data, x_name="validation_data[0]", y_name="validation_data[1]")

    # -- training -------------------------------------------------------------------------------
    def fit(self, x, y, epochs, learning_rate, print_loss=False, batch_size=32, shuffle=True,
            validation_data=None, seed=None, *, progress=None, callbacks=None) -> float:
        """Train the model.

        Parameters
        ----------
        x : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples, n_outputs), or (n_samples,) for one output
        epochs : int
            Passes over the data, >= 1.
        learning_rate : float or Schedule
            > 0, or a schedule of `mlp.schedules` such as ``CosineDecay(0.01, warmup_steps=100)``,
            which the core evaluates at every step (its step 0 is this fit's first step; one
            without a length spans ``epochs * ceil(len(x) / batch_size)`` steps). Schedules need
            the native network (every layer built-in).
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
        callbacks : list, optional
            Objects with ``on_epoch_end(model, epoch, logs)`` (epoch counted from 0; a true
            return stops the fit) and optionally ``on_train_begin(model)`` /
            ``on_train_end(model)``: the callbacks of `mlp.callbacks`, such as
            ``EarlyStopping(monitor='val_loss', patience=5)``, which restores the best epoch's
            weights. ``logs`` holds this epoch's entries of `history` plus 'learning_rate' and
            'time' (seconds since the fit began).

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
            If the loss becomes non-finite. The weights are put back to those the previous epoch
            started from (the first ones when the first epoch diverges), whose outputs on the
            training data are finite.

        Notes
        -----
        Ctrl-C stops the fit with KeyboardInterrupt within a few batches; the model keeps the
        epochs already done and stays usable.

        Examples
        --------
        >>> from mlp.callbacks import EarlyStopping                       # doctest: +SKIP
        >>> model.fit(x, y, 200, 0.01, validation_data=(x_val, y_val),    # doctest: +SKIP
        ...           callbacks=[EarlyStopping(monitor="val_loss", patience=10)])
        """
        self._require_compiled("fit")
        epochs = check_positive_int(epochs, "epochs")
        lr_schedule = None
        if isinstance(learning_rate, schedules.Schedule):
            lr_schedule = schedules.check_value_or_schedule(learning_rate, "learning_rate")
            if self._net is None:
                raise ValueError("learning_rate: a schedule runs in the native network; this "
                                 "model holds a user's own layer, so pass a number")
            learning_rate = learning_rate.initial
        lr = check_learning_rate(learning_rate)
        print_loss = check_bool(print_loss, "print_loss")
        batch_size = check_positive_int(batch_size, "batch_size")
        shuffle = check_bool(shuffle, "shuffle")
        seed = check_seed(seed)
        if progress is not None:
            progress = check_bool(progress, "progress")
        callbacks = _check_callbacks(callbacks)
        x, y = self._xy(x, y)
        val = self._validation_data(validation_data)
        if seed is None:
            seed = int(np.random.randint(0, DRAWN_SEED_LIMIT, dtype=np.int64))
        batch_size = min(batch_size, x.shape[0])

        logged_rate = None
        if self._net is not None:
            net = self._net
            net.set_seed(seed)
            total = epochs * math.ceil(x.shape[0] / batch_size)
            schedules.configure(net, schedules.SLOT_LEARNING_RATE, lr_schedule, total)
            schedules.configure(net, schedules.SLOT_WEIGHT_DECAY, self.optimizer.weight_decay,
                                total)
            schedules.configure(net, schedules.SLOT_DROPOUT, self._dropout_schedule(), total)
            origin = int(net.step)
            if lr_schedule is not None:
                def logged_rate(rate):  # the rate of the epoch's last step
                    return rate * lr_schedule.factor(max(0, int(net.step) - origin - 1), total)

            def train_epoch(rate):
                return net.train_epoch(x, y, None, batch_size, shuffle, rate)
        else:
            rng = np.random.default_rng(seed)

            def train_epoch(rate):
                return self._trainer.train_epoch(x, y, batch_size, shuffle, rate, rng)

        def figures():
            out = {}
            if self.metrics:
                pred = self._predict(x)
                out.update({name: METRICS[name](y, pred) for name in self.metrics})
            if val is not None:
                out.update({f"val_{k}": v for k, v in self._evaluate(*val).items()})
            return out

        def diverged(epoch, rate):
            raise FloatingPointError(
                f"the training loss became non-finite in epoch {epoch + 1}: the fit diverged. "
                f"The weights are put back to those the previous epoch started from; "
                f"try a smaller learning_rate (got {rate:g}) or scale the data")

        keys = ["loss"] + self.metrics
        if val is not None:
            keys += ["val_loss"] + [f"val_{m}" for m in self.metrics]
        self.history = {key: [] for key in keys}
        if print_loss:
            callbacks.insert(0, _PrintLoss(epochs, keys))
        elif progress is not False:
            callbacks.append(ProgressBar(total=epochs, min_seconds=0.0 if progress else 2.0))
        engine = Engine(self, train_epoch, learning_rate=lr, figures=figures,
                        callbacks=callbacks, history=self.history, on_divergence=diverged,
                        logged_rate=logged_rate)
        try:
            loss = engine.run(epochs)
        finally:
            if self._net is not None:
                # A GPU keeps x between epochs; the next fit may pass the same array, changed.
                self._net.release_data()
        return float(loss)

    def _get_flat_params(self) -> np.ndarray:
        """Every weight and bias in one new array (for callbacks that keep the best epoch's)."""
        if self._net is not None:
            return self._net.params.copy()
        parts = [a for layer in self.layers if isinstance(layer, Dense) and layer.weights is not None
                 for a in (layer.weights, layer.bias)]
        return np.concatenate([a.ravel() for a in parts]) if parts else np.empty(0)

    def _set_flat_params(self, params: np.ndarray) -> None:
        """Put back what `_get_flat_params` returned."""
        if self._net is not None:
            self._net.params[...] = params
            return
        at = 0
        for layer in self.layers:
            if isinstance(layer, Dense) and layer.weights is not None:
                for a in (layer.weights, layer.bias):
                    a[...] = params[at:at + a.size].reshape(a.shape)
                    at += a.size

    # -- inference ------------------------------------------------------------------------------
    def _predict(self, x: np.ndarray) -> np.ndarray:
        if self._net is not None:
            return self._net.predict(x)
        trainer = self._trainer or LayerwiseTrainer(self.layers, Loss("mse"), get_optimizer("sgd"))
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
        if (self._net is not None and self._concatenate is None
                and ready_rows(x, dtype, self.input_size) is not None):
            out = self._net.predict(x, True)  # a few rows, as they are: no copy, no conversion
            if out is not None:
                return out
        x = check_array(x, "x", dtype=dtype, n_columns=self.input_size)
        if self._concatenate is not None:
            self._concatenate.check_codes(x)
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
        spec = self.network_spec()
        if spec is not None:
            described = [(units, act, params) for _, units, act, params in spec.summary_rows()]
        else:  # a user's own layer: what the layers themselves say
            described = []
            for layer in self.layers:
                act = layer.activation if isinstance(layer, Dense) else \
                    layer if isinstance(layer, Activation) else None
                described.append((output_size_of(layer), "" if act is None else act.name,
                                  layer.count_params()))
        rows = [("Layer (type)", "Output shape", "Activation", "Params")]
        for i, (units, act, params) in enumerate(described):
            cls = type(self.layers[i]).__name__
            rows.append((f"{cls.lower()}_{i} ({cls})",
                         f"(None, {units if units is not None else '?'})", act, f"{params:,}"))
        lines = _spec.table_lines(rows)
        rule = "-" * len(lines[0])
        print_fn(rule)
        print_fn(lines[0])
        print_fn(rule)
        for line in lines[1:]:
            print_fn(line)
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
        save_file(self, path)

    def __getstate__(self):
        # Pickle carries the same description as the file (mlp._format), because the native
        # Network cannot be pickled and the Dense layers' weights are views into it. A model with
        # a user's own layer has no native Network, so it pickles its attributes as they are.
        try:
            return _format.pickle_state(self._to_state())
        except _format.UnsupportedError:
            return {"attributes": self.__dict__.copy(), "buffers": self._optimizer_buffers()}

    def __setstate__(self, state) -> None:
        if "attributes" in state:
            self.__dict__.update(state["attributes"])
            if self.optimizer is not None:
                # The layerwise path keys its buffers by id(param), which unpickling changes.
                self.optimizer._restore_buffers(
                    [(getattr(self.layers[i], part), buffers)
                     for (i, part), buffers in state["buffers"].items()],
                    self.optimizer.step_count)
            return
        _format.unpickle_into(self, state)

    def _optimizer_buffers(self) -> dict:
        """The layerwise path's optimizer buffers by (layer index, 'weights' | 'bias')."""
        found = {}
        if self.optimizer is not None:
            for i, layer in enumerate(self.layers):
                if isinstance(layer, Dense):
                    for part in ("weights", "bias"):
                        buffers = self.optimizer._buffers(getattr(layer, part))
                        if buffers is not None:
                            found[(i, part)] = buffers
        return found

    def _export_network(self):
        """``(NetworkSpec, [(weights, bias) of each Dense])`` for an exporter (`mlp.to_onnx`).

        Raises
        ------
        TypeError
            If a layer or an activation is a user's own (it has no form outside Python).
        ValueError
            If the input width is unknown.
        """
        for i, layer in enumerate(self.layers):
            where = f"layer {i} ({type(layer).__name__})"
            if not isinstance(layer, (Dense, Activation, Dropout, Concatenate)):
                raise TypeError(f"{where} is a user's own layer, which has no ONNX form; only "
                                f"Dense, Dropout, Concatenate and the built-in activations can "
                                f"be exported")
            layer._to_config(where)  # raises for a user's own layer or activation
        if self.input_size is None:
            raise ValueError("the model's input width is unknown: give the first layer input_size")
        params = [(layer.weights, layer.bias) for layer in self.layers if isinstance(layer, Dense)]
        if self._concatenate is not None:
            params += [emb.weights for emb in self._concatenate.embeddings]
        return self.network_spec(), params

    # -- state: what a file and a pickle hold -----------------------------------------------------
    _ATTRIBUTES = {"layers", "inputs", "outputs", "input_size", "output_size", "loss", "optimizer",
                   "metrics", "dtype", "history", "_net", "_trainer"}

    def _to_state(self) -> _format.State:
        """The model as plain data (see `mlp._format`); TypeError (UnsupportedError) when it
        holds a user's own layer, activation or optimizer."""
        layers, arrays = [], {}
        dtype = self.dtype.name if self.dtype is not None else None
        for i, layer in enumerate(self.layers):
            where = f"layer {i} ({type(layer).__name__})"
            if isinstance(layer, Dense):
                layers.append(layer._to_config(where))
                dtype = dtype or layer.weights.dtype.name
                _format.declare(arrays, f"layers/{i}/weights", np.array(layer.weights, dtype=dtype))
                _format.declare(arrays, f"layers/{i}/bias", np.array(layer.bias, dtype=dtype))
            elif isinstance(layer, Activation):
                layers.append({"type": "Activation", **layer._to_config(where)})
            elif type(layer) is Dropout:
                layers.append(layer._to_config(where))
            elif type(layer) is Concatenate:
                layers.append(layer._to_config(where))
                for j, emb in enumerate(layer.embeddings):
                    _format.declare(arrays, f"layers/{i}/embeddings/{j}",
                                    np.array(emb.weights, dtype=dtype or emb.weights.dtype.name))
            else:
                raise _format.UnsupportedError(f"{where} is a user's own layer; only Dense, "
                                               f"Dropout, Concatenate and the built-in "
                                               f"activations can be saved")
        dtype = dtype or "float32"
        compiled = optimizer = None
        if self.loss is not None:
            compiled = {"loss": self.loss.name, "metrics": list(self.metrics),
                        "native": self.native}
            if self.loss.label_smoothing:
                compiled["label_smoothing"] = self.loss.label_smoothing
            optimizer = self.optimizer._to_config()
            if self.native:
                buffers = self._net.optimizer_state()
                optimizer.update(step=int(self._net.step), n_arrays=len(buffers))
                for j, buf in enumerate(buffers):
                    _format.declare(arrays, f"optimizer/{j}", buf)
            else:
                # The layerwise path keys its buffers by parameter; they are stored by layer.
                entries = []
                for (i, part), buffers in self._optimizer_buffers().items():
                    entries.append([i, part])
                    for j, buf in enumerate(buffers):
                        _format.declare(arrays, f"optimizer/{i}/{part}/{j}", buf)
                optimizer.update(step=self.optimizer.step_count, python_path=entries)
        objects = {k: v for k, v in self.__dict__.items() if k not in self._ATTRIBUTES}
        meta = {**_format.header("Model", dtype),
                "architecture": {"layers": layers},
                "hyperparameters": compiled, "fitted": {"history": _format.encode(self.history)},
                "optimizer": optimizer, "arrays": _format.array_table(arrays)}
        return _format.State(meta, arrays, objects, [])

    @classmethod
    def _from_state(cls, meta: dict, fetch, check_params: bool = True) -> "Model":
        """The model `meta` (untrusted, checked by `mlp._format.restore`) describes."""
        dtype = _format.check_choice(meta["dtype"], "dtype", ("float32", "float64"))
        arch = _format.check_keys(meta["architecture"], "architecture", required=("layers",))
        specs = arch["layers"]
        if not isinstance(specs, list) or not 1 <= len(specs) <= 2 * MAX_LAYERS:
            _format.fail("architecture.layers", f"a list of 1 to {2 * MAX_LAYERS} layers", specs,
                         show=False)
        layers, prev = [], None
        for i, spec in enumerate(specs):
            where = f"architecture.layers[{i}]"
            _format.check_dict(spec, where)
            if spec.get("type") == "Dense":
                layer = Dense._from_config(spec, where, lambda w_shape, b_shape: (
                    _format.fetch_array(meta, fetch, f"layers/{i}/weights", dtype, w_shape),
                    _format.fetch_array(meta, fetch, f"layers/{i}/bias", dtype, b_shape)))
            elif spec.get("type") == "Activation":
                _format.check_keys(spec, where, required=("type", "class", "name", "alpha"))
                layer = Activation._from_config({k: spec[k] for k in ("class", "name", "alpha")},
                                                where)
            elif spec.get("type") == "Dropout":
                layer = Dropout._from_config(spec, where)
            elif spec.get("type") == "Concatenate" and i == 0:
                layer = Concatenate._from_config(spec, where, lambda j, shape: (
                    _format.fetch_array(meta, fetch, f"layers/0/embeddings/{j}", dtype, shape)))
            else:
                _format.fail(f"{where}.type", "'Dense', 'Activation', 'Dropout' or (first) "
                             "'Concatenate'", spec.get("type"))
            if prev is not None:
                try:
                    layer(prev)  # checks that the widths chain
                except ValueError as exc:
                    raise ValueError(f"invalid mlp state: {where}: {exc}") from None
            layers.append(layer)
            prev = layer
        try:
            model = cls(layers[0], layers[-1])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"invalid mlp state: architecture: {exc}") from None

        fitted = _format.check_keys(meta["fitted"], "fitted", required=("history",))
        history = _format.check_history(_format.decode(fitted["history"], "fitted.history"),
                                        "fitted.history")
        if meta["hyperparameters"] is not None:
            model._compile_from_state(meta, dtype, fetch)
        elif meta["optimizer"] is not None:
            raise ValueError("invalid mlp state: an optimizer without a compiled model")
        model.history = history
        return model

    def _compile_from_state(self, meta: dict, dtype: str, fetch) -> None:
        compiled = _format.check_keys(meta["hyperparameters"], "hyperparameters",
                                      required=("loss", "metrics", "native"),
                                      optional=("label_smoothing",))
        spec = _format.check_keys(meta["optimizer"], "optimizer",
                                  required=("class", "settings", "step"),
                                  optional=("n_arrays", "python_path"))
        try:
            optimizer = optimizer_from_config({k: spec[k] for k in ("class", "settings")})
            smoothing = _format.check_float(compiled.get("label_smoothing", 0.0),
                                            "hyperparameters.label_smoothing")
            loss = Loss(_format.check_str(compiled["loss"], "hyperparameters.loss"),
                        label_smoothing=smoothing)
            self.compile(loss, optimizer=optimizer, metrics=compiled["metrics"], dtype=dtype)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"invalid mlp state: the compiled settings: {exc}") from None
        if self.native != _format.check_bool(compiled["native"], "hyperparameters.native"):
            raise ValueError("invalid mlp state: hyperparameters.native does not match the layers")
        step = _format.check_int(spec["step"], "optimizer.step", 0, MAX_STEP)
        if self.native:
            net = self._net
            expected = len(net.optimizer_state())
            if _format.check_int(spec.get("n_arrays"), "optimizer.n_arrays") != expected:
                _format.fail("optimizer.n_arrays", f"{expected} for these optimizer settings",
                             spec.get("n_arrays"))
            buffers = [_format.fetch_array(meta, fetch, f"optimizer/{j}", dtype, (net.n_params,))
                       for j in range(expected)]
            net.set_optimizer_state(buffers, step)
            return
        entries = spec.get("python_path")
        if not isinstance(entries, list):
            _format.fail("optimizer.python_path", "a list of [layer, 'weights' | 'bias']", entries)
        restored = []
        for k, entry in enumerate(entries):
            where = f"optimizer.python_path[{k}]"
            if not isinstance(entry, list) or len(entry) != 2:
                _format.fail(where, "[layer index, 'weights' | 'bias']", entry)
            i = _format.check_int(entry[0], f"{where}[0]", 0, len(self.layers) - 1)
            part = _format.check_choice(entry[1], f"{where}[1]", ("weights", "bias"))
            layer = self.layers[i]
            if type(layer) is not Dense:
                _format.fail(where, "the index of a Dense layer", entry)
            param = getattr(layer, part)
            restored.append((param, [_format.fetch_array(meta, fetch, f"optimizer/{i}/{part}/{j}",
                                                         dtype, param.shape) for j in range(2)]))
        self.optimizer._restore_buffers(restored, step)

    def __repr__(self) -> str:
        return f"Model({len(self.layers)} layers, {self.count_params()} params)"

