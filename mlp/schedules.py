"""Schedules of the learning rate, the weight decay and the dropout rate, evaluated per step.

A schedule is passed where a number would go: ``model.fit(x, y, 50, CosineDecay(0.01))``,
``AdamW(weight_decay=CosineDecay(0.05))``, ``Dropout(CosineDecay(0.3))``. The C++ core evaluates
it at every optimizer step (``csrc/schedule.hpp``), never Python per batch. Step 0 is the fit's
first step; a schedule without a length (``decay_steps=None`` / ``total_steps=None``) spans the
fit: ``epochs * ceil(n_samples / batch_size)`` steps.

The methods here compute the same factors in float64, for tests and for the per-epoch
'learning_rate' that `history` logs.
"""
from __future__ import annotations

import math

from . import _format
from ._validation import check_fraction, check_non_negative_float, check_positive_int

# The core's codes (csrc/schedule.hpp, SchedKind) and slots (SchedSlot).
_CONSTANT, _LINEAR_WARMUP, _COSINE, _FLAT_COSINE, _COSLOG4 = range(5)
SLOT_LEARNING_RATE, SLOT_WEIGHT_DECAY, SLOT_DROPOUT = range(3)


def _cosine(t: float, floor: float) -> float:
    t = min(max(t, 0.0), 1.0)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * t))


class Schedule:
    """Base class: a value ``initial * factor(step)``.

    Subclasses set `_kind` and describe themselves through `_settings`; a user's own subclass
    cannot run in the core and is refused where it is passed.
    """

    _kind = _CONSTANT

    def __init__(self, initial) -> None:
        self.initial = check_non_negative_float(initial, "initial")

    # -- the core's description ---------------------------------------------------------------
    def _settings(self, total_steps: int) -> dict:
        """``kind, warmup, total, floor, flat`` for ``_core.Network.set_schedule``."""
        return {"kind": self._kind, "warmup": 0.0, "total": float(max(1, total_steps)),
                "floor": 0.0, "flat": 0.0}

    def factor(self, step: int, total_steps: int) -> float:
        """The factor of step `step` (0-based) of a fit of `total_steps` steps."""
        return 1.0

    def __call__(self, step: int, total_steps: int = 1) -> float:
        """The value at step `step` of a fit of `total_steps` steps."""
        return self.initial * self.factor(step, total_steps)

    # -- state --------------------------------------------------------------------------------
    def _params(self) -> dict:
        return {"initial": self.initial}

    def _to_config(self) -> dict:
        if SCHEDULE_CLASSES.get(type(self).__name__) is not type(self):
            raise _format.UnsupportedError(f"the schedule is a {type(self).__name__}, a user's "
                                           f"own; only mlp.schedules' classes can be saved")
        return {"class": type(self).__name__, "settings": _format.encode(self._params())}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self._params() == other._params()

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(self._params().items()))))


def _steps(value, name: str):
    return None if value is None else check_positive_int(value, name)


class Constant(Schedule):
    """The same value at every step."""

    _kind = _CONSTANT


class LinearWarmup(Schedule):
    """A linear ramp over `warmup_steps` steps, to `initial` at step ``warmup_steps - 1``, then
    constant: ``initial * min(1, (step + 1) / warmup_steps)``."""

    _kind = _LINEAR_WARMUP

    def __init__(self, initial, warmup_steps: int) -> None:
        super().__init__(initial)
        self.warmup_steps = check_positive_int(warmup_steps, "warmup_steps")

    def _settings(self, total_steps):
        return dict(super()._settings(total_steps), warmup=float(self.warmup_steps))

    def factor(self, step, total_steps):
        return min(1.0, (step + 1) / self.warmup_steps)

    def _params(self):
        return {"initial": self.initial, "warmup_steps": self.warmup_steps}


class CosineDecay(Schedule):
    """Optional linear warmup, then a cosine from `initial` down to ``alpha * initial``.

    As Keras's ``CosineDecay``: after `warmup_steps` steps of linear warmup, step ``k`` of the
    decay has ``initial * (alpha + (1 - alpha) * (1 + cos(pi * k / decay_steps)) / 2)``.

    Parameters
    ----------
    initial : float
        >= 0.
    decay_steps : int, optional
        Steps of the cosine; None (the default) decays over the rest of the fit.
    alpha : float, default=0.0
        The final fraction of `initial`, in [0, 1].
    warmup_steps : int, default=0
    """

    _kind = _COSINE

    def __init__(self, initial, decay_steps: int | None = None, alpha: float = 0.0,
                 warmup_steps: int = 0) -> None:
        super().__init__(initial)
        self.decay_steps = _steps(decay_steps, "decay_steps")
        self.alpha = check_fraction(alpha, "alpha")
        self.warmup_steps = check_positive_int(warmup_steps, "warmup_steps", minimum=0)

    def _total(self, total_steps: int) -> int:
        if self.decay_steps is None:
            return max(1, total_steps)
        return self.warmup_steps + self.decay_steps

    def _settings(self, total_steps):
        return dict(super()._settings(total_steps), warmup=float(self.warmup_steps),
                    total=float(self._total(total_steps)), floor=self.alpha)

    def factor(self, step, total_steps):
        if self.warmup_steps and step + 1 < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        span = self._total(total_steps) - self.warmup_steps
        return _cosine((step - self.warmup_steps) / span if span > 0 else 1.0, self.alpha)

    def _params(self):
        return {"initial": self.initial, "decay_steps": self.decay_steps, "alpha": self.alpha,
                "warmup_steps": self.warmup_steps}


class FlatCosine(Schedule):
    """`initial` for the first ``flat_fraction`` of the steps, then a cosine down to
    ``alpha * initial`` over the rest.

    Parameters
    ----------
    initial : float
    flat_fraction : float, default=0.5
        In [0, 1].
    total_steps : int, optional
        None (the default): the fit's steps.
    alpha : float, default=0.0
    """

    _kind = _FLAT_COSINE

    def __init__(self, initial, flat_fraction: float = 0.5, total_steps: int | None = None,
                 alpha: float = 0.0) -> None:
        super().__init__(initial)
        self.flat_fraction = check_fraction(flat_fraction, "flat_fraction")
        self.total_steps = _steps(total_steps, "total_steps")
        self.alpha = check_fraction(alpha, "alpha")

    def _total(self, total_steps):
        return self.total_steps if self.total_steps is not None else max(1, total_steps)

    def _settings(self, total_steps):
        return dict(super()._settings(total_steps), total=float(self._total(total_steps)),
                    floor=self.alpha, flat=self.flat_fraction)

    def factor(self, step, total_steps):
        total = self._total(total_steps)
        start = math.floor(self.flat_fraction * total)
        if step < start:
            return 1.0
        span = total - start
        return _cosine((step - start) / span if span > 0 else 1.0, self.alpha)

    def _params(self):
        return {"initial": self.initial, "flat_fraction": self.flat_fraction,
                "total_steps": self.total_steps, "alpha": self.alpha}


class CosLog4(Schedule):
    """RealMLP's ``coslog4``: ``initial * 0.5 * (1 - cos(2 pi log2(1 + 15 t)))`` with
    ``t = step / total_steps``: four cosine cycles on a log scale, each shorter than the last,
    starting and ending at 0.

    Parameters
    ----------
    initial : float
    total_steps : int, optional
        None (the default): the fit's steps.
    """

    _kind = _COSLOG4

    def __init__(self, initial, total_steps: int | None = None) -> None:
        super().__init__(initial)
        self.total_steps = _steps(total_steps, "total_steps")

    def _total(self, total_steps):
        return self.total_steps if self.total_steps is not None else max(1, total_steps)

    def _settings(self, total_steps):
        return dict(super()._settings(total_steps), total=float(self._total(total_steps)))

    def factor(self, step, total_steps):
        t = min(step / self._total(total_steps), 1.0)
        return 0.5 * (1.0 - math.cos(2.0 * math.pi * math.log2(1.0 + 15.0 * t)))

    def _params(self):
        return {"initial": self.initial, "total_steps": self.total_steps}


SCHEDULE_CLASSES = {cls.__name__: cls for cls in
                    (Constant, LinearWarmup, CosineDecay, FlatCosine, CosLog4)}

# The estimators' learning_rate names beyond scikit-learn's three, as schedules of a rate.
# Warmups last 5% of the fit's steps (at least one).
ESTIMATOR_SCHEDULES = ("cosine", "warmup_cosine", "linear_warmup", "flat_cosine", "coslog4")


def for_estimator(name: str, initial: float, total_steps: int) -> Schedule:
    """The schedule an estimator's ``learning_rate=name`` means for a fit of `total_steps`."""
    warmup = max(1, round(0.05 * total_steps))
    if name == "cosine":
        return CosineDecay(initial)
    if name == "warmup_cosine":
        return CosineDecay(initial, warmup_steps=warmup)
    if name == "linear_warmup":
        return LinearWarmup(initial, warmup)
    if name == "flat_cosine":
        return FlatCosine(initial)
    if name == "coslog4":
        return CosLog4(initial)
    raise ValueError(f"unknown schedule {name!r}; valid names: "
                     + ", ".join(repr(n) for n in ESTIMATOR_SCHEDULES))


def from_config(spec, where: str = "schedule") -> Schedule:
    """The schedule `spec` (untrusted, from `Schedule._to_config`) describes."""
    _format.check_keys(spec, where, required=("class", "settings"))
    cls = SCHEDULE_CLASSES[_format.check_choice(spec["class"], f"{where}.class",
                                                tuple(SCHEDULE_CLASSES))]
    settings = _format.check_dict(_format.decode(spec["settings"], f"{where}.settings"),
                                  f"{where}.settings")
    try:
        return cls(**settings)
    except TypeError as exc:
        raise ValueError(f"{where}.settings: {exc}") from None


def check_value_or_schedule(value, name: str, *, fraction_below_one: bool = False):
    """A float (>= 0; < 1 when `fraction_below_one`) or a Schedule of mlp.schedules.

    Raises
    ------
    TypeError
        If `value` is neither a number nor a Schedule, or is a user's own Schedule subclass.
    ValueError
        If the number (or the schedule's initial value) is out of range.
    """
    if isinstance(value, Schedule):
        if SCHEDULE_CLASSES.get(type(value).__name__) is not type(value):
            raise TypeError(f"{name}: a user's own Schedule subclass cannot run in the core; use "
                            f"one of {', '.join(SCHEDULE_CLASSES)}")
        initial = value.initial
    else:
        initial = check_non_negative_float(value, name)
    if fraction_below_one and not initial < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {initial!r}")
    return value


def initial_of(value) -> float:
    """The base value of a number or a schedule."""
    return value.initial if isinstance(value, Schedule) else float(value)


def configure(net, slot: int, value, total_steps: int) -> None:
    """Set slot `slot` of a ``_core.Network`` to follow `value` (a constant for a number)."""
    if isinstance(value, Schedule):
        net.set_schedule(slot, **value._settings(total_steps))
    else:
        net.set_schedule(slot, _CONSTANT)
