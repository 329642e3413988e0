"""Every bound mlp enforces, in one place: seeds, widths, depths, the exp clamp, memory.

The checks that read these live in `mlp._validation` (user input) and `mlp._format` (saved
files); the C++ core asserts the same bounds again (csrc/network.cpp, csrc/activations.hpp).
"""
from __future__ import annotations

import os

import numpy as np

from . import _core

# Seeds are unsigned 64-bit integers in the core: [0, 2**64).
SEED_LIMIT = 2**64

# A seed mlp draws itself (for the shuffling, from np.random or the estimator's random_state):
# [0, 2**62), which numpy's int64 draws reach on every platform.
DRAWN_SEED_LIMIT = 2**62

# An optimizer's step count, as a file may record it.
MAX_STEP = 2**62

# The widest layer the core accepts: widths are in [1, 2**31] (csrc/network.cpp checks the same).
MAX_WIDTH = 2**31

# Layers in one network. Deeper stacks are not networks anyone trains on a CPU; the bound keeps a
# crafted file from asking for absurd allocations before the array sizes are checked.
MAX_LAYERS = 4096

# exp() of a value above this overflows: the poisson link and the ONNX export clamp there, as the
# core's exp_clamped does (the bounds are spelled once, in csrc/activations.hpp).
EXP_LIMIT = {"float32": _core.EXP_LIMIT_FLOAT32, "float64": _core.EXP_LIMIT_FLOAT64}

# Training holds the parameters about this many times over: the weights, their gradient and
# Adam's two moment buffers.
TRAINING_COPIES = 4

# Widths that would need more memory than the machine has are refused before any allocation.


def physical_memory() -> int | None:
    """The machine's physical memory in bytes, or None where the OS does not say."""
    try:
        size = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not POSIX
        return None
    return size if size > 0 else None


def format_bytes(n: float) -> str:
    """``1536`` -> ``'1.5 KiB'``."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"


def check_allocation(n_bytes: int, what: str) -> None:
    """Refuse, before allocating, an array that could never fit in this machine's memory.

    A huge size would otherwise end in a MemoryError (or, where the OS overcommits memory, in the
    process being killed while the array is filled) instead of an error naming the argument.

    Raises
    ------
    ValueError
        If `n_bytes` exceeds the physical memory.
    """
    limit = physical_memory()
    if limit is not None and n_bytes > limit:
        raise ValueError(f"{what} would need {format_bytes(n_bytes)}, more than this machine's "
                         f"{format_bytes(limit)} of memory")


def count_params(sizes) -> int:
    """Weights and biases of a dense network with widths ``[in, h1, ..., out]``."""
    return sum(int(a) * int(b) + int(b) for a, b in zip(sizes[:-1], sizes[1:]))


def training_bytes(sizes, dtype) -> int:
    """The memory a fit of a network with widths `sizes` holds for its parameters."""
    return TRAINING_COPIES * count_params(sizes) * np.dtype(dtype).itemsize
