"""``python -m mlp train / predict / info`` on CSV files written here.

The main flows run in a subprocess, exactly as a user types them; the many error cases call the
same entry point in-process, which is faster and checks the same code.
"""
from __future__ import annotations

import csv
import os
import subprocess
import sys

import numpy as np
import pytest

import mlp
from mlp.__main__ import main

pytest.importorskip("sklearn")
from sklearn.datasets import load_diabetes, load_iris  # noqa: E402

# The CLI records the CSV's column names (predict selects columns by them); the checks below
# call predict on bare arrays, which scikit-learn points out.
pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def iris_csv(tmp_path):
    data = load_iris()
    names = np.array(["setosa", "versicolor", "virginica"])[data.target]
    header = ["sepal_length", "sepal_width", "petal_length", "petal_width", "species"]
    return write_csv(tmp_path / "iris.csv", header,
                     [list(x) + [s] for x, s in zip(data.data.tolist(), names)])


def cli(*args, cwd):
    """Run ``python -m mlp ARGS`` with the mlp this test imported."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    return subprocess.run([sys.executable, "-m", "mlp", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_train_predict_info(iris_csv, tmp_path):
    done = cli("train", "iris.csv", "--target", "species", "--hidden", "16,8", "--epochs", "60",
               "--out", "iris.mlp", "--plot", "curve.png", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "validation accuracy" in done.stdout and "saved to iris.mlp" in done.stdout
    assert "Traceback" not in done.stderr
    assert (tmp_path / "curve.png").read_bytes().startswith(b"\x89PNG")

    clf = mlp.load(tmp_path / "iris.mlp")
    assert type(clf).__name__ == "MLPClassifier"
    assert [c.shape for c in clf.coefs_] == [(4, 16), (16, 8), (8, 3)]
    assert list(clf.classes_) == ["setosa", "versicolor", "virginica"]
    X = load_iris().data
    assert (clf.predict(X) == np.array(["setosa", "versicolor", "virginica"])[
        load_iris().target]).mean() > 0.8  # trained on raw rows: the scaling is folded in

    done = cli("predict", "iris.mlp", "iris.csv", cwd=tmp_path)  # target column ignored
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "prediction" and len(lines) == 151
    assert lines[1:] == list(clf.predict(X))

    assert main(["predict", str(tmp_path / "iris.mlp"), str(iris_csv),
                 "--out", str(tmp_path / "pred.csv"), "--proba"]) == 0
    with open(tmp_path / "pred.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["prediction", "proba_setosa", "proba_versicolor", "proba_virginica"]
    np.testing.assert_allclose(np.array(rows[1:])[:, 1:].astype(float), clf.predict_proba(X),
                               rtol=1e-12)

    done = cli("info", "iris.mlp", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for text in ("MLPClassifier", "sepal_length", "setosa", "Total params: 243",
                 "training history", "validation accuracy"):
        assert text in done.stdout, text


def test_regression_task_is_inferred(tmp_path, capsys):
    data = load_diabetes(scaled=False)
    rows = [list(x) + [t] for x, t in zip(data.data.tolist(), data.target.tolist())]
    path = write_csv(tmp_path / "d.csv", list(data.feature_names) + ["progression"], rows)
    out = tmp_path / "d.mlp"
    assert main(["train", str(path), "--target", "progression", "--hidden", "8",
                 "--epochs", "15", "--out", str(out)]) == 0
    assert "validation R^2" in capsys.readouterr().out
    reg = mlp.load(out)
    assert type(reg).__name__ == "MLPRegressor"
    pred = reg.predict(data.data)
    assert 50 < pred.mean() < 250  # on the target's own scale: its standardisation is folded in
    assert main(["info", str(out)]) == 0
    assert "MLPRegressor" in capsys.readouterr().out


def test_classify_by_default_for_few_integer_values_and_no_validation_for_tiny_files(
        tmp_path, capsys):
    rows = [[i, i % 3, (i % 3) * 10] for i in range(30)]
    path = write_csv(tmp_path / "t.csv", ["a", "b", "label"], rows)
    assert main(["train", str(path), "--target", "label", "--epochs", "3",
                 "--out", str(tmp_path / "t.mlp")]) == 0
    assert list(mlp.load(tmp_path / "t.mlp").classes_) == [0, 10, 20]
    path = write_csv(tmp_path / "tiny.csv", ["x", "y"], [[0, 0], [1, 1], [2, 0]])
    assert main(["train", str(path), "--target", "y", "--epochs", "2",
                 "--out", str(tmp_path / "tiny.mlp")]) == 0
    assert "validation: skipped" in capsys.readouterr().out


def test_an_error_is_one_line_and_a_nonzero_exit(iris_csv, tmp_path):
    done = cli("train", "iris.csv", "--target", "colour", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: iris.csv: no column 'colour'; the columns are sepal_length, sepal_width, "
        "petal_length, petal_width, species"]


def _error(capsys, argv) -> str:
    assert main(argv) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    return lines[0]


def test_error_messages(iris_csv, tmp_path, capsys):
    bad = write_csv(tmp_path / "bad.csv", ["a", "city", "y"], [[1, 2, 0], [2, "Paris", 1]])
    assert "column 'city' is not numeric (line 3: 'Paris')" in _error(
        capsys, ["train", str(bad), "--target", "y"])
    holes = write_csv(tmp_path / "holes.csv", ["a", "y"], [[1, 0], ["", 1]])
    assert "missing value on line 3" in _error(capsys, ["train", str(holes), "--target", "y"])
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b,y\n1,2,0\n1,2\n")
    assert "line 3 has 2 fields" in _error(capsys, ["train", str(ragged), "--target", "y"])
    assert "no such file" in _error(capsys, ["train", str(tmp_path / "no.csv"), "--target", "y"])
    assert "--task regress needs a numeric target" in _error(
        capsys, ["train", str(iris_csv), "--target", "species", "--task", "regress"])
    assert "--hidden" in _error(capsys, ["train", str(iris_csv), "--target", "species",
                                         "--hidden", "64,x"])
    binary = tmp_path / "model.mlp"
    binary.write_bytes(os.urandom(300))
    assert "not an mlp model file" in _error(capsys, ["info", str(binary)])
    assert "not an mlp model file" in _error(capsys, ["predict", str(binary), str(iris_csv)])
    assert "no such file" in _error(capsys, ["info", str(tmp_path / "none.mlp")])
    assert "is a directory" in _error(capsys, ["info", str(tmp_path)])
    mlp.MLPRegressor().save(tmp_path / "unfitted.mlp")
    assert "unfitted MLPRegressor" in _error(capsys, ["predict", str(tmp_path / "unfitted.mlp"),
                                                      str(iris_csv)])

    model = tmp_path / "iris.mlp"
    assert main(["train", str(iris_csv), "--target", "species", "--epochs", "2",
                 "--out", str(model)]) == 0
    capsys.readouterr()
    partial = write_csv(tmp_path / "partial.csv", ["sepal_length", "petal_width"], [[1, 2]])
    assert "no column 'sepal_width'" in _error(capsys, ["predict", str(model), str(partial)])
    assert "cannot write" in _error(capsys, ["predict", str(model), str(iris_csv),
                                             "--out", str(tmp_path)])


@pytest.fixture
def noisy_csv(tmp_path):
    """150 rows whose label is mostly noise: the validation loss soon stops improving."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((150, 6))
    labels = np.where(X[:, 0] + 1.5 * rng.standard_normal(150) > 0, "yes", "no")
    return write_csv(tmp_path / "noisy.csv", [f"f{i}" for i in range(6)] + ["label"],
                     [list(x) + [s] for x, s in zip(X.tolist(), labels)])


def test_train_patience_stops_and_keeps_the_best_epochs_weights(noisy_csv, tmp_path, capsys):
    common = ["train", str(noisy_csv), "--target", "label", "--hidden", "64", "--learning-rate",
              "0.001", "--seed", "0"]
    assert main(common + ["--epochs", "400", "--patience", "5", "--out", str(tmp_path / "a.mlp")]) == 0
    stopped = mlp.load(tmp_path / "a.mlp")
    val_loss = stopped.history_["val_loss"]
    best = int(np.argmin(val_loss)) + 1  # counted from 1, as the CLI prints it
    # --patience 5: the fit ended 5 epochs after the best one, far short of --epochs ...
    assert stopped.n_iter_ == best + 5 < 400 and len(val_loss) == best + 5
    assert min(val_loss[best:]) > val_loss[best - 1]
    assert f"kept the weights of epoch {best}, which had the lowest validation loss" in capsys.readouterr().err
    # ... and saved that epoch's weights: those of the same fit run for exactly `best` epochs.
    assert main(common + ["--epochs", str(best), "--patience", "400", "--out", str(tmp_path / "b.mlp")]) == 0
    reference = mlp.load(tmp_path / "b.mlp")
    assert reference.n_iter_ == best
    for a, b in zip(stopped.coefs_ + stopped.intercepts_, reference.coefs_ + reference.intercepts_):
        np.testing.assert_array_equal(a, b)
