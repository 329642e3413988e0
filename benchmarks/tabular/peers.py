"""The peers of the tabular benchmark: a fresh estimator at its defaults, plus the least preprocessing
it needs and cannot do itself.

Every factory takes ``(task, seed, threads)`` and returns an unfitted scikit-learn estimator that
accepts the data sets' DataFrames as they are (numeric columns, pandas ``category`` columns, NaN)
and integer class codes ``0..K-1`` as ``y`` for classification, raw floats for regression.

| peer | estimator | preprocessing added here |
| --- | --- | --- |
| ``mlp_tabular`` | ``mlp.TabularClassifier`` / ``TabularRegressor`` | none |
| ``mlp_mlp`` | ``mlp.MLPClassifier`` / ``MLPRegressor`` | numeric: median impute + standardize; categorical: one-hot (NaN its own level) |
| ``sklearn_mlp`` | ``sklearn.neural_network.MLP*`` | the same as ``mlp_mlp`` |
| ``hgb`` | ``HistGradientBoosting*(categorical_features='from_dtype')`` | a categorical column with more than 255 levels keeps its 254 most frequent, the rest become one "other" level (HGB refuses more) |
| ``lightgbm`` | ``lightgbm.LGBM*(verbose=-1)`` | none (pandas categories are native) |
| ``realmlp_td`` | ``pytabkit.RealMLP_TD_*(device='cpu')`` | numeric NaN: median impute (pytabkit refuses NaN in numeric columns; categorical NaN it handles) |
| ``tabm_d`` | ``pytabkit.TabM_D_*(device='cpu')`` | the same as ``realmlp_td`` |

``Peer.params`` overrides defaults (the smoke test's small settings; never the benchmark's). Every
peer gets ``random_state=seed`` and, where it has the parameter, ``n_threads`` / ``n_jobs`` set
to ``threads``. Regression targets reach every peer raw (no scaling here; RealMLP, TabM and mlp's
tabular estimators scale them internally, scikit-learn's and mlp's MLP do not).
"""
from __future__ import annotations

import dataclasses
import importlib.util
from typing import Callable, Dict, List, Optional, Tuple

import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin


@dataclasses.dataclass(frozen=True)
class Peer:
    name: str
    label: str
    make: Callable[[str, int, int], object]   # (task, seed, threads) -> unfitted estimator
    requires: Tuple[str, ...] = ()            # top-level modules that must be importable
    check: Optional[Callable[[], Optional[str]]] = None  # returns a reason when unavailable
    params: Optional[Dict[str, object]] = None  # set on the final estimator after make(), where it has them

    def build(self, task: str, seed: int, threads: Optional[int]):
        """A fresh estimator: ``make`` plus ``params`` (those the estimator does not have are skipped,
        so that a smoke test's small settings survive an estimator's API changing)."""
        est = self.make(task, seed, threads)
        if self.params:
            target = est.steps[-1][1] if hasattr(est, "steps") else est
            known = target.get_params(deep=False)
            target.set_params(**{k: v for k, v in self.params.items() if k in known})
        return est

    def unavailable(self) -> Optional[str]:
        """None when the peer can run here, else why not (checked without importing heavy modules)."""
        for mod in self.requires:
            try:
                found = importlib.util.find_spec(mod) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                return f"{mod} is not installed"
        if self.check is not None:
            return self.check()
        return None


def _classification(task: str) -> bool:
    if task not in ("binary", "multiclass", "regression"):
        raise ValueError(f"unknown task {task!r}")
    return task != "regression"


def _set_common(est, seed: int, threads: Optional[int]):
    """random_state=seed, and n_threads/n_jobs=threads on the estimator (or a Pipeline's last step)."""
    target = est.steps[-1][1] if hasattr(est, "steps") else est
    params = target.get_params(deep=False)
    update = {}
    if "random_state" in params:
        update["random_state"] = seed
    if threads is not None:
        for key in ("n_threads", "n_jobs"):
            if key in params:
                update[key] = int(threads)
    target.set_params(**update)
    return est


# ---------------------------------------------------------------- preprocessing

def onehot_preprocessor():
    """Median-impute + standardize numeric columns, one-hot the categorical ones (NaN a level of its
    own, unseen levels ignored): what scikit-learn's MLP needs in front of it."""
    from sklearn.compose import ColumnTransformer, make_column_selector
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    return ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
         make_column_selector(dtype_include="number")),
        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False),
         make_column_selector(dtype_exclude="number")),
    ], sparse_threshold=0.0)


class MedianImputeNumeric(TransformerMixin, BaseEstimator):
    """Fills NaN in numeric columns with the training median; categorical columns pass through
    untouched (as pandas categories), so the next step still sees them as categorical."""

    def fit(self, X, y=None):
        X = pd.DataFrame(X)
        num = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c].dtype)
               and not isinstance(X[c].dtype, pd.CategoricalDtype)]
        med = X[num].median()
        self.medians_ = med.fillna(0.0).to_dict()  # an all-NaN column becomes 0
        return self

    def transform(self, X):
        X = pd.DataFrame(X).copy()
        for c, m in self.medians_.items():
            if X[c].isna().any():
                X[c] = X[c].fillna(m)
        return X


class CapCategoryLevels(TransformerMixin, BaseEstimator):
    """A categorical column with more than ``max_levels`` levels (counted on the training data)
    keeps its ``max_levels - 1`` most frequent ones; the others (and unseen ones) become "__other__"."""

    def __init__(self, max_levels: int = 255):
        self.max_levels = max_levels

    def fit(self, X, y=None):
        X = pd.DataFrame(X)
        self.keep_ = {}
        for c in X.columns:
            if isinstance(X[c].dtype, pd.CategoricalDtype):
                counts = X[c].value_counts()
                counts = counts[counts > 0]
                if len(counts) > self.max_levels:
                    self.keep_[c] = list(counts.index[: self.max_levels - 1])
        return self

    def transform(self, X):
        X = pd.DataFrame(X).copy()
        for c, keep in self.keep_.items():
            s = X[c].astype(object)
            s = s.where(s.isin(keep) | s.isna(), "__other__")
            X[c] = pd.Categorical(s, categories=[*keep, "__other__"])
        return X


# ---------------------------------------------------------------- factories

def _mlp_tabular(task, seed, threads):
    import mlp
    cls = mlp.TabularClassifier if _classification(task) else mlp.TabularRegressor
    return _set_common(cls(), seed, threads)


class SeedAverage(BaseEstimator):
    """k copies of an estimator fitted with seeds ``random_state * 1000 + i`` and averaged
    (probabilities, or predictions): independent members, against which the tabular estimators'
    one-pass BatchEnsemble (``n_ensemble``) is measured. Not a peer of the suite by default."""

    def __init__(self, estimator=None, k: int = 4, random_state: int = 0):
        self.estimator = estimator
        self.k = k
        self.random_state = random_state

    def fit(self, X, y):
        from sklearn.base import clone
        self.members_ = [clone(self.estimator).set_params(random_state=self.random_state * 1000 + i)
                         .fit(X, y) for i in range(self.k)]
        self.classes_ = getattr(self.members_[0], "classes_", None)
        return self

    def predict_proba(self, X):
        return sum(m.predict_proba(X) for m in self.members_) / self.k

    def predict(self, X):
        if self.classes_ is not None:
            return self.classes_[self.predict_proba(X).argmax(axis=1)]
        return sum(m.predict(X) for m in self.members_) / self.k


def _mlp_tabular_avg4(task, seed, threads):
    import mlp
    cls = mlp.TabularClassifier if _classification(task) else mlp.TabularRegressor
    est = cls(n_threads=int(threads)) if threads is not None else cls()
    return SeedAverage(est, k=4, random_state=seed)


def _has_mlp_tabular() -> Optional[str]:
    try:
        import mlp
    except Exception as e:  # pragma: no cover - mlp is the project itself
        return f"mlp does not import ({e})"
    if not (hasattr(mlp, "TabularClassifier") and hasattr(mlp, "TabularRegressor")):
        return "mlp has no TabularClassifier/TabularRegressor yet"
    return None


def _mlp_mlp(task, seed, threads):
    from sklearn.pipeline import Pipeline
    import mlp
    cls = mlp.MLPClassifier if _classification(task) else mlp.MLPRegressor
    return _set_common(Pipeline([("pre", onehot_preprocessor()), ("model", cls())]), seed, threads)


def _sklearn_mlp(task, seed, threads):
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import Pipeline
    cls = MLPClassifier if _classification(task) else MLPRegressor
    return _set_common(Pipeline([("pre", onehot_preprocessor()), ("model", cls())]), seed, threads)


def _hgb(task, seed, threads):
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.pipeline import Pipeline
    cls = HistGradientBoostingClassifier if _classification(task) else HistGradientBoostingRegressor
    return _set_common(Pipeline([("cap", CapCategoryLevels(255)),
                                 ("model", cls(categorical_features="from_dtype"))]), seed, threads)


def _lightgbm(task, seed, threads):
    import lightgbm
    cls = lightgbm.LGBMClassifier if _classification(task) else lightgbm.LGBMRegressor
    return _set_common(cls(verbose=-1), seed, threads)


def _pytabkit(kind: str, task, seed, threads):
    from sklearn.pipeline import Pipeline
    import pytabkit
    name = f"{kind}_{'Classifier' if _classification(task) else 'Regressor'}"
    est = getattr(pytabkit, name)(device="cpu", verbosity=0)
    return _set_common(Pipeline([("impute", MedianImputeNumeric()), ("model", est)]), seed, threads)


def _realmlp_td(task, seed, threads):
    return _pytabkit("RealMLP_TD", task, seed, threads)


def _tabm_d(task, seed, threads):
    return _pytabkit("TabM_D", task, seed, threads)


_ALL: List[Peer] = [
    Peer("mlp_tabular", "mlp tabular", _mlp_tabular, ("mlp",), _has_mlp_tabular),
    Peer("mlp_mlp", "mlp MLP", _mlp_mlp, ("mlp",)),
    Peer("sklearn_mlp", "sklearn MLP", _sklearn_mlp),
    Peer("hgb", "HistGradientBoosting", _hgb),
    Peer("lightgbm", "LightGBM", _lightgbm, ("lightgbm",)),
    Peer("realmlp_td", "RealMLP-TD", _realmlp_td, ("pytabkit", "torch")),
    Peer("tabm_d", "TabM-D", _tabm_d, ("pytabkit", "torch")),
]
# Measured against the ensembles, not in the suite's default peers.
_EXTRA: List[Peer] = [
    Peer("mlp_tabular_avg4", "mlp tabular, 4 independent fits averaged", _mlp_tabular_avg4,
         ("mlp",), _has_mlp_tabular),
]

PEERS: Dict[str, Peer] = {p.name: p for p in _ALL + _EXTRA}
DEFAULT_PEERS: List[str] = [p.name for p in _ALL]
REFERENCE = "mlp_tabular"  # fit times are reported relative to this peer's


def get(name: str) -> Peer:
    """A peer by name, or a variant of one with settings of its own:
    ``mlp_tabular[ple_bins=16,numeric_scaling='quantile']`` is ``mlp_tabular`` with those
    parameters set (Python literals; each must be a parameter of the estimator, or, starting
    with "_", a class constant of it, set on the instance). A variant is a
    peer of its own in the CSV, under that name: the way one recipe choice is measured at a time."""
    base, _, rest = name.partition("[")
    try:
        peer = PEERS[base]
    except KeyError:
        raise KeyError(f"unknown peer {base!r}; known: {', '.join(PEERS)}") from None
    if not rest:
        return peer
    if not rest.endswith("]"):
        raise ValueError(f"peer {name!r}: a variant is written name[key=value,...]")
    params = _variant_params(name, rest[:-1])
    return dataclasses.replace(peer, name=name, label=f"{peer.label} [{rest[:-1]}]",
                               make=_Variant(base, name, params), params=None)


@dataclasses.dataclass(frozen=True)
class _Variant:
    """The factory of a variant: the base peer's estimator with ``params`` set (a class, not a
    closure, so that it pickles to the worker process)."""
    base: str
    name: str
    params: Dict[str, object]

    def __call__(self, task, seed, threads):
        est = PEERS[self.base].build(task, seed, threads)
        target = est.steps[-1][1] if hasattr(est, "steps") else est
        # A key starting with "_" overrides a class constant of the estimator's (an ablation of
        # a rule that has no parameter, such as the auto epoch count's cap); it must exist.
        constants = {k: v for k, v in self.params.items() if k.startswith("_")}
        params = {k: v for k, v in self.params.items() if not k.startswith("_")}
        unknown = sorted(set(params) - set(target.get_params(deep=True))) + \
            sorted(k for k in constants if not hasattr(type(target), k))
        if unknown:
            raise ValueError(f"peer {self.name!r}: {type(target).__name__} has no parameter "
                             f"{', '.join(unknown)}")
        target.set_params(**params)
        for k, v in constants.items():
            setattr(target, k, v)
        return est


def split_names(text: str) -> List[str]:
    """'a,b[x=1,y=2],c' -> ['a', 'b[x=1,y=2]', 'c']: commas inside brackets stay."""
    out, depth, cur = [], 0, ""
    for ch in text:
        depth += (ch == "[") - (ch == "]")
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def _variant_params(name: str, text: str) -> Dict[str, object]:
    import ast
    try:
        call = ast.parse(f"f({text})", mode="eval").body
        if not isinstance(call, ast.Call) or call.args:
            raise ValueError
        return {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
    except (SyntaxError, ValueError):
        raise ValueError(f"peer {name!r}: the settings must be key=literal pairs, "
                         f"comma-separated") from None


def label(name: str) -> str:
    if name in PEERS:
        return PEERS[name].label
    base, _, rest = name.partition("[")
    return f"{PEERS[base].label} [{rest[:-1]}]" if base in PEERS and rest else name


def status() -> Dict[str, Optional[str]]:
    """{peer: None if it can run here, else why not}."""
    return {p.name: p.unavailable() for p in _ALL}


if __name__ == "__main__":
    for name, why in status().items():
        print(f"{name:12s} {'ok' if why is None else 'unavailable: ' + why}")
