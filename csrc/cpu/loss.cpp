// Losses per sample, summed with sample weights: sum_n w_n sum_k l(n, k), and dl/dz.
//   mse: l = (a - y)^2,                      dl/dz = 2 (a - y) f'(z)
//   categorical cross-entropy (softmax):     l = -y log softmax(z),   dl/dz = softmax(z) sum(y) - y
//   binary cross-entropy (sigmoid):          l = softplus(z) - y z,   dl/dz = sigmoid(z) - y
//   poisson (exp link):                      l = exp(z) - y z,        dl/dz = exp(z) - y
// The cross-entropies are computed from the logits z, never from log(a), so they stay finite.
#include <algorithm>
#include <cmath>

#include "../activations.hpp"
#include "isa.hpp"
#include "kernels.hpp"

namespace mlp::cpu::MLP_ISA {

template <class T>
double loss_forward(const T* z, const T* a, const T* y, const T* w, idx rows, idx cols, LossKind loss) {
  double total = 0.0;
  for (idx i = 0; i < rows; ++i) {
    const T* zr = z + i * cols;
    const T* ar = a + i * cols;
    const T* yr = y + i * cols;
    double row = 0.0;
    switch (loss) {
      case LossKind::Mse:
        for (idx j = 0; j < cols; ++j) {
          const double d = double(ar[j]) - double(yr[j]);
          row += d * d;
        }
        break;
      case LossKind::CategoricalCrossEntropy: {
        if (cols == 0) break;  // no classes: nothing to add, and no zr[0] to read
        T mx = zr[0];
        for (idx j = 1; j < cols; ++j) mx = zr[j] > mx ? zr[j] : mx;
        // exp in T (float: exp_clamped, the activations' inlined polynomial exp; a libm call per
        // logit was 5% of a digits epoch), the sum and the log in double.
        double s = 0.0;
        for (idx j = 0; j < cols; ++j) s += double(exp_clamped(zr[j] - mx));
        const double lse = double(mx) + std::log(s);
        for (idx j = 0; j < cols; ++j)
          if (yr[j] != T(0)) row -= double(yr[j]) * (double(zr[j]) - lse);
        break;
      }
      case LossKind::BinaryCrossEntropy:
        for (idx j = 0; j < cols; ++j) {
          const double zj = zr[j];
          row += std::max(zj, 0.0) - zj * double(yr[j]) + std::log1p(std::exp(-std::fabs(zj)));
        }
        break;
      case LossKind::Poisson:
        for (idx j = 0; j < cols; ++j) {
          const double zj = std::min<double>(zr[j], kExpMax);
          row += std::exp(zj) - double(yr[j]) * double(zr[j]);
        }
        break;
    }
    total += (w ? double(w[i]) : 1.0) * row;
  }
  return total;
}

template <class T>
void loss_backward(T* dz, const T* z, const T* a, const T* y, const T* w, idx rows, idx cols,
                   LossKind loss, Act act, T alpha, T coef) {
  for (idx i = 0; i < rows; ++i) {
    const T* __restrict zr = z + i * cols;
    const T* __restrict ar = a + i * cols;
    const T* __restrict yr = y + i * cols;
    T* __restrict dr = dz + i * cols;
    const T c = coef * (w ? w[i] : T(1));
    switch (loss) {
      case LossKind::Mse:
        with_act(act, [&](auto tag) {
          constexpr Act A = decltype(tag)::value;
          for (idx j = 0; j < cols; ++j)
            dr[j] = c * T(2) * (ar[j] - yr[j]) * act_derivative<A>(zr[j], ar[j], alpha);
        });
        break;
      case LossKind::CategoricalCrossEntropy: {
        if (cols == 0) break;
        // softmax from z again rather than trusting a: the fused gradient must match the loss.
        T mx = zr[0];
        for (idx j = 1; j < cols; ++j) mx = zr[j] > mx ? zr[j] : mx;
        T s = T(0), ysum = T(0);
        for (idx j = 0; j < cols; ++j) {
          dr[j] = exp_clamped(zr[j] - mx);
          s += dr[j];
          ysum += yr[j];
        }
        const T inv = ysum / s;
        for (idx j = 0; j < cols; ++j) dr[j] = c * (dr[j] * inv - yr[j]);
        break;
      }
      case LossKind::BinaryCrossEntropy:
        for (idx j = 0; j < cols; ++j) dr[j] = c * (sigmoid(zr[j]) - yr[j]);
        break;
      case LossKind::Poisson:
        for (idx j = 0; j < cols; ++j) dr[j] = c * (exp_clamped(zr[j]) - yr[j]);
        break;
    }
  }
}

template double loss_forward<float>(const float*, const float*, const float*, const float*, idx, idx, LossKind);
template double loss_forward<double>(const double*, const double*, const double*, const double*, idx, idx, LossKind);
template void loss_backward<float>(float*, const float*, const float*, const float*, const float*, idx, idx, LossKind, Act, float, float);
template void loss_backward<double>(double*, const double*, const double*, const double*, const double*, idx, idx, LossKind, Act, double, double);

}  // namespace mlp::cpu::MLP_ISA
