"""Cross-validated accuracy of mlp's estimators against scikit-learn's MLP, same folds and settings.

Each data set is scored with 5-fold cross-validation (shuffled, random_state=0) of
Pipeline(StandardScaler(), MLP*(hidden_layer_sizes=(64,), max_iter=300, random_state=0)) for both
libraries; classification reports accuracy, regression R^2.

    python benchmarks/accuracy_cv.py
"""
from __future__ import annotations

import time
import warnings

import numpy as np
from sklearn.datasets import (load_breast_cancer, load_diabetes, load_digits, load_iris, load_wine,
                              make_friedman1)
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score
from sklearn.neural_network import MLPClassifier as SkClassifier, MLPRegressor as SkRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlp import MLPClassifier, MLPRegressor

warnings.filterwarnings("ignore")

PARAMS = dict(hidden_layer_sizes=(64,), max_iter=300, random_state=0)


def datasets():
    yield "digits", *load_digits(return_X_y=True), True
    yield "iris", *load_iris(return_X_y=True), True
    yield "wine", *load_wine(return_X_y=True), True
    yield "breast_cancer", *load_breast_cancer(return_X_y=True), True
    X, y = load_diabetes(return_X_y=True)
    yield "diabetes", X, (y - y.mean()) / y.std(), False
    yield "friedman1", *make_friedman1(n_samples=2000, noise=1.0, random_state=0), False


def main():
    print(f"{'data set':15s}{'metric':>9s}{'mlp':>9s}{'sklearn':>9s}{'diff':>8s}{'mlp s':>8s}{'sk s':>8s}")
    worst = 0.0
    for name, X, y, classify in datasets():
        cv = StratifiedKFold(5, shuffle=True, random_state=0) if classify else KFold(5, shuffle=True, random_state=0)
        ours_cls, sk_cls = (MLPClassifier, SkClassifier) if classify else (MLPRegressor, SkRegressor)
        scores, times = [], []
        for cls in (ours_cls, sk_cls):
            t = time.perf_counter()
            s = cross_val_score(make_pipeline(StandardScaler(), cls(**PARAMS)), X, y, cv=cv)
            times.append(time.perf_counter() - t)
            scores.append(float(np.mean(s)))
        diff = scores[0] - scores[1]
        worst = min(worst, diff)
        metric = "accuracy" if classify else "R^2"
        print(f"{name:15s}{metric:>9s}{scores[0]:9.4f}{scores[1]:9.4f}{diff:+8.4f}{times[0]:8.2f}{times[1]:8.2f}")
    print(f"\nworst difference (mlp - sklearn): {worst:+.4f}; target: >= -0.01")


if __name__ == "__main__":
    main()
