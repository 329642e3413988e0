// Batch gather: out[i, :] = x[rows[i], :], one warp per row, so that a shuffled batch is one
// contiguous matrix for the layer-0 GEMMs (the CPU packs it inside its GEMM instead).
#include "kernels.cuh"

namespace mlp::cuda {

namespace {
template <class T>
__global__ void gather_kernel(T* out, const T* x, const idx* rows, idx count, idx cols) {
  const int lane = threadIdx.x & 31;
  for (idx r = blockIdx.x * idx(kWarps) + (threadIdx.x >> 5); r < count; r += idx(gridDim.x) * kWarps) {
    const T* src = x + rows[r] * cols;
    T* dst = out + r * cols;
    for (idx j = lane; j < cols; j += 32) dst[j] = src[j];
  }
}
}  // namespace

template <class T>
void gather_rows(Context& c, T* out, const T* x, const idx* rows, idx count, idx cols) {
  if (count <= 0 || cols <= 0) return;
  gather_kernel<T><<<blocks_for(count, kWarps), kThreads, 0, c.stream>>>(out, x, rows, count, cols);
  MLP_CUDA_LAUNCHED();
}

template void gather_rows<float>(Context&, float*, const float*, const idx*, idx, idx);
template void gather_rows<double>(Context&, double*, const double*, const idx*, idx, idx);

}  // namespace mlp::cuda
