"""Shared fixtures. Append new fixtures at the end; keep this file small."""
from __future__ import annotations

import numpy as np
import pytest


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
        net = _core.Network(spec.sizes, [_core.ActivationKind(a) for a in spec.activations],
                            spec.alphas, _core.LossKind(spec.loss), spec.scale, dtype)
        net.set_l2(spec.l2, spec.per_sample)
        if params is None:
            r = np.random.default_rng(seed)
            params = np.concatenate([
                np.concatenate([r.standard_normal(i * o) / np.sqrt(i), 0.1 * r.standard_normal(o)])
                for i, o in zip(spec.sizes[:-1], spec.sizes[1:])])
        net.params[:] = params
        return net

    return make
