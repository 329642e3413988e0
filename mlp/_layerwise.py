"""Layer-by-layer training: each layer's forward / backward / update in turn, batch by batch.

A Model takes it only when a layer is a user's own (its math lives in Python, so the C++ Network
cannot run it). Built-in layers inside still compute through the C++ kernels, one call at a time.
The output layer's derivative is the fused one for softmax + cross-entropy and sigmoid + binary
cross-entropy, computed by the core from the logits, exactly as the native path does.
"""
from __future__ import annotations

import math

import numpy as np

from . import _core
from .layers import Activation, Dense, Layer
from .losses import Loss
from .optimizers import Optimizer


def _plain_dense(layer: Layer) -> bool:
    """A Dense whose math is the built-in one (a subclass may have replaced it)."""
    return isinstance(layer, Dense) and layer._is_plain()


def _overrides_update(layer: Layer) -> bool:
    # The spec's base Layer.update raises NotImplementedError; a layer that never overrode it
    # has nothing to update (e.g. one that takes its step inside backward), so it is skipped.
    return type(layer).update is not Layer.update


class LayerwiseTrainer:
    """Train or evaluate a chain of layers in Python.

    Parameters
    ----------
    layers : list of Layer
        In order from input to output.
    loss : Loss
    optimizer : Optimizer
        Steps the built-in Dense layers; other layers take their own step in ``update``.
    """

    def __init__(self, layers: list[Layer], loss: Loss, optimizer: Optimizer) -> None:
        self.layers = layers
        self.loss = loss
        self.optimizer = optimizer
        last = layers[-1]
        # How the output layer's derivative is found: from the core's fused formula when the
        # output is a built-in activation, else from the numpy loss derivative (mse only: compile
        # refuses the cross-entropies without their softmax/sigmoid).
        if _plain_dense(last) and last.activation.is_builtin:
            self.output_kind = "dense"
        elif isinstance(last, Activation) and last.is_builtin:
            self.output_kind = "activation"
        else:
            self.output_kind = "custom"

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Run every layer's forward; returns the output as a 2-D array."""
        a = x
        for layer in self.layers:
            a = layer.forward(a)
        a = np.asarray(a)
        return a.reshape(len(x), -1) if a.ndim != 2 else a

    def _output(self):
        """(z, a, activation) of the output layer after a forward pass."""
        last = self.layers[-1]
        if self.output_kind == "dense":
            return last._z, last.output, last.activation
        return last.input, last.output, last

    def _loss_value(self, y: np.ndarray, out: np.ndarray) -> float:
        if self.output_kind == "custom":
            value = self.loss.forward(y, out)
        else:
            z, a, _ = self._output()
            y = np.ascontiguousarray(y, dtype=a.dtype)
            value = _core.loss_forward(z, a, y, self.loss.kind, None, self.loss.scale(a.shape[1]))
        l2 = self.optimizer.l2
        if l2:
            value += 0.5 * l2 * sum(float(np.sum(np.square(layer.weights, dtype=np.float64)))
                                    for layer in self.layers if isinstance(layer, Dense))
        return float(value)

    def _backward(self, y: np.ndarray, out: np.ndarray, lr: float) -> None:
        layers = self.layers
        last = layers[-1]
        first_needs_dx = len(layers) > 1
        if self.output_kind == "custom":
            g = np.asarray(self.loss.backward(y, out)).reshape(out.shape)
            g = last.backward(g.astype(out.dtype, copy=False), lr)
        else:
            z, a, act = self._output()
            y = np.ascontiguousarray(y, dtype=a.dtype)
            dz = _core.loss_backward(z, a, y, self.loss.kind, act.kind, act.alpha, None,
                                     self.loss.scale(a.shape[1]))
            # For a standalone activation, dL/dz is already the error of the layer before it.
            g = last._backward(dz, True, first_needs_dx) if self.output_kind == "dense" else dz
        for i in range(len(layers) - 2, -1, -1):
            layer = layers[i]
            if i == 0 and _plain_dense(layer):
                layer._backward(g, False, False)  # the input's gradient is never needed
            else:
                g = layer.backward(g, lr)

    def _update(self, lr: float) -> bool:
        """Apply the step; returns False (and leaves the Dense layers as they were) when the
        step would make a weight non-finite."""
        pairs = []
        for layer in self.layers:
            if isinstance(layer, Dense) and type(layer).update is Dense.update:
                pairs.append((layer.weights, layer.dweights, True))
                pairs.append((layer.bias, layer.dbias, False))
        # The native path promises finite weights after a diverging fit; keeping a copy is
        # affordable here, where each batch already costs several Python calls per layer.
        saved = [param.copy() for param, _, _ in pairs]
        with np.errstate(over="ignore", invalid="ignore"):
            self.optimizer._step(pairs, lr)
        if not all(np.isfinite(param).all() for param, _, _ in pairs):
            for (param, _, _), old in zip(pairs, saved):
                param[...] = old
            return False
        for layer in self.layers:
            if not (isinstance(layer, Dense) and type(layer).update is Dense.update) \
                    and _overrides_update(layer):
                layer.update(lr)
        return True

    def train_batch(self, x: np.ndarray, y: np.ndarray, lr: float) -> float:
        """One forward, backward and update; returns the batch loss before the update.

        A non-finite loss is returned without applying the update, as the native path does;
        so is NaN when the update itself would overflow the weights.
        """
        out = self.forward(x)
        with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported, not warned
            value = self._loss_value(y, out)
        if not math.isfinite(value):
            return value
        self._backward(y, out, lr)
        return value if self._update(lr) else math.nan

    def train_epoch(self, x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool, lr: float,
                    rng: np.random.Generator) -> float:
        """One pass over the data; returns the mean of the batch losses weighted by batch size,
        or NaN as soon as a batch's loss is not finite."""
        n = x.shape[0]
        order = rng.permutation(n) if shuffle else None
        total = 0.0
        for start in range(0, n, batch_size):
            if order is None:
                xb, yb = x[start:start + batch_size], y[start:start + batch_size]
            else:
                rows = order[start:start + batch_size]
                xb, yb = x[rows], y[rows]
            value = self.train_batch(xb, yb, lr)
            if not math.isfinite(value):
                return math.nan
            total += value * xb.shape[0]
        return total / n

    def evaluate_loss(self, x: np.ndarray, y: np.ndarray) -> float:
        """The loss over the whole data as one batch (L2 included), no update."""
        return self._loss_value(y, self.forward(x))
