"""Predict on a few rows (a model serving one request at a time) takes its own path: the GEMM's
unpacked small-m kernel on the calling thread. Its results must be bit-identical to the batched
path's, for every activation, both dtypes, embeddings, and widths past one k block (256)."""
from __future__ import annotations

import numpy as np
import pytest

from mlp import _core

A = _core.ActivationKind
L = _core.LossKind


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("sizes", [[64, 100, 10], [3, 300, 1], [700, 33, 65, 4], [5, 1, 2]])
def test_few_rows_match_the_batched_path(dtype, sizes):
    rng = np.random.default_rng(len(sizes))
    hidden = [a for a in A.__members__.values() if a != A.SOFTMAX]
    for act in hidden:
        acts = [act] * (len(sizes) - 2) + [A.SOFTMAX if sizes[-1] > 1 else A.SIGMOID]
        loss = L.CATEGORICAL_CROSS_ENTROPY if sizes[-1] > 1 else L.BINARY_CROSS_ENTROPY
        net = _core.Network(sizes, acts, [0.1] * len(acts), loss, 1.0, dtype)
        net.params[:] = rng.standard_normal(net.n_params) * 0.2
        x = rng.standard_normal((300, sizes[0])).astype(dtype)
        full = net.predict(x)
        for k in (1, 2, 3, 4, 5, 9):
            for start in (0, 11, 290):
                np.testing.assert_array_equal(net.predict(x[start:start + k]), full[start:start + k],
                                              err_msg=f"{act.name}, {k} rows at {start}")


def test_few_rows_with_embeddings():
    net = _core.Network([2 + 3 + 1, 8, 2], [A.TANH, A.SOFTMAX], [0.0, 0.0],
                        L.CATEGORICAL_CROSS_ENTROPY, 1.0, "float32", [[0, 5, 3], [2, 4, 2]], 3)
    rng = np.random.default_rng(0)
    net.params[:] = rng.standard_normal(net.n_params)
    x = rng.standard_normal((50, 3)).astype(np.float32)
    x[:, 0] = rng.integers(0, 5, 50)
    x[:, 2] = rng.integers(0, 4, 50)
    full = net.predict(x)
    for i in range(50):
        np.testing.assert_array_equal(net.predict(x[i:i + 1]), full[i:i + 1])
    bad = x[:1].copy()
    bad[0, 2] = 4
    with pytest.raises(ValueError, match="embedded column 2"):
        net.predict(bad)
