"""Optimizer settings: SGD (plain, momentum, Nesterov), Adam and AdamW.

The settings are handed to the C++ Network, which owns the optimizer state on the native path.
Each class also carries a small numpy step for the slow Python path (a model with a user's own
layer), so both paths apply the same update rule.
"""
from __future__ import annotations

import math

import numpy as np

from . import _format, _spec, schedules
from ._validation import check_bool, check_fraction, check_non_negative_float, check_positive_float


class Optimizer:
    """Base class of the optimizer settings.

    Parameters
    ----------
    l2 : float, default=0.0
        L2 penalty ``0.5 * l2 * sum ||W||^2`` over the weights (biases excluded), added to the
        loss; its gradient ``l2 * W`` is added at every step.
    weight_decay : float or Schedule, default=0.0
        Decoupled weight decay (Loshchilov & Hutter's AdamW; Keras's and PyTorch's AdamW
        spelling): every step also does ``W -= lr * weight_decay * W``, with ``lr`` the step's
        (scheduled) learning rate, outside the gradient and the moments. A schedule of
        `mlp.schedules` makes it follow the fit.
    decay_bias : bool, default=False
        Decay the biases too (by default only weight matrices and embedding tables decay).
    clipnorm : float, optional
        Clip the gradient by its global norm: when ``||g|| > clipnorm`` over all parameters, the
        step uses ``g * clipnorm / ||g||`` (PyTorch's ``clip_grad_norm_``; Keras's
        ``global_clipnorm``). The L2 term is added after clipping.
    """

    name = "optimizer"

    def __init__(self, l2: float = 0.0, weight_decay=0.0, decay_bias: bool = False,
                 clipnorm: float | None = None) -> None:
        self.l2 = check_non_negative_float(l2, "l2")
        self.weight_decay = schedules.check_value_or_schedule(weight_decay, "weight_decay")
        self.decay_bias = check_bool(decay_bias, "decay_bias")
        self.clipnorm = None if clipnorm is None else check_positive_float(clipnorm, "clipnorm")
        self._state: dict[int, list[np.ndarray]] = {}
        self._t = 0

    def _configure(self, net) -> None:
        """Set the update rule and the penalty on a ``_core.Network`` (resets its state)."""
        raise NotImplementedError

    def _core_settings(self) -> dict:
        """The keyword arguments every optimizer passes to ``Network.set_optimizer``."""
        return {"weight_decay": schedules.initial_of(self.weight_decay),
                "decay_bias": self.decay_bias, "clipnorm": self.clipnorm or 0.0}

    def _common_params(self) -> dict:
        wd = self.weight_decay
        return {"l2": self.l2,
                "weight_decay": wd._to_config() if isinstance(wd, schedules.Schedule) else wd,
                "decay_bias": self.decay_bias, "clipnorm": self.clipnorm}

    def reset(self) -> None:
        """Forget the Python path's optimizer state (velocities, moments, step count)."""
        self._state = {}
        self._t = 0

    def _step(self, pairs, lr: float) -> None:
        """One in-place update of the Python path: `pairs` holds (param, grad, is_weight).
        A weight-decay schedule acts in the native network only; here its initial value does."""
        self._t += 1
        pairs = list(pairs)
        scale = 1.0
        if self.clipnorm:
            norm = math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for _, g, _ in pairs))
            scale = min(1.0, self.clipnorm / (norm + 1e-6))
        decay = lr * schedules.initial_of(self.weight_decay)
        for param, grad, is_weight in pairs:
            if scale != 1.0:
                grad = grad * param.dtype.type(scale)
            if is_weight and self.l2:
                grad = grad + param.dtype.type(self.l2) * param
            state = self._state.get(id(param))
            if state is None or state[0].shape != param.shape:
                state = self._state[id(param)] = [np.zeros_like(param), np.zeros_like(param)]
            if decay and (is_weight or self.decay_bias):
                # The update reads only the gradient and the state, so decaying first gives
                # p + update - decay * p, the core's formula, without a copy of p.
                param -= param.dtype.type(decay) * param
            self._update(param, grad, state, lr)

    def _update(self, param, grad, state, lr) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        # The decay and clipping settings are shown only when set.
        unset = {"weight_decay": 0.0, "decay_bias": False, "clipnorm": None}
        params = {k: v for k, v in self._params().items() if k not in unset or v != unset[k]}
        if isinstance(self.weight_decay, schedules.Schedule):
            params["weight_decay"] = self.weight_decay
        args = ", ".join(f"{k}={v!r}" for k, v in params.items())
        return f"{type(self).__name__}({args})"

    def _params(self) -> dict:
        return self._common_params()

    # -- state (a Model saves its optimizer through these) -------------------------------------
    def _to_config(self) -> dict:
        """``{'class', 'settings'}``; a user's own optimizer cannot be described."""
        if OPTIMIZER_CLASSES.get(type(self).__name__) is not type(self):
            raise _format.UnsupportedError(f"the optimizer is a {type(self).__name__}, a user's "
                                           f"own; only SGD, Momentum, Adam and AdamW can be saved")
        return {"class": type(self).__name__, "settings": _format.encode(self._params())}

    @property
    def step_count(self) -> int:
        """Steps the Python path has taken (Adam's bias correction reads it)."""
        return self._t

    def _buffers(self, param: np.ndarray) -> list | None:
        """The Python path's buffers for `param` (velocity, or Adam's two moments), if any."""
        return self._state.get(id(param))

    def _restore_buffers(self, params_and_buffers, step: int) -> None:
        """Put back what `_buffers` gave, for the (new) arrays of the same parameters."""
        self._state = {id(param): list(buffers) for param, buffers in params_and_buffers}
        self._t = int(step)


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with momentum or Nesterov momentum.

    The update is scikit-learn's: ``v = momentum * v - lr * g``; ``w += v`` (Nesterov:
    ``w += momentum * v - lr * g``). With ``momentum=0`` it is the spec's plain step
    ``w -= lr * g``.

    Parameters
    ----------
    momentum : float, default=0.0
        In [0, 1).
    nesterov : bool, default=False
    l2, weight_decay, decay_bias, clipnorm : float, float or Schedule, bool, float
        See `Optimizer`.

    Examples
    --------
    >>> model.compile("mse", optimizer=SGD(momentum=0.9, nesterov=True))  # doctest: +SKIP
    """

    name = "sgd"

    def __init__(self, momentum: float = 0.0, nesterov: bool = False, l2: float = 0.0,
                 weight_decay=0.0, decay_bias: bool = False, clipnorm: float | None = None) -> None:
        super().__init__(l2, weight_decay, decay_bias, clipnorm)
        self.momentum = check_fraction(momentum, "momentum")
        self.nesterov = check_bool(nesterov, "nesterov")

    def _configure(self, net) -> None:
        net.set_optimizer(_spec.OPTIMIZER_KIND.SGD, momentum=self.momentum, nesterov=self.nesterov,
                          **self._core_settings())
        net.set_l2(self.l2, False)

    def _update(self, param, grad, state, lr) -> None:
        v = state[0]
        step = param.dtype.type(lr) * grad
        v *= param.dtype.type(self.momentum)
        v -= step
        if self.nesterov:
            param += param.dtype.type(self.momentum) * v - step
        else:
            param += v

    def _params(self) -> dict:
        return {"momentum": self.momentum, "nesterov": self.nesterov, **self._common_params()}


class Momentum(SGD):
    """SGD with momentum 0.9 by default (see `SGD` for the update).

    Parameters
    ----------
    momentum : float, default=0.9
        In [0, 1).
    nesterov : bool, default=False
    l2, weight_decay, decay_bias, clipnorm : float, float or Schedule, bool, float
        See `Optimizer`.
    """

    name = "momentum"

    def __init__(self, momentum: float = 0.9, nesterov: bool = False, l2: float = 0.0,
                 weight_decay=0.0, decay_bias: bool = False, clipnorm: float | None = None) -> None:
        super().__init__(momentum, nesterov, l2, weight_decay, decay_bias, clipnorm)


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction.

    ``m = b1 m + (1 - b1) g``; ``v = b2 v + (1 - b2) g^2``;
    ``w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + epsilon)``.

    Parameters
    ----------
    beta_1 : float, default=0.9
        In [0, 1).
    beta_2 : float, default=0.999
        In [0, 1).
    epsilon : float, default=1e-8
        > 0.
    l2, weight_decay, decay_bias, clipnorm : float, float or Schedule, bool, float
        See `Optimizer`. With ``weight_decay > 0`` this is AdamW.
    """

    name = "adam"

    def __init__(self, beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-8,
                 l2: float = 0.0, weight_decay=0.0, decay_bias: bool = False,
                 clipnorm: float | None = None) -> None:
        super().__init__(l2, weight_decay, decay_bias, clipnorm)
        self.beta_1 = check_fraction(beta_1, "beta_1")
        self.beta_2 = check_fraction(beta_2, "beta_2")
        self.epsilon = check_positive_float(epsilon, "epsilon")

    def _configure(self, net) -> None:
        net.set_optimizer(_spec.OPTIMIZER_KIND.ADAM, beta1=self.beta_1, beta2=self.beta_2,
                          eps=self.epsilon, **self._core_settings())
        net.set_l2(self.l2, False)

    def _update(self, param, grad, state, lr) -> None:
        m, v = state
        t = self._t
        m *= self.beta_1
        m += (1.0 - self.beta_1) * grad
        v *= self.beta_2
        v += (1.0 - self.beta_2) * grad * grad
        lr_t = lr * np.sqrt(1.0 - self.beta_2 ** t) / (1.0 - self.beta_1 ** t)
        param -= param.dtype.type(lr_t) * m / (np.sqrt(v) + param.dtype.type(self.epsilon))

    def _params(self) -> dict:
        return {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                **self._common_params()}


class AdamW(Adam):
    """Adam with decoupled weight decay, 0.01 by default (PyTorch's AdamW default).

    ``W -= lr * weight_decay * W`` each step besides Adam's update (see `Optimizer`); unlike an
    L2 penalty, the decay does not pass through the moments, so every weight decays at the same
    rate whatever its gradient scale.

    Parameters
    ----------
    beta_1, beta_2, epsilon : float
        See `Adam`.
    l2, decay_bias, clipnorm : float, bool, float
        See `Optimizer`.
    weight_decay : float or Schedule, default=0.01

    Examples
    --------
    >>> model.compile("mse", optimizer=AdamW(weight_decay=0.02))  # doctest: +SKIP
    """

    name = "adamw"

    def __init__(self, beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-8,
                 l2: float = 0.0, weight_decay=0.01, decay_bias: bool = False,
                 clipnorm: float | None = None) -> None:
        super().__init__(beta_1, beta_2, epsilon, l2, weight_decay, decay_bias, clipnorm)


OPTIMIZER_CLASSES = {"SGD": SGD, "Momentum": Momentum, "Adam": Adam, "AdamW": AdamW}


def from_config(spec, where: str = "optimizer") -> Optimizer:
    """The optimizer `spec` (untrusted, from `Optimizer._to_config`) describes, freshly reset.

    Raises
    ------
    ValueError, TypeError
        If `spec` is malformed (ValueError), or its settings are refused by the class.
    """
    _format.check_keys(spec, where, required=("class", "settings"))
    cls = OPTIMIZER_CLASSES[_format.check_choice(spec["class"], f"{where}.class",
                                                 tuple(OPTIMIZER_CLASSES))]
    settings = _format.check_dict(_format.decode(spec["settings"], f"{where}.settings"),
                                  f"{where}.settings")
    if isinstance(settings.get("weight_decay"), dict):
        settings["weight_decay"] = schedules.from_config(settings["weight_decay"],
                                                         f"{where}.settings.weight_decay")
    return cls(**settings)


_NAMES = {
    "sgd": SGD,
    "momentum": Momentum,
    "nesterov": lambda: Momentum(nesterov=True),
    "adam": Adam,
    "adamw": AdamW,
}


def get_optimizer(optimizer, argument: str = "optimizer") -> Optimizer:
    """Resolve 'sgd', 'momentum', 'nesterov', 'adam', 'adamw' or an Optimizer instance.

    A name gives a fresh instance with default settings; an instance is used as it is.

    Raises
    ------
    TypeError
        If `optimizer` is neither a string nor an Optimizer.
    ValueError
        If the name is unknown; the message lists the valid ones.
    """
    if isinstance(optimizer, Optimizer):
        return optimizer
    if not isinstance(optimizer, str):
        raise TypeError(f"{argument} must be a name or an Optimizer instance such as Adam(), "
                        f"got {type(optimizer).__name__}")
    try:
        return _NAMES[optimizer]()
    except KeyError:
        valid = ", ".join(repr(n) for n in _NAMES)
        raise ValueError(f"unknown optimizer {optimizer!r} for {argument}; valid names: {valid}") from None
