"""`python -m mlp demo`: trains on scikit-learn's digits and reports accuracy and time."""
import os
import re
import subprocess
import sys

import pytest

import mlp
from mlp.__main__ import main


def _env():
    # Run the same mlp this test imported (the source tree or the installed one), from a
    # directory where no other `mlp` folder can shadow it.
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(mlp.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def test_demo_trains_digits(tmp_path):
    pytest.importorskip("sklearn")
    result = subprocess.run([sys.executable, "-m", "mlp", "demo"], cwd=tmp_path, env=_env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Epoch 1/30" in out and "Epoch 30/30" in out  # per-epoch progress
    accuracy = re.search(r"test accuracy: ([\d.]+)%", out)
    assert accuracy and float(accuracy.group(1)) >= 95.0, out
    assert re.search(r"time taken: [\d.]+ s", out)


def test_demo_without_scikit_learn_says_how_to_install(monkeypatch, capsys):
    # None in sys.modules makes an import fail; cached submodules (sklearn.datasets imported by an
    # earlier test) would bypass the parent, so they are blocked too.
    for name in ["sklearn"] + [m for m in list(sys.modules) if m.startswith("sklearn.")]:
        monkeypatch.setitem(sys.modules, name, None)
    assert main(["demo"]) == 1
    assert "pip install scikit-learn" in capsys.readouterr().err


def test_cli_needs_a_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2
    assert "demo" in capsys.readouterr().err
