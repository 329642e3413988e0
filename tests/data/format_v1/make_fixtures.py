"""Writes the files in this folder: one classifier, one regressor and one Model, saved by mlp with
format version 1, plus the inputs and the predictions each gave when saved.

They were written before the training engine and the per-class state (issue 10) replaced
mlp/_state.py, and `tests/test_saved_files.py` loads them with today's code. Rerunning this script
would overwrite them with files from the current code, which defeats their purpose: run it only to
add a fixture for a new format version, into a new folder.
"""
import os
import pickle

import numpy as np
import pandas as pd

import mlp
from mlp import Adam, Dense, MLPClassifier, MLPRegressor, Model, ReLU

here = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(0)

# A classifier with string labels and feature names, trained with Adam (its moments are saved).
X = rng.normal(size=(60, 4))
labels = np.array(["cat", "dog", "owl"])[np.argmax(X[:, :3] + 0.3 * rng.normal(size=(60, 3)), 1)]
frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
clf = MLPClassifier(hidden_layer_sizes=(8, 5), activation=["tanh", "leaky_relu"], max_iter=30,
                    random_state=0).fit(frame, labels)
clf.save(os.path.join(here, "classifier.mlp"))

# A two-output regressor trained in float32 with SGD and Nesterov momentum.
Xr = rng.normal(size=(50, 3)).astype(np.float32)
Yr = np.column_stack([Xr @ [1.0, -2.0, 0.5], np.sin(Xr[:, 0])]).astype(np.float32)
reg = MLPRegressor(hidden_layer_sizes=(6,), solver="sgd", learning_rate_init=0.01, max_iter=25,
                   random_state=1).fit(Xr, Yr)
reg.save(os.path.join(here, "regressor.mlp"))

# A Model with a standalone activation layer, Adam and a history, in float64.
inputs = Dense(7, input_size=4, seed=3)
x = ReLU()(inputs)
outputs = Dense(2, activation="sigmoid", seed=4)(x)
model = Model(inputs, outputs)
model.compile("binary_cross_entropy", optimizer=Adam(beta_1=0.8), metrics=["accuracy"],
              dtype="float64")
Y = (X[:, :2] > 0).astype(float)
model.fit(X, Y, 5, 0.01, batch_size=16, seed=5, validation_data=(X[:10], Y[:10]))
model.save(os.path.join(here, "model.mlp"))

with open(os.path.join(here, "pickles.pkl"), "wb") as f:
    pickle.dump({"classifier": clf, "regressor": reg, "model": model}, f)

np.savez(os.path.join(here, "expected.npz"), X=X, Xr=Xr,
         clf_proba=clf.predict_proba(frame), clf_labels=clf.predict(frame).astype(str),
         reg_pred=reg.predict(Xr), model_pred=model.predict(X))
print("mlp", mlp.__version__, "wrote", sorted(os.listdir(here)))
