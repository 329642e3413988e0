// The CUDA backend as the rest of the core sees it: plain C++, no CUDA header, so that the
// bindings compile with the host compiler alone. A CPU-only build links csrc/cuda/stub.cpp
// instead of the .cu files: there device_count() is 0 and everything else throws.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "../network.hpp"

namespace mlp::cuda {

// Whether this build has the CUDA kernels.
bool built();
// Visible devices; 0 without a driver, without a device, or on any error. Never throws.
int device_count();
// "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs)"; throws for a bad ordinal.
std::string device_name(int ordinal);
// TF32 tensor-core GEMMs for float32 (off by default: results then match the CPU to float32
// precision). Read when each GEMM is planned, so it applies to later calls of every network.
void set_tf32(bool on);
bool tf32();
// cuBLASLt's fused bias/ReLU epilogues (on by default); off forces the plain GEMM followed by the
// fused bias+activation kernel, so that tests can check both paths.
void set_lt_epilogues(bool on);
bool lt_epilogues();

// The device side of one mlp::Network<T>. The host network stays the owner of the weights, the
// optimizer state, the step counter and the shuffling generator: each call uploads them, runs on
// the GPU, and writes them back, so a network trained here predicts, saves and pickles like any
// other, and moving it back to the CPU loses nothing. Training data stays on the device between
// calls that pass the same data key (see train_epoch); release_data() frees it.
// Calls on one object are serialized (a mutex), as Python threads may share a network.
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
  // null, host memory.
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

