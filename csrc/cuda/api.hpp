// The CUDA backend as the rest of the core sees it: plain C++, no CUDA header, so that the
// bindings compile with the host compiler alone. A CPU-only build links csrc/cuda/stub.cpp
// instead of the .cu files: there device_count() is 0 and everything else throws.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "../network.hpp"

namespace mlp::cuda {

// Whether this build has the CUDA kernels.
bool built();
// Visible devices; 0 without a driver, without a device, or on any error. Never throws.
int device_count();
// What the CUDA runtime answered when asked for the devices, the error kept (never throws):
// count as device_count(); error 0 (cudaSuccess) or the cudaError_t of cudaGetDeviceCount,
// with its name ("cudaErrorInsufficientDriver") and text; the driver's CUDA version
// (cudaDriverGetVersion: 0 when no driver is installed) and the runtime's this build links,
// both as 1000 * major + 10 * minor. A CPU-only build: built false, everything else 0 / empty.
struct DeviceStatus {
  bool built = false;
  int count = 0;
  int error = 0;
  std::string error_name, error_string;
  int driver_version = 0, runtime_version = 0;
};
DeviceStatus device_status();
// The cudaError_t values that the Python side tells apart (mlp/_device.py).
constexpr int kErrorNoDevice = 100;            // cudaErrorNoDevice
constexpr int kErrorInsufficientDriver = 35;   // cudaErrorInsufficientDriver
// "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs)"; throws for a bad ordinal.
std::string device_name(int ordinal);
// (free, total) bytes of device `ordinal` (cudaMemGetInfo); throws for a bad ordinal.
std::pair<std::size_t, std::size_t> mem_info(int ordinal);
// The calling thread's current device (cudaGetDevice); throws without a device.
int current_device();
// TF32 tensor-core GEMMs for float32 (off by default: results then match the CPU to float32
// precision). Read when each GEMM is planned, so it applies to later calls of every network.
void set_tf32(bool on);
bool tf32();
// cuBLASLt's fused epilogues (on by default): bias and bias+ReLU in the dense forward, the bias
// gradient in the weight-gradient GEMM of the backward. Off forces the plain GEMM followed by
// the fused bias+activation kernel, and the bias gradient as a GEMV, so that tests can check
// both paths.
void set_lt_epilogues(bool on);
bool lt_epilogues();
// The debug mode: synchronize and check after every kernel launch and cuBLAS call, so that a
// kernel fault is reported by the call that made it. On when the environment has MLP_CUDA_SYNC=1
// at load time.
void set_sync_launches(bool on);
bool sync_launches();
// For tests: device allocations that would bring what mlp holds above `bytes` fail as if the
// device were out of memory (0: no limit).
void set_alloc_limit(std::size_t bytes);
// Counters since the last reset_stats(), over every network and thread of the process.
//   lt_plans: cuBLASLt plans made (one per shape, dtype, epilogue and alignment);
//   lt_plan_failures: of those, the ones cuBLASLt refused (no algorithm, or a call failed);
//   epilogue_runs / epilogue_fallbacks: dense forwards that ran their bias (+ReLU) in the
//     cuBLASLt epilogue / that wanted it and ran GEMM + kernel instead (plan refused);
//   bgrad_runs / bgrad_fallbacks: likewise for the bias gradient fused into the dW GEMM;
//   launches: kernel launches and cuBLAS calls enqueued;
//   resident_hits: uploads of weights or optimizer state skipped because the device copy was
//     current; uploads: those that were made;
//   chunked_batches: training batches split into chunks (gradient accumulation);
//   early_stops: epochs whose host loop stopped queueing batches after a divergence;
//   device_bytes: device memory mlp holds now (not a counter: never reset);
//   last_fallback: why the latest refused plan was refused ("" when none was).
struct Stats {
  long long lt_plans = 0, lt_plan_failures = 0, epilogue_runs = 0, epilogue_fallbacks = 0, bgrad_runs = 0,
            bgrad_fallbacks = 0, launches = 0, resident_hits = 0, uploads = 0, chunked_batches = 0,
            early_stops = 0, device_bytes = 0;
  std::string last_fallback;
};
Stats stats();
void reset_stats();

// The device side of one mlp::Network<T>. The host network stays the owner of the weights, the
// optimizer state, the step counter and the shuffling generator: each call writes them back, so
// a network trained here predicts, saves and pickles like any other, and moving it back to the
// CPU loses nothing. The device keeps its copy of the weights and of the optimizer state between
// calls, together with a host snapshot of what it holds: a call uploads an array again only when
// the host array no longer equals its snapshot (Python assigned weights, set_optimizer_state, a
// CPU fit in between), so the host stays the owner without any notice from Python.
// Training data stays on the device between calls that pass the same data key (see
// train_epoch); release_data() frees it.
// Calls on one object are serialized (a mutex), as Python threads may share a network. A call
// that throws has synchronized the stream first, and leaves the object usable (out of memory
// included): the device copies it may have changed are marked stale.
template <class T>
class DeviceNetwork {
 public:
  DeviceNetwork(Network<T>& host, int ordinal);
  ~DeviceNetwork();
  DeviceNetwork(const DeviceNetwork&) = delete;
  DeviceNetwork& operator=(const DeviceNetwork&) = delete;

  int ordinal() const;

  // As Network<T>::train_epoch, with the same training features (dropout, schedules, label
  // smoothing, weight decay, clipping, embeddings). x: (n, n_inputs)  y: (n, out)  sw: (n) or
  // null, host memory. A batch larger than the device scratch holds is run in chunks whose
  // gradients accumulate (one step per batch, as the CPU). After a divergence the host stops
  // queueing the epoch's batches within a few batches of the GPU reaching it.
  // data_key identifies the data: when it equals the last call's key (and n and the pointers
  // match), the copy already on the device is used; 0 means "upload every time".
  EpochResult train_epoch(const T* x, const T* y, const T* sw, idx n, idx batch_size, bool shuffle,
                          double lr, const std::function<bool()>& interrupted, std::uintptr_t data_key);
  // out: (n, out) output activations.
  void predict(T* out, const T* x, idx n);
  // As Network<T>::loss_and_grad (training: with the dropout masks of the next step); the data is
  // cached under data_key as for train_epoch.
  double loss_and_grad(const T* x, const T* y, const T* sw, idx n, T* grad, std::uintptr_t data_key,
                       bool training = false);
  // Frees the training data kept on the device.
  void release_data();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

extern template class DeviceNetwork<float>;
extern template class DeviceNetwork<double>;

// Single operations on host arrays, for the tests that compare each CUDA kernel with the CPU
// one: each uploads its inputs, runs the device operation of the same name and downloads the
// result. Same arguments and conventions as the CPU functions in bindings.cpp.
namespace ops {
// c (m, n) = op(a) op(b); a is (m, k) or (k, m) when ta, b is (k, n) or (n, k) when tb.
template <class T>
void gemm(T* c, const T* a, const T* b, idx m, idx n, idx k, bool ta, bool tb);
template <class T>
void activation_forward(T* a, const T* z, idx rows, idx cols, Act act, T alpha);
template <class T>
void activation_backward(T* dz, const T* z, const T* a, const T* da, idx rows, idx cols, Act act, T alpha);
// z, a: (n, out); either may be null.
template <class T>
void dense_forward(T* z, T* a, const T* x, const T* w, const T* b, idx n, idx in, idx out, Act act, T alpha);
// dz: (n, out) the layer's dL/dz -> dw (in, out), db (out), dx (n, in) or null; with prev_act the
// previous layer's derivative (prev_z, prev_a: (n, in)) is applied to dx.
template <class T>
void dense_backward(T* dw, T* db, T* dx, const T* dz, const T* x, const T* w, idx n, idx in, idx out,
                    Act prev_act, T prev_alpha, const T* prev_z, const T* prev_a);
// Unscaled sum_n w_n sum_k l(n, k), as cpu::Kernels::loss_forward.
template <class T>
double loss_forward(const T* z, const T* a, const T* y, const T* w, idx rows, idx cols, LossKind loss);
template <class T>
void loss_backward(T* dz, const T* z, const T* a, const T* y, const T* w, idx rows, idx cols, LossKind loss,
                   Act act, T alpha, T coef);
// In place over flat host arrays, as sgd_step / adam_step of the CPU (lr_t already bias-corrected).
template <class T>
void sgd_step(T* p, const T* g, T* v, idx n, T lr, T mu, bool nesterov);
template <class T>
void adam_step(T* p, const T* g, T* m, T* v, idx n, T lr_t, double b1, double b2, T eps);
// out (count, cols) = rows rows[i] of x (n, cols).
template <class T>
void gather_rows(T* out, const T* x, const idx* rows, idx count, idx n, idx cols);
}  // namespace ops

}  // namespace mlp::cuda

// The explicit instantiations of the ops above for T, in namespace mlp::cuda::ops of the file that
// defines them (ops.cu, or stub.cpp in a CPU-only build).
#define MLP_OPS_INSTANTIATE(T)                                                                                  \
  template void gemm<T>(T*, const T*, const T*, idx, idx, idx, bool, bool);                                    \
  template void activation_forward<T>(T*, const T*, idx, idx, Act, T);                                         \
  template void activation_backward<T>(T*, const T*, const T*, const T*, idx, idx, Act, T);                    \
  template void dense_forward<T>(T*, T*, const T*, const T*, const T*, idx, idx, idx, Act, T);                 \
  template void dense_backward<T>(T*, T*, T*, const T*, const T*, const T*, idx, idx, idx, Act, T, const T*,   \
                                  const T*);                                                                   \
  template double loss_forward<T>(const T*, const T*, const T*, const T*, idx, idx, LossKind);                 \
  template void loss_backward<T>(T*, const T*, const T*, const T*, const T*, idx, idx, LossKind, Act, T, T);   \
  template void sgd_step<T>(T*, const T*, T*, idx, T, T, bool);                                                \
  template void adam_step<T>(T*, const T*, T*, T*, idx, T, double, double, T);                                 \
  template void gather_rows<T>(T*, const T*, const idx*, idx, idx, idx);

