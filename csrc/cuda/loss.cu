// Losses fused with their output activation, one warp per sample, as csrc/cpu/loss.cpp:
//   mse: l = (a - y)^2,                      dl/dz = 2 (a - y) f'(z)
//   categorical cross-entropy (softmax):     l = -y log softmax(z),   dl/dz = softmax(z) sum(y) - y
//   binary cross-entropy (sigmoid):          l = softplus(z) - y z,   dl/dz = sigmoid(z) - y
//   poisson (exp link):                      l = exp(z) - y z,        dl/dz = exp(z) - y
// The loss value is summed in double per block (fixed order); the gradient is written in T.
#include <cmath>

#include "../activations.hpp"
#include "kernels.cuh"
#include "reduce.cuh"

namespace mlp::cuda {

namespace {

template <Act A, class T>
__global__ void loss_kernel(double* partials, T* dz, const T* z, const T* a, const T* y, const T* w,
                            const idx* rows, idx count, idx cols, LossKind kind, T alpha, T coef_arg,
                            const double* coef_dev, T ls, T ls_add) {
  const int lane = threadIdx.x & 31;
  const T coef = coef_dev ? T(*coef_dev) : coef_arg;
  const bool smooth = ls != T(0);
  const T keep = T(1) - ls;
  double acc = 0.0;  // this warp's weighted loss (lane 0)
  for (idx r = blockIdx.x * idx(kWarps) + (threadIdx.x >> 5); r < count; r += idx(gridDim.x) * kWarps) {
    const idx s = rows ? rows[r] : r;
    const T* zr = z + r * cols;
    const T* ar = a ? a + r * cols : nullptr;
    const T* yraw = y + s * cols;
    // The target, label-smoothed as the CPU's gather does: y (1 - ls) + ls / K.
    auto yt = [&](idx j) -> T { return smooth ? yraw[j] * keep + ls_add : yraw[j]; };
    const T wn = w ? w[s] : T(1);
    const T c = coef * wn;
    T* dr = dz ? dz + r * cols : nullptr;
    double row = 0.0;
    switch (kind) {
      case LossKind::Mse:
        for (idx j = lane; j < cols; j += 32) {
          const T aj = ar ? ar[j] : act_forward<A>(zr[j], alpha);
          const double d = double(aj) - double(yt(j));
          row += d * d;
          if (dr) dr[j] = c * T(2) * (aj - yt(j)) * act_derivative<A>(zr[j], aj, alpha);
        }
        break;
      case LossKind::CategoricalCrossEntropy: {
        T mx = zr[0];
        for (idx j = lane; j < cols; j += 32) mx = zr[j] > mx ? zr[j] : mx;
        mx = warp_max(mx);
        double s_d = 0.0;
        T s_t = T(0), ysum = T(0);
        for (idx j = lane; j < cols; j += 32) {
          s_d += exp(double(zr[j]) - double(mx));
          s_t += exp_clamped(zr[j] - mx);
          ysum += yt(j);
        }
        s_d = warp_sum(s_d);
        s_t = warp_sum(s_t);
        ysum = warp_sum(ysum);
        const double lse = double(mx) + log(s_d);
        const T inv = ysum / s_t;
        for (idx j = lane; j < cols; j += 32) {
          if (yt(j) != T(0)) row -= double(yt(j)) * (double(zr[j]) - lse);
          if (dr) dr[j] = c * (exp_clamped(zr[j] - mx) * inv - yt(j));
        }
        break;
      }
      case LossKind::BinaryCrossEntropy:
        for (idx j = lane; j < cols; j += 32) {
          const double zj = zr[j];
          row += fmax(zj, 0.0) - zj * double(yt(j)) + log1p(exp(-fabs(zj)));
          if (dr) dr[j] = c * (sigmoid(zr[j]) - yt(j));
        }
        break;
      case LossKind::Poisson:
        for (idx j = lane; j < cols; j += 32) {
          const double zj = double(zr[j]);
          row += exp(fmin(zj, kExpMax)) - double(yt(j)) * zj;
          if (dr) dr[j] = c * (exp_clamped(zr[j]) - yt(j));
        }
        break;
    }
    row = warp_sum(row);
    acc += double(wn) * row;
  }
  if (!partials) return;
  // Every lane holds its warp's total; count it once per warp.
  const double total = block_sum(lane == 0 ? acc : 0.0);
  if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

__global__ void sum_partials_kernel(double* out, const double* partials, int n, bool accumulate) {
  double v = 0.0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) v += partials[i];
  v = block_sum(v);
  if (threadIdx.x == 0) *out = accumulate ? *out + v : v;
}

}  // namespace

unsigned loss_blocks(idx count) { return blocks_for(count, kWarps); }

template <class T>
void loss(Context& c, double* partials, T* dz, const T* z, const T* a, const T* y, const T* w, const idx* rows,
          idx count, idx cols, LossKind kind, Act act, T alpha, T coef, const double* coef_dev, T ls, T ls_add) {
  if (count <= 0) return;
  // Only MSE goes through the output activation; the other losses read the logits.
  const Act through = kind == LossKind::Mse ? act : Act::Identity;
  with_act(through, [&](auto tag) {
    constexpr Act A = decltype(tag)::value;
    loss_kernel<A, T><<<loss_blocks(count), kThreads, 0, c.stream>>>(partials, dz, z, a, y, w, rows, count, cols,
                                                                     kind, alpha, coef, coef_dev, ls, ls_add);
  });
  MLP_CUDA_LAUNCHED();
}

void sum_partials(Context& c, double* out, const double* partials, int n, bool accumulate) {
  sum_partials_kernel<<<1, kThreads, 0, c.stream>>>(out, partials, n, accumulate);
  MLP_CUDA_LAUNCHED();
}

template void loss<float>(Context&, double*, float*, const float*, const float*, const float*, const float*,
                          const idx*, idx, idx, LossKind, Act, float, float, const double*, float, float);
template void loss<double>(Context&, double*, double*, const double*, const double*, const double*, const double*,
                           const idx*, idx, idx, LossKind, Act, double, double, const double*, double, double);

}  // namespace mlp::cuda
