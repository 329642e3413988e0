"""tests/cuda: the CUDA backend against the CPU one. Every test here is marked `cuda` and skipped,
with the reason, where it cannot run: a build without CUDA, or no visible GPU.

Run them on a GPU machine with a CUDA build:
    pip install --no-build-isolation . -Ccmake.define.MLP_CUDA=ON && pytest tests/cuda
"""
from __future__ import annotations

from pathlib import Path

import pytest

import mlp
from mlp import _core

HERE = Path(__file__).resolve().parent


def skip_reason():
    if not mlp.build_info()["cuda"]:
        return "this build of mlp has no CUDA support (build it with -Ccmake.define.MLP_CUDA=ON)"
    if mlp.cuda_device_count() == 0:
        return "no CUDA device is visible (mlp.cuda_device_count() == 0)"
    return None


def pytest_collection_modifyitems(config, items):
    reason = skip_reason()
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.cuda)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(autouse=True)
def default_cuda_settings():
    """Exact float32 GEMMs (no TF32) and the cuBLASLt epilogues, restored after every test."""
    if skip_reason() is None:
        _core.cuda_set_tf32(False)
        _core.cuda_set_lt_epilogues(True)
    yield
    if skip_reason() is None:
        _core.cuda_set_tf32(False)
        _core.cuda_set_lt_epilogues(True)
