// Activation forward a = f(z) and backward dz = da * f'(z) over (rows x cols) blocks.
// Softmax is row-wise: a = exp(z - max) / sum, and its backward is the Jacobian-vector product
// dz = a * (da - sum_j da_j a_j).
#include <algorithm>
#include <cmath>

#include "../activations.hpp"
#include "isa.hpp"
#include "kernels.hpp"

namespace mlp::cpu::MLP_ISA {

template <class T>
void softmax_rows(T* a, const T* z, idx rows, idx cols) {
  if (cols <= 0) return;  // no z[0] to start the max from (the _core kernels allow empty rows)
  for (idx i = 0; i < rows; ++i) {
    const T* __restrict zr = z + i * cols;
    T* __restrict ar = a + i * cols;
    T mx = zr[0];
    for (idx j = 1; j < cols; ++j) mx = zr[j] > mx ? zr[j] : mx;
    T s = T(0);
    for (idx j = 0; j < cols; ++j) {
      ar[j] = exp_clamped(softmax_shift(zr[j], mx));
      s += ar[j];
    }
    const T inv = T(1) / s;
    for (idx j = 0; j < cols; ++j) ar[j] *= inv;
  }
}

template <class T>
void activation_forward(T* a, const T* z, idx rows, idx cols, Act act, T alpha) {
  if (act == Act::Softmax) return softmax_rows(a, z, rows, cols);
  with_act(act, [&](auto tag) {
    constexpr Act A = decltype(tag)::value;
    const idx n = rows * cols;
    for (idx i = 0; i < n; ++i) a[i] = act_forward<A>(z[i], alpha);
  });
}

template <class T>
void activation_backward(T* dz, const T* z, const T* a, const T* da, idx rows, idx cols, Act act,
                         T alpha) {
  if (act == Act::Softmax) {
    for (idx i = 0; i < rows; ++i) {
      const T* __restrict ar = a + i * cols;
      const T* __restrict gr = da + i * cols;
      T* dr = dz + i * cols;
      T dot = T(0);
      for (idx j = 0; j < cols; ++j) dot += gr[j] * ar[j];
      for (idx j = 0; j < cols; ++j) dr[j] = ar[j] * (gr[j] - dot);
    }
    return;
  }
  with_act(act, [&](auto tag) {
    constexpr Act A = decltype(tag)::value;
    const idx n = rows * cols;
    for (idx i = 0; i < n; ++i) dz[i] = da[i] * act_derivative<A>(z[i], a[i], alpha);
  });
}

template void activation_forward<float>(float*, const float*, idx, idx, Act, float);
template void activation_forward<double>(double*, const double*, idx, idx, Act, double);
template void activation_backward<float>(float*, const float*, const float*, const float*, idx, idx, Act, float);
template void activation_backward<double>(double*, const double*, const double*, const double*, idx, idx, Act, double);

}  // namespace mlp::cpu::MLP_ISA
