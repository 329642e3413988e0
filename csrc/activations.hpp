// Scalar activation functions and their derivatives, written once for every backend.
// Forward a = f(z); derivative f'(z) expressed through (z, a) so that layers whose derivative
// follows from a need not keep z (act_needs_z says which do). exp is clamped so that no
// activation overflows for |z| up to 1e30.
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

template <class T>
MLP_HOST_DEVICE inline T abs_val(T x) {
  return x < T(0) ? -x : x;
}

// The lowest argument exp_clamped takes unchanged: below it, e^z is e^(exp_min) instead.
template <class T>
MLP_HOST_DEVICE constexpr T exp_min() {
  return std::is_same<T, float>::value ? T(kExpMinF) : T(kExpMin);
}

// selu = scale * elu with alpha fixed (Klambauer et al. 2017): the values that keep a standard
// normal input at mean 0 and variance 1 through a LeCun-normal layer.
constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
constexpr double kSeluScale = 1.0507009873554804934193349852946;

// mish(z) = z tanh(softplus(z)). With w = e^-|z| <= 1, tanh(log(1 + e^z)) = n / d where
//   z >= 0: n = 1 + 2w,     d = n + 2w^2
//   z <  0: n = w (w + 2),  d = n + 2
// (multiply ((1 + e^z)^2 - 1) / ((1 + e^z)^2 + 1) through by w^2, or not): nothing overflows and
// nothing cancels. Its derivative is n/d + z sigmoid(z) (1 - (n/d)^2) = n/d + 4 z m (1 + w) / d^2,
// m = w^2 for z >= 0 and w for z < 0.
template <class T>
struct MishTerms {
  T w, n, d;
  bool pos;
};
template <class T>
MLP_HOST_DEVICE inline MishTerms<T> mish_terms(T z) {
  const T w = exp_clamped(-abs_val(z));
  const bool pos = z >= T(0);
  const T n = pos ? T(1) + T(2) * w : w * (w + T(2));
  const T d = n + (pos ? T(2) * w * w : T(2));
  return {w, n, d, pos};
}
// Below exp_min, w stays at e^(exp_min) while e^z goes on falling; z is held there too, so that
// mish and its derivative are of the size they have at exp_min (|.| < 1e-35 in float) instead of
// growing with |z| (-1e30 * e^-87 is not small).
template <class T>
MLP_HOST_DEVICE inline T mish_forward(T z) {
  const MishTerms<T> m = mish_terms(z);
  const T zl = z < exp_min<T>() ? exp_min<T>() : z;
  return zl * (m.n / m.d);
}
template <class T>
MLP_HOST_DEVICE inline T mish_derivative(T z) {
  const MishTerms<T> m = mish_terms(z);
  T zc = z < exp_min<T>() ? exp_min<T>() : z;
  zc = zc > -exp_min<T>() ? -exp_min<T>() : zc;  // there w^2 = 0, and inf * 0 would be NaN
  const T inv_d = T(1) / m.d;
  return m.n * inv_d + T(4) * zc * (m.pos ? m.w * m.w : m.w) * (T(1) + m.w) * inv_d * inv_d;
}

// gelu(z) = z Phi(z), Phi the standard normal distribution function; gelu'(z) = Phi(z) + z phi(z).
// GeluTerms: Phi(z), phi(z) and z clamped to the range where these are computed (beyond it Phi is
// 0 or 1 and phi 0 in the type's precision).
template <class T>
struct GeluTerms {
  T cdf, pdf, zc;
};
constexpr double kInvSqrt2Pi = 0.39894228040143267793994605993438;
constexpr double kSqrtHalf = 0.70710678118654752440084436210485;

// float: the upper tail Q(x) = 1 - Phi(x), x = |z| <= 13, as e^(-x^2/2) t S(t) with
// t = 1 / (1 + 0.26 x) and S a degree-8 polynomial (a relative least-squares fit of
// e^(x^2/2) Q(x) / t on [0, 13], relative error 2e-8), so that the loop vectorizes. The rounding
// of x^2 in the exponent dominates: gelu's relative error is below 8e-7 for |z| < 5 and grows to
// 4e-6 in the far negative tail (z ~ -12.5, gelu ~ -1e-34). Then Phi(z) = Q(|z|) for z < 0,
// else 1 - Q(|z|).
MLP_HOST_DEVICE inline GeluTerms<float> gelu_terms(float z) {
  const float lim = 13.0f;
  float x = abs_val(z);
  x = x > lim ? lim : x;
  const float t = 1.0f / (1.0f + 0.26f * x);
  float s = 3.106720115e-02f;
  s = s * t - 1.555799387e-01f;
  s = s * t + 2.572220532e-01f;
  s = s * t - 1.575735446e-01f;
  s = s * t + 1.655859579e-01f;
  s = s * t + 4.901781499e-02f;
  s = s * t + 1.035557084e-01f;
  s = s * t + 1.029410892e-01f;
  s = s * t + 1.037636494e-01f;
  const float e = exp_clamped(-0.5f * x * x);
  const float q = e * t * s;
  const bool neg = z < 0.0f;
  return {neg ? q : 1.0f - q, e * float(kInvSqrt2Pi), neg ? -x : x};
}
// double: erfc, exact to a few ulps in both tails; z clamped to +-40, where phi is 0 already.
MLP_HOST_DEVICE inline GeluTerms<double> gelu_terms(double z) {
  double zc = z < -40.0 ? -40.0 : z;
  zc = zc > 40.0 ? 40.0 : zc;
  return {0.5 * std::erfc(-z * kSqrtHalf), std::exp(-0.5 * zc * zc) * kInvSqrt2Pi, zc};
}
// Below the clamp z Phi(z) is held at its (tiny) value there, like mish.
template <class T>
MLP_HOST_DEVICE inline T gelu_forward(T z) {
  const GeluTerms<T> g = gelu_terms(z);
  return (z < g.zc ? g.zc : z) * g.cdf;
}
template <class T>
MLP_HOST_DEVICE inline T gelu_derivative(T z) {
  const GeluTerms<T> g = gelu_terms(z);
  return g.cdf + g.zc * g.pdf;
}

// gelu_tanh(z) = 0.5 z (1 + tanh(u)), u = sqrt(2/pi) (z + 0.044715 z^3), computed as z s with
// s = sigmoid(2u) (1 + tanh(u) = 2 sigmoid(2u), no cancellation for z < 0), from e = e^(-2|u|)
// <= 1: sigmoid(2|u|) = 1 / (1 + e), sigmoid(-2|u|) = e / (1 + e). Its derivative is
// s + z 2 s (1 - s) u', with s (1 - s) = e / (1 + e)^2 and u' = sqrt(2/pi) (1 + 3 0.044715 z^2).
// |z| is clamped to 10 (float) / 20 (double), beyond which s is 1 (z > 0) or below 1e-37 / 1e-261
// (z < 0), so that z^3 never overflows (1e30^3 is inf in float) and the slope's z^3 e^(-2|u|)
// never meets exp's clamp (which would leave e^(-2|u|) at e^-87 while z^3 grows); below -10 /
// -20, z s is held at its value there (|.| < 2e-37 / 6e-261), like mish.
constexpr double kSqrt2OverPi = 0.79788456080286535587989211986876;
constexpr double kGeluCubic = 0.044715;
template <class T>
struct GeluTanhTerms {
  T s, ds, zc;  // sigmoid(2u), d sigmoid(2u) / dz, z clamped
};
template <class T>
MLP_HOST_DEVICE inline GeluTanhTerms<T> gelu_tanh_terms(T z) {
  const T lim = std::is_same<T, float>::value ? T(10) : T(20);
  T x = abs_val(z);
  x = x > lim ? lim : x;
  const T x2 = x * x;
  const T au = T(kSqrt2OverPi) * x * (T(1) + T(kGeluCubic) * x2);
  const T e = exp_clamped(T(-2) * au);
  const T r = T(1) / (T(1) + e);
  const bool neg = z < T(0);
  const T ds = T(2) * e * r * r * T(kSqrt2OverPi) * (T(1) + T(3 * kGeluCubic) * x2);
  return {neg ? e * r : r, ds, neg ? -x : x};
}
template <class T>
MLP_HOST_DEVICE inline T gelu_tanh_forward(T z) {
  const GeluTanhTerms<T> g = gelu_tanh_terms(z);
  return (z < g.zc ? g.zc : z) * g.s;
}
template <class T>
MLP_HOST_DEVICE inline T gelu_tanh_derivative(T z) {
  const GeluTanhTerms<T> g = gelu_tanh_terms(z);
  return g.s + g.zc * g.ds;
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
  else if constexpr (A == Act::Selu)
    return z > T(0) ? T(kSeluScale) * z : T(kSeluScale * kSeluAlpha) * expm1_clamped(z);
  else if constexpr (A == Act::Mish) return mish_forward(z);
  else if constexpr (A == Act::Gelu) return gelu_forward(z);
  else if constexpr (A == Act::GeluTanh) return gelu_tanh_forward(z);
  else return z;
}

// f'(z) from (z, a). Swish, mish, gelu and gelu_tanh read z (act_needs_z); the others read a, so
// callers may pass a for z. relu/leaky_relu/elu/selu test a > 0, which equals z > 0 for
// alpha >= 0; selu's, like elu's, is scale * alpha * e^z = a + scale * alpha for z <= 0.
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
  } else if constexpr (A == Act::Selu)
    return a > T(0) ? T(kSeluScale) : a + T(kSeluScale * kSeluAlpha);
  else if constexpr (A == Act::Mish) return mish_derivative(z);
  else if constexpr (A == Act::Gelu) return gelu_derivative(z);
  else if constexpr (A == Act::GeluTanh) return gelu_tanh_derivative(z);
  else return T(1);
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
    case Act::Selu: return f(std::integral_constant<Act, Act::Selu>{});
    case Act::Mish: return f(std::integral_constant<Act, Act::Mish>{});
    case Act::Gelu: return f(std::integral_constant<Act, Act::Gelu>{});
    case Act::GeluTanh: return f(std::integral_constant<Act, Act::GeluTanh>{});
    default: return f(std::integral_constant<Act, Act::Identity>{});
  }
}

// The activations whose derivative needs z (the others compute it from a): their layers keep z.
inline bool act_needs_z(Act act) {
  return act == Act::Swish || act == Act::Mish || act == Act::Gelu || act == Act::GeluTanh;
}

}  // namespace mlp
