// CUDA plumbing shared by the kernels: error checks that throw, device buffers, the per-network
// context (stream, cuBLAS handles, workspace), launch sizes and the counters that tests read
// (stats()). Included by .cu files only.
#pragma once
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <atomic>
#include <cstddef>
#include <map>
#include <new>
#include <string>
#include <tuple>
#include <utility>

#include "../common.hpp"

namespace mlp::cuda {

// Throws std::runtime_error("mlp cuda: <call> failed: <reason> (<file>:<line>)").
[[noreturn]] void fail(const char* call, const char* reason, const char* file, int line);
// As fail, for a CUDA runtime error: out of memory becomes OutOfMemory (Python's MemoryError), and
// a kernel fault (illegal address, launch failure, ...) says how to find the launch that faulted.
[[noreturn]] void fail_cuda(cudaError_t e, const char* call, const char* file, int line);
// As fail, for a cuBLAS status: CUBLAS_STATUS_ALLOC_FAILED becomes OutOfMemory.
[[noreturn]] void fail_cublas(cublasStatus_t s, const char* call, const char* file, int line);

#define MLP_CUDA_CHECK(call)                                                            \
  do {                                                                                  \
    const cudaError_t mlp_e_ = (call);                                                  \
    if (mlp_e_ != cudaSuccess) ::mlp::cuda::fail_cuda(mlp_e_, #call, __FILE__, __LINE__); \
  } while (0)
#define MLP_CUBLAS_CHECK(call)                                                          \
  do {                                                                                  \
    const cublasStatus_t mlp_s_ = (call);                                               \
    if (mlp_s_ != CUBLAS_STATUS_SUCCESS) ::mlp::cuda::fail_cublas(mlp_s_, #call, __FILE__, __LINE__); \
  } while (0)

// After every kernel launch and cuBLAS call: counts it (stats().launches), throws for a bad
// launch configuration, and in the debug mode (MLP_CUDA_SYNC=1, or set_sync_launches(true))
// synchronizes the device and throws for a fault of this very launch, named by its call site.
void after_launch(const char* what, const char* file, int line);
#define MLP_CUDA_LAUNCHED() ::mlp::cuda::after_launch("kernel launch", __FILE__, __LINE__)
#define MLP_CUDA_AFTER(what) ::mlp::cuda::after_launch(what, __FILE__, __LINE__)

// Out of device (or page-locked host) memory: a std::bad_alloc, so that Python sees MemoryError,
// whose message names the bytes asked for, the device and what was free.
class OutOfMemory : public std::bad_alloc {
 public:
  explicit OutOfMemory(std::string msg) : msg_(std::move(msg)) {}
  const char* what() const noexcept override { return msg_.c_str(); }

 private:
  std::string msg_;
};

// cudaMalloc / cudaFree through one place: OutOfMemory on failure, the bytes held counted for
// the test limit of set_alloc_limit. `what` names the buffer in the error message.
void* device_alloc(std::size_t bytes, const char* what);
void device_free(void* p, std::size_t bytes) noexcept;
// Page-locked host memory (cudaHostAlloc; mapped: the device can read and write it).
void* host_alloc(std::size_t bytes, const char* what);

// The process-wide counters behind api.hpp's stats() (atomics: any thread, any network).
struct Counters {
  std::atomic<long long> lt_plans{0}, lt_plan_failures{0}, epilogue_runs{0}, epilogue_fallbacks{0},
      bgrad_runs{0}, bgrad_fallbacks{0}, launches{0}, resident_hits{0}, uploads{0}, chunked_batches{0},
      early_stops{0};
};
Counters& counters();
// Remembers why a cuBLASLt plan could not be made (stats().last_fallback).
void note_fallback(const std::string& why);
bool sync_launches();

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

// The never-throwing kind, for destructors: enter() makes `ordinal` current (errors ignored) until
// this object is destroyed, which restores the previous device. Declared as an object's first
// member, it stays in force while every later member is destroyed.
class DeviceScope {
 public:
  DeviceScope() = default;
  ~DeviceScope();
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;
  void enter(int ordinal) noexcept;

 private:
  int prev_ = -1;
  bool switched_ = false;
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
  void resize(std::size_t n, const char* what = "a device buffer") {
    if (n == n_) return;
    release();
    if (n) p_ = static_cast<T*>(device_alloc(n * sizeof(T), what));
    n_ = n;
  }
  // Grows (never shrinks) to at least n elements.
  void reserve(std::size_t n, const char* what = "a device buffer") {
    if (n > n_) resize(n, what);
  }
  void release() {
    if (p_) device_free(p_, n_ * sizeof(T));
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

// Page-locked host memory (fast, asynchronous copies), mapped into the device's address space.
template <class T>
class HostBuffer {
 public:
  HostBuffer() = default;
  ~HostBuffer() { release(); }
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;
  void reserve(std::size_t n, const char* what = "page-locked host memory") {
    if (n <= n_) return;
    release();
    p_ = static_cast<T*>(host_alloc(n * sizeof(T), what));
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
// when cuBLASLt offers no algorithm for it or a call failed (then the plain GEMM and a kernel do
// the epilogue; why says which call answered what, and the fallback is counted).
struct LtPlan {
  bool ok = false;
  std::string why;
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
};
// (dtype bytes, tf32, trans_a, trans_b, m, n, k, lda, ldb, ldc, epilogue, alignment bits);
// epilogue: 0 bias, 1 bias+ReLU, 2 bias gradient of the weight-gradient GEMM.
using LtKey = std::tuple<int, bool, bool, bool, idx, idx, idx, idx, idx, idx, int, int>;

// Everything one network's kernels run on: its device, stream, cuBLAS/cuBLASLt handles, the
// cuBLASLt workspace and plans, and a vector of ones (the bias gradient's GEMV, when the
// epilogue cannot do it). Not thread-safe: its users serialize their calls (a network's mutex,
// the ops' lock).
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

 private:
  void destroy() noexcept;
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
