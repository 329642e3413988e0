// Scalar activation functions and their derivatives, written once for every backend.
// Forward a = f(z); derivative f'(z) expressed through (z, a) so that layers other than swish
// need not keep z. exp is clamped so that no activation overflows for |z| up to 1e30.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "common.hpp"

namespace mlp {

template <class To, class From>
MLP_HOST_DEVICE inline To bits_as(From v) {
  static_assert(sizeof(To) == sizeof(From), "size mismatch");
  To out;
  std::memcpy(&out, &v, sizeof(To));
  return out;
}

// exp's argument is clamped to [kExpMin*, kExpMax*]: its result then stays finite and normal.
// These are the only spellings of the bounds; mlp/_limits.py reads the upper ones through _core
// (EXP_LIMIT_FLOAT32 / EXP_LIMIT_FLOAT64), for the poisson link and the ONNX export.
constexpr float kExpMinF = -87.3f;
constexpr float kExpMaxF = 88.3f;
constexpr double kExpMin = -708.0;
constexpr double kExpMax = 709.0;

// exp(x) for x clamped to the finite range. The float version is branch-free arithmetic (range
// reduction x = n ln2 + r, a degree-7 polynomial for e^r, 2^n built from the exponent bits) so
// that compilers vectorize loops calling it; its relative error is a few float ulps.
MLP_HOST_DEVICE inline float exp_clamped(float x) {
  x = x < kExpMinF ? kExpMinF : x;
  x = x > kExpMaxF ? kExpMaxF : x;
  const float magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float t = x * 1.44269504088896341f + magic;
  const float n = t - magic;
  const float r = (x - n * 0.693145751953125f) - n * 1.428606765330187045e-06f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  // 2^n built in the exponent bits, in unsigned arithmetic: the same bits as the signed form for
  // every clamped x, and no undefined shift or overflow when x is NaN (then p is NaN anyway).
  const std::uint32_t ni = bits_as<std::uint32_t>(t) - bits_as<std::uint32_t>(magic);
  return p * bits_as<float>((ni + 127u) << 23);
}
MLP_HOST_DEVICE inline double exp_clamped(double x) {
  x = x < kExpMin ? kExpMin : x;
  x = x > kExpMax ? kExpMax : x;
  return std::exp(x);
}

// e^x - 1 without the cancellation near 0 (needed by elu).
MLP_HOST_DEVICE inline float expm1_clamped(float x) {
  const float e = exp_clamped(x) - 1.0f;
  // Taylor to x^7 on |x| < 0.35: error below 6e-9.
  float p = 1.0f / 5040.0f;
  p = p * x + 1.0f / 720.0f;
  p = p * x + 1.0f / 120.0f;
  p = p * x + 1.0f / 24.0f;
  p = p * x + 1.0f / 6.0f;
  p = p * x + 0.5f;
  p = p * x + 1.0f;
  p = p * x;
  const float ax = x < 0 ? -x : x;
  return ax < 0.35f ? p : e;
}
MLP_HOST_DEVICE inline double expm1_clamped(double x) { return std::expm1(x > kExpMax ? kExpMax : x); }

MLP_HOST_DEVICE inline float tanh_fast(float x) {
  const float ax = x < 0 ? -x : x;
  const float e = exp_clamped(-2.0f * ax);
  float big = (1.0f - e) / (1.0f + e);
  big = x < 0 ? -big : big;
  // Odd Taylor series to x^13 on |x| < 0.55: relative error below 4e-7.
  const float x2 = x * x;
  float p = 21844.0f / 6081075.0f;
  p = p * x2 - 1382.0f / 155925.0f;
  p = p * x2 + 62.0f / 2835.0f;
  p = p * x2 - 17.0f / 315.0f;
  p = p * x2 + 2.0f / 15.0f;
  p = p * x2 - 1.0f / 3.0f;
  p = p * x2 + 1.0f;
  p = p * x;
  return ax < 0.55f ? p : big;
}
MLP_HOST_DEVICE inline double tanh_fast(double x) { return std::tanh(x); }

// What softmax exponentiates for logit z of a row whose largest logit is mx: z - mx, except when
// mx is infinite (a logit overflowed), where inf - inf would be NaN. Then the infinite logits
// share the probability and the others get exp(-inf), clamped to a tiny positive value, so the
// row stays a finite distribution; a row of -inf only is uniform.
template <class T>
MLP_HOST_DEVICE inline T softmax_shift(T z, T mx) {
  const T inf = std::numeric_limits<T>::infinity();
  if (mx == inf || mx == -inf) return z == mx ? T(0) : -inf;
  return z - mx;
}

template <class T>
MLP_HOST_DEVICE inline T sigmoid(T z) {
  return T(1) / (T(1) + exp_clamped(-z));
}

// Forward of one element, the activation fixed at compile time so that loops over it vectorize.
// Softmax is row-wise and handled by the caller; element-wise it is the identity.
template <Act A, class T>
MLP_HOST_DEVICE inline T act_forward(T z, T alpha) {
  if constexpr (A == Act::Relu) return z > T(0) ? z : T(0);
  else if constexpr (A == Act::LeakyRelu) return z > T(0) ? z : alpha * z;
  else if constexpr (A == Act::Elu) return z > T(0) ? z : alpha * expm1_clamped(z);
  else if constexpr (A == Act::Sigmoid) return sigmoid(z);
  else if constexpr (A == Act::Tanh) return tanh_fast(z);
  else if constexpr (A == Act::Swish) return z * sigmoid(z);
  else return z;
}

// f'(z) from (z, a). Only swish reads z; the others read a, so callers may pass a for z.
// relu/leaky_relu/elu test a > 0, which equals z > 0 for alpha >= 0.
template <Act A, class T>
MLP_HOST_DEVICE inline T act_derivative(T z, T a, T alpha) {
  if constexpr (A == Act::Relu) return a > T(0) ? T(1) : T(0);
  else if constexpr (A == Act::LeakyRelu) return a > T(0) ? T(1) : alpha;
  else if constexpr (A == Act::Elu) return a > T(0) ? T(1) : a + alpha;
  else if constexpr (A == Act::Sigmoid) return a * (T(1) - a);
  else if constexpr (A == Act::Tanh) return T(1) - a * a;
  else if constexpr (A == Act::Swish) {
    const T s = sigmoid(z);
    return s * (T(1) + z * (T(1) - s));
  } else return T(1);
}

// Calls f(std::integral_constant<Act, A>{}) for the runtime value act: one switch outside a loop.
template <class F>
inline decltype(auto) with_act(Act act, F&& f) {
  switch (act) {
    case Act::Relu: return f(std::integral_constant<Act, Act::Relu>{});
    case Act::LeakyRelu: return f(std::integral_constant<Act, Act::LeakyRelu>{});
    case Act::Elu: return f(std::integral_constant<Act, Act::Elu>{});
    case Act::Sigmoid: return f(std::integral_constant<Act, Act::Sigmoid>{});
    case Act::Tanh: return f(std::integral_constant<Act, Act::Tanh>{});
    case Act::Swish: return f(std::integral_constant<Act, Act::Swish>{});
    case Act::Softmax: return f(std::integral_constant<Act, Act::Softmax>{});
    default: return f(std::integral_constant<Act, Act::Identity>{});
  }
}

inline bool act_needs_z(Act act) { return act == Act::Swish; }

}  // namespace mlp
