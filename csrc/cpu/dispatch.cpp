// Picks the kernel table for this CPU once, at load: AVX-512 (F/DQ/BW/VL) > AVX2+FMA > baseline.
// MLP_SIMD=baseline|avx2|avx512 in the environment caps the choice (for tests and benchmarks).
#include <cstdlib>
#include <cstring>
#include <string>

#include "kernels.hpp"

namespace mlp::cpu {
namespace {

bool cpu_has(const char* name) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (!std::strcmp(name, "avx512"))
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("fma");
  if (!std::strcmp(name, "avx2")) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
  return !std::strcmp(name, "baseline");
}

struct Tables {
  const char* level = "baseline";
  Kernels<float> f;
  Kernels<double> d;
};

bool load(Tables& t, const char* name) {
  if (!cpu_has(name)) return false;
  if (!std::strcmp(name, "avx512")) {
    t.f = avx512::make_kernels<float>();
    t.d = avx512::make_kernels<double>();
    t.level = "avx512";
  } else if (!std::strcmp(name, "avx2")) {
    t.f = avx2::make_kernels<float>();
    t.d = avx2::make_kernels<double>();
    t.level = "avx2";
  } else {
    t.f = baseline::make_kernels<float>();
    t.d = baseline::make_kernels<double>();
    t.level = "baseline";
  }
  return true;
}

const Tables& tables() {
  static const Tables t = [] {
    Tables out;
    const char* env = std::getenv("MLP_SIMD");
    const std::string cap = env ? env : "avx512";
    const bool allow512 = cap == "avx512";
    const bool allow2 = allow512 || cap == "avx2";
    if (!(allow512 && load(out, "avx512")) && !(allow2 && load(out, "avx2"))) load(out, "baseline");
    return out;
  }();
  return t;
}

}  // namespace

template <>
const Kernels<float>& kernels<float>() { return tables().f; }
template <>
const Kernels<double>& kernels<double>() { return tables().d; }

const char* simd_level() { return tables().level; }
const char* gemm_name() { return tables().f.gemm_name; }

}  // namespace mlp::cpu
