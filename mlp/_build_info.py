"""`build_info()`: what this build of mlp contains and uses."""
from __future__ import annotations

from . import _core, _device
from ._version import __version__


def build_info() -> dict:
    """Describe the compiled core.

    Returns
    -------
    dict
        ``version`` (str), ``compiler`` (str), ``simd`` (the kernel set chosen at import:
        'avx512', 'avx2' or 'baseline'), ``threads`` (threads a fit uses by default), ``gemm``
        (which GEMM is in use), ``cuda`` (bool: whether the CUDA kernels were built),
        ``cuda_devices`` (int: the GPUs visible to them, as `mlp.cuda_device_count`) and
        ``cuda_error`` (None, or what the CUDA runtime answered when it found no device or
        failed, e.g. ``'cudaErrorInsufficientDriver (35): ...'`` for a driver older than this
        build's CUDA).

    Examples
    --------
    >>> import mlp
    >>> sorted(mlp.build_info())
    ['compiler', 'cuda', 'cuda_devices', 'cuda_error', 'gemm', 'simd', 'threads', 'version']
    """
    status = _device.cuda_status()
    return {
        "version": __version__,
        "compiler": _core.compiler(),
        "simd": _core.simd_level(),
        "threads": int(_core.max_threads()),
        "gemm": _core.gemm_name(),
        "cuda": bool(status["built"]),
        "cuda_devices": int(status["count"]) if status["built"] else 0,
        "cuda_error": _device.cuda_error_text(status),
    }
