"""The training features (dropout, decoupled weight decay, global-norm clipping, label smoothing,
per-step schedules, embeddings) on CUDA against the same fits on the CPU, and two identical CUDA
fits against each other (bit for bit).

Both backends draw the dropout masks from the same counter-based hash of (seed, step, layer, data
row, unit) (csrc/dropout.hpp) and the same batches (epoch_order), so a fit with the same seed sees
the same masks on both: the results differ only by rounding. float64 fits are held to 1e-9, which
no formula that differs from the CPU's would pass; float32 ones to float32 tolerance.
"""
from __future__ import annotations

import numpy as np
import pytest

import mlp
from mlp import _core, schedules

A = _core.ActivationKind
LK = _core.LossKind
O = _core.OptimizerKind

LOSS_RTOL = {"float32": 1e-4, "float64": 1e-9}
# Parameters after whole fits: float32 rounding differences grow a little over the steps.
PARAM_TOL = {"float32": dict(rtol=1e-3, atol=1e-4), "float64": dict(rtol=1e-8, atol=1e-11)}

N, COLUMNS, CODES = 300, 4, {0: 6, 2: 4}  # columns 0 and 2 hold category codes


def dataset(loss="categorical_cross_entropy", n=N, seed=0):
    r = np.random.default_rng(seed)
    x = r.standard_normal((n, COLUMNS))
    for c, rows in CODES.items():
        x[:, c] = r.integers(0, rows, n)
    labels = (x[:, 0].astype(int) + (x[:, 1] > 0) + (x[:, 3] > 0.5)) % 3
    if loss == "categorical_cross_entropy":
        y = np.eye(3)[labels]
    elif loss == "binary_cross_entropy":
        y = (labels[:, None] == 1).astype(float)
    else:
        y = np.stack([labels / 3.0, x[:, 1] * 0.5], axis=1)
    return x, y


# name: settings of build(); every entry turns on one feature (or all of them).
CASES = {
    "dropout": dict(dropout=(0.3, 0.2)),
    "dropout-swish-linear-mse": dict(hidden=(("swish", 20), ("linear", 12)), dropout=(0.25, 0.4), loss="mse"),
    "dropout-elu-sigmoid-bce": dict(hidden=(("elu", 16), ("sigmoid", 10)), dropout=(0.2, 0.1),
                                    loss="binary_cross_entropy"),
    "dropout-schedule": dict(dropout=(schedules.CosineDecay(0.4), schedules.CosineDecay(0.2))),
    "adamw": dict(optimizer=lambda: mlp.AdamW(weight_decay=0.05)),
    "adamw-decay-schedule": dict(optimizer=lambda: mlp.AdamW(weight_decay=schedules.CosineDecay(0.05))),
    "sgd-nesterov-decay-bias": dict(optimizer=lambda: mlp.SGD(momentum=0.9, nesterov=True, weight_decay=0.01,
                                                              decay_bias=True), lr=0.05),
    "clipnorm-adam": dict(optimizer=lambda: mlp.Adam(clipnorm=0.05)),
    "clipnorm-sgd-l2": dict(optimizer=lambda: mlp.SGD(l2=1e-3, clipnorm=0.1), lr=0.5),
    "label-smoothing-cce": dict(label_smoothing=0.1),
    "label-smoothing-bce": dict(loss="binary_cross_entropy", label_smoothing=0.2),
    "lr-cosine-warmup": dict(lr=schedules.CosineDecay(0.02, warmup_steps=5)),
    "lr-flat-cosine": dict(lr=schedules.FlatCosine(0.02, flat_fraction=0.3)),
    "lr-coslog4-sgd": dict(lr=schedules.CosLog4(0.1), optimizer=lambda: mlp.SGD(momentum=0.5)),
    "embeddings": dict(embeddings=True),
    "embeddings-mse-sgd": dict(embeddings=True, loss="mse", optimizer=lambda: mlp.SGD(momentum=0.9), lr=0.05),
    "everything": dict(embeddings=True, dropout=(0.25, 0.1), label_smoothing=0.05,
                       optimizer=lambda: mlp.AdamW(weight_decay=schedules.CosineDecay(0.02), clipnorm=1.0),
                       lr=schedules.CosineDecay(0.02, warmup_steps=10)),
}


def build(case, device, dtype, **overrides):
    c = {**CASES[case], **overrides}
    loss_name = c.get("loss", "categorical_cross_entropy")
    n_out = {"categorical_cross_entropy": 3, "binary_cross_entropy": 1}.get(loss_name, 2)
    out_act = {"categorical_cross_entropy": "softmax", "binary_cross_entropy": "sigmoid"}.get(loss_name, "linear")
    hidden = c.get("hidden", (("relu", 24), ("tanh", 16)))
    dropout = c.get("dropout", (0.0, 0.0))
    np.random.seed(0)  # the same initial weights for every device
    if c.get("embeddings"):
        first = mlp.Concatenate([mlp.Embedding(CODES[0], 3, column=0, seed=1),
                                 mlp.Embedding(CODES[2], 2, column=2, seed=2)], input_size=COLUMNS)
        layer = mlp.Dense(hidden[0][1], activation=hidden[0][0], seed=3)(first)
    else:
        first = layer = mlp.Dense(hidden[0][1], input_size=COLUMNS, activation=hidden[0][0], seed=3)
    for i, (act, width) in enumerate(hidden):
        if i > 0:
            layer = mlp.Dense(width, activation=act, seed=3 + i)(layer)
        if not (isinstance(dropout[i], float) and dropout[i] == 0.0):
            layer = mlp.Dropout(dropout[i])(layer)
    outputs = mlp.Dense(n_out, activation=out_act, seed=9)(layer)
    model = mlp.Model(first, outputs)
    loss = mlp.Loss(loss_name, label_smoothing=c.get("label_smoothing", 0.0))
    optimizer = c.get("optimizer", lambda: mlp.Adam())()
    model.compile(loss, optimizer=optimizer, dtype=dtype, device=device)
    return model


def fit(model, case, x, y, batch_size, shuffle, epochs=5):
    lr = CASES[case].get("lr", 0.01)
    model.fit(x, y, epochs, lr, batch_size=batch_size, shuffle=shuffle, seed=7,
              validation_data=(x[:60], y[:60]))
    return model


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("batch_size, shuffle", [(32, False), (50, True), (N, False)])
@pytest.mark.parametrize("case", sorted(CASES))
def test_feature_fit_matches_the_cpu(case, batch_size, shuffle, dtype):
    x, y = dataset(CASES[case].get("loss", "categorical_cross_entropy"))
    cpu = fit(build(case, "cpu", dtype), case, x, y, batch_size, shuffle)
    gpu = fit(build(case, "cuda", dtype), case, x, y, batch_size, shuffle)
    assert gpu.device == "cuda:0" and cpu.device == "cpu"
    assert gpu._net.step == cpu._net.step
    np.testing.assert_allclose(gpu.history["loss"], cpu.history["loss"], rtol=LOSS_RTOL[dtype],
                               err_msg=f"{case}: per-epoch training loss, GPU vs CPU")
    np.testing.assert_allclose(gpu.history["val_loss"], cpu.history["val_loss"], rtol=LOSS_RTOL[dtype],
                               err_msg=f"{case}: per-epoch validation loss, GPU vs CPU")
    np.testing.assert_allclose(gpu._net.params, cpu._net.params, **PARAM_TOL[dtype],
                               err_msg=f"{case}: parameters after the fit (embedding tables included)")
    for a, b in zip(gpu._net.optimizer_state(), cpu._net.optimizer_state()):
        np.testing.assert_allclose(a, b, **PARAM_TOL[dtype], err_msg=f"{case}: optimizer state")
    tol = 10 * LOSS_RTOL[dtype]
    np.testing.assert_allclose(gpu.predict(x), cpu.predict(x), rtol=tol, atol=tol,
                               err_msg=f"{case}: predictions after the fit")


@pytest.mark.parametrize("case", sorted(CASES))
def test_two_identical_cuda_fits_are_bit_identical(case):
    x, y = dataset(CASES[case].get("loss", "categorical_cross_entropy"))
    runs = [fit(build(case, "cuda", "float32"), case, x, y, 32, True) for _ in range(2)]
    assert runs[0].history == runs[1].history
    np.testing.assert_array_equal(runs[0]._net.params, runs[1]._net.params)
    for a, b in zip(runs[0]._net.optimizer_state(), runs[1]._net.optimizer_state()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(runs[0].predict(x), runs[1].predict(x))


def test_dropout_changes_the_fit_on_cuda():
    """The masks are applied at all: a dropout fit is not the fit without dropout."""
    x, y = dataset()
    with_dropout = fit(build("dropout", "cuda", "float32"), "dropout", x, y, 32, True)
    without = fit(build("dropout", "cuda", "float32", dropout=(0.0, 0.0)), "dropout", x, y, 32, True)
    assert not np.allclose(with_dropout.history["loss"], without.history["loss"], rtol=1e-3)


# --- the core Network directly --------------------------------------------------------------------

def core_pair(dtype="float64", embeddings=True, dropout=(0.3, 0.15, 0.0), ls=0.0, seed=0):
    """5 raw columns (0 and 3 coded when `embeddings`) -> 7 -> 6 -> 3 (softmax), CPU and CUDA."""
    emb = [[0, 4, 3], [3, 5, 2]] if embeddings else []
    first = 5 - len(emb) + sum(w for _, _, w in emb)
    nets = []
    for device in (-1, 0):
        net = _core.Network([first, 7, 6, 3], [A.SWISH, A.RELU, A.SOFTMAX], [0.0, 0.0, 0.0],
                            LK.CATEGORICAL_CROSS_ENTROPY, 1.0, dtype, emb, 5 if emb else 0)
        net.set_dropout(list(dropout))
        if ls:
            net.set_label_smoothing(ls)
        nets.append(net)
    params = np.random.default_rng(seed).standard_normal(nets[0].n_params) * 0.4
    for net, device in zip(nets, (-1, 0)):
        net.params[...] = params
        net.set_l2(1e-3, True)
        net.set_optimizer(O.ADAM, weight_decay=0.01, clipnorm=0.5)
        net.set_seed(11)
        net.step = 3
        net.to_device(device)
    return nets


def core_data(n, dtype="float64", seed=1, embeddings=True):
    r = np.random.default_rng(seed)
    x = r.standard_normal((n, 5))
    if embeddings:
        x[:, 0] = r.integers(0, 4, n)
        x[:, 3] = r.integers(0, 5, n)
    y = np.eye(3)[r.integers(0, 3, n)]
    return x.astype(dtype), y.astype(dtype)


@pytest.mark.parametrize("training", [False, True], ids=["no-dropout", "dropout-masks"])
@pytest.mark.parametrize("n", [257, 150_000], ids=["one-chunk", "several-chunks"])
def test_core_loss_and_grad_with_embeddings_dropout_and_smoothing(n, training):
    cpu, gpu = core_pair(ls=0.1)
    assert gpu.device == "cuda:0"
    x, y = core_data(n)
    sw = np.random.default_rng(2).uniform(0.5, 1.5, n)
    lc, gc = cpu.loss_and_grad(x, y, sw, training=training)
    lg, gg = gpu.loss_and_grad(x, y, sw, training=training)
    np.testing.assert_allclose(lg, lc, rtol=1e-10)
    np.testing.assert_allclose(gg, gc, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(gpu.loss(x, y, None), cpu.loss(x, y, None), rtol=1e-10)
    np.testing.assert_allclose(gpu.predict(x), cpu.predict(x), rtol=1e-10, atol=1e-12)
    if training:  # the masks do something, and the CUDA side honours the flag
        l0, _ = gpu.loss_and_grad(x, y, sw, training=False)
        assert abs(l0 - lg) > 1e-6 * abs(lg)
    gpu.release_data()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_core_train_epoch_with_every_feature(dtype):
    cpu, gpu = core_pair(dtype, ls=0.05)
    for net in (cpu, gpu):
        net.set_schedule(schedules.SLOT_LEARNING_RATE, 2, warmup=3.0, total=40.0, floor=0.1)  # cosine
        net.set_schedule(schedules.SLOT_WEIGHT_DECAY, 3, total=40.0, flat=0.25)  # flat cosine
        net.set_schedule(schedules.SLOT_DROPOUT, 4, total=40.0)  # coslog4
    x, y = core_data(640, dtype)
    sw = np.random.default_rng(3).uniform(0.2, 2.0, 640).astype(dtype)
    for epoch in range(4):
        lc = cpu.train_epoch(x, y, sw, 64, True, 0.02)
        lg = gpu.train_epoch(x, y, sw, 64, True, 0.02)
        np.testing.assert_allclose(lg, lc, rtol=LOSS_RTOL[dtype], err_msg=f"epoch {epoch} loss")
    gpu.release_data()
    assert gpu.step == cpu.step
    np.testing.assert_allclose(gpu.params, cpu.params, **PARAM_TOL[dtype])
    for a, b in zip(gpu.optimizer_state(), cpu.optimizer_state()):
        np.testing.assert_allclose(a, b, **PARAM_TOL[dtype])


def test_core_embedding_scatter_is_deterministic_with_a_large_batch():
    """Many rows per code (a batch of 4096 over 9 table rows): the sorted, in-order scatter gives
    the same bits on every run, close to the CPU."""
    runs = []
    for _ in range(2):
        cpu, gpu = core_pair("float32", dropout=(0.0, 0.0, 0.0))
        x, y = core_data(8192, "float32")
        for _ in range(2):
            gpu.train_epoch(x, y, None, 4096, True, 0.01)
            cpu.train_epoch(x, y, None, 4096, True, 0.01)
        gpu.release_data()
        runs.append(gpu.params.copy())
        np.testing.assert_allclose(gpu.params, cpu.params, **PARAM_TOL["float32"])
    np.testing.assert_array_equal(runs[0], runs[1])


def test_core_bad_codes_are_refused_on_cuda():
    _, gpu = core_pair()
    x, y = core_data(50)
    x[7, 3] = 5  # table 1 has 5 rows
    with pytest.raises(ValueError, match="embedded column 3"):
        gpu.train_epoch(x, y, None, 16, True, 0.01)
    with pytest.raises(ValueError, match="embedded column 3"):
        gpu.predict(x)
    x[7, 3] = 1.5
    with pytest.raises(ValueError, match="embedded column 3"):
        gpu.loss(x, y, None)


def test_tabular_estimators_fit_on_cuda_as_on_the_cpu():
    """TabularClassifier / TabularRegressor with device='cuda': embeddings, one-hot blocks,
    missing indicators, dropout, AdamW, label smoothing and the best-epoch restore all run there;
    the fit follows the CPU's (same masks and batches), up to float32 rounding over its steps.
    An ensemble, which has no CUDA kernels, is a ValueError naming the device."""
    pd = pytest.importorskip("pandas")
    r = np.random.default_rng(3)
    n = 400
    a = r.standard_normal(n)
    b = r.standard_normal(n)
    b[::7] = np.nan
    small = r.choice(["u", "v", "w"], n)
    big = r.integers(0, 20, n)
    X = pd.DataFrame({"a": a, "b": b, "small": pd.Categorical(small),
                      "big": pd.Series([f"c{v}" for v in big], dtype=object)})
    label = np.where(a + (small == "v") - (big % 4 == 0) > 0.2, "yes", "no")
    common = dict(max_epochs=6, random_state=0, hidden_layer_sizes=(32, 32), ple_bins=4)
    for cls, y in ((mlp.TabularClassifier, label), (mlp.TabularRegressor, a * 2 + np.nan_to_num(b))):
        cpu = cls(**common).fit(X, y)
        gpu = cls(**common, device="cuda").fit(X, y)
        assert gpu.best_epoch_ == cpu.best_epoch_
        if cls is mlp.TabularClassifier:
            np.testing.assert_allclose(gpu.predict_proba(X), cpu.predict_proba(X), atol=2e-3)
        else:
            np.testing.assert_allclose(gpu.predict(X), cpu.predict(X), rtol=2e-3, atol=2e-3)
        with pytest.raises(ValueError, match="n_ensemble > 1 runs on the CPU only"):
            cls(**common, device="cuda", n_ensemble=2).fit(X, y)
        assert cls(**common, device="auto", n_ensemble=2).fit(X, y)._device == -1
