"""float64 numpy references of the training features: dropout masks, embeddings, label smoothing,
decoupled weight decay, global-norm clipping and the schedules, derived from their definitions
(not from mlp's code), beside tests/reference.py's layers and losses."""
from __future__ import annotations

import math

import numpy as np

import reference as ref

M64 = (1 << 64) - 1


def _mix64(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def row_key(seed: int, step: int, layer: int, row: int) -> int:
    """The 32-bit key of (seed, step, layer, row): three splitmix64 finalizer rounds."""
    k = _mix64((seed + 0x9E3779B97F4A7C15 * (step + 1)) & M64)
    k = _mix64((k + 0xC2B2AE3D27D4EB4F * (layer + 1)) & M64)
    k = _mix64((k + 0xD1B54A32D192ED03 * (row + 1)) & M64)
    return k >> 32


def unit_bits(key: int, units: int) -> np.ndarray:
    """murmur3's 32-bit finalizer of key + unit * 0x9E3779B9 for units 0..units-1."""
    with np.errstate(over="ignore"):
        h = np.uint32(key) + np.arange(units, dtype=np.uint32) * np.uint32(0x9E3779B9)
        h ^= h >> np.uint32(16)
        h *= np.uint32(0x85EBCA6B)
        h ^= h >> np.uint32(13)
        h *= np.uint32(0xC2B2AE35)
        h ^= h >> np.uint32(16)
    return h


def threshold(rate: float) -> int:
    return min(int(math.floor(rate * 2.0 ** 32)), 2 ** 32 - 1) if rate > 0 else 0


def dropout_mask(seed, step, layer, rows, units, rate) -> np.ndarray:
    """(len(rows), units): 1 / (1 - rate) where a unit is kept, 0 where dropped."""
    thr = threshold(rate)
    keep = np.stack([unit_bits(row_key(seed, step, layer, int(r)), units) >= thr for r in rows])
    return keep / (1.0 - rate)


class FeatureNet:
    """A network with embeddings (column, rows, width), per-layer dropout, label smoothing and
    an ensemble of k members (member g of sample i sees its input times adapter r_g, is row
    i * k + g, and the loss is the members' mean), in the core's parameter layout: W0, b0, ...,
    W_L, b_L, then the tables, then the adapters (k, sizes[0])."""

    def __init__(self, n_inputs, sizes, activations, alphas, loss, scale, embeddings=(),
                 dropout=None, label_smoothing=0.0, ensemble=1):
        self.n_inputs, self.embeddings, self.k = n_inputs, list(embeddings), int(ensemble)
        self.net = ref.NetSpec(sizes, activations, alphas, loss, scale)
        self.dropout = list(dropout) if dropout is not None else [0.0] * len(activations)
        self.label_smoothing = float(label_smoothing)

    @property
    def n_params(self):
        adapters = self.k * self.net.sizes[0] if self.k > 1 else 0
        return self.net.n_params + sum(r * w for _, r, w in self.embeddings) + adapters

    def split(self, params):
        params = ref.f64(params)
        layers = self.net.unpack(params[:self.net.n_params])
        tables, at = [], self.net.n_params
        for _, rows, width in self.embeddings:
            tables.append(params[at:at + rows * width].reshape(rows, width))
            at += rows * width
        self._adapters = params[at:].reshape(self.k, -1) if self.k > 1 else None
        return layers, tables

    def members(self, x0):
        """(n * k, in0): row i * k + g is x0[i] * r_g."""
        if self.k == 1:
            return x0
        return (x0[:, None, :] * self._adapters[None, :, :]).reshape(-1, x0.shape[1])

    def first_input(self, tables, x):
        x = ref.f64(x)
        embedded = {c for c, _, _ in self.embeddings}
        parts = [t[x[:, c].astype(np.int64)] for (c, _, _), t in zip(self.embeddings, tables)]
        parts.append(x[:, [c for c in range(self.n_inputs) if c not in embedded]])
        return np.concatenate(parts, axis=1)

    def masks(self, seed, step, n, training):
        out = []
        rows = range(n * self.k)  # member rows: data row i, member g is i * k + g
        for layer, (rate, units) in enumerate(zip(self.dropout, self.net.sizes[1:])):
            out.append(dropout_mask(seed, step, layer, rows, units, rate)
                       if training and rate > 0 else None)
        return out

    def targets(self, y):
        ls = self.label_smoothing
        if not ls:
            return ref.f64(y)
        k = 2 if self.net.loss == int(ref.BCE) else y.shape[1]
        return ref.f64(y) * (1.0 - ls) + ls / k

    def loss_and_grad(self, params, x, y, seed=0, step=0, training=True):
        layers, tables = self.split(params)
        masks = self.masks(seed, step, len(x), training)
        x0 = self.first_input(tables, x)
        a, acts, zs = self.members(x0), [], []
        acts.append(a)
        y = np.repeat(ref.f64(y), self.k, axis=0)
        for (w, b), act, alpha, m in zip(layers, self.net.activations, self.net.alphas, masks):
            z, a = ref.dense_forward(acts[-1], w, b, act, alpha)
            if m is not None:
                a = a * m
            zs.append(z)
            acts.append(a)
        yt = self.targets(y)
        spec = self.net
        loss = ref.loss_forward(zs[-1], acts[-1], yt, spec.loss, None, spec.scale)
        g = ref.loss_backward(zs[-1], acts[-1], yt, spec.loss, spec.activations[-1],
                              spec.alphas[-1], None, spec.scale)
        grads = [None] * len(layers)
        dx0 = None
        for i in reversed(range(len(layers))):
            w, _ = layers[i]
            dw, db, dx = ref.dense_backward(acts[i], w, zs[i], g, spec.activations[i],
                                            spec.alphas[i], g_is_dz=True)
            grads[i] = (dw, db)
            if i > 0:
                g = ref.activation_backward(zs[i - 1], dx, spec.activations[i - 1],
                                            spec.alphas[i - 1])
                if masks[i - 1] is not None:
                    g = g * masks[i - 1]
            else:
                dx0 = dx
        flat = [np.concatenate([dw.ravel(), db]) for dw, db in grads]
        if self.k > 1:
            dxe = dx0.reshape(len(x), self.k, -1)
            grad_adapters = (dxe * x0[:, None, :]).sum(axis=0)
            dx0 = (dxe * self._adapters[None, :, :]).sum(axis=1)
        pos = 0
        for (c, rows, width), t in zip(self.embeddings, tables):
            gt = np.zeros((rows, width))
            np.add.at(gt, ref.f64(x)[:, c].astype(np.int64), dx0[:, pos:pos + width])
            flat.append(gt.ravel())
            pos += width
        if self.k > 1:
            flat.append(grad_adapters.ravel())
        return loss, np.concatenate(flat)

    def predict(self, params, x):
        layers, tables = self.split(params)
        a = self.members(self.first_input(tables, x))
        for (w, b), act, alpha in zip(layers, self.net.activations, self.net.alphas):
            _, a = ref.dense_forward(a, w, b, act, alpha)
        return a.reshape(len(x), self.k, -1).mean(axis=1)


def adam_step(p, g, m, v, t, lr, b1=0.9, b2=0.999, eps=1e-8, decay=0.0, decay_mask=None):
    """One Adam step (bias-corrected) plus decoupled decay lr * weight_decay on the masked
    entries: returns (p, m, v)."""
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    lr_t = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
    new = p - lr_t * m / (np.sqrt(v) + eps)
    if decay:
        new = new - decay * p * (decay_mask if decay_mask is not None else 1.0)
    return new, m, v


def clip_factor(g, clipnorm):
    return min(1.0, clipnorm / (float(np.linalg.norm(g)) + 1e-6))


def cosine(t, floor):
    t = min(max(t, 0.0), 1.0)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))
