// Warp and block reductions in a fixed order: the same inputs give the same bits on every run.
#pragma once
#include "common.cuh"

namespace mlp::cuda {

template <class T>
__device__ inline T warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
template <class T>
__device__ inline T warp_max(T v) {
  for (int o = 16; o > 0; o >>= 1) {
    const T u = __shfl_xor_sync(0xffffffffu, v, o);
    v = u > v ? u : v;
  }
  return v;
}

// Sum of v over the block (blockDim.x == kThreads); the result is valid in thread 0.
template <class T>
__device__ inline T block_sum(T v) {
  __shared__ T warp_part[kWarps];
  v = warp_sum(v);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) warp_part[warp] = v;
  __syncthreads();
  T total = T(0);
  if (threadIdx.x == 0)
    for (int w = 0; w < kWarps; ++w) total += warp_part[w];
  __syncthreads();  // warp_part may be reused by a later call
  return total;
}

}  // namespace mlp::cuda
