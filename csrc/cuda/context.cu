// The CUDA runtime around the kernels: device count and names, errors turned into exceptions,
// the per-network Context (stream, cuBLAS/cuBLASLt handles, workspace) and the global switches.
#include <atomic>
#include <stdexcept>
#include <string>

#include "api.hpp"
#include "common.cuh"

namespace mlp::cuda {

namespace {
std::atomic<bool> g_tf32{false};
std::atomic<bool> g_lt{true};
constexpr std::size_t kWorkspaceBytes = std::size_t(32) << 20;  // cuBLASLt's advice for Hopper

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
}  // namespace

bool built() { return true; }
void set_tf32(bool on) { g_tf32 = on; }
bool tf32() { return g_tf32; }
void set_lt_epilogues(bool on) { g_lt = on; }
bool lt_epilogues() { return g_lt; }

void fail(const char* call, const char* reason, const char* file, int line) {
  throw std::runtime_error(std::string("mlp cuda: ") + call + " failed: " + reason + " (" + file + ":" +
                           std::to_string(line) + ")");
}

int device_count() {
  int n = 0;
  // Without a driver or a device this returns an error (no exception, no crash): that is 0.
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear it, so that it is not reported by a later call
    return 0;
  }
  return n;
}

std::string device_name(int ordinal) {
  if (ordinal < 0 || ordinal >= device_count())
    throw std::invalid_argument("mlp cuda: no CUDA device " + std::to_string(ordinal));
  cudaDeviceProp p{};
  MLP_CUDA_CHECK(cudaGetDeviceProperties(&p, ordinal));
  return std::string(p.name) + " (sm_" + std::to_string(p.major) + std::to_string(p.minor) + ", " +
         std::to_string(p.multiProcessorCount) + " SMs)";
}

DeviceGuard::DeviceGuard(int ordinal) {
  MLP_CUDA_CHECK(cudaGetDevice(&prev_));
  if (prev_ != ordinal) MLP_CUDA_CHECK(cudaSetDevice(ordinal));
}
DeviceGuard::~DeviceGuard() {
  int cur = -1;
  if (cudaGetDevice(&cur) == cudaSuccess && cur != prev_ && prev_ >= 0) cudaSetDevice(prev_);
}

Context::Context(int ordinal) : device(ordinal) {
  if (ordinal < 0 || ordinal >= device_count())
    throw std::invalid_argument("mlp cuda: no CUDA device " + std::to_string(ordinal) + " (" +
                                std::to_string(device_count()) + " visible)");
  DeviceGuard g(device);
  MLP_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  MLP_CUBLAS_CHECK(cublasCreate(&blas));
  MLP_CUBLAS_CHECK(cublasSetStream(blas, stream));
  MLP_CUBLAS_CHECK(cublasLtCreate(&lt));
  workspace.resize(kWorkspaceBytes);
  // cuBLAS may use the same workspace as cuBLASLt: the calls are ordered on one stream.
  MLP_CUBLAS_CHECK(cublasSetWorkspace(blas, workspace.data(), workspace.size()));
}

Context::~Context() {
  // Never throws: this may run at interpreter exit, while the CUDA runtime is being unloaded.
  int prev = -1;
  const bool switched = cudaGetDevice(&prev) == cudaSuccess && prev != device && cudaSetDevice(device) == cudaSuccess;
  if (stream) cudaStreamSynchronize(stream);
  destroy_plans(plans);
  workspace.release();
  ones_f.release();
  ones_d.release();
  if (lt) cublasLtDestroy(lt);
  if (blas) cublasDestroy(blas);
  if (stream) cudaStreamDestroy(stream);
  if (switched) cudaSetDevice(prev);
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
    buf.resize(std::size_t(sz));
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
