"""Where a network runs: 'cpu', 'cuda', 'cuda:N' or 'auto', resolved against this build and machine.

Shared by `Model.compile(device=...)` and the estimators' ``device`` parameter. Asking for CUDA
where it cannot run is an error that says which is missing, the build or the device; 'auto' takes
the first GPU when there is one and the CPU otherwise.
"""
from __future__ import annotations

from . import _core

_CHOICES = "'cpu', 'cuda', 'cuda:N' or 'auto'"


def cuda_device_count() -> int:
    """The number of CUDA devices mlp can use.

    Returns
    -------
    int
        0 when this build of mlp has no CUDA support (see ``mlp.build_info()['cuda']``), when no
        NVIDIA driver is installed, or when no GPU is visible.

    Examples
    --------
    >>> import mlp
    >>> mlp.cuda_device_count() >= 0
    True
    """
    return int(_core.cuda_device_count())


def resolve_device(device, name: str = "device") -> int:
    """The device ordinal for `device`: -1 for the CPU, N for 'cuda:N' ('cuda' is 'cuda:0').

    Raises
    ------
    TypeError
        If `device` is not a string.
    ValueError
        If `device` is not one of the choices, or names CUDA where the build has no CUDA support
        or no such device is visible.
    """
    if not isinstance(device, str):
        raise TypeError(f"{name} must be a string ({_CHOICES}), got {device!r}")
    if device == "cpu":
        return -1
    if device == "auto":
        return 0 if _core.cuda_available() and cuda_device_count() > 0 else -1
    if device == "cuda":
        ordinal = 0
    elif device.startswith("cuda:") and device[5:].isdigit():
        ordinal = int(device[5:])
    else:
        raise ValueError(f"{name} must be {_CHOICES}, got {device!r}")
    if not _core.cuda_available():
        raise ValueError(
            f"{name}={device!r}: this build of mlp has no CUDA support (it was compiled without "
            "nvcc/cuBLAS; reinstall with "
            "pip install --no-build-isolation . -Ccmake.define.MLP_CUDA=ON); use 'cpu' or 'auto'")
    count = cuda_device_count()
    if count == 0:
        raise ValueError(
            f"{name}={device!r}: mlp was built with CUDA, but no CUDA device is visible (no GPU, "
            "no NVIDIA driver, or CUDA_VISIBLE_DEVICES hides them); use 'cpu' or 'auto'")
    if ordinal >= count:
        raise ValueError(f"{name}={device!r}: no such CUDA device; {count} visible "
                         f"(cuda:0 to cuda:{count - 1})")
    return ordinal


def device_name(ordinal: int) -> str:
    """'cpu' or 'cuda:N' for an ordinal from `resolve_device`."""
    return "cpu" if ordinal < 0 else f"cuda:{ordinal}"
