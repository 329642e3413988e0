"""mlp/_validation.py: conversion to C-contiguous floats and the error messages."""
import numpy as np
import pytest

from mlp._validation import (check_array, check_bool, check_dtype, check_fraction,
                             check_learning_rate, check_non_negative_float, check_positive_float,
                             check_positive_int, check_sample_weight, check_seed, check_X_y)

BASE = np.arange(12, dtype=np.float64).reshape(4, 3)


@pytest.mark.parametrize("make", [
    lambda: BASE.tolist(),
    lambda: BASE.astype(np.int64),
    lambda: BASE.astype(np.int8),
    lambda: np.asfortranarray(BASE),
    lambda: np.ascontiguousarray(np.repeat(BASE, 2, axis=1)[:, ::2]),  # same values, copied
    lambda: np.repeat(BASE, 2, axis=1)[:, ::2],  # non-contiguous view
    lambda: BASE[::-1][::-1],
    lambda: BASE.astype(np.float32),
    lambda: BASE.astype(np.float16),
    lambda: BASE.astype(object),
], ids=["list", "int64", "int8", "fortran", "copy", "strided", "reversed-twice", "float32",
        "float16", "object-numbers"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_check_array_accepts_and_converts(make, dtype):
    out = check_array(make(), "x", dtype=dtype)
    assert out.dtype == np.dtype(dtype)
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, BASE.astype(dtype))


def test_check_array_does_not_copy_when_already_right():
    a = np.ones((3, 2), dtype=np.float32)
    assert check_array(a, "x") is a


def test_check_array_accepts_pandas():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": [1, 2], "b": [0.5, 1.5]})
    np.testing.assert_array_equal(check_array(frame, "x"), [[1, 0.5], [2, 1.5]])


def test_check_array_bool_is_numeric():
    np.testing.assert_array_equal(check_array([[True, False]], "x"), [[1.0, 0.0]])


@pytest.mark.parametrize("bad, exc, match", [
    ([[1.0, np.nan]], ValueError, "x contains NaN or infinity"),
    ([[1.0, np.inf]], ValueError, "x contains NaN or infinity"),
    ([[1.0, -np.inf]], ValueError, "x contains NaN or infinity"),
    ([[1e300, 1.0]], ValueError, "x holds values too large for float32"),
    ([1.0, 2.0], ValueError, "x must be a 2-D array"),
    (np.zeros((2, 2, 2)), ValueError, "x must be a 2-D array"),
    (3.0, ValueError, "x must be a 2-D array"),
    (np.zeros((0, 3)), ValueError, "x is empty"),
    (np.zeros((3, 0)), ValueError, "x is empty"),
    ([], ValueError, "x"),
    ([["a", "b"]], TypeError, "x must hold real numbers"),
    (np.array([[1, "a"]], dtype=object), TypeError, "x must hold numbers"),
    (np.array([[1 + 2j]]), TypeError, "x must hold real numbers"),
    (np.array([["2020-01-01"]], dtype="datetime64[D]"), TypeError, "x must hold real numbers"),
    ([[1.0, 2.0], [3.0]], ValueError, "x must be a rectangular array"),
    (None, TypeError, "x must be an array of numbers, got None"),
])
def test_check_array_rejects(bad, exc, match):
    with pytest.raises(exc, match=match):
        check_array(bad, "x")


def test_check_array_rejects_sparse():
    sparse = pytest.importorskip("scipy.sparse")
    with pytest.raises(TypeError, match="x must be a dense array"):
        check_array(sparse.csr_matrix(np.eye(3)), "x")


def test_check_array_width_and_reshape():
    with pytest.raises(ValueError, match="x has 3 columns but 2 were expected"):
        check_array(BASE, "x", n_columns=2)
    assert check_array([1, 2, 3], "y", reshape_1d=True).shape == (3, 1)
    assert check_array([1, 2, 3], "w", ndim=1).shape == (3,)


def test_check_X_y():
    x, y = check_X_y(BASE, [0, 1, 0, 1], n_features=3, n_outputs=1)
    assert x.shape == (4, 3) and y.shape == (4, 1)
    with pytest.raises(ValueError, match="x and y must have the same number of samples, got 4 and 3"):
        check_X_y(BASE, [0, 1, 0])
    with pytest.raises(ValueError, match="y has shape \\(4,\\) but the model has 2 outputs"):
        check_X_y(BASE, [0, 1, 0, 1], n_outputs=2)
    with pytest.raises(ValueError, match="y has 1 columns but 2 were expected"):
        check_X_y(BASE, [[0], [1], [0], [1]], n_outputs=2)
    with pytest.raises(ValueError, match="y contains NaN"):
        check_X_y(BASE, [0, np.nan, 0, 1])
    with pytest.raises(ValueError, match="y must be a rectangular array"):
        check_X_y(BASE, [[0], [1, 2], [0], [1]], n_outputs=2)


@pytest.mark.parametrize("value, exc", [
    (0, ValueError), (-1, ValueError), (1.0, TypeError), (float("nan"), TypeError),
    (True, TypeError), ("3", TypeError), (None, TypeError),
])
def test_check_positive_int_rejects(value, exc):
    with pytest.raises(exc, match="epochs must be an integer >= 1"):
        check_positive_int(value, "epochs")


def test_check_positive_int_accepts_numpy_ints():
    assert check_positive_int(np.int64(5), "epochs") == 5
    assert type(check_positive_int(np.int32(5), "epochs")) is int
    assert check_positive_int(0, "n", minimum=0) == 0


@pytest.mark.parametrize("value, exc", [
    (0.0, ValueError), (-0.1, ValueError), (float("nan"), ValueError), (float("inf"), ValueError),
    ("0.1", TypeError), (None, TypeError), (True, TypeError), (1j, TypeError),
])
def test_check_learning_rate_rejects(value, exc):
    with pytest.raises(exc, match="learning_rate must be a finite number > 0"):
        check_learning_rate(value)


def test_check_floats_accept():
    assert check_learning_rate(np.float32(0.5)) == 0.5
    assert check_learning_rate(1) == 1.0
    assert check_positive_float(2, "eps") == 2.0
    assert check_non_negative_float(0, "l2") == 0.0
    with pytest.raises(ValueError, match="l2 must be a finite number >= 0"):
        check_non_negative_float(-1, "l2")
    assert check_fraction(0.0, "momentum") == 0.0
    for bad in (1.0, -0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="momentum must be a number in \\[0, 1\\)"):
            check_fraction(bad, "momentum")
    with pytest.raises(ValueError, match="beta must be a number in \\(0, 1\\)"):
        check_fraction(0.0, "beta", include_zero=False)


def test_check_bool_seed_dtype():
    assert check_bool(np.bool_(True), "shuffle") is True
    with pytest.raises(TypeError, match="shuffle must be True or False"):
        check_bool(1, "shuffle")
    assert check_seed(None) is None and check_seed(np.uint64(2**63)) == 2**63
    with pytest.raises(ValueError, match="seed must be in"):
        check_seed(-1)
    with pytest.raises(TypeError, match="seed must be None or an integer"):
        check_seed(1.5)
    assert check_dtype(np.float64) == np.float64 and check_dtype("float32") == np.float32
    for bad in ("float16", "int32", "banana", None):
        with pytest.raises(ValueError, match="dtype must be 'float32' or 'float64'"):
            check_dtype(bad)


def test_check_sample_weight():
    assert check_sample_weight(None, 3) is None
    np.testing.assert_array_equal(check_sample_weight(2, 3), [2, 2, 2])
    sw = check_sample_weight([1, 2, 3], 3, dtype="float64")
    assert sw.dtype == np.float64 and sw.flags.c_contiguous
    with pytest.raises(ValueError, match="sample_weight has 2 entries but there are 3 samples"):
        check_sample_weight([1, 2], 3)
    with pytest.raises(ValueError, match="sample_weight must be non-negative"):
        check_sample_weight([1, -2, 3], 3)
    with pytest.raises(ValueError, match="sample_weight must have a positive sum"):
        check_sample_weight([0, 0, 0], 3)
    with pytest.raises(ValueError, match="sample_weight contains NaN"):
        check_sample_weight([0, np.nan, 0], 3)
