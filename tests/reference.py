"""float64 NumPy references for every kernel of ``mlp._core`` and for its whole-network
forward, loss, gradient and training epoch. Slow and plain on purpose: the tests compare the
C++ kernels against these.

Enum values are plain ints equal to ``mlp._core.ActivationKind`` / ``LossKind`` so that this file needs
nothing but NumPy. The loss convention (mlp/_core.pyi):

    L = scale * sum_n w_n * sum_k l(n, k) / sum_n w_n        (w_n = 1 without sample weights)

with l = (a - y)^2 (MSE), -y log_softmax(z) (CCE), softplus(z) - y z (BCE), exp(z) - y z (POISSON),
the fused ones taken from the logits z. The network's L2 term is 0.5 * alpha * sum_i ||W_i||^2,
divided by sum_n w_n when per_sample.
"""
from __future__ import annotations

import math

import numpy as np

IDENTITY, RELU, LEAKY_RELU, ELU, SIGMOID, TANH, SWISH, SOFTMAX, SELU, MISH, GELU, GELU_TANH = \
    range(12)
# selu's constants (Klambauer et al. 2017, eq. 14), written out here rather than read from _core
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
GELU_CUBIC = 0.044715
MSE, CCE, BCE, POISSON = range(4)


def f64(x):
    return np.asarray(x, dtype=np.float64)


# ---------------------------------------------------------------------------- activations


def sigmoid(z):
    """1 / (1 + exp(-z)) without overflow: exp only ever sees a non-positive argument."""
    z = f64(z)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def softplus(z):
    """log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|))."""
    z = f64(z)
    return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))


_erfc = np.vectorize(math.erfc, otypes=[np.float64])


def normal_cdf(z):
    """Phi(z) = erfc(-z / sqrt(2)) / 2 (the standard library's erfc, accurate in both tails)."""
    return 0.5 * _erfc(-f64(z) / math.sqrt(2.0))


def normal_pdf(z):
    z = f64(z)
    with np.errstate(over="ignore"):
        return np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


def tanh_softplus(z):
    """tanh(log(1 + e^z)), mish's factor."""
    return np.tanh(softplus(z))


def gelu_tanh_inner(z):
    """u = sqrt(2/pi) (z + 0.044715 z^3) and du/dz. z^3 is finite for |z| <= 5e102; beyond, u is
    +-inf, where tanh(u) = +-1 and sech(u)^2 = 0 are still right."""
    z = f64(z)
    c = math.sqrt(2.0 / math.pi)
    with np.errstate(over="ignore"):
        return c * (z + GELU_CUBIC * z ** 3), c * (1.0 + 3.0 * GELU_CUBIC * z * z)


def log_softmax(z):
    z = f64(z)
    s = z - z.max(axis=1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=1, keepdims=True))


def softmax(z):
    z = f64(z)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def activation_forward(z, act, alpha=0.0):
    act = int(act)  # an mlp._core enum compares equal only to its own type
    z = f64(z)
    if act == IDENTITY:
        return z.copy()
    if act == RELU:
        return np.maximum(z, 0.0)
    if act == LEAKY_RELU:
        return np.where(z > 0, z, alpha * z)
    if act == ELU:
        return np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0.0)))
    if act == SIGMOID:
        return sigmoid(z)
    if act == TANH:
        return np.tanh(z)
    if act == SWISH:
        return z * sigmoid(z)
    if act == SOFTMAX:
        return softmax(z)
    if act == SELU:
        return SELU_SCALE * np.where(z > 0, z, SELU_ALPHA * np.expm1(np.minimum(z, 0.0)))
    if act == MISH:
        return z * tanh_softplus(z)
    if act == GELU:
        return z * normal_cdf(z)
    if act == GELU_TANH:
        # 0.5 (1 + tanh(u)) = sigmoid(2u): no cancellation for z << 0
        return z * sigmoid(2.0 * gelu_tanh_inner(z)[0])
    raise ValueError(f"unknown activation {act}")


def activation_derivative(z, act, alpha=0.0):
    """Elementwise da/dz (not defined for SOFTMAX, whose Jacobian is not diagonal)."""
    act = int(act)  # an mlp._core enum compares equal only to its own type
    z = f64(z)
    if act == IDENTITY:
        return np.ones_like(z)
    if act == RELU:
        return (z > 0).astype(np.float64)
    if act == LEAKY_RELU:
        return np.where(z > 0, 1.0, alpha)
    if act == ELU:
        return np.where(z > 0, 1.0, alpha * np.exp(np.minimum(z, 0.0)))
    if act == SIGMOID:
        return sigmoid(z) * sigmoid(-z)
    if act == TANH:
        return 1.0 - np.tanh(z) ** 2
    if act == SWISH:
        # d/dz z s(z) = s(z) + z s(z) (1 - s(z)), with 1 - s(z) = s(-z) to keep precision
        s = sigmoid(z)
        return s * (1.0 + z * sigmoid(-z))
    if act == SELU:
        return SELU_SCALE * np.where(z > 0, 1.0, SELU_ALPHA * np.exp(np.minimum(z, 0.0)))
    if act == MISH:
        # d/dz z tanh(sp(z)) = tanh(sp) + z sech^2(sp) sp'(z), sp' = sigmoid; sech^2 from cosh,
        # which is inf (so sech^2 is 0) where it overflows
        sp = softplus(z)
        with np.errstate(over="ignore"):
            sech2 = 1.0 / np.cosh(sp) ** 2
        return tanh_softplus(z) + np.where(sech2 > 0, z * sech2 * sigmoid(z), 0.0)
    if act == GELU:
        pdf = normal_pdf(z)
        return normal_cdf(z) + np.where(pdf > 0, z * pdf, 0.0)
    if act == GELU_TANH:
        # d/dz 0.5 z (1 + tanh u) = 0.5 (1 + tanh u) + 0.5 z (1 - tanh^2 u) u'
        u, du = gelu_tanh_inner(z)
        with np.errstate(over="ignore", invalid="ignore"):
            sech2 = 1.0 / np.cosh(u) ** 2
            slope = np.where(sech2 > 0, 0.5 * z * sech2 * du, 0.0)
        return sigmoid(2.0 * u) + slope
    raise ValueError(f"no elementwise derivative for activation {act}")


def activation_backward(z, da, act, alpha=0.0):
    """dL/dz from dL/da; SOFTMAX: the row-wise Jacobian-vector product a * (da - sum(da * a))."""
    act = int(act)  # an mlp._core enum compares equal only to its own type
    z, da = f64(z), f64(da)
    if act == SOFTMAX:
        a = softmax(z)
        return a * (da - (da * a).sum(axis=1, keepdims=True))
    return da * activation_derivative(z, act, alpha)


# ---------------------------------------------------------------------------- dense layer


def gemm(a, b, trans_a=False, trans_b=False):
    a, b = f64(a), f64(b)
    return (a.T if trans_a else a) @ (b.T if trans_b else b)


def dense_forward(x, w, b, act, alpha=0.0):
    """x: (N, I) w: (I, O) b: (O,) -> z = x @ w + b, a = act(z)."""
    z = f64(x) @ f64(w) + f64(b)
    return z, activation_forward(z, act, alpha)


def dense_backward(x, w, z, g, act, alpha=0.0, g_is_dz=False):
    """g = dL/da (or dL/dz) -> dw = x^T dz, db = sum_n dz, dx = dz w^T."""
    dz = f64(g) if g_is_dz else activation_backward(z, g, act, alpha)
    return f64(x).T @ dz, dz.sum(axis=0), dz @ f64(w).T


# ---------------------------------------------------------------------------- losses


def _weights(n, sample_weight):
    return np.ones(n) if sample_weight is None else f64(sample_weight)


def loss_elements(z, a, y, loss):
    """l(n, k) of the convention; fused losses read the logits z, MSE reads a."""
    loss = int(loss)
    z, a, y = f64(z), f64(a), f64(y)
    with np.errstate(over="ignore", invalid="ignore"):
        if loss == MSE:
            return (a - y) ** 2
        if loss == CCE:
            # y = 0 times a finite log-probability is 0 even when that log-probability is huge
            return np.where(y != 0, -y * log_softmax(z), 0.0)
        if loss == BCE:
            return softplus(z) - y * z
        if loss == POISSON:
            return np.exp(z) - y * z
    raise ValueError(f"unknown loss {loss}")


def loss_forward(z, a, y, loss, sample_weight=None, scale=1.0):
    w = _weights(len(y), sample_weight)
    with np.errstate(over="ignore", invalid="ignore"):
        return float(scale * (w * loss_elements(z, a, y, loss).sum(axis=1)).sum() / w.sum())


def loss_backward(z, a, y, loss, act, alpha=0.0, sample_weight=None, scale=1.0):
    """dL/dz of the output layer. CCE's is the exact softmax(z) * sum_k y - y (equal to the fused
    a - y when the rows of y sum to 1)."""
    z, a, y, loss = f64(z), f64(a), f64(y), int(loss)
    w = _weights(len(y), sample_weight)
    with np.errstate(over="ignore", invalid="ignore"):
        if loss == MSE:
            dl = activation_backward(z, 2.0 * (a - y), act, alpha)
        elif loss == CCE:
            dl = softmax(z) * y.sum(axis=1, keepdims=True) - y
        elif loss == BCE:
            dl = sigmoid(z) - y
        elif loss == POISSON:
            dl = np.exp(z) - y
        else:
            raise ValueError(f"unknown loss {loss}")
        return scale * dl * (w / w.sum())[:, None]


# ---------------------------------------------------------------------------- optimizers


def sgd_step(params, grads, velocity, lr, momentum, nesterov):
    """sklearn's update: v = mu v - lr g; w += v (plain) or w += mu v - lr g (Nesterov).
    Returns new (params, velocity)."""
    p, g, v = f64(params), f64(grads), f64(velocity)
    v = momentum * v - lr * g
    p = p + (momentum * v - lr * g if nesterov else v)
    return p, v


def adam_step(params, grads, m, v, lr, beta1, beta2, eps, t):
    """Kingma & Ba with the bias correction folded into the step size. Returns (params, m, v)."""
    p, g, m, v = f64(params), f64(grads), f64(m), f64(v)
    m = beta1 * m + (1.0 - beta1) * g
    v = beta2 * v + (1.0 - beta2) * g * g
    lr_t = lr * np.sqrt(1.0 - beta2**t) / (1.0 - beta1**t)
    return p - lr_t * m / (np.sqrt(v) + eps), m, v


class SGD:
    """Reference optimizer state, mirroring Network.set_optimizer(SGD, momentum, nesterov)."""

    def __init__(self, n, momentum=0.0, nesterov=False):
        self.v = np.zeros(n)
        self.momentum, self.nesterov = momentum, nesterov

    def step(self, params, grads, lr):
        params, self.v = sgd_step(params, grads, self.v, lr, self.momentum, self.nesterov)
        return params


class Adam:
    def __init__(self, n, beta1=0.9, beta2=0.999, eps=1e-8):
        self.m, self.v, self.t = np.zeros(n), np.zeros(n), 0
        self.beta1, self.beta2, self.eps = beta1, beta2, eps

    def step(self, params, grads, lr):
        self.t += 1
        params, self.m, self.v = adam_step(params, grads, self.m, self.v, lr,
                                           self.beta1, self.beta2, self.eps, self.t)
        return params


# ---------------------------------------------------------------------------- whole network


class NetSpec:
    """What a native Network is built from, plus its L2 setting."""

    def __init__(self, sizes, activations, alphas=None, loss=MSE, scale=1.0,
                 l2=0.0, per_sample=True):
        self.sizes = [int(s) for s in sizes]
        self.activations = [int(a) for a in activations]
        self.alphas = ([0.0] * len(self.activations) if alphas is None
                       else [float(a) for a in alphas])
        self.loss, self.scale = int(loss), float(scale)
        self.l2, self.per_sample = float(l2), bool(per_sample)
        assert len(self.sizes) == len(self.activations) + 1 == len(self.alphas) + 1

    @property
    def n_params(self):
        return sum(i * o + o for i, o in zip(self.sizes[:-1], self.sizes[1:]))

    def offsets(self):
        """[(w_start, b_start, b_end)] per layer in the flat layout W0, b0, W1, b1, ..."""
        out, pos = [], 0
        for i, o in zip(self.sizes[:-1], self.sizes[1:]):
            out.append((pos, pos + i * o, pos + i * o + o))
            pos += i * o + o
        return out

    def unpack(self, params):
        params = f64(params)
        assert params.shape == (self.n_params,)
        return [(params[w0:b0].reshape(i, o), params[b0:b1])
                for (w0, b0, b1), i, o in zip(self.offsets(), self.sizes[:-1], self.sizes[1:])]


def network_forward(spec, params, x):
    """Returns (zs, acts) with acts[0] = x and acts[i + 1] = act_i(zs[i])."""
    acts, zs = [f64(x)], []
    for (w, b), act, alpha in zip(spec.unpack(params), spec.activations, spec.alphas):
        z, a = dense_forward(acts[-1], w, b, act, alpha)
        zs.append(z)
        acts.append(a)
    return zs, acts


def network_predict(spec, params, x):
    return network_forward(spec, params, x)[1][-1]


def _l2_divisor(spec, x, sample_weight):
    return _weights(len(x), sample_weight).sum() if spec.per_sample else 1.0


def network_loss(spec, params, x, y, sample_weight=None):
    zs, acts = network_forward(spec, params, x)
    loss = loss_forward(zs[-1], acts[-1], y, spec.loss, sample_weight, spec.scale)
    if spec.l2:
        sq = sum((w * w).sum() for w, _ in spec.unpack(params))
        loss += 0.5 * spec.l2 * sq / _l2_divisor(spec, x, sample_weight)
    return loss


def network_loss_and_grad(spec, params, x, y, sample_weight=None):
    """Backpropagation in float64; the gradient is flat, in the params layout."""
    zs, acts = network_forward(spec, params, x)
    layers = spec.unpack(params)
    loss = loss_forward(zs[-1], acts[-1], y, spec.loss, sample_weight, spec.scale)
    g = loss_backward(zs[-1], acts[-1], y, spec.loss, spec.activations[-1], spec.alphas[-1],
                      sample_weight, spec.scale)
    grads = [None] * len(layers)
    for i in reversed(range(len(layers))):
        w, _ = layers[i]
        dw, db, dx = dense_backward(acts[i], w, zs[i], g, spec.activations[i], spec.alphas[i],
                                    g_is_dz=True)
        grads[i] = (dw, db)
        if i > 0:
            g = activation_backward(zs[i - 1], dx, spec.activations[i - 1], spec.alphas[i - 1])
    if spec.l2:
        div = _l2_divisor(spec, x, sample_weight)
        loss += 0.5 * spec.l2 * sum((w * w).sum() for w, _ in layers) / div
        grads = [(dw + spec.l2 * w / div, db) for (dw, db), (w, _) in zip(grads, layers)]
    flat = np.concatenate([np.concatenate([dw.ravel(), db]) for dw, db in grads])
    return loss, flat


def network_train_epoch(spec, params, x, y, sample_weight, batch_size, lr, optimizer):
    """One epoch over consecutive batches (shuffle=False). Each batch's loss is taken before its
    update; the epoch loss is their mean weighted by each batch's weight sum (its row count
    without sample weights). Returns (params, epoch_loss)."""
    params = f64(params).copy()
    n = len(x)
    total, weight = 0.0, 0.0
    for start in range(0, n, batch_size):
        sl = slice(start, min(start + batch_size, n))
        sw = None if sample_weight is None else f64(sample_weight)[sl]
        loss, grad = network_loss_and_grad(spec, params, x[sl], y[sl], sw)
        wb = float(sl.stop - sl.start) if sw is None else float(sw.sum())
        total += loss * wb
        weight += wb
        params = optimizer.step(params, grad, lr)
    return params, total / weight


def make_targets(rng, loss, shape):
    """Targets that suit each loss: any real for MSE; rows summing to 1 for CCE (soft labels and
    one-hot rows, where the fused a - y is the exact gradient); [0, 1] for BCE; counts for
    POISSON."""
    n, o = shape
    loss = int(loss)
    if loss == MSE:
        return rng.standard_normal(shape)
    if loss == CCE:
        y = rng.dirichlet(np.ones(o), size=n)
        y[::2] = np.eye(o)[rng.integers(0, o, size=len(y[::2]))]
        return y
    if loss == BCE:
        y = rng.uniform(size=shape)
        y[::2] = np.round(y[::2])
        return y
    if loss == POISSON:
        return rng.poisson(2.0, size=shape).astype(np.float64)
    raise ValueError(f"unknown loss {loss}")
