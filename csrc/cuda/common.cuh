// CUDA plumbing shared by the kernels: error checks that throw, device buffers, the per-network
// context (stream, cuBLAS handles, workspace) and launch sizes. Included by .cu files only.
#pragma once
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <map>
#include <string>
#include <tuple>
#include <utility>

#include "../common.hpp"

namespace mlp::cuda {

// Throws std::runtime_error("mlp cuda: <call> failed: <reason> (<file>:<line>)").
[[noreturn]] void fail(const char* call, const char* reason, const char* file, int line);

#define MLP_CUDA_CHECK(call)                                                            \
  do {                                                                                  \
    const cudaError_t mlp_e_ = (call);                                                  \
    if (mlp_e_ != cudaSuccess) ::mlp::cuda::fail(#call, cudaGetErrorString(mlp_e_), __FILE__, __LINE__); \
  } while (0)
#define MLP_CUBLAS_CHECK(call)                                                          \
  do {                                                                                  \
    const cublasStatus_t mlp_s_ = (call);                                               \
    if (mlp_s_ != CUBLAS_STATUS_SUCCESS)                                                \
      ::mlp::cuda::fail(#call, cublasGetStatusString(mlp_s_), __FILE__, __LINE__);      \
  } while (0)
// After a kernel launch: a bad configuration surfaces here, not at the next unrelated call.
#define MLP_CUDA_LAUNCHED() MLP_CUDA_CHECK(cudaGetLastError())

// Makes `ordinal` the current device for the scope (the runtime keeps one per host thread).
class DeviceGuard {
 public:
  explicit DeviceGuard(int ordinal);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int prev_ = -1;
};

// Device memory of n elements of T; resize() discards the contents.
template <class T>
class Buffer {
 public:
  Buffer() = default;
  ~Buffer() { release(); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr; o.n_ = 0; }
  Buffer& operator=(Buffer&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
    return *this;
  }
  void resize(std::size_t n) {
    if (n == n_) return;
    release();
    if (n) MLP_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&p_), n * sizeof(T)));
    n_ = n;
  }
  // Grows (never shrinks) to at least n elements.
  void reserve(std::size_t n) {
    if (n > n_) resize(n);
  }
  void release() {
    if (p_) cudaFree(p_);
    p_ = nullptr;
    n_ = 0;
  }
  void zero(cudaStream_t s) {
    if (n_) MLP_CUDA_CHECK(cudaMemsetAsync(p_, 0, n_ * sizeof(T), s));
  }
  T* data() const { return p_; }
  std::size_t size() const { return n_; }

 private:
  T* p_ = nullptr;
  std::size_t n_ = 0;
};

// Page-locked host memory (fast, asynchronous copies).
template <class T>
class HostBuffer {
 public:
  HostBuffer() = default;
  ~HostBuffer() { release(); }
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;
  void reserve(std::size_t n) {
    if (n <= n_) return;
    release();
    MLP_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&p_), n * sizeof(T)));
    n_ = n;
  }
  void release() {
    if (p_) cudaFreeHost(p_);
    p_ = nullptr;
    n_ = 0;
  }
  T* data() const { return p_; }
  std::size_t size() const { return n_; }
  void swap(HostBuffer& o) {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
  }

 private:
  T* p_ = nullptr;
  std::size_t n_ = 0;
};

// A planned cuBLASLt matmul (descriptors and the chosen algorithm) for one shape, or ok = false
// when cuBLASLt offers no algorithm for it (then the plain GEMM and a kernel do the epilogue).
struct LtPlan {
  bool ok = false;
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
};
// (dtype bytes, tf32, trans_a, trans_b, m, n, k, lda, ldb, ldc, epilogue, alignment bits)
using LtKey = std::tuple<int, bool, bool, bool, idx, idx, idx, idx, idx, idx, int, int>;

// Everything one network's kernels run on: its device, stream, cuBLAS/cuBLASLt handles, the
// cuBLASLt workspace and plans, and a vector of ones (the bias gradient is a GEMV with it).
struct Context {
  explicit Context(int ordinal);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  int device = 0;
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  cublasLtHandle_t lt = nullptr;
  Buffer<unsigned char> workspace;
  std::map<LtKey, LtPlan> plans;
  Buffer<float> ones_f;
  Buffer<double> ones_d;

  // A device vector of at least n ones of type T.
  template <class T>
  const T* ones(idx n);
  void sync();
  // Destroys every cuBLASLt plan (after the stream's work that uses them).
  void clear_plans();
};

// Plans a Context keeps before it starts afresh.
constexpr std::size_t kMaxPlans = 256;

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
// Grid-stride kernels never use more blocks than this, so per-block partial sums fit a fixed
// buffer and their number depends only on the size of the problem (deterministic reductions).
constexpr int kMaxBlocks = 1024;

inline unsigned blocks_for(idx n, int per_block = kThreads) {
  idx b = (n + per_block - 1) / per_block;
  if (b < 1) b = 1;
  return unsigned(b < kMaxBlocks ? b : kMaxBlocks);
}

}  // namespace mlp::cuda
