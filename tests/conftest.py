"""Shared fixtures. Append new fixtures at the end; keep this file small."""
from __future__ import annotations

import glob
import importlib.util
import os
import sys
import types

import numpy as np
import pytest

# DEVELOPMENT FALLBACK (to be removed): load the extension straight from the source tree while
# mlp/__init__.py cannot be imported yet, so that `from mlp import _core` works in the tests.
try:
    import mlp  # noqa: F401
except Exception:
    _root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "mlp")
    _sos = glob.glob(os.path.join(_root, "_core*.so"))
    if _sos:
        for _name in [n for n in sys.modules if n == "mlp" or n.startswith("mlp.")]:
            del sys.modules[_name]
        _pkg = types.ModuleType("mlp")
        _pkg.__path__ = [_root]
        sys.modules["mlp"] = _pkg
        _spec = importlib.util.spec_from_file_location("mlp._core", _sos[0])
        _mod = importlib.util.module_from_spec(_spec)
        sys.modules["mlp._core"] = _mod
        _spec.loader.exec_module(_mod)
        _pkg._core = _mod


@pytest.fixture
def rng():
    """A fresh, fixed-seed generator per test, so tests do not depend on their order."""
    return np.random.default_rng(12345)


@pytest.fixture
def make_network():
    """Factory: a native mlp._core.Network from a tests/reference.py NetSpec, with its L2 set and
    its params filled (from `params`, or drawn at scale 1/sqrt(fan_in) from `seed`)."""
    from mlp import _core

    def make(spec, dtype="float64", params=None, seed=0):
        net = _core.Network(spec.sizes, [_core.Activation(a) for a in spec.activations],
                            spec.alphas, _core.Loss(spec.loss), spec.scale, dtype)
        net.set_l2(spec.l2, spec.per_sample)
        if params is None:
            r = np.random.default_rng(seed)
            params = np.concatenate([
                np.concatenate([r.standard_normal(i * o) / np.sqrt(i), 0.1 * r.standard_normal(o)])
                for i, o in zip(spec.sizes[:-1], spec.sizes[1:])])
        net.params[:] = params
        return net

    return make
