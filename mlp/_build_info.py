"""`build_info()`: what this build of mlp contains and uses."""
from __future__ import annotations

from . import _core
from ._version import __version__

# The GEMM the CPU kernels use. _core does not report it yet (see _core.pyi); until it does, the
# name lives here, in one place.
_DEFAULT_GEMM = "mlp packed kernel"


def build_info() -> dict:
    """Describe the compiled core.

    Returns
    -------
    dict
        ``version`` (str), ``compiler`` (str), ``simd`` (the kernel set chosen at import:
        'avx512', 'avx2' or 'baseline'), ``threads`` (threads a fit uses by default), ``gemm``
        (which GEMM is in use) and ``cuda`` (bool: whether the CUDA kernels were built and a GPU
        is usable).

    Examples
    --------
    >>> import mlp
    >>> sorted(mlp.build_info())
    ['compiler', 'cuda', 'gemm', 'simd', 'threads', 'version']
    """
    gemm = getattr(_core, "gemm_name", None)
    return {
        "version": __version__,
        "compiler": _core.compiler(),
        "simd": _core.simd_level(),
        "threads": int(_core.max_threads()),
        "gemm": gemm() if callable(gemm) else _DEFAULT_GEMM,
        "cuda": bool(_core.cuda_available()),
    }
