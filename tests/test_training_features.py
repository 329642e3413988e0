"""The training features of the core against float64 references (tests/reference_features.py):
dropout masks and their fused forward/backward, embeddings (gather and scatter-add), label
smoothing, AdamW's decoupled decay, global-norm clipping and the per-step schedules; the whole
network gradient-checked with dropout masks fixed; bit-identity at 1 and 2 threads."""
from __future__ import annotations

import math

import numpy as np
import pytest

import reference as ref
import reference_features as rf
import mlp
from mlp import _core, schedules

A = _core.ActivationKind
L = _core.LossKind
O = _core.OptimizerKind

HIDDEN = [a for a in A.__members__.values() if a != A.SOFTMAX]
OUTPUTS = [(L.MSE, A.IDENTITY), (L.CATEGORICAL_CROSS_ENTROPY, A.SOFTMAX),
           (L.BINARY_CROSS_ENTROPY, A.SIGMOID), (L.POISSON, A.IDENTITY)]
ALPHA = {A.LEAKY_RELU: 0.1, A.ELU: 0.7}


def build(fnet: rf.FeatureNet, dtype="float64", params=None, seed=0):
    spec = fnet.net
    net = _core.Network(spec.sizes, [A(a) for a in spec.activations], spec.alphas, L(spec.loss),
                        spec.scale, dtype, [list(e) for e in fnet.embeddings],
                        fnet.n_inputs if fnet.embeddings else 0, fnet.k)
    if any(fnet.dropout):
        net.set_dropout(fnet.dropout)
    if fnet.label_smoothing:
        net.set_label_smoothing(fnet.label_smoothing)
    if params is None:
        r = np.random.default_rng(seed)
        params = r.standard_normal(fnet.n_params) * 0.4
    net.params[:] = params
    net.set_seed(seed)
    return net, np.array(params, dtype=np.float64)


def problem(hidden, loss, out_act, *, embeddings=True, dropout=0.3, ls=0.0, n=11, seed=0,
            ensemble=1):
    """5 raw columns (column 0 and 3 coded when `embeddings`) -> 7 -> 6 -> 3."""
    emb = [(0, 4, 3), (3, 5, 2)] if embeddings else []
    first = 5 - len(emb) + sum(w for _, _, w in emb)
    a = ALPHA.get(hidden, 0.0)
    fnet = rf.FeatureNet(5, [first, 7, 6, 3], [hidden, hidden, out_act], [a, a, 0.0], loss, 0.4,
                         emb, [dropout, dropout / 2, 0.0], ls, ensemble)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 5))
    for c, rows, _ in emb:
        x[:, c] = rng.integers(0, rows, n)
    y = ref.make_targets(rng, loss, (n, 3))
    return fnet, x, y


# ---- the mask generator ------------------------------------------------------------------------
def test_mask_reference_matches_the_core_bits():
    """The masks read through a 2-layer identity net: the hidden layer (W = I, bias 0) passes x
    through times its mask, and the gradient of the output layer's weights shows h = x * mask."""
    n, units, rate, seed, step = 64, 40, 0.3, 1234567, 5
    fnet = rf.FeatureNet(units, [units, units, 1], [A.IDENTITY, A.IDENTITY], [0.0, 0.0],
                         L.MSE, 1.0, (), [rate, 0.0])
    net, _ = build(fnet)
    params = np.zeros(fnet.n_params)
    params[:units * units] = np.eye(units).ravel()
    params[units * units + units:units * units + units + units] = 1.0  # W1 = ones
    net.params[:] = params
    net.set_seed(seed)
    net.step = step
    x = np.random.default_rng(0).uniform(1.0, 2.0, (n, units))
    y = np.zeros((n, 1))
    # dL/db1 = mean(2 * out) with out = sum of the kept (scaled) inputs: the masks, through the
    # gradient of W1: dL/dW1[u] = mean_n 2 * out_n * h_n[u], h = x * mask.
    _, grad = net.loss_and_grad(x, y, None, training=True)
    mask = rf.dropout_mask(seed, step, 0, range(n), units, rate)
    h = x * mask
    out = h.sum(axis=1)
    expected_dw1 = (2.0 * out[:, None] * h).mean(axis=0)
    w1 = slice(units * units + units, units * units + 2 * units)
    np.testing.assert_allclose(grad[w1], expected_dw1, rtol=1e-12)
    # The fraction dropped is the rate, and every seed/step/row gives another pattern.
    big = rf.dropout_mask(seed, step, 0, range(2000), 128, rate)
    assert abs((big == 0).mean() - rate) < 0.01
    other = rf.dropout_mask(seed, step + 1, 0, range(2000), 128, rate)
    assert 0.3 < ((big == 0) != (other == 0)).mean() < 0.5


@pytest.mark.parametrize("training", [True, False])
def test_dropout_acts_in_training_only(training):
    fnet, x, y = problem(A.TANH, L.MSE, A.IDENTITY)
    net, params = build(fnet)
    value = net.loss_and_grad(x, y, None, training=training)[0]
    ref_value = fnet.loss_and_grad(params, x, y, seed=0, step=0, training=training)[0]
    assert value == pytest.approx(ref_value, rel=1e-12)
    np.testing.assert_allclose(net.predict(x), fnet.predict(params, x), rtol=1e-12)
    assert net.loss(x, y, None) == pytest.approx(
        fnet.loss_and_grad(params, x, y, training=False)[0], rel=1e-12)


# ---- the whole network against the reference and central differences --------------------------
def numeric_grad(net, x, y, eps=1e-6):
    p = net.params
    grad = np.empty(len(p))
    for j in range(len(p)):
        old = p[j]
        p[j] = old + eps
        up = net.loss_and_grad(x, y, None, training=True)[0]
        p[j] = old - eps
        down = net.loss_and_grad(x, y, None, training=True)[0]
        p[j] = old
        grad[j] = (up - down) / (2 * eps)
    return grad


@pytest.mark.parametrize("output", OUTPUTS, ids=[f"{lo.name.lower()}" for lo, _ in OUTPUTS])
@pytest.mark.parametrize("hidden", HIDDEN, ids=[a.name.lower() for a in HIDDEN])
def test_gradient_with_dropout_and_embeddings(hidden, output):
    """Masks fixed (the step does not move): analytic gradient = reference backprop = central
    differences, tables included; label smoothing on the cross-entropies."""
    loss, out_act = output
    ls = 0.1 if loss in (L.CATEGORICAL_CROSS_ENTROPY, L.BINARY_CROSS_ENTROPY) else 0.0
    fnet, x, y = problem(hidden, loss, out_act, ls=ls)
    net, params = build(fnet, seed=3)
    net.step = 7
    where = f"{hidden.name} hidden, {loss.name}"
    value, grad = net.loss_and_grad(x, y, None, training=True)
    ref_value, ref_grad = fnet.loss_and_grad(params, x, y, seed=3, step=7)
    assert value == pytest.approx(ref_value, rel=1e-10), where
    scale = max(1.0, np.abs(ref_grad).max())
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-9, atol=1e-12 * scale, err_msg=where)
    if hidden in (A.RELU, A.LEAKY_RELU, A.ELU, A.SELU):
        return  # kinks: the reference comparison above is exact; differences may straddle one
    num = numeric_grad(net, x, y)
    np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-7 * scale, err_msg=where)


def test_label_smoothing_loss_value():
    """Smoothed cross-entropy: -(1/N) sum y_s log softmax, y_s = y (1 - ls) + ls / K."""
    fnet, x, y = problem(A.TANH, L.CATEGORICAL_CROSS_ENTROPY, A.SOFTMAX, embeddings=False,
                         dropout=0.0, ls=0.2)
    fnet.net.scale = 1.0
    net, params = build(fnet)
    logits = ref.network_forward(fnet.net, params, x)[0][-1]
    ys = y * 0.8 + 0.2 / 3
    expected = -(ys * ref.log_softmax(logits)).sum(axis=1).mean()
    assert net.loss(x, y, None) == pytest.approx(expected, rel=1e-12)


def test_embedding_forward_is_a_gather():
    fnet, x, _ = problem(A.RELU, L.MSE, A.IDENTITY, dropout=0.0)
    net, params = build(fnet)
    np.testing.assert_allclose(net.predict(x), fnet.predict(params, x), rtol=1e-12)
    tables = fnet.split(params)[1]
    np.testing.assert_array_equal(net.embedding(0), tables[0])
    np.testing.assert_array_equal(net.embedding(1), tables[1])


def test_the_core_refuses_bad_codes():
    fnet, x, y = problem(A.RELU, L.MSE, A.IDENTITY, dropout=0.0)
    net, _ = build(fnet)
    for bad in (4.0, -1.0, 1.5, np.nan):
        x2 = x.copy()
        x2[2, 0] = bad
        with pytest.raises(ValueError, match="embedded column 0"):
            net.predict(x2)
        with pytest.raises(ValueError, match="embedded column 0"):
            net.train_epoch(x2, y, None, 4, False, 0.1)


# ---- optimizer: AdamW, clipping, schedules ----------------------------------------------------
def _one_layer(seed=0, n=16):
    fnet = rf.FeatureNet(4, [4, 5, 2], [A.TANH, A.IDENTITY], [0.0, 0.0], L.MSE, 0.5)
    net, params = build(fnet, seed=seed)
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((n, 4)), rng.standard_normal((n, 2))
    return fnet, net, params, x, y


def _weight_mask(fnet):
    mask = np.zeros(fnet.n_params)
    for w0, b0, _ in fnet.net.offsets():
        mask[w0:b0] = 1.0
    return mask


@pytest.mark.parametrize("decay_bias", [False, True])
def test_adamw_steps_match_the_reference(decay_bias):
    fnet, net, params, x, y = _one_layer()
    lr, wd = 0.05, 0.3
    net.set_optimizer(O.ADAM, weight_decay=wd, decay_bias=decay_bias)
    p, m, v = params.copy(), np.zeros_like(params), np.zeros_like(params)
    mask = None if decay_bias else _weight_mask(fnet)
    for t in range(1, 4):
        _, g = fnet.loss_and_grad(p, x, y, training=False)
        p, m, v = rf.adam_step(p, g, m, v, t, lr, decay=lr * wd, decay_mask=mask)
        net.train_epoch(x, y, None, len(x), False, lr)
        np.testing.assert_allclose(net.params, p, rtol=1e-12, atol=1e-14)
    # The decay is what moved the weights beyond plain Adam's step.
    plain, *_ = build(fnet, seed=0)
    plain.set_optimizer(O.ADAM)
    for _ in range(3):
        plain.train_epoch(x, y, None, len(x), False, lr)
    assert np.abs(plain.params - net.params).max() > 1e-3


@pytest.mark.parametrize("clipnorm", [0.05, 1e6])
def test_clipping_by_global_norm(clipnorm):
    """SGD with clipnorm moves every parameter by -lr * g * min(1, c / ||g||); a bound above
    the norm leaves the step exactly as without clipping."""
    fnet, net, params, x, y = _one_layer(n=40)
    net.set_l2(0.2, False)
    net.set_optimizer(O.SGD, clipnorm=clipnorm)
    _, g = fnet.loss_and_grad(params, x, y, training=False)
    factor = rf.clip_factor(g, clipnorm)
    l2 = 0.2 * _weight_mask(fnet) * params  # added after clipping
    # 40 rows in batches of 40: one step; several shards, so the norm sums across them.
    net.train_epoch(x, y, None, 40, False, 0.1)
    np.testing.assert_allclose(net.params, params - 0.1 * (g * factor + l2), rtol=1e-12,
                               atol=1e-14)
    assert (factor < 1.0) == (clipnorm < 1.0)
    if clipnorm > 1e3:
        plain, *_ = build(fnet, seed=0)
        plain.set_l2(0.2, False)
        plain.set_optimizer(O.SGD)
        plain.train_epoch(x, y, None, 40, False, 0.1)
        np.testing.assert_array_equal(plain.params, net.params)


SCHEDULES = [
    schedules.Constant(1.0),
    schedules.LinearWarmup(1.0, 4),
    schedules.CosineDecay(1.0),
    schedules.CosineDecay(1.0, decay_steps=5, alpha=0.2, warmup_steps=3),
    schedules.FlatCosine(1.0, flat_fraction=0.4),
    schedules.CosLog4(1.0),
]


@pytest.mark.parametrize("schedule", SCHEDULES, ids=repr)
def test_schedules_step_by_step(schedule):
    """Full-batch SGD, one step an epoch: each step moves the weights by -lr f(k) g, with f the
    Python (float64) factor, evaluated for a fit of 10 steps."""
    fnet, net, params, x, y = _one_layer()
    net.set_optimizer(O.SGD)
    total = 10
    schedules.configure(net, schedules.SLOT_LEARNING_RATE, schedule, total)
    p = params.copy()
    for k in range(total + 2):  # past the end, the factor stays at its last value
        _, g = fnet.loss_and_grad(p, x, y, training=False)
        p = p - 0.1 * schedule.factor(k, total) * g
        net.train_epoch(x, y, None, len(x), False, 0.1)
        np.testing.assert_allclose(net.params, p, rtol=1e-11, atol=1e-14, err_msg=f"step {k}")


def test_schedule_factors_by_their_definitions():
    assert [schedules.LinearWarmup(2.0, 4)(k, 10) for k in range(5)] == [0.5, 1.0, 1.5, 2.0, 2.0]
    cos = schedules.CosineDecay(1.0, decay_steps=4, alpha=0.5, warmup_steps=2)
    assert [cos.factor(k, 0) for k in range(2)] == [0.5, 1.0]
    for k in range(2, 8):
        assert cos.factor(k, 0) == pytest.approx(rf.cosine((k - 2) / 4, 0.5))
    flat = schedules.FlatCosine(1.0, flat_fraction=0.5, total_steps=10)
    assert [flat.factor(k, 0) for k in range(5)] == [1.0] * 5
    assert flat.factor(5, 0) == 1.0 and flat.factor(9, 0) == pytest.approx(rf.cosine(0.8, 0.0))
    c4 = schedules.CosLog4(1.0)
    for k in (0, 3, 7, 15, 20):
        t = k / 20
        assert c4.factor(k, 20) == pytest.approx(
            0.5 * (1 - math.cos(2 * math.pi * math.log2(1 + 15 * t))), abs=1e-15)
    assert c4.factor(0, 20) == 0.0 and c4.factor(20, 20) == pytest.approx(0.0, abs=1e-12)


def test_weight_decay_and_dropout_follow_their_schedules():
    """Weight decay scheduled: step k decays by lr * wd * f(k). Dropout scheduled to 0: the
    late steps train as without dropout."""
    fnet, net, params, x, y = _one_layer()
    lr, wd, total = 0.05, 0.5, 6
    sched = schedules.CosineDecay(wd)
    net.set_optimizer(O.ADAM, weight_decay=wd)
    schedules.configure(net, schedules.SLOT_WEIGHT_DECAY, sched, total)
    p, m, v = params.copy(), np.zeros_like(params), np.zeros_like(params)
    mask = _weight_mask(fnet)
    for t in range(1, total + 1):
        _, g = fnet.loss_and_grad(p, x, y, training=False)
        p, m, v = rf.adam_step(p, g, m, v, t, lr, decay=lr * wd * sched.factor(t - 1, total),
                               decay_mask=mask)
        net.train_epoch(x, y, None, len(x), False, lr)
    np.testing.assert_allclose(net.params, p, rtol=1e-11, atol=1e-14)

    fnet2, x2, y2 = problem(A.TANH, L.MSE, A.IDENTITY, embeddings=False, dropout=0.5)
    net2, params2 = build(fnet2, seed=1)
    net2.set_optimizer(O.SGD)
    schedules.configure(net2, schedules.SLOT_DROPOUT, schedules.LinearWarmup(1.0, 3), 10)
    # Warmup of the dropout factor: steps 0, 1, 2 use rates 0.5/3, 1/3, 0.5 of layer 0.
    for k, frac in enumerate([1 / 3, 2 / 3, 1.0]):
        fnet2.dropout = [0.5 * frac, 0.25 * frac, 0.0]
        p2 = net2.params.copy()
        _, g = fnet2.loss_and_grad(p2, x2, y2, seed=1, step=k)
        net2.train_epoch(x2, y2, None, len(x2), False, 0.1)
        np.testing.assert_allclose(net2.params, p2 - 0.1 * g, rtol=1e-11, atol=1e-14)


# ---- determinism -------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dropout_and_embeddings_are_bit_identical_at_1_and_2_threads(dtype):
    rng = np.random.default_rng(5)
    n = 600
    fnet = rf.FeatureNet(6, [6 - 2 + 8 + 4, 64, 32, 3], [A.RELU, A.GELU, A.SOFTMAX],
                         [0.0, 0.0, 0.0], L.CATEGORICAL_CROSS_ENTROPY, 1.0,
                         [(1, 30, 8), (4, 7, 4)], [0.3, 0.2, 0.0], 0.1)
    x = rng.standard_normal((n, 6))
    x[:, 1] = rng.integers(0, 30, n)
    x[:, 4] = rng.integers(0, 7, n)
    y = np.eye(3)[rng.integers(0, 3, n)]
    x, y = x.astype(dtype), y.astype(dtype)
    runs = []
    for threads in (1, 2):
        net, _ = build(fnet, dtype, seed=9)
        net.set_threads(threads)
        net.set_optimizer(O.ADAM, weight_decay=0.01, clipnorm=1.0)
        schedules.configure(net, schedules.SLOT_LEARNING_RATE, schedules.CosineDecay(1.0), 40)
        for _ in range(4):
            net.train_epoch(x, y, None, 64, True, 0.01)
        runs.append(net.params.copy())
    np.testing.assert_array_equal(runs[0], runs[1])
    assert np.isfinite(runs[0]).all()


# ---- the spec API ------------------------------------------------------------------------------
def _model(dropout=0.25, seed=0):
    features = mlp.Concatenate([mlp.Embedding(6, 3, column=0, seed=seed),
                                mlp.Embedding(4, 2, column=2, seed=seed + 1)], input_size=4)
    hidden = mlp.Dropout(dropout)(mlp.Dense(16, activation="relu", seed=seed + 2)(features))
    out = mlp.Dense(3, activation="softmax", seed=seed + 3)(hidden)
    return mlp.Model(features, out)


def _data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    x[:, 0] = rng.integers(0, 6, n)
    x[:, 2] = rng.integers(0, 4, n)
    labels = (x[:, 0].astype(int) + (x[:, 1] > 0)) % 3
    return x, np.eye(3, dtype=np.float32)[labels]


def test_model_with_every_feature_learns_saves_and_exports(tmp_path):
    x, y = _data()
    model = _model()
    model.compile(mlp.Loss("categorical_cross_entropy", label_smoothing=0.05),
                  optimizer=mlp.AdamW(weight_decay=schedules.CosineDecay(0.02), clipnorm=5.0),
                  metrics=["accuracy"])
    model.fit(x, y, 30, schedules.CosineDecay(0.02, warmup_steps=20), batch_size=32, seed=1)
    assert model.history["accuracy"][-1] > 0.8
    pred = model.predict(x)
    # The Embedding layers' tables are views of the trained parameters.
    np.testing.assert_array_equal(model.layers[0].embeddings[0].weights, model._net.embedding(0))
    path = tmp_path / "m.mlp"
    model.save(path)
    loaded = mlp.load(path)
    np.testing.assert_array_equal(loaded.predict(x), pred)
    assert loaded.loss.label_smoothing == 0.05
    assert loaded.optimizer.weight_decay == schedules.CosineDecay(0.02)
    assert isinstance(loaded.layers[2], mlp.Dropout) and loaded.layers[2].rate == 0.25
    # Training goes on identically from the file.
    model.fit(x, y, 2, 0.001, seed=4)
    loaded.fit(x, y, 2, 0.001, seed=4)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    import pickle
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict(x), model.predict(x))

    ort = pytest.importorskip("onnxruntime")
    proto = mlp.to_onnx(model)
    sess = ort.InferenceSession(proto.SerializeToString())
    np.testing.assert_allclose(sess.run(None, {"input": x})[0], model.predict(x), atol=1e-6)


def test_model_dropout_masks_follow_the_seed():
    x, y = _data()
    runs = []
    for seed in (1, 1, 2):
        model = _model(dropout=0.5)
        model.compile("categorical_cross_entropy", optimizer="adam")
        model.fit(x, y, 3, 0.01, seed=seed)
        runs.append(model.predict(x))
    np.testing.assert_array_equal(runs[0], runs[1])
    assert np.abs(runs[0] - runs[2]).max() > 1e-4
    # Dropout is inactive in predict and evaluate: two calls agree, and evaluate is the
    # plain loss of predict's output.
    model = _model(dropout=0.5)
    model.compile("categorical_cross_entropy")
    np.testing.assert_array_equal(model.predict(x), model.predict(x))
    p = model.predict(x).astype(np.float64)
    assert model.evaluate(x, y) == pytest.approx(-(y * np.log(p)).sum(axis=1).mean(), rel=1e-5)


def test_model_code_errors_name_the_column():
    x, y = _data()
    model = _model()
    model.compile("categorical_cross_entropy")
    bad = x.copy()
    bad[7, 2] = 4
    with pytest.raises(ValueError, match=r"x\[:, 2\] \(embeddings\[1\]\).*\[0, 4\).*row 7"):
        model.fit(bad, y, 1, 0.1)
    with pytest.raises(ValueError, match=r"x\[:, 2\]"):
        model.predict(bad)
    with pytest.raises(ValueError, match=r"validation_data\[0\]\[:, 2\]"):
        model.fit(x, y, 1, 0.1, validation_data=(bad, y))


@pytest.mark.parametrize("make, exc, match", [
    (lambda: mlp.Dropout(1.0), ValueError, "rate must be in"),
    (lambda: mlp.Dropout(-0.1), ValueError, "rate must be a finite number >= 0"),
    (lambda: mlp.Dropout("half"), TypeError, "rate"),
    (lambda: mlp.Embedding(0, 3), ValueError, "input_dim"),
    (lambda: mlp.Embedding(2 ** 24 + 1, 3), ValueError, "input_dim must be at most"),
    (lambda: mlp.Embedding(5, 3, column=-1), TypeError, "column"),
    (lambda: mlp.Embedding(5, 3)(mlp.Dense(2, input_size=2)), TypeError, "Concatenate"),
    (lambda: mlp.Concatenate([], input_size=3), TypeError, "non-empty list"),
    (lambda: mlp.Concatenate([mlp.Embedding(5, 3, column=3)], input_size=3), ValueError,
     "column 3, outside"),
    (lambda: mlp.Concatenate([mlp.Embedding(5, 3), mlp.Embedding(4, 2)], input_size=3),
     ValueError, "both read column 0"),
    (lambda: mlp.Loss("mse", label_smoothing=0.1), ValueError, "cross-entropies only"),
    (lambda: mlp.AdamW(clipnorm=0), ValueError, "clipnorm"),
    (lambda: mlp.Adam(weight_decay=-1), ValueError, "weight_decay"),
    (lambda: schedules.CosineDecay(0.1, alpha=1.5), ValueError, "alpha"),
    (lambda: schedules.LinearWarmup(0.1, 0), ValueError, "warmup_steps"),
])
def test_bad_settings_are_refused(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_bad_models_are_refused_at_compile():
    last = mlp.Dropout(0.2)(mlp.Dense(2, input_size=3))
    with pytest.raises(ValueError, match="last layer"):
        mlp.Model(last.__dict__["_prev"], last).compile("mse")
    first = mlp.Dropout(0.2)
    first.input_size = 3
    with pytest.raises(ValueError, match="native network only"):
        mlp.Model(first, mlp.Dense(1)(first)).compile("mse")
    before_out = mlp.Dense(2, input_size=3)
    out = mlp.Dropout(0.1)(mlp.Dense(1)(before_out))
    with pytest.raises(ValueError, match="last layer"):
        mlp.Model(before_out, out).compile("mse")
    a = mlp.Dense(4, input_size=3, activation="relu")
    d1 = mlp.Dropout(schedules.CosineDecay(0.2))(a)
    b = mlp.Dropout(0.1)(mlp.Dense(4, activation="relu")(d1))
    with pytest.raises(ValueError, match="schedules of one shape"):
        mlp.Model(a, mlp.Dense(1)(b)).compile("mse")

    class Mine(schedules.CosineDecay):
        pass

    model = mlp.Model(a, mlp.Dense(1)(a))
    model.compile("mse")
    with pytest.raises(TypeError, match="user's own Schedule"):
        model.fit(np.zeros((4, 3)), np.zeros(4), 1, Mine(0.1))


class _PassThrough(mlp.Layer):
    """A user's own layer that changes nothing: its model trains through the Python path."""

    def forward(self, input):
        self.input = self.output = input
        return input

    def backward(self, output_error, learning_rate):
        return output_error


@pytest.mark.parametrize("optimizer", [
    lambda: mlp.AdamW(weight_decay=0.2, clipnorm=0.05),
    lambda: mlp.SGD(momentum=0.9, weight_decay=0.1, decay_bias=True, clipnorm=0.1),
])
def test_python_path_applies_decay_and_clipping_as_the_core(optimizer):
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((20, 3)), rng.standard_normal((20, 2))
    models = []
    for custom in (False, True):
        first = mlp.Dense(6, input_size=3, activation="tanh", seed=1)
        mid = _PassThrough()(first) if custom else first
        models.append(mlp.Model(first, mlp.Dense(2, seed=2)(mid)))
        models[-1].compile("mse", optimizer=optimizer(), dtype="float64")
    assert models[0].native and not models[1].native
    for model in models:
        model.fit(x, y, 3, 0.05, batch_size=20, shuffle=False)
    dense = [[layer for layer in m.layers if isinstance(layer, mlp.Dense)] for m in models]
    for native, python in zip(*dense):
        np.testing.assert_allclose(python.weights, native.weights, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(python.bias, native.bias, rtol=1e-10, atol=1e-13)


# ---- the ensemble (TabM-mini's BatchEnsemble: per-member input adapters, shared layers) --------
@pytest.mark.parametrize("embeddings", [False, True])
@pytest.mark.parametrize("output", OUTPUTS, ids=[f"{lo.name.lower()}" for lo, _ in OUTPUTS])
def test_ensemble_against_the_reference(output, embeddings):
    loss, out_act = output
    fnet, x, y = problem(A.TANH, loss, out_act, embeddings=embeddings, ensemble=4)
    net, params = build(fnet, seed=5)
    net.step = 3
    value, grad = net.loss_and_grad(x, y, None, training=True)
    ref_value, ref_grad = fnet.loss_and_grad(params, x, y, seed=5, step=3)
    assert value == pytest.approx(ref_value, rel=1e-10)
    scale = max(1.0, np.abs(ref_grad).max())
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-9, atol=1e-12 * scale)
    np.testing.assert_allclose(numeric_grad(net, x, y), grad, rtol=1e-5, atol=1e-7 * scale)
    np.testing.assert_allclose(net.predict(x), fnet.predict(params, x), rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(net.adapters(), params[-4 * fnet.net.sizes[0]:].reshape(4, -1))
    # A few rows and a batch agree bit for bit (1 and 2 threads: the next test).
    full = net.predict(x)
    for i in range(len(x)):
        np.testing.assert_array_equal(net.predict(x[i:i + 1]), full[i:i + 1])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_ensemble_is_bit_identical_at_1_and_2_threads(dtype):
    rng = np.random.default_rng(8)
    n = 500
    fnet = rf.FeatureNet(5, [5 - 1 + 4, 32, 2], [A.RELU, A.SOFTMAX], [0.0, 0.0],
                         L.CATEGORICAL_CROSS_ENTROPY, 1.0, [(2, 9, 4)], [0.2, 0.0], 0.1, 8)
    x = rng.standard_normal((n, 5))
    x[:, 2] = rng.integers(0, 9, n)
    y = np.eye(2)[rng.integers(0, 2, n)]
    x, y = x.astype(dtype), y.astype(dtype)
    runs = []
    for threads in (1, 2):
        net, _ = build(fnet, dtype, seed=2)
        net.set_threads(threads)
        net.set_optimizer(O.ADAM, weight_decay=0.01)
        for _ in range(3):
            net.train_epoch(x, y, None, 64, True, 0.01)
        runs.append((net.params.copy(), net.predict(x)))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


def test_ensemble_refuses_cuda_and_bad_sizes():
    with pytest.raises(ValueError, match="ensemble: expected 1 to 1024"):
        _core.Network([3, 2], [A.IDENTITY], [0.0], L.MSE, 1.0, "float32", [], 0, 0)
    net = _core.Network([3, 2], [A.IDENTITY], [0.0], L.MSE, 1.0, "float32", [], 0, 2)
    assert net.ensemble == 2 and net.n_params == 3 * 2 + 2 + 2 * 3
    with pytest.raises(ValueError, match="CPU only"):
        net.to_device(0)
