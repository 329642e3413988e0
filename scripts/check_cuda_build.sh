#!/usr/bin/env bash
# Compile-and-link check of the CUDA build (MLP_CUDA=ON), runnable without a GPU:
#   1. a throw-away venv (with the system site-packages), and in it scikit-build-core, pybind11,
#      ninja and cmake
#   2. pip install the cuBLAS and CUDA runtime wheels of nvcc's major version (nvcc 13:
#      "nvidia-cublas==13.*" "nvidia-cuda-runtime==13.*"; nvcc 12: the -cu12 wheels), so that a
#      newer cuBLAS major never meets an older nvcc
#   3. pip install --no-build-isolation . -Ccmake.define.MLP_CUDA=ON -Cbuild-dir=build/cuda
#   4. import the installed mlp from outside the repo: build_info()['cuda'] must be True and
#      cuda_device_count() must answer (0 without a GPU or driver; build_info()['cuda_error'] says
#      what the runtime answered), then pytest tests/cuda (skipped without a GPU or driver, run
#      with one, failed when the runtime is broken, e.g. a driver older than nvcc's CUDA).
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
# The wheels of nvcc's major version (as scripts/gpu_check.sh): CUDA 13 publishes them without a
# suffix, versioned 13.x; CUDA 12 and 11 as nvidia-cublas-cu12 / -cu11.
MLP_NVCC_MAJOR="$(nvcc --version | sed -n 's/.*release \([0-9][0-9]*\)\..*/\1/p' | head -1)"
[[ -n "$MLP_NVCC_MAJOR" ]] || { echo "check_cuda_build: cannot read nvcc's CUDA version" >&2; exit 1; }
if (( MLP_NVCC_MAJOR >= 13 )); then
  MLP_CUDA_WHEEL_SPECS=("nvidia-cublas==${MLP_NVCC_MAJOR}.*" "nvidia-cuda-runtime==${MLP_NVCC_MAJOR}.*")
else
  MLP_CUDA_WHEEL_SPECS=("nvidia-cublas-cu${MLP_NVCC_MAJOR}" "nvidia-cuda-runtime-cu${MLP_NVCC_MAJOR}")
fi

step "venv in $workdir/venv"
"$python" -m venv --system-site-packages "$workdir/venv"
# shellcheck disable=SC1091
source "$workdir/venv/bin/activate"

step "pip install scikit-build-core pybind11 ninja cmake (the build runs without isolation)"
pip install -q scikit-build-core pybind11 ninja cmake

step "pip install ${MLP_CUDA_WHEEL_SPECS[*]} (nvcc's CUDA ${MLP_NVCC_MAJOR})"
find_links=()
if [[ -n "${MLP_CUDA_WHEELS:-}" ]]; then find_links=(--find-links "$MLP_CUDA_WHEELS"); fi
pip install -q "${find_links[@]}" "${MLP_CUDA_WHEEL_SPECS[@]}"

step "pip install --no-build-isolation . -Ccmake.define.MLP_CUDA=ON -Cbuild-dir=build/cuda"
cd "$repo"
pip install -q --no-build-isolation . -Ccmake.define.MLP_CUDA=ON -Cbuild-dir=build/cuda

step "import the installed mlp"
cd "$workdir"
python - <<'PY'
import glob, os, subprocess
import mlp
import mlp._device
from mlp import _core
info = mlp.build_info()
print("mlp from", os.path.dirname(mlp.__file__))
print("build_info:", info)
assert info["cuda"] is True, "MLP_CUDA=ON built no CUDA kernels"
count = mlp.cuda_device_count()
assert isinstance(count, int) and count >= 0
print("cuda_device_status:", _core.cuda_device_status())
print("CUDA tests here:", mlp._device.cuda_problem())
stats = _core.cuda_stats()
assert stats["launches"] == 0 and stats["last_fallback"] == "", stats
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
