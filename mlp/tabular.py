"""`TabularClassifier` and `TabularRegressor`: strong defaults for real tables.

Tables as users have them: pandas or polars DataFrames with numeric, categorical (category,
object/string, bool) and missing values, or arrays with ``categorical_features=``. Everything is
fitted in `fit` and kept with the model (`TablePreprocessor`):

- numeric columns: centred on the median, divided by the interquartile range (half the range
  when that is 0), then smoothly clipped, ``x / sqrt(1 + (x / 3)**2)`` (RealMLP's robust scaling;
  ``numeric_scaling='quantile'`` is the normal score of the training quantile instead); beside
  it a piecewise-linear encoding on up to `ple_bins` quantile bins (Gorishniy et al. 2022); a
  missing value becomes the median, and a column with missing values in training gets a 0/1
  missing-indicator input;
- categorical columns: one-hot up to `onehot_max_categories` categories, a learned embedding of
  `embedding_dim` above; a category unseen in training (or missing) maps to a reserved slot: all
  zeros in one-hot, its own row in an embedding. Never an error.

The network and its training are the core's (csrc/): the embeddings are looked up before the
first Dense, dropout (and AdamW's decoupled weight decay, off by default) follow flat-then-cosine
schedules, the learning rate follows RealMLP's coslog4 schedule, the classifier smooths its
labels, and the weights of the best epoch on a stratified validation split (or `eval_set`) are
kept. The defaults are the ones `benchmarks/tabular/` measured best on its whole suite.
"""
from __future__ import annotations

import math
import numbers

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.validation import check_is_fitted

from . import _format, _spec, schedules
from ._device import resolve_device
from ._engine import Engine
from ._limits import DRAWN_SEED_LIMIT, SEED_LIMIT
from ._validation import check_positive_int
from .callbacks import Callback
from .io import save as save_file

_NUMERIC, _ONEHOT, _EMBED = "numeric", "onehot", "embedding"
_HISTORY_KEYS = ("loss", "val_loss", "val_score", "learning_rate", "time")


# ------------------------------------------------------------------------------------------------
# Reading columns from what users pass
# ------------------------------------------------------------------------------------------------
def _frame_kind(X) -> str | None:
    module = type(X).__module__.split(".")[0]
    if module == "pandas" and hasattr(X, "columns") and hasattr(X, "iloc"):
        return "pandas"
    if module == "polars" and hasattr(X, "columns") and hasattr(X, "get_column"):
        return "polars"
    return None


def _is_categorical_dtype(kind: str, column) -> bool:
    if kind == "pandas":
        import pandas as pd
        dtype = column.dtype
        return (isinstance(dtype, pd.CategoricalDtype) or dtype == object or dtype == bool
                or pd.api.types.is_string_dtype(dtype) or pd.api.types.is_bool_dtype(dtype))
    import polars as pl
    dtype = column.dtype
    return dtype in (pl.Utf8, pl.Categorical, pl.Boolean, pl.Object) or \
        isinstance(dtype, (pl.Categorical, pl.Enum))


class _Table:
    """A uniform view of X: its column names (or None), how many rows, and each column as a
    1-D numpy array, read one at a time (no copy of the whole table). X is a pandas or polars
    DataFrame, a dict of column name to 1-D array (what the command line reads from a CSV), or
    a 2-D array."""

    def __init__(self, X, name: str = "X") -> None:
        self.kind = _frame_kind(X)
        if self.kind is not None:
            self.X = X
            self.names = [str(c) for c in X.columns]
            self.n_rows = int(X.shape[0])
        elif hasattr(X, "toarray") or hasattr(X, "tocsr"):  # before dict: dok is one
            raise TypeError(f"{name}: sparse input is not supported by the tabular "
                            f"estimators; pass a dense array or a DataFrame")
        elif isinstance(X, dict):
            self.kind = "columns"
            if not all(isinstance(k, str) for k in X):
                raise TypeError(f"{name}: a dict of columns needs string keys (column names)")
            self.X = {k: np.asarray(v) for k, v in X.items()}
            shapes = {v.shape for v in self.X.values()}
            if any(len(s) != 1 for s in shapes) or len(shapes) > 1:
                raise ValueError(f"{name}: a dict of columns needs 1-D columns of one length, "
                                 f"got shapes {sorted(shapes)}")
            self.names = list(self.X)
            self.n_rows = int(next(iter(shapes))[0]) if shapes else 0
        else:
            arr = np.asarray(X)
            if arr.dtype.kind == "c":
                raise ValueError(f"Complex data not supported: {name} has dtype {arr.dtype}")
            if arr.dtype.kind not in "biufOUSb":
                raise TypeError(f"{name} must hold numbers or strings, got dtype {arr.dtype}")
            if arr.ndim != 2:
                raise ValueError(f"Expected a 2-D {name} (n_samples, n_features), got shape "
                                 f"{arr.shape}. Reshape your data either using "
                                 f"X.reshape(-1, 1) if it has a single feature or "
                                 f"X.reshape(1, -1) if it is a single sample.")
            self.X = arr
            self.names = None
            self.n_rows = int(arr.shape[0])
        self.n_columns = len(self.names) if self.names is not None else int(self.X.shape[1])
        shape = (self.n_rows, self.n_columns)
        if self.n_rows < 1:
            raise ValueError(f"Found array with 0 sample(s) (shape={shape}) while a minimum of "
                             f"1 is required ({name}).")
        if self.n_columns < 1:
            raise ValueError(f"Found array with 0 feature(s) (shape={shape}) while a minimum of "
                             f"1 is required ({name}).")

    def column(self, j: int):
        if self.kind == "columns":
            return self.X[self.names[j]]
        if self.kind == "pandas":
            return self.X.iloc[:, j]
        if self.kind == "polars":
            return self.X.get_column(self.X.columns[j])
        return self.X[:, j]

    def values(self, j: int) -> np.ndarray:
        col = self.column(j)
        if self.kind == "pandas":
            if _is_categorical_dtype("pandas", col):
                return col.to_numpy(dtype=object)
            try:  # nullable integer and float columns: pd.NA becomes NaN
                return col.to_numpy(dtype=np.float64, na_value=np.nan)
            except (TypeError, ValueError):
                return col.to_numpy()
        if self.kind == "polars":
            return col.to_numpy()
        return col

    def is_categorical(self, j: int) -> bool:
        if self.kind in ("pandas", "polars"):
            return _is_categorical_dtype(self.kind, self.column(j))
        return self.column(j).dtype.kind in "OUSb"


def _missing(values: np.ndarray) -> np.ndarray:
    """True where a value is missing: None, NaN, pandas' NA/NaT."""
    if values.dtype.kind == "f":
        return np.isnan(values)
    if values.dtype.kind in "iubUS":
        return np.zeros(len(values), dtype=bool)
    try:
        import pandas as pd
    except ImportError:
        pd = None
    if pd is not None:  # one vectorised pass: None, NaN, pd.NA and NaT
        return np.asarray(pd.isna(values), dtype=bool)
    out = np.empty(len(values), dtype=bool)
    for i, v in enumerate(values):
        out[i] = v is None or (isinstance(v, float) and math.isnan(v)) or \
            type(v).__name__ in ("NAType", "NaTType")
    return out


def _as_numeric(values: np.ndarray, where: str) -> np.ndarray:
    try:
        out = values.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{where} holds values that are not numbers; mark the column "
                         f"categorical (categorical_features=) or give it a string or "
                         f"category dtype") from None
    return out


# ------------------------------------------------------------------------------------------------
# Preprocessing
# ------------------------------------------------------------------------------------------------
NUMERIC_SCALINGS = ("robust", "quantile")
_N_QUANTILES = 1000     # quantile scaling: at most this many reference quantiles (scikit-learn's default)
_QUANTILE_CLIP = 1e-7   # quantile scaling: the uniform value is kept in [1e-7, 1 - 1e-7] before the
#                         normal quantile function, so the output stays within about +-5.2


def _smooth_clip(v: np.ndarray) -> np.ndarray:
    """v / sqrt(1 + (v / 3)**2): about v near 0, bounded by 3 (RealMLP's smooth clipping)."""
    with np.errstate(over="ignore"):  # |v| past 1e154: v / |v| * 3, as the limit
        return np.where(np.abs(v) < 1e150, v / np.sqrt(1.0 + (v / 3.0) ** 2), np.sign(v) * 3.0)


def quantile_scale(x: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """The normal score of x's position among the training quantiles (scikit-learn's
    QuantileTransformer with a normal output): interpolated both ways so that runs of equal
    quantiles take their middle, clipped, then the normal quantile function."""
    from scipy.special import ndtri
    refs = np.linspace(0.0, 1.0, len(quantiles))
    u = 0.5 * (np.interp(x, quantiles, refs) - np.interp(-x, -quantiles[::-1], -refs[::-1]))
    return ndtri(np.clip(u, _QUANTILE_CLIP, 1.0 - _QUANTILE_CLIP))


def ple_encode(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Piecewise-linear encoding on bins b_0 < ... < b_T: feature t (1..T) is
    clip((x - b_{t-1}) / (b_t - b_{t-1}), 0, 1), so that bins below x read 1, above it 0, and
    x's own bin its position inside. (n,) -> (n, T)."""
    lo, width = edges[:-1], np.diff(edges)
    return np.clip((x[:, None] - lo[None, :]) / width[None, :], 0.0, 1.0)


class TablePreprocessor:
    """The fitted conversion of a table into the network's input (see the module docstring).

    Parameters
    ----------
    categorical_features : None, array-like of int, of bool or of str
        Which columns are categorical. None: those of a DataFrame with a category, string,
        object or bool dtype, and for an array those of a string or object dtype.
    onehot_max_categories : int
        Categorical columns with at most this many categories are one-hot encoded; larger ones
        are embedded.
    numeric_scaling : 'robust' or 'quantile'
        'robust': (x - median) / IQR then smooth clipping. 'quantile': the normal score of x's
        training quantile.
    ple_bins : int
        0: none. Otherwise each numeric column also gets a piecewise-linear encoding on up to
        this many bins between its training quantiles (fewer where values repeat; none for a
        column with fewer than 2 distinct values).

    Attributes (after `fit`)
    ------------------------
    kinds_ : list of str, per input column: 'numeric', 'onehot' or 'embedding'.
    median_, scale_ : dict of column index to float, for numeric columns (the median fills
        missing values under both scalings; scale_ is the robust scaling's divisor).
    quantiles_ : dict of column index to float64 array, for numeric columns under 'quantile'.
    edges_ : dict of column index to float64 array (b_0 .. b_T), the numeric columns with a
        piecewise-linear encoding.
    indicator_ : list of int, the numeric columns that get a missing indicator.
    categories_ : dict of column index to list of str (the training categories, sorted).
    The output's layout: the embedded columns' codes (in column order), then the numeric
    columns, then their piecewise-linear encodings (in column order), then the missing
    indicators, then the one-hot blocks.
    """

    def __init__(self, categorical_features=None, onehot_max_categories: int = 9,
                 numeric_scaling: str = "robust", ple_bins: int = 0) -> None:
        self.categorical_features = categorical_features
        self.onehot_max_categories = onehot_max_categories
        self.numeric_scaling = numeric_scaling
        self.ple_bins = ple_bins

    # -- which columns are categorical ---------------------------------------------------------
    def _categorical_mask(self, table: _Table) -> list:
        cf = self.categorical_features
        if cf is None:
            return [table.is_categorical(j) for j in range(table.n_columns)]
        values = list(cf) if not isinstance(cf, (str, bytes)) else [cf]
        if all(isinstance(v, (bool, np.bool_)) for v in values) and values:
            if len(values) != table.n_columns:
                raise ValueError(f"categorical_features: a boolean mask needs one entry per "
                                 f"column ({table.n_columns}), got {len(values)}")
            return [bool(v) for v in values]
        mask = [False] * table.n_columns
        for v in values:
            if isinstance(v, str):
                if table.names is None or v not in table.names:
                    raise ValueError(f"categorical_features: no column named {v!r}"
                                     + ("" if table.names else " (X has no column names)"))
                mask[table.names.index(v)] = True
            elif isinstance(v, numbers.Integral) and not isinstance(v, bool):
                if not 0 <= int(v) < table.n_columns:
                    raise ValueError(f"categorical_features: column index {v} is outside "
                                     f"X's {table.n_columns} columns")
                mask[int(v)] = True
            else:
                raise TypeError(f"categorical_features must hold column indices, names or "
                                f"booleans, got {v!r}")
        return mask

    def _check(self) -> None:
        if self.numeric_scaling not in NUMERIC_SCALINGS:
            raise ValueError(f"numeric_scaling must be one of {', '.join(map(repr, NUMERIC_SCALINGS))}"
                             f", got {self.numeric_scaling!r}")
        check_positive_int(self.ple_bins, "ple_bins", minimum=0)
        if self.ple_bins == 1 or self.ple_bins > 1024:
            raise ValueError(f"ple_bins must be 0 (none) or in [2, 1024], got {self.ple_bins}")

    # -- fit ------------------------------------------------------------------------------------
    def fit(self, table: _Table) -> "TablePreprocessor":
        self._fit(table, None)
        return self

    def fit_transform(self, table: _Table, parts=None, dtype=np.float32) -> list:
        """Fit on the rows `parts[0]` and convert every part: one (len(part), n_outputs) array
        per part (parts: a list of row-index arrays, None for all rows as one part).

        Each column is read once: a categorical column's codes, computed while fitting, are
        kept (one int32 per row) for the conversion; a numeric column is read again, which for
        a float column of a DataFrame or array is a view, not a conversion."""
        codes = self._fit(table, parts[0] if parts is not None else None)
        return [self._fill(table, p, codes, dtype) for p in (parts or [None])]

    def _fit(self, table: _Table, rows) -> dict:
        self._check()
        self.n_features_in_ = table.n_columns
        self.feature_names_ = table.names
        mask = self._categorical_mask(table)
        self.kinds_, self.indicator_, self.categories_ = [], [], {}
        self.median_, self.scale_, self.quantiles_, self.edges_ = {}, {}, {}, {}
        codes = {}
        for j in range(table.n_columns):
            values = table.values(j)
            if mask[j]:
                missing = _missing(values)
                train = values if rows is None else values[rows]
                train_missing = missing if rows is None else missing[rows]
                cats = _categories_of(train[~train_missing])
                self.categories_[j] = cats
                self.kinds_.append(_ONEHOT if len(cats) <= self.onehot_max_categories else _EMBED)
                codes[j] = _codes_of(values, missing, cats)
                continue
            x = _as_numeric(values, f"X column {self._name(j)}")
            x = x if rows is None else x[rows]
            present = x[np.isfinite(x)]
            self._fit_numeric(j, present)
            if present.size < x.size:
                self.indicator_.append(j)
            self.kinds_.append(_NUMERIC)
        return codes

    def _fit_numeric(self, j: int, present: np.ndarray) -> None:
        if present.size:
            q25, med, q75 = np.percentile(present, [25, 50, 75])
            scale = q75 - q25
            if not scale > 0:
                scale = 0.5 * (present.max() - present.min())
            if not scale > 0:
                scale = 1.0
        else:
            med, scale = 0.0, 1.0
        self.median_[j], self.scale_[j] = float(med), float(scale)
        if self.numeric_scaling == "quantile":
            n_q = max(2, min(_N_QUANTILES, present.size))
            self.quantiles_[j] = np.percentile(present, np.linspace(0, 100, n_q)) \
                if present.size else np.array([0.0, 1.0])
        if self.ple_bins and present.size:
            edges = np.unique(np.percentile(present, np.linspace(0, 100, self.ple_bins + 1),
                                            method="lower"))  # values of the column
            if edges.size >= 3:  # at least two bins, or the encoding says no more than x does
                self.edges_[j] = edges

    def _name(self, j: int) -> str:
        return repr(self.feature_names_[j]) if self.feature_names_ else str(j)

    # -- the output's layout --------------------------------------------------------------------
    @property
    def embedded(self) -> list:
        return [j for j, k in enumerate(self.kinds_) if k == _EMBED]

    @property
    def numeric(self) -> list:
        return [j for j, k in enumerate(self.kinds_) if k == _NUMERIC]

    @property
    def onehot(self) -> list:
        return [j for j, k in enumerate(self.kinds_) if k == _ONEHOT]

    @property
    def encoded(self) -> list:
        """The numeric columns with a piecewise-linear encoding, in column order."""
        return [j for j in self.numeric if j in self.edges_]

    @property
    def n_outputs(self) -> int:
        return (len(self.embedded) + len(self.numeric)
                + sum(len(self.edges_[j]) - 1 for j in self.encoded) + len(self.indicator_)
                + sum(len(self.categories_[j]) for j in self.onehot))

    def embedding_specs(self, width: int) -> tuple:
        """One (column of the output, rows, width) per embedded column; rows = categories + 1
        (the last for unseen or missing values)."""
        return tuple(_spec.EmbeddingSpec(i, len(self.categories_[j]) + 1, width)
                     for i, j in enumerate(self.embedded))

    # -- transform ------------------------------------------------------------------------------
    def transform(self, table: _Table, dtype=np.float32) -> np.ndarray:
        """The network's input: one new (n, n_outputs) array, filled column by column."""
        if table.n_columns != self.n_features_in_:
            raise ValueError(f"X has {table.n_columns} features, but this model was fitted with "
                             f"{self.n_features_in_}")
        if self.feature_names_ is not None and table.names is not None \
                and table.names != self.feature_names_:
            raise ValueError("X's column names differ from those seen in fit (same names in the "
                             "same order are required)")
        return self._fill(table, None, {}, dtype)

    def scale_numeric(self, j: int, x: np.ndarray) -> tuple:
        """Column j's scaled values, its missing mask, and its values with the median in the
        missing places: float64 (n,), bool (n,), float64 (n,)."""
        bad = ~np.isfinite(x)
        filled = np.where(bad, self.median_[j], x)
        if self.numeric_scaling == "quantile":
            return quantile_scale(filled, self.quantiles_[j]), bad, filled
        return _smooth_clip((filled - self.median_[j]) / self.scale_[j]), bad, filled

    def _fill(self, table: _Table, rows, codes: dict, dtype) -> np.ndarray:
        n = table.n_rows if rows is None else len(rows)
        out = np.empty((n, self.n_outputs), dtype=dtype)

        def codes_of(j):
            if j in codes:
                return codes[j] if rows is None else codes[j][rows]
            values = table.values(j)
            values = values if rows is None else values[rows]
            return _codes_of(values, _missing(values), self.categories_[j])

        at = 0
        for j in self.embedded:
            out[:, at] = codes_of(j)
            at += 1
        numeric_at = at
        ple_at = at + len(self.numeric)
        indicator_at = ple_at + sum(len(self.edges_[j]) - 1 for j in self.encoded)
        at = indicator_at + len(self.indicator_)
        for i, j in enumerate(self.numeric):
            values = table.values(j)
            x = _as_numeric(values if rows is None else values[rows], f"X column {self._name(j)}")
            v, bad, filled = self.scale_numeric(j, x)
            out[:, numeric_at + i] = v
            if j in self.edges_:
                t = len(self.edges_[j]) - 1
                out[:, ple_at:ple_at + t] = ple_encode(filled, self.edges_[j])
                ple_at += t
            if j in self.indicator_:
                out[:, indicator_at + self.indicator_.index(j)] = bad
        for j in self.onehot:
            k = len(self.categories_[j])
            c = codes_of(j)
            block = out[:, at:at + k]
            block[...] = 0.0
            seen = c < k
            block[np.nonzero(seen)[0], c[seen]] = 1.0
            at += k
        return out

    # -- state --------------------------------------------------------------------------------
    def _to_config(self) -> dict:
        return {"categorical_features": None, "onehot_max_categories": self.onehot_max_categories,
                "numeric_scaling": self.numeric_scaling, "ple_bins": self.ple_bins,
                "n_features_in": self.n_features_in_, "feature_names": self.feature_names_,
                "kinds": self.kinds_,
                "median": [[j, v] for j, v in self.median_.items()],
                "scale": [[j, v] for j, v in self.scale_.items()],
                "quantiles": [[j, v.tolist()] for j, v in self.quantiles_.items()],
                "edges": [[j, v.tolist()] for j, v in self.edges_.items()],
                "indicator": self.indicator_,
                "categories": [[j, v] for j, v in self.categories_.items()]}

    @classmethod
    def _from_config(cls, spec, where: str) -> "TablePreprocessor":
        _format.check_keys(spec, where, required=(
            "categorical_features", "onehot_max_categories", "numeric_scaling", "ple_bins",
            "n_features_in", "feature_names", "kinds", "median", "scale", "quantiles", "edges",
            "indicator", "categories"))
        pre = cls(None, _format.check_int(spec["onehot_max_categories"],
                                          f"{where}.onehot_max_categories", 0, 2 ** 31),
                  spec["numeric_scaling"],
                  _format.check_int(spec["ple_bins"], f"{where}.ple_bins", 0, 1024))
        try:
            pre._check()
        except (TypeError, ValueError) as exc:
            raise ValueError(f"invalid mlp state: {where}: {exc}") from None
        n = pre.n_features_in_ = _format.check_int(spec["n_features_in"], f"{where}.n_features_in",
                                                   1, 2 ** 31)
        names = spec["feature_names"]
        if names is not None and (not isinstance(names, list) or len(names) != n
                                  or not all(isinstance(s, str) for s in names)):
            _format.fail(f"{where}.feature_names", f"None or {n} strings", names, show=False)
        pre.feature_names_ = names
        kinds = spec["kinds"]
        if not isinstance(kinds, list) or len(kinds) != n or \
                not all(k in (_NUMERIC, _ONEHOT, _EMBED) for k in kinds):
            _format.fail(f"{where}.kinds", f"{n} of 'numeric', 'onehot', 'embedding'", kinds,
                         show=False)
        pre.kinds_ = kinds

        def pairs(key, check):
            value = spec[key]
            if not isinstance(value, list):
                _format.fail(f"{where}.{key}", "a list of [column, value] pairs", value, show=False)
            out = {}
            for item in value:
                if not isinstance(item, list) or len(item) != 2:
                    _format.fail(f"{where}.{key}", "[column, value] pairs", item)
                j = _format.check_int(item[0], f"{where}.{key}", 0, n - 1)
                out[j] = check(item[1], f"{where}.{key}[{j}]")
            return out

        pre.median_ = pairs("median", _format.check_float)
        pre.scale_ = pairs("scale", _format.check_float)
        pre.quantiles_ = pairs("quantiles", lambda v, w: _check_increasing(v, w, 2))
        pre.edges_ = pairs("edges", lambda v, w: _check_increasing(v, w, 3, strict=True))
        pre.categories_ = pairs("categories", lambda v, w: _check_strings(v, w))
        ind = spec["indicator"]
        if not isinstance(ind, list):
            _format.fail(f"{where}.indicator", "a list of column indices", ind, show=False)
        pre.indicator_ = [_format.check_int(j, f"{where}.indicator", 0, n - 1) for j in ind]
        quantile = pre.numeric_scaling == "quantile"
        for j, k in enumerate(kinds):
            ok = (j in pre.median_ and j in pre.scale_ and pre.scale_[j] > 0
                  and (j in pre.quantiles_) == quantile) if k == _NUMERIC \
                else (j in pre.categories_ and j not in pre.edges_ and j not in pre.indicator_)
            if not ok:
                _format.fail(f"{where}", f"the settings of column {j} ({k})", None, show=False)
        return pre


def _categories_of(present: np.ndarray) -> list:
    """The sorted distinct string forms of the present values of a categorical column."""
    if present.size == 0:
        return []
    return sorted(set(np.unique(present.astype(str)).tolist()))


def _codes_of(values: np.ndarray, missing: np.ndarray, cats: list) -> np.ndarray:
    """Each value's index in `cats` (by its string form); len(cats), the reserved slot, for a
    missing or unseen value. One pass of the column through numpy's unique, not a Python loop
    per row."""
    out = np.full(len(values), len(cats), dtype=np.int32)
    present = ~missing
    if not present.any():
        return out
    distinct, inverse = np.unique(values[present].astype(str), return_inverse=True)
    index = {c: i for i, c in enumerate(cats)}
    lookup = np.array([index.get(c, len(cats)) for c in distinct.tolist()], dtype=np.int32)
    out[present] = lookup[inverse.reshape(-1)]
    return out


def _check_increasing(value, where, minimum, strict=False):
    """A saved list of at least `minimum` finite numbers, increasing (strictly if `strict`)."""
    arr = np.asarray(_format.check_float_list(value, where), dtype=np.float64)
    d = np.diff(arr)
    if arr.size < minimum or not np.isfinite(arr).all() or \
            not ((d > 0).all() if strict else (d >= 0).all()):
        _format.fail(where, f"at least {minimum} finite, {'strictly ' if strict else ''}"
                     f"increasing numbers", value, show=False)
    return arr


def _check_strings(value, where):
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        _format.fail(where, "a list of strings", value, show=False)
    return value


# ------------------------------------------------------------------------------------------------
# The estimators
# ------------------------------------------------------------------------------------------------
_MIN_T, _MAX_T = 0.05, 20.0  # the temperatures calibration searches


def tempered(p: np.ndarray, t: float) -> np.ndarray:
    """Probabilities (n, k) at temperature t: softmax(log p / t); for one column (a binary
    problem's P(class 1)) sigmoid(logit p / t). float64."""
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-12, 1.0)
    if p.shape[1] == 1:
        q = np.clip(p, 1e-12, 1.0 - 1e-12)
        return 1.0 / (1.0 + np.exp(-np.log(q / (1.0 - q)) / t))
    z = np.log(p) / t
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(out: np.ndarray, codes: np.ndarray) -> float:
    """The temperature in [0.05, 20] that minimises the log-loss of `out` (the network's
    probabilities, (n, 1) or (n, k)) on class indices `codes` (bounded search on log t)."""
    from scipy.optimize import minimize_scalar

    def loss(log_t):
        q = tempered(out, math.exp(log_t))
        if q.shape[1] == 1:
            q = np.column_stack([1.0 - q[:, 0], q[:, 0]])
        return -float(np.mean(np.log(np.clip(q[np.arange(len(codes)), codes], 1e-12, None))))

    res = minimize_scalar(loss, bounds=(math.log(_MIN_T), math.log(_MAX_T)), method="bounded",
                          options={"xatol": 1e-4})
    return float(math.exp(res.x)) if loss(res.x) < loss(0.0) else 1.0


def _init_params(net, spec: _spec.NetworkSpec, rng: np.random.Generator) -> None:
    """Each Dense layer by its activation's rule (the spec table's), each table N(0, 1)."""
    sizes = spec.sizes
    for i, layer in enumerate(spec.layers):
        fan_in, fan_out = sizes[i], sizes[i + 1]
        rule = layer.info.init
        if rule == "lecun":
            w = rng.standard_normal((fan_in, fan_out)) / math.sqrt(fan_in)
        elif rule == "he":
            bound = math.sqrt(6.0 / fan_in)
            w = rng.uniform(-bound, bound, (fan_in, fan_out))
        else:
            bound = math.sqrt(layer.info.glorot_factor / (fan_in + fan_out))
            w = rng.uniform(-bound, bound, (fan_in, fan_out))
        net.weight(i)[...] = w
        net.bias(i)[...] = 0.0
    for e in range(len(spec.embeddings)):
        table = net.embedding(e)
        table[...] = rng.standard_normal(table.shape)
    if spec.ensemble > 1:  # TabM's initialisation of the first adapters: random signs
        adapters = net.adapters()
        adapters[...] = rng.choice([-1.0, 1.0], size=adapters.shape)


class _TabularBase(BaseEstimator):
    _task = "regression"

    def __init__(self, *, hidden_layer_sizes=(256, 256, 256), activation="auto", dropout=0.15,
                 weight_decay=0.0, learning_rate=2e-3, lr_schedule="coslog4", batch_size=256,
                 max_epochs="auto", validation_fraction=0.2, categorical_features=None,
                 onehot_max_categories=9, embedding_dim=8, numeric_scaling="robust",
                 ple_bins=16, n_ensemble=1, random_state=None,
                 n_threads=0, device="cpu", callbacks=None, verbose=False) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.dropout = dropout
        self.weight_decay = weight_decay
        self.learning_rate = learning_rate
        self.lr_schedule = lr_schedule
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.validation_fraction = validation_fraction
        self.categorical_features = categorical_features
        self.onehot_max_categories = onehot_max_categories
        self.embedding_dim = embedding_dim
        self.numeric_scaling = numeric_scaling
        self.ple_bins = ple_bins
        self.n_ensemble = n_ensemble
        self.random_state = random_state
        self.n_threads = n_threads
        self.device = device
        self.callbacks = callbacks
        self.verbose = verbose

    # -- settings -------------------------------------------------------------------------------
    def _check_settings(self) -> None:
        hidden = self.hidden_layer_sizes
        hidden = (hidden,) if isinstance(hidden, numbers.Integral) else hidden
        try:
            hidden = tuple(int(h) for h in hidden)
        except TypeError:
            raise TypeError(f"hidden_layer_sizes must be an int or a sequence of ints, got "
                            f"{self.hidden_layer_sizes!r}") from None
        if any(h < 1 for h in hidden) or any(not isinstance(h, numbers.Integral)
                                             for h in np.atleast_1d(self.hidden_layer_sizes)):
            raise ValueError(f"hidden_layer_sizes must hold positive integers, got "
                             f"{self.hidden_layer_sizes!r}")
        self._hidden = hidden
        act = self.activation
        if act == "auto":
            act = "selu" if self._task == "classification" else "mish"
        self._act = _spec.activation(act, "activation").name
        if self._act == "softmax":
            raise ValueError("activation: softmax cannot be a hidden layer's activation")
        for name, value, below_one in (("dropout", self.dropout, True),
                                       ("weight_decay", self.weight_decay, False)):
            schedules.check_value_or_schedule(value, name, fraction_below_one=below_one)
        if isinstance(self.learning_rate, bool) or not isinstance(self.learning_rate, numbers.Real) \
                or not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise ValueError(f"learning_rate must be a finite number > 0, got "
                             f"{self.learning_rate!r}")
        valid = ("constant",) + schedules.ESTIMATOR_SCHEDULES
        if self.lr_schedule not in valid:
            raise ValueError(f"lr_schedule must be one of {', '.join(map(repr, valid))}, got "
                             f"{self.lr_schedule!r}")
        check_positive_int(self.batch_size, "batch_size")
        if self.max_epochs != "auto":
            check_positive_int(self.max_epochs, "max_epochs")
        vf = self.validation_fraction
        if isinstance(vf, bool) or not isinstance(vf, numbers.Real) or not 0 <= vf < 1:
            raise ValueError(f"validation_fraction must be in [0, 1), got {vf!r}")
        check_positive_int(self.onehot_max_categories, "onehot_max_categories", minimum=0)
        check_positive_int(self.embedding_dim, "embedding_dim")
        check_positive_int(self.n_ensemble, "n_ensemble")
        if self.n_ensemble > 1024:
            raise ValueError(f"n_ensemble must be at most 1024, got {self.n_ensemble}")
        if isinstance(self.n_threads, bool) or not isinstance(self.n_threads, numbers.Integral) \
                or self.n_threads < 0:
            raise ValueError(f"n_threads must be 0 (all cores) or a positive int, got "
                             f"{self.n_threads!r}")
        if self.callbacks is not None and not isinstance(self.callbacks, (list, tuple)):
            raise TypeError("callbacks must be a list of callbacks")

    def _resolve_device(self) -> int:
        """The fit's device ordinal (-1: the CPU), checked before any work. Not part of
        `_check_settings`: a model fitted on a GPU loads, and predicts on the CPU, anywhere."""
        ordinal = resolve_device(self.device)
        if ordinal >= 0 and self.n_ensemble > 1:
            if self.device == "auto":  # the user left the choice to mlp: the CPU has them
                return -1
            raise ValueError(f"device={self.device!r}: n_ensemble > 1 runs on the CPU only "
                             f"(the CUDA backend has no ensemble kernels yet); use "
                             f"device='cpu' or n_ensemble=1")
        return ordinal

    def _seed(self) -> np.random.Generator:
        rs = self.random_state
        if rs is None:
            return np.random.default_rng(np.random.randint(0, DRAWN_SEED_LIMIT, dtype=np.int64))
        if isinstance(rs, np.random.RandomState):
            return np.random.default_rng(rs.randint(0, DRAWN_SEED_LIMIT, dtype=np.int64))
        if isinstance(rs, numbers.Integral) and not isinstance(rs, bool) and 0 <= rs < SEED_LIMIT:
            return np.random.default_rng(int(rs))
        raise ValueError(f"random_state must be None, an int in [0, 2**32) or a RandomState, "
                         f"got {rs!r}")

    # -- fit --------------------------------------------------------------------------------
    def fit(self, X, y, eval_set=None):
        """Fit the preprocessing and the network.

        Parameters
        ----------
        X : DataFrame (pandas or polars) or array-like of shape (n_samples, n_features)
            Numeric, categorical and missing values.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        eval_set : tuple (X_val, y_val), optional
            The validation data that picks the best epoch, instead of a split of (X, y).

        Returns
        -------
        self
        """
        self._check_settings()
        self._device = self._resolve_device()
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y "
                             f"is None.")
        rng = self._seed()
        table = _Table(X)
        y = self._check_y(y, table.n_rows)
        pre = TablePreprocessor(self.categorical_features, self.onehot_max_categories,
                                self.numeric_scaling, self.ple_bins)
        if eval_set is not None:
            if not isinstance(eval_set, (tuple, list)) or len(eval_set) != 2:
                raise TypeError("eval_set must be a tuple (X_val, y_val)")
            val_table = _Table(eval_set[0], "eval_set[0]")
            y_val = self._check_y(eval_set[1], val_table.n_rows, fitted=True, name="eval_set[1]")
            x, = pre.fit_transform(table)
            x_val = pre.transform(val_table)
            y_tr = y
            del val_table
        else:
            rows = self._split(y, rng)
            if rows is None:
                (x,), x_val, y_tr, y_val = pre.fit_transform(table), None, y, None
            else:
                x, x_val = pre.fit_transform(table, list(rows))
                y_tr, y_val = y[rows[0]], y[rows[1]]
        self.preprocessor_ = pre
        self.n_features_in_ = table.n_columns
        if table.names is not None and table.kind in ("pandas", "columns"):
            self.feature_names_in_ = np.array(table.names, dtype=object)
        elif "feature_names_in_" in self.__dict__:
            del self.feature_names_in_
        del table
        target, target_val = self._targets(y_tr), self._targets(y_val) if y_val is not None else None

        spec = self._network_spec(pre)
        self._spec = spec
        net = spec.build(int(self.n_threads), what="the tabular network")
        _init_params(net, spec, rng)
        seed = int(rng.integers(0, DRAWN_SEED_LIMIT))
        net.set_seed(seed)
        net.set_optimizer(_spec.OPTIMIZER_KIND.ADAM, beta1=0.9, beta2=0.95, eps=1e-8,
                          weight_decay=schedules.initial_of(self.weight_decay))
        net.to_device(self._device)
        self._net = net

        n = x.shape[0]
        batch = min(int(self.batch_size), n)
        steps_per_epoch = math.ceil(n / batch)
        epochs = self._epochs(steps_per_epoch)
        total = epochs * steps_per_epoch
        lr_sched = None if self.lr_schedule == "constant" else \
            schedules.for_estimator(self.lr_schedule, float(self.learning_rate), total)
        schedules.configure(net, schedules.SLOT_LEARNING_RATE, lr_sched, total)
        wd = self.weight_decay
        schedules.configure(net, schedules.SLOT_WEIGHT_DECAY,
                            wd if isinstance(wd, schedules.Schedule) else schedules.FlatCosine(wd),
                            total)
        drop = self.dropout
        schedules.configure(net, schedules.SLOT_DROPOUT,
                            drop if isinstance(drop, schedules.Schedule)
                            else schedules.FlatCosine(drop), total)

        self.history_ = {key: [] for key in _HISTORY_KEYS}
        best = {"key": -math.inf, "score": None, "params": None, "epoch": -1}
        origin = int(net.step)

        def train_epoch(rate):
            return net.train_epoch(x, target, None, batch, True, rate)

        def figures():
            if x_val is None:
                return {}
            val_loss, score, key = self._validation(net.predict(x_val), y_val, target_val)
            epoch = len(self.history_["loss"])
            if key > best["key"]:
                best.update(key=key, score=score, params=net.params.copy(), epoch=epoch)
            return {"val_loss": val_loss, "val_score": score}

        def logged_rate(rate):
            if lr_sched is None:
                return rate
            return rate * lr_sched.factor(max(0, int(net.step) - origin - 1), total)

        callbacks = list(self.callbacks or [])
        if self.verbose:
            from .callbacks import ProgressBar
            callbacks.append(ProgressBar(total=epochs))
        engine = Engine(self, train_epoch, learning_rate=float(self.learning_rate),
                        figures=figures, callbacks=callbacks, history=self.history_,
                        logged_rate=logged_rate)  # a divergence stops the fit; the best epoch stays
        try:
            engine.run(epochs)
        finally:
            net.release_data()
        if best["params"] is not None:
            net.params[...] = best["params"]
        self._after_fit(net.predict(x_val) if x_val is not None else None, y_val)
        self.best_epoch_ = best["epoch"] if best["params"] is not None else engine.epoch - 1
        self.n_iter_ = engine.epoch
        self.best_score_ = best["score"]
        return self

    # max_epochs='auto': about _AUTO_STEPS steps, within _AUTO_MIN_EPOCHS to _AUTO_MAX_EPOCHS
    # epochs (RealMLP trains 256 epochs at batch 256 whatever the size; the benchmark found a
    # cap of 128 as good on the small sets, at half their time).
    _AUTO_STEPS, _AUTO_MIN_EPOCHS, _AUTO_MAX_EPOCHS = 4000, 16, 128

    def _epochs(self, steps_per_epoch: int) -> int:
        if self.max_epochs != "auto":
            return int(self.max_epochs)
        return int(min(self._AUTO_MAX_EPOCHS, max(self._AUTO_MIN_EPOCHS,
                                                  math.ceil(self._AUTO_STEPS / steps_per_epoch))))

    def _split(self, y, rng):
        """(train rows, validation rows) of a stratified (classification) split, or None when
        validation_fraction leaves no room for one."""
        vf = float(self.validation_fraction)
        n = len(y)
        n_val = int(round(vf * n))
        if vf == 0 or n_val < 1 or n - n_val < 1:
            return None
        stratify = None
        if self._task == "classification" and y.ndim == 1:
            _, counts = np.unique(y, return_counts=True)
            if counts.min() >= 2 and n_val >= len(counts):
                stratify = y
        tr, va = train_test_split(np.arange(n), test_size=n_val, stratify=stratify,
                                  random_state=int(rng.integers(0, 2 ** 31 - 1)))
        return tr, va

    def _network_spec(self, pre: TablePreprocessor) -> _spec.NetworkSpec:
        embeddings = pre.embedding_specs(int(self.embedding_dim))
        n_out, out_act, loss, scale = self._head()
        rate = schedules.initial_of(self.dropout)
        layers = tuple(_spec.LayerSpec(h, self._act, 0.0, dropout=rate) for h in self._hidden)
        layers += (_spec.LayerSpec(n_out, out_act, 0.0),)
        return _spec.NetworkSpec(pre.n_outputs, layers, loss, scale, "float32",
                                 embeddings=embeddings,
                                 label_smoothing=self._label_smoothing(),
                                 ensemble=int(self.n_ensemble))

    def _label_smoothing(self) -> float:
        return 0.0

    def _after_fit(self, out_val, y_val) -> None:
        """After the kept epoch is restored, with its outputs on the validation rows (None
        without any)."""

    # -- owner protocol of the engine -------------------------------------------------------
    def _get_flat_params(self):
        return self._net.params.copy()

    def _set_flat_params(self, params):
        self._net.params[...] = params

    # -- predict ----------------------------------------------------------------------------
    def _forward(self, X) -> np.ndarray:
        check_is_fitted(self, "preprocessor_")
        table = _Table(X)
        if table.n_columns != self.n_features_in_:
            raise ValueError(f"X has {table.n_columns} features, but {type(self).__name__} is "
                             f"expecting {self.n_features_in_} features as input.")
        return self._net.predict(self.preprocessor_.transform(table))

    def _export_network(self):
        """``(NetworkSpec, params)`` for `mlp.to_onnx`: each Dense layer's (weights, bias),
        then each embedding's table, then the ensemble's adapters (k, width) when k > 1."""
        check_is_fitted(self, "preprocessor_")
        net, spec = self._net, self._spec
        params = [(net.weight(i), net.bias(i)) for i in range(net.n_layers)]
        params += [net.embedding(e) for e in range(len(spec.embeddings))]
        if spec.ensemble > 1:
            params.append(net.adapters())
        return spec, params

    # -- persistence ------------------------------------------------------------------------
    def save(self, path) -> None:
        """Write the fitted estimator, preprocessing included, to one file `mlp.load` reads.

        Parameters
        ----------
        path : str, path-like or binary file object
        """
        save_file(self, path)

    def _to_state(self) -> _format.State:
        params = {k: v for k, v in self.get_params(deep=False).items() if k != "callbacks"}
        objects = {"callbacks": self.callbacks} if self.callbacks else {}
        meta = {**_format.header(self._state_kind, "float32"), "architecture": None,
                "hyperparameters": _format.encode(params), "fitted": None, "optimizer": None,
                "arrays": {}}
        arrays = {}
        if "preprocessor_" in self.__dict__:
            # The network follows from the hyperparameters and the preprocessing; its widths
            # are recorded to be checked on load.
            meta["architecture"] = {"sizes": list(self._spec.sizes),
                                    "n_params": int(self._net.n_params)}
            meta["optimizer"] = {"step": int(self._net.step)}
            fitted = {"preprocessor": self.preprocessor_._to_config(),
                      "history": _format.encode(self.history_),
                      "best_epoch": int(self.best_epoch_), "n_iter": int(self.n_iter_),
                      "best_score": self.best_score_,
                      **self._fitted_extra()}
            meta["fitted"] = fitted
            _format.declare(arrays, "params", np.array(self._net.params))
            meta["arrays"] = _format.array_table(arrays)
        return _format.State(meta, arrays, objects, [])

    @classmethod
    def _from_state(cls, meta: dict, fetch, check_params: bool = True):
        params = _format.check_dict(_format.decode(meta["hyperparameters"], "hyperparameters"),
                                    "hyperparameters")
        try:
            est = cls(**params)
        except TypeError as exc:
            raise ValueError(f"invalid mlp state: hyperparameters: {exc}") from None
        fitted = meta.get("fitted")
        if fitted is None:
            return est
        _format.check_keys(fitted, "fitted", required=("preprocessor", "history", "best_epoch",
                                                       "n_iter", "best_score")
                           + cls._FITTED_EXTRA)
        try:
            est._check_settings()
        except (TypeError, ValueError) as exc:
            raise ValueError(f"invalid mlp state: hyperparameters: {exc}") from None
        pre = TablePreprocessor._from_config(fitted["preprocessor"], "fitted.preprocessor")
        est.preprocessor_ = pre
        est.n_features_in_ = pre.n_features_in_
        if pre.feature_names_ is not None:
            est.feature_names_in_ = np.array(pre.feature_names_, dtype=object)
        est.history_ = _format.check_history(_format.decode(fitted["history"], "fitted.history"),
                                             "fitted.history")
        est.best_epoch_ = _format.check_int(fitted["best_epoch"], "fitted.best_epoch", -1, 2 ** 31)
        score = fitted["best_score"]
        est.best_score_ = None if score is None else \
            _format.check_float(score, "fitted.best_score")
        est.n_iter_ = _format.check_int(fitted["n_iter"], "fitted.n_iter", 0, 2 ** 31)
        est._restore_extra(fitted)
        spec = est._network_spec(pre)
        est._spec = spec
        arch = _format.check_keys(meta["architecture"], "architecture",
                                  required=("sizes", "n_params"))
        if arch["sizes"] != list(spec.sizes) or arch["n_params"] != spec.n_params:
            _format.fail("architecture", f"the network of these settings (sizes {spec.sizes})",
                         arch)
        net = spec.build(int(est.n_threads), what="the tabular network")
        net.params[...] = _format.fetch_array(meta, fetch, "params", "float32", (net.n_params,))
        opt = _format.check_keys(meta["optimizer"], "optimizer", required=("step",))
        net.step = _format.check_int(opt["step"], "optimizer.step", 0, 2 ** 62)
        est._net = net
        return est

    def __getstate__(self):
        return _format.pickle_state(self._to_state())

    def __setstate__(self, state):
        _format.unpickle_into(self, state, check_params=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        tags.non_deterministic = self.random_state is None
        return tags


@_format.register("TabularClassifier")
class TabularClassifier(ClassifierMixin, _TabularBase):
    """A classifier for tables with strong defaults: RealMLP's recipe in the native core.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(256, 256, 256)
    activation : str, default='auto'
        'auto' is 'selu' (RealMLP's choice for classification); any name of the activation
        table.
    dropout : float or Schedule, default=0.15
        After every hidden layer; a number follows a flat-then-cosine schedule (to 0 at the end).
    weight_decay : float or Schedule, default=0.0
        AdamW's decoupled decay; a number follows a flat-then-cosine schedule.
    learning_rate : float, default=2e-3
        Adam's (beta_2 = 0.95) base rate.
    lr_schedule : str, default='coslog4'
        'constant' or a schedule name of the estimators: 'cosine', 'warmup_cosine',
        'linear_warmup', 'flat_cosine', 'coslog4'.
    label_smoothing : float, default=0.1
    calibrate : bool, default=True
        After the fit, one temperature T for the network's logits (probabilities
        softmax(log p / T), or sigmoid(logit p / T) for two classes), the one that minimises
        the log-loss on the validation rows; it changes no predicted class.
    val_metric : {'accuracy', 'log_loss'}, default='accuracy'
        What picks the kept epoch on the validation rows: the highest accuracy (ties: the
        lower log-loss), or the lowest log-loss.
    batch_size : int, default=256
    max_epochs : int or 'auto', default='auto'
        'auto': about 4,000 steps, within 16 to 128 epochs.
    validation_fraction : float, default=0.2
        The stratified split whose best epoch (accuracy, then log-loss) is kept; 0 keeps the
        last epoch. `fit`'s `eval_set` replaces it.
    categorical_features : None or array-like of int, bool or str, default=None
        None: DataFrame columns of category, string, object or bool dtype (for arrays: string
        or object dtype).
    onehot_max_categories : int, default=9
    embedding_dim : int, default=8
    numeric_scaling : {'robust', 'quantile'}, default='robust'
        'robust': (x - median) / IQR, smoothly clipped to +-3 (RealMLP's); 'quantile': the
        normal score of x's training quantile (scikit-learn's QuantileTransformer's).
    ple_bins : int, default=16
        0: none; else a piecewise-linear encoding of each numeric column on up to this many
        quantile bins (edges at values of the column), beside its scaled value.
    n_ensemble : int, default=1
        Members trained in one pass (TabM-mini's BatchEnsemble): each sees the input times its
        own learned adapter, initialised with random signs, through the shared layers; the
        loss is the members' mean and predictions average their outputs. The CPU only.
    random_state : int, RandomState or None, default=None
    n_threads : int, default=0
    device : str, default='cpu'
        'cpu', 'cuda', 'cuda:N' or 'auto' (CUDA when there is a device). 'cuda' with
        n_ensemble > 1 is a ValueError (no ensemble kernels there); 'auto' then takes the CPU.
    callbacks : list, optional
        As the other estimators' (`mlp.callbacks`), called after every epoch.
    verbose : bool, default=False
        A progress bar.

    Attributes
    ----------
    classes_ : ndarray
    preprocessor_ : TablePreprocessor
    history_ : dict of list
        Per epoch: loss, val_loss (log-loss), val_score (accuracy), learning_rate, time.
    best_epoch_ : int
        The kept epoch (counted from 0).
    best_score_ : float or None
        Its val_score (validation accuracy); None without validation rows.
    temperature_ : float
        The calibration's temperature (1.0 uncalibrated).
    n_iter_ : int
    n_features_in_ : int
    feature_names_in_ : ndarray, for a pandas DataFrame or a dict of columns
    """

    _task = "classification"
    _FITTED_EXTRA = ("classes", "temperature")

    def __init__(self, *, hidden_layer_sizes=(256, 256, 256), activation="auto", dropout=0.15,
                 weight_decay=0.0, learning_rate=2e-3, lr_schedule="coslog4",
                 label_smoothing=0.1, val_metric="accuracy", calibrate=True, batch_size=256,
                 max_epochs="auto",
                 validation_fraction=0.2, categorical_features=None, onehot_max_categories=9,
                 embedding_dim=8, numeric_scaling="robust", ple_bins=16, n_ensemble=1,
                 random_state=None, n_threads=0, device="cpu",
                 callbacks=None, verbose=False) -> None:
        super().__init__(hidden_layer_sizes=hidden_layer_sizes, activation=activation,
                         dropout=dropout, weight_decay=weight_decay,
                         learning_rate=learning_rate, lr_schedule=lr_schedule,
                         batch_size=batch_size, max_epochs=max_epochs,
                         validation_fraction=validation_fraction,
                         categorical_features=categorical_features,
                         onehot_max_categories=onehot_max_categories,
                         embedding_dim=embedding_dim, numeric_scaling=numeric_scaling,
                         ple_bins=ple_bins, n_ensemble=n_ensemble,
                         random_state=random_state,
                         n_threads=n_threads, device=device, callbacks=callbacks,
                         verbose=verbose)
        self.label_smoothing = label_smoothing
        self.val_metric = val_metric
        self.calibrate = calibrate

    def _check_settings(self):
        super()._check_settings()
        if self.val_metric not in ("accuracy", "log_loss"):
            raise ValueError(f"val_metric must be 'accuracy' or 'log_loss', got "
                             f"{self.val_metric!r}")
        if not isinstance(self.calibrate, (bool, np.bool_)):
            raise TypeError(f"calibrate must be True or False, got {self.calibrate!r}")
        ls = self.label_smoothing
        if isinstance(ls, bool) or not isinstance(ls, numbers.Real) or not 0 <= ls < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {ls!r}")

    def _label_smoothing(self):
        return float(self.label_smoothing)

    def _check_y(self, y, n, fitted=False, name="y"):
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            import warnings
            from sklearn.exceptions import DataConversionWarning
            warnings.warn("A column-vector y was passed when a 1d array was expected. Please "
                          "change the shape of y to (n_samples,), for example using ravel().",
                          DataConversionWarning, stacklevel=3)
            y = y.ravel()
        if y.ndim != 1:
            raise ValueError(f"{name} must be 1-D (one label per row), got shape {y.shape}")
        if len(y) != n:
            raise ValueError(f"{name} has {len(y)} labels but X has {n} rows")
        if y.dtype.kind == "f" and np.isnan(y).any():
            raise ValueError(f"{name} contains NaN; every row needs a label")
        if not fitted:
            from sklearn.utils.multiclass import type_of_target
            target = type_of_target(y, input_name=name)
            if target not in ("binary", "multiclass"):
                raise ValueError(f"Unknown label type: {name} is {target}; expected binary or "
                                 f"multiclass labels")
            self._encoder = LabelEncoder().fit(y)
            self.classes_ = self._encoder.classes_
        else:
            unknown = np.setdiff1d(np.unique(y), self.classes_)
            if len(unknown):
                raise ValueError(f"{name} has classes not seen in y: {unknown.tolist()}")
        return y

    def _head(self):
        k = len(self.classes_)
        if k <= 2:
            return 1, "sigmoid", "binary_cross_entropy", 1.0
        return k, "softmax", "categorical_cross_entropy", 1.0

    def _targets(self, y):
        codes = np.searchsorted(self.classes_, y)
        k = len(self.classes_)
        if k <= 2:
            return (codes == 1).astype(np.float32).reshape(-1, 1)
        out = np.zeros((len(y), k), dtype=np.float32)
        out[np.arange(len(y)), codes] = 1.0
        return out

    def _proba(self, out, temperature=None):
        t = self.temperature_ if temperature is None else temperature
        if out.shape[1] == 1:
            p = out[:, 0].astype(np.float64)
            if t != 1.0:
                p = tempered(p[:, None], t)[:, 0]
            return np.column_stack([1.0 - p, p])
        return out.astype(np.float64) if t == 1.0 else tempered(out, t)

    def _after_fit(self, out_val, y_val):
        self.temperature_ = 1.0
        if self.calibrate and out_val is not None and len(self.classes_) > 1:
            self.temperature_ = fit_temperature(out_val, np.searchsorted(self.classes_, y_val))

    def _validation(self, out, y, target):
        """(log-loss, accuracy, the key the best epoch maximises: val_metric's)."""
        proba = np.clip(self._proba(out, temperature=1.0), 1e-12, 1.0)  # as trained
        codes = np.searchsorted(self.classes_, y)
        if proba.shape[1] == 1:  # one class seen in training
            return 0.0, 1.0, 1.0
        logloss = float(-np.mean(np.log(proba[np.arange(len(y)), codes])))
        acc = float(np.mean(proba.argmax(axis=1) == codes))
        if self.val_metric == "log_loss":
            return logloss, acc, -logloss
        # Accuracy first; among equal accuracies, the lower log-loss.
        return logloss, acc, acc - 1e-6 * min(logloss, 100.0)

    def predict_proba(self, X):
        """Class probabilities.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            As in `fit`; unseen categories and missing values are accepted.

        Returns
        -------
        ndarray of shape (n_samples, n_classes), in the order of ``classes_``.
        """
        proba = self._proba(self._forward(X))
        if len(self.classes_) == 1:
            return np.ones((proba.shape[0], 1))
        return proba

    def predict(self, X):
        """The most probable class of each row.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]

    def _fitted_extra(self):
        return {"classes": _format.encode(self.classes_.tolist()),
                "temperature": float(self.temperature_)}

    def _restore_extra(self, fitted):
        classes = _format.decode(fitted["classes"], "fitted.classes")
        if not isinstance(classes, list) or not classes:
            _format.fail("fitted.classes", "a non-empty list", classes, show=False)
        self.classes_ = np.array(classes)
        self._encoder = LabelEncoder().fit(self.classes_)
        t = _format.check_float(fitted["temperature"], "fitted.temperature")
        if not _MIN_T <= t <= _MAX_T:
            _format.fail("fitted.temperature", f"a number in [{_MIN_T}, {_MAX_T}]", t)
        self.temperature_ = t


@_format.register("TabularRegressor")
class TabularRegressor(RegressorMixin, _TabularBase):
    """A regressor for tables with strong defaults: RealMLP's recipe in the native core.

    Parameters are those of `TabularClassifier` without `label_smoothing`; 'auto' activation
    is 'mish' (RealMLP's choice for regression). Targets are standardized for training and
    scaled back in `predict`; the best epoch is the one with the lowest validation RMSE.

    Parameters
    ----------
    hidden_layer_sizes, activation, dropout, weight_decay, learning_rate, lr_schedule : see TabularClassifier
    batch_size, max_epochs, validation_fraction, categorical_features : see TabularClassifier
    onehot_max_categories, embedding_dim, numeric_scaling, ple_bins : see TabularClassifier
    n_ensemble, random_state, n_threads, device : see TabularClassifier
    callbacks, verbose : see TabularClassifier

    Attributes
    ----------
    preprocessor_, history_, best_epoch_, n_iter_, n_features_in_, feature_names_in_
        As `TabularClassifier`'s; val_score is the validation R² (best_score_ that of the
        kept epoch).
    """

    _task = "regression"
    _FITTED_EXTRA = ("y_mean", "y_scale", "n_outputs")

    def _check_y(self, y, n, fitted=False, name="y"):
        try:
            y = np.asarray(y, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must hold numbers") from None
        if y.ndim not in (1, 2):
            raise ValueError(f"{name} must be 1-D or 2-D, got shape {y.shape}")
        if len(y) != n:
            raise ValueError(f"{name} has {len(y)} values but X has {n} rows")
        if not np.isfinite(y).all():
            raise ValueError(f"{name} contains NaN or infinity; every target must be finite")
        if not fitted:
            y2 = y.reshape(len(y), -1)
            self._n_outputs = y2.shape[1]
            self._y_1d = y.ndim == 1
            self._y_mean = y2.mean(axis=0)
            std = y2.std(axis=0)
            self._y_scale = np.where(std > 0, std, 1.0)
        return y

    def _head(self):
        return self._n_outputs, "linear", "mse", 1.0 / self._n_outputs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _targets(self, y):
        return ((y.reshape(len(y), -1) - self._y_mean) / self._y_scale).astype(np.float32)

    def _validation(self, out, y, target):
        """(the training loss on the validation rows, R², minus the RMSE: the key)."""
        from sklearn.metrics import r2_score
        pred = out.astype(np.float64) * self._y_scale + self._y_mean
        truth = y.reshape(len(y), -1)
        rmse = float(np.sqrt(np.mean((pred - truth) ** 2)))
        r2 = float(r2_score(truth, pred)) if len(y) > 1 else 0.0
        return float(np.mean((out - target) ** 2)), r2, -rmse

    def predict(self, X):
        """Predicted targets.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        out = self._forward(X).astype(np.float64) * self._y_scale + self._y_mean
        return out.ravel() if self._y_1d else out

    def _fitted_extra(self):
        return {"y_mean": _format.encode(self._y_mean.tolist()),
                "y_scale": _format.encode(self._y_scale.tolist()),
                "n_outputs": int(self._n_outputs) * (1 if not self._y_1d else -1)}

    def _restore_extra(self, fitted):
        k = _format.check_int(fitted["n_outputs"], "fitted.n_outputs", -1, 2 ** 20)
        if k == 0:
            _format.fail("fitted.n_outputs", "a non-zero count", k)
        self._y_1d, self._n_outputs = k < 0, abs(k)
        self._y_mean = np.array(_format.check_float_list(
            _format.decode(fitted["y_mean"], "fitted.y_mean"), "fitted.y_mean"))
        self._y_scale = np.array(_format.check_float_list(
            _format.decode(fitted["y_scale"], "fitted.y_scale"), "fitted.y_scale"))
        if self._y_mean.shape != (self._n_outputs,) or self._y_scale.shape != (self._n_outputs,) \
                or not (self._y_scale > 0).all():
            _format.fail("fitted.y_scale", f"{self._n_outputs} positive numbers", None, show=False)
