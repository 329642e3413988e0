"""`build_info()`: what this build of mlp contains and uses."""
from __future__ import annotations

from . import _core
from ._version import __version__


def build_info() -> dict:
    """Describe the compiled core.

    Returns
    -------
    dict
        ``version`` (str), ``compiler`` (str), ``simd`` (the kernel set chosen at import:
        'avx512', 'avx2' or 'baseline'), ``threads`` (threads a fit uses by default), ``gemm``
        (which GEMM is in use) and ``cuda`` (bool: whether the CUDA kernels were built;
        `mlp.cuda_device_count` tells whether a GPU is there to run them).

    Examples
    --------
    >>> import mlp
    >>> sorted(mlp.build_info())
    ['compiler', 'cuda', 'gemm', 'simd', 'threads', 'version']
    """
    return {
        "version": __version__,
        "compiler": _core.compiler(),
        "simd": _core.simd_level(),
        "threads": int(_core.max_threads()),
        "gemm": _core.gemm_name(),
        "cuda": bool(_core.cuda_available()),
    }
