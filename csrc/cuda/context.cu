// The CUDA runtime around the kernels: device count, status and names, errors turned into
// exceptions (out of memory into OutOfMemory), device allocations, the per-network Context
// (stream, cuBLAS/cuBLASLt handles, workspace), the global switches and the counters.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>

#include "api.hpp"
#include "common.cuh"

namespace mlp::cuda {

namespace {
bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v && *v && std::strcmp(v, "0") != 0;
}

std::atomic<bool> g_tf32{false};
std::atomic<bool> g_lt{true};
std::atomic<bool> g_sync{env_flag("MLP_CUDA_SYNC")};
std::atomic<std::size_t> g_alloc_limit{0};
std::atomic<std::size_t> g_allocated{0};
constexpr std::size_t kWorkspaceBytes = std::size_t(32) << 20;  // cuBLASLt's advice for Hopper

Counters g_counters;
std::mutex g_why_mu;
std::string g_last_fallback;

void destroy_plans(std::map<LtKey, LtPlan>& plans) {
  for (auto& kv : plans) {
    LtPlan& p = kv.second;
    if (p.a) cublasLtMatrixLayoutDestroy(p.a);
    if (p.b) cublasLtMatrixLayoutDestroy(p.b);
    if (p.c) cublasLtMatrixLayoutDestroy(p.c);
    if (p.desc) cublasLtMatmulDescDestroy(p.desc);
  }
  plans.clear();
}

std::string gib(std::size_t bytes) {
  char b[64];
  std::snprintf(b, sizeof b, "%.3g GiB", double(bytes) / double(std::size_t(1) << 30));
  return b;
}

// "on cuda:N (F GiB of T GiB free)", or what can be said without asking a broken device.
std::string where_memory() {
  int dev = -1;
  if (cudaGetDevice(&dev) != cudaSuccess) {
    cudaGetLastError();
    return "";
  }
  std::size_t free_b = 0, total_b = 0;
  std::string s = " on cuda:" + std::to_string(dev);
  if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess)
    s += " (" + gib(free_b) + " of " + gib(total_b) + " free)";
  else
    cudaGetLastError();
  return s;
}

[[noreturn]] void out_of_memory(std::size_t bytes, const char* what, const std::string& note) {
  throw OutOfMemory("mlp cuda: out of memory: asked for " + gib(bytes) + " (" + std::to_string(bytes) +
                    " bytes) for " + what + where_memory() + ", while mlp holds " + gib(g_allocated.load()) + note);
}

bool is_fault(cudaError_t e) {
  switch (e) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorMisalignedAddress:
    case cudaErrorIllegalInstruction:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorHardwareStackError:
    case cudaErrorAssert:
    case cudaErrorLaunchTimeout:
      return true;
    default:
      return false;
  }
}
}  // namespace

bool built() { return true; }
void set_tf32(bool on) { g_tf32 = on; }
bool tf32() { return g_tf32; }
void set_lt_epilogues(bool on) { g_lt = on; }
bool lt_epilogues() { return g_lt; }
void set_sync_launches(bool on) { g_sync = on; }
bool sync_launches() { return g_sync; }
void set_alloc_limit(std::size_t bytes) { g_alloc_limit = bytes; }

Counters& counters() { return g_counters; }

void note_fallback(const std::string& why) {
  std::lock_guard<std::mutex> lock(g_why_mu);
  g_last_fallback = why;
}

Stats stats() {
  Stats s;
  const Counters& c = g_counters;
  s.lt_plans = c.lt_plans;
  s.lt_plan_failures = c.lt_plan_failures;
  s.epilogue_runs = c.epilogue_runs;
  s.epilogue_fallbacks = c.epilogue_fallbacks;
  s.bgrad_runs = c.bgrad_runs;
  s.bgrad_fallbacks = c.bgrad_fallbacks;
  s.launches = c.launches;
  s.resident_hits = c.resident_hits;
  s.uploads = c.uploads;
  s.chunked_batches = c.chunked_batches;
  s.early_stops = c.early_stops;
  s.device_bytes = static_cast<long long>(g_allocated.load());
  std::lock_guard<std::mutex> lock(g_why_mu);
  s.last_fallback = g_last_fallback;
  return s;
}

void reset_stats() {
  Counters& c = g_counters;
  for (auto* v : {&c.lt_plans, &c.lt_plan_failures, &c.epilogue_runs, &c.epilogue_fallbacks, &c.bgrad_runs,
                  &c.bgrad_fallbacks, &c.launches, &c.resident_hits, &c.uploads, &c.chunked_batches, &c.early_stops})
    v->store(0);
  std::lock_guard<std::mutex> lock(g_why_mu);
  g_last_fallback.clear();
}

void fail(const char* call, const char* reason, const char* file, int line) {
  throw std::runtime_error(std::string("mlp cuda: ") + call + " failed: " + reason + " (" + file + ":" +
                           std::to_string(line) + ")");
}

void fail_cuda(cudaError_t e, const char* call, const char* file, int line) {
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // not sticky: clear it, the device stays usable
    throw OutOfMemory(std::string("mlp cuda: out of memory in ") + call + where_memory() + " (" + file + ":" +
                      std::to_string(line) + ")");
  }
  std::string reason = std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
  if (is_fault(e))
    reason += g_sync ? " (MLP_CUDA_SYNC=1: the fault is this call's)"
                     : " (a kernel fault is reported by the next call that synchronizes, not by the launch that "
                       "made it: rerun with MLP_CUDA_SYNC=1 to name that launch; the CUDA context is now unusable)";
  fail(call, reason.c_str(), file, line);
}

void fail_cublas(cublasStatus_t s, const char* call, const char* file, int line) {
  if (s == CUBLAS_STATUS_ALLOC_FAILED)
    throw OutOfMemory(std::string("mlp cuda: out of memory in ") + call + " (CUBLAS_STATUS_ALLOC_FAILED)" +
                      where_memory() + " (" + file + ":" + std::to_string(line) + ")");
  fail(call, cublasGetStatusString(s), file, line);
}

void after_launch(const char* what, const char* file, int line) {
  g_counters.launches.fetch_add(1, std::memory_order_relaxed);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) fail_cuda(e, what, file, line);
  if (g_sync) {
    e = cudaDeviceSynchronize();
    if (e != cudaSuccess) fail_cuda(e, what, file, line);
  }
}

void* device_alloc(std::size_t bytes, const char* what) {
  const std::size_t limit = g_alloc_limit.load();
  if (limit && g_allocated.load() + bytes > limit)
    out_of_memory(bytes, what, " (the test limit of cuda_set_alloc_limit: " + gib(limit) + ")");
  void* p = nullptr;
  const cudaError_t e = cudaMalloc(&p, bytes);
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    out_of_memory(bytes, what, "");
  }
  if (e != cudaSuccess) fail_cuda(e, "cudaMalloc", __FILE__, __LINE__);
  g_allocated += bytes;
  return p;
}

void device_free(void* p, std::size_t bytes) noexcept {
  if (!p) return;
  cudaFree(p);
  g_allocated -= bytes;
}

void* host_alloc(std::size_t bytes, const char* what) {
  void* p = nullptr;
  const cudaError_t e = cudaHostAlloc(&p, bytes, cudaHostAllocMapped);
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    throw OutOfMemory("mlp cuda: out of page-locked host memory: asked for " + gib(bytes) + " (" +
                      std::to_string(bytes) + " bytes) for " + what);
  }
  if (e != cudaSuccess) fail_cuda(e, "cudaHostAlloc", __FILE__, __LINE__);
  return p;
}

int device_count() {
  int n = 0;
  // Without a driver or a device this returns an error (no exception, no crash): that is 0.
  // device_status() keeps the error.
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear it, so that it is not reported by a later call
    return 0;
  }
  return n;
}

DeviceStatus device_status() {
  DeviceStatus s;
  s.built = true;
  if (cudaRuntimeGetVersion(&s.runtime_version) != cudaSuccess) s.runtime_version = 0;
  if (cudaDriverGetVersion(&s.driver_version) != cudaSuccess) s.driver_version = 0;
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    s.count = 0;
    s.error = int(e);
    s.error_name = cudaGetErrorName(e);
    s.error_string = cudaGetErrorString(e);
  } else {
    s.count = n;
  }
  return s;
}

std::string device_name(int ordinal) {
  if (ordinal < 0 || ordinal >= device_count())
    throw std::invalid_argument("mlp cuda: no CUDA device " + std::to_string(ordinal));
  cudaDeviceProp p{};
  MLP_CUDA_CHECK(cudaGetDeviceProperties(&p, ordinal));
  return std::string(p.name) + " (sm_" + std::to_string(p.major) + std::to_string(p.minor) + ", " +
         std::to_string(p.multiProcessorCount) + " SMs)";
}

std::pair<std::size_t, std::size_t> mem_info(int ordinal) {
  if (ordinal < 0 || ordinal >= device_count())
    throw std::invalid_argument("mlp cuda: no CUDA device " + std::to_string(ordinal));
  DeviceGuard g(ordinal);
  std::size_t free_b = 0, total_b = 0;
  MLP_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  return {free_b, total_b};
}

int current_device() {
  int d = -1;
  MLP_CUDA_CHECK(cudaGetDevice(&d));
  return d;
}

DeviceGuard::DeviceGuard(int ordinal) {
  MLP_CUDA_CHECK(cudaGetDevice(&prev_));
  if (prev_ != ordinal) MLP_CUDA_CHECK(cudaSetDevice(ordinal));
}
DeviceGuard::~DeviceGuard() {
  int cur = -1;
  if (cudaGetDevice(&cur) == cudaSuccess && cur != prev_ && prev_ >= 0) cudaSetDevice(prev_);
}

void DeviceScope::enter(int ordinal) noexcept {
  int cur = -1;
  if (cudaGetDevice(&cur) != cudaSuccess) {
    cudaGetLastError();
    return;
  }
  if (!switched_) prev_ = cur;
  if (cur != ordinal) {
    if (cudaSetDevice(ordinal) == cudaSuccess) switched_ = true;
    else cudaGetLastError();
  }
}
DeviceScope::~DeviceScope() {
  if (switched_ && prev_ >= 0) cudaSetDevice(prev_);
  cudaGetLastError();
}

Context::Context(int ordinal) : device(ordinal) {
  const DeviceStatus st = device_status();
  if (ordinal < 0 || ordinal >= st.count)
    throw std::invalid_argument("mlp cuda: no CUDA device " + std::to_string(ordinal) + " (" +
                                std::to_string(st.count) + " visible" +
                                (st.error ? "; the CUDA runtime answered " + st.error_name + ": " + st.error_string : "") +
                                ")");
  DeviceGuard g(device);
  try {
    MLP_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    MLP_CUBLAS_CHECK(cublasCreate(&blas));
    MLP_CUBLAS_CHECK(cublasSetStream(blas, stream));
    MLP_CUBLAS_CHECK(cublasLtCreate(&lt));
    workspace.resize(kWorkspaceBytes, "the cuBLAS workspace");
    // cuBLAS may use the same workspace as cuBLASLt: the calls are ordered on one stream.
    MLP_CUBLAS_CHECK(cublasSetWorkspace(blas, workspace.data(), workspace.size()));
  } catch (...) {
    destroy();  // a constructor that throws runs no destructor
    throw;
  }
}

Context::~Context() {
  // Never throws: this may run at interpreter exit, while the CUDA runtime is being unloaded.
  int prev = -1;
  const bool switched = cudaGetDevice(&prev) == cudaSuccess && prev != device && cudaSetDevice(device) == cudaSuccess;
  destroy();
  if (switched) cudaSetDevice(prev);
  cudaGetLastError();
}

void Context::destroy() noexcept {
  if (stream) cudaStreamSynchronize(stream);
  destroy_plans(plans);
  workspace.release();
  ones_f.release();
  ones_d.release();
  if (lt) cublasLtDestroy(lt);
  if (blas) cublasDestroy(blas);
  if (stream) cudaStreamDestroy(stream);
  lt = nullptr;
  blas = nullptr;
  stream = nullptr;
  cudaGetLastError();
}

void Context::sync() { MLP_CUDA_CHECK(cudaStreamSynchronize(stream)); }

void Context::clear_plans() {
  sync();
  destroy_plans(plans);
}

template <class T>
__global__ void fill_kernel(T* p, idx n, T v) {
  for (idx i = blockIdx.x * idx(blockDim.x) + threadIdx.x; i < n; i += idx(gridDim.x) * blockDim.x) p[i] = v;
}

template <class T>
static const T* ones_of(Context& c, Buffer<T>& buf, idx n) {
  if (idx(buf.size()) < n) {
    const idx sz = n < 4096 ? 4096 : n;
    buf.resize(std::size_t(sz), "a vector of ones");
    fill_kernel<T><<<blocks_for(sz), kThreads, 0, c.stream>>>(buf.data(), sz, T(1));
    MLP_CUDA_LAUNCHED();
  }
  return buf.data();
}

template <>
const float* Context::ones<float>(idx n) { return ones_of(*this, ones_f, n); }
template <>
const double* Context::ones<double>(idx n) { return ones_of(*this, ones_d, n); }

}  // namespace mlp::cuda
