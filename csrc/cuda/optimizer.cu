// Parameter updates over all parameters in one launch, with the clipping factor and the L2 term
// folded in (g' = gs g + l2 p on the weights) and the decoupled weight decay after, as
// csrc/cpu/optimizer.cpp:
//   sgd:       v = mu v - lr g';  d = v - decay p               (mu = 0: d = -lr g' - decay p)
//   nesterov:  v = mu v - lr g';  d = mu v - lr g' - decay p
//   adam:      m = b1 m + (1-b1) g';  v = b2 v + (1-b2) g'^2;  d = -lr_t m / (sqrt(v) + eps) - decay p
// The step d is written over g and applied by add_inplace, so that a step that would make a
// weight non-finite can be refused, as on the CPU. Also: the bias gradient (a GEMV with ones is in
// gemm.cu), the L2 penalty's sum of squares and the global norm of clipping.
#include <cmath>

#include "kernels.cuh"
#include "reduce.cuh"

namespace mlp::cuda {

namespace {

template <class T>
__device__ inline bool finite_sum(T p, T d) {
  return isfinite(p + d);
}

template <OptKind K, class T>
__global__ void delta_kernel(StepArgs<T> s) {
  if (s.skip && *s.skip) return;
  const T l2 = s.l2_dev ? T(*s.l2_dev) : s.l2;
  const T gs = s.gscale_dev ? T(*s.gscale_dev) : T(1);
  const bool scaled = s.gscale_dev != nullptr;
  double pen = 0.0;
  int bad = 0;
  for (idx i = blockIdx.x * idx(blockDim.x) + threadIdx.x; i < s.n; i += idx(gridDim.x) * blockDim.x) {
    const T p = s.p[i];
    const bool weight = i < s.n_weights;
    const T gi = scaled ? gs * s.g[i] : s.g[i];
    const T g = gi + (weight ? l2 * p : T(0));
    const T dec = weight || s.decay_bias ? s.decay : T(0);
    if (weight) pen += double(p) * double(p);
    T d;
    if constexpr (K == OptKind::Adam) {
      const T m = s.b1 * s.m[i] + s.c1 * g;
      const T v = s.b2 * s.v[i] + s.c2 * g * g;
      s.m[i] = m;
      s.v[i] = v;
      d = -s.lr * m / (sqrt(v) + s.eps);
    } else {
      if (s.mu == T(0)) {
        d = -s.lr * g;
      } else {
        const T v = s.mu * s.m[i] - s.lr * g;
        s.m[i] = v;
        d = s.nesterov ? s.mu * v - s.lr * g : v;
      }
    }
    if (dec != T(0)) d = d - dec * p;  // decoupled weight decay (AdamW)
    s.g[i] = d;
    bad |= !finite_sum(p, d);
  }
  if (s.bad && __syncthreads_or(bad) && threadIdx.x == 0) atomicExch(s.bad, 1);
  if (s.pen_partials) {
    const double total = block_sum(pen);
    if (threadIdx.x == 0) s.pen_partials[blockIdx.x] = total;
  }
}

template <class T>
__global__ void add_kernel(T* p, const T* d, idx n, const int* skip, const int* bad) {
  if ((skip && *skip) || (bad && *bad)) return;
  for (idx i = blockIdx.x * idx(blockDim.x) + threadIdx.x; i < n; i += idx(gridDim.x) * blockDim.x) p[i] += d[i];
}

template <class T>
__global__ void penalty_kernel(double* partials, T* g, const T* p, idx n, const double* l2_dev) {
  const T l2 = T(*l2_dev);
  double pen = 0.0;
  for (idx i = blockIdx.x * idx(blockDim.x) + threadIdx.x; i < n; i += idx(gridDim.x) * blockDim.x) {
    const T pi = p[i];
    pen += double(pi) * double(pi);
    if (g) g[i] += l2 * pi;
  }
  const double total = block_sum(pen);
  if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

// partials[block] = sum of g^2 over the block's elements (double, a fixed order).
template <class T>
__global__ void sq_kernel(double* partials, const T* g, idx n) {
  double acc = 0.0;
  for (idx i = blockIdx.x * idx(blockDim.x) + threadIdx.x; i < n; i += idx(gridDim.x) * blockDim.x)
    acc += double(g[i]) * double(g[i]);
  const double total = block_sum(acc);
  if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

// *scale = min(1, clipnorm / (sqrt(sum partials) + 1e-6)), summed by one block.
__global__ void clip_kernel(double* scale, const double* partials, int n, double clipnorm) {
  double v = 0.0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) v += partials[i];
  v = block_sum(v);
  if (threadIdx.x == 0) {
    const double s = clipnorm / (sqrt(v) + 1e-6);
    *scale = s < 1.0 ? s : 1.0;
  }
}

}  // namespace

template <class T>
unsigned step_blocks(idx n) {
  return blocks_for(n);
}

template <class T>
void optimizer_delta(Context& c, const StepArgs<T>& s) {
  if (s.n <= 0) return;
  if (s.kind == OptKind::Adam)
    delta_kernel<OptKind::Adam, T><<<step_blocks<T>(s.n), kThreads, 0, c.stream>>>(s);
  else
    delta_kernel<OptKind::Sgd, T><<<step_blocks<T>(s.n), kThreads, 0, c.stream>>>(s);
  MLP_CUDA_LAUNCHED();
}

template <class T>
void add_inplace(Context& c, T* p, const T* d, idx n, const int* skip, const int* bad) {
  if (n <= 0) return;
  add_kernel<T><<<blocks_for(n), kThreads, 0, c.stream>>>(p, d, n, skip, bad);
  MLP_CUDA_LAUNCHED();
}

template <class T>
void weight_penalty(Context& c, double* partials, T* g, const T* p, idx n_weights, const double* l2_dev) {
  penalty_kernel<T><<<step_blocks<T>(n_weights), kThreads, 0, c.stream>>>(partials, g, p, n_weights, l2_dev);
  MLP_CUDA_LAUNCHED();
}

template <class T>
void clip_scale(Context& c, double* scale, double* partials, const T* g, idx n, double clipnorm) {
  const unsigned nb = blocks_for(n);
  sq_kernel<T><<<nb, kThreads, 0, c.stream>>>(partials, g, n);
  MLP_CUDA_LAUNCHED();
  clip_kernel<<<1, kThreads, 0, c.stream>>>(scale, partials, int(nb), clipnorm);
  MLP_CUDA_LAUNCHED();
}

template unsigned step_blocks<float>(idx);
template unsigned step_blocks<double>(idx);
template void optimizer_delta<float>(Context&, const StepArgs<float>&);
template void optimizer_delta<double>(Context&, const StepArgs<double>&);
template void add_inplace<float>(Context&, float*, const float*, idx, const int*, const int*);
template void add_inplace<double>(Context&, double*, const double*, idx, const int*, const int*);
template void weight_penalty<float>(Context&, double*, float*, const float*, idx, const double*);
template void weight_penalty<double>(Context&, double*, double*, const double*, idx, const double*);
template void clip_scale<float>(Context&, double*, double*, const float*, idx, double);
template void clip_scale<double>(Context&, double*, double*, const double*, idx, double);

}  // namespace mlp::cuda
