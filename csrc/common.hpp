// Shared vocabulary of the core: matrix views, the activation/loss/optimizer enums, and the
// argument checks that every entry point asserts (Python checks first; these are the backstop).
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

#if defined(__CUDACC__)
#define MLP_HOST_DEVICE __host__ __device__
#else
#define MLP_HOST_DEVICE
#endif

namespace mlp {

using idx = std::int64_t;

enum class Act : int {
  Identity = 0,
  Relu = 1,
  LeakyRelu = 2,
  Elu = 3,
  Sigmoid = 4,
  Tanh = 5,
  Swish = 6,
  Softmax = 7,
  // Appended: saved files store these values, so existing ones never change.
  Selu = 8,
  Mish = 9,
  Gelu = 10,      // z * Phi(z), the erf form
  GeluTanh = 11,  // 0.5 z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3)))
};
constexpr int kNumActs = 12;

enum class LossKind : int {
  Mse = 0,
  CategoricalCrossEntropy = 1,  // fused with a softmax output, from the logits
  BinaryCrossEntropy = 2,       // fused with a sigmoid output, from the logits
  Poisson = 3,                  // exponential link on an identity output: l = exp(z) - y z
};
constexpr int kNumLosses = 4;

enum class OptKind : int { Sgd = 0, Adam = 1 };

// Row-major view: element (i, j) at ptr[i * ld + j].
template <class T>
struct Mat {
  T* ptr = nullptr;
  idx rows = 0, cols = 0, ld = 0;
  Mat() = default;
  Mat(T* p, idx r, idx c) : ptr(p), rows(r), cols(c), ld(c) {}
  Mat(T* p, idx r, idx c, idx l) : ptr(p), rows(r), cols(c), ld(l) {}
  T* row(idx i) const { return ptr + i * ld; }
};

// A failed check means the Python layer let bad input through: it becomes a ValueError there.
#define MLP_CHECK(cond, msg)                                                              \
  do {                                                                                    \
    if (!(cond)) throw std::invalid_argument(std::string("mlp core: ") + (msg));          \
  } while (0)

inline bool act_valid(int a) { return a >= 0 && a < kNumActs; }
inline bool loss_valid(int l) { return l >= 0 && l < kNumLosses; }

}  // namespace mlp
