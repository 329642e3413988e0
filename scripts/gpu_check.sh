#!/usr/bin/env bash
# The GPU check: one command, on a machine with an NVIDIA GPU (H100/H200: about 8 minutes), that
# builds the CUDA backend and proves it there. Every log goes to one folder:
#     bash scripts/gpu_check.sh OUTDIR        (or OUT=OUTDIR bash scripts/gpu_check.sh)
# Steps, each with its log in OUTDIR, and OUTDIR/summary.txt at the end:
#   env.log        nvidia-smi, nvcc, python, the relevant packages
#   wheels.log     the cuBLAS / CUDA runtime wheels of nvcc's major version, installed only when
#                  neither they nor a CUDA toolkit's cuBLAS are there (MLP_CUDA_WHEELS: a folder
#                  of wheels for pip --find-links, for a machine without an index)
#   build.log      pip install --no-build-isolation . -Ccmake.define.MLP_CUDA=ON (needs cmake,
#                  ninja, pybind11, scikit-build-core already installed)
#   info.log       build_info(), the device status and names, from outside the source tree
#   tests.log      MLP_REQUIRE_CUDA=1 pytest tests/cuda (a skip is a failure here), and
#                  tests.xml (JUnit)
#   sanitizer.log  compute-sanitizer --tool memcheck on a short fit, where the tool exists
#   bench.log      benchmarks/bench_gpu.py (TF32 off with every PyTorch variant, then TF32 on as
#                  time allows), and bench.json
#   summary.txt    one line per step, the test counts, the benchmark table and its targets
# The whole run keeps within MLP_GPU_CHECK_SECONDS (default 570): the later steps get what is left.
# Exit status: 0 when the build, the tests and the sanitizer passed (the benchmark never fails it).
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-${OUT:-}}"
if [[ -z "$out" ]]; then
  echo "usage: bash scripts/gpu_check.sh OUTDIR   (or set OUT)" >&2
  exit 2
fi
mkdir -p "$out"
out="$(cd "$out" && pwd)"
python="${PYTHON:-python3}"
budget="${MLP_GPU_CHECK_SECONDS:-570}"
start=$(date +%s)
summary="$out/summary.txt"
: > "$summary"
status=0
elapsed() { echo $(( $(date +%s) - start )); }
left() { echo $(( budget - $(elapsed) )); }
note() { echo "$*" | tee -a "$summary"; }
step() { echo "== [$(elapsed)s] $*"; }
# Seconds for a step: what is left, at most $1, at least $2 (0: skip the step).
allot() {
  local l
  l=$(left)
  if (( l < $2 )); then echo 0; elif (( l < $1 )); then echo "$l"; else echo "$1"; fi
}
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

note "gpu_check: $(date -u +%Y-%m-%dT%H:%M:%SZ), repo $repo, logs in $out"

# --- env --------------------------------------------------------------------------------------
step "environment"
{
  command -v nvidia-smi >/dev/null && nvidia-smi || echo "nvidia-smi: not found"
  command -v nvcc >/dev/null && nvcc --version || echo "nvcc: not found"
  "$python" --version
  "$python" -m pip list 2>/dev/null | grep -i -E "^(nvidia|torch|numpy|scikit-build|pybind11|cmake|ninja) " || true
  nproc
} > "$out/env.log" 2>&1
if ! command -v nvcc >/dev/null; then
  note "FAIL env: nvcc is not on the PATH"
  exit 1
fi
gpu="$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)"
note "env: ${gpu:-no nvidia-smi}; $(nvcc --version | tail -1)"

# --- wheels -----------------------------------------------------------------------------------
step "cuBLAS"
nvcc_major="$(nvcc --version | sed -n 's/.*release \([0-9][0-9]*\)\..*/\1/p' | head -1)"
if (( nvcc_major >= 13 )); then
  wheels=("nvidia-cublas==${nvcc_major}.*" "nvidia-cuda-runtime==${nvcc_major}.*")
  dist="nvidia-cublas"
else
  wheels=("nvidia-cublas-cu${nvcc_major}" "nvidia-cuda-runtime-cu${nvcc_major}")
  dist="nvidia-cublas-cu${nvcc_major}"
fi
toolkit="$(dirname "$(dirname "$(command -v nvcc)")")"
have_wheel="$("$python" -c "import importlib.metadata as m; print(m.version('$dist'))" 2>/dev/null || true)"
if [[ -n "$have_wheel" && "${have_wheel%%.*}" == "$nvcc_major" ]]; then
  note "wheels: $dist $have_wheel installed (nvcc $nvcc_major)"
elif ls "$toolkit"/lib64/libcublasLt.so* "$toolkit"/targets/*/lib/libcublasLt.so* >/dev/null 2>&1; then
  note "wheels: not needed, the CUDA toolkit at $toolkit has cuBLAS"
else
  find_links=()
  if [[ -n "${MLP_CUDA_WHEELS:-}" ]]; then find_links=(--find-links "$MLP_CUDA_WHEELS"); fi
  if "$python" -m pip install "${find_links[@]}" "${wheels[@]}" > "$out/wheels.log" 2>&1; then
    note "wheels: installed ${wheels[*]}"
  else
    note "wheels: pip install ${wheels[*]} failed (see wheels.log); the build may still find cuBLAS"
  fi
fi

# --- build ------------------------------------------------------------------------------------
step "build (MLP_CUDA=ON)"
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
t0=$(date +%s)
if (cd "$repo" && timeout "$(allot 360 60)" "$python" -m pip install --no-build-isolation --no-deps . \
      -Ccmake.define.MLP_CUDA=ON -Cbuild-dir=build/gpu) > "$out/build.log" 2>&1; then
  note "build: ok ($(( $(date +%s) - t0 ))s)"
else
  note "FAIL build: pip install -Ccmake.define.MLP_CUDA=ON failed ($(( $(date +%s) - t0 ))s); the end of build.log:"
  tail -25 "$out/build.log" | tee -a "$summary"
  exit 1
fi

# From here on every Python runs outside the source tree, so that it imports the installed mlp.
cd "$work"

# --- info -------------------------------------------------------------------------------------
step "import"
if "$python" - > "$out/info.log" 2>&1 <<'PY'
import mlp
from mlp import _core, _device
info = mlp.build_info()
print("mlp from", mlp.__file__)
print("build_info:", info)
print("device status:", _core.cuda_device_status())
print("kind:", _device.cuda_problem())
for i in range(mlp.cuda_device_count()):
    free, total = _core.cuda_mem_info(i)
    print(f"cuda:{i}: {_core.cuda_device_name(i)}, {free / 2**30:.1f} of {total / 2**30:.1f} GiB free")
assert info["cuda"], "the build has no CUDA kernels"
PY
then
  note "import: $(grep -E '^cuda:0' "$out/info.log" || grep '^kind' "$out/info.log")"
else
  note "FAIL import: see info.log"
  tail -5 "$out/info.log" | tee -a "$summary"
  status=1
fi

# --- tests ------------------------------------------------------------------------------------
step "MLP_REQUIRE_CUDA=1 pytest tests/cuda"
t0=$(date +%s)
MLP_REQUIRE_CUDA=1 timeout "$(allot 270 30)" "$python" -m pytest -q -p no:cacheprovider -rfE --durations=15 \
  --junitxml="$out/tests.xml" "$repo/tests/cuda" > "$out/tests.log" 2>&1
rc=$?
counts="$(tail -1 "$out/tests.log")"
if [[ $rc == 0 ]]; then
  note "tests: ok ($(( $(date +%s) - t0 ))s): $counts"
else
  [[ $rc == 124 ]] && counts="timed out; $counts"
  note "FAIL tests (rc $rc, $(( $(date +%s) - t0 ))s): $counts"
  grep -E "^(FAILED|ERROR) " "$out/tests.log" | head -20 | tee -a "$summary"
  status=1
fi

# --- compute-sanitizer ------------------------------------------------------------------------
step "compute-sanitizer memcheck on a short fit"
sanitizer="$(command -v compute-sanitizer || true)"
[[ -z "$sanitizer" && -x "$toolkit/bin/compute-sanitizer" ]] && sanitizer="$toolkit/bin/compute-sanitizer"
[[ -z "$sanitizer" && -x /usr/local/cuda/bin/compute-sanitizer ]] && sanitizer=/usr/local/cuda/bin/compute-sanitizer
cat > "$work/short_fit.py" <<'PY'
# A short fit through every kind of device work: shuffled and unshuffled batches, sample weights,
# dropout, embeddings, predict, loss_and_grad, two dtypes; then the networks are freed.
import gc
import numpy as np
import mlp
from mlp import _core

r = np.random.default_rng(0)
x = r.standard_normal((300, 6))
x[:, 0] = r.integers(0, 5, 300)  # a category code, embedded
y = np.eye(3)[r.integers(0, 3, 300)]
sw = r.uniform(0.5, 2.0, 300)
for dtype in ("float32", "float64"):
    np.random.seed(0)
    first = mlp.Concatenate([mlp.Embedding(5, 2, column=0, seed=1)], input_size=6)
    layer = mlp.Dropout(0.2)(mlp.Dense(16, activation="relu", seed=2)(first))
    layer = mlp.Dense(8, activation="tanh", seed=3)(layer)
    model = mlp.Model(first, mlp.Dense(3, activation="softmax", seed=4)(layer))
    model.compile("categorical_cross_entropy", optimizer=mlp.AdamW(weight_decay=0.01, clipnorm=1.0), dtype=dtype,
                  device="cuda")
    model.fit(x, y, 2, 0.01, batch_size=32, seed=1, progress=False)
    model.fit(x, y, 1, 0.01, batch_size=50, shuffle=False, seed=1, progress=False)
    xs, ys, ws = x.astype(dtype), y.astype(dtype), sw.astype(dtype)
    model._net.train_epoch(xs, ys, ws, 64, True, 0.01)
    assert np.isfinite(model.predict(x)).all()
    model._net.loss_and_grad(xs, ys, ws)
    del model
gc.collect()
print("short fit: ok", _core.cuda_stats())
PY
if [[ -z "$sanitizer" ]]; then
  note "sanitizer: skipped (compute-sanitizer not found)"
elif (( $(allot 120 30) == 0 )); then
  note "sanitizer: skipped (no time left)"
else
  t0=$(date +%s)
  timeout "$(allot 120 30)" "$sanitizer" --tool memcheck --error-exitcode 99 --print-limit 20 \
    "$python" "$work/short_fit.py" > "$out/sanitizer.log" 2>&1
  rc=$?
  errs="$(grep -E "ERROR SUMMARY" "$out/sanitizer.log" | tail -1)"
  if [[ $rc == 0 ]]; then
    note "sanitizer: ok ($(( $(date +%s) - t0 ))s): ${errs:-no summary line}"
  elif [[ $rc == 124 ]]; then
    note "sanitizer: timed out after $(( $(date +%s) - t0 ))s (not a failure): ${errs:-no summary line}"
  else
    note "FAIL sanitizer (rc $rc): ${errs:-see sanitizer.log}"
    grep -m 10 -E "Invalid|ERROR|Error" "$out/sanitizer.log" | tee -a "$summary"
    status=1
  fi
fi

# --- benchmark --------------------------------------------------------------------------------
step "bench_gpu.py"
t=$(allot 400 60)
if (( t == 0 )); then
  note "bench: skipped (no time left)"
else
  t0=$(date +%s)
  timeout "$t" "$python" "$repo/benchmarks/bench_gpu.py" --tf32 off --json "$out/bench.json" > "$out/bench.log" 2>&1
  rc=$?
  note "bench (TF32 off): rc $rc ($(( $(date +%s) - t0 ))s)"
  t=$(allot 200 90)
  if [[ $rc == 0 ]] && (( t > 0 )); then
    echo >> "$out/bench.log"
    timeout "$t" "$python" "$repo/benchmarks/bench_gpu.py" --tf32 on --variants eager,fused \
      --json "$out/bench_tf32.json" >> "$out/bench.log" 2>&1
    note "bench (TF32 on): rc $? "
  fi
  grep -E "^GPU:|^mlp |^\||^target|fallback:" "$out/bench.log" | tee -a "$summary"
fi

note "gpu_check: $( (( status == 0 )) && echo PASSED || echo FAILED ) in $(elapsed)s"
exit $status
