"""Model.fit(callbacks=...): the same callbacks as the estimators, through the one engine."""
import io
import pickle

import numpy as np
import pytest

import mlp
from mlp import Adam, Dense, Layer, Model
from mlp.callbacks import Callback, EarlyStopping, ProgressBar


class Passthrough(Layer):
    """A user's own layer: the model then trains layer by layer, in Python."""

    def forward(self, input):
        self.input = self.output = input
        return input

    def backward(self, output_error, learning_rate):
        return output_error

    def update(self, learning_rate):
        pass


def _data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5))
    y = (x[:, :2].sum(axis=1, keepdims=True) + 0.3 * rng.normal(size=(n, 1)) > 0).astype(float)
    return x[:200], y[:200], x[200:], y[200:]


def _model(layerwise=False, lr_seed=0):
    inputs = Dense(64, input_size=5, activation="relu", seed=lr_seed)
    x = Passthrough()(inputs) if layerwise else inputs
    model = Model(inputs, Dense(1, activation="sigmoid", seed=lr_seed + 1)(x))
    model.compile("binary_cross_entropy", optimizer=Adam(), metrics=["accuracy"])
    return model


class Recorder(Callback):
    def on_train_begin(self, model):
        self.events = ["begin"]
        self.logs = []

    def on_epoch_end(self, model, epoch, logs):
        self.events.append(epoch)
        self.logs.append(logs)

    def on_train_end(self, model):
        self.events.append("end")


def test_callbacks_see_every_epoch_with_keras_keys():
    x, y, xv, yv = _data()
    rec = Recorder()
    model = _model()
    model.fit(x, y, 4, 0.01, validation_data=(xv, yv), seed=0, callbacks=[rec])
    assert rec.events == ["begin", 0, 1, 2, 3, "end"]
    assert set(rec.logs[0]) == {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate",
                                "time"}
    assert [logs["val_loss"] for logs in rec.logs] == model.history["val_loss"]
    assert all(logs["learning_rate"] == 0.01 for logs in rec.logs)


@pytest.mark.parametrize("layerwise", [False, True])
def test_early_stopping_stops_and_restores_the_best_weights(layerwise):
    x, y, xv, yv = _data()
    es = EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
    model = _model(layerwise)
    model.fit(x, y, 300, 0.05, validation_data=(xv, yv), seed=0, callbacks=[es])
    val_loss = model.history["val_loss"]
    assert len(val_loss) < 300  # a learning rate this high overfits long before 300 epochs
    assert len(val_loss) == es.best_epoch_ + 1 + es.patience
    assert es.best_ == min(val_loss)
    # the weights in place now are those of the best epoch, not of the last
    assert model.evaluate(xv, yv)["loss"] == pytest.approx(min(val_loss), rel=1e-6)
    assert model.evaluate(xv, yv)["loss"] < val_loss[-1]


def test_early_stopping_on_accuracy_maximises_it():
    x, y, xv, yv = _data()
    es = EarlyStopping(monitor="val_accuracy", patience=2)
    model = _model()
    model.fit(x, y, 200, 0.05, validation_data=(xv, yv), seed=0, callbacks=[es])
    assert es.best_ == max(model.history["val_accuracy"])


def test_early_stopping_without_validation_data_says_what_to_pass():
    x, y, _, _ = _data()
    with pytest.raises(ValueError, match="validation_data"):
        _model().fit(x, y, 3, 0.01, callbacks=[EarlyStopping()])
    with pytest.raises(ValueError, match="no such figure.*'loss'"):
        _model().fit(x, y, 3, 0.01, callbacks=[EarlyStopping(monitor="f1")])


def test_a_true_return_stops_the_fit():
    class StopAtTwo(Callback):
        def on_epoch_end(self, model, epoch, logs):
            return epoch == 1

    x, y, _, _ = _data()
    model = _model()
    model.fit(x, y, 50, 0.01, callbacks=[StopAtTwo()])
    assert len(model.history["loss"]) == 2


def test_bad_callbacks_are_refused():
    x, y, _, _ = _data()
    with pytest.raises(TypeError, match="on_epoch_end"):
        _model().fit(x, y, 1, 0.01, callbacks=[object()])
    with pytest.raises(TypeError, match="callbacks must be a list"):
        _model().fit(x, y, 1, 0.01, callbacks=EarlyStopping())


def test_progress_bar_as_a_callback():
    x, y, _, _ = _data()
    out = io.StringIO()
    _model().fit(x, y, 3, 0.01, callbacks=[ProgressBar(file=out)], progress=False)
    assert "3/3" in out.getvalue()


def test_divergence_still_raises_with_callbacks():
    x, y, xv, yv = _data()
    rec = Recorder()
    model = _model()
    model.compile("binary_cross_entropy", optimizer="sgd")
    with pytest.raises(FloatingPointError):
        model.fit(x * 1e6, y, 20, 1e6, validation_data=(xv, yv), callbacks=[rec])
    assert rec.events[-1] == "end"  # on_train_end ran, so a stopping rule could restore
    assert all(np.isfinite(layer.weights).all() for layer in model.layers
               if isinstance(layer, Dense))


@pytest.mark.parametrize("seed", [2**63, 2**64 - 1])
def test_dense_seeds_beyond_int64_save_and_load(seed, tmp_path):
    # check_seed accepts [0, 2**64); the file and the pickle must take the same range.
    inputs = Dense(3, input_size=2, seed=seed)
    model = Model(inputs, Dense(1, seed=seed)(inputs))
    model.save(tmp_path / "m.mlp")
    for loaded in (mlp.load(tmp_path / "m.mlp"), pickle.loads(pickle.dumps(model))):
        assert [layer.seed for layer in loaded.layers] == [seed, seed]
        np.testing.assert_array_equal(loaded.predict(np.ones((1, 2))), model.predict(np.ones((1, 2))))
