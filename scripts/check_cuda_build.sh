#!/usr/bin/env bash
# Compile-and-link check of the CUDA build (MLP_CUDA=ON), runnable without a GPU:
#   1. a throw-away venv (with the system site-packages), and in it scikit-build-core, pybind11,
#      ninja and cmake
#   2. pip install nvidia-cublas nvidia-cuda-runtime (cuBLAS headers and libraries as wheels)
#   3. pip install --no-build-isolation . -Ccmake.define.MLP_CUDA=ON -Cbuild-dir=build/cuda
#   4. import the installed mlp from outside the repo: build_info()['cuda'] must be True and
#      cuda_device_count() must answer (0 without a GPU or driver), then pytest tests/cuda
#      (skipped without a GPU, run with one).
# Needs nvcc on the PATH. Never touches mlp/_core*.so of the working tree.
# Environment: PYTHON (default python3); MLP_CUDA_WHEELS, a folder of wheels for pip --find-links;
# KEEP_VENV=1 keeps the venv and prints where it is.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
workdir="$(mktemp -d)"
if [[ "${KEEP_VENV:-0}" != 1 ]]; then trap 'rm -rf "$workdir"' EXIT; fi
start=$(date +%s)
step() { echo "== [$(( $(date +%s) - start ))s] $*"; }

command -v nvcc >/dev/null || { echo "check_cuda_build: nvcc is not on the PATH" >&2; exit 1; }
step "nvcc: $(nvcc --version | tail -1)"

step "venv in $workdir/venv"
"$python" -m venv --system-site-packages "$workdir/venv"
# shellcheck disable=SC1091
source "$workdir/venv/bin/activate"

step "pip install scikit-build-core pybind11 ninja cmake (the build runs without isolation)"
pip install -q scikit-build-core pybind11 ninja cmake

step "pip install nvidia-cublas nvidia-cuda-runtime"
find_links=()
if [[ -n "${MLP_CUDA_WHEELS:-}" ]]; then find_links=(--find-links "$MLP_CUDA_WHEELS"); fi
pip install -q "${find_links[@]}" nvidia-cublas nvidia-cuda-runtime

step "pip install --no-build-isolation . -Ccmake.define.MLP_CUDA=ON -Cbuild-dir=build/cuda"
cd "$repo"
pip install -q --no-build-isolation . -Ccmake.define.MLP_CUDA=ON -Cbuild-dir=build/cuda

step "import the installed mlp"
cd "$workdir"
python - <<'PY'
import glob, os, subprocess
import mlp
from mlp import _core
info = mlp.build_info()
print("mlp from", os.path.dirname(mlp.__file__))
print("build_info:", info)
assert info["cuda"] is True, "MLP_CUDA=ON built no CUDA kernels"
count = mlp.cuda_device_count()
assert isinstance(count, int) and count >= 0
print("cuda_device_count:", count, "".join(f"\n  cuda:{i}: {_core.cuda_device_name(i)}" for i in range(count)))
so = glob.glob(os.path.join(os.path.dirname(mlp.__file__), "_core*.so"))[0]
for line in subprocess.run(["ldd", so], capture_output=True, text=True).stdout.splitlines():
    if "cublas" in line or "cudart" in line or "not found" in line:
        print(" ", line.strip())
PY

step "pytest tests/cuda (skipped without a GPU)"
python -m pytest -q -p no:cacheprovider "$repo/tests/cuda" | tail -3

step "done: MLP_CUDA=ON compiles, links and loads"
if [[ "${KEEP_VENV:-0}" == 1 ]]; then echo "venv kept: $workdir/venv"; fi
