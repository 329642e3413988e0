// Activation forward a = f(z), the fused bias + activation z += b, a = f(z), and the backward
// dz = da * f'(z, a), element-wise with the functors of activations.hpp. Softmax is row-wise, one
// warp per row: a = exp(z - max) / sum, backward dz = a * (da - sum_j da_j a_j).
// Dropout: the mask of ../dropout.hpp (shared with the CPU) applied to a hidden layer's
// activation, and its backward fused with the derivative, one warp per row (one key per row).
#include "../activations.hpp"
#include "../dropout.hpp"
#include "kernels.cuh"
#include "reduce.cuh"

namespace mlp::cuda {

namespace {

template <Act A, class T>
__global__ void act_forward_kernel(T* a, const T* z, idx n, T alpha) {
  for (idx i = blockIdx.x * idx(blockDim.x) + threadIdx.x; i < n; i += idx(gridDim.x) * blockDim.x)
    a[i] = act_forward<A>(z[i], alpha);
}

// z: (rows, cols) += b (cols); a = act(z) when a is non-null (a may equal z).
template <Act A, class T>
__global__ void bias_act_kernel(T* z, T* a, const T* b, idx rows, idx cols, T alpha) {
  const idx n = rows * cols;
  for (idx i = blockIdx.x * idx(blockDim.x) + threadIdx.x; i < n; i += idx(gridDim.x) * blockDim.x) {
    const T v = z[i] + b[i % cols];
    z[i] = v;
    if (a) a[i] = act_forward<A>(v, alpha);
  }
}

template <Act A, class T>
__global__ void act_backward_kernel(T* dz, const T* z, const T* a, const T* da, idx n, T alpha) {
  for (idx i = blockIdx.x * idx(blockDim.x) + threadIdx.x; i < n; i += idx(gridDim.x) * blockDim.x)
    dz[i] = da[i] * act_derivative<A>(z[i], a[i], alpha);
}

// One warp per row.
template <class T>
__global__ void softmax_kernel(T* a, const T* z, idx rows, idx cols) {
  const int lane = threadIdx.x & 31;
  for (idx r = blockIdx.x * idx(kWarps) + (threadIdx.x >> 5); r < rows; r += idx(gridDim.x) * kWarps) {
    const T* zr = z + r * cols;
    T* ar = a + r * cols;
    T mx = zr[0];
    for (idx j = lane; j < cols; j += 32) mx = zr[j] > mx ? zr[j] : mx;
    mx = warp_max(mx);
    T s = T(0);
    for (idx j = lane; j < cols; j += 32) s += exp_clamped(softmax_shift(zr[j], mx));
    const T inv = T(1) / warp_sum(s);
    // zr may alias ar: each lane rewrites only the elements it read.
    for (idx j = lane; j < cols; j += 32) ar[j] = exp_clamped(softmax_shift(zr[j], mx)) * inv;
  }
}

template <class T>
__global__ void softmax_backward_kernel(T* dz, const T* a, const T* da, idx rows, idx cols) {
  const int lane = threadIdx.x & 31;
  for (idx r = blockIdx.x * idx(kWarps) + (threadIdx.x >> 5); r < rows; r += idx(gridDim.x) * kWarps) {
    const T* ar = a + r * cols;
    const T* gr = da + r * cols;
    T* dr = dz + r * cols;
    T dot = T(0);
    for (idx j = lane; j < cols; j += 32) dot += gr[j] * ar[j];
    dot = warp_sum(dot);
    for (idx j = lane; j < cols; j += 32) dr[j] = ar[j] * (gr[j] - dot);
  }
}

unsigned row_blocks(idx rows) { return blocks_for(rows, kWarps); }

template <class T>
__device__ inline std::uint32_t drop_key(const DropSpec<T>& d, idx r) {
  return dropout_row_key(d.seed, d.step, d.layer, d.rows ? d.rows[r] : d.row0 + r);
}

// a = a * m, m = scale (kept) or 0: the CPU's act(z) * m in its GEMM write-out.
template <class T>
__global__ void dropout_forward_kernel(T* a, idx rows, idx cols, DropSpec<T> d) {
  const int lane = threadIdx.x & 31;
  for (idx r = blockIdx.x * idx(kWarps) + (threadIdx.x >> 5); r < rows; r += idx(gridDim.x) * kWarps) {
    const std::uint32_t key = drop_key(d, r);
    T* ar = a + r * cols;
    for (idx j = lane; j < cols; j += 32)
      ar[j] = ar[j] * (dropout_bits(key, std::uint32_t(j)) >= d.threshold ? d.scale : T(0));
  }
}

// dz = keep ? da * scale * act'(z, a / scale) : 0, as the CPU's Deriv write-out with a mask.
template <Act A, class T>
__global__ void dropout_backward_kernel(T* dz, const T* z, const T* a, const T* da, idx rows, idx cols, T alpha,
                                        DropSpec<T> d) {
  const int lane = threadIdx.x & 31;
  const T s = d.scale, inv = T(1) / d.scale;
  for (idx r = blockIdx.x * idx(kWarps) + (threadIdx.x >> 5); r < rows; r += idx(gridDim.x) * kWarps) {
    const std::uint32_t key = drop_key(d, r);
    const idx o = r * cols;
    for (idx j = lane; j < cols; j += 32) {
      const bool keep = dropout_bits(key, std::uint32_t(j)) >= d.threshold;
      dz[o + j] = keep ? da[o + j] * s * act_derivative<A>(z[o + j], a[o + j] * inv, alpha) : T(0);
    }
  }
}

}  // namespace

template <class T>
void activation_forward(Context& c, T* a, const T* z, idx rows, idx cols, Act act, T alpha) {
  if (rows <= 0 || cols <= 0) return;
  if (act == Act::Softmax) {
    softmax_kernel<T><<<row_blocks(rows), kThreads, 0, c.stream>>>(a, z, rows, cols);
  } else if (act == Act::Identity) {
    if (a != z) MLP_CUDA_CHECK(cudaMemcpyAsync(a, z, sizeof(T) * rows * cols, cudaMemcpyDeviceToDevice, c.stream));
    return;
  } else {
    with_act(act, [&](auto tag) {
      constexpr Act A = decltype(tag)::value;
      act_forward_kernel<A, T><<<blocks_for(rows * cols), kThreads, 0, c.stream>>>(a, z, rows * cols, alpha);
    });
  }
  MLP_CUDA_LAUNCHED();
}

template <class T>
void bias_activation_forward(Context& c, T* z, T* a, const T* b, idx rows, idx cols, Act act, T alpha) {
  if (rows <= 0 || cols <= 0) return;
  // Softmax needs whole rows and identity needs no second pass: for both the kernel only adds b.
  const bool elementwise = act != Act::Softmax && act != Act::Identity;
  with_act(elementwise ? act : Act::Identity, [&](auto tag) {
    constexpr Act A = decltype(tag)::value;
    bias_act_kernel<A, T><<<blocks_for(rows * cols), kThreads, 0, c.stream>>>(z, elementwise ? a : nullptr, b,
                                                                              rows, cols, alpha);
  });
  MLP_CUDA_LAUNCHED();
  if (a && !elementwise) activation_forward(c, a, z, rows, cols, act, alpha);
}

template <class T>
void activation_backward(Context& c, T* dz, const T* z, const T* a, const T* da, idx rows, idx cols, Act act,
                         T alpha) {
  if (rows <= 0 || cols <= 0) return;
  if (act == Act::Softmax) {
    softmax_backward_kernel<T><<<row_blocks(rows), kThreads, 0, c.stream>>>(dz, a, da, rows, cols);
  } else if (act == Act::Identity) {
    if (dz != da) MLP_CUDA_CHECK(cudaMemcpyAsync(dz, da, sizeof(T) * rows * cols, cudaMemcpyDeviceToDevice, c.stream));
    return;
  } else {
    with_act(act, [&](auto tag) {
      constexpr Act A = decltype(tag)::value;
      act_backward_kernel<A, T><<<blocks_for(rows * cols), kThreads, 0, c.stream>>>(dz, z, a, da, rows * cols, alpha);
    });
  }
  MLP_CUDA_LAUNCHED();
}

template <class T>
void dropout_forward(Context& c, T* a, idx rows, idx cols, const DropSpec<T>& d) {
  if (rows <= 0 || cols <= 0) return;
  dropout_forward_kernel<T><<<row_blocks(rows), kThreads, 0, c.stream>>>(a, rows, cols, d);
  MLP_CUDA_LAUNCHED();
}

template <class T>
void dropout_backward(Context& c, T* dz, const T* z, const T* a, const T* da, idx rows, idx cols, Act act, T alpha,
                      const DropSpec<T>& d) {
  if (rows <= 0 || cols <= 0) return;
  MLP_CHECK(act != Act::Softmax, "dropout cannot follow a softmax");
  with_act(act, [&](auto tag) {
    constexpr Act A = decltype(tag)::value;
    dropout_backward_kernel<A, T><<<row_blocks(rows), kThreads, 0, c.stream>>>(dz, z, a, da, rows, cols, alpha, d);
  });
  MLP_CUDA_LAUNCHED();
}

template void activation_forward<float>(Context&, float*, const float*, idx, idx, Act, float);
template void activation_forward<double>(Context&, double*, const double*, idx, idx, Act, double);
template void bias_activation_forward<float>(Context&, float*, float*, const float*, idx, idx, Act, float);
template void bias_activation_forward<double>(Context&, double*, double*, const double*, idx, idx, Act, double);
template void activation_backward<float>(Context&, float*, const float*, const float*, const float*, idx, idx, Act, float);
template void activation_backward<double>(Context&, double*, const double*, const double*, const double*, idx, idx, Act, double);
template void dropout_forward<float>(Context&, float*, idx, idx, const DropSpec<float>&);
template void dropout_forward<double>(Context&, double*, idx, idx, const DropSpec<double>&);
template void dropout_backward<float>(Context&, float*, const float*, const float*, const float*, idx, idx, Act, float,
                                      const DropSpec<float>&);
template void dropout_backward<double>(Context&, double*, const double*, const double*, const double*, idx, idx, Act,
                                       double, const DropSpec<double>&);

}  // namespace mlp::cuda
