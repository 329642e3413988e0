"""Where a network runs: 'cpu', 'cuda', 'cuda:N' or 'auto', resolved against this build and machine.

Shared by `Model.compile(device=...)` and the estimators' ``device`` parameter. Asking for CUDA
where it cannot run is an error that says which is missing, the build or the device, or what the
CUDA runtime answered when it failed; 'auto' takes the first GPU when there is one and the CPU
otherwise (with a warning when the CUDA runtime failed, rather than found no device).
"""
from __future__ import annotations

import warnings

from . import _core

_CHOICES = "'cpu', 'cuda', 'cuda:N' or 'auto'"

#: cudaError_t values told apart here.
CUDA_ERROR_NO_DEVICE = 100           # cudaErrorNoDevice
CUDA_ERROR_INSUFFICIENT_DRIVER = 35  # cudaErrorInsufficientDriver

_NO_BUILD = ("this build of mlp has no CUDA support (it was compiled without nvcc/cuBLAS; reinstall with "
             "pip install --no-build-isolation . -Ccmake.define.MLP_CUDA=ON)")


def cuda_device_count() -> int:
    """The number of CUDA devices mlp can use.

    Returns
    -------
    int
        0 when this build of mlp has no CUDA support (see ``mlp.build_info()['cuda']``), when no
        NVIDIA driver is installed, when no GPU is visible, or when the CUDA runtime failed
        (``mlp.build_info()['cuda_error']`` then says how).

    Examples
    --------
    >>> import mlp
    >>> mlp.cuda_device_count() >= 0
    True
    """
    return int(_core.cuda_device_count())


def cuda_status() -> dict:
    """What the CUDA runtime answered when asked for the devices, with its error kept.

    Returns
    -------
    dict
        ``built`` (bool), ``count`` (int), ``error`` (the ``cudaError_t`` of cudaGetDeviceCount,
        0 for none), ``error_name``, ``error_string``, ``driver_version`` (the CUDA version the
        installed driver supports, 1000 * major + 10 * minor; 0 without a driver) and
        ``runtime_version`` (the CUDA runtime of this build).
    """
    status = getattr(_core, "cuda_device_status", None)
    if status is None:  # a stand-in core that only says whether it was built and how many devices
        built = bool(_core.cuda_available())
        return {"built": built, "count": int(_core.cuda_device_count()) if built else 0, "error": 0,
                "error_name": "", "error_string": "", "driver_version": 0, "runtime_version": 0}
    return dict(status())


def cuda_version(v: int) -> str:
    """'13.0' for 13000 (CUDA's 1000 * major + 10 * minor)."""
    return f"{v // 1000}.{(v % 1000) // 10}"


def cuda_error_text(status: dict) -> str | None:
    """The runtime's error as one line ("cudaErrorNoDevice (100): ..."), or None without one."""
    if not status.get("error"):
        return None
    text = f"{status.get('error_name') or 'cudaError'} ({status['error']}): {status.get('error_string', '')}"
    driver, runtime = status.get("driver_version", 0), status.get("runtime_version", 0)
    if driver or runtime:
        text += (f" [driver: CUDA {cuda_version(driver)}" if driver else " [driver: none installed") + (
            f", runtime: CUDA {cuda_version(runtime)}]" if runtime else "]")
    return text


def cuda_problem(status: dict | None = None) -> tuple[str, str | None]:
    """Why CUDA cannot run here, sorted by kind.

    Returns
    -------
    (kind, message)
        ``('ok', None)``: a device is visible. ``('no-build', msg)``: this build has no CUDA
        support. ``('no-device', msg)``: the runtime found no device (``cudaErrorNoDevice``, or no
        NVIDIA driver installed at all), the machine simply has no GPU. ``('error', msg)``: the
        runtime failed otherwise, e.g. ``cudaErrorInsufficientDriver`` from a driver older than
        this build's CUDA: a broken setup, not a missing GPU.
    """
    status = cuda_status() if status is None else status
    if not status.get("built"):
        return "no-build", _NO_BUILD
    error = int(status.get("error") or 0)
    text = cuda_error_text(status)
    if error == CUDA_ERROR_NO_DEVICE:
        return "no-device", f"no CUDA device is visible ({text}; no GPU, or CUDA_VISIBLE_DEVICES hides them)"
    if error == CUDA_ERROR_INSUFFICIENT_DRIVER and not status.get("driver_version"):
        return "no-device", f"no CUDA device is visible: no NVIDIA driver is installed ({text})"
    if error:
        hint = ""
        if error == CUDA_ERROR_INSUFFICIENT_DRIVER:
            hint = ("; the NVIDIA driver is older than the CUDA runtime this build links: update the driver, or "
                    "build mlp with an nvcc whose major version the driver supports")
        return "error", f"the CUDA runtime failed: {text}{hint}"
    if int(status.get("count") or 0) <= 0:
        return "no-device", "no CUDA device is visible (the CUDA runtime reports 0 devices)"
    return "ok", None


def resolve_device(device, name: str = "device") -> int:
    """The device ordinal for `device`: -1 for the CPU, N for 'cuda:N' ('cuda' is 'cuda:0').

    Raises
    ------
    TypeError
        If `device` is not a string.
    ValueError
        If `device` is not one of the choices, or names CUDA where the build has no CUDA support,
        no such device is visible, or the CUDA runtime failed (the message has its error).
    """
    if not isinstance(device, str):
        raise TypeError(f"{name} must be a string ({_CHOICES}), got {device!r}")
    if device == "cpu":
        return -1
    if device == "auto":
        kind, msg = cuda_problem()
        if kind == "error":
            warnings.warn(f"{name}='auto' runs on the CPU: {msg}", RuntimeWarning, stacklevel=3)
        return 0 if kind == "ok" else -1
    if device == "cuda":
        ordinal = 0
    elif device.startswith("cuda:") and device[5:].isdigit():
        ordinal = int(device[5:])
    else:
        raise ValueError(f"{name} must be {_CHOICES}, got {device!r}")
    status = cuda_status()
    kind, msg = cuda_problem(status)
    if kind == "no-build":
        raise ValueError(f"{name}={device!r}: {msg}; use 'cpu' or 'auto'")
    if kind == "no-device":
        raise ValueError(f"{name}={device!r}: mlp was built with CUDA, but {msg}; use 'cpu' or 'auto'")
    if kind == "error":
        raise ValueError(f"{name}={device!r}: mlp was built with CUDA, but {msg}")
    count = int(status["count"])
    if ordinal >= count:
        raise ValueError(f"{name}={device!r}: no such CUDA device; {count} visible "
                         f"(cuda:0 to cuda:{count - 1})")
    return ordinal


def device_name(ordinal: int) -> str:
    """'cpu' or 'cuda:N' for an ordinal from `resolve_device`."""
    return "cpu" if ordinal < 0 else f"cuda:{ordinal}"
