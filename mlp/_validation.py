"""Input checks shared by both fronts (the spec's Model and the scikit-learn estimators).

Each check runs once per call and converts once: arrays leave here C-contiguous in one floating
dtype, because that is the only form ``mlp._core`` accepts. Every error names the argument and
says what was expected, so a user can fix the call without reading this file.
"""
from __future__ import annotations

import decimal
import math
import numbers

import numpy as np

from ._limits import MAX_WIDTH, SEED_LIMIT, check_allocation, count_params, training_bytes

FLOAT_DTYPES = ("float32", "float64")

# What an object array may hold (numbers.Real covers int, float, bool, Fraction, numpy's ints and
# floats; numpy's bool and Decimal are not registered with it).
_REAL_SCALARS = (numbers.Real, np.bool_, decimal.Decimal)


def check_dtype(dtype, name: str = "dtype") -> np.dtype:
    """Return ``np.dtype('float32')`` or ``np.dtype('float64')``.

    Parameters
    ----------
    dtype : str or numpy dtype-like
        ``'float32'``, ``'float64'``, ``np.float32``, ``np.float64`` or their ``np.dtype``.
    name : str
        The argument name for error messages.

    Raises
    ------
    ValueError
        If `dtype` is anything else.
    """
    resolved = None
    if dtype is not None:  # np.dtype(None) would quietly mean float64
        try:
            resolved = np.dtype(dtype)
        except TypeError:
            pass
    if resolved is None or resolved.name not in FLOAT_DTYPES:
        raise ValueError(f"{name} must be 'float32' or 'float64', got {dtype!r}")
    return resolved


def _is_sparse(a) -> bool:
    # Checked by module name so that scipy stays an optional dependency.
    return type(a).__module__.startswith("scipy.sparse")


def check_array(a, name: str, *, dtype="float32", ndim: int = 2, n_columns: int | None = None,
                reshape_1d: bool = False) -> np.ndarray:
    """Validate an array-like and convert it to a C-contiguous floating array.

    Lists, integer and boolean arrays, float64, Fortran-ordered and non-contiguous arrays and
    pandas objects are accepted; the result is a new array only when a conversion is needed.

    Parameters
    ----------
    a : array-like
        The data.
    name : str
        The argument name for error messages, e.g. ``'x'``.
    dtype : {'float32', 'float64'}
        The dtype of the result.
    ndim : int, default=2
        The number of dimensions required.
    n_columns : int, optional
        The required width (second dimension) when ``ndim == 2``.
    reshape_1d : bool, default=False
        Turn a 1-D array of length N into a column of shape (N, 1) before the checks.

    Returns
    -------
    numpy.ndarray
        C-contiguous, of dtype `dtype`.

    Raises
    ------
    TypeError
        If `a` is None, sparse, or not numeric (strings, objects, complex, dates).
    ValueError
        If it is ragged, has the wrong number of dimensions or columns, is empty, or holds NaN,
        infinity or values too large for `dtype`.

    Examples
    --------
    >>> check_array([[1, 2], [3, 4]], "x").dtype
    dtype('float32')
    """
    dtype = check_dtype(dtype)
    if a is None:
        raise TypeError(f"{name} must be an array of numbers, got None")
    if _is_sparse(a):
        raise TypeError(f"{name} must be a dense array; convert the sparse matrix with .toarray()")
    try:
        arr = np.asarray(a)
    except (ValueError, TypeError) as exc:  # ragged nested lists
        raise ValueError(f"{name} must be a rectangular array of numbers: {exc}") from None

    kind = arr.dtype.kind
    if kind == "O":
        # An object array may still hold plain numbers (e.g. a mixed pandas frame). Anything else
        # is refused rather than guessed at: None, containers, and strings, even "1.5", which
        # numpy's astype would parse while a str array is refused.
        if not all(isinstance(v, _REAL_SCALARS) for v in arr.flat):
            raise TypeError(f"{name} must hold numbers, got non-numeric values of dtype object")
        try:
            arr = arr.astype(np.float64)
        except OverflowError:  # a Python int beyond float64's range
            raise ValueError(f"{name} holds values too large for float64") from None
        except (ValueError, TypeError):
            raise TypeError(f"{name} must hold numbers, got non-numeric values of dtype object") from None
    elif kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")

    if reshape_1d and arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != ndim:
        expected = "(n_samples, n_features)" if ndim == 2 else f"{ndim} dimensions"
        raise ValueError(f"{name} must be a {ndim}-D array of shape {expected}, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); at least one sample and one column are needed")
    if n_columns is not None and ndim == 2 and arr.shape[1] != n_columns:
        raise ValueError(f"{name} has {arr.shape[1]} columns but {n_columns} were expected "
                         f"(shape {arr.shape})")

    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinity; every value must be finite")
    return as_float(arr, dtype, name)


# The most rows the fast path of predict takes without the full check (`ready_rows`); a
# larger input pays the full check, whose cost is then small next to the work.
FAST_ROWS = 64


def ready_rows(x, dtype, n_columns: int | None):
    """`x` itself when it needs no conversion, else None.

    That is: a numpy array (not a subclass) of exactly `dtype`, 2-D and C-contiguous, with
    `n_columns` columns and 1 to FAST_ROWS rows. Its values are not read here: the caller passes
    it to ``Network.predict(x, finite_only=True)``, which returns None for a NaN or an infinity.
    On either None the caller runs `check_array`, which converts or raises the usual errors, so
    the fast path never changes what a call accepts or how it fails.
    """
    if (type(x) is np.ndarray and x.ndim == 2 and x.dtype == dtype and x.flags.c_contiguous
            and 0 < x.shape[0] <= FAST_ROWS and (n_columns is None or x.shape[1] == n_columns)):
        return x
    return None


def as_float(arr: np.ndarray, dtype, name: str) -> np.ndarray:
    """Convert a real array to a C-contiguous array of `dtype` that is no less finite.

    Casting float64 (or long double) to float32 overflows to inf for values beyond 3.4e38; numpy
    only warns about it (and the warning is an error under the test settings), so the cast runs
    silently here and a finite value that became infinite raises instead.

    Raises
    ------
    ValueError
        If a finite value of `arr` does not fit in `dtype`.
    """
    dtype = np.dtype(dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.ascontiguousarray(arr, dtype=dtype)
    if arr.dtype.kind == "f" and out.itemsize < arr.itemsize and not np.isfinite(out).all() \
            and np.isfinite(arr[~np.isfinite(out)]).any():
        raise ValueError(f"{name} holds values too large for {dtype.name}")
    return out


def check_width(value, name: str) -> int:
    """A layer width: an integer in [1, 2**31] (`check_positive_int` plus the core's bound)."""
    value = check_positive_int(value, name)
    if value > MAX_WIDTH:
        raise ValueError(f"{name} must be at most 2**31 = {MAX_WIDTH}, got {value}")
    return value


def check_network_size(sizes, dtype, what: str = "the network") -> int:
    """Check the widths [in, h1, ..., out] and that training such a network fits in memory.

    Training holds the parameters `mlp._limits.TRAINING_COPIES` times over (weights, gradient, and
    Adam's two moment buffers), so that is what is compared with the physical memory.

    Returns
    -------
    int
        The number of parameters (weights and biases).

    Raises
    ------
    ValueError
        If a width is outside [1, 2**31], or the network could never fit in memory.
    """
    for i, size in enumerate(sizes):
        check_width(size, f"{what}'s layer width {i}")
    n_params = count_params(sizes)
    shown = " -> ".join(str(int(s)) for s in sizes)
    check_allocation(training_bytes(sizes, dtype),
                     f"training {what} {shown} ({n_params:,} parameters)")
    return n_params


def check_X_y(x, y, *, dtype="float32", n_features: int | None = None, n_outputs: int | None = None,
              x_name: str = "x", y_name: str = "y") -> tuple[np.ndarray, np.ndarray]:
    """Validate samples and targets together.

    Parameters
    ----------
    x, y : array-like
        x of shape (n_samples, n_features); y of shape (n_samples, n_outputs), or (n_samples,)
        when there is one output.
    dtype : {'float32', 'float64'}
    n_features, n_outputs : int, optional
        The widths required of x and y.
    x_name, y_name : str
        Argument names for error messages.

    Returns
    -------
    x, y : numpy.ndarray
        Both 2-D, C-contiguous, of dtype `dtype`.

    Raises
    ------
    TypeError, ValueError
        As in `check_array`, and when x and y have different numbers of samples or y is 1-D for a
        model with several outputs.
    """
    x = check_array(x, x_name, dtype=dtype, n_columns=n_features)
    if n_outputs is not None and n_outputs > 1 and _ndim(y) == 1:
        raise ValueError(f"{y_name} has shape ({len(y)},) but the model has {n_outputs} outputs; "
                         f"give {y_name} as (n_samples, {n_outputs}), e.g. one-hot encoded labels")
    y = check_array(y, y_name, dtype=dtype, n_columns=n_outputs, reshape_1d=True)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{x_name} and {y_name} must have the same number of samples, "
                         f"got {x.shape[0]} and {y.shape[0]}")
    return x, y


def _ndim(a) -> int | None:
    # np.ndim raises on ragged lists; check_array then reports those with the argument's name.
    try:
        return np.ndim(a)
    except ValueError:
        return None


def check_sample_weight(sample_weight, n_samples: int, *, dtype="float32",
                        name: str = "sample_weight") -> np.ndarray | None:
    """Validate per-sample weights: None, a scalar, or a 1-D array of length `n_samples`.

    Returns None for None (the core then weighs every sample by 1), else a C-contiguous array of
    dtype `dtype`, finite and non-negative with a positive sum.

    Raises
    ------
    TypeError, ValueError
        If the weights are non-numeric, of the wrong length, negative, non-finite, or all zero.
    """
    if sample_weight is None:
        return None
    if np.ndim(sample_weight) == 0:
        value = check_non_negative_float(sample_weight, name)
        sample_weight = np.full(n_samples, value)
    sw = check_array(sample_weight, name, dtype=dtype, ndim=1)
    if sw.shape[0] != n_samples:
        raise ValueError(f"{name} has {sw.shape[0]} entries but there are {n_samples} samples")
    if (sw < 0).any():
        raise ValueError(f"{name} must be non-negative")
    if not sw.sum() > 0:
        raise ValueError(f"{name} must have a positive sum; every weight is zero")
    return sw


def check_positive_int(value, name: str, *, minimum: int = 1) -> int:
    """Return `value` as an int after checking that it is an integer >= `minimum`.

    Raises
    ------
    TypeError
        If `value` is not an integer (bools and floats, even integral ones, are refused: a float
        here is almost always a mix-up of two arguments).
    ValueError
        If it is smaller than `minimum`.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_real(value, name: str, expected: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {expected}, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return value


def check_positive_float(value, name: str) -> float:
    """Return `value` as a float after checking that it is finite and > 0.

    Raises
    ------
    TypeError
        If it is not a real number.
    ValueError
        If it is NaN, infinite, zero or negative.
    """
    value = _check_real(value, name, "a finite number > 0")
    if value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return value


def check_learning_rate(value, name: str = "learning_rate") -> float:
    """A learning rate: a finite float > 0 (see `check_positive_float`)."""
    return check_positive_float(value, name)


def check_non_negative_float(value, name: str) -> float:
    """Return `value` as a float after checking that it is finite and >= 0."""
    value = _check_real(value, name, "a finite number >= 0")
    if value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return value


def check_fraction(value, name: str, *, include_zero: bool = True) -> float:
    """Return `value` as a float in [0, 1) (or (0, 1) when `include_zero` is False).

    Used for momentum and Adam's betas, where 1 would stop the average from ever forgetting.
    """
    low = "[0, 1)" if include_zero else "(0, 1)"
    value = _check_real(value, name, f"a number in {low}")
    if value >= 1 or value < 0 or (value == 0 and not include_zero):
        raise ValueError(f"{name} must be a number in {low}, got {value!r}")
    return value


def check_bool(value, name: str) -> bool:
    """Return `value` as a bool; only True/False (numpy's included) are accepted."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def check_seed(seed, name: str = "seed") -> int | None:
    """Return None or the seed as an int in [0, 2**64).

    Raises
    ------
    TypeError
        If it is neither None nor an integer.
    ValueError
        If it is negative or does not fit in 64 bits.
    """
    if seed is None:
        return None
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{name} must be None or an integer, got {type(seed).__name__} {seed!r}")
    if not 0 <= seed < SEED_LIMIT:
        raise ValueError(f"{name} must be in [0, 2**64), got {seed!r}")
    return int(seed)
