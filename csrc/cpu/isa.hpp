// Per-instruction-set build settings. CMake compiles each kernel file three times with
// MLP_ISA = baseline | avx2 | avx512 and the matching -m flags; this header turns that into the
// namespace, the vector width and the GEMM register tile.
#pragma once
#include <cstddef>

#ifndef MLP_ISA
#define MLP_ISA baseline
#endif
#define MLP_STR2_(x) #x
#define MLP_STR_(x) MLP_STR2_(x)
#define MLP_ISA_NAME MLP_STR_(MLP_ISA)

namespace mlp::cpu::MLP_ISA {

#if defined(__AVX512F__)
constexpr std::size_t kVecBytes = 64;
constexpr int kMR = 8;  // 8 x 2 accumulators + 2 B vectors + 1 broadcast of 32 zmm
#elif defined(__AVX2__)
constexpr std::size_t kVecBytes = 32;
constexpr int kMR = 6;  // 6 x 2 accumulators + 2 B vectors + 1 broadcast of 16 ymm
#else
constexpr std::size_t kVecBytes = 16;
constexpr int kMR = 4;
#endif

template <class T>
struct Vec {
  typedef T type __attribute__((vector_size(kVecBytes)));
  static constexpr int lanes = int(kVecBytes / sizeof(T));
};

}  // namespace mlp::cpu::MLP_ISA
