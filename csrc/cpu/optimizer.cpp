// Parameter updates over flat buffers with the clipping factor and the L2 term folded in
// (g' = gs g + l2 p) and the decoupled weight decay (decay = lr * weight_decay) after:
//   sgd:       v = mu v - lr g';  d = v - decay p               (mu = 0: d = -lr g' - decay p)
//   nesterov:  v = mu v - lr g';  d = mu v - lr g' - decay p
//   adam:      m = b1 m + (1-b1) g';  v = b2 v + (1-b2) g'^2;  d = -lr_t m / (sqrt(v) + eps) - decay p
// then p += d
// plus the small reductions the training loop needs (gradient sum over threads, bias sums).
#include <cmath>
#include <limits>

#include "isa.hpp"
#include "kernels.hpp"

namespace mlp::cpu::MLP_ISA {

// The updates are computed into d (which may alias g) and applied by add_inplace, so that the
// training loop can refuse a step that would make any weight non-finite. Returns whether every
// p + d is finite.
template <class T>
bool all_finite_sum(const T* __restrict p, const T* __restrict d, idx n) {
  const T big = std::numeric_limits<T>::max();
  int bad = 0;
  for (idx i = 0; i < n; ++i) bad |= !(std::fabs(p[i] + d[i]) <= big);
  return bad == 0;
}

template <class T>
bool sgd_delta(T* d, const T* __restrict p, const T* g, T* __restrict v, idx n, T lr, T mu,
               bool nesterov, T l2, T gs, T decay) {
  if (mu == T(0)) {
    for (idx i = 0; i < n; ++i) d[i] = -lr * (gs * g[i] + l2 * p[i]) - decay * p[i];
  } else if (nesterov) {
    for (idx i = 0; i < n; ++i) {
      const T gi = gs * g[i] + l2 * p[i];
      v[i] = mu * v[i] - lr * gi;
      d[i] = mu * v[i] - lr * gi - decay * p[i];
    }
  } else {
    for (idx i = 0; i < n; ++i) {
      v[i] = mu * v[i] - lr * (gs * g[i] + l2 * p[i]);
      d[i] = v[i] - decay * p[i];
    }
  }
  return all_finite_sum(p, d, n);
}

template <class T>
bool adam_delta(T* d, const T* __restrict p, const T* g, T* __restrict m, T* __restrict v, idx n,
                T lr_t, T b1, T c1, T b2, T c2, T eps, T l2, T gs, T decay) {
  // c1 = 1 - b1 and c2 = 1 - b2 come rounded from double: in float, 1 - 0.999f is 4.7e-5 off
  // 0.001, a bias in every second moment.
  for (idx i = 0; i < n; ++i) {
    const T gi = gs * g[i] + l2 * p[i];
    m[i] = b1 * m[i] + c1 * gi;
    v[i] = b2 * v[i] + c2 * gi * gi;
    d[i] = -lr_t * m[i] / (std::sqrt(v[i]) + eps) - decay * p[i];
  }
  return all_finite_sum(p, d, n);
}

template <class T>
void add_inplace(T* __restrict p, const T* __restrict d, idx n) {
  for (idx i = 0; i < n; ++i) p[i] += d[i];
}

template <class T>
void col_sum(T* __restrict db, const T* __restrict x, idx rows, idx cols, T beta) {
  if (beta == T(0)) {
    for (idx j = 0; j < cols; ++j) db[j] = T(0);
  } else if (beta != T(1)) {
    for (idx j = 0; j < cols; ++j) db[j] *= beta;
  }
  for (idx i = 0; i < rows; ++i) {
    const T* __restrict xr = x + i * cols;
    for (idx j = 0; j < cols; ++j) db[j] += xr[j];
  }
}

template <class T>
void sum_buffers(T* __restrict out, const T* const* bufs, int nbufs, idx n) {
  if (nbufs <= 0) return;
  const T* __restrict b0 = bufs[0];
  if (out != b0)
    for (idx i = 0; i < n; ++i) out[i] = b0[i];
  for (int b = 1; b < nbufs; ++b) {
    const T* __restrict bb = bufs[b];
    for (idx i = 0; i < n; ++i) out[i] += bb[i];
  }
}

template <class T>
double sum_squares(const T* __restrict x, idx n) {
  // Sixteen accumulators in T (a fixed order, so the compiler vectorizes it without reassociating
  // anything), summed in double per block of 4096 values. One accumulator was a chain of
  // dependent adds: 2-3% of a small network's epoch.
  constexpr int lanes = 16;
  constexpr idx block = 4096;
  double total = 0.0;
  for (idx s = 0; s < n; s += block) {
    const idx e = s + block < n ? s + block : n;
    T acc[lanes] = {};
    idx i = s;
    for (; i + lanes <= e; i += lanes)
      for (int l = 0; l < lanes; ++l) acc[l] += x[i + l] * x[i + l];
    for (; i < e; ++i) acc[0] += x[i] * x[i];
    double part = 0.0;
    for (int l = 0; l < lanes; ++l) part += double(acc[l]);
    total += part;
  }
  return total;
}

template bool sgd_delta<float>(float*, const float*, const float*, float*, idx, float, float, bool, float, float,
                               float);
template bool sgd_delta<double>(double*, const double*, const double*, double*, idx, double, double, bool, double,
                                double, double);
template bool adam_delta<float>(float*, const float*, const float*, float*, float*, idx, float, float, float, float,
                                float, float, float, float, float);
template bool adam_delta<double>(double*, const double*, const double*, double*, double*, idx, double, double, double,
                                 double, double, double, double, double, double);
template void add_inplace<float>(float*, const float*, idx);
template void add_inplace<double>(double*, const double*, idx);
template void col_sum<float>(float*, const float*, idx, idx, float);
template void col_sum<double>(double*, const double*, idx, idx, double);
template void sum_buffers<float>(float*, const float* const*, int, idx);
template void sum_buffers<double>(double*, const double* const*, int, idx);
template double sum_squares<float>(const float*, idx);
template double sum_squares<double>(const double*, idx);

}  // namespace mlp::cpu::MLP_ISA
