"""The ``train``, ``predict`` and ``info`` subcommands of ``python -m mlp``, on CSV files.

The CSV is read with the standard library's csv module, whatever else is installed, so a file
means the same thing everywhere: a header row, then one row per sample. ``train`` fits a
`TabularClassifier` or `TabularRegressor`: a column whose values all read as numbers is numeric,
any other is categorical, and an empty cell (or NA, NaN, null, none) is a missing value. Files
saved by the other estimators still predict, from numeric columns. Every expected failure (a missing column, a non-numeric value, an unreadable or corrupt
file) is reported as one line on stderr with exit status 1, never a traceback.
"""
from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import warnings

import numpy as np

from . import _spec

_MISSING = {"", "na", "nan", "n/a", "null", "none"}


class CliError(Exception):
    """An error to show the user as one line."""


# ------------------------------------------------------------------------------------------------
# CSV
# ------------------------------------------------------------------------------------------------
class Table:
    """A CSV file as text columns: ``header`` and ``columns[name]`` (list of str)."""

    def __init__(self, path: str):
        self.path = path
        try:
            with open(path, newline="", encoding="utf-8-sig") as f:
                rows = list(csv.reader(f))
        except FileNotFoundError:
            raise CliError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise CliError(f"{path}: is a directory, not a CSV file") from None
        except UnicodeDecodeError:
            raise CliError(f"{path}: not a UTF-8 text file; expected a CSV file") from None
        except csv.Error as exc:
            raise CliError(f"{path}: not a readable CSV file ({exc})") from None
        # Line numbers as an editor shows them: the header is line 1. Blank lines are skipped.
        numbered = [(i + 1, row) for i, row in enumerate(rows) if any(c.strip() for c in row)]
        if not numbered:
            raise CliError(f"{path}: the file is empty; expected a header row and data rows")
        (_, header), data = numbered[0], numbered[1:]
        self.header = [h.strip() for h in header]
        seen = set()
        for name in self.header:
            if not name:
                raise CliError(f"{path}: the header has an empty column name")
            if name in seen:
                raise CliError(f"{path}: the header names the column {name!r} twice")
            seen.add(name)
        if not data:
            raise CliError(f"{path}: no data rows after the header")
        for line, row in data:
            if len(row) != len(header):
                raise CliError(f"{path}: line {line} has {len(row)} fields, the header has "
                               f"{len(header)}")
        self.lines = [line for line, _ in data]
        self.columns = {name: [row[j].strip() for _, row in data]
                        for j, name in enumerate(self.header)}

    def __len__(self) -> int:
        return len(self.lines)

    def require(self, name: str) -> list:
        if name not in self.columns:
            raise CliError(f"{self.path}: no column {name!r}; the columns are "
                           f"{', '.join(self.header)}")
        return self.columns[name]

    def numeric(self, name: str, role: str = "feature") -> np.ndarray:
        """The column as float64; a missing or non-numeric value is an error naming its line."""
        values = self.require(name)
        out = np.empty(len(values))
        for k, text in enumerate(values):
            if text.lower() in _MISSING:
                raise CliError(f"{self.path}: column {name!r} has a missing value on line "
                               f"{self.lines[k]}; fill or drop that row")
            try:
                out[k] = float(text)
            except ValueError:
                raise CliError(f"{self.path}: column {name!r} is not numeric (line "
                               f"{self.lines[k]}: {text!r}); {role} columns must hold numbers"
                               ) from None
            if not math.isfinite(out[k]):
                raise CliError(f"{self.path}: column {name!r} has the non-finite value {text!r} "
                               f"on line {self.lines[k]}")
        return out

    def matrix(self, names: list) -> np.ndarray:
        return np.column_stack([self.numeric(n) for n in names]) if names else \
            np.empty((len(self), 0))


def _as_numbers(values: list):
    """The values as floats, or None when any is not a number."""
    try:
        out = np.array([float(v) for v in values])
    except ValueError:
        return None
    return out if np.isfinite(out).all() else None


# ------------------------------------------------------------------------------------------------
# train
# ------------------------------------------------------------------------------------------------
def _parse_hidden(text: str) -> tuple:
    try:
        sizes = tuple(int(s) for s in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or any(s < 1 for s in sizes):
        raise CliError(f"--hidden must be positive integers separated by commas, such as 64,32; "
                       f"got {text!r}")
    return sizes


def _target(table: Table, name: str, task: str | None):
    """(y, task): labels for 'classify', float64 values for 'regress'."""
    values = table.require(name)
    for k, text in enumerate(values):
        if text.lower() in _MISSING:
            raise CliError(f"{table.path}: the target column {name!r} has a missing value on "
                           f"line {table.lines[k]}")
    numbers = _as_numbers(values)
    if task is None:
        # A non-numeric target names classes; a numeric one with a handful of integer values
        # (0/1, ratings 1-5, digit labels) is most likely classes too. Anything else is a
        # quantity to regress.
        few_integers = (numbers is not None and np.all(numbers == np.round(numbers))
                        and len(np.unique(numbers)) <= 20)
        task = "classify" if numbers is None or few_integers else "regress"
    if task == "regress":
        if numbers is None:
            bad = next(k for k, v in enumerate(values) if _as_numbers([v]) is None)
            raise CliError(f"{table.path}: --task regress needs a numeric target, but column "
                           f"{name!r} holds {values[bad]!r} on line {table.lines[bad]}")
        return numbers, task
    if numbers is None:
        return np.array(values, dtype=object), task
    if np.all(numbers == np.round(numbers)):
        return numbers.astype(np.int64), task
    return numbers, task


def _columns(table: Table, names: list, categorical=None) -> dict:
    """The feature columns as the tabular estimators take them: {name: 1-D array}. A column
    whose present values all read as numbers is float64 with NaN for the missing ones; any
    other column is text (object, None for missing), a categorical feature. `categorical`
    (the names a model was trained with as categorical) overrides the guess."""
    out = {}
    for name in names:
        values = table.require(name)
        missing = [v.lower() in _MISSING for v in values]
        if categorical is None or name not in categorical:
            numbers = _as_numbers([v for v, m in zip(values, missing) if not m])
            if numbers is not None or all(missing):
                col = np.full(len(values), np.nan)
                if numbers is not None:
                    col[~np.array(missing)] = numbers
                out[name] = col
                continue
            if categorical is not None:  # a numeric column of the model holds text here
                bad = next(k for k, v in enumerate(values) if not missing[k]
                           and _as_numbers([v]) is None)
                raise CliError(f"{table.path}: column {name!r} is not numeric (line "
                               f"{table.lines[bad]}: {values[bad]!r}), as it was in training")
        out[name] = np.array([None if m else v for v, m in zip(values, missing)], dtype=object)
    return out


def train(args: argparse.Namespace) -> int:
    """``python -m mlp train data.csv --target COLUMN ...``: fit a tabular estimator, report,
    save."""
    try:
        from .callbacks import EarlyStopping, ProgressBar
        from .tabular import TabularClassifier, TabularRegressor
    except ImportError:
        raise CliError('train needs scikit-learn: pip install "mlp[sklearn]"') from None
    hidden = _parse_hidden(args.hidden) if args.hidden is not None else None
    if args.epochs is not None and args.epochs < 1:
        raise CliError(f"--epochs must be at least 1, got {args.epochs}")
    if args.patience is not None and args.patience < 1:
        raise CliError(f"--patience must be at least 1, got {args.patience}")
    if args.batch_size < 1:
        raise CliError(f"--batch-size must be at least 1, got {args.batch_size}")
    if not args.learning_rate > 0:
        raise CliError(f"--learning-rate must be positive, got {args.learning_rate}")
    if not 0 <= args.validation < 1:
        raise CliError(f"--validation must be a fraction in [0, 1), got {args.validation}")
    if args.ensemble < 1:
        raise CliError(f"--ensemble must be at least 1, got {args.ensemble}")
    if args.plot:
        from .plot import _import_pyplot

        try:
            import matplotlib

            matplotlib.use("Agg")  # a file is wanted, never a window
            _import_pyplot()
        except ImportError:
            raise CliError('--plot needs matplotlib: pip install "mlp[plot]"') from None

    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir):  # found out now rather than after the training
        raise CliError(f"--out {args.out}: the directory {out_dir} does not exist")
    table = Table(args.data)
    y, task = _target(table, args.target, args.task)
    features = [name for name in table.header if name != args.target]
    if not features:
        raise CliError(f"{args.data}: no feature columns besides the target {args.target!r}")
    if len(y) < 2:
        raise CliError(f"{args.data}: at least 2 data rows are needed to train, got {len(y)}")
    X = _columns(table, features)
    text = [name for name in features if X[name].dtype == object]

    callbacks = []
    if args.patience is not None:
        callbacks.append(EarlyStopping(monitor="val_loss", patience=args.patience))
    if sys.stderr.isatty():  # the bar redraws every epoch: right for a terminal, noise in a log
        callbacks.append(ProgressBar())
    params = dict(activation=args.activation, batch_size=args.batch_size,
                  learning_rate=args.learning_rate, validation_fraction=args.validation,
                  n_ensemble=args.ensemble, random_state=args.seed, callbacks=callbacks,
                  categorical_features=text)
    if hidden is not None:
        params["hidden_layer_sizes"] = hidden
    if args.epochs is not None:
        params["max_epochs"] = args.epochs
    est = (TabularClassifier if task == "classify" else TabularRegressor)(**params)
    n_val = int(round(args.validation * len(y)))
    what = (f"{'classifying' if task == 'classify' else 'regressing'} {args.target!r} from "
            f"{len(features)} feature{'s' * (len(features) != 1)}"
            + (f" ({len(text)} categorical)" if text else "") + f" on {len(y)} rows"
            + (f", {n_val} of them held out for validation" if n_val else ""))
    print(f"mlp train: {what}", file=sys.stderr)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(X, y)
    _report_warnings(caught, est.n_iter_)
    est.callbacks = None  # the progress bar belongs to this run, not to the saved model
    print(f"trained {type(est).__name__} {' -> '.join(map(str, est._spec.sizes))} for "
          f"{est.n_iter_} epochs, last training loss {est.history_['loss'][-1]:.6g}")
    if est.best_score_ is not None:
        metric = "accuracy" if task == "classify" else "R^2"
        print(f"kept the weights of epoch {est.best_epoch_ + 1}, the best on the held-out rows",
              file=sys.stderr)
        print(f"validation {metric}: {est.best_score_:.4f} on the held-out rows")
    else:
        print("validation: skipped (too few rows to hold any out)")

    est.save(args.out)
    print(f"saved to {args.out}")
    if args.plot:
        import matplotlib.pyplot as plt

        from .plot import plot_history

        fig = plot_history(est, title=f"{os.path.basename(args.data)}: {args.target}")
        try:
            fig.savefig(args.plot, dpi=100)
        finally:
            plt.close(fig)
        print(f"training curves saved to {args.plot}")
    return 0


def _report_warnings(caught, epochs: int) -> None:
    for w in caught:
        if w.category.__name__ == "ConvergenceWarning":
            print(f"note: the loss was still improving after {epochs} epochs; --epochs can raise "
                  f"the limit", file=sys.stderr)
        else:
            print(f"warning: {w.message}", file=sys.stderr)


def _sizes(est) -> list:
    return est._export_network()[0].sizes


# ------------------------------------------------------------------------------------------------
# predict
# ------------------------------------------------------------------------------------------------
def _load(path: str):
    from .io import load

    try:
        return load(path)
    except FileNotFoundError:
        raise CliError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CliError(f"{path}: is a directory, not a model file") from None
    except ImportError as exc:
        raise CliError(f"{path}: {exc}") from None
    except ValueError as exc:
        raise CliError(str(exc)) from None


def _is_tabular(model) -> bool:
    from .tabular import _TabularBase

    return isinstance(model, _TabularBase)


def _feature_matrix(model, table: Table):
    """The model's input columns from `table`: by name when the model knows its features,
    else every column, in order. For a tabular estimator, {name: column} with its categorical
    columns as text and missing cells kept."""
    from .model import Model

    names = getattr(model, "feature_names_in_", None)
    if _is_tabular(model):
        pre = model.preprocessor_
        names = list(names) if names is not None else list(table.header)
        missing = [n for n in names if n not in table.columns]
        if missing:
            raise CliError(f"{table.path}: no column {missing[0]!r}; the model was trained on "
                           f"the columns {', '.join(names)}")
        if len(names) != pre.n_features_in_:
            raise CliError(f"{table.path}: the model takes {pre.n_features_in_} feature columns "
                           f"and does not know their names; the file has {len(names)} columns")
        categorical = {n for n, k in zip(names, pre.kinds_) if k != "numeric"}
        return _columns(table, names, categorical)
    if names is not None:
        missing = [n for n in names if n not in table.columns]
        if missing:
            raise CliError(f"{table.path}: no column {missing[0]!r}; the model was trained on "
                           f"the columns {', '.join(names)}")
        return table.matrix(list(names))
    width = model.input_size if isinstance(model, Model) else model.n_features_in_
    if len(table.header) != width:
        raise CliError(f"{table.path}: the model takes {width} feature columns and does not know "
                       f"their names; the file has {len(table.header)} columns")
    return table.matrix(list(table.header))


def predict(args: argparse.Namespace) -> int:
    """``python -m mlp predict model.mlp data.csv [--out predictions.csv]``."""
    from .model import Model

    model = _load(args.model)
    fitted = hasattr(model, "preprocessor_") if _is_tabular(model) else hasattr(model, "coefs_")
    if not isinstance(model, Model) and not fitted:
        raise CliError(f"{args.model} holds an unfitted {type(model).__name__}; train it first")
    table = Table(args.data)
    X = _feature_matrix(model, table)
    with warnings.catch_warnings():
        # The columns were already matched by name above; the array itself carries none.
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        pred = model.predict(X)
        proba = model.predict_proba(X) if args.proba and hasattr(model, "predict_proba") else None
    if args.proba and proba is None:
        raise CliError(f"--proba needs a classifier; {args.model} holds a {type(model).__name__}")
    pred = np.asarray(pred)
    if pred.ndim == 1:
        header, rows = ["prediction"], [[v] for v in pred.tolist()]
    else:
        prefix = "output" if isinstance(model, Model) else "prediction"
        header = [f"{prefix}_{k}" for k in range(pred.shape[1])]
        rows = pred.tolist()
    if proba is not None:
        header += [f"proba_{c}" for c in model.classes_] if proba.shape[1] == len(model.classes_) \
            else [f"proba_{k}" for k in range(proba.shape[1])]
        rows = [r + p for r, p in zip(rows, proba.tolist())]

    def write(f):
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)

    if args.out:
        try:
            with open(args.out, "w", newline="", encoding="utf-8") as f:
                write(f)
        except OSError as exc:
            raise CliError(f"{args.out}: cannot write ({exc.strerror or exc})") from None
        print(f"{len(rows)} predictions written to {args.out}", file=sys.stderr)
    else:
        write(sys.stdout)
    return 0


# ------------------------------------------------------------------------------------------------
# info
# ------------------------------------------------------------------------------------------------
def info(args: argparse.Namespace) -> int:
    """``python -m mlp info model.mlp``: kind, layers, parameter count, training history."""
    from .model import Model

    model = _load(args.model)
    print(f"{args.model}: {type(model).__name__}")
    if isinstance(model, Model):
        model.summary()
        history = model.history
        _print_history(history.get("loss"), history.get("val_loss"),
                       history.get("val_accuracy"), "validation accuracy")
        return 0
    from sklearn.base import is_classifier

    if _is_tabular(model):
        return _info_tabular(model, is_classifier(model))
    if not hasattr(model, "coefs_"):
        print("not fitted")
        return 0

    print(f"precision: {model.coefs_[0].dtype}")
    names = getattr(model, "feature_names_in_", None)
    shown = ", ".join(map(str, names)) if names is not None else "(unnamed)"
    print(f"features ({model.n_features_in_}): {shown}")
    if is_classifier(model):
        print(f"classes ({len(model.classes_)}): {', '.join(map(str, model.classes_))}")
    spec, _ = model._export_network()
    rows = [("layer", "units", "activation", "params")]
    described = spec.summary_rows()
    for i, (_, units, act, params) in enumerate(described):
        last = i == len(described) - 1
        rows.append(("output" if last else f"hidden {i + 1}", str(units),
                     model.out_activation_ if last else act, f"{params:,}"))
    for line in _spec.table_lines(rows, indent="  "):
        print(line)
    print(f"Total params: {spec.n_params:,}")
    print(f"solver: {model.solver}, trained for {getattr(model, 'n_iter_', 0)} epochs")
    history = getattr(model, "history_", {}) or {}
    metric = "validation accuracy" if is_classifier(model) else "validation R^2"
    _print_history(history.get("loss"), history.get("val_loss"), history.get("val_score"), metric)
    return 0


def _info_tabular(model, classifier: bool) -> int:
    if not hasattr(model, "preprocessor_"):
        print("not fitted")
        return 0
    pre = model.preprocessor_
    names = pre.feature_names_ or [str(j) for j in range(pre.n_features_in_)]
    kinds = {k: [n for n, kk in zip(names, pre.kinds_) if kk == k]
             for k in ("numeric", "onehot", "embedding")}
    print(f"features ({pre.n_features_in_}): {', '.join(names)}")
    for kind, label in (("numeric", "numeric"), ("onehot", "categorical, one-hot"),
                        ("embedding", "categorical, embedded")):
        if kinds[kind]:
            print(f"  {label} ({len(kinds[kind])}): {', '.join(kinds[kind])}")
    if classifier:
        print(f"classes ({len(model.classes_)}): {', '.join(map(str, model.classes_))}")
    sizes = model._spec.sizes
    print(f"network: {' -> '.join(map(str, sizes))}, {model._spec.n_params:,} params"
          + (f", {model.n_ensemble} ensemble members" if model.n_ensemble > 1 else ""))
    print(f"trained for {model.n_iter_} epochs; kept epoch {model.best_epoch_ + 1}")
    metric = "validation accuracy" if classifier else "validation R^2"
    history = model.history_
    _print_history(history.get("loss"), history.get("val_loss"), history.get("val_score"), metric)
    return 0


def _print_history(loss, val_loss, val_score, score_name: str) -> None:
    if not loss:
        print("training history: none")
        return
    print(f"training history: {len(loss)} epochs, loss {loss[0]:.6g} -> {loss[-1]:.6g} "
          f"(best {min(loss):.6g})")
    val_loss = [v for v in (val_loss or []) if v is not None]
    if val_loss:
        print(f"  validation loss {val_loss[0]:.6g} -> {val_loss[-1]:.6g} "
              f"(best {min(val_loss):.6g})")
    val_score = [v for v in (val_score or []) if v is not None]
    if val_score:
        print(f"  {score_name} {val_score[-1]:.4f} (best {max(val_score):.4f})")


# ------------------------------------------------------------------------------------------------
# Wiring
# ------------------------------------------------------------------------------------------------
def add_commands(commands) -> None:
    """Register train, predict and info on `commands` (argparse subparsers)."""
    p = commands.add_parser("train", help="train a classifier or regressor on a CSV file",
                            description="Train a TabularClassifier or TabularRegressor on a "
                                        "CSV file (a header row; numeric and text columns; "
                                        "empty cells are missing values) and save it.")
    p.add_argument("data", help="the CSV file")
    p.add_argument("--target", required=True, help="the column to predict")
    p.add_argument("--task", choices=("classify", "regress"),
                   help="default: classify when the target is not numeric or has at most 20 "
                        "integer values, else regress")
    p.add_argument("--hidden", default=None,
                   help="hidden layer widths, e.g. 64,32 (default 256,256,256)")
    p.add_argument("--activation", default="auto",
                   help="hidden activation (default auto: selu to classify, mish to regress)")
    p.add_argument("--epochs", type=int, default=None,
                   help="passes over the data (default: about 4,000 steps, 16 to 128 epochs)")
    p.add_argument("--batch-size", type=int, default=256, help="rows per step (default 256)")
    p.add_argument("--learning-rate", type=float, default=2e-3, help="Adam's base rate "
                                                                     "(default 0.002)")
    p.add_argument("--validation", type=float, default=0.2,
                   help="fraction of rows held out to pick the best epoch (default 0.2)")
    p.add_argument("--patience", type=int, default=None,
                   help="stop after this many epochs without a better validation loss "
                        "(default: run every epoch; the best epoch's weights are kept either "
                        "way)")
    p.add_argument("--ensemble", type=int, default=1,
                   help="members trained together and averaged (default 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", default="model.mlp", help="where to save (default model.mlp)")
    p.add_argument("--plot", metavar="PNG", help="also save the training curves to this image")
    p.set_defaults(run=train)

    p = commands.add_parser("predict", help="predict with a saved model on a CSV file")
    p.add_argument("model", help="a file saved by train or .save()")
    p.add_argument("data", help="the CSV file (a target column, if present, is ignored)")
    p.add_argument("--out", help="write the predictions to this CSV (default: stdout)")
    p.add_argument("--proba", action="store_true", help="add class probabilities (classifiers)")
    p.set_defaults(run=predict)

    p = commands.add_parser("info", help="describe a saved model")
    p.add_argument("model", help="a file saved by train or .save()")
    p.set_defaults(run=info)


def run(args: argparse.Namespace) -> int:
    """Run a subcommand, turning expected failures into one line on stderr and exit status 1."""
    try:
        return args.run(args)
    except (CliError, ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly, and keep Python from complaining
        # again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 1
