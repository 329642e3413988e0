"""Every kernel of mlp._core against its float64 NumPy reference (tests/reference.py).

Shapes are chosen to be awkward: 1x1, row counts that are no multiple of the SIMD width or of the
two-thread split (1, 3, 17, 33, 257), and widths from 1 to 300. Tolerances are explicit: relative
`rtol`, and an absolute floor `atol` times the scale of the result (for products and sums, the
magnitude of the largest term), so cancellation near zero does not fail a correct float32 kernel.
"""
from __future__ import annotations

import numpy as np
import pytest

import reference as ref
from mlp import _core

A = _core.ActivationKind
L = _core.LossKind

DTYPES = [np.float32, np.float64]
TOL = {np.float32: (1e-4, 1e-5), np.float64: (1e-10, 1e-12)}  # (rtol, atol relative to scale)
ACTS = list(A.__members__.values())  # pybind11 enums are not iterable
# Non-default alphas, so a kernel that ignores alpha is caught.
ALPHA = {A.LEAKY_RELU: 0.1, A.ELU: 0.7}
# The activation each fused loss goes with; MSE is tried with every activation.
FUSED = {L.CATEGORICAL_CROSS_ENTROPY: A.SOFTMAX, L.BINARY_CROSS_ENTROPY: A.SIGMOID,
         L.POISSON: A.IDENTITY}

ROWS_COLS = [(1, 1), (3, 7), (17, 31), (33, 64), (257, 129), (1, 300), (257, 1), (16, 300)]
# (rows, inner, cols): gemm's (M, K, N) and dense's (N, I, O).
MKN = [(1, 1, 1), (1, 7, 300), (3, 300, 1), (17, 31, 7), (33, 64, 129), (257, 129, 64),
       (257, 1, 31), (64, 257, 33), (300, 17, 3)]


def name(dtype):
    return np.dtype(dtype).name


def check(op, got, want, dtype, shape, scale=None):
    """Assert got (from the kernel) matches want (float64) within TOL[dtype]."""
    rtol, atol = TOL[dtype]
    want = np.asarray(want, dtype=np.float64)
    where = f"{op} [{name(dtype)}, shape {shape}]"
    assert isinstance(got, np.ndarray), f"{where}: returned {type(got).__name__}, not an ndarray"
    assert got.dtype == np.dtype(dtype), f"{where}: returned dtype {got.dtype}"
    assert got.shape == want.shape, f"{where}: returned shape {got.shape}, expected {want.shape}"
    if scale is None:
        scale = float(np.abs(want).max()) if want.size else 0.0
    scale = scale or 1.0  # an all-zero result is compared with the absolute floor itself
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol * scale, err_msg=where)


def as_dtype(x, dtype):
    return np.ascontiguousarray(x, dtype=dtype)


def alpha_of(act):
    return ALPHA.get(act, 0.0)


def act_id(act):
    return act.name.lower()


# ------------------------------------------------------------------------------------ gemm


@pytest.mark.parametrize("dtype", DTYPES, ids=name)
@pytest.mark.parametrize("trans_a", [False, True], ids=["N", "T"])
@pytest.mark.parametrize("trans_b", [False, True], ids=["N", "T"])
@pytest.mark.parametrize("m,k,n", MKN)
def test_gemm(rng, m, k, n, trans_a, trans_b, dtype):
    a = as_dtype(rng.standard_normal((k, m) if trans_a else (m, k)), dtype)
    b = as_dtype(rng.standard_normal((n, k) if trans_b else (k, n)), dtype)
    got = _core.gemm(a, b, trans_a, trans_b)
    bound = ref.gemm(np.abs(a), np.abs(b), trans_a, trans_b).max()
    check(f"gemm(trans_a={trans_a}, trans_b={trans_b})", got, ref.gemm(a, b, trans_a, trans_b),
          dtype, (m, k, n), scale=bound)


@pytest.mark.parametrize("dtype", DTYPES, ids=name)
def test_gemm_keyword_defaults(rng, dtype):
    a = as_dtype(rng.standard_normal((5, 3)), dtype)
    b = as_dtype(rng.standard_normal((3, 4)), dtype)
    check("gemm()", _core.gemm(a, b), ref.gemm(a, b), dtype, (5, 3, 4))
    check("gemm(trans_b=True)", _core.gemm(a, a, trans_b=True), ref.gemm(a, a, False, True),
          dtype, (5, 3, 5))


# ------------------------------------------------------------------------------ activations


@pytest.mark.parametrize("dtype", DTYPES, ids=name)
@pytest.mark.parametrize("act", ACTS, ids=act_id)
@pytest.mark.parametrize("shape", ROWS_COLS, ids=str)
def test_activation_forward(rng, shape, act, dtype):
    z = as_dtype(3.0 * rng.standard_normal(shape), dtype)
    got = _core.activation_forward(z, act, alpha_of(act))
    check(f"activation_forward({act.name})", got, ref.activation_forward(z, act, alpha_of(act)),
          dtype, shape)


@pytest.mark.parametrize("dtype", DTYPES, ids=name)
@pytest.mark.parametrize("act", ACTS, ids=act_id)
@pytest.mark.parametrize("shape", ROWS_COLS, ids=str)
def test_activation_backward(rng, shape, act, dtype):
    z = as_dtype(3.0 * rng.standard_normal(shape), dtype)
    a = as_dtype(ref.activation_forward(z, act, alpha_of(act)), dtype)
    da = as_dtype(rng.standard_normal(shape), dtype)
    got = _core.activation_backward(z, a, da, act, alpha_of(act))
    check(f"activation_backward({act.name})", got,
          ref.activation_backward(z, da, act, alpha_of(act)), dtype, shape)


def test_activation_alpha_defaults_are_not_hardwired(rng):
    """The alpha argument reaches the kernel: leaky_relu/elu change with it."""
    z = -np.abs(rng.standard_normal((3, 5))) - 0.5
    for act in (A.LEAKY_RELU, A.ELU):
        for alpha in (0.01, 0.3, 1.0, 2.5):
            check(f"activation_forward({act.name}, alpha={alpha})",
                  _core.activation_forward(z, act, alpha), ref.activation_forward(z, act, alpha),
                  np.float64, z.shape)


def test_softmax_rows_sum_to_one(rng):
    z = 10.0 * rng.standard_normal((33, 31))
    for dtype in DTYPES:
        a = _core.activation_forward(as_dtype(z, dtype), A.SOFTMAX, 0.0)
        np.testing.assert_allclose(a.sum(axis=1), 1.0, rtol=TOL[dtype][0],
                                   err_msg=f"softmax row sums [{name(dtype)}, shape (33, 31)]")


# -------------------------------------------------------------------------------- dense layer


@pytest.mark.parametrize("dtype", DTYPES, ids=name)
@pytest.mark.parametrize("act", ACTS, ids=act_id)
@pytest.mark.parametrize("n,i,o", MKN)
def test_dense_forward(rng, n, i, o, act, dtype):
    x = as_dtype(rng.standard_normal((n, i)), dtype)
    w = as_dtype(rng.standard_normal((i, o)) / np.sqrt(i), dtype)
    b = as_dtype(rng.standard_normal(o), dtype)
    z, a = _core.dense_forward(x, w, b, act, alpha_of(act))
    z_ref, a_ref = ref.dense_forward(x, w, b, act, alpha_of(act))
    bound = (np.abs(ref.f64(x)) @ np.abs(ref.f64(w)) + np.abs(ref.f64(b))).max()
    check(f"dense_forward({act.name}) z", z, z_ref, dtype, (n, i, o), scale=bound)
    # a = act(z) of the kernel's own z, so the check isolates the fused write-out
    check(f"dense_forward({act.name}) a", a, ref.activation_forward(z, act, alpha_of(act)), dtype,
          (n, i, o))
    # and against the float64 pipeline, loosely (z's rounding passes through act)
    np.testing.assert_allclose(a, a_ref, rtol=10 * TOL[dtype][0],
                               atol=10 * TOL[dtype][1] * max(1.0, bound),
                               err_msg=f"dense_forward({act.name}) a vs float64 "
                                       f"[{name(dtype)}, shape {(n, i, o)}]")


@pytest.mark.parametrize("dtype", DTYPES, ids=name)
@pytest.mark.parametrize("need_dx", [True, False], ids=["dx", "no_dx"])
@pytest.mark.parametrize("g_is_dz", [False, True], ids=["g=da", "g=dz"])
@pytest.mark.parametrize("act", ACTS, ids=act_id)
@pytest.mark.parametrize("n,i,o", MKN)
def test_dense_backward(rng, n, i, o, act, g_is_dz, need_dx, dtype):
    x = as_dtype(rng.standard_normal((n, i)), dtype)
    w = as_dtype(rng.standard_normal((i, o)) / np.sqrt(i), dtype)
    b = as_dtype(rng.standard_normal(o), dtype)
    z, a = (as_dtype(t, dtype) for t in ref.dense_forward(x, w, b, act, alpha_of(act)))
    g = as_dtype(rng.standard_normal((n, o)), dtype)
    out = _core.dense_backward(x, w, z, a, g, act, alpha_of(act), g_is_dz, need_dx)
    assert isinstance(out, tuple) and len(out) == 3, "dense_backward returns (dw, db, dx)"
    dw, db, dx = out
    dz = ref.f64(g) if g_is_dz else ref.activation_backward(z, g, act, alpha_of(act))
    dw_ref, db_ref, dx_ref = ref.dense_backward(x, w, z, g, act, alpha_of(act), g_is_dz)
    op = f"dense_backward({act.name}, g_is_dz={g_is_dz}, need_dx={need_dx})"
    shape = (n, i, o)
    check(op + " dw", dw, dw_ref, dtype, shape, scale=(np.abs(ref.f64(x)).T @ np.abs(dz)).max())
    check(op + " db", db, db_ref, dtype, shape, scale=np.abs(dz).sum(axis=0).max())
    if need_dx:
        assert dx is not None, f"{op}: dx is None"
        check(op + " dx", dx, dx_ref, dtype, shape, scale=(np.abs(dz) @ np.abs(ref.f64(w)).T).max())
    else:
        assert dx is None, f"{op}: dx should be None when need_dx is False"


# ------------------------------------------------------------------------------------ losses


LOSS_CASES = [(L.MSE, act) for act in ACTS] + [(loss, act) for loss, act in FUSED.items()]


def loss_backward_or_reject(z, a, y, loss, act, alpha, sw, scale):
    """loss_backward's dz; None for MSE after a softmax output, a pairing the core refuses (softmax
    goes only with categorical cross-entropy, as compile says): this asserts the ValueError."""
    if loss == L.MSE and act == A.SOFTMAX:
        with pytest.raises(ValueError, match="softmax goes only with categorical cross-entropy"):
            _core.loss_backward(z, a, y, loss, act, alpha, sw, scale)
        return None
    return _core.loss_backward(z, a, y, loss, act, alpha, sw, scale)


def loss_case_id(case):
    loss, act = case
    return f"{loss.name.lower()}-{act.name.lower()}"


@pytest.mark.parametrize("dtype", DTYPES, ids=name)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("case", LOSS_CASES, ids=loss_case_id)
@pytest.mark.parametrize("shape", ROWS_COLS, ids=str)
def test_loss_forward_backward(rng, shape, case, weighted, dtype):
    loss, act = case
    alpha = alpha_of(act)
    scale = 0.37 / shape[1]  # an odd scale, so a kernel that ignores it is caught
    z = as_dtype(2.0 * rng.standard_normal(shape), dtype)
    a = as_dtype(ref.activation_forward(z, act, alpha), dtype)
    y = as_dtype(ref.make_targets(rng, loss, shape), dtype)
    sw = as_dtype(rng.uniform(0.1, 3.0, size=shape[0]), dtype) if weighted else None
    op = f"loss_forward({loss.name}, {act.name}, weighted={weighted})"

    got = _core.loss_forward(z, a, y, loss, sw, scale)
    assert isinstance(got, float), f"{op}: returned {type(got).__name__}, not float"
    want = ref.loss_forward(z, a, y, loss, sw, scale)
    w = np.ones(shape[0]) if sw is None else ref.f64(sw)
    mag = scale * (w * np.abs(ref.loss_elements(z, a, y, loss)).sum(axis=1)).sum() / w.sum()
    rtol, atol = TOL[dtype]
    assert abs(got - want) <= rtol * abs(want) + atol * mag, \
        f"{op} [{name(dtype)}, shape {shape}]: got {got!r}, expected {want!r}"

    got_dz = loss_backward_or_reject(z, a, y, loss, act, alpha, sw, scale)
    if got_dz is None:
        return
    check(f"loss_backward({loss.name}, {act.name}, weighted={weighted})", got_dz,
          ref.loss_backward(z, a, y, loss, act, alpha, sw, scale), dtype, shape)


@pytest.mark.parametrize("dtype", DTYPES, ids=name)
def test_loss_unit_weights_equal_no_weights(rng, dtype):
    shape = (17, 7)
    z = as_dtype(rng.standard_normal(shape), dtype)
    for loss, act in LOSS_CASES:
        a = as_dtype(ref.activation_forward(z, act, alpha_of(act)), dtype)
        y = as_dtype(ref.make_targets(rng, loss, shape), dtype)
        ones = np.full(shape[0], 2.5, dtype=dtype)  # any constant weight is the same as none
        l0 = _core.loss_forward(z, a, y, loss, None, 1.0)
        l1 = _core.loss_forward(z, a, y, loss, ones, 1.0)
        assert l1 == pytest.approx(l0, rel=TOL[dtype][0]), f"loss_forward({loss.name}) weights"
        got = loss_backward_or_reject(z, a, y, loss, act, alpha_of(act), ones, 1.0)
        if got is not None:
            check(f"loss_backward({loss.name}, {act.name}, constant weights)", got,
                  _core.loss_backward(z, a, y, loss, act, alpha_of(act), None, 1.0), dtype, shape)


def test_loss_values_by_hand():
    """Tiny cases worked out on paper, so the convention itself is pinned and not only the
    agreement with tests/reference.py."""
    # MSE, 2 samples x 1 output, weights (1, 3): L = (1 * 0.5^2 + 3 * 2^2) / 4 = 12.25 / 4
    z = np.array([[1.5], [-1.0]])
    y = np.array([[1.0], [1.0]])
    sw = np.array([1.0, 3.0])
    assert _core.loss_forward(z, z, y, L.MSE, sw, 1.0) == pytest.approx(12.25 / 4, rel=1e-14)
    # dL/dz = 2 (a - y) w_n / sum w = [2 * 0.5 * 1/4, 2 * -2 * 3/4] = [0.25, -3]
    np.testing.assert_allclose(_core.loss_backward(z, z, y, L.MSE, A.IDENTITY, 0.0, sw, 1.0),
                               [[0.25], [-3.0]], rtol=1e-14)
    # CCE, one sample, logits (0, ln 3): softmax = (1/4, 3/4); y = (0, 1): L = -ln(3/4)
    z = np.array([[0.0, np.log(3.0)]])
    y = np.array([[0.0, 1.0]])
    a = np.array([[0.25, 0.75]])
    assert _core.loss_forward(z, a, y, L.CATEGORICAL_CROSS_ENTROPY, None, 1.0) == \
        pytest.approx(-np.log(0.75), rel=1e-14)
    # dL/dz = a - y = (1/4, -1/4)
    np.testing.assert_allclose(
        _core.loss_backward(z, a, y, L.CATEGORICAL_CROSS_ENTROPY, A.SOFTMAX, 0.0, None, 1.0),
        [[0.25, -0.25]], rtol=1e-14)
    # BCE, z = 0, y = 1: L = ln 2, dL/dz = 1/2 - 1
    z = np.zeros((1, 1))
    y = np.ones((1, 1))
    assert _core.loss_forward(z, z + 0.5, y, L.BINARY_CROSS_ENTROPY, None, 1.0) == \
        pytest.approx(np.log(2.0), rel=1e-14)
    np.testing.assert_allclose(
        _core.loss_backward(z, z + 0.5, y, L.BINARY_CROSS_ENTROPY, A.SIGMOID, 0.0, None, 1.0),
        [[-0.5]], rtol=1e-14)
    # POISSON, z = ln 2, y = 3: L = 2 - 3 ln 2, dL/dz = 2 - 3
    z = np.full((1, 1), np.log(2.0))
    y = np.full((1, 1), 3.0)
    assert _core.loss_forward(z, z, y, L.POISSON, None, 1.0) == \
        pytest.approx(2.0 - 3.0 * np.log(2.0), rel=1e-14)
    np.testing.assert_allclose(_core.loss_backward(z, z, y, L.POISSON, A.IDENTITY, 0.0, None, 1.0),
                               [[-1.0]], rtol=1e-14)


# -------------------------------------------------------------------------------- optimizers

SIZES = [1, 7, 31, 64, 129, 300, 1027]
# The update itself (new - old) is compared, relative to its own size: steps are 1e-4 to 1e-1
# of the values they change, so a tolerance relative to the values would let a wrong step pass.
UPDATE_RTOL = {np.float32: 1e-4, np.float64: 1e-10}


def check_update(op, before, got, want, dtype, shape):
    """Assert the update got - before (from the kernel, in place) matches want - before (float64)
    within UPDATE_RTOL of the update, plus the rounding of the values themselves (4 ulps)."""
    where = f"{op} [{name(dtype)}, shape {shape}]"
    assert isinstance(got, np.ndarray) and got.dtype == np.dtype(dtype), f"{where}: dtype {got.dtype}"
    assert got.shape == before.shape, f"{where}: shape {got.shape}"
    b, g, w = (np.asarray(a, dtype=np.float64) for a in (before, got, want))
    err = np.abs(g - w)
    bound = UPDATE_RTOL[dtype] * np.abs(w - b) + 4 * np.finfo(dtype).eps * (np.abs(b) + np.abs(w))
    bad = np.flatnonzero(err > bound)
    if bad.size:
        i = bad[np.argmax((err / np.abs(w - b).clip(1e-300))[bad])]
        raise AssertionError(f"{where}: the update is off at {bad.size} of {b.size} entries; at "
                             f"{i}: update {g[i] - b[i]!r}, expected {w[i] - b[i]!r}")


@pytest.mark.parametrize("dtype", DTYPES, ids=name)
@pytest.mark.parametrize("lr,momentum,nesterov", [(0.1, 0.0, False), (0.05, 0.9, False),
                                                  (0.05, 0.9, True), (1e-3, 0.5, True)])
@pytest.mark.parametrize("n", SIZES)
def test_sgd_step(rng, n, lr, momentum, nesterov, dtype):
    p = as_dtype(rng.standard_normal(n), dtype)
    g = as_dtype(rng.standard_normal(n), dtype)
    v = as_dtype(0.1 * rng.standard_normal(n), dtype)
    p0, v0 = p.copy(), v.copy()
    p_ref, v_ref = ref.sgd_step(p, g, v, lr, momentum, nesterov)
    assert _core.sgd_step(p, g, v, lr, momentum, nesterov) is None
    op = f"sgd_step(lr={lr}, momentum={momentum}, nesterov={nesterov})"
    check_update(op + " params", p0, p, p_ref, dtype, (n,))
    if momentum == 0 and np.array_equal(v, v0):
        return  # plain gradient descent may leave the (unused) velocity alone
    check_update(op + " velocity", v0, v, v_ref, dtype, (n,))


@pytest.mark.parametrize("dtype", DTYPES, ids=name)
@pytest.mark.parametrize("t", [1, 2, 10, 1000])
@pytest.mark.parametrize("n", SIZES)
def test_adam_step(rng, n, t, dtype):
    lr, b1, b2, eps = 1e-3, 0.9, 0.999, 1e-8
    p = as_dtype(rng.standard_normal(n), dtype)
    g = as_dtype(rng.standard_normal(n), dtype)
    m = as_dtype(0.1 * rng.standard_normal(n) if t > 1 else np.zeros(n), dtype)
    v = as_dtype(0.1 * rng.uniform(size=n) if t > 1 else np.zeros(n), dtype)
    p0, m0, v0 = p.copy(), m.copy(), v.copy()
    p_ref, m_ref, v_ref = ref.adam_step(p, g, m, v, lr, b1, b2, eps, t)
    assert _core.adam_step(p, g, m, v, lr, b1, b2, eps, t) is None
    op = f"adam_step(t={t})"
    check_update(op + " params", p0, p, p_ref, dtype, (n,))
    check_update(op + " m", m0, m, m_ref, dtype, (n,))
    check_update(op + " v", v0, v, v_ref, dtype, (n,))


def test_adam_other_hyperparameters(rng):
    n = 33
    p, g = rng.standard_normal(n), rng.standard_normal(n)
    m, v = 0.1 * rng.standard_normal(n), rng.uniform(size=n)
    before = [p.copy(), m.copy(), v.copy()]
    p_ref, m_ref, v_ref = ref.adam_step(p, g, m, v, 0.02, 0.5, 0.9, 1e-3, 3)
    _core.adam_step(p, g, m, v, 0.02, 0.5, 0.9, 1e-3, 3)
    for what, old, got, want in zip(("params", "m", "v"), before, (p, m, v), (p_ref, m_ref, v_ref)):
        check_update(f"adam_step(beta1=0.5, beta2=0.9, eps=1e-3) {what}", old, got, want, np.float64, (n,))


# ---------------------------------------------------------------------- range: |z| up to 1e30

Z_EXTREME = np.array([-1e30, -1e20, -1e10, -1e3, -88.0, -20.0, -1.0, -1e-30,
                      1e-30, 1.0, 20.0, 88.0, 1e3, 1e10, 1e20, 1e30])
Z_SOFTMAX = np.array([[1e30, -1e30, 0.0, 5.0],
                      [-1e30, -1e30, -1e30, -1e30],
                      [1e30, 1e30, -1.0, 1e29],
                      [-1e30, 3.0, -1e20, 2.0],
                      [1e30, 1e30, 1e30, 1e30]])


def check_extreme(op, got, want, dtype):
    """Close to the float64 value where that is representable in dtype; where it is not, the
    matching infinity or a saturated value of the same sign (beyond sqrt(dtype max)); NaN never."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    where = f"{op} [{name(dtype)}, |z| up to 1e30]"
    assert not np.isnan(got).any(), f"{where}: NaN at {np.argwhere(np.isnan(got)).tolist()}"
    big = ~(np.abs(want) <= np.finfo(dtype).max)
    rtol, atol = TOL[dtype]
    if big.any():
        # the dtype overflows: an infinity, a clamped exp, or the value itself if computed wider
        ok = (np.sign(got[big]) == np.sign(want[big])) & \
            (np.abs(got[big]) >= np.sqrt(np.finfo(dtype).max))
        assert ok.all(), f"{where}: expected {want[big]} (or saturated), got {got[big]}"
    np.testing.assert_allclose(got[~big], want[~big], rtol=rtol, atol=atol, err_msg=where)


def extreme_z(act):
    if act == A.SOFTMAX:
        return Z_SOFTMAX
    return np.vstack([Z_EXTREME, Z_EXTREME[::-1]])


@pytest.mark.parametrize("dtype", DTYPES, ids=name)
@pytest.mark.parametrize("act", ACTS, ids=act_id)
def test_activation_extreme_inputs(act, dtype):
    z = as_dtype(extreme_z(act), dtype)
    alpha = alpha_of(act)
    a = _core.activation_forward(z, act, alpha)
    check_extreme(f"activation_forward({act.name})", a, ref.activation_forward(z, act, alpha),
                  dtype)
    assert np.isfinite(a).all(), f"activation_forward({act.name}) [{name(dtype)}]: {a}"
    a = as_dtype(ref.activation_forward(z, act, alpha), dtype)
    da = np.ones_like(z)
    if act == A.SOFTMAX:  # ones would give a zero Jacobian-vector product
        da = as_dtype(np.arange(z.size).reshape(z.shape), dtype)
    dz = _core.activation_backward(z, a, da, act, alpha)
    check_extreme(f"activation_backward({act.name})", dz,
                  ref.activation_backward(z, da, act, alpha), dtype)
    assert np.isfinite(dz).all(), f"activation_backward({act.name}) [{name(dtype)}]: {dz}"


ELEMENTWISE = [act for act in ACTS if act != A.SOFTMAX]
# Activations added after the first eight, checked more closely below.
NEWER = [A.SELU, A.MISH, A.GELU, A.GELU_TANH]


def tiny_z(dtype):
    """0, +-denormals, +-the smallest normal, +-1e-30 and +-1e-10, and +-1e4."""
    info = np.finfo(dtype)
    denormal = 1e-40 if dtype == np.float32 else 1e-310
    mags = np.array([denormal, 1e3 * denormal, info.tiny, 1e-30, 1e-10, 1e4])
    return as_dtype(np.concatenate([[0.0], mags, -mags]).reshape(1, -1), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=name)
@pytest.mark.parametrize("act", ELEMENTWISE, ids=act_id)
def test_activation_zero_denormal_and_moderate_inputs(act, dtype):
    """At 0, denormals, tiny normals and +-1e4: forward and derivative finite and close to the
    reference, the forward in relative terms (f(z) ~ f'(0) z near 0 must not flush to 0 or
    keep the wrong slope; the absolute tolerance of check_extreme would not see that)."""
    z = tiny_z(dtype)
    alpha = alpha_of(act)
    where = f"{act.name} [{name(dtype)}] at {z.ravel().tolist()}"
    a = _core.activation_forward(z, act, alpha)
    want = ref.activation_forward(z, act, alpha)
    assert np.isfinite(a).all(), f"forward not finite: {where}: {a}"
    # a denormal float32 keeps ~17 bits: 1e-40 is 1.4e-5 relative apart from its neighbours
    rtol = 1e-3 if dtype == np.float32 else 1e-9
    small = np.abs(z) < 1
    np.testing.assert_allclose(a[small], want[small], rtol=rtol, atol=0,
                               err_msg=f"forward: {where}")
    check_extreme(f"activation_forward({act.name}) at +-1e4", a[~small], want[~small], dtype)
    dz = _core.activation_backward(z, as_dtype(want, dtype), np.ones_like(z), act, alpha)
    assert np.isfinite(dz).all(), f"derivative not finite: {where}: {dz}"
    np.testing.assert_allclose(dz, ref.activation_derivative(z, act, alpha), rtol=TOL[dtype][0],
                               atol=TOL[dtype][1], err_msg=f"derivative: {where}")


def whole_range(dtype):
    """+-z from below the denormals' top to 1e38 (float32) or 1e300 (float64), dense enough to
    fall on every branch point of the functors, and 0."""
    lo, hi = (-44, 38) if dtype == np.float32 else (-320, 300)
    mags = np.concatenate([np.logspace(lo, hi, 4001), np.linspace(0.01, 100.0, 10000)])
    return as_dtype(np.concatenate([[0.0], mags, -mags]).reshape(1, -1), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=name)
@pytest.mark.parametrize("act", NEWER, ids=act_id)
def test_newer_activations_over_the_whole_range(act, dtype):
    z = whole_range(dtype)
    a = _core.activation_forward(z, act, 0.0)
    check_extreme(f"activation_forward({act.name})", a, ref.activation_forward(z, act), dtype)
    assert np.isfinite(a).all(), f"activation_forward({act.name}) [{name(dtype)}] not finite"
    dz = _core.activation_backward(z, as_dtype(ref.activation_forward(z, act), dtype),
                                   np.ones_like(z), act, 0.0)
    check_extreme(f"activation_backward({act.name})", dz, ref.activation_derivative(z, act),
                  dtype)
    assert np.isfinite(dz).all(), f"activation_backward({act.name}) [{name(dtype)}] not finite"


# Where each newer activation's negative tail is still a normal number of the dtype: (lowest z).
TAIL = {np.float32: {A.SELU: -20.0, A.MISH: -80.0, A.GELU: -12.0, A.GELU_TANH: -9.0},
        np.float64: {A.SELU: -40.0, A.MISH: -700.0, A.GELU: -37.0, A.GELU_TANH: -20.0}}


def derivative_scale(z, act):
    """The size of the terms that make up the derivative, sum |term|: its value can be no more
    precise than that (gelu' = Phi(z) + z phi(z) crosses 0 near z = -0.75 by cancellation).
    selu's derivative comes from a, as scale * alpha + a, so its precision is that of
    scale * alpha."""
    z = ref.f64(z)
    if act == A.SELU:
        return np.full_like(z, ref.SELU_SCALE * ref.SELU_ALPHA)
    if act == A.MISH:
        sp = ref.softplus(z)
        return ref.tanh_softplus(z) + np.abs(z) * ref.sigmoid(z) / np.cosh(sp) ** 2
    if act == A.GELU:
        return ref.normal_cdf(z) + np.abs(z) * ref.normal_pdf(z)
    u, du = ref.gelu_tanh_inner(z)
    return ref.sigmoid(2.0 * u) + 0.5 * np.abs(z) * du / np.cosh(u) ** 2


@pytest.mark.parametrize("dtype", DTYPES, ids=name)
@pytest.mark.parametrize("act", NEWER, ids=act_id)
def test_newer_activations_negative_tail_relative_precision(act, dtype):
    """In the negative tail, where gelu is ~1e-32 and mish ~1e-33 in float32, the values still
    match the reference in relative terms (no absolute floor), and the slopes relative to the
    size of the terms they are summed from."""
    z = as_dtype(np.linspace(TAIL[dtype][act], -0.05, 2000).reshape(1, -1), dtype)
    rtol = 2e-5 if dtype == np.float32 else 1e-10
    where = f"{act.name} [{name(dtype)}], z in [{TAIL[dtype][act]}, -0.05]"
    a = _core.activation_forward(z, act, 0.0)
    np.testing.assert_allclose(a, ref.activation_forward(z, act), rtol=rtol, atol=0,
                               err_msg=f"forward: {where}")
    dz = _core.activation_backward(z, a, np.ones_like(z), act, 0.0)
    err = np.abs(dz - ref.activation_derivative(z, act))
    bound = rtol * derivative_scale(z, act)
    bad = np.argwhere(err > bound)[:, 1]
    assert bad.size == 0, (f"derivative: {where}: at z = {z[0, bad[:5]].tolist()} error "
                           f"{err[0, bad[:5]].tolist()} > {bound[0, bad[:5]].tolist()}")


@pytest.mark.parametrize("dtype", DTYPES, ids=name)
def test_newer_activations_values_by_hand(dtype):
    """A few values worked out independently of tests/reference.py."""
    z = as_dtype([[-1.0, 0.0, 1.0, 2.0]], dtype)
    rtol = 1e-6 if dtype == np.float32 else 1e-12
    cases = {
        # selu(-1) = scale * alpha * (e^-1 - 1), selu(1) = scale, selu(2) = 2 scale
        A.SELU: [1.0507009873554805 * 1.6732632423543772 * (np.exp(-1.0) - 1.0), 0.0,
                 1.0507009873554805, 2.1014019747109610],
        # mish(1) = tanh(log(1 + e)), mish(-1) = -tanh(log(1 + 1/e)), mish(2) = 2 tanh(log(1 + e^2))
        A.MISH: [-0.30340146137410895, 0.0, 0.8650983882673103, 1.9439589595339946],
        # Phi(1) = 0.841344746068543, Phi(2) = 0.977249868051821
        A.GELU: [-0.15865525393145707, 0.0, 0.8413447460685429, 1.9544997361036416],
        A.GELU_TANH: [-0.15880800939172324, 0.0, 0.8411919906082768, 1.954597694087775],
    }
    for act, want in cases.items():
        np.testing.assert_allclose(_core.activation_forward(z, act, 0.0)[0], want, rtol=rtol,
                                   atol=1e-300, err_msg=f"{act.name} [{name(dtype)}]")
    # slopes at 0: selu's from the left (z <= 0) is scale * alpha; mish 0.6; both gelus 0.5
    zero = as_dtype([[0.0]], dtype)
    for act, want in ((A.SELU, 1.0507009873554805 * 1.6732632423543772), (A.MISH, 0.6),
                      (A.GELU, 0.5), (A.GELU_TANH, 0.5)):
        a = _core.activation_forward(zero, act, 0.0)
        got = _core.activation_backward(zero, a, np.ones_like(zero), act, 0.0)[0, 0]
        assert got == pytest.approx(want, rel=rtol), f"{act.name}'(0) [{name(dtype)}]"


@pytest.mark.parametrize("dtype", DTYPES, ids=name)
@pytest.mark.parametrize("act", ACTS, ids=act_id)
def test_activation_non_finite_inputs_stay_in_their_rows(act, dtype):
    # NaN and inf are refused at the public API, but the kernels must still treat them without
    # undefined behaviour (scripts/sanitize.sh found a signed shift in the fast exp for NaN), and
    # a non-finite row must not spill into the finite rows beside it.
    z = as_dtype(np.array([[0.5, -1.0, 2.0], [np.nan, 1.0, -2.0], [np.inf, -np.inf, 0.0],
                           [-0.25, 0.75, 1.5]]), dtype)
    alpha = alpha_of(act)
    a = _core.activation_forward(z, act, alpha)
    dz = _core.activation_backward(z, a, np.ones_like(z), act, alpha)
    finite_rows = [0, 3]
    check(f"activation_forward({act.name})", a[finite_rows],
          ref.activation_forward(z[finite_rows], act, alpha), dtype, z.shape)
    assert np.isfinite(dz[finite_rows]).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=name)
@pytest.mark.parametrize("case", LOSS_CASES, ids=loss_case_id)
def test_loss_extreme_inputs(rng, case, dtype):
    loss, act = case
    alpha = alpha_of(act)
    z = as_dtype(extreme_z(act) if loss != L.CATEGORICAL_CROSS_ENTROPY else Z_SOFTMAX, dtype)
    a = as_dtype(ref.activation_forward(z, act, alpha), dtype)
    y = as_dtype(ref.make_targets(rng, loss, z.shape), dtype)
    for sw in (None, as_dtype(rng.uniform(0.5, 2.0, size=len(z)), dtype)):
        got = _core.loss_forward(z, a, y, loss, sw, 0.5)
        want = ref.loss_forward(z, a, y, loss, sw, 0.5)
        check_extreme(f"loss_forward({loss.name}, {act.name})", [got], [want], dtype)
        got = loss_backward_or_reject(z, a, y, loss, act, alpha, sw, 0.5)
        if got is None:
            continue
        want = ref.loss_backward(z, a, y, loss, act, alpha, sw, 0.5)
        check_extreme(f"loss_backward({loss.name}, {act.name})", got, want, dtype)
        if loss in (L.CATEGORICAL_CROSS_ENTROPY, L.BINARY_CROSS_ENTROPY):
            # the stable, fused losses are finite however large the logits
            assert np.isfinite(got).all(), f"loss_backward({loss.name}) [{name(dtype)}]: {got}"


@pytest.mark.parametrize("dtype", DTYPES, ids=name)
def test_dense_extreme_inputs(dtype):
    """Logits of 1e30 through the fused write-out: every activation finite."""
    x = as_dtype(np.array([[1.0], [-1.0], [0.5]]), dtype)
    w = as_dtype(np.array([[1e30, -1e30, 1.0]]), dtype)
    b = as_dtype(np.zeros(3), dtype)
    for act in ACTS:
        z, a = _core.dense_forward(x, w, b, act, alpha_of(act))
        assert np.isfinite(a).all(), f"dense_forward({act.name}) [{name(dtype)}]: {a}"
        g = np.ones_like(a)
        dw, db, dx = _core.dense_backward(x, w, z, a, g, act, alpha_of(act), False, True)
        for what, t in (("dw", dw), ("db", db), ("dx", dx)):
            assert not np.isnan(t).any(), f"dense_backward({act.name}) {what} [{name(dtype)}]: {t}"


# --------------------------------------------------------------------------- bad arguments


def _bad_calls():
    f4, f8 = np.float32, np.float64
    x = np.ones((4, 3), f4)
    w = np.ones((3, 2), f4)
    b = np.ones(2, f4)
    z = np.ones((4, 2), f4)
    y = np.ones((4, 2), f4)
    sw = np.ones(4, f4)
    p = np.ones(10, f4)
    wide = np.ones((4, 6), f4)
    readonly = np.ones(10, f4)
    readonly.flags.writeable = False
    I, R = A.IDENTITY, A.RELU
    g = _core
    return {
        # gemm
        "gemm dtype mix": lambda: g.gemm(x, w.astype(f8)),
        "gemm int": lambda: g.gemm(x.astype(np.int32), w.astype(np.int32)),
        "gemm float16": lambda: g.gemm(x.astype(np.float16), w.astype(np.float16)),
        "gemm non-contiguous": lambda: g.gemm(wide[:, ::2], w),
        "gemm fortran order": lambda: g.gemm(np.asfortranarray(x), w),
        "gemm 1-D": lambda: g.gemm(x[0], w),
        "gemm 3-D": lambda: g.gemm(x[None], w),
        "gemm inner mismatch": lambda: g.gemm(x, z),
        "gemm inner mismatch trans_a": lambda: g.gemm(x, w, True, False),
        "gemm inner mismatch trans_b": lambda: g.gemm(x, w, False, True),
        "gemm None": lambda: g.gemm(None, w),
        # activations
        "activation_forward 1-D": lambda: g.activation_forward(b, R, 0.0),
        "activation_forward int": lambda: g.activation_forward(z.astype(np.int64), R, 0.0),
        "activation_forward non-contiguous": lambda: g.activation_forward(wide[:, ::3], R, 0.0),
        "activation_forward unknown activation": lambda: g.activation_forward(z, 99, 0.0),
        "activation_backward a shape": lambda: g.activation_backward(z, x, z, R, 0.0),
        "activation_backward da shape": lambda: g.activation_backward(z, z, x, R, 0.0),
        "activation_backward dtype mix": lambda: g.activation_backward(z, z, z.astype(f8), R, 0.0),
        # dense
        "dense_forward w rows": lambda: g.dense_forward(x, np.ones((4, 2), f4), b, I, 0.0),
        "dense_forward b length": lambda: g.dense_forward(x, w, np.ones(3, f4), I, 0.0),
        "dense_forward b 2-D": lambda: g.dense_forward(x, w, b[None], I, 0.0),
        "dense_forward dtype mix": lambda: g.dense_forward(x, w, b.astype(f8), I, 0.0),
        "dense_forward non-contiguous x": lambda: g.dense_forward(wide[:, ::2], w, b, I, 0.0),
        "dense_backward g shape": lambda: g.dense_backward(x, w, z, z, x, R, 0.0, False, True),
        "dense_backward z shape": lambda: g.dense_backward(x, w, x, z, z, R, 0.0, False, True),
        "dense_backward a shape": lambda: g.dense_backward(x, w, z, x, z, R, 0.0, False, True),
        "dense_backward w shape": lambda: g.dense_backward(x, w.T.copy(), z, z, z, R, 0.0, True,
                                                           True),
        "dense_backward x rows": lambda: g.dense_backward(x[:3], w, z, z, z, R, 0.0, True, True),
        "dense_backward dtype mix": lambda: g.dense_backward(x.astype(f8), w, z, z, z, R, 0.0, True,
                                                             False),
        # losses
        "loss_forward y shape": lambda: g.loss_forward(z, z, x, L.MSE, None, 1.0),
        "loss_forward a shape": lambda: g.loss_forward(z, x, y, L.MSE, None, 1.0),
        "loss_forward sample_weight length": lambda: g.loss_forward(z, z, y, L.MSE, sw[:3], 1.0),
        "loss_forward sample_weight 2-D": lambda: g.loss_forward(z, z, y, L.MSE, z, 1.0),
        "loss_forward sample_weight dtype": lambda: g.loss_forward(z, z, y, L.MSE, sw.astype(f8),
                                                                   1.0),
        "loss_forward dtype mix": lambda: g.loss_forward(z, z, y.astype(f8), L.MSE, None, 1.0),
        "loss_forward unknown loss": lambda: g.loss_forward(z, z, y, 42, None, 1.0),
        "loss_backward y shape": lambda: g.loss_backward(z, z, x, L.MSE, I, 0.0, None, 1.0),
        "loss_backward sample_weight length": lambda: g.loss_backward(z, z, y, L.MSE, I, 0.0,
                                                                      np.ones(5, f4), 1.0),
        "loss_backward non-contiguous y": lambda: g.loss_backward(z, z, wide[:, ::3], L.MSE, I, 0.0,
                                                                  None, 1.0),
        # optimizers
        "sgd_step grads length": lambda: g.sgd_step(p, p[:9].copy(), p.copy(), 0.1, 0.0, False),
        "sgd_step velocity length": lambda: g.sgd_step(p, p.copy(), np.ones(11, f4), 0.1, 0.0,
                                                       False),
        "sgd_step dtype mix": lambda: g.sgd_step(p, p.astype(f8), p.copy(), 0.1, 0.0, False),
        "sgd_step 2-D": lambda: g.sgd_step(z, z.copy(), z.copy(), 0.1, 0.0, False),
        "sgd_step non-contiguous": lambda: g.sgd_step(np.ones(20, f4)[::2], p, p.copy(), 0.1, 0.0,
                                                      False),
        "sgd_step read-only params": lambda: g.sgd_step(readonly, p, p.copy(), 0.1, 0.0, False),
        "adam_step m length": lambda: g.adam_step(p, p, np.ones(9, f4), p.copy(), 1e-3, 0.9, 0.999,
                                                  1e-8, 1),
        "adam_step v length": lambda: g.adam_step(p, p, p.copy(), np.ones(11, f4), 1e-3, 0.9, 0.999,
                                                  1e-8, 1),
        "adam_step dtype mix": lambda: g.adam_step(p, p, p.astype(f8), p.copy(), 1e-3, 0.9, 0.999,
                                                   1e-8, 1),
        "adam_step int": lambda: g.adam_step(*(np.ones(10, np.int32) for _ in range(4)), 1e-3, 0.9,
                                             0.999, 1e-8, 1),
    }


BAD_CALLS = sorted(_bad_calls())


@pytest.mark.parametrize("case", BAD_CALLS)
def test_bad_arguments_raise(case):
    with pytest.raises((ValueError, TypeError)):
        _bad_calls()[case]()


@pytest.mark.parametrize("dtype", DTYPES, ids=name)
def test_empty_inputs_do_not_crash(dtype):
    """Zero-size arrays either work (with the right shape) or raise ValueError; never crash."""
    e = np.zeros((0, 3), dtype)
    w = np.ones((3, 2), dtype)
    b = np.ones(2, dtype)
    for what, call, shape in (
        ("gemm", lambda: _core.gemm(e, w), (0, 2)),
        ("gemm K=0", lambda: _core.gemm(np.zeros((2, 0), dtype), np.zeros((0, 3), dtype)), (2, 3)),
        ("activation_forward", lambda: _core.activation_forward(np.zeros((0, 4), dtype),
                                                                A.SOFTMAX, 0.0), (0, 4)),
        ("dense_forward", lambda: _core.dense_forward(e, w, b, A.RELU, 0.0)[1], (0, 2)),
    ):
        try:
            out = call()
        except ValueError:
            continue
        assert out.shape == shape, f"{what} on empty input [{name(dtype)}]: shape {out.shape}"
        if what == "gemm K=0":
            assert (out == 0).all(), f"{what}: an empty sum is 0, got {out}"


def test_read_only_inputs_are_accepted(rng):
    """Kernels only read their inputs; a read-only array is fine (only in-place targets must be
    writable)."""
    x, w, b = rng.standard_normal((5, 3)), rng.standard_normal((3, 2)), rng.standard_normal(2)
    for a in (x, w, b):
        a.flags.writeable = False
    check("gemm(read-only)", _core.gemm(x, w), ref.gemm(x, w), np.float64, (5, 3, 2))
    z, a = _core.dense_forward(x, w, b, A.TANH, 0.0)
    check("dense_forward(read-only) z", z, ref.dense_forward(x, w, b, A.TANH)[0], np.float64,
          (5, 3, 2))
    p, v = np.zeros(4), np.zeros(4)
    g = np.ones(4)
    g.flags.writeable = False
    _core.sgd_step(p, g, v, 0.5, 0.0, False)
    check("sgd_step(read-only grads)", p, -0.5 * np.ones(4), np.float64, (4,))
