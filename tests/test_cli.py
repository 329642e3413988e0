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


def _columns_of(path):
    """The CSV's columns as the CLI reads them: floats (NaN for empty cells) or text (None)."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    out = {}
    for j, name in enumerate(rows[0]):
        values = [r[j] for r in rows[1:]]
        try:
            out[name] = np.array([float(v) if v else np.nan for v in values])
        except ValueError:
            out[name] = np.array([v or None for v in values], dtype=object)
    return out


def test_train_predict_info(iris_csv, tmp_path):
    done = cli("train", "iris.csv", "--target", "species", "--hidden", "16,8", "--epochs", "20", "--batch-size", "16",
               "--out", "iris.mlp", "--plot", "curve.png", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "validation accuracy" in done.stdout and "saved to iris.mlp" in done.stdout
    assert "Traceback" not in done.stderr
    assert (tmp_path / "curve.png").read_bytes().startswith(b"\x89PNG")

    clf = mlp.load(tmp_path / "iris.mlp")
    assert type(clf).__name__ == "TabularClassifier"
    assert list(clf._spec.sizes)[1:] == [16, 8, 3] and clf.n_iter_ == 20
    assert list(clf.classes_) == ["setosa", "versicolor", "virginica"]
    assert list(clf.feature_names_in_) == ["sepal_length", "sepal_width", "petal_length",
                                           "petal_width"]
    columns = _columns_of(iris_csv)
    del columns["species"]
    assert (clf.predict(columns) == np.array(["setosa", "versicolor", "virginica"])[
        load_iris().target]).mean() > 0.8

    done = cli("predict", "iris.mlp", "iris.csv", cwd=tmp_path)  # target column ignored
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "prediction" and len(lines) == 151
    assert lines[1:] == list(clf.predict(columns))

    assert main(["predict", str(tmp_path / "iris.mlp"), str(iris_csv),
                 "--out", str(tmp_path / "pred.csv"), "--proba"]) == 0
    with open(tmp_path / "pred.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["prediction", "proba_setosa", "proba_versicolor", "proba_virginica"]
    np.testing.assert_allclose(np.array(rows[1:])[:, 1:].astype(float),
                               clf.predict_proba(columns), rtol=1e-12)

    done = cli("info", "iris.mlp", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for text in ("TabularClassifier", "sepal_length", "numeric (4)", "setosa",
                 "-> 16 -> 8 -> 3", "training history", "validation accuracy"):
        assert text in done.stdout, text


@pytest.fixture
def mixed_csv(tmp_path):
    """Numbers, text and empty cells, as a spreadsheet exports them."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(300):
        a = rng.standard_normal()
        colour = rng.choice(["red", "green", "blue", ""])
        size = "" if i % 7 == 0 else f"{rng.uniform(1, 5):.2f}"
        city = f"city{rng.integers(0, 30)}"  # 30 levels: embedded, not one-hot
        rows.append([f"{a:.4f}", colour, size, city, "yes" if a + (colour == "red") > 0.3 else "no"])
    return write_csv(tmp_path / "mixed.csv", ["a", "colour", "size", "city", "label"], rows)


def test_text_columns_and_empty_cells_just_work(mixed_csv, tmp_path, capsys):
    model = tmp_path / "m.mlp"
    assert main(["train", str(mixed_csv), "--target", "label", "--epochs", "30", "--batch-size", "32", "--hidden",
                 "32", "--seed", "1", "--out", str(model)]) == 0
    assert "(2 categorical)" in capsys.readouterr().err
    clf = mlp.load(model)
    assert clf.preprocessor_.kinds_ == ["numeric", "onehot", "numeric", "embedding"]
    assert clf.preprocessor_.indicator_ == [2]  # size had empty cells
    columns = _columns_of(mixed_csv)
    truth = columns.pop("label")
    assert (clf.predict(columns) == truth).mean() > 0.85
    # A new file: an unseen colour, an unseen city, empty cells everywhere but the numbers.
    new = write_csv(tmp_path / "new.csv", ["a", "colour", "size", "city"],
                    [["0.5", "purple", "", "atlantis"], ["-2", "", "3.0", ""],
                     ["1.5", "red", "2.5", "city3"]])
    assert main(["predict", str(model), str(new), "--proba"]) == 0
    out = list(csv.reader(capsys.readouterr().out.splitlines()))
    assert out[0] == ["prediction", "proba_no", "proba_yes"] and len(out) == 4
    new_columns = {"a": np.array([0.5, -2.0, 1.5]),
                   "colour": np.array(["purple", None, "red"], dtype=object),
                   "size": np.array([np.nan, 3.0, 2.5]),
                   "city": np.array(["atlantis", None, "city3"], dtype=object)}
    assert [r[0] for r in out[1:]] == list(clf.predict(new_columns))
    np.testing.assert_allclose(np.array(out[1:])[:, 1:].astype(float),
                               clf.predict_proba(new_columns), rtol=1e-12)
    # A column that held numbers in training holds text here: one line, naming it.
    wrong = write_csv(tmp_path / "wrong.csv", ["a", "colour", "size", "city"],
                      [["x1", "red", "1", "city1"]])
    assert "column 'a' is not numeric (line 2: 'x1'), as it was in training" in _error(
        capsys, ["predict", str(model), str(wrong)])
    assert main(["info", str(model)]) == 0
    text = capsys.readouterr().out
    assert "categorical, one-hot (1): colour" in text and "categorical, embedded (1): city" in text


def test_regression_task_is_inferred(tmp_path, capsys):
    data = load_diabetes(scaled=False)
    rows = [list(x) + [t] for x, t in zip(data.data.tolist(), data.target.tolist())]
    path = write_csv(tmp_path / "d.csv", list(data.feature_names) + ["progression"], rows)
    out = tmp_path / "d.mlp"
    assert main(["train", str(path), "--target", "progression", "--hidden", "8",
                 "--epochs", "15", "--out", str(out)]) == 0
    assert "validation R^2" in capsys.readouterr().out
    reg = mlp.load(out)
    assert type(reg).__name__ == "TabularRegressor"
    pred = reg.predict(data.data)
    assert 50 < pred.mean() < 250  # on the target's own scale
    assert main(["info", str(out)]) == 0
    assert "TabularRegressor" in capsys.readouterr().out


def test_classify_by_default_for_few_integer_values_and_no_validation_on_request(
        tmp_path, capsys):
    rows = [[i, i % 3, (i % 3) * 10] for i in range(30)]
    path = write_csv(tmp_path / "t.csv", ["a", "b", "label"], rows)
    assert main(["train", str(path), "--target", "label", "--epochs", "3",
                 "--out", str(tmp_path / "t.mlp")]) == 0
    assert list(mlp.load(tmp_path / "t.mlp").classes_) == [0, 10, 20]
    path = write_csv(tmp_path / "tiny.csv", ["x", "y"], [[0, 0], [1, 1], [2, 0]])
    assert main(["train", str(path), "--target", "y", "--epochs", "2", "--validation", "0",
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
    holes = write_csv(tmp_path / "holes.csv", ["a", "y"], [[1, 0], [2, ""]])
    assert "the target column 'y' has a missing value on line 3" in _error(
        capsys, ["train", str(holes), "--target", "y"])
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


def test_train_patience_stops_early_and_keeps_the_best_epoch(noisy_csv, tmp_path, capsys):
    common = ["train", str(noisy_csv), "--target", "label", "--hidden", "64", "--seed", "0",
              "--learning-rate", "0.01"]
    assert main(common + ["--epochs", "200", "--patience", "5",
                          "--out", str(tmp_path / "a.mlp")]) == 0
    stopped = mlp.load(tmp_path / "a.mlp")
    val_loss = stopped.history_["val_loss"]
    lowest = int(np.argmin(val_loss))
    # --patience 5: the fit ended 5 epochs after the lowest validation loss, short of --epochs
    assert stopped.n_iter_ == lowest + 6 < 200 and len(val_loss) == lowest + 6
    # ... and kept the epoch of the best validation accuracy (ties: the lowest log-loss).
    scores = np.array(stopped.history_["val_score"])
    tied = np.flatnonzero(scores == scores.max())
    assert stopped.best_epoch_ == tied[np.argmin(np.array(val_loss)[tied])]
    assert stopped.best_score_ == scores.max()
    assert f"kept the weights of epoch {stopped.best_epoch_ + 1}" in capsys.readouterr().err


def test_predict_still_reads_the_files_of_the_other_estimators(tmp_path, capsys):
    data = load_iris()
    clf = mlp.MLPClassifier(hidden_layer_sizes=(8,), max_iter=30, random_state=0)
    clf.fit(data.data, data.target)
    clf.save(tmp_path / "plain.mlp")
    features = write_csv(tmp_path / "x.csv", [f"x{j}" for j in range(4)], data.data.tolist())
    assert main(["predict", str(tmp_path / "plain.mlp"), str(features)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "prediction" and lines[1:] == [str(v) for v in clf.predict(data.data)]
