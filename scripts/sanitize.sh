#!/usr/bin/env bash
# Build mlp with AddressSanitizer + UndefinedBehaviorSanitizer (CMake option MLP_SANITIZE=ON) and
# run the whole test suite against that build. Exits non-zero on a build failure, a failing test,
# or any sanitizer report (UBSan halts on its first error; ASan always does). Exits 77 (skipped)
# when the compiler has no sanitizer runtime.
#
#   scripts/sanitize.sh [pytest arguments...]      e.g. scripts/sanitize.sh -x tests/test_fuzz.py
#   (test paths are relative to the repository; without any, all of tests/ runs)
#
# The sanitized package is installed into a temporary directory and imported from there: the
# extension in the source tree (mlp/_core*.so) is never built, replaced or loaded. The CMake build
# directory build/asan is kept, so a second run only recompiles what changed.
#
# Needs gcc's libasan (the build and the preload must come from the same compiler), and in the
# current Python: numpy, the test requirements (pip install ".[test]"), scikit-build-core and
# pybind11 (the build runs without isolation). Environment: PYTHON (default python3), CXX
# (default g++), MLP_ASAN_BUILD_DIR (default build/asan).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
cxx="${CXX:-g++}"
build_dir="${MLP_ASAN_BUILD_DIR:-$repo/build/asan}"
target="$(mktemp -d "${TMPDIR:-/tmp}/mlp-asan.XXXXXX")"
trap 'rm -rf "$target"' EXIT

libasan="$("$cxx" -print-file-name=libasan.so)"
if [[ ! -e "$libasan" ]]; then
  echo "sanitize.sh: $cxx has no libasan.so (install the compiler's sanitizer runtime); skipped" >&2
  exit 77  # "skipped", as automake's test harness counts it: .ci/run passes over this one code
fi

# The source tree's extension, to check at the end that nothing touched it.
shopt -s nullglob
tree_so=("$repo"/mlp/_core*.so)
before="$( ((${#tree_so[@]})) && sha256sum "${tree_so[@]}" || true)"

echo "== building the sanitized extension into $target (CMake build dir $build_dir)"
CXX="$cxx" CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}" "$python" -m pip install --quiet --no-build-isolation --no-deps --target "$target" \
  -Ccmake.define.MLP_SANITIZE=ON -Ccmake.define.MLP_CUDA=OFF -Cbuild-dir="$build_dir" "$repo"

export PYTHONPATH="$target${PYTHONPATH:+:$PYTHONPATH}"
# libstdc++ is preloaded too: ASan resolves the real __cxa_throw when it starts, and Python itself
# does not link libstdc++, so a C++ extension that throws (matplotlib's, pybind11's) would hit ASan's
# "real___cxa_throw != 0" check.
libstdcxx="$("$cxx" -print-file-name=libstdc++.so)"
export LD_PRELOAD="$libasan:$libstdcxx${LD_PRELOAD:+:$LD_PRELOAD}"
# Reports go to files, printed at the end: pytest captures file descriptor 2 while a test runs,
# and a process that a sanitizer ends loses what was captured.
reports="$target/reports"
mkdir -p "$reports"
# CPython keeps objects alive until exit by design, so leak checking reports noise; a failed
# allocation returns NULL (a MemoryError) as it would without ASan.
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:abort_on_error=1:log_path=$reports/asan${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$reports/ubsan${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export MLP_SANITIZED=1  # tests whose measure ASan distorts (resident memory) skip themselves

# Run from the install directory, so that `python -m pytest` (which puts the current directory
# first on sys.path) imports the sanitized mlp and never the source tree's.
cd "$target"
MLP_ASAN_TARGET="$target" "$python" - <<'EOF'
import os, sys
import mlp._core
where = os.path.realpath(mlp._core.__file__)
print(f"== testing {where}")
if not where.startswith(os.path.realpath(os.environ["MLP_ASAN_TARGET"]) + os.sep):
    sys.exit(f"sanitize.sh: imported {where}, not the sanitized build")
EOF
# Test paths given relative to the repository still work from here; none given: all of tests/.
args=() paths=0
for arg in "$@"; do
  if [[ "$arg" != -* && -e "$repo/${arg%%::*}" ]]; then
    args+=("$repo/$arg") paths=1
  else
    args+=("$arg")
  fi
done
((paths)) || args+=("$repo/tests")
status=0
"$python" -m pytest -p no:cacheprovider --rootdir "$repo" -c "$repo/pyproject.toml" "${args[@]}" \
  || status=$?

if compgen -G "$reports/*" > /dev/null; then
  echo "== sanitizer reports" >&2
  cat "$reports"/* >&2
  status=$((status ? status : 1))
fi
after="$( ((${#tree_so[@]})) && sha256sum "${tree_so[@]}" || true)"
if [[ "$before" != "$after" ]]; then
  # This script never writes there (the build installs into $target); another build did.
  echo "sanitize.sh: note: mlp/_core*.so in the source tree changed during the run (another build)" >&2
fi
if [[ "$status" == 0 ]]; then echo "== sanitizers clean"; fi
exit "$status"
