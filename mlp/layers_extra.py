"""The spec API's layers beyond Dense and the activations: `Dropout`, `Embedding`, `Concatenate`.

They train in the native network only (``mlp._core.Network``): dropout's masks come from the
core's counter-based generator, and embeddings are looked up and scatter-added there. A Model
that holds one of them and a user's own layer is refused at `compile`.

- ``Dropout(rate)`` after a Dense layer (or the activation that follows it) drops that layer's
  outputs in training, as Keras's does (inverted: kept units are scaled by 1 / (1 - rate)); it
  does nothing at predict or evaluate.
- ``Concatenate([Embedding(...), ...], input_size=n)`` is a model's first layer when some input
  columns hold integer-coded categories: the first Dense sees each embedded column's table row,
  in the order given, then the other columns in their order.
"""
from __future__ import annotations

import numpy as np

from . import _format, _spec, schedules
from ._limits import MAX_WIDTH, SEED_LIMIT, check_allocation
from ._validation import check_array, check_seed, check_width
from .layers import Layer

# The most rows an embedding table may have: codes travel in the input's float array, and
# float32 holds every integer up to 2**24 exactly.
MAX_EMBEDDING_ROWS = 2 ** 24


class Dropout(Layer):
    """Randomly zero a fraction `rate` of the previous layer's outputs while training.

    Parameters
    ----------
    rate : float or Schedule
        The fraction dropped, in [0, 1), or a schedule of it from `mlp.schedules` (for example
        ``CosineDecay(0.3)``, a rate that falls to 0 over the fit). A schedule never raises the
        rate above its initial value.

    Notes
    -----
    The masks are a hash of (fit seed, step, layer, row, unit), so a seeded fit draws the same
    masks at any thread count. Kept outputs are scaled by ``1 / (1 - rate)``, so nothing changes
    at predict time, where the layer is the identity.

    Examples
    --------
    >>> hidden = Dropout(0.2)(Dense(64, input_size=10, activation="relu"))
    >>> outputs = Dense(1)(hidden)
    """

    def __init__(self, rate) -> None:
        super().__init__()
        self.rate = schedules.check_value_or_schedule(rate, "rate", fraction_below_one=True)

    @property
    def initial_rate(self) -> float:
        return schedules.initial_of(self.rate)

    def forward(self, input):
        """The identity: dropout acts only inside a native fit."""
        self.input = self.output = input
        return input

    def backward(self, output_error, learning_rate=None):
        raise RuntimeError("Dropout trains in the native network only; a model holding it and "
                           "a user's own layer is refused at compile")

    def update(self, learning_rate=None):
        pass

    def __repr__(self) -> str:
        return f"Dropout(rate={self.rate!r})"

    def _layer_spec(self):
        return _spec.LayerSpec(None, "linear", 0.0, dropout=self.initial_rate)

    def _to_config(self, where: str) -> dict:
        rate = self.rate._to_config() if isinstance(self.rate, schedules.Schedule) else self.rate
        return {"type": "Dropout", "rate": rate}

    @classmethod
    def _from_config(cls, spec, where: str) -> "Dropout":
        _format.check_keys(spec, where, required=("type", "rate"))
        rate = spec["rate"]
        if isinstance(rate, dict):
            rate = schedules.from_config(rate, f"{where}.rate")
        else:
            rate = _format.check_float(rate, f"{where}.rate")
        try:
            return cls(rate)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"invalid mlp state: {where}: {exc}") from None


class Embedding(Layer):
    """A table of `output_dim` learned values per category code, for one input column.

    Parameters
    ----------
    input_dim : int
        The number of categories: the column's codes are integers in [0, input_dim), at most
        2**24.
    output_dim : int
        The width of each category's vector.
    column : int, default=0
        The input column that holds the codes.
    seed : int, optional
        Draw the initial table from ``np.random.default_rng(seed)``; without it from numpy's
        global random state. The draw is Keras's: uniform in [-0.05, 0.05].

    Attributes
    ----------
    weights : numpy.ndarray of shape (input_dim, output_dim)

    Notes
    -----
    An Embedding is not chained by calling it: it goes inside `Concatenate`, the model's first
    layer.
    """

    def __init__(self, input_dim: int, output_dim: int, column: int = 0,
                 seed: int | None = None) -> None:
        super().__init__()
        self.input_dim = check_width(input_dim, "input_dim")
        if self.input_dim > MAX_EMBEDDING_ROWS:
            raise ValueError(f"input_dim must be at most 2**24 ({MAX_EMBEDDING_ROWS}) categories, "
                             f"got {self.input_dim}")
        self.output_dim = check_width(output_dim, "output_dim")
        if isinstance(column, bool) or not isinstance(column, (int, np.integer)) or column < 0:
            raise TypeError(f"column must be a non-negative int, got {column!r}")
        self.column = int(column)
        self.seed = check_seed(seed)
        check_allocation(8 * self.input_dim * self.output_dim,
                         f"the table of Embedding({self.input_dim}, {self.output_dim})")
        uniform = np.random.uniform if self.seed is None else \
            np.random.default_rng(self.seed).uniform
        self._weights = np.ascontiguousarray(
            uniform(-0.05, 0.05, (self.input_dim, self.output_dim)), dtype=np.float32)

    def __call__(self, prev):
        raise TypeError("an Embedding is not chained by calling it: pass it to "
                        "Concatenate([Embedding(...), ...], input_size=...), the model's first "
                        "layer")

    @property
    def weights(self) -> np.ndarray:
        """The table, shape (input_dim, output_dim)."""
        return self._weights

    @weights.setter
    def weights(self, value) -> None:
        arr = check_array(value, "weights", dtype=self._weights.dtype)
        if arr.shape != self._weights.shape:
            raise ValueError(f"weights must have shape {self._weights.shape} (input_dim, "
                             f"output_dim), got {arr.shape}")
        self._weights[...] = arr

    def count_params(self) -> int:
        return self.input_dim * self.output_dim

    def forward(self, input):
        raise RuntimeError("an Embedding runs inside Concatenate")

    def backward(self, output_error, learning_rate=None):
        raise RuntimeError("an Embedding trains inside Concatenate, in the native network")

    def update(self, learning_rate=None):
        pass

    def __repr__(self) -> str:
        return (f"Embedding(input_dim={self.input_dim}, output_dim={self.output_dim}, "
                f"column={self.column})")

    def _to_config(self) -> dict:
        return {"input_dim": self.input_dim, "output_dim": self.output_dim,
                "column": self.column, "seed": self.seed}

    @classmethod
    def _from_config(cls, spec, where: str, table) -> "Embedding":
        _format.check_keys(spec, where, required=("input_dim", "output_dim", "column", "seed"))
        rows = _format.check_int(spec["input_dim"], f"{where}.input_dim", 1, MAX_EMBEDDING_ROWS)
        width = _format.check_int(spec["output_dim"], f"{where}.output_dim", 1, MAX_WIDTH)
        column = _format.check_int(spec["column"], f"{where}.column", 0, MAX_WIDTH - 1)
        seed = spec["seed"]
        if seed is not None:
            _format.check_int(seed, f"{where}.seed", 0, SEED_LIMIT - 1)
        layer = cls.__new__(cls)
        Layer.__init__(layer)
        layer.input_dim, layer.output_dim, layer.column, layer.seed = rows, width, column, seed
        layer._weights = table((rows, width))
        return layer

    def _adopt(self, weights: np.ndarray) -> None:
        self._weights = weights


class Concatenate(Layer):
    """A model's first layer: embedded categorical columns next to the numeric ones.

    Parameters
    ----------
    embeddings : list of Embedding
        One per categorical column (distinct columns).
    input_size : int
        The width of the model's input, embedded columns included.

    The output is each embedding's vector, in the order given, then the input's other columns in
    their order: ``sum(output_dim) + input_size - len(embeddings)`` wide.

    Raises
    ------
    TypeError, ValueError
        If an entry is not an Embedding, two embeddings read one column, or a column is outside
        the input.

    Examples
    --------
    >>> features = Concatenate([Embedding(10, 4, column=0)], input_size=3)
    >>> hidden = Dense(16, activation="relu")(features)     # sees 4 + 2 = 6 inputs
    >>> model = Model(features, Dense(1)(hidden))
    """

    def __init__(self, embeddings, input_size: int) -> None:
        super().__init__()
        if isinstance(embeddings, Embedding):
            embeddings = [embeddings]
        if not isinstance(embeddings, (list, tuple)) or not embeddings:
            raise TypeError("embeddings must be a non-empty list of Embedding layers")
        for i, emb in enumerate(embeddings):
            if not isinstance(emb, Embedding):
                raise TypeError(f"embeddings[{i}] must be an Embedding, got {type(emb).__name__}")
        self.embeddings = list(embeddings)
        self.input_size = check_width(input_size, "input_size")
        seen = {}
        for i, emb in enumerate(self.embeddings):
            if emb.column >= self.input_size:
                raise ValueError(f"embeddings[{i}] reads column {emb.column}, outside the input's "
                                 f"{self.input_size} columns (input_size)")
            if emb.column in seen:
                raise ValueError(f"embeddings[{seen[emb.column]}] and embeddings[{i}] both read "
                                 f"column {emb.column}")
            seen[emb.column] = i
        self.output_size = self.compute_output_size(self.input_size)

    def _connect(self, prev):
        raise TypeError("Concatenate is a model's first layer: it cannot be chained after "
                        "another layer")

    def compute_output_size(self, input_size=None) -> int:
        return (self.input_size - len(self.embeddings)
                + sum(e.output_dim for e in self.embeddings))

    def count_params(self) -> int:
        return sum(e.count_params() for e in self.embeddings)

    @property
    def numeric_columns(self) -> list:
        embedded = {e.column for e in self.embeddings}
        return [c for c in range(self.input_size) if c not in embedded]

    def check_codes(self, x: np.ndarray, name: str = "x") -> None:
        """ValueError naming the column when an embedded column of `x` holds a value that is not
        an integer code in [0, input_dim)."""
        for i, emb in enumerate(self.embeddings):
            col = x[:, emb.column]
            bad = (col < 0) | (col >= emb.input_dim) | (col != np.floor(col))
            if bad.any():
                row = int(np.argmax(bad))
                raise ValueError(
                    f"{name}[:, {emb.column}] (embeddings[{i}]) must hold integer category codes "
                    f"in [0, {emb.input_dim}); row {row} holds {col[row]!r}")

    def forward(self, input):
        """The concatenated features of `input` (n_samples, input_size), in numpy."""
        x = np.asarray(input)
        self.check_codes(x, "input")
        parts = [e.weights[x[:, e.column].astype(np.int64)] for e in self.embeddings]
        parts.append(x[:, self.numeric_columns].astype(self.embeddings[0].weights.dtype))
        self.input = x
        self.output = np.concatenate(parts, axis=1)
        return self.output

    def backward(self, output_error, learning_rate=None):
        raise RuntimeError("Concatenate trains in the native network only; a model holding it "
                           "and a user's own layer is refused at compile")

    def update(self, learning_rate=None):
        pass

    def __repr__(self) -> str:
        return f"Concatenate({self.embeddings!r}, input_size={self.input_size})"

    def _embedding_specs(self) -> tuple:
        return tuple(_spec.EmbeddingSpec(e.column, e.input_dim, e.output_dim)
                     for e in self.embeddings)

    def _to_config(self, where: str) -> dict:
        return {"type": "Concatenate", "input_size": self.input_size,
                "embeddings": [e._to_config() for e in self.embeddings]}

    @classmethod
    def _from_config(cls, spec, where: str, table_of) -> "Concatenate":
        """`table_of(j, shape)` gives embedding j's table (checked against `shape`)."""
        _format.check_keys(spec, where, required=("type", "input_size", "embeddings"))
        size = _format.check_int(spec["input_size"], f"{where}.input_size", 1, MAX_WIDTH)
        entries = spec["embeddings"]
        if not isinstance(entries, list) or not 1 <= len(entries) <= size:
            _format.fail(f"{where}.embeddings", f"a list of 1 to {size} embeddings", entries,
                         show=False)
        embs = [Embedding._from_config(e, f"{where}.embeddings[{j}]",
                                       lambda shape, j=j: table_of(j, shape))
                for j, e in enumerate(entries)]
        try:
            return cls(embs, size)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"invalid mlp state: {where}: {exc}") from None
