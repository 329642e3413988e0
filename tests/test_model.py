"""mlp/model.py: the spec's Model on the native path and on the Python path (custom layers)."""
import io
import math
import time

import numpy as np
import pytest

from mlp import SGD, Adam, Dense, Layer, Model, Momentum, ReLU, Sigmoid, Softmax, Tanh
from mlp.callbacks import ProgressBar

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
XOR_Y = np.array([[0], [1], [1], [0]], dtype=np.float64)


class Identity(Layer):
    """A user's own layer that changes nothing, so the Python path must match the native one."""

    def forward(self, input):
        self.input = input
        self.output = input
        return input

    def backward(self, output_error, learning_rate):
        return output_error

    def update(self, learning_rate):
        pass


def _regression(n=40, features=3, outputs=2, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features))
    y = np.tanh(x @ rng.normal(size=(features, outputs)))
    return x, y


def _mlp(sizes, acts, custom_at=None, seed=0):
    """Dense layers with seeded weights; a custom Identity layer inserted after layer `custom_at`."""
    inputs = layer = Dense(sizes[1], input_size=sizes[0], activation=acts[0], seed=seed)
    if custom_at == 0:
        layer = Identity()(layer)
    for i, (size, act) in enumerate(zip(sizes[2:], acts[1:]), start=1):
        layer = Dense(size, activation=act, seed=seed + i)(layer)
        if custom_at == i:
            layer = Identity()(layer)
    return Model(inputs, layer)


def _denses(model):
    return [layer for layer in model.layers if isinstance(layer, Dense)]


# -- the spec ---------------------------------------------------------------------------------------

def test_spec_example_runs_as_written():
    rng = np.random.default_rng(0)
    x_train = rng.uniform(-1, 1, size=(64, 2))
    y_train = (x_train[:, :1] * x_train[:, 1:] > 0).astype(float)
    x_test = rng.uniform(-1, 1, size=(10, 2))

    inputs = Dense(input_size=2, output_size=16, activation='tanh')
    x = Dense(output_size=8, activation='relu')(inputs)
    x = Dense(output_size=4, activation='relu')(x)
    x = Dense(output_size=2, activation='relu')(x)
    outputs = Dense(output_size=1, activation='sigmoid')(x)
    model = Model(inputs, outputs)
    model.compile(loss_fn='mse')
    loss = model.fit(x_train, y_train, 1000, 0.1)
    predictions = model.predict(x_test)

    assert type(loss) is float and math.isfinite(loss)
    assert predictions.shape == (10, 1)
    assert model.native


def test_issue_example_with_activation_instance_and_y_1d():
    inputs = Dense(input_size=2, output_size=16, activation='tanh')
    x = Dense(output_size=8, activation='relu')(inputs)
    x = Dense(output_size=4, activation=ReLU())(x)
    outputs = Dense(output_size=1, activation='sigmoid')(x)
    model = Model(inputs, outputs)
    model.compile(loss_fn='binary_cross_entropy')
    loss = model.fit(XOR_X, XOR_Y.ravel(), 5, 0.1)  # y of shape (N,) for one output
    assert math.isfinite(loss)


def test_xor_is_learned():
    np.random.seed(0)
    inputs = Dense(input_size=2, output_size=8, activation='tanh')
    outputs = Dense(output_size=1, activation='sigmoid')(inputs)
    model = Model(inputs, outputs)
    model.compile(loss_fn='binary_cross_entropy', optimizer='adam')
    loss = model.fit(XOR_X, XOR_Y, 400, 0.05, batch_size=4, seed=0)
    assert loss < 0.1
    np.testing.assert_array_equal(model.predict(XOR_X) > 0.5, XOR_Y > 0.5)


def test_digits_reach_95_percent():
    datasets = pytest.importorskip("sklearn.datasets")
    model_selection = pytest.importorskip("sklearn.model_selection")
    digits = datasets.load_digits()
    x = digits.data / 16.0
    y = np.eye(10)[digits.target]
    x_train, x_test, y_train, y_test = model_selection.train_test_split(
        x, y, test_size=0.2, random_state=0, stratify=digits.target)
    np.random.seed(0)
    inputs = Dense(input_size=64, output_size=64, activation='relu')
    outputs = Dense(output_size=10, activation='softmax')(inputs)
    model = Model(inputs, outputs)
    model.compile(loss_fn='categorical_cross_entropy', optimizer='adam', metrics=['accuracy'])
    model.fit(x_train, y_train, 20, 0.005, seed=0)
    result = model.evaluate(x_test, y_test)
    assert result['accuracy'] >= 0.95
    assert np.argmax(model.predict(x_test), axis=1).shape == (len(x_test),)


# -- one full-batch SGD step against a float64 numpy computation ------------------------------------

_F = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0), "linear": lambda z: z,
      "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
      "softmax": lambda z: np.exp(z - z.max(1, keepdims=True)) / np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True)}
_DF = {"tanh": lambda z, a: 1 - a * a, "relu": lambda z, a: (z > 0).astype(float),
       "linear": lambda z, a: np.ones_like(z), "sigmoid": lambda z, a: a * (1 - a)}


def _reference_step(x, y, weights, biases, acts, loss):
    """Loss and dL/dW, dL/db of the spec's network, by hand in float64."""
    a, zs = [x], []
    for w, b, act in zip(weights, biases, acts):
        zs.append(a[-1] @ w + b)
        a.append(_F[act](zs[-1]))
    n, o = y.shape
    out = a[-1]
    if loss == "mse":
        value = np.mean((out - y) ** 2)
        dz = 2 * (out - y) / (n * o) * _DF[acts[-1]](zs[-1], out)
    elif loss == "categorical_cross_entropy":
        value = -np.sum(y * np.log(out)) / n
        dz = (out - y) / n  # softmax and cross-entropy together
    else:
        value = -np.mean(y * np.log(out) + (1 - y) * np.log(1 - out))
        dz = (out - y) / (n * o)  # sigmoid and binary cross-entropy together
    dws, dbs = [None] * len(weights), [None] * len(weights)
    for i in reversed(range(len(weights))):
        dws[i] = a[i].T @ dz
        dbs[i] = dz.sum(axis=0)
        if i:
            dz = (dz @ weights[i].T) * _DF[acts[i - 1]](zs[i - 1], a[i])
    return value, dws, dbs


@pytest.mark.parametrize("dtype, rtol, atol", [("float64", 1e-9, 1e-12), ("float32", 2e-4, 2e-6)])
@pytest.mark.parametrize("loss, acts", [
    ("mse", ["tanh", "relu", "linear"]),
    ("mse", ["sigmoid", "tanh", "sigmoid"]),
    ("categorical_cross_entropy", ["relu", "tanh", "softmax"]),
    ("binary_cross_entropy", ["tanh", "relu", "sigmoid"]),
])
@pytest.mark.parametrize("custom", [False, True], ids=["native", "python-path"])
def test_one_full_batch_sgd_step_is_minus_lr_times_gradient(dtype, rtol, atol, loss, acts, custom):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(13, 4))
    y = np.eye(3)[rng.integers(0, 3, size=13)]
    if loss == "mse":
        y = rng.normal(size=(13, 3))
    model = _mlp([4, 6, 5, 3], acts, custom_at=1 if custom else None)
    model.compile(loss_fn=loss, dtype=dtype)
    assert model.native is not custom
    denses = _denses(model)
    # the reference sees exactly the values the model starts from
    ws = [d.weights.astype(np.float64) for d in denses]
    bs = [d.bias.astype(np.float64) for d in denses]
    xd = x.astype(dtype).astype(np.float64)
    yd = y.astype(dtype).astype(np.float64)
    value, dws, dbs = _reference_step(xd, yd, ws, bs, acts, loss)
    lr = 0.3
    got = model.fit(x, y, 1, lr, batch_size=len(x), shuffle=False)
    assert got == pytest.approx(value, rel=rtol, abs=atol)
    for i, d in enumerate(denses):
        np.testing.assert_allclose(d.weights - ws[i], -lr * dws[i], rtol=rtol, atol=atol,
                                   err_msg=f"{loss} {acts} W{i} {ws[i].shape} step, {dtype}")
        np.testing.assert_allclose(d.bias - bs[i], -lr * dbs[i], rtol=rtol, atol=atol,
                                   err_msg=f"{loss} {acts} b{i} {bs[i].shape} step, {dtype}")


# -- the Python path agrees with the native one ----------------------------------------------------

@pytest.mark.parametrize("optimizer", [
    lambda: "sgd", lambda: "momentum", lambda: "nesterov", lambda: "adam",
    lambda: SGD(l2=0.01), lambda: Adam(beta_1=0.8, l2=0.05),
], ids=["sgd", "momentum", "nesterov", "adam", "sgd-l2", "adam-l2"])
@pytest.mark.parametrize("loss, acts", [
    ("mse", ["relu", "tanh"]),
    ("categorical_cross_entropy", ["tanh", "softmax"]),
    ("binary_cross_entropy", ["elu", "sigmoid"]),
])
def test_python_path_matches_native(optimizer, loss, acts):
    # The same network trained natively and through the Python path (an Identity custom layer
    # forces it) must follow the same trajectory: same fused derivatives, same update rules.
    x, y = _regression(n=20, outputs=2)
    if loss != "mse":
        y = np.eye(2)[(x[:, 0] > 0).astype(int)]
    native, python = _mlp([3, 5, 2], acts), _mlp([3, 5, 2], acts, custom_at=0)
    native.compile(loss, optimizer=optimizer(), dtype="float64")
    python.compile(loss, optimizer=optimizer(), dtype="float64")
    assert native.native and not python.native
    a = native.fit(x, y, 4, 0.05, batch_size=6, shuffle=False)
    b = python.fit(x, y, 4, 0.05, batch_size=6, shuffle=False)
    assert a == pytest.approx(b, rel=1e-9)
    for d1, d2 in zip(_denses(native), _denses(python)):
        np.testing.assert_allclose(d1.weights, d2.weights, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(d1.bias, d2.bias, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(native.predict(x), python.predict(x), rtol=1e-9)
    assert native.evaluate(x, y) == pytest.approx(python.evaluate(x, y), rel=1e-9)


def test_custom_layer_trains_through_python_path():
    class Scale(Layer):
        """y = s * x with a trainable scalar s: its own backward and update."""

        def __init__(self):
            super().__init__()
            self.s = 0.5
            self.ds = None

        def forward(self, input):
            self.input = input
            self.output = self.s * input
            return self.output

        def backward(self, output_error, learning_rate):
            self.ds = float(np.sum(output_error * self.input))
            return self.s * output_error

        def update(self, learning_rate):
            self.s -= learning_rate * self.ds

    x, y = _regression(n=60, outputs=1)
    inputs = Dense(8, input_size=3, activation="tanh", seed=0)
    scale = Scale()(inputs)
    outputs = Dense(1, seed=1)(scale)
    model = Model(inputs, outputs)
    model.compile("mse")
    assert not model.native
    first = model.evaluate(x, y)
    model.fit(x, y, 30, 0.1, batch_size=8, seed=0)
    assert model.evaluate(x, y) < first / 2
    assert scale.s != 0.5  # the custom layer's update ran
    summary = []
    model.summary(print_fn=summary.append)
    assert any("Scale" in line for line in summary)


def test_custom_output_layer_with_mse():
    class Double(Identity):
        def forward(self, input):
            self.input = input
            self.output = 2 * input
            return self.output

        def backward(self, output_error, learning_rate):
            return 2 * output_error

    x, y = _regression(n=30, outputs=1)
    inputs = Dense(1, input_size=3, seed=0)
    model = Model(inputs, Double()(inputs))
    model.compile("mse", dtype="float64")
    w, b = inputs.weights.copy(), inputs.bias.copy()
    out = 2 * (x @ w + b)
    dz = 2 * (2 * (out - y) / 30)  # through the loss (numpy derivative), then Double's backward
    loss = model.fit(x, y, 1, 0.1, batch_size=30, shuffle=False)
    assert loss == pytest.approx(np.mean((out - y) ** 2), rel=1e-12)
    np.testing.assert_allclose(inputs.weights, w - 0.1 * x.T @ dz, rtol=1e-12)
    np.testing.assert_allclose(inputs.bias, b - 0.1 * dz.sum(axis=0), rtol=1e-12)
    with pytest.raises(ValueError, match="needs a softmax output"):
        model.compile("categorical_cross_entropy")


def test_spec_style_layer_without_update():
    # A layer in the tutorial style updates itself inside backward and never overrides update.
    class SelfUpdating(Layer):
        def forward(self, input):
            self.input = input
            return input

        def backward(self, output_error, learning_rate):
            return output_error

    inputs = Dense(4, input_size=2, activation="tanh", seed=0)
    outputs = Dense(1, activation="sigmoid", seed=1)(SelfUpdating()(inputs))
    model = Model(inputs, outputs)
    model.compile("mse")
    assert math.isfinite(model.fit(XOR_X, XOR_Y, 3, 0.1))


def test_keyboard_interrupt_propagates_and_model_stays_usable():
    class Interrupting(Identity):
        calls = 0

        def forward(self, input):
            Interrupting.calls += 1
            if Interrupting.calls == 5:
                raise KeyboardInterrupt
            return super().forward(input)

    inputs = Dense(4, input_size=2, activation="tanh", seed=0)
    outputs = Dense(1, activation="sigmoid", seed=1)(Interrupting()(inputs))
    model = Model(inputs, outputs)
    model.compile("mse")
    with pytest.raises(KeyboardInterrupt):
        model.fit(XOR_X, XOR_Y, 10, 0.1, batch_size=2)  # 2 batches per epoch: stops in epoch 3
    assert len(model.history["loss"]) == 2
    assert model.predict(XOR_X).shape == (4, 1)
    assert math.isfinite(model.fit(XOR_X, XOR_Y, 1, 0.1))


# -- folding, views, recompile ---------------------------------------------------------------------

def test_standalone_activation_folds_into_linear_dense():
    x, y = _regression(n=20, outputs=3)
    y = np.eye(3)[np.argmax(y, axis=1)]
    a_in = Dense(5, input_size=3, activation="tanh", seed=0)
    a = Model(a_in, Dense(3, activation="softmax", seed=1)(a_in))
    b_in = Dense(5, input_size=3, seed=0)
    b_hidden = Tanh()(b_in)
    b = Model(b_in, Softmax()(Dense(3, seed=1)(b_hidden)))
    for model in (a, b):
        model.compile("categorical_cross_entropy", dtype="float64")
        assert model.native
    assert a.fit(x, y, 3, 0.1, seed=1) == pytest.approx(b.fit(x, y, 3, 0.1, seed=1), rel=1e-12)
    np.testing.assert_allclose(a.predict(x), b.predict(x), rtol=1e-12)
    assert a.count_params() == b.count_params() == 5 * 3 + 5 + 3 * 5 + 3


def test_activation_after_nonlinear_dense_takes_python_path():
    inputs = Dense(4, input_size=2, activation="relu", seed=0)
    model = Model(inputs, Sigmoid()(Dense(1, activation="tanh", seed=1)(inputs)))
    model.compile("mse")
    assert not model.native
    assert math.isfinite(model.fit(XOR_X, XOR_Y, 2, 0.1))


def test_weights_are_views_into_the_network():
    x, y = _regression(outputs=1)
    inputs = Dense(4, input_size=3, activation="tanh", seed=0)
    outputs = Dense(1, seed=1)(inputs)
    model = Model(inputs, outputs)
    before = outputs.weights.copy()
    model.compile("mse")
    model.fit(x, y, 2, 0.1, seed=0)
    assert not np.array_equal(outputs.weights, before)  # training shows in the layer
    outputs.weights = np.zeros((4, 1))
    outputs.bias = [0.25]
    np.testing.assert_allclose(model.predict(x), 0.25)  # assignment reaches the network
    with pytest.raises(ValueError, match="weights must have shape"):
        outputs.weights = np.zeros((1, 4))


def test_recompile_keeps_weights_and_switches_dtype():
    x, y = _regression(outputs=1)
    inputs = Dense(4, input_size=3, activation="tanh", seed=0)
    outputs = Dense(1, seed=1)(inputs)
    model = Model(inputs, outputs)
    model.compile("mse")
    model.fit(x, y, 3, 0.1, seed=0)
    w = outputs.weights.copy()
    pred = model.predict(x)
    model.compile("mse", optimizer="adam", dtype="float64")
    assert outputs.weights.dtype == np.float64 and model.predict(x).dtype == np.float64
    np.testing.assert_allclose(outputs.weights, w, rtol=1e-7)
    np.testing.assert_allclose(model.predict(x), pred, rtol=1e-5, atol=1e-6)
    model.fit(x, y, 1, 0.01, seed=0)
    outputs.weights = np.ones((4, 1))
    np.testing.assert_allclose(model.predict(x), np.tanh(x @ inputs.weights + inputs.bias).sum(1, keepdims=True) + outputs.bias)


def test_predict_before_compile_uses_the_layers():
    inputs = Dense(4, input_size=2, activation="tanh", seed=0)
    outputs = Dense(1, activation="sigmoid", seed=1)(inputs)
    model = Model(inputs, outputs)
    expected = outputs.forward(inputs.forward(XOR_X))
    np.testing.assert_allclose(model.predict(XOR_X), expected, rtol=1e-6)


# -- history, metrics, printing --------------------------------------------------------------------

def test_history_metrics_and_evaluate():
    x, y = _regression(n=50, outputs=3)
    y = np.eye(3)[np.argmax(y, axis=1)]
    model = _mlp([3, 8, 3], ["tanh", "softmax"])
    model.compile("categorical_crossentropy", optimizer=Momentum(), metrics=["accuracy"])
    loss = model.fit(x[:40], y[:40], 6, 0.1, validation_data=(x[40:], y[40:]), seed=0)
    assert set(model.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 6 for v in model.history.values())
    assert model.history["loss"][-1] == loss
    assert all(0 <= a <= 1 for a in model.history["val_accuracy"])
    result = model.evaluate(x[40:], y[40:])
    assert result["loss"] == pytest.approx(model.history["val_loss"][-1], rel=1e-6)
    assert result["accuracy"] == model.history["val_accuracy"][-1]
    model.compile("categorical_cross_entropy")
    assert isinstance(model.evaluate(x, y), float)
    model.fit(x, y, 2, 0.1)
    assert set(model.history) == {"loss"}  # each fit starts a new history


def test_binary_accuracy_and_l2_in_evaluate():
    model = _mlp([2, 4, 1], ["tanh", "sigmoid"])
    model.compile("binary_cross_entropy", metrics="acc")
    result = model.evaluate(XOR_X, XOR_Y)
    assert set(result) == {"loss", "accuracy"} and result["accuracy"] in (0, 0.25, 0.5, 0.75, 1)
    plain = result["loss"]
    model.compile("binary_cross_entropy", optimizer=SGD(l2=0.1))
    weights = sum(float(np.sum(d.weights.astype(np.float64) ** 2)) for d in _denses(model))
    assert model.evaluate(XOR_X, XOR_Y) == pytest.approx(plain + 0.05 * weights, rel=1e-5)


def test_print_loss_prints_every_epoch(capsys):
    model = _mlp([2, 4, 1], ["tanh", "sigmoid"])
    model.compile("mse")
    model.fit(XOR_X, XOR_Y, 3, 0.1, print_loss=True)
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(" - ")[0] for line in lines] == ["Epoch 1/3", "Epoch 2/3", "Epoch 3/3"]
    assert all("loss: " in line for line in lines)


def test_progress_bar_on_request(capsys):
    model = _mlp([2, 4, 1], ["tanh", "sigmoid"])
    model.compile("mse")
    model.fit(XOR_X, XOR_Y, 3, 0.1, progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "3/3" in captured.err and "loss" in captured.err  # the text line, or tqdm's
    model.fit(XOR_X, XOR_Y, 3, 0.1)  # short fits stay quiet
    assert capsys.readouterr().err == ""


def _drive(bar, epochs):
    bar.on_train_begin(None)
    for epoch in range(epochs):
        bar.on_epoch_end(None, epoch, {"loss": 0.5})
    bar.on_train_end(None)


def test_progress_bar_appears_only_for_long_fits():
    # The automatic bar a Model draws when progress=None: silent until the epochs done predict
    # a fit longer than min_seconds.
    stream = io.StringIO()
    _drive(ProgressBar(total=1000, file=stream, min_seconds=1e-9, settle=0.0), 1000)
    text = stream.getvalue()
    assert text.startswith("\r") and text.endswith("\n") and "Epoch 1000/1000" in text
    quiet = io.StringIO()
    _drive(ProgressBar(total=3, file=quiet, min_seconds=3600), 3)
    assert quiet.getvalue() == ""


class _SlowEpochs:
    """A callback that makes every epoch last at least `seconds`, and stops the fit after
    `stop_after` epochs (None: never)."""

    def __init__(self, seconds, stop_after=None):
        self.seconds, self.stop_after = seconds, stop_after

    def on_epoch_end(self, model, epoch, logs):
        time.sleep(self.seconds)
        return self.stop_after is not None and epoch + 1 >= self.stop_after


def test_model_fit_draws_a_bar_by_itself_when_the_fit_is_predicted_to_take_over_2_seconds(capsys):
    model = _mlp([2, 4, 1], ["tanh", "sigmoid"])
    model.compile("mse")
    # 100 epochs of at least 0.1 s: over 10 s predicted. The bar waits for `settle` (0.5 s) of
    # epochs before it trusts the prediction, so the fit is stopped after 7 of them.
    model.fit(XOR_X, XOR_Y, 100, 0.1, callbacks=[_SlowEpochs(0.1, stop_after=7)])
    err = capsys.readouterr().err
    assert "Epoch 7/100 [" in err and "ETA" in err and err.endswith("\n")
    # The same epochs, 10 of them: about 1 s predicted, under 2 s: no bar.
    model.fit(XOR_X, XOR_Y, 10, 0.1, callbacks=[_SlowEpochs(0.1)])
    assert capsys.readouterr().err == ""
    # progress=False keeps a long fit quiet.
    model.fit(XOR_X, XOR_Y, 100, 0.1, progress=False, callbacks=[_SlowEpochs(0.1, stop_after=7)])
    assert capsys.readouterr().err == ""


def test_summary_and_count_params():
    inputs = Dense(input_size=100, output_size=64, activation="relu")
    x = Dense(output_size=32, activation="relu")(inputs)
    outputs = Dense(output_size=10, activation="softmax")(x)
    model = Model(inputs, outputs)
    assert model.count_params() == 8874
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "Total params: 8,874" in text
    for shape, params in (("(None, 64)", "6,464"), ("(None, 32)", "2,080"), ("(None, 10)", "330")):
        assert any(shape in line and line.rstrip().endswith(params) for line in lines), text
    assert "Not compiled" in text
    model.compile("categorical_cross_entropy", optimizer="adam")
    lines.clear()
    model.summary(print_fn=lines.append)
    assert "native" in lines[-1] and "Adam" in lines[-1]


# -- repeatability and input forms -----------------------------------------------------------------

def _fit_with_global_seed(seed):
    np.random.seed(seed)
    inputs = Dense(input_size=3, output_size=6, activation="relu")
    outputs = Dense(output_size=2)(inputs)
    model = Model(inputs, outputs)
    model.compile("mse")
    x, y = _regression()
    loss = model.fit(x, y, 3, 0.05, batch_size=7)
    return loss, outputs.weights.copy()


def test_numpy_global_seed_makes_fit_repeatable():
    loss_a, w_a = _fit_with_global_seed(3)
    loss_b, w_b = _fit_with_global_seed(3)
    assert loss_a == loss_b
    np.testing.assert_array_equal(w_a, w_b)
    loss_c, w_c = _fit_with_global_seed(4)
    assert not np.array_equal(w_a, w_c)


def test_fit_seed_fixes_the_shuffle():
    x, y = _regression()
    results = []
    for global_seed in (1, 2):
        np.random.seed(global_seed)
        model = _mlp([3, 5, 2], ["tanh", "linear"])
        model.compile("mse")
        results.append(model.fit(x, y, 3, 0.05, batch_size=7, seed=11))
    assert results[0] == results[1]


def _forms(x):
    yield "float32", x.astype(np.float32)
    yield "float64", x.astype(np.float64)
    yield "int", x.astype(np.int64)
    yield "list", x.tolist()
    yield "fortran", np.asfortranarray(x)
    yield "strided", np.repeat(x, 2, axis=0)[::2]
    yield "transposed-view", np.ascontiguousarray(x.T).T


def test_input_forms_are_accepted_and_agree():
    rng = np.random.default_rng(0)
    x = rng.integers(-3, 4, size=(30, 3)).astype(np.float64)
    y = rng.integers(0, 2, size=(30, 1)).astype(np.float64)
    losses = {}
    for name, form in _forms(x):
        model = _mlp([3, 4, 1], ["tanh", "sigmoid"])
        model.compile("binary_cross_entropy")
        losses[name] = model.fit(form, y.astype(int), 2, 0.1, batch_size=8, seed=0)
        assert model.predict(form).shape == (30, 1)
    assert len(set(losses.values())) == 1, losses


def test_pandas_input():
    pd = pytest.importorskip("pandas")
    x, y = _regression(outputs=1)
    model = _mlp([3, 4, 1], ["tanh", "linear"])
    model.compile("mse")
    loss = model.fit(pd.DataFrame(x), pd.Series(y[:, 0]), 2, 0.05)
    assert math.isfinite(loss)


# -- bad input -------------------------------------------------------------------------------------

@pytest.fixture
def compiled():
    model = _mlp([2, 4, 1], ["tanh", "sigmoid"])
    model.compile("mse")
    return model


_NAN_X = np.array([[0, np.nan], [1, 1]])


@pytest.mark.parametrize("args, kwargs, exc, match", [
    ((_NAN_X, [[0], [1]], 1, 0.1), {}, ValueError, "x contains NaN or infinity"),
    (([[0, np.inf], [1, 1]], [[0], [1]], 1, 0.1), {}, ValueError, "x contains NaN or infinity"),
    ((XOR_X, [[0], [np.nan], [1], [0]], 1, 0.1), {}, ValueError, "y contains NaN or infinity"),
    ((XOR_X, [[0], [-np.inf], [1], [0]], 1, 0.1), {}, ValueError, "y contains NaN or infinity"),
    ((XOR_X[:, :1], XOR_Y, 1, 0.1), {}, ValueError, "x has 1 columns but 2 were expected"),
    ((XOR_X.ravel(), XOR_Y, 1, 0.1), {}, ValueError, "x must be a 2-D array"),
    ((XOR_X[None], XOR_Y, 1, 0.1), {}, ValueError, "x must be a 2-D array"),
    ((XOR_X, np.hstack([XOR_Y, XOR_Y]), 1, 0.1), {}, ValueError, "y has 2 columns but 1 were expected"),
    ((XOR_X, XOR_Y[:3], 1, 0.1), {}, ValueError, "x and y must have the same number of samples"),
    ((np.zeros((0, 2)), np.zeros((0, 1)), 1, 0.1), {}, ValueError, "x is empty"),
    (([[]], [[]], 1, 0.1), {}, ValueError, "x is empty"),
    (([["a", "b"]], [[1]], 1, 0.1), {}, TypeError, "x must hold real numbers"),
    ((XOR_X, [["a"], ["b"], ["c"], ["d"]], 1, 0.1), {}, TypeError, "y must hold real numbers"),
    ((np.array([[object(), 1]]), [[1]], 1, 0.1), {}, TypeError, "x must hold numbers"),
    ((XOR_X, XOR_Y, -1, 0.1), {}, ValueError, "epochs must be an integer >= 1"),
    ((XOR_X, XOR_Y, 0, 0.1), {}, ValueError, "epochs must be an integer >= 1"),
    ((XOR_X, XOR_Y, float("nan"), 0.1), {}, TypeError, "epochs must be an integer >= 1"),
    ((XOR_X, XOR_Y, 2.5, 0.1), {}, TypeError, "epochs must be an integer >= 1"),
    ((XOR_X, XOR_Y, 1, -0.1), {}, ValueError, "learning_rate must be a finite number > 0"),
    ((XOR_X, XOR_Y, 1, 0.0), {}, ValueError, "learning_rate must be a finite number > 0"),
    ((XOR_X, XOR_Y, 1, float("nan")), {}, ValueError, "learning_rate must be a finite number > 0"),
    ((XOR_X, XOR_Y, 1, float("inf")), {}, ValueError, "learning_rate must be a finite number > 0"),
    ((XOR_X, XOR_Y, 1, "0.1"), {}, TypeError, "learning_rate must be a finite number > 0"),
    ((XOR_X, XOR_Y, 1, 0.1), {"batch_size": 0}, ValueError, "batch_size must be an integer >= 1"),
    ((XOR_X, XOR_Y, 1, 0.1), {"batch_size": -4}, ValueError, "batch_size must be an integer >= 1"),
    ((XOR_X, XOR_Y, 1, 0.1), {"batch_size": None}, TypeError, "batch_size must be an integer"),
    ((XOR_X, XOR_Y, 1, 0.1), {"shuffle": "yes"}, TypeError, "shuffle must be True or False"),
    ((XOR_X, XOR_Y, 1, 0.1), {"print_loss": 1}, TypeError, "print_loss must be True or False"),
    ((XOR_X, XOR_Y, 1, 0.1), {"seed": -5}, ValueError, "seed must be in"),
    ((XOR_X, XOR_Y, 1, 0.1), {"validation_data": XOR_X}, TypeError, "validation_data must be a tuple"),
    ((XOR_X, XOR_Y, 1, 0.1), {"validation_data": (XOR_X, XOR_Y[:2])}, ValueError,
     r"validation_data\[0\] and validation_data\[1\] must have the same number of samples"),
    ((XOR_X, XOR_Y, 1, 0.1), {"validation_data": (_NAN_X, [[0], [1]])}, ValueError,
     r"validation_data\[0\] contains NaN"),
])
def test_fit_rejects_bad_input(compiled, args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        compiled.fit(*args, **kwargs)


def test_predict_and_evaluate_reject_bad_input(compiled):
    with pytest.raises(ValueError, match="x contains NaN"):
        compiled.predict(_NAN_X)
    with pytest.raises(ValueError, match="x has 3 columns but 2 were expected"):
        compiled.predict(np.ones((2, 3)))
    with pytest.raises(ValueError, match="x is empty"):
        compiled.predict(np.ones((0, 2)))
    with pytest.raises(TypeError, match="x must hold real numbers"):
        compiled.predict([["a", "b"]])
    with pytest.raises(ValueError, match="y contains NaN"):
        compiled.evaluate(XOR_X, [0, 1, np.nan, 0])


def test_fit_and_evaluate_before_compile():
    model = _mlp([2, 4, 1], ["tanh", "sigmoid"])
    with pytest.raises(ValueError, match=r"call model.compile\(loss_fn=...\) before model.fit\(\)"):
        model.fit(XOR_X, XOR_Y, 1, 0.1)
    with pytest.raises(ValueError, match=r"before model.evaluate\(\)"):
        model.evaluate(XOR_X, XOR_Y)


@pytest.mark.parametrize("acts, loss, kwargs, exc, match", [
    (["tanh", "softmax"], "mse", {}, ValueError,
     "a softmax output goes only with loss 'categorical_cross_entropy'"),
    (["tanh", "softmax"], "binary_cross_entropy", {}, ValueError,
     "a softmax output goes only with loss 'categorical_cross_entropy'"),
    (["tanh", "sigmoid"], "categorical_cross_entropy", {}, ValueError,
     "loss 'categorical_cross_entropy' needs a softmax output layer.*'sigmoid'"),
    (["tanh", "linear"], "binary_cross_entropy", {}, ValueError,
     "loss 'binary_cross_entropy' needs a sigmoid output layer"),
    (["softmax", "softmax"], "categorical_cross_entropy", {}, ValueError,
     "softmax can only be the activation of the last layer"),
    (["tanh", "sigmoid"], "hinge", {}, ValueError, "unknown loss 'hinge'.*valid names"),
    (["tanh", "sigmoid"], 3, {}, TypeError, "loss_fn must be a string"),
    (["tanh", "sigmoid"], "mse", {"optimizer": "rmsprop"}, ValueError,
     "unknown optimizer 'rmsprop' for optimizer; valid names: 'sgd', 'momentum', 'nesterov', 'adam'"),
    (["tanh", "sigmoid"], "mse", {"optimizer": 0.1}, TypeError, "optimizer must be a name"),
    (["tanh", "sigmoid"], "mse", {"metrics": ["f1"]}, ValueError, "unknown metric 'f1'"),
    (["tanh", "sigmoid"], "mse", {"metrics": 3}, TypeError, "metrics must be None or a list"),
    (["tanh", "sigmoid"], "mse", {"dtype": "float16"}, ValueError, "dtype must be 'float32' or 'float64'"),
])
def test_compile_rejects(acts, loss, kwargs, exc, match):
    model = _mlp([2, 3, 2], acts)
    with pytest.raises(exc, match=match):
        model.compile(loss, **kwargs)


def test_model_construction_errors():
    a = Dense(3, input_size=2)
    b = Dense(1)(a)
    with pytest.raises(TypeError, match="inputs must be a Layer"):
        Model("a", b)
    with pytest.raises(TypeError, match="outputs must be a Layer"):
        Model(a, None)
    with pytest.raises(ValueError, match="outputs is not chained to inputs"):
        Model(Dense(3, input_size=2), b)
    lone = Dense(3)
    with pytest.raises(ValueError, match="the input layer needs input_size"):
        Model(lone, lone)
    c = Dense(2, input_size=2)
    d = Dense(2)(c)
    c(d)  # a cycle
    with pytest.raises(ValueError, match="appears twice"):
        Model(Dense(2, input_size=2), d)


def test_zero_size_layers_are_rejected():
    with pytest.raises(ValueError, match="output_size must be an integer >= 1, got 0"):
        Dense(input_size=2, output_size=0)
    with pytest.raises(ValueError, match="input_size must be an integer >= 1, got 0"):
        Dense(input_size=0, output_size=2)


# -- divergence ------------------------------------------------------------------------------------

@pytest.mark.parametrize("custom", [False, True], ids=["native", "python-path"])
def test_diverging_fit_raises_and_leaves_finite_weights(custom):
    x, y = _regression(n=32, outputs=1)
    model = _mlp([3, 16, 1], ["linear", "linear"], custom_at=0 if custom else None)
    model.compile("mse")
    with pytest.raises(FloatingPointError, match="non-finite.*learning_rate"):
        model.fit(x * 100, y, 50, 1e6, batch_size=4)
    for d in _denses(model):
        assert np.isfinite(d.weights).all() and np.isfinite(d.bias).all()
    assert model.predict(x).shape == (32, 1)


def test_custom_input_layer_and_output_width_check():
    class Clip(Identity):
        def forward(self, input):
            self.input = np.asarray(input)
            self.output = np.clip(self.input, -1, 1)
            return self.output

        def backward(self, output_error, learning_rate):
            return output_error * (np.abs(self.input) < 1)

    first = Clip()
    outputs = Dense(2, input_size=3, activation="tanh", seed=0)(first)
    model = Model(first, outputs)
    assert model.input_size is None and model.output_size == 2
    model.compile("mse")
    x, y = _regression(n=12, outputs=2)
    assert math.isfinite(model.fit(x, y, 2, 0.1))
    with pytest.raises(ValueError, match="y has shape \\(12,\\) but the model has 2 outputs"):
        model.fit(x, y[:, 0], 1, 0.1)
