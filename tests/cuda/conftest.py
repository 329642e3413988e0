"""tests/cuda: the CUDA backend against the CPU one. Every test here is marked `cuda`.

Where CUDA cannot run, the tests are skipped with the real reason, or fail:
- a build without CUDA, or no device (cudaErrorNoDevice, or no NVIDIA driver installed at all):
  skipped, the reason saying which (and the runtime's error);
- any other error of the CUDA runtime (e.g. cudaErrorInsufficientDriver from a driver older than
  this build's CUDA): every test fails with that error: a broken setup is not a missing GPU;
- MLP_REQUIRE_CUDA=1 in the environment (scripts/gpu_check.sh sets it): a skip becomes a failure,
  so that a GPU run cannot pass by skipping.
MLP_TEST_CUDA_STATUS (JSON, the keys of mlp._device.cuda_status()) replaces what the runtime
answered, so that tests/test_device.py can check these rules on a machine without a GPU.

Run them on a GPU machine with a CUDA build:
    pip install --no-build-isolation . -Ccmake.define.MLP_CUDA=ON && pytest tests/cuda
or all checks at once: bash scripts/gpu_check.sh OUTDIR
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mlp import _core, _device

HERE = Path(__file__).resolve().parent


def cuda_status():
    fake = os.environ.get("MLP_TEST_CUDA_STATUS")
    if fake:
        status = {"built": True, "count": 0, "error": 0, "error_name": "", "error_string": "",
                  "driver_version": 0, "runtime_version": 0}
        status.update(json.loads(fake))
        return status
    return _device.cuda_status()


def gate():
    """('run', None), ('skip', reason) or ('fail', message) for every test of this folder."""
    kind, msg = _device.cuda_problem(cuda_status())
    if kind == "ok":
        return "run", None
    if kind == "error":
        return "fail", f"CUDA is installed but broken here: {msg}"
    if os.environ.get("MLP_REQUIRE_CUDA", "") not in ("", "0"):
        return "fail", f"MLP_REQUIRE_CUDA=1, but the CUDA tests cannot run: {msg}"
    return "skip", msg


GATE = gate()


def skip_reason():
    """The reason the tests skip, or None when they run (or fail)."""
    return GATE[1] if GATE[0] == "skip" else None


def in_here(item):
    return HERE in Path(str(item.fspath)).resolve().parents


def pytest_collection_modifyitems(config, items):
    for item in items:
        if in_here(item):
            item.add_marker(pytest.mark.cuda)
            if GATE[0] == "skip":
                item.add_marker(pytest.mark.skip(reason=GATE[1]))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item):
    if GATE[0] == "fail" and in_here(item):
        pytest.fail(GATE[1], pytrace=False)


def pytest_report_header(config):
    status = cuda_status()
    return f"mlp CUDA: {GATE[0]}" + (f" ({GATE[1]})" if GATE[1] else "") + (
        f"; devices: {status.get('count', 0)}" if status.get("built") else "")


@pytest.fixture(autouse=True)
def default_cuda_settings():
    """Exact float32 GEMMs (no TF32), the cuBLASLt epilogues, no debug sync and no allocation
    limit, restored after every test."""
    def reset():
        _core.cuda_set_tf32(False)
        _core.cuda_set_lt_epilogues(True)
        _core.cuda_set_alloc_limit(0)
        _core.cuda_set_sync(SYNC_AT_START)

    if GATE[0] == "run":
        reset()
    yield
    if GATE[0] == "run":
        reset()


SYNC_AT_START = bool(_core.cuda_sync())


@pytest.fixture
def stats():
    """Counters of the backend from zero (mlp._core.cuda_stats after cuda_reset_stats)."""
    _core.cuda_reset_stats()
    return _core.cuda_stats
